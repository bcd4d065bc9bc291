"""Tests for monaicxr.data.registry: layout detection and index_dataset."""

from __future__ import annotations

import pytest
from layouts import (
    make_class_folders,
    make_covidqu,
    make_covidqu_flat,
    make_covidqu_part,
    make_kermany,
    make_pairs,
    make_radiography,
    write_text,
)

from monaicxr.data.records import DatasetError
from monaicxr.data.registry import INDEXERS, detect_layout, index_dataset

ROWS = [("a.png", "COVID-19", "Train"), ("b.png", "Normal", "Val")]

# (builder of a layout under a folder, the layout name expected, the sub-folder to point at)
LAYOUTS = [
    pytest.param(lambda p: make_covidqu_flat(p, ROWS), "covidqu_flat", "", id="covidqu_flat"),
    pytest.param(lambda p: make_covidqu_flat(p, ROWS, synthetic=True), "covidqu_flat", "", id="synthetic"),
    pytest.param(lambda p: make_covidqu(p, per_class=1), "covidqu", "", id="covidqu_top"),
    pytest.param(
        lambda p: make_covidqu_part(p / "Lung Segmentation Data", infection=False, per_class=1),
        "covidqu",
        "Lung Segmentation Data",
        id="covidqu_part",
    ),
    pytest.param(lambda p: make_kermany(p / "chest_xray"), "kermany", "", id="kermany_above"),
    pytest.param(lambda p: make_kermany(p), "kermany", "", id="kermany"),
    pytest.param(lambda p: make_radiography(p, per_class=1, image_size=(16, 16)), "radiography", "", id="radiography"),
    pytest.param(
        lambda p: make_radiography(p, masks=False, per_class=1, image_size=(16, 16)),
        "radiography",
        "",
        id="radiography_old",
    ),
    pytest.param(lambda p: make_pairs(p, ["a.png"]), "image_mask_pairs", "", id="image_mask_pairs"),
    pytest.param(lambda p: make_class_folders(p, {"x": 1, "y": 1}), "class_folders", "", id="class_folders"),
    pytest.param(
        lambda p: make_class_folders(p, {"x": 1}, split="train"), "class_folders", "", id="class_folders_split"
    ),
    # a Normal folder under a split folder beside other classes is not Kermany (its classes are NORMAL/PNEUMONIA)
    pytest.param(
        lambda p: make_class_folders(p, {"COVID-19": 1, "Normal": 1}, split="test"),
        "class_folders",
        "",
        id="class_folders_test_split_with_normal",
    ),
    pytest.param(
        lambda p: make_class_folders(p, {"NORMAL": 1, "PNEUMONIA": 1}, split="test"), "kermany", "", id="kermany_test"
    ),
]


@pytest.mark.parametrize("build, layout, sub", LAYOUTS)
def test_detect_and_index(tmp_path, build, layout, sub):
    build(tmp_path)
    root = tmp_path / sub
    assert detect_layout(root) == layout
    result = index_dataset(root, verify=False)
    assert result.records
    assert all(s.reason == "metadata spreadsheet, not an image" for s in result.skipped)  # radiography's .xlsx
    assert result.source in (layout, "synthetic")


def test_nothing_matches(tmp_path):
    write_text(tmp_path / "notes.txt")
    (tmp_path / "stuff").mkdir()
    with pytest.raises(DatasetError) as err:
        detect_layout(tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message and "stuff/" in message and "notes.txt" in message
    for name in INDEXERS:
        assert name in message


def test_missing_root(tmp_path):
    with pytest.raises(DatasetError, match=f"dataset folder {tmp_path / 'nope'} does not exist"):
        index_dataset(tmp_path / "nope")
    with pytest.raises(DatasetError, match="does not exist"):
        index_dataset(tmp_path / "nope", layout="kermany")


def test_unknown_layout(tmp_path):
    make_pairs(tmp_path, ["a.png"])
    with pytest.raises(DatasetError, match="unknown dataset layout 'nih'.*class_folders.*covidqu_flat"):
        index_dataset(tmp_path, layout="nih")


def test_kwargs_reach_the_indexer(tmp_path):
    make_covidqu(tmp_path, per_class=1)
    result = index_dataset(tmp_path, layout="covidqu", subset="lung", verify=False)
    assert {r.source_split for r in result.records} == {"train", "val", "test"}
    with pytest.raises(
        DatasetError, match=r"'kermany' layout's indexer takes no \['subset'\]; its options are \['verify'\]"
    ):
        index_dataset(tmp_path, layout="kermany", subset="lung")


def test_registry_names():
    assert set(INDEXERS) == {
        "covidqu",
        "covidqu_flat",
        "radiography",
        "kermany",
        "class_folders",
        "image_mask_pairs",
        "darwin",
        "coco",
    }


def test_split_folder_of_class_folders_is_not_kermany(tmp_path):
    """``test/COVID-19`` + ``test/Normal``: class folders with split test (a ``Normal`` folder does not make Kermany)."""
    make_class_folders(tmp_path, {"COVID-19": 2, "Normal": 1}, split="test")
    assert detect_layout(tmp_path) == "class_folders"
    result = index_dataset(tmp_path, verify=False)
    assert result.classes == ("COVID-19", "Normal")
    assert {r.source_split for r in result.records} == {"test"}
    assert sorted(r.class_name for r in result.records) == ["COVID-19", "COVID-19", "Normal"]
