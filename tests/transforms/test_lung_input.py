"""LungInputd (lung box crop + resize) and PredictLungsd (lungs from the bundled lung U-Net)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monaicxr.data.records import DatasetError
from monaicxr.transforms import LungInputd, MaskImaged, PredictLungsd

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "covidqu_infection"


def _item(h=200, w=160, box=(40, 150, 30, 120)):
    img = MetaTensor(torch.rand(1, h, w), meta={"filename_or_obj": "film.png"})
    lung = MetaTensor(torch.zeros(1, h, w), meta={"filename_or_obj": "lung.png"})
    lung[0, box[0] : box[1], box[2] : box[3]] = 255
    return {"image": img, "lung": lung}


def test_crop_takes_the_lung_box_with_margin():
    d = _item()
    expected = d["image"][:, 40 - 5 : 150 + 5, 30 - 5 : 120 + 5]
    out = LungInputd(spatial_size=(110 + 10, 90 + 10), margin=5)(d)
    torch.testing.assert_close(out["image"].as_tensor(), expected.as_tensor())
    assert out["lung"].shape == (1, 120, 100) and set(out["lung"].unique().tolist()) == {0.0, 1.0}


def test_full_and_mask_modes_keep_the_whole_film():
    for mode in ("full", "mask"):
        out = LungInputd(mode=mode, spatial_size=(100, 80))(_item())
        assert out["image"].shape == (1, 100, 80) and out["lung"].shape == (1, 100, 80)


def test_crop_then_mask_zeroes_outside_the_lungs():
    d = LungInputd(spatial_size=(64, 64), margin=10)(_item())
    d = MaskImaged(mask_key="lung", mode="keep")(d)
    outside = d["lung"] == 0
    assert outside.any() and (d["image"][outside] == 0).all()


def test_empty_mask_is_an_error_naming_both_files_or_passes():
    d = _item(box=(0, 0, 0, 0))
    with pytest.raises(DatasetError, match=r"film\.png \(mask lung\.png\).*empty"):
        LungInputd(spatial_size=(32, 32))(dict(d))
    out = LungInputd(spatial_size=(32, 32), on_empty="pass")(dict(d))
    assert out["image"].shape == (1, 32, 32)


def test_missing_or_bad_mask_is_refused():
    d = _item()
    del d["lung"]
    with pytest.raises(DatasetError, match="film.png: mask key 'lung' is missing"):
        LungInputd()(d)
    d = _item()
    d["lung"][0, 0, 0] = 7
    with pytest.raises(DatasetError, match="film.png"):
        LungInputd()(d)
    with pytest.raises(ValueError, match="mode must be one of"):
        LungInputd(mode="lungs")


@pytest.mark.skipif(not DATA.is_dir(), reason=f"{DATA} is absent (the real COVID-QU-Ex copy)")
def test_predicted_lungs_match_the_reference_masks():
    from monai.networks.nets import BasicUNet
    from PIL import Image

    net = BasicUNet(2, 1, 1, features=(16, 16, 32, 64, 128, 16), norm="batch")
    predict = PredictLungsd("image", net, REPO / "bundles" / "efficientnet_lite0" / "models" / "lung.pt")
    dice = []
    for name in sorted(p.name for p in (DATA / "images").iterdir())[:6]:
        image = np.asarray(Image.open(DATA / "images" / name).convert("L"), dtype=np.float32) / 255
        truth = np.asarray(Image.open(DATA / "lung_masks" / name)) > 0
        mask = predict({"image": torch.from_numpy(image)[None]})["lung"][0].numpy() > 0
        assert mask.shape == truth.shape
        dice.append(2 * (mask & truth).sum() / (mask.sum() + truth.sum()))
    assert np.mean(dice) > 0.9, dice


def test_predict_lungs_needs_one_channel_and_checks_the_weights(tmp_path):
    from monai.networks.nets import BasicUNet

    from monaicxr.io import CheckpointError

    net = BasicUNet(2, 1, 1, features=(16, 16, 32, 64, 128, 16), norm="batch")
    bad = tmp_path / "lung.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="lung.pt"):
        PredictLungsd("image", net, bad)
    predict = PredictLungsd("image", net, REPO / "bundles" / "efficientnet_lite0" / "models" / "lung.pt")
    with pytest.raises(ValueError, match=r"\(1, H, W\)"):
        predict({"image": torch.rand(3, 64, 64)})
