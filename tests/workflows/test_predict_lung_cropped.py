"""monaicxr predict with the lung-cropped EfficientNet-Lite0 bundle: card checks, lungs, Grad-CAM in the box."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from monaicxr.data.synthetic import make_phantom
from monaicxr.io.weights_card import CardError, write_input_card
from monaicxr.workflows.predict import ModelSpec, _classify, load_model, predict

REPO = Path(__file__).resolve().parents[2]
CARD = {"lung_input": "crop_mask", "spatial_size": [224, 224], "lung_margin": 8, "mask_dilation": 4}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A copy of bundles/efficientnet_lite0 with random (seeded) classifier weights and their card."""
    from monai.bundle import ConfigParser

    root = tmp_path_factory.mktemp("lite0") / "efficientnet_lite0"
    shutil.copytree(REPO / "bundles/efficientnet_lite0/configs", root / "configs")
    (root / "models").mkdir()
    shutil.copy(REPO / "bundles/efficientnet_lite0/models/lung.pt", root / "models/lung.pt")
    parser = ConfigParser()
    parser.read_config(str(root / "configs/inference.json"))
    torch.manual_seed(0)
    torch.save(parser.get_parsed_content("network_def").state_dict(), root / "models/model.pt")
    write_input_card(root / "models/model.pt", **CARD)
    return root


def test_gradcam_lies_in_the_lung_box(bundle):
    model = load_model(ModelSpec("classifier", str(bundle)))
    assert not isinstance(model, str), model
    ph = make_phantom(3, size=256, kind="covid")
    probs, cam = _classify(model, ph.image.astype(np.float32), {"filename_or_obj": "phantom.png", "bit_depth": 8})
    assert probs.shape == (3,) and abs(float(probs.sum()) - 1) < 1e-5
    rows, cols = np.nonzero(ph.lung)
    outside = np.ones(cam.shape, bool)
    outside[max(rows.min() - 12, 0) : rows.max() + 13, max(cols.min() - 12, 0) : cols.max() + 13] = False
    assert cam.shape == ph.image.shape and cam.max() > 0
    assert float(cam[outside].max()) == 0.0  # nothing outside the (margin-grown) lung box


def test_predict_runs_and_a_card_mismatch_is_refused(bundle, tmp_path):
    from PIL import Image

    films = tmp_path / "films"
    films.mkdir()
    for i, kind in enumerate(["covid", "normal"]):
        Image.fromarray(make_phantom(i, size=256, kind=kind).image).save(films / f"{kind}.png")
    summary = predict(films, tmp_path / "out", models=[ModelSpec("classifier", str(bundle))], progress=False)
    assert summary["n_predicted"] == 2
    with open(tmp_path / "out" / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert all(abs(sum(float(r[f"p_{c}"]) for c in ("COVID-19", "Non-COVID", "Normal")) - 1) < 1e-4 for r in rows)
    assert (tmp_path / "out" / "gradcam" / "covid.png").is_file()

    card = json.loads((bundle / "models/model.json").read_text())
    card["input"]["lung_input"] = "full"
    (bundle / "models/model.json").write_text(json.dumps(card))
    try:
        with pytest.raises(CardError, match="lung_input='full'"):
            load_model(ModelSpec("classifier", str(bundle)))
    finally:
        write_input_card(bundle / "models/model.pt", **CARD)
