"""A corpus of bad and odd inputs, each run through every entry point it applies to.

Every input is built in ``tmp_path`` and must end in one of three ways at each entry point: a clear error that
names the file (or manifest line, or annotation), a reported skip with its reason, or a correct result (a
12-bit ramp in a 16-bit PNG with ``sBIT`` scales to [0, 1] with a maximum of 1.0...). A silently wrong
outcome fails. The entry points:

- index: :func:`monaicxr.data.registry.index_dataset` (and :func:`compute_fingerprint`'s ``bit_depth_rule``);
- prepare: :func:`monaicxr.data.prepare.prepare_datalist`, what ``monaicxr index`` and the bundles' ``train`` /
  ``evaluate`` run: the datalist and ``fingerprint.json`` (whose ``skipped`` list is the reported skip);
- load: ``LoadCXRImaged`` + ``ScaleByBitDepthd`` + ``BinarizeMaskd``, as the bundles chain them;
- predict: :func:`monaicxr.workflows.inputs.read_input`, the per-file boundary, and the whole
  :func:`monaicxr.workflows.predict.predict` workflow, run once on a folder of every image case with the shipped
  lung weights (``predictions.csv``: a skipped row with its reason, or a predicted mask of the image's size);
- MONAI Label: every image case uploaded to ``POST /infer/segmentation_lung`` of one real server (skipped
  without MONAI Label): 200 and a mask of the image's size, or 415 with the reader's reason;
- checkpoints: :func:`monaicxr.io.load_checkpoint`, and predict with the checkpoint as a model's weights.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.transforms import Compose
from PIL import Image, PngImagePlugin

from monaicxr.data.fingerprint import compute_fingerprint
from monaicxr.data.prepare import prepare_datalist
from monaicxr.data.records import DatasetError
from monaicxr.data.registry import detect_layout, index_dataset
from monaicxr.io import CheckpointError, load_checkpoint
from monaicxr.transforms import BinarizeMaskd, LoadCXRImaged, ScaleByBitDepthd
from monaicxr.workflows.inputs import read_input
from tests.dicom_files import write_dicom

S = 32  # side of the corpus images: above predict's MIN_SIDE


# --------------------------------------------------------------------------------------------- writers


def _grey(path: Path, arr: np.ndarray, **save) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **save)
    return path


def _ramp8() -> np.ndarray:
    return (np.arange(S * S) % 256).astype(np.uint8).reshape(S, S)


def _png_sbit(path: Path, arr: np.ndarray, bits: int) -> Path:
    info = PngImagePlugin.PngInfo()
    info.add(b"sBIT", bytes([bits]))
    return _grey(path, arr, pnginfo=info)


def _frames(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    a, b = Image.fromarray(_ramp8()), Image.fromarray(255 - _ramp8())
    a.save(path, save_all=True, append_images=[b])
    return path


def _dicom(path: Path, pixels: np.ndarray | None, pi: str = "MONOCHROME2", bits: int = 12, **tags) -> Path:
    tags.pop("samples", None)  # follows the pixels' shape
    return write_dicom(path, pixels, photometric=pi, bits_stored=bits, modality="DX", shape=(S, S), **tags)


RAMP12 = np.arange(S * S, dtype=np.uint16).reshape(S, S) * 4  # 0 .. 4092
RAMP12[-1, -1] = 4095  # full 12-bit range


def _nifti(path: Path, arr: np.ndarray, volume: bool = False) -> Path:
    """``arr`` (H, W, or H, W, slices) as NIfTI, in its (x, y) = (W, H) order; ``volume`` adds one slice axis."""
    import nibabel as nib

    data = np.swapaxes(arr, 0, 1)
    nib.save(nib.Nifti1Image(np.ascontiguousarray(data[..., None] if volume else data), np.eye(4)), str(path))
    return path


def _mask(path: Path, size: int = S, value: int = 255, dtype=np.uint8, rgb: bool = False, **save) -> Path:
    arr = np.zeros((size, size), dtype=dtype)
    arr[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = value
    if rgb:
        arr = np.stack([arr, np.zeros_like(arr), np.zeros_like(arr)], -1)  # red lungs
    return _grey(path, arr, **save)


# ------------------------------------------------------------------------------------------ image cases


@dataclass
class Case:
    """``error``: a regex the error or skip reason must match; ``None`` for an input that must load."""

    write: object
    suffix: str = ".png"
    error: str | None = None
    rule: str | None = None  # the bit_depth_rule of a good input
    check: object = None  # extra check of the scaled (1, H, W) image
    predict_error: str | None = None  # where predict refuses an input index and load accept
    mask_size: int = S


def _max_is_one(img):
    assert float(img.max()) == pytest.approx(1.0, abs=1e-6) and float(img.min()) == 0.0


def _equals_float01(img):
    expected = np.linspace(0, 1, S * S, dtype=np.float32).reshape(S, S)
    np.testing.assert_allclose(np.asarray(img[0]), expected, atol=1e-6)


def _is_12bit_ramp(img):
    np.testing.assert_allclose(np.asarray(img[0]), RAMP12 / 4095.0, atol=1e-6)


def _w(fn):
    return fn


IMAGE_CASES = {
    "truncated_png": Case(lambda p: p.write_bytes(_grey(p, _ramp8()).read_bytes()[:60]), error="truncat|cannot"),
    "zero_byte_png": Case(lambda p: p.write_bytes(b""), error="zero-byte|empty"),
    "text_named_png": Case(lambda p: p.write_text("not an image\n"), error="not a decodable|cannot be read"),
    "truncated_jpeg": Case(
        lambda p: p.write_bytes(_grey(p, _ramp8(), quality=90).read_bytes()[:200]), ".jpg", error="truncat|cannot"
    ),
    "cmyk_jpeg": Case(
        lambda p: Image.new("CMYK", (S, S), (10, 20, 30, 40)).save(p), ".jpg", error="mode 'CMYK' is not supported"
    ),
    "two_frame_png": Case(_frames, error="2 frames"),
    "two_frame_tiff": Case(_frames, ".tif", error="2 frames"),
    "one_by_one_png": Case(
        lambda p: _grey(p, np.array([[200]], np.uint8)),
        rule="dtype",
        check=lambda img: np.testing.assert_allclose(np.asarray(img), [[[200 / 255]]], atol=1e-6),
        predict_error="too small",
        mask_size=1,
    ),
    "grey8_png": Case(lambda p: _grey(p, _ramp8()), rule="dtype", check=_max_is_one),
    "rgb_png": Case(lambda p: _grey(p, np.stack([_ramp8()] * 3, -1)), rule="dtype", check=_max_is_one),
    "grey16_full_range_png": Case(
        lambda p: _grey(p, (np.arange(S * S, dtype=np.uint32) * 64).clip(0, 65535).astype(np.uint16).reshape(S, S)),
        rule="dtype",
        check=lambda img: np.testing.assert_allclose(float(img.max()), (S * S - 1) * 64 / 65535, rtol=1e-6),
    ),
    "grey16_sbit12_png": Case(lambda p: _png_sbit(p, RAMP12, 12), rule="sBIT", check=_is_12bit_ramp),
    "grey16_sbit12_scaled_up_png": Case(  # sBIT 12 with values scaled to 16 bits, as the PNG spec recommends
        lambda p: _png_sbit(p, (RAMP12.astype(np.uint32) * 65535 // 4095).astype(np.uint16), 12),
        rule="dtype",
        check=_max_is_one,
    ),
    "grey16_tiff": Case(lambda p: _grey(p, RAMP12 * 16), ".tif", rule="dtype"),
    "float_tiff_0_1": Case(
        lambda p: _grey(p, np.linspace(0, 1, S * S, dtype=np.float32).reshape(S, S)),
        ".tif",
        rule="float [0,1]",
        check=_equals_float01,
    ),
    "float_tiff_integers_12bit": Case(
        lambda p: _grey(p, RAMP12.astype(np.float32)), ".tif", rule="float integer range", check=_is_12bit_ramp
    ),
    "float_tiff_nan": Case(
        lambda p: _grey(p, np.where(_ramp8() > 100, np.nan, 0.5).astype(np.float32)), ".tif", error="NaN"
    ),
    "float_tiff_out_of_range": Case(
        lambda p: _grey(p, np.linspace(-1.5, 3.25, S * S, dtype=np.float32).reshape(S, S)),
        ".tif",
        error=r"values in \[-1.5, 3.25\].*float_range",
    ),
    "dicom_12bit_ramp": Case(lambda p: _dicom(p, RAMP12), ".dcm", rule="BitsStored", check=_is_12bit_ramp),
    "dicom_monochrome1": Case(
        lambda p: _dicom(p, RAMP12, "MONOCHROME1"),
        ".dcm",
        rule="BitsStored",
        check=lambda img: np.testing.assert_allclose(np.asarray(img[0]), 1.0 - RAMP12 / 4095.0, atol=1e-6),
    ),
    "dicom_no_pixel_data": Case(lambda p: _dicom(p, None), ".dcm", error="no Pixel Data"),
    "dicom_ybr_full": Case(
        lambda p: _dicom(p, np.zeros((S, S, 3), np.uint8), "YBR_FULL", bits=8, samples=3),
        ".dcm",
        error="'YBR_FULL' is not supported",
    ),
    "dicom_palette_color": Case(
        lambda p: _dicom(p, np.zeros((S, S), np.uint8), "PALETTE COLOR", bits=8),
        ".dcm",
        error="'PALETTE COLOR' is not supported",
    ),
    "dicom_multi_frame": Case(
        lambda p: _dicom(p, np.concatenate([RAMP12, RAMP12]), NumberOfFrames=2), ".dcm", error="2 frames"
    ),
    "dicom_truncated_pixel_data": Case(
        lambda p: _dicom(p, RAMP12.ravel()[: S * S // 2]), ".dcm", error="pixel data cannot be decoded"
    ),
    "dicom_text_file": Case(lambda p: p.write_text("DICOM? no\n"), ".dcm", error="not a readable DICOM|no Pixel Data"),
    "nifti_float_0_1": Case(
        lambda p: _nifti(p, np.linspace(0, 1, S * S, dtype=np.float32).reshape(S, S)),
        ".nii.gz",
        rule="float [0,1]",
        check=_equals_float01,
    ),
    "nifti_12bit_volume": Case(
        lambda p: _nifti(p, RAMP12.astype(np.int16), volume=True), ".nii", rule="max value", check=_is_12bit_ramp
    ),
    "nifti_two_slices": Case(
        lambda p: _nifti(p, np.zeros((S, S, 2), np.float32)), ".nii.gz", error=r"shape \(32, 32, 2\).*single-slice"
    ),
}
NIFTI_SUFFIXES = (".nii", ".nii.gz")


def _image_case(tmp_path: Path, case_id: str) -> tuple[Case, Path, Path]:
    """A dataset folder ``images/`` + ``masks/`` holding the case's image and one good image."""
    case = IMAGE_CASES[case_id]
    root = tmp_path / "ds"
    image = root / "images" / f"{case_id}{case.suffix}"
    image.parent.mkdir(parents=True)
    case.write(image)
    _mask(root / "masks" / f"{case_id}.png", size=case.mask_size)
    _grey(root / "images" / "good.png", _ramp8())
    _mask(root / "masks" / "good.png")
    return case, image, root


def _chain(mask_keys=("lung",), allow_any: bool = False):
    return Compose(
        [
            LoadCXRImaged(keys=["image", *mask_keys]),
            ScaleByBitDepthd(keys="image"),
            BinarizeMaskd(keys=list(mask_keys), allow_any=allow_any),
        ]
    )


def _load_error(chain, item: dict) -> DatasetError:
    """The DatasetError a transform chain raised (MONAI's Compose wraps it in ``RuntimeError(applying ...)``)."""
    with pytest.raises(Exception) as info:
        chain(item)
    err: BaseException | None = info.value
    while err is not None and not isinstance(err, DatasetError):
        err = err.__cause__
    assert isinstance(err, DatasetError), repr(info.value)
    return err


def _assert_names(err: BaseException, path: Path, pattern: str) -> None:
    message = str(err)
    assert str(path) in message or path.name in message, message
    assert re.search(pattern, message), message


def _prepare(root: Path, run: Path, **kwargs) -> tuple[set[str], dict[str, str], dict]:
    """prepare_datalist on ``root``: the images of its datalist, fingerprint.json's skips and the fingerprint."""
    content = prepare_datalist(str(run), dataset_dir=str(root), task="lung", **kwargs)
    fp = json.loads((run / "fingerprint.json").read_text())
    items = {i["image"] for section in ("training", "validation", "test") for i in content.get(section) or []}
    return items, {s["path"]: s["reason"] for s in fp["skipped"]}, fp


@pytest.mark.parametrize("case_id", list(IMAGE_CASES))
def test_image_input(tmp_path, case_id):
    case, image, root = _image_case(tmp_path, case_id)
    mask = root / "masks" / f"{case_id}.png"

    # index: detected as image/mask pairs; a bad file is a reported skip, the index carries on
    result = index_dataset(root)
    assert result.source == "image_mask_pairs"
    kept = {r.image for r in result.records}
    skipped = {s.path: s.reason for s in result.skipped}
    assert str(root / "images" / "good.png") in kept
    if case.error is not None:
        assert str(image) in skipped and str(image) not in kept
        assert re.search(case.error, skipped[str(image)]), skipped[str(image)]
    else:
        assert str(image) in kept, skipped
        rules = compute_fingerprint(result, progress=False)["bit_depth_rule"]
        assert rules.get(case.rule, 0) >= 1 and sum(rules.values()) == 2, rules

    # prepare: what train / evaluate run; the skip is reported in fingerprint.json
    items, skips, fp = _prepare(root, tmp_path / "run")
    assert str(root / "images" / "good.png") in items
    if case.error is not None:
        assert str(image) not in items and re.search(case.error, skips[str(image)]), skips
    else:
        assert str(image) in items and fp["bit_depth_rule"].get(case.rule, 0) >= 1, (skips, fp["bit_depth_rule"])

    # load: the bundles' transform chain
    chain = _chain()
    if case.error is not None:
        _assert_names(_load_error(chain, {"image": str(image), "lung": str(mask)}), image, case.error)
    else:
        out = chain({"image": str(image), "lung": str(mask)})
        img = out["image"]
        assert img.meta["bit_depth_rule"] == case.rule
        assert 0.0 <= float(img.min()) and float(img.max()) <= 1.0
        if case.check is not None:
            case.check(img)

    # predict: the per-file boundary
    refusal = case.error or case.predict_error
    if refusal is not None:
        with pytest.raises((DatasetError, OSError)) as err:
            read_input(image)
        _assert_names(err.value, image, refusal)
    else:
        array, meta, _ = read_input(image)
        assert meta["bit_depth_rule"] == case.rule and array.shape == (S, S)


def test_explicit_settings_replace_the_rules(tmp_path):
    """12-bit data in a 16-bit PNG without sBIT, and a float TIFF of known range, read with explicit settings."""
    png = _grey(tmp_path / "a.png", RAMP12)
    tif = _grey(tmp_path / "b.tif", np.linspace(-1.5, 3.25, S * S, dtype=np.float32).reshape(S, S))
    _mask(tmp_path / "m.png")
    out = Compose([LoadCXRImaged(keys="image", bit_depth=12), ScaleByBitDepthd(keys="image")])({"image": str(png)})
    assert out["image"].meta["bit_depth_rule"] == "explicit"
    _is_12bit_ramp(out["image"])
    load = Compose([LoadCXRImaged(keys="image", float_range=(-1.5, 3.25)), ScaleByBitDepthd(keys="image")])
    img = load({"image": str(tif)})["image"]
    assert img.meta["bit_depth_rule"] == "explicit" and float(img.min()) == 0.0 and float(img.max()) == 1.0


# ------------------------------------------------------------------------------------------- mask cases

# (writer of the lung mask, regex of the error or None for a good mask, option that handles it)
MASK_CASES = {
    "mask_0_255": (lambda p: _mask(p), None),
    "mask_0_1": (lambda p: _mask(p, value=1), None),
    "mask_empty": (lambda p: _mask(p, value=0), None),
    "mask_1bit": (lambda p: Image.fromarray(np.asarray(Image.open(_mask(p))) > 0).save(p), None),
    "mask_grey_rgb": (lambda p: _grey(p, np.stack([np.asarray(Image.open(_mask(p)))] * 3, -1)), None),
    "mask_three_level_127": (
        lambda p: _grey(p, np.where(np.asarray(Image.open(_mask(p))) > 0, 255, 127).astype(np.uint8)),
        r"\[127, 255\]|127",
    ),
    "mask_red_rgb": (lambda p: _mask(p, rgb=True), r"76.*RGB|RGB.*76|values \[0, 76\]"),
    "mask_16bit": (lambda p: _mask(p, value=65535, dtype=np.uint16), "65535"),
    "mask_jpeg": (lambda p: _grey(p, np.pad(np.full((S - 11, S - 11), 255, np.uint8), (5, 6)), quality=50), "values"),
    "mask_other_size": (lambda p: _mask(p, size=S // 2), "does not match image"),
    "mask_truncated": (lambda p: p.write_bytes(_mask(p).read_bytes()[:50]), "truncat|cannot"),
    "mask_zero_byte": (lambda p: p.write_bytes(b""), "zero-byte|empty"),
}


@pytest.mark.parametrize("case_id", list(MASK_CASES))
def test_mask_input(tmp_path, case_id):
    write, error = MASK_CASES[case_id]
    root = tmp_path / "ds"
    image = _grey(root / "images" / f"{case_id}.png", _ramp8())
    suffix = ".jpg" if case_id == "mask_jpeg" else ".png"
    mask = root / "masks" / f"{case_id}{suffix}"
    mask.parent.mkdir(parents=True)
    write(mask)
    _grey(root / "images" / "good.png", _ramp8())
    _mask(root / "masks" / "good.png")

    result = index_dataset(root)
    kept = {r.image: r for r in result.records}
    skipped = {s.path: s.reason for s in result.skipped}
    assert str(root / "images" / "good.png") in kept
    if error is None:
        assert str(image) in kept, skipped
        out = _chain()({"image": str(image), "lung": str(mask)})
        lung = out["lung"]
        assert set(torch.unique(lung).tolist()) <= {0.0, 1.0} and lung.shape == (1, S, S)
        expected = np.asarray(Image.open(mask).convert("L")) > 0
        np.testing.assert_array_equal(np.asarray(lung[0]) > 0, expected)
        return

    assert str(image) in skipped and str(image) not in kept
    reason = skipped[str(image)]
    assert re.search(error, reason), reason
    items, skips, _ = _prepare(root, tmp_path / "run")
    assert str(image) not in items and re.search(error, skips[str(image)]), skips
    if case_id == "mask_other_size":
        return  # the loader pairs no sizes; the index refused the record, which the bundles train on
    err = _load_error(_chain(), {"image": str(image), "lung": str(mask)})
    assert str(mask) in str(err), err
    if case_id in ("mask_three_level_127", "mask_red_rgb", "mask_16bit", "mask_jpeg"):
        # the explicit option: index with mask_values="any", binarize at half the maximum
        loose = index_dataset(root, mask_values="any")
        assert str(image) in {r.image for r in loose.records}
        assert str(image) in _prepare(root, tmp_path / "run_any", mask_values="any")[0]
        lung = _chain(allow_any=True)({"image": str(image), "lung": str(mask)})["lung"]
        assert set(torch.unique(lung).tolist()) == {0.0, 1.0}


def test_three_level_masks_are_an_explicit_option(tmp_path):
    root = tmp_path / "ds"
    _grey(root / "images" / "a.png", _ramp8())
    levels = np.zeros((S, S), np.uint8)
    levels[4:28, 4:28], levels[10:20, 10:20] = 127, 255
    _grey(root / "masks" / "a.png", levels)
    assert index_dataset(root).records == []
    assert len(index_dataset(root, mask_values="three_level").records) == 1


# --------------------------------------------------------------------------------------- layout cases


def test_images_lung_masks_infection_masks_is_detected(tmp_path):
    root = tmp_path / "ds"
    for name in ("a.png", "b.png"):
        _grey(root / "images" / name, _ramp8())
        _mask(root / "lung_masks" / name)
        _mask(root / "infection_masks" / name)
    assert detect_layout(root) == "image_mask_pairs"
    result = index_dataset(root)
    assert len(result.records) == 2 and all(r.infection_mask for r in result.records)
    assert all("/lung_masks/" in r.lung_mask for r in result.records)


def _flat(root: Path, rows: list[list[str]], files: list[str] | None = None) -> Path:
    for name in files if files is not None else [r[0] for r in rows]:
        _grey(root / "images" / name, _ramp8())
        _mask(root / "lung_masks" / name)
    with (root / "manifest.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "class", "split"])
        writer.writerows(rows)
    return root


GOOD_ROWS = [["a.png", "COVID-19", "Train"], ["b.png", "Normal", "Val"], ["c.png", "Non-COVID", "Test"]]

# (manifest rows, files written or None for every row's file, regex of the error or None)
MANIFEST_CASES = {
    "manifest_good": (GOOD_ROWS, None, None),
    "manifest_no_splits_at_all": ([[n, c, ""] for n, c, _ in GOOD_ROWS], None, None),
    "manifest_empty_split_cell": (GOOD_ROWS[:2] + [["c.png", "Normal", ""]], None, r"line 4: empty split cell"),
    "manifest_unknown_class": (GOOD_ROWS[:2] + [["c.png", "Pneumonia", "Test"]], None, r"line 4: c.png has class"),
    "manifest_bad_split": (GOOD_ROWS[:2] + [["c.png", "Normal", "holdout"]], None, r"line 4: c.png has split"),
    "manifest_duplicate_row": (GOOD_ROWS + [GOOD_ROWS[0]], None, r"line 5: a.png is listed twice"),
    "manifest_missing_file": (GOOD_ROWS, ["a.png", "b.png"], r"c.png"),
}


@pytest.mark.parametrize("case_id", list(MANIFEST_CASES))
def test_manifest_input(tmp_path, case_id):
    rows, files, error = MANIFEST_CASES[case_id]
    root = _flat(tmp_path / "flat", rows, files)
    assert detect_layout(root) == "covidqu_flat"
    if error is not None:
        for entry in (lambda: index_dataset(root), lambda: _prepare(root, tmp_path / "run")):
            with pytest.raises(DatasetError, match=error) as err:
                entry()
            assert "manifest.csv" in str(err.value) or "c.png" in str(err.value)
        return
    result = index_dataset(root)
    assert len(result.records) == 3
    items = _prepare(root, tmp_path / "run")[0]
    assert items == {str(root / "images" / r[0]) for r in rows}
    splits = {r.source_split for r in result.records}
    assert splits == ({None} if case_id == "manifest_no_splits_at_all" else {"train", "val", "test"})


def test_partial_source_split_through_prepare(tmp_path):
    """The CLI's library function refuses a half-filled source split instead of switching to ratios."""
    from monaicxr.data.prepare import prepare_datalist
    from monaicxr.data.records import CXRRecord
    from monaicxr.data.splits import resolve_split_mode

    recs = [CXRRecord(id=f"r{i}", image=f"/x/{i}.png", source_split=s) for i, s in enumerate(["train", "val", None])]
    with pytest.raises(DatasetError, match="r2"):
        resolve_split_mode(recs, "auto")
    root = _flat(tmp_path / "flat", GOOD_ROWS[:2] + [["c.png", "Normal", ""]])
    with pytest.raises(DatasetError, match="line 4"):
        prepare_datalist(str(tmp_path / "run"), dataset_dir=str(root), task="lung")


# ---------------------------------------------------------------------------------------- COCO / Darwin


def _coco(root: Path, segmentation, raw: str | None = None) -> Path:
    _grey(root / "images" / "p1.png", _ramp8())
    content = {
        "images": [{"id": 1, "file_name": "p1.png", "width": S, "height": S}],
        "categories": [{"id": 1, "name": "Lungs"}],
        "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "segmentation": segmentation}],
    }
    (root / "annotations.json").write_text(raw if raw is not None else json.dumps(content))
    return root


SQUARE = [4, 4, 28, 4, 28, 28, 4, 28]
COCO_CASES = {
    "coco_good": (lambda r: _coco(r, [SQUARE]), None),
    "coco_nan": (lambda r: _coco(r, [[4, 4, float("nan"), 4, 28, 28, 4, 28]]), r"annotation 7: .*NaN"),
    "coco_infinite": (lambda r: _coco(r, [[4, 4, float("inf"), 4, 28, 28, 4, 28]]), r"annotation 7: .*infinite"),
    "coco_string_coordinates": (lambda r: _coco(r, [["4", "4", "28", "4", "28", "28"]]), r"annotation 7: .*numbers"),
    "coco_odd_coordinates": (lambda r: _coco(r, [[4, 4, 28]]), r"annotation 7: .*flat list"),
    "coco_truncated_json": (
        lambda r: _coco(
            r, None, raw=json.dumps({"images": [{"id": 1, "file_name": "p1.png"}], "annotations": []})[:30]
        ),
        r"annotations.json: not valid JSON",
    ),
}


@pytest.mark.parametrize("case_id", list(COCO_CASES))
def test_coco_input(tmp_path, case_id):
    write, error = COCO_CASES[case_id]
    root = write(tmp_path / "coco")
    if error is not None:
        for entry in (lambda: index_dataset(root), lambda: _prepare(root, tmp_path / "run")):
            with pytest.raises(DatasetError, match=error) as err:
                entry()
            assert "annotations.json" in str(err.value)
        return
    result = index_dataset(root, out_dir=tmp_path / "masks")
    assert result.source == "coco" and len(result.records) == 1
    lung = np.asarray(Image.open(result.records[0].lung_mask))
    assert lung.shape == (S, S) and lung[16, 16] == 255 and lung[0, 0] == 0


@pytest.mark.parametrize("x", [pytest.param("nan", id="darwin_nan"), pytest.param("'a'", id="darwin_string")])
def test_darwin_bad_coordinates(tmp_path, x):
    root = tmp_path / "darwin"
    _grey(root / "images" / "p1.png", _ramp8())
    value = float("nan") if x == "nan" else "a"
    points = [{"x": 4, "y": 4}, {"x": value, "y": 4}, {"x": 28, "y": 28}]
    ann = {
        "image": {"filename": "p1.png", "width": S, "height": S},
        "annotations": [{"name": "Lungs", "polygon": {"path": points}}],
    }
    (root / "annotations").mkdir()
    (root / "annotations" / "p1.json").write_text(json.dumps(ann))
    with pytest.raises(DatasetError, match=r"p1.json.*(NaN|numeric)"):
        index_dataset(root)


# ---------------------------------------------------------------------------------------------- checkpoints


def _net(width: int = 4) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(1, width, 3), torch.nn.ReLU(), torch.nn.Conv2d(width, 1, 1))


CHECKPOINT_CASES = {
    "checkpoint_good": (lambda p: torch.save({"network": _net().state_dict()}, p), None),
    "checkpoint_truncated": (
        lambda p: (torch.save({"network": _net().state_dict()}, p), p.write_bytes(p.read_bytes()[:100])),
        "truncated|corrupt|cannot",
    ),
    "checkpoint_text": (lambda p: p.write_text("not a checkpoint\n"), "not a checkpoint|corrupt|cannot"),
    "checkpoint_another_network": (lambda p: torch.save({"network": _net(8).state_dict()}, p), "shape|another"),
}


@pytest.mark.parametrize("case_id", list(CHECKPOINT_CASES))
def test_checkpoint_input(tmp_path, case_id):
    write, error = CHECKPOINT_CASES[case_id]
    path = tmp_path / f"{case_id}.pt"
    write(path)
    net = _net()
    if error is None:
        assert set(load_checkpoint(path, expected={"network": net})) == {"network"}
        return
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, expected={"network": net})
    _assert_names(err.value, path, error)


# ------------------------------------------------------------------------- the explicit mask option, end to end


def _odd_mask_dataset(root: Path) -> Path:
    """One good pair and one pair whose lung mask is 16-bit 0/65535 (refused without ``mask_values``)."""
    _grey(root / "images" / "good.png", _ramp8())
    _mask(root / "masks" / "good.png")
    _grey(root / "images" / "wide.png", _ramp8())
    _mask(root / "masks" / "wide.png", value=65535, dtype=np.uint16)
    return root


def test_mask_values_through_the_cli(tmp_path):
    from monaicxr.cli.main import main

    root = _odd_mask_dataset(tmp_path / "ds")
    for option, expected in (([], {"good"}), (["--mask-values", "any"], {"good", "wide"})):
        out = tmp_path / f"out{len(option)}"
        assert main(["index", str(root), "--out", str(out), *option]) == 0
        content = json.loads((out / "datalist.json").read_text())
        kept = {Path(i["image"]).stem for section in ("training", "validation", "test") for i in content[section]}
        assert kept == expected
    assert main(["fingerprint", str(root), "--out", str(tmp_path / "fp.json"), "--mask-values", "any"]) == 0
    assert json.loads((tmp_path / "fp.json").read_text())["num_skipped"] == 0


def test_mask_values_through_the_bundle_config(tmp_path):
    """``mask_values`` in the unet bundle's train.json reaches prepare_datalist and the mask binarization."""
    from monai.bundle import ConfigParser

    root = _odd_mask_dataset(tmp_path / "ds")
    bundle = Path(__file__).resolve().parents[2] / "bundles" / "unet"
    for value, expected in (("binary", {"good"}), ("any", {"good", "wide"})):
        parser = ConfigParser()
        parser.read_config(str(bundle / "configs" / "train.json"))
        parser.update({"bundle_root": str(bundle), "dataset_dir": str(root), "mask_values": value})
        parser["output_dir"] = str(tmp_path / f"run_{value}")
        data = parser.get_parsed_content("data")
        kept = {Path(i["image"]).stem for section in ("training", "validation", "test") for i in data[section]}
        assert kept == expected, value
        binarize = next(
            t for t in parser.get_parsed_content("train#deterministic_transforms") if isinstance(t, BinarizeMaskd)
        )
        assert binarize.inner.allow_any is (value == "any")
    wide = {"image": str(root / "images" / "wide.png"), "lung": str(root / "masks" / "wide.png")}
    assert set(torch.unique(_chain(allow_any=True)(wide)["lung"]).tolist()) == {0.0, 1.0}


def test_mask_values_on_a_layout_without_masks_is_an_error(tmp_path):
    for name in ("a.png", "b.png"):
        _grey(tmp_path / "cf" / "COVID" / name, _ramp8())
        _grey(tmp_path / "cf" / "Normal" / name, _ramp8())
    with pytest.raises(DatasetError, match=r"'class_folders' layout's indexer takes no \['mask_values'\]"):
        prepare_datalist(str(tmp_path / "run"), dataset_dir=str(tmp_path / "cf"), task="none", mask_values="any")


# ------------------------------------------------------------------- image cases through the predict workflow


@pytest.fixture(scope="module")
def predicted(tmp_path_factory) -> dict[str, dict]:
    """``monaicxr predict`` (in process, the shipped lung weights) on one folder of every image case."""
    from monaicxr.workflows.predict import predict

    folder = tmp_path_factory.mktemp("predict_corpus")
    (folder / "inputs").mkdir()
    for case_id, case in IMAGE_CASES.items():
        case.write(folder / "inputs" / f"{case_id}{case.suffix}")
    summary = predict(folder / "inputs", folder / "out", models="lung", report=False, progress=False)
    assert summary["n_found"] == len(IMAGE_CASES), summary
    with open(summary["predictions_csv"], newline="") as f:
        rows = {r["file"]: r for r in csv.DictReader(f)}
    return {"rows": rows, "summary": summary, "out": folder / "out"}


@pytest.mark.parametrize("case_id", list(IMAGE_CASES))
def test_image_input_through_predict(predicted, case_id):
    case = IMAGE_CASES[case_id]
    row = predicted["rows"][f"{case_id}{case.suffix}"]
    refusal = case.error or case.predict_error
    if refusal is not None:
        assert row["status"] == "skipped" and re.search(refusal, row["reason"]), row
        assert {"file": row["file"], "reason": row["reason"]} in predicted["summary"]["skipped"]
        return
    assert row["status"] == "predicted", row
    assert (int(row["width"]), int(row["height"])) == (S, S)
    mask = np.asarray(Image.open(predicted["out"] / row["lung_mask"]))
    assert mask.shape == (S, S) and set(np.unique(mask).tolist()) <= {0, 255}
    assert 0.0 <= float(row["lung_area_fraction"]) <= 1.0


# (writer of the weights file, regex of the error); the weights replace the lung model's models/model.pt
PREDICT_CHECKPOINTS = {
    "checkpoint_truncated": CHECKPOINT_CASES["checkpoint_truncated"][0],
    "checkpoint_text": CHECKPOINT_CASES["checkpoint_text"][0],
    "checkpoint_another_network": lambda p: torch.save({"model": _net().state_dict()}, p),
    "checkpoint_wrong_key": lambda p: torch.save({"network": _net().state_dict()}, p),
}


@pytest.mark.parametrize("case_id", list(PREDICT_CHECKPOINTS))
def test_checkpoint_input_through_predict(tmp_path, case_id):
    from monaicxr.workflows.predict import ModelSpec, predict

    weights = tmp_path / f"{case_id}.pt"
    PREDICT_CHECKPOINTS[case_id](weights)
    _grey(tmp_path / "in" / "a.png", _ramp8())
    spec = ModelSpec(role="lung", bundle="bundles/unet", weights=str(weights))
    pattern = {
        "checkpoint_truncated": "truncated|corrupt",
        "checkpoint_text": "not a checkpoint",
        "checkpoint_another_network": "another network",
        "checkpoint_wrong_key": r"another network.*unknown \(e.g. \['network'\]\)",  # read as a bare state_dict
    }[case_id]
    with pytest.raises(CheckpointError) as err:
        predict(tmp_path / "in", tmp_path / "out", models=[spec], report=False, progress=False)
    _assert_names(err.value, weights, pattern)
    assert not (tmp_path / "out").exists(), "predict must fail before it writes anything"


# -------------------------------------------------------------------- image cases through MONAI Label's /infer


def _label_helpers():
    """tests/label/label_server.py, loaded by path (the test folders are not packages)."""
    path = Path(__file__).resolve().parents[1] / "label" / "label_server.py"
    spec = importlib.util.spec_from_file_location("label_server", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def label_server(tmp_path_factory):
    """One read-only MONAI Label server (no token, loopback, default limits) on a folder of one good image."""
    pytest.importorskip("monailabel", reason="MONAI Label is not installed; see docs/monailabel.md")
    helpers = _label_helpers()

    root = tmp_path_factory.mktemp("label_corpus")
    (root / "studies").mkdir()
    _grey(root / "studies" / "good.png", _ramp8())
    server = helpers.Server("corpus", root, [], {}, None)
    try:
        server.wait_ready(time.monotonic() + helpers.STARTUP_S)
        yield server
    finally:
        server.stop()


@pytest.mark.label
@pytest.mark.parametrize("case_id", list(IMAGE_CASES))
def test_image_input_through_label_infer(tmp_path, label_server, case_id):
    case = IMAGE_CASES[case_id]
    path = tmp_path / f"{case_id}{case.suffix}"
    case.write(path)
    name = path.name
    r = label_server.request(
        "POST", "/infer/segmentation_lung?output=image", files={"file": (name, path.read_bytes())}, timeout=120
    )
    if case.suffix in NIFTI_SUFFIXES:  # the server takes the suffixes its datastore lists; NIfTI is not one
        assert r.status_code == 415 and "expected a file name ending in one of" in r.json()["detail"], r.text[:300]
    elif case.error is not None:
        assert r.status_code == 415, (r.status_code, r.text[:300])
        detail = r.json()["detail"]
        assert "the uploaded file" in detail and re.search(case.error, detail), detail
        assert str(label_server.tmp) not in detail
    else:
        assert r.status_code == 200, (r.status_code, r.text[:300])
        side = 1 if case_id == "one_by_one_png" else S
        mask = np.asarray(Image.open(io.BytesIO(r.content)))
        assert mask.shape == (side, side), mask.shape
    assert label_server.temp_files(expected=[]) == []
