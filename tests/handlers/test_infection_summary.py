"""InfectionSummary: Dice over infected films, false positives on clean films, severity, pooled 3-level IoU."""

from __future__ import annotations

import json

import pytest
import torch
from ignite.engine import Engine

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
