"""Tests for monaicxr.data.prepare: prepare_datalist sources and checks, list_images."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monaicxr.data.prepare import TASK_KEYS, list_images, prepare_datalist
from monaicxr.data.records import DatasetError

SECTIONS = ("training", "validation", "test")
SMALL = {"synthetic_per_class": 2, "synthetic_size": 64}


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return out, prepare_datalist(str(out), task="3level", **SMALL)


def test_synthetic_when_no_data(synthetic_run):
    out, content = synthetic_run
    for name in ("datalist.json", "splits.json", "fingerprint.json"):
        assert (out / name).is_file(), name
    assert content["synthetic"] is True
    assert content["source"] == "synthetic"
    assert json.loads((out / "datalist.json").read_text()) == content
    items = [item for s in SECTIONS for item in content.get(s, [])]
    assert len(items) == 3 * SMALL["synthetic_per_class"]
    assert len({item["image"] for item in items}) == len(items)  # no image in two sections
    root = Path(content["root"])
    for item in items:
        for key in TASK_KEYS["3level"]:
            assert key in item
        assert Path(item["image"]).is_file() and Path(item["image"]).is_relative_to(root)
        assert Path(item["lung"]).is_file() and Path(item["infection"]).is_file()


def test_splits_file_records_the_mode_actually_used(tmp_path, synthetic_run):
    """With 2 phantoms per class there is no Val, so "auto" uses ratios; with 5 there is, and it is kept."""
    small = json.loads((synthetic_run[0] / "splits.json").read_text())
    assert small["mode"] == "ratios" and small["ratios"] == [0.7, 0.1, 0.2] and small["seed"] == 0
    out = tmp_path / "run5"
    content = prepare_datalist(str(out), synthetic_per_class=5, synthetic_size=64)
    splits = json.loads((out / "splits.json").read_text())
    assert splits["mode"] == "source" and splits["ratios"] is None and splits["seed"] is None
    assert len(splits["train"]) == len(content["training"]) and len(splits["val"]) == len(content["validation"])
    assert sum(splits["counts"]["train"].values()) == len(content["training"])


def test_missing_dataset_dir(tmp_path):
    with pytest.raises(DatasetError, match="no_such_folder"):
        prepare_datalist(str(tmp_path / "out"), dataset_dir=str(tmp_path / "no_such_folder"))


def _datalist(root: Path) -> dict:
    """A given datalist whose files exist under ``root`` (16 x 16 images, 0/255 masks)."""
    files = {}
    for name in ("a", "b"):
        for key, suffix, value in (("image", "", 128), ("lung", "_lung", 255), ("infection", "_inf", 0)):
            path = root / f"{name}{suffix}.png"
            Image.fromarray(np.full((16, 16), value, np.uint8)).save(path)
            files[name, key] = str(path)
    return {
        "training": [{k: files["a", k] for k in ("image", "lung", "infection")}],
        "validation": [{k: files["b", k] for k in ("image", "lung", "infection")}],
        "test": [],
        "classes": ["COVID-19", "Normal"],
    }


def test_datalist_file_returned_as_is(tmp_path):
    datalist = _datalist(tmp_path)
    path = tmp_path / "given.json"
    path.write_text(json.dumps(datalist))
    out = tmp_path / "out"
    content = prepare_datalist(str(out), datalist_file=str(path), task="infection")
    for key, value in datalist.items():
        assert content[key] == value
    assert content["synthetic"] is False and content["source"] == "datalist"
    assert not (out / "datalist.json").exists()  # nothing rewritten for a given datalist
    assert (out / "input_issues.csv").read_text().splitlines() == ["file,reason"]


def test_datalist_missing_task_key(tmp_path):
    broken = _datalist(tmp_path)
    del broken["validation"][0]["infection"]
    path = tmp_path / "given.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(DatasetError, match="b.png"):
        prepare_datalist(str(tmp_path / "out"), datalist_file=str(path), task="infection")
    # the lung task needs no infection mask
    assert prepare_datalist(str(tmp_path / "out"), datalist_file=str(path), task="lung")["validation"]


def _issues(out: Path) -> dict[str, str]:
    with open(out / "input_issues.csv", newline="") as f:
        return {Path(r["file"]).name: r["reason"] for r in csv.DictReader(f)}


def test_datalist_file_bad_items_dropped_and_listed(tmp_path, caplog):
    datalist = _datalist(tmp_path)
    good = datalist["training"][0]
    data = Path(good["image"]).read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.png").write_text("not an image\n")
    datalist["training"] += [
        {**good, "image": str(tmp_path / "cut.png")},  # truncated image
        {**good, "lung": str(tmp_path / "text.png")},  # a mask that is not an image
        {**good, "image": str(tmp_path / "gone.png")},  # missing file
    ]
    path = tmp_path / "given.json"
    path.write_text(json.dumps(datalist))
    out = tmp_path / "out"
    with caplog.at_level("WARNING"):
        content = prepare_datalist(str(out), datalist_file=str(path), task="infection")
    assert content["training"] == [good] and len(content["validation"]) == 1
    issues = _issues(out)
    assert set(issues) == {"cut.png", "text.png", "gone.png"}
    assert "cannot be read" in issues["cut.png"] and "cannot be read" in issues["text.png"]
    assert issues["gone.png"] == "file does not exist"
    assert "3 input file(s) left out" in caplog.text


def test_datalist_file_nothing_readable_is_an_error(tmp_path):
    (tmp_path / "text.png").write_text("not an image\n")
    path = tmp_path / "given.json"
    path.write_text(json.dumps({"training": [{"image": str(tmp_path / "text.png")}], "validation": []}))
    with pytest.raises(DatasetError, match="none of the 1 datalist items can be read.*text.png"):
        prepare_datalist(str(tmp_path / "out"), datalist_file=str(path), task="none")


def test_dataset_dir_skipped_files_listed(tmp_path):
    from layouts import make_pairs, write_text, write_truncated

    root = make_pairs(tmp_path / "data", [f"x{i}.png" for i in range(4)])
    write_truncated(root / "images" / "x0.png")
    write_text(root / "images" / "x1.png")
    content = prepare_datalist(str(tmp_path / "out"), dataset_dir=str(root), task="lung", split_mode="ratios")
    assert sum(len(content[s]) for s in SECTIONS) == 2
    issues = _issues(tmp_path / "out")
    assert issues["x0.png"].startswith("truncated image") and issues["x1.png"].startswith("not a decodable image")


# (file content, expected message fragment)
BAD_DATALIST_FILES = [
    pytest.param("{not json", "not valid JSON", id="invalid_json"),
    pytest.param(None, "does not exist", id="missing"),
]


@pytest.mark.parametrize("text, fragment", BAD_DATALIST_FILES)
def test_bad_datalist_file(tmp_path, text, fragment):
    path = tmp_path / "datalist_in.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(DatasetError, match=fragment) as info:
        prepare_datalist(str(tmp_path / "out"), datalist_file=str(path))
    assert "datalist_in.json" in str(info.value)


def test_list_images(tmp_path):
    for name in ("b.png", "a.png"):
        Image.fromarray(np.zeros((5, 7), np.uint8)).save(tmp_path / name)
    (tmp_path / "readme.txt").write_text("not an image")
    items = list_images(tmp_path)
    assert items == [{"image": str(tmp_path / "a.png")}, {"image": str(tmp_path / "b.png")}]


# (folder builder) -> DatasetError naming the folder
EMPTY_FOLDERS = [
    pytest.param(lambda p: p.mkdir(), id="empty"),
    pytest.param(lambda p: None, id="missing"),
    pytest.param(lambda p: (p.mkdir(), (p / "notes.txt").write_text("x")), id="no_images"),
]


@pytest.mark.parametrize("build", EMPTY_FOLDERS)
def test_list_images_without_images(tmp_path, build):
    folder = tmp_path / "inbox"
    build(folder)
    with pytest.raises(DatasetError, match="inbox"):
        list_images(folder)


def test_stratified_subset_keeps_class_shares_and_is_seeded():
    from monaicxr.data.prepare import stratified_subset

    items = [{"id": i, "class_name": "a" if i < 60 else "b" if i < 90 else "c"} for i in range(100)]
    sub = stratified_subset(items, 10, seed=3)
    names = [item["class_name"] for item in sub]
    assert (names.count("a"), names.count("b"), names.count("c")) == (6, 3, 1)
    assert sub == stratified_subset(items, 10, seed=3)
    assert sub != stratified_subset(items, 10, seed=4)
    assert [item["id"] for item in sub] == sorted(item["id"] for item in sub)
    assert stratified_subset(items, 500) == items
    with pytest.raises(ValueError, match="at least 1"):
        stratified_subset(items, 0)


def test_max_train_items_reduces_training_only(tmp_path):
    full = prepare_datalist(str(tmp_path / "full"), task="classification", split_mode="ratios", **SMALL)
    small = prepare_datalist(
        str(tmp_path / "small"), task="classification", split_mode="ratios", max_train_items=2, **SMALL
    )
    assert len(small["training"]) == 2 < len(full["training"])
    assert small["training_subset"] == {"kept": 2, "of": len(full["training"]), "seed": 0}
    assert [Path(i["image"]).name for i in small["validation"]] == [Path(i["image"]).name for i in full["validation"]]
    assert {item["id"] for item in small["training"]} <= {item["id"] for item in full["training"]}
    assert json.loads((tmp_path / "small" / "datalist.json").read_text()) == small
