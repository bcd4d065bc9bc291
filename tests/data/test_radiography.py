"""Tests for monaicxr.data.radiography: the COVID-19 Radiography Database, with and without masks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from layouts import make_radiography, write_image, write_mask, write_text, write_zero_byte

from monaicxr.data.radiography import (
    RADIOGRAPHY_CLASSES,
    RADIOGRAPHY_IMAGE_SIZE,
    RADIOGRAPHY_MASK_SIZE,
    index_radiography,
)
from monaicxr.data.records import DatasetError


def test_current_release_accepts_documented_mask_size(tmp_path):
    make_radiography(tmp_path, image_size=RADIOGRAPHY_IMAGE_SIZE, mask_size=RADIOGRAPHY_MASK_SIZE)
    result = index_radiography(tmp_path)
    assert result.source == "radiography" and result.classes == RADIOGRAPHY_CLASSES
    assert len(result.records) == 8
    assert result.totals() == dict.fromkeys(RADIOGRAPHY_CLASSES, 2)
    rec = next(r for r in result.records if r.id == "Viral Pneumonia/images/Viral Pneumonia-1")
    assert rec.image == str(tmp_path / "Viral Pneumonia" / "images" / "Viral Pneumonia-1.png")
    assert rec.lung_mask == str(tmp_path / "Viral Pneumonia" / "masks" / "Viral Pneumonia-1.png")
    assert rec.source_split is None and not result.has_source_split()
    # the metadata spreadsheets are listed as not-images
    assert sorted(Path(s.path).name for s in result.skipped) == sorted(
        f"{c}.metadata.xlsx" for c in RADIOGRAPHY_CLASSES
    )
    assert {s.reason for s in result.skipped} == {"metadata spreadsheet, not an image"}


def test_other_size_mismatch_is_skipped(tmp_path):
    make_radiography(tmp_path, classes=("COVID", "Normal"), per_class=1, image_size=(32, 32), mask_size=(32, 32))
    write_image(tmp_path / "COVID" / "images" / "odd.png", (32, 32))
    write_mask(tmp_path / "COVID" / "masks" / "odd.png", (16, 16))
    # 256 x 256 is only accepted for 299 x 299 images
    write_image(tmp_path / "Normal" / "images" / "odd256.png", (32, 32))
    write_mask(tmp_path / "Normal" / "masks" / "odd256.png", RADIOGRAPHY_MASK_SIZE)
    result = index_radiography(tmp_path)
    assert len(result.records) == 2
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert reasons["odd.png"] == "lung mask 16x16 does not match image 32x32"
    assert reasons["odd256.png"] == "lung mask 256x256 does not match image 32x32"


def test_older_release_without_masks(tmp_path):
    make_radiography(tmp_path, masks=False, image_size=(16, 16))
    write_zero_byte(tmp_path / "COVID" / "COVID-99.png")
    write_text(tmp_path / "README.md.txt")
    (tmp_path / "Other").mkdir()
    result = index_radiography(tmp_path)
    assert len(result.records) == 8
    assert all(r.lung_mask is None for r in result.records)
    assert {r.id for r in result.records} >= {"COVID/COVID-1", "Lung_Opacity/Lung_Opacity-2"}
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert reasons["COVID-99.png"] == "zero-byte file"
    assert reasons["README.md.txt"].startswith("not an image file")
    assert reasons["Other"].startswith("not a class folder")


def test_missing_and_empty_class_folders_are_listed(tmp_path):
    make_radiography(tmp_path, classes=("COVID", "Normal"), masks=False, image_size=(16, 16))
    shutil.rmtree(tmp_path / "Normal")
    (tmp_path / "Normal").mkdir()
    result = index_radiography(tmp_path)
    assert result.classes == RADIOGRAPHY_CLASSES
    assert result.totals() == {"COVID": 2}


def test_missing_mask(tmp_path):
    make_radiography(tmp_path, classes=("COVID",), per_class=1, image_size=(16, 16), mask_size=(16, 16))
    write_image(tmp_path / "COVID" / "images" / "COVID-7.png")
    with pytest.raises(DatasetError, match="COVID-7.png"):
        index_radiography(tmp_path)
    result = index_radiography(tmp_path, allow_missing_masks=True)
    assert [r.id for r in result.records] == ["COVID/images/COVID-1"]
    assert result.skipped[-1].reason.startswith("no lung mask")


@pytest.mark.parametrize("make", ["missing", "empty", "other"])
def test_bad_root(tmp_path, make):
    root = tmp_path / "data"
    if make != "missing":
        root.mkdir()
    if make == "other":
        (root / "cats").mkdir()
    with pytest.raises(DatasetError, match=str(root)):
        index_radiography(root)
