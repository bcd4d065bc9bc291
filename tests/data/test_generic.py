"""Tests for monaicxr.data.generic: class folders (with or without split folders) and image / mask pairs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from layouts import (
    make_class_folders,
    make_pairs,
    write_image,
    write_mask,
    write_text,
    write_truncated,
    write_zero_byte,
)

from monaicxr.data.generic import index_class_folders, index_image_mask_pairs
from monaicxr.data.records import DatasetError


def test_class_folders(tmp_path):
    make_class_folders(tmp_path, {"normal": 2, "covid": 3, "empty": 0})
    write_image(tmp_path / "covid" / "x.jpg")
    write_text(tmp_path / "labels.csv", "a,b\n")
    result = index_class_folders(tmp_path)
    assert result.source == "class_folders"
    assert result.classes == ("covid", "empty", "normal")
    assert result.totals() == {"covid": 4, "normal": 2}
    assert {r.id for r in result.records} >= {"covid/covid_0", "covid/x", "normal/normal_1"}
    assert not result.has_source_split()
    assert [(Path(s.path).name, s.reason) for s in result.skipped] == [
        ("labels.csv", "metadata spreadsheet, not an image")
    ]


def test_class_folders_with_splits(tmp_path):
    make_class_folders(tmp_path, {"a": 2, "b": 1}, split="train")
    make_class_folders(tmp_path, {"a": 1, "c": 1}, split="Val")
    (tmp_path / "extra").mkdir()
    result = index_class_folders(tmp_path, verify=False)
    assert result.classes == ("a", "b", "c")
    assert Counter(r.source_split for r in result.records) == {"train": 3, "val": 2}
    assert "Val/c/c_0" in {r.id for r in result.records}
    assert [s.reason for s in result.skipped] == ["not a split folder (expected train, val or test)"]


def test_class_folders_bad_files(tmp_path):
    make_class_folders(tmp_path, {"a": 1})
    write_zero_byte(tmp_path / "a" / "zero.png")
    write_truncated(tmp_path / "a" / "cut.png")
    write_text(tmp_path / "a" / "text.png")
    (tmp_path / "a" / "sub").mkdir()
    result = index_class_folders(tmp_path)
    assert [r.id for r in result.records] == ["a/a_0"]
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert reasons["zero.png"] == "zero-byte file"
    assert reasons["cut.png"].startswith("truncated image")
    assert reasons["text.png"].startswith("not a decodable image")
    assert reasons["sub"].startswith("sub-folder")


def test_image_mask_pairs(tmp_path):
    make_pairs(tmp_path, ["a.png", "b.jpg"], infection=True)
    result = index_image_mask_pairs(tmp_path)
    assert result.source == "image_mask_pairs" and result.classes == ()
    by_id = {r.id: r for r in result.records}
    assert set(by_id) == {"images/a", "images/b"}
    assert by_id["images/b"].lung_mask == str(tmp_path / "masks" / "b.png")
    assert by_id["images/b"].infection_mask == str(tmp_path / "infection_masks" / "b.png")
    assert by_id["images/a"].class_name is None


def test_image_mask_pairs_missing_and_mismatched_masks(tmp_path):
    make_pairs(tmp_path, ["a.png", "b.png"])
    write_image(tmp_path / "images" / "nomask.png")
    write_mask(tmp_path / "masks" / "orphan.png")
    write_mask(tmp_path / "masks" / "b.png", (8, 8))
    with pytest.raises(DatasetError, match="nomask.png"):
        index_image_mask_pairs(tmp_path)
    result = index_image_mask_pairs(tmp_path, allow_missing_masks=True)
    assert [r.id for r in result.records] == ["images/a"]
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert reasons["nomask.png"].startswith("no lung mask")
    assert reasons["orphan.png"] == "lung mask without an image"
    assert reasons["b.png"] == "lung mask 8x8 does not match image 16x16"


@pytest.mark.parametrize("index", [index_class_folders, index_image_mask_pairs])
@pytest.mark.parametrize("make", ["missing", "empty", "other"])
def test_bad_root(tmp_path, index, make):
    root = tmp_path / "data"
    if make != "missing":
        root.mkdir()
    if make == "other":
        write_text(root / "readme.txt")
    with pytest.raises(DatasetError, match=str(root)):
        index(root)
