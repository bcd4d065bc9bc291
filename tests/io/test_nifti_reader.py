"""NIfTI in monaicxr.io.reader (and the index): 2-D images and single-slice volumes, bit depth rules, masks.

The files are written here with nibabel from ``(W, H)`` arrays (NIfTI's ``(x, y)`` order), so a read that
forgets the transpose, or scales a 12-bit image as 16-bit, fails.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.transforms import Compose

from monaicxr.data.fingerprint import compute_fingerprint
from monaicxr.data.records import DatasetError
from monaicxr.data.registry import index_dataset
from monaicxr.io.reader import CXRImageReader, read_cxr
from monaicxr.transforms import BinarizeMaskd, LoadCXRImaged, ScaleByBitDepthd

nib = pytest.importorskip("nibabel")

H, W = 24, 32  # H != W: a read without the transpose has the wrong shape
FLOAT01 = np.linspace(0, 1, H * W, dtype=np.float32).reshape(H, W)
RAMP12 = (np.arange(H * W).reshape(H, W) * 5).astype(np.int16)  # 0 .. 3835
RAMP12[-1, -1] = 4095
MASK = np.zeros((H, W), np.uint8)
MASK[6:18, 8:24] = 255


def _nifti(path, image: np.ndarray, *, volume: bool = False, slope: float | None = None):
    """Write ``image`` (H, W) as NIfTI: (W, H), or (W, H, 1) with ``volume``; optional scale factor."""
    data = image.T[..., None] if volume else image.T
    img = nib.Nifti1Image(np.ascontiguousarray(data), np.diag([0.2, 0.3, 1.0, 1.0]))
    if slope is not None:
        img.header.set_slope_inter(slope, 0.0)
    nib.save(img, str(path))
    return path


def test_float_image_in_0_1(tmp_path):
    arr, meta = read_cxr(_nifti(tmp_path / "f.nii.gz", FLOAT01))
    assert arr.shape == (H, W) and meta["bit_depth_rule"] == "float [0,1]" and meta["format"] == "NIfTI"
    np.testing.assert_allclose(arr / 65535.0, FLOAT01, atol=1e-6)
    np.testing.assert_allclose(meta["pixel_spacing"], [0.3, 0.2], rtol=1e-6)  # [row, col] = [y, x]


def test_12_bit_integer_image_scales_from_its_maximum(tmp_path):
    path = _nifti(tmp_path / "i.nii", RAMP12, volume=True)  # a single-slice 3-D volume
    out = Compose([LoadCXRImaged(keys="image"), ScaleByBitDepthd(keys="image")])({"image": str(path)})
    img = out["image"]
    assert img.shape == (1, H, W) and img.meta["bit_depth_rule"] == "max value" and int(img.meta["bit_depth"]) == 12
    np.testing.assert_allclose(np.asarray(img[0]), RAMP12 / 4095.0, atol=1e-6)
    # an explicit bit depth replaces the rule
    arr, meta = read_cxr(path, bit_depth=16)
    assert meta["bit_depth_rule"] == "explicit" and meta["bit_depth"] == 16


def test_scaled_integers_follow_the_float_rules(tmp_path):
    path = _nifti(tmp_path / "s.nii.gz", RAMP12, slope=0.5)  # nibabel applies scl_slope: 0 .. 2047.5
    with pytest.raises(DatasetError, match=r"s\.nii\.gz: float image has values in \[0, 2047.5\].*float_range"):
        read_cxr(path)
    arr, meta = read_cxr(path, float_range=(0.0, 2047.5))
    assert meta["bit_depth_rule"] == "explicit" and float(arr.max()) == pytest.approx(65535.0)


@pytest.mark.parametrize(
    "name, data, error",
    [
        ("two_slices.nii.gz", np.zeros((W, H, 2), np.float32), r"shape \(32, 24, 2\).*single-slice"),
        ("negative.nii", (RAMP12.T - 100).astype(np.int16), r"values in \[-100, 3995\].*bit_depth"),
        ("nan.nii", np.full((W, H), np.nan, np.float32), "NaN"),
    ],
)
def test_refused_volumes_name_the_file(tmp_path, name, data, error):
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(tmp_path / name))
    with pytest.raises(DatasetError, match=error) as err:
        read_cxr(tmp_path / name)
    assert name in str(err.value)


def test_truncated_and_text_files_are_refused(tmp_path):
    good = _nifti(tmp_path / "g.nii.gz", FLOAT01)
    (tmp_path / "t.nii.gz").write_bytes(good.read_bytes()[:40])
    (tmp_path / "x.nii").write_text("not a volume\n")
    for name in ("t.nii.gz", "x.nii"):
        with pytest.raises(DatasetError, match=rf"{name}: cannot be read as NIfTI"):
            read_cxr(tmp_path / name)
    assert CXRImageReader().verify_suffix([str(good), "a.NII"])


def test_index_and_load_nifti_images_with_masks(tmp_path):
    """An images/ + masks/ folder of NIfTI files: indexed, bit depth rules in the fingerprint, masks binarized."""
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    _nifti(root / "images" / "float.nii.gz", FLOAT01)
    _nifti(root / "images" / "twelve.nii", RAMP12, volume=True)
    _nifti(root / "masks" / "float.nii.gz", MASK)
    _nifti(root / "masks" / "twelve.nii", MASK // 255)
    three = MASK.copy()
    three[10:12, 10:12] = 127
    _nifti(root / "images" / "three.nii.gz", FLOAT01)
    _nifti(root / "masks" / "three.nii.gz", three)
    result = index_dataset(root)
    assert sorted(r.id for r in result.records) == ["images/float", "images/twelve"]  # .nii.gz stripped
    assert [s.path for s in result.skipped] == [str(root / "images" / "three.nii.gz")]
    assert "values [0, 127, 255]" in result.skipped[0].reason
    fp = compute_fingerprint(result, progress=False)
    assert fp["bit_depth_rule"] == {"float [0,1]": 1, "max value": 1}, fp["bit_depth_rule"]
    assert fp["mask_values"]["lung"] == [0, 1, 255]
    chain = Compose([LoadCXRImaged(keys=["image", "lung"]), ScaleByBitDepthd(keys="image"), BinarizeMaskd(keys="lung")])
    for rec in result.records:
        out = chain({"image": rec.image, "lung": rec.lung_mask})
        assert out["image"].shape == (1, H, W) and float(out["image"].max()) == pytest.approx(1.0)
        np.testing.assert_array_equal(out["lung"][0].numpy(), (MASK > 0).astype(np.float32))
        assert set(torch.unique(out["lung"]).tolist()) == {0.0, 1.0}
