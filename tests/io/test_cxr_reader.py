"""Tests for monaicxr.io.reader: PIL modes, (H, W) order, bit depth, DICOM photometry and refused inputs."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
import pytest
from monai.transforms import LoadImaged
from PIL import Image

from monaicxr.data.records import DatasetError
from monaicxr.io.reader import CXRImageReader, read_cxr
from tests.dicom_files import write_dicom

H, W = 5, 7  # H != W, so a transposed read cannot pass
DICOM_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dicom"
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, written out here rather than imported

_rng = np.random.default_rng(1234)
GREY8 = (np.arange(H * W).reshape(H, W) * 7).astype(np.uint8)
GREY16 = (np.arange(H * W).reshape(H, W) * 1800 + 17).astype(np.uint16)
RGB = _rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
ALPHA = _rng.integers(0, 256, (H, W), dtype=np.uint8)
BITS = (np.arange(H * W).reshape(H, W) % 3) == 0
PALETTE = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (10, 20, 30), (200, 200, 200)]
PALETTE_INDEX = (np.arange(H * W).reshape(H, W) % len(PALETTE)).astype(np.uint8)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float64) @ LUMA


def _palette_image() -> Image.Image:
    img = Image.fromarray(PALETTE_INDEX, mode="P")
    img.putpalette([c for colour in PALETTE for c in colour])
    return img


# (mode, PIL image, expected grey values, tolerance, expected bit depth). The tolerance is 0.5 where the
# expected value is the exact luma and the reader returns it rounded to an integer.
PIL_CASES = [
    pytest.param("L", lambda: Image.fromarray(GREY8, mode="L"), GREY8, 0.0, 8, id="L"),
    pytest.param("I;16", lambda: Image.fromarray(GREY16), GREY16, 0.0, 16, id="I16"),
    pytest.param("RGB", lambda: Image.fromarray(RGB, mode="RGB"), _luma(RGB), 0.5, 8, id="RGB"),
    pytest.param("RGBA", lambda: Image.fromarray(np.dstack([RGB, ALPHA]), mode="RGBA"), _luma(RGB), 0.5, 8, id="RGBA"),
    pytest.param("LA", lambda: Image.fromarray(np.dstack([GREY8, ALPHA]), mode="LA"), GREY8, 0.0, 8, id="LA"),
    pytest.param("P", _palette_image, _luma(np.array(PALETTE)[PALETTE_INDEX]), 0.5, 8, id="P"),
    pytest.param("1", lambda: Image.fromarray(BITS), np.where(BITS, 255, 0), 0.0, 8, id="1"),
]


@pytest.mark.parametrize("mode, make, expected, tol, bit_depth", PIL_CASES)
def test_pil_modes(tmp_path, mode, make, expected, tol, bit_depth):
    path = tmp_path / f"img_{mode.replace(';', '')}.png"
    img = make()
    assert img.mode == mode  # the file really is in the mode under test
    img.save(path)
    assert Image.open(path).mode == mode

    arr, meta = read_cxr(path)
    assert arr.shape == (H, W)
    assert arr.dtype == np.float32
    assert np.all(arr == np.rint(arr))  # integer grey values, also after the luma
    np.testing.assert_allclose(arr, expected, rtol=0, atol=tol + 1e-6)
    assert meta["bit_depth"] == bit_depth
    assert meta["original_mode"] == mode
    assert meta["format"] == "PNG"
    assert meta["inverted"] is False
    assert list(meta["spatial_shape"]) == [H, W]
    assert meta["filename_or_obj"] == str(path)


# hand-computed luma of pure colours: a wrong weight order (e.g. BGR) cannot pass these
PURE_COLOURS = [((255, 0, 0), 76), ((0, 255, 0), 150), ((0, 0, 255), 29), ((255, 255, 255), 255), ((0, 0, 0), 0)]


@pytest.mark.parametrize("colour, grey", PURE_COLOURS)
def test_rgb_pure_colour_luma(tmp_path, colour, grey):
    path = tmp_path / "colour.png"
    Image.new("RGB", (W, H), colour).save(path)
    arr, _ = read_cxr(path)
    assert arr.shape == (H, W)
    assert np.all(arr == grey)


def test_load_imaged_channel_first(tmp_path):
    path = tmp_path / "grey.png"
    Image.fromarray(GREY8, mode="L").save(path)
    load = LoadImaged(keys="image", reader=CXRImageReader(), image_only=True, ensure_channel_first=True)
    out = load({"image": str(path)})["image"]
    assert tuple(out.shape) == (1, H, W)
    np.testing.assert_array_equal(out[0].numpy(), GREY8)
    assert out.meta["filename_or_obj"] == str(path)
    assert out.meta["bit_depth"] == 8


# ----------------------------------------------------------------------------------------------- real DICOM

DICOM_FILES = ["CR-MONO1-10-chest.dcm", "RG1_J2KI.dcm", "c64d5667-a776-4f95-9e21-bfabafb07740.dcm"]


def _dicom_path(name: str) -> Path:
    path = DICOM_DIR / name
    if not path.is_file():
        pytest.skip(f"{path} is absent: the real-data folder ../shared/data is not beside this checkout")
    return path


def _tags(path: Path) -> dict:
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    return {
        "rows": int(ds.Rows),
        "columns": int(ds.Columns),
        "pi": str(ds.PhotometricInterpretation).strip().upper(),
        "bits_stored": int(ds.BitsStored),
    }


@functools.lru_cache(maxsize=8)
def _read(name: str, invert: bool) -> tuple[np.ndarray, dict]:
    return read_cxr(DICOM_DIR / name, invert_monochrome1=invert)


def _lungs_darker_than_mediastinum(arr: np.ndarray) -> bool:
    """Mean of the outer thirds (lung fields) below the mean of the central strip, rows 30 % to 60 %."""
    h, w = arr.shape
    rows = slice(int(0.3 * h), int(0.6 * h))
    third = w // 3
    lungs = np.concatenate([arr[rows, :third].ravel(), arr[rows, w - third :].ravel()]).mean()
    centre = arr[rows, int(0.45 * w) : int(0.55 * w)].mean()
    return bool(lungs < centre)


@pytest.mark.shared_data
@pytest.mark.parametrize("name", DICOM_FILES)
def test_dicom_shape_and_meta_match_tags(name):
    tags = _tags(_dicom_path(name))
    arr, meta = _read(name, True)
    assert arr.shape == (tags["rows"], tags["columns"])
    assert meta["photometric_interpretation"] == tags["pi"]
    assert meta["bit_depth"] == tags["bits_stored"]
    assert meta["inverted"] == (tags["pi"] == "MONOCHROME1")
    assert arr.min() >= 0 and arr.max() <= 2 ** tags["bits_stored"] - 1


@pytest.mark.shared_data
@pytest.mark.parametrize("name", DICOM_FILES)
def test_dicom_right_side_up_not_inverted(name):
    _dicom_path(name)
    arr, _ = _read(name, True)
    assert _lungs_darker_than_mediastinum(arr), f"{name}: lungs not darker than the mediastinum"


@pytest.mark.shared_data
@pytest.mark.parametrize("name", DICOM_FILES)
def test_dicom_without_inversion(name):
    """A MONOCHROME1 file read without inversion is a negative and must fail the orientation check."""
    tags = _tags(_dicom_path(name))
    raw, meta = _read(name, False)
    assert meta["inverted"] is False
    if tags["pi"] == "MONOCHROME1":
        assert not _lungs_darker_than_mediastinum(raw)
    else:  # nothing to invert: the flag changes nothing
        np.testing.assert_array_equal(raw, _read(name, True)[0])


# ------------------------------------------------------------------------------------------ written DICOM


def _write_dicom(path: Path, pixels: np.ndarray, pi: str, bits_stored: int) -> Path:
    return write_dicom(path, pixels, photometric=pi, bits_stored=bits_stored)


STORED12 = (np.arange(H * W).reshape(H, W) * 117).astype(np.uint16)  # max 3978 <= 4095

# (photometric interpretation, expected values from the stored 12-bit values)
SMALL_DICOM_CASES = [
    ("MONOCHROME2", STORED12.astype(np.float64)),
    ("MONOCHROME1", 4095.0 - STORED12),
]


@pytest.mark.parametrize("pi, expected", SMALL_DICOM_CASES)
def test_small_written_dicom(tmp_path, pi, expected):
    path = _write_dicom(tmp_path / "small.dcm", STORED12, pi, 12)
    arr, meta = read_cxr(path)
    assert arr.shape == (H, W)
    np.testing.assert_allclose(arr, expected, atol=1e-3)
    assert meta["bit_depth"] == 12
    assert meta["format"] == "DICOM"
    assert meta["inverted"] == (pi == "MONOCHROME1")


# ------------------------------------------------------------------------------------------------- errors


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _truncated(path: Path) -> None:
    full = path.with_name("full.png")
    Image.fromarray(RGB, mode="RGB").save(full)
    data = full.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _text(path: Path) -> None:
    path.write_text("this is not an image\n")


def _ybr(path: Path) -> None:
    _write_dicom(path, np.zeros((2, 3, 3), np.uint8), "YBR_FULL", 8)


# (file name, writer, a fragment the message must hold besides the file name)
ERROR_CASES = [
    pytest.param("empty.png", _empty, "empty", id="zero_bytes"),
    pytest.param("cut.png", _truncated, "cannot be read", id="truncated_png"),
    pytest.param("notes.png", _text, "cannot be read", id="text_as_png"),
    pytest.param("colour.dcm", _ybr, "YBR_FULL", id="ybr_full_dicom"),
]


@pytest.mark.parametrize("name, write, fragment", ERROR_CASES)
def test_refused_files(tmp_path, name, write, fragment):
    path = tmp_path / name
    write(path)
    with pytest.raises(DatasetError, match=re.escape(name)) as info:
        read_cxr(path)
    assert fragment in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.png"):
        read_cxr(tmp_path / "nowhere.png")
