"""Tests for monaicxr.data.covidqu: the Kaggle COVID-QU-Ex layout and the flat copy with a manifest."""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from pathlib import Path

import pytest
from layouts import (
    make_covidqu,
    make_covidqu_flat,
    make_covidqu_part,
    write_image,
    write_mask,
    write_text,
    write_truncated,
    write_zero_byte,
)

from monaicxr.data.covidqu import COVIDQU_CLASSES, index_covidqu, index_covidqu_flat
from monaicxr.data.records import DatasetError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "covidqu_infection"

INFECTION = "Infection Segmentation Data"
LUNG = "Lung Segmentation Data"


# --- Kaggle layout --------------------------------------------------------------------------------------------


def test_top_folder_indexes_infection_part(tmp_path):
    make_covidqu(tmp_path)
    result = index_covidqu(tmp_path)
    assert result.source == "covidqu"
    assert result.classes == COVIDQU_CLASSES
    assert result.root == str(tmp_path / INFECTION)
    assert len(result.records) == 2 * 3 * 2 and not result.skipped
    assert Counter(r.source_split for r in result.records) == {"train": 6, "val": 6}
    rec = next(r for r in result.records if r.id == "Train/COVID-19/images/covid-19_train_0")
    assert rec.image == str(tmp_path / INFECTION / "Train" / "COVID-19" / "images" / "covid-19_train_0.png")
    assert rec.lung_mask == str(tmp_path / INFECTION / "Train" / "COVID-19" / "lung masks" / "covid-19_train_0.png")
    assert rec.infection_mask.endswith("infection masks/covid-19_train_0.png")
    assert rec.class_name == "COVID-19" and rec.source == "covidqu"
    assert all(Path(r.image).is_absolute() for r in result.records)


def test_lung_subset(tmp_path):
    make_covidqu(tmp_path)
    result = index_covidqu(tmp_path, subset="lung", verify=False)
    assert len(result.records) == 3 * 3 * 2
    assert {r.source_split for r in result.records} == {"train", "val", "test"}
    assert all(r.infection_mask is None and r.lung_mask for r in result.records)
    with pytest.raises(DatasetError, match="unknown COVID-QU-Ex subset"):
        index_covidqu(tmp_path, subset="lungs")


@pytest.mark.parametrize("nested", [False, True], ids=["part_folder", "kaggle_double_nesting"])
def test_root_at_part_folder(tmp_path, nested):
    part = tmp_path / INFECTION / INFECTION if nested else tmp_path / INFECTION
    make_covidqu_part(part, per_class=1)
    for root in (tmp_path, tmp_path / INFECTION):
        result = index_covidqu(root, verify=False)
        assert result.root == str(part)
        assert {r.id for r in result.records} >= {"Train/Normal/images/normal_train_0"}
    with pytest.raises(DatasetError, match="no 'Lung Segmentation Data'"):
        index_covidqu(tmp_path, subset="lung")


def test_empty_class_is_listed(tmp_path):
    part = make_covidqu_part(tmp_path / INFECTION, per_class=1)
    for folder in (part / "Train" / "Normal", part / "Val" / "Normal"):
        shutil.rmtree(folder)
        for sub in ("images", "lung masks", "infection masks"):
            (folder / sub).mkdir(parents=True)
    result = index_covidqu(tmp_path)
    assert result.classes == COVIDQU_CLASSES
    assert result.totals() == {"COVID-19": 2, "Non-COVID": 2}


def test_bad_files_are_skipped_with_reasons(tmp_path):
    part = make_covidqu_part(tmp_path / INFECTION, per_class=1)
    folder = part / "Train" / "COVID-19"
    bad = {
        "zero.png": write_zero_byte,
        "cut.png": write_truncated,
        "text.png": write_text,
        "small_mask.png": write_image,
    }
    for name, writer in bad.items():
        writer(folder / "images" / name)
        write_mask(folder / "lung masks" / name, (8, 8) if name == "small_mask.png" else (16, 16))
        write_mask(folder / "infection masks" / name)
    write_text(folder / "images" / "notes.txt")
    result = index_covidqu(tmp_path)
    assert len(result.records) == 6
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert reasons["zero.png"] == "zero-byte file"
    assert reasons["cut.png"].startswith("truncated image")
    assert reasons["text.png"].startswith("not a decodable image")
    assert reasons["small_mask.png"] == "lung mask 8x8 does not match image 16x16"
    assert reasons["notes.txt"].startswith("not an image file")


def test_missing_mask(tmp_path):
    part = make_covidqu_part(tmp_path / INFECTION, per_class=1)
    write_image(part / "Val" / "Normal" / "images" / "lonely.png")
    write_mask(part / "Val" / "Normal" / "infection masks" / "lonely.png")
    with pytest.raises(DatasetError, match="lonely.png"):
        index_covidqu(tmp_path)
    result = index_covidqu(tmp_path, allow_missing_masks=True)
    assert len(result.records) == 6
    assert [Path(s.path).name for s in result.skipped] == ["lonely.png"]
    assert result.skipped[0].reason.startswith("no lung mask")


@pytest.mark.parametrize("make", ["missing", "empty", "other"])
def test_bad_root(tmp_path, make):
    root = tmp_path / "data"
    if make != "missing":
        root.mkdir()
    if make == "other":
        (root / "something").mkdir()
    with pytest.raises(DatasetError, match=str(root)):
        index_covidqu(root)


# --- flat layout ----------------------------------------------------------------------------------------------

ROWS = [
    ("covid_1.png", "COVID-19", "Train"),
    ("covid_2.png", "COVID-19", "Val"),
    ("covid_3.png", "COVID-19", "Train"),
    ("non_1.png", "Non-COVID", "Train"),
    ("non_2.png", "Non-COVID", "Val"),
    ("normal_1.png", "Normal", "Train"),
]


def test_flat(tmp_path):
    make_covidqu_flat(tmp_path, ROWS, near_duplicates=[("covid_3.png", "covid_2.png"), ("non_2.png", "covid_3.png")])
    result = index_covidqu_flat(tmp_path)
    assert result.source == "covidqu_flat" and result.classes == COVIDQU_CLASSES
    assert len(result.records) == 6 and not result.skipped
    by_id = {r.id: r for r in result.records}
    assert set(by_id) == {"images/" + name[:-4] for name, _, _ in ROWS}
    rec = by_id["images/covid_2"]
    assert rec.image == str(tmp_path / "images" / "covid_2.png")
    assert rec.lung_mask == str(tmp_path / "lung_masks" / "covid_2.png")
    assert rec.infection_mask == str(tmp_path / "infection_masks" / "covid_2.png")
    assert (rec.class_name, rec.source_split) == ("COVID-19", "val")
    # the two pairs share a member, so the three files form one group
    assert {by_id[i].group for i in ("images/covid_2", "images/covid_3", "images/non_2")} == {"images/covid_2"}
    assert by_id["images/covid_1"].group is None and by_id["images/covid_1"].group_id == "images/covid_1"


def test_flat_synthetic_marker_and_no_infection_masks(tmp_path):
    make_covidqu_flat(tmp_path, ROWS, synthetic=True, infection=False)
    result = index_covidqu_flat(tmp_path, verify=False)
    assert result.source == "synthetic"
    assert all(r.source == "synthetic" and r.infection_mask is None for r in result.records)


def test_flat_unlisted_and_bad_images_are_skipped(tmp_path):
    make_covidqu_flat(tmp_path, ROWS)
    write_image(tmp_path / "images" / "extra.png")
    write_truncated(tmp_path / "images" / "covid_1.png")
    write_mask(tmp_path / "lung_masks" / "non_1.png", (8, 8))
    result = index_covidqu_flat(tmp_path)
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert reasons["extra.png"] == "not listed in manifest.csv"
    assert reasons["covid_1.png"].startswith("truncated image")
    assert reasons["non_1.png"] == "lung mask 8x8 does not match image 16x16"
    assert len(result.records) == 4


@pytest.mark.parametrize(
    "change, message",
    [
        pytest.param("missing_image", r"no image in .*images: .*covid_2\.png", id="missing_image"),
        pytest.param("missing_lung_mask", r"no lung mask .*non_1\.png", id="missing_lung_mask"),
        pytest.param("unknown_class", r"line 3: covid_2\.png has class 'COVID'", id="unknown_class"),
        pytest.param("bad_split", r"line 3: covid_2\.png has split 'Training'", id="bad_split"),
        pytest.param("no_manifest", "has no manifest.csv", id="no_manifest"),
        pytest.param("stale_near_duplicate", r"near_duplicates\.csv line 2: gone\.png is not listed", id="stale_dup"),
    ],
)
def test_flat_errors(tmp_path, change, message):
    rows = list(ROWS)
    if change == "unknown_class":
        rows[1] = ("covid_2.png", "COVID", "Val")
    if change == "bad_split":
        rows[1] = ("covid_2.png", "COVID-19", "Training")
    dups = [("gone.png", "covid_1.png")] if change == "stale_near_duplicate" else []
    make_covidqu_flat(tmp_path, rows, near_duplicates=dups)
    if change == "missing_image":
        (tmp_path / "images" / "covid_2.png").unlink()
    if change == "missing_lung_mask":
        (tmp_path / "lung_masks" / "non_1.png").unlink()
    if change == "no_manifest":
        (tmp_path / "manifest.csv").unlink()
    with pytest.raises(DatasetError, match=message):
        index_covidqu_flat(tmp_path, verify=False)


@pytest.mark.shared_data
def test_shared_covidqu_infection():
    if not (SHARED / "manifest.csv").is_file():
        pytest.skip(f"shared data not found at {SHARED} (see ../shared/data/README.md)")
    result = index_covidqu_flat(SHARED)  # decodes all 3 x 4660 PNGs: about 8 s
    with (SHARED / "manifest.csv").open(newline="") as f:
        manifest = list(csv.DictReader(f))
    assert len(result.records) == len(manifest) == 4660 and not result.skipped
    assert Counter(r.source_split for r in result.records) == {"train": 3728, "val": 932}
    assert Counter((r.source_split, r.class_name) for r in result.records) == Counter(
        (m["split"].lower(), m["class"]) for m in manifest
    )
    assert result.totals() == {"COVID-19": 2330, "Non-COVID": 1165, "Normal": 1165}
    by_name = {Path(r.image).name: r for r in result.records}
    with (SHARED / "near_duplicates.csv").open(newline="") as f:
        pairs = [(row["file_a"], row["file_b"]) for row in csv.DictReader(f)]
    assert len(pairs) == 30
    for a, b in pairs:
        assert by_name[a].group is not None and by_name[a].group == by_name[b].group, (a, b)
