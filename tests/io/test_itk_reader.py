"""MetaImage (.mha) and NRRD (.nrrd) through ITK in monaicxr.io.reader and the index: NIfTI's value rules.

The files are written here with ITK from (H, W) arrays with H != W and a spacing that differs per axis, so a
read that swaps the axes, scales a 12-bit image as 16-bit or loses the spacing fails.
"""

from __future__ import annotations

import numpy as np
import pytest

from monaicxr.data.records import DatasetError
from monaicxr.data.registry import index_dataset
from monaicxr.io.reader import CXRImageReader, read_cxr
from monaicxr.transforms import BinarizeMaskd, LoadCXRImaged, ScaleByBitDepthd

itk = pytest.importorskip("itk")

H, W = 24, 32
FLOAT01 = np.linspace(0, 1, H * W, dtype=np.float32).reshape(H, W)
RAMP12 = (np.arange(H * W).reshape(H, W) * 5).astype(np.uint16)
RAMP12[-1, -1] = 4095
MASK = np.zeros((H, W), np.uint8)
MASK[6:18, 8:24] = 255


def _write(path, array: np.ndarray, spacing=(0.2, 0.3)):
    img = itk.image_from_array(np.ascontiguousarray(array))
    img.SetSpacing(list(spacing))  # (x, y)
    itk.imwrite(img, str(path))
    return path


@pytest.mark.parametrize("suffix", [".mha", ".nrrd"])
def test_float_and_12_bit_images(tmp_path, suffix):
    arr, meta = read_cxr(_write(tmp_path / f"f{suffix}", FLOAT01))
    assert arr.shape == (H, W) and meta["bit_depth_rule"] == "float [0,1]"
    np.testing.assert_allclose(arr / 65535.0, FLOAT01, atol=1e-6)
    np.testing.assert_allclose(meta["pixel_spacing"], [0.3, 0.2])  # [row, col] = [y, x]
    arr, meta = read_cxr(_write(tmp_path / f"r{suffix}", RAMP12))
    assert (meta["bit_depth"], meta["bit_depth_rule"]) == (12, "max value")
    np.testing.assert_array_equal(arr, RAMP12.astype(np.float32))
    assert CXRImageReader().verify_suffix([str(tmp_path / f"r{suffix}"), "b.NRRD", "c.MHA"])


def test_bad_files_are_refused_naming_them(tmp_path):
    (tmp_path / "junk.mha").write_text("not an image")
    with pytest.raises(DatasetError, match=r"junk\.mha: cannot be read by ITK"):
        read_cxr(tmp_path / "junk.mha")
    rgb = itk.image_from_array(np.zeros((H, W, 3), np.uint8), is_vector=True)
    itk.imwrite(rgb, str(tmp_path / "rgb.nrrd"))
    with pytest.raises(DatasetError, match=r"rgb\.nrrd: 3-component"):
        read_cxr(tmp_path / "rgb.nrrd")
    _write(tmp_path / "vol.nrrd", np.zeros((2, H, W), np.uint8), spacing=(1, 1, 1))
    with pytest.raises(DatasetError, match=r"vol\.nrrd: ITK image has shape \(2, 24, 32\)"):
        read_cxr(tmp_path / "vol.nrrd")
    _write(tmp_path / "neg.mha", (RAMP12.astype(np.int32) - 5000))
    with pytest.raises(DatasetError, match=r"neg\.mha: MHA int32 image has values"):
        read_cxr(tmp_path / "neg.mha")


def test_index_and_load_nrrd_images_with_masks(tmp_path):
    """images/ + masks/ in NRRD, as 3D Slicer exports them: indexed, then loaded and binarized by the chain."""
    from monai.transforms import Compose

    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    _write(root / "images" / "a.nrrd", RAMP12)
    _write(root / "masks" / "a.nrrd", MASK)
    (root / "images" / "cut.nrrd").write_bytes((root / "images" / "a.nrrd").read_bytes()[:200])
    _write(root / "masks" / "cut.nrrd", MASK)
    result = index_dataset(root)
    assert [r.id for r in result.records] == ["images/a"]
    assert [s.path for s in result.skipped] == [str(root / "images" / "cut.nrrd")]
    chain = Compose([LoadCXRImaged(keys=["image", "lung"]), ScaleByBitDepthd(keys="image"), BinarizeMaskd(keys="lung")])
    out = chain({"image": result.records[0].image, "lung": result.records[0].lung_mask})
    assert out["image"].shape == (1, H, W) and float(out["image"].max()) == pytest.approx(1.0)
    np.testing.assert_array_equal(out["lung"][0].numpy(), (MASK > 0).astype(np.float32))
