"""Tests for monaicxr.transforms.masking: keep / remove, resizing, dilation, empty masks, bad masks, insertion."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, DeleteItemsd, EnsureTyped, LoadImaged, ScaleIntensityd
from parameterized import parameterized
from PIL import Image

from monaicxr.data.records import DatasetError
from monaicxr.io import CXRImageReader
from monaicxr.transforms import MaskImage, MaskImaged, insert_after_loading


def _image(h: int = 8, w: int = 8, c: int = 1) -> MetaTensor:
    return MetaTensor(
        torch.arange(1, c * h * w + 1, dtype=torch.float32).reshape(c, h, w), meta={"filename_or_obj": "img.png"}
    )


def _mask(h: int = 8, w: int = 8, value: float = 255.0) -> MetaTensor:
    m = torch.zeros(1, h, w)
    m[0, h // 4 : h // 2, w // 4 : 3 * w // 4] = value
    return MetaTensor(m, meta={"filename_or_obj": "lung.png"})


def test_keep_zeroes_outside_and_keeps_inside():
    img, m = _image(), _mask()
    out = MaskImage("keep")(img, m)
    inside = m[0] > 0
    assert torch.equal(out[0][inside], img[0][inside])
    assert (out[0][~inside] == 0).all()
    assert isinstance(out, MetaTensor) and out.meta["filename_or_obj"] == "img.png"
    assert out.meta["lung_mask_status"] == "kept lungs"
    assert "lung_mask_status" not in img.meta  # the input is left alone


def test_remove_is_the_complement_of_keep():
    img, m = _image(c=2), _mask(value=1.0)  # 0/1 mask, two image channels
    kept, removed = MaskImage("keep")(img, m), MaskImage("remove")(img, m)
    assert torch.equal(kept + removed, img.as_tensor())
    assert (removed[:, m[0] > 0] == 0).all()
    assert removed.meta["lung_mask_status"] == "removed lungs"


def test_channel_less_mask_and_fill_value():
    out = MaskImage("keep", fill_value=-1.0)(_image(), _mask()[0])
    assert (out[0][_mask()[0] == 0] == -1).all()


def test_mask_is_resized_to_the_image():
    img, small = _image(16, 16), _mask(8, 8)  # 2 x 2 blocks per mask pixel with nearest neighbour
    out = MaskImage("keep")(img, small)
    expected = torch.nn.functional.interpolate(small[None].as_tensor(), size=(16, 16), mode="nearest")[0] > 0
    assert torch.equal(out[0] != 0, expected[0])


def test_dilation_grows_the_mask_by_a_disk():
    m = torch.zeros(1, 9, 9)
    m[0, 4, 4] = 1
    out = MaskImage("keep", dilation=2)(torch.ones(1, 9, 9), m)
    assert int((out != 0).sum()) == 13  # a disk of radius 2 holds 13 pixels
    assert out[0, 4, 6] == 1 and out[0, 5, 5] == 1 and out[0, 6, 6] == 0


BAD_MASKS = [
    ("two_channels", torch.zeros(2, 8, 8), "1, \\*spatial"),
    ("three_spatial_dims", torch.zeros(1, 8, 8, 8), "spatial dimensions"),
    ("other_aspect_ratio", torch.ones(1, 8, 16), "aspect ratios"),
    ("soft_values", torch.full((1, 8, 8), 0.5), "0/255 or 0/1"),
]


@parameterized.expand(BAD_MASKS)
def test_bad_masks_are_errors_naming_both_files(_, mask, message):
    with pytest.raises(DatasetError, match=message) as info:
        MaskImage()(_image(), MetaTensor(mask, meta={"filename_or_obj": "lung.png"}))
    assert "img.png" in str(info.value) and "lung.png" in str(info.value)


def test_resizing_can_be_refused():
    with pytest.raises(DatasetError, match="allow_resize=False"):
        MaskImage(allow_resize=False)(_image(16, 16), _mask(8, 8))


@parameterized.expand([("keep",), ("remove",)])
def test_empty_mask_is_an_error_by_default(mode):
    with pytest.raises(DatasetError, match="img.png.*lung.png.*empty"):
        MaskImage(mode)(_image(), _mask(value=0.0))


def test_empty_mask_can_pass_through_with_a_warning(caplog):
    img = _image()
    with caplog.at_level(logging.WARNING, logger="monaicxr.transforms.masking"):
        out = MaskImage("keep", on_empty="pass")(img, _mask(value=0.0))
    assert torch.equal(out, img) and out.meta["lung_mask_status"] == "empty mask: not masked"
    assert "lung_mask_status" not in img.meta
    assert "img.png" in caplog.text and "empty lung mask" in caplog.text


def test_mask_that_vanishes_when_shrunk_counts_as_empty():
    m = torch.zeros(1, 64, 64)
    m[0, 1, 1] = 1
    with pytest.raises(DatasetError, match="empty after resizing to \\(8, 8\\)"):
        MaskImage()(_image(), m)


@parameterized.expand(
    [("mode", {"mode": "invert"}), ("on_empty", {"on_empty": "ignore"}), ("dilation", {"dilation": -1})]
)
def test_bad_arguments(_, kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        MaskImage(**kwargs)


def test_dictionary_twin_masks_keys_and_reports_a_missing_mask():
    d = {"image": _image(), "lung": _mask()}
    out = MaskImaged(keys="image", mask_key="lung", mode="remove")(d)
    assert torch.equal(out["image"], MaskImage("remove")(d["image"], d["lung"]))
    assert out["lung"] is d["lung"]
    with pytest.raises(DatasetError, match="img.png: mask key 'lung' is missing.*predict-lungs"):
        MaskImaged(keys="image")({"image": _image()})
    with pytest.raises(DatasetError, match="not loaded"):
        MaskImaged(keys="image")({"image": _image(), "lung": "/data/lung.png"})


def test_loaded_from_png_files_and_inserted_after_loading(tmp_path):
    """The overlay's chain on real files: masks of another size, inserted right after LoadImaged."""
    image = (np.arange(32 * 32).reshape(32, 32) % 200 + 20).astype(np.uint8)
    lung = np.zeros((16, 16), np.uint8)
    lung[4:12, 2:7] = 255
    Image.fromarray(image).save(tmp_path / "cxr.png")
    Image.fromarray(lung).save(tmp_path / "cxr_mask.png")
    base = [
        LoadImaged(keys="image", reader=CXRImageReader(), image_only=True, ensure_channel_first=True),
        ScaleIntensityd(keys="image"),
        EnsureTyped(keys="image"),
    ]
    extra = [
        LoadImaged(keys="lung", reader=CXRImageReader(), image_only=True, ensure_channel_first=True),
        MaskImaged(keys="image", mask_key="lung", mode="keep"),
        DeleteItemsd(keys="lung"),
    ]
    chain = insert_after_loading(base, extra)
    assert [type(t).__name__ for t in chain][:5] == [
        "LoadImaged",
        "LoadImaged",
        "MaskImaged",
        "DeleteItemsd",
        "ScaleIntensityd",
    ]
    out = Compose(chain)({"image": str(tmp_path / "cxr.png"), "lung": str(tmp_path / "cxr_mask.png")})
    assert "lung" not in out
    expected = np.kron(lung > 0, np.ones((2, 2), bool))  # the mask at the image's size
    assert np.array_equal(out["image"][0].numpy() > 0, expected)
    with pytest.raises(ValueError, match="no LoadImaged loads 'image'"):
        insert_after_loading(base[1:], extra)
