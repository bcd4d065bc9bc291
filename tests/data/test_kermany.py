"""Tests for monaicxr.data.kermany: chest_xray/{train,val,test}/{NORMAL,PNEUMONIA} with patient groups."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from layouts import KERMANY_FILES, make_kermany, write_text, write_truncated

from monaicxr.data.kermany import KERMANY_CLASSES, index_kermany, patient_id
from monaicxr.data.records import DatasetError

PATIENT_IDS = [
    ("person1_bacteria_1", "person1"),
    ("person1000_virus_1681", "person1000"),
    ("IM-0115-0001", "IM-0115"),
    ("NORMAL2-IM-1427-0001", "NORMAL2-IM-1427"),
    ("scan_17", None),
]


@pytest.mark.parametrize("stem, expected", PATIENT_IDS)
def test_patient_id(stem, expected):
    assert patient_id(stem) == expected


def test_index(tmp_path):
    make_kermany(tmp_path)
    result = index_kermany(tmp_path)
    assert result.source == "kermany" and result.classes == KERMANY_CLASSES
    assert len(result.records) == sum(len(v) for v in KERMANY_FILES.values()) and not result.skipped
    assert Counter(r.source_split for r in result.records) == {"train": 6, "val": 2, "test": 2}
    by_id = {r.id: r for r in result.records}
    rec = by_id["train/PNEUMONIA/person1_bacteria_2"]
    assert rec.class_name == "PNEUMONIA" and rec.group == "person1"
    assert rec.image == str(tmp_path / "train" / "PNEUMONIA" / "person1_bacteria_2.jpeg")
    assert by_id["train/NORMAL/IM-0115-0001"].group == by_id["train/NORMAL/IM-0115-0002"].group == "IM-0115"
    assert by_id["train/NORMAL/NORMAL2-IM-1427-0001"].group == "NORMAL2-IM-1427"


def test_kaggle_archive_nesting_and_macos_litter(tmp_path):
    outer = make_kermany(tmp_path / "chest_xray")
    make_kermany(outer / "chest_xray")  # the archive's second copy
    write_text(outer / "__MACOSX" / "train" / "._x.jpeg")
    write_text(outer / "train" / "NORMAL" / ".DS_Store")
    write_text(outer / "train" / "NORMAL" / "._IM-0115-0001.jpeg")
    for root in (tmp_path, outer):
        result = index_kermany(root, verify=False)
        assert result.root == str(outer)
        assert len(result.records) == 10
        assert [(Path(s.path).name, s.reason.split(";")[0]) for s in result.skipped] == [
            ("chest_xray", "nested copy of the layout (Kaggle archive)")
        ]
    # only the nested copy (the outer folder holds nothing but it and __MACOSX)
    only_nested = tmp_path / "only"
    make_kermany(only_nested / "chest_xray" / "chest_xray")
    write_text(only_nested / "chest_xray" / "__MACOSX" / "x")
    result = index_kermany(only_nested, verify=False)
    assert result.root == str(only_nested / "chest_xray" / "chest_xray") and not result.skipped


def test_bad_files_are_skipped(tmp_path):
    make_kermany(tmp_path)
    write_truncated(tmp_path / "test" / "NORMAL" / "IM-0002-0001.jpeg")
    write_text(tmp_path / "test" / "NORMAL" / "notes.txt")
    write_text(tmp_path / "train" / "PNEUMONIA" / "person9_virus_9.jpeg")
    (tmp_path / "train" / "COVID").mkdir()
    result = index_kermany(tmp_path)
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert reasons["IM-0002-0001.jpeg"].startswith("truncated image")
    assert reasons["notes.txt"].startswith("not an image file")
    assert reasons["person9_virus_9.jpeg"].startswith("not a decodable image")
    assert reasons["COVID"].startswith("not a class folder")
    assert len(result.records) == 10


@pytest.mark.parametrize("make", ["missing", "empty", "other"])
def test_bad_root(tmp_path, make):
    root = tmp_path / "chest_xray"
    if make != "missing":
        root.mkdir()
    if make == "other":
        write_text(root / "train" / "x.txt")
    with pytest.raises(DatasetError, match=str(root)):
        index_kermany(root)
