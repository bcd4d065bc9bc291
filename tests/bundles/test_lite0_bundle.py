"""bundles/efficientnet_lite0: lung-cropped input, weights card, temperature, train -> evaluate -> inference.

One epoch at 32 x 32 on 4 phantoms per class from the real ImageNet weights; evaluation and inference predict
the lungs with the bundled lung U-Net. The card must stop a config with other input settings, calibrate must
refuse a test-section evaluation, and after calibration evaluate and inference must use the temperature.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_helpers import TINY_BASE, classification_phantoms, error_messages, make_workflow, run_workflow

from monaicxr.io.weights_card import CardError, card_path, fit_card_temperature, read_card

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "bundles" / "efficientnet_lite0" / "configs"
CLASSES = ["COVID-19", "Non-COVID", "Normal"]
# float32 as inference runs: bfloat16 autocast would move this tiny net's outputs by ~1e-2
TINY = TINY_BASE


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> Path:
    """One phantom datalist (4 per class, split 2 / 1 / 1) shared by the tests of this file."""
    return classification_phantoms(tmp_path_factory.mktemp("lite0_phantoms"))


@pytest.fixture(scope="module")
def trained(phantoms, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lite0")
    run_workflow(make_workflow(CONFIGS, TINY, out, datalist_file=str(phantoms)))
    return out


def _evaluate(out: Path, phantoms: Path, section: str, **override):
    wf = make_workflow(
        CONFIGS, TINY, out, "evaluate.json", workflow_type="eval", datalist_file=str(phantoms),
        ckpt_path=str(out / "models" / "model.pt"), eval_section=section, **override,
    )  # fmt: skip
    run_workflow(wf)
    return json.loads((out / "eval" / "classification_report.json").read_text())


def test_training_writes_a_sealed_card(trained):
    card = read_card(trained / "models" / "model.pt")
    assert card["input"] == {"lung_input": "crop_mask", "spatial_size": [32, 32], "lung_margin": 8, "mask_dilation": 4}
    assert card["sha256"] and card["weights"] == "model.pt" and "temperature" not in card


def test_evaluate_refuses_other_input_settings(trained, phantoms):
    with pytest.raises(Exception) as err:
        _evaluate(trained, phantoms, "test", lung_input="full")
    assert "lung_input='crop_mask'" in error_messages(err.value) and "model.json" in error_messages(err.value)


def test_calibration_only_on_validation_then_applied(trained, phantoms, tmp_path):
    _evaluate(trained, phantoms, "test")
    with pytest.raises(CardError, match="'test' section"):
        fit_card_temperature(trained / "models" / "model.pt", trained / "eval")
    raw = _evaluate(trained, phantoms, "validation")
    assert "temperature" not in raw
    entry = fit_card_temperature(trained / "models" / "model.pt", trained / "eval")
    assert entry["value"] > 0 and entry["fitted_on"] == "validation" and entry["n_images"] == 3
    assert entry["nll_after"] <= entry["nll_before"] + 1e-9
    calibrated = _evaluate(trained, phantoms, "validation")
    assert calibrated["temperature"] == pytest.approx(entry["value"])
    assert calibrated["ece_uncalibrated"] == pytest.approx(raw["ece"], abs=1e-6)
    assert calibrated["accuracy"] == raw["accuracy"]  # a temperature never changes the argmax
    rows = list(csv.DictReader((trained / "eval" / "predictions.csv").open()))
    z = torch.tensor([[float(r[f"logit_{c}"]) for c in CLASSES] for r in rows])
    p = torch.tensor([[float(r[f"p_{c}"]) for c in CLASSES] for r in rows])
    assert torch.allclose(p, torch.softmax(z / entry["value"], 1), atol=1e-5)

    # inference applies the same temperature
    from monai.bundle import ConfigWorkflow

    images = [item["image"] for item in json.loads(phantoms.read_text())["validation"]]
    wf = ConfigWorkflow(
        config_file=str(CONFIGS / "inference.json"), meta_file=str(CONFIGS / "metadata.json"), logging_file=False,
        workflow_type="infer", ckpt_path=str(trained / "models" / "model.pt"), output_dir=str(tmp_path),
        spatial_size=[32, 32], datalist=[{"image": i} for i in images],
    )  # fmt: skip
    wf.initialize()
    assert wf.parser.get_parsed_content("temperature") == pytest.approx(entry["value"])
    run_workflow(wf)
    got = {r[0]: np.array([float(v) for v in r[1:]]) for r in csv.reader((tmp_path / "predictions.csv").open())}
    by_image = {r["image"]: p[i].numpy() for i, r in enumerate(rows)}
    assert set(got) == set(by_image)
    for name, probs in got.items():
        np.testing.assert_allclose(probs, by_image[name], atol=1e-3)


def test_replaced_weights_make_the_card_stale(trained, tmp_path):
    weights = tmp_path / "model.pt"
    weights.write_bytes((trained / "models" / "model.pt").read_bytes())
    card_path(weights).write_text((trained / "models" / "model.json").read_text())
    assert read_card(weights)["input"]["lung_input"] == "crop_mask"
    torch.save({"model": {}}, weights)
    with pytest.raises(CardError, match="sha256 differs"):
        read_card(weights)


def test_shortcut_audit_removes_the_lungs(trained, phantoms):
    """remove_lungs=True (the audit): with the lungs gone a lung-cropped, lung-masked input is blank, so every
    film gets the same prediction, whatever is outside the lungs."""
    _evaluate(trained, phantoms, "test", remove_lungs=True)
    rows = list(csv.DictReader((trained / "eval" / "predictions.csv").open()))
    probs = {tuple(round(float(r[f"p_{c}"]), 5) for c in CLASSES) for r in rows}
    assert len(rows) == 3 and len(probs) == 1, probs
