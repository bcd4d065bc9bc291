"""Tests for monaicxr.io.writer.SavePredictiond: mask values, overlay size and colour, size mismatch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from PIL import Image

from monaicxr.io.writer import SavePredictiond

H, W = 5, 7
LEVELS = (0, 125, 255)
BINARY = (np.arange(H * W).reshape(H, W) % 3 == 0).astype(np.int64)
INDEX = np.arange(H * W).reshape(H, W) % 3  # holds 0, 1 and 2
INDEX_NO_INFECTION = (np.arange(H * W).reshape(H, W) % 2).astype(np.int64)  # a normal radiograph: 0 and 1


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "patient_01.png"
    Image.fromarray((np.arange(H * W).reshape(H, W) * 7).astype(np.uint8)).save(path)
    return path


def _item(source, pred: np.ndarray) -> dict:
    image = MetaTensor(torch.zeros(1, H, W), meta={"filename_or_obj": str(source)})
    pred = torch.as_tensor(pred, dtype=torch.float32)
    return {"image": image, "pred": pred if pred.ndim == 3 else pred[None]}  # (H, W) -> (1, H, W)


def test_binary_prediction(tmp_path, source):
    out = tmp_path / "out"
    SavePredictiond(keys="pred", output_dir=str(out))(_item(source, BINARY))
    mask = np.asarray(Image.open(out / "patient_01_mask.png"))
    assert mask.shape == (H, W)
    np.testing.assert_array_equal(mask, BINARY * 255)

    overlay = Image.open(out / "patient_01_overlay.png")
    assert overlay.mode == "RGB" and overlay.size == (W, H)
    rgb = np.asarray(overlay).astype(int)
    fg = BINARY.astype(bool)
    # background stays grey, the predicted lung is tinted towards blue
    assert np.all(rgb[~fg, 0] == rgb[~fg, 2])
    assert np.all(rgb[fg, 2] > rgb[fg, 0])


# (prediction (H, W) or one-hot (3, H, W), the grey value the mask must hold at each pixel, SavePredictiond kwargs)
LEVEL_CASES = [
    pytest.param(INDEX, np.array(LEVELS)[INDEX], {}, id="index_map"),
    pytest.param(np.eye(3)[INDEX].transpose(2, 0, 1), np.array(LEVELS)[INDEX], {}, id="one_hot"),
    pytest.param(
        INDEX_NO_INFECTION, np.array(LEVELS)[INDEX_NO_INFECTION], {"three_level": True}, id="no_infection_3level"
    ),
    pytest.param(INDEX_NO_INFECTION, INDEX_NO_INFECTION * 255, {"three_level": False}, id="declared_binary"),
]


@pytest.mark.parametrize("pred, expected, kwargs", LEVEL_CASES)
def test_three_level_prediction(tmp_path, source, pred, expected, kwargs):
    out = tmp_path / "out"
    SavePredictiond(keys="pred", output_dir=str(out), levels=LEVELS, **kwargs)(_item(source, pred))
    mask = np.asarray(Image.open(out / "patient_01_mask.png"))
    np.testing.assert_array_equal(mask, expected)
    assert set(np.unique(mask).tolist()) <= set(LEVELS)


def test_size_mismatch_names_invertd(tmp_path, source):
    item = _item(source, BINARY[:4, :6])
    with pytest.raises(ValueError, match="Invertd"):
        SavePredictiond(keys="pred", output_dir=str(tmp_path / "out"))(item)
