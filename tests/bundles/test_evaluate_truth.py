"""Evaluation tells the truth: all of a single-split dataset, never an empty section, classes by name, counts.

Every case runs ``monaicxr evaluate`` on a small layout built in tmp with the bundles' committed weights:
``bundles/simple_cnn/models/model.pt`` (COVID-19 / Non-COVID / Normal) and ``bundles/unet/models/model.pt``.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest

from monaicxr.cli.main import main
from monaicxr.data.evaluation import eval_items
from monaicxr.data.records import DatasetError
from monaicxr.data.synthetic import write_phantom_dataset
from tests.data.layouts import make_class_folders

QUIET = ["--logging-conf", "none", "--num_workers", "0", "--show_progress", "False"]


def _evaluate(bundle: str, data: Path, out: Path, *extra: str) -> int:
    return main(["evaluate", bundle, "--dataset_dir", str(data), "--output_dir", str(out), *QUIET, *extra])


def _films(root: Path, counts: dict[str, int]) -> tuple[Path, str, str]:
    """``root/test/<class>/*.png`` and the options naming its layout (a test/Normal folder looks like Kermany's)."""
    return make_class_folders(root, counts, split="test"), "--layout", "class_folders"


def _summary(out: Path) -> dict:
    return json.loads((out / "eval" / "summary.json").read_text())


def test_folder_of_test_films_is_scored_whole_and_by_class_name(tmp_path, caplog):
    # no Non-COVID/ folder: the datalist's own classes are [COVID-19, Normal], so Normal has class_index 1,
    # which by position would be the model's Non-COVID
    films, *layout = _films(tmp_path / "films", {"COVID-19": 3, "Normal": 4})
    with caplog.at_level(logging.INFO):
        assert _evaluate("simple_cnn", films, tmp_path / "run", *layout, "--save_gallery", "False", "-v") == 0
    summary = _summary(tmp_path / "run")
    assert summary["eval_section"] == "test"
    assert summary["n_images"] == 7  # all of them, not the test share of a ratios split
    with (tmp_path / "run" / "eval" / "predictions.csv").open() as f:
        truth = {Path(row["image"]).parent.name: row["true"] for row in csv.DictReader(f)}
    assert truth == {"COVID-19": "COVID-19", "Normal": "Normal"}
    assert "['Non-COVID'] have no images in the evaluated data" in caplog.text
    assert "evaluated 7 images of section 'test'" in caplog.text
    # metrics are named after the section scored, in summary.json and metrics.csv
    assert {"test_accuracy", "test_loss"} <= set(summary["metrics"]) and "val_accuracy" not in summary["metrics"]
    names = [row.split(",")[0] for row in (tmp_path / "run" / "eval" / "metrics.csv").read_text().splitlines()]
    assert "test_accuracy" in names and "val_accuracy" not in names


def test_a_class_the_model_does_not_know_is_an_error(tmp_path, capsys):
    films, *layout = _films(tmp_path / "films", {"COVID-19": 2, "Pneumonia": 2})
    assert _evaluate("simple_cnn", films, tmp_path / "run", *layout) == 2
    err = capsys.readouterr().err
    assert "['Pneumonia'] are not among the model's classes ['COVID-19', 'Non-COVID', 'Normal']" in err


def test_an_empty_section_is_an_error_naming_it(tmp_path, capsys):
    films, _, _ = _films(tmp_path / "films", {"COVID-19": 1, "Normal": 1})
    items = [{"image": str(p), "class_name": p.parent.name} for p in sorted(films.rglob("*.png"))]
    for i, item in enumerate(items):
        item["class_index"] = i
    datalist = tmp_path / "datalist.json"
    datalist.write_text(json.dumps({"classes": ["COVID-19", "Normal"], "training": items, "validation": items}))
    argv = ["evaluate", "simple_cnn", "--datalist_file", str(datalist), "--output_dir", str(tmp_path / "run")]
    assert main([*argv, *QUIET]) == 2
    err = capsys.readouterr().err
    assert "eval_section 'test' is empty" in err and "training 2, validation 2, test 0" in err


def test_manifest_saying_test_only_is_scored_whole(tmp_path):
    root = write_phantom_dataset(tmp_path / "phantoms", n_per_class=2, size=64)
    manifest = root / "manifest.csv"
    manifest.write_text(manifest.read_text().replace(",Train\n", ",Test\n").replace(",Val\n", ",Test\n"))
    # unet evaluates "validation" by default: a Test-only source is still scored whole, in that section
    assert _evaluate("unet", root, tmp_path / "run", "--max_overlays", "0") == 0
    summary = _summary(tmp_path / "run")
    assert (summary["eval_section"], summary["n_images"]) == ("validation", 6)
    assert summary["checkpoint"].endswith("bundles/unet/models/model.pt")
    assert "val_dice" in summary["metrics"]  # the validation section keeps the val_ names
    splits = json.loads((tmp_path / "run" / "splits.json").read_text())
    assert splits["sizes"] == {"train": 0, "val": 6, "test": 0}


def test_eval_items_maps_by_name_and_checks():
    data = {
        "classes": ["COVID-19", "Normal"],
        "test": [{"image": "a.png", "class_name": "Normal", "class_index": 1}],
        "training": [],
        "validation": [],
    }
    (item,) = eval_items(data, "test", data_classes=["COVID-19", "Non-COVID", "Normal"])
    assert item["class_index"] == 2
    assert len(eval_items(data, "all")) == 1
    with pytest.raises(DatasetError, match="'validation' is empty"):
        eval_items(data, "validation")
    with pytest.raises(DatasetError, match="unknown eval_section 'val'"):
        eval_items(data, "val")


@pytest.mark.parametrize(("split", "whole"), [("val", True), ("train", False)])
def test_only_a_held_out_source_split_is_taken_whole(tmp_path, split, whole):
    from monaicxr.data.prepare import prepare_datalist

    films = make_class_folders(tmp_path / "films", {"COVID-19": 5, "Normal": 5}, split=split)
    data = prepare_datalist(
        str(tmp_path / "run"),
        dataset_dir=str(films),
        task="classification",
        layout="class_folders",
        split_mode="ratios",
        eval_section="test",
    )
    # a Val-only folder is all test; a Train-only one keeps the held-out share its training run did not see
    assert (len(data["test"]) == 10) is whole
    assert bool(data["training"]) is not whole
