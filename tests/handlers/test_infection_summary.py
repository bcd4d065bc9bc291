"""InfectionSummary: Dice over infected films, false positives on clean films, severity, pooled 3-level IoU."""

from __future__ import annotations

import json

import pytest
import torch
from ignite.engine import Engine, Events

from monaicxr.handlers import InfectionSummary


def _mask(*boxes, size=8):
    m = torch.zeros(1, size, size)
    for r0, r1, c0, c1 in boxes:
        m[0, r0:r1, c0:c1] = 1
    return m


def _run(items, handler):
    engine = Engine(lambda e, batch: batch)
    handler.attach(engine)
    engine.run([[it] for it in items], max_epochs=1)
    return handler.summary


def test_counts_dice_and_false_positives(tmp_path):
    items = [
        # infected, half overlap: Dice = 2*8 / (16 + 16) = 0.5
        {"pred": _mask((0, 4, 0, 4)), "label": _mask((0, 4, 2, 6)), "class_name": "COVID-19"},
        # infected, perfect
        {"pred": _mask((4, 8, 4, 8)), "label": _mask((4, 8, 4, 8)), "class_name": "COVID-19"},
        # clean films: one with a single false pixel, one clean
        {"pred": _mask((0, 1, 0, 1)), "label": _mask(), "class_name": "Normal"},
        {"pred": _mask(), "label": _mask(), "class_name": "Non-COVID"},
    ]
    s = _run(items, InfectionSummary(tmp_path / "s.json"))
    assert s["n_infected"] == 2 and s["n_clean"] == 2
    assert s["dice_infected_mean"] == pytest.approx(0.75)
    assert s["dice_infected_pooled"] == pytest.approx(2 * (8 + 16) / (32 + 32))
    assert s["false_positive_share"] == 0.5 and s["false_positive_count"] == 1
    assert s["false_positive_share_by_class"] == {"Non-COVID": 0.0, "Normal": 1.0}
    assert json.loads((tmp_path / "s.json").read_text()) == s


def test_severity_agreement_and_three_level_iou(tmp_path):
    lung = _mask((0, 8, 0, 8))
    items = [
        {
            "pred": _mask((0, 4, 0, 8)), "label": _mask((0, 4, 0, 8)), "pred_lung": lung, "label_lung": lung,
            "sev": {"total_grade": "moderate", "right_grade": "mild", "left_grade": "severe"},
            "ref": {"total_grade": "moderate", "right_grade": "mild", "left_grade": "mild"},
        },
        {
            "pred": _mask(), "label": _mask((0, 2, 0, 8)), "pred_lung": lung, "label_lung": lung,
            "sev": {"total_grade": "none", "right_grade": "none", "left_grade": "none"},
            "ref": {"total_grade": "mild", "right_grade": "mild", "left_grade": "none"},
        },
    ]  # fmt: skip
    h = InfectionSummary(tmp_path / "s.json", lung_keys=("pred_lung", "label_lung"), severity_keys=("sev", "ref"))
    s = _run(items, h)
    assert s["severity_agreement"] == 0.5 and s["severity_agreement_both_lungs"] == 0.0
    # pooled: infection pred 32 px, ref 48 px, overlap 32 -> IoU 32/48; lung level pred 96, ref 80, overlap 80
    assert s["three_level_iou_pooled"]["infection"] == pytest.approx(32 / 48)
    assert s["three_level_iou_pooled"]["lung"] == pytest.approx(80 / 96)
    assert s["three_level_iou_pooled"]["non_lung"] is None  # no non-lung pixel on either side
    assert s["three_level_miou_pooled"] == pytest.approx((32 / 48 + 80 / 96) / 2)


def test_gate_empties_films_the_classifier_calls_clean(tmp_path):
    from monaicxr.cli.main import main
    from monaicxr.handlers.infection import gate_rows, read_rows, summarize_infection_rows

    items = [
        {"pred": _mask((0, 4, 0, 4)), "label": _mask((0, 4, 0, 4)), "class_name": "COVID-19"},
        {"pred": _mask((0, 2, 0, 2)), "label": _mask(), "class_name": "Normal"},
    ]
    for i, it in enumerate(items):
        from monai.data import MetaTensor

        it["image"] = MetaTensor(torch.zeros(1, 8, 8), meta={"filename_or_obj": f"f{i}.png"})
    _run(items, InfectionSummary(tmp_path / "s.json"))
    rows = read_rows(tmp_path / "s_per_image.csv")
    assert [r["image"] for r in rows] == ["f0.png", "f1.png"] and rows[1]["pred"] == 4
    gated = summarize_infection_rows(gate_rows(rows, {"f0.png": 0.9, "f1.png": 0.2}, 0.5))
    assert gated["false_positive_share"] == 0.0 and gated["dice_infected_mean"] == 1.0
    assert summarize_infection_rows(gate_rows(rows, {"f0.png": 0.4, "f1.png": 0.2}, 0.5))["dice_infected_mean"] == 0.0
    with pytest.raises(ValueError, match="no probability for 1 of 2 images"):
        gate_rows(rows, {"f0.png": 0.9}, 0.5)
    preds = tmp_path / "predictions.csv"
    preds.write_text("image,true,pred,p_COVID-19,p_Non-COVID,p_Normal\nf0.png,COVID-19,COVID-19,0.9,0.05,0.05\n"
                     "f1.png,Normal,Normal,0.2,0.1,0.7\n")  # fmt: skip
    assert main(["infection-gate", str(tmp_path / "s_per_image.csv"), str(preds), "--thresholds", "0", "0.5",
                 "--out", str(tmp_path / "g.json")]) == 0  # fmt: skip
    table = json.loads((tmp_path / "g.json").read_text())
    assert [t["false_positive_share"] for t in table] == [1.0, 0.0]
    # a classifier file that misses a film: a one-line error (exit 2), not a traceback or a silent pass
    preds.write_text("image,true,pred,p_COVID-19,p_Non-COVID,p_Normal\nf0.png,COVID-19,COVID-19,0.9,0.05,0.05\n")
    assert main(["infection-gate", str(tmp_path / "s_per_image.csv"), str(preds)]) == 2


def test_section_metric_names():
    from monaicxr.handlers import SectionMetricNames, section_metric_name

    assert section_metric_name("val_dice", "test") == "test_dice"
    assert section_metric_name("val_dice", "validation") == "val_dice"
    assert section_metric_name("dice", "test") == "dice"
    engine = Engine(lambda e, b: b)
    SectionMetricNames("test").attach(engine)

    @engine.on(Events.EPOCH_COMPLETED(once=1))
    def _seen(e):  # attached after: sees the renamed names
        e.state.seen = dict(e.state.metrics)

    @engine.on(Events.EPOCH_STARTED)
    def _metrics(e):
        e.state.metrics = {"val_dice": 0.5, "other": 1.0}
        e.state.metric_details = {"val_dice": [0.5]}

    engine.run([0], max_epochs=1)
    assert engine.state.seen == {"test_dice": 0.5, "other": 1.0}
    assert engine.state.metric_details == {"test_dice": [0.5]}


def test_keys_left_in_the_batch_by_post_processing_are_read(tmp_path):
    """MONAI keeps the data's own keys (class_name, the reference lung) in engine.state.batch, not the output."""
    handler = InfectionSummary(tmp_path / "s.json")
    engine = Engine(lambda e, b: b)
    handler.attach(engine)

    def step(e, b):
        e.state.batch = [{"class_name": "Normal"}]
        return [{"pred": _mask((0, 1, 0, 1)), "label": _mask()}]

    engine._process_function = step
    engine.run([0], max_epochs=1)
    assert handler.summary["false_positive_share_by_class"] == {"Normal": 1.0}
