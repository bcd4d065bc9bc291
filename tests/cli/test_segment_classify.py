"""Tests for monaicxr.workflows.segment_classify (and its commands) and the simple_cnn lung_masked overlay, on SYNTHETIC phantoms.

predict-lungs runs the committed bundles/unet weights (trained on real radiographs at 256 x 256; they find the
phantoms' lungs too). The comparison runs in-process with a tiny SimpleCNN at 32 x 32 for one epoch; the runner
script's wiring is checked with a stand-in for the ``monaicxr`` command.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from monai.bundle import ConfigWorkflow
from PIL import Image
from sklearn.metrics import accuracy_score, f1_score, recall_score

from monaicxr.cli.main import main
from monaicxr.data.prepare import prepare_datalist
from monaicxr.data.synthetic import write_phantom_dataset
from monaicxr.workflows.segment_classify import VARIANTS, _check_mask, predict_lungs, subsample_datalist

REPO = Path(__file__).resolve().parents[2]
UNET = REPO / "bundles" / "unet"
CNN_CONFIGS = REPO / "bundles" / "simple_cnn" / "configs"
CLASSES = ["COVID-19", "Non-COVID", "Normal"]
TINY_CNN = {
    "conv_channels": [4, 4, 4],
    "dense": [16, 8],
    "batch_size": 8,
    "val_batch_size": 8,
    "num_workers": 0,
    "show_progress": False,
    "save_gallery": False,
}


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> tuple[Path, dict]:
    """21 phantoms of 64 x 64 (7 per class) and their 70/10/20 datalist (15 / 3 / 3 items)."""
    root = tmp_path_factory.mktemp("stc")
    write_phantom_dataset(root / "phantoms", n_per_class=7, size=64, seed=0)
    content = prepare_datalist(
        str(root / "index"), dataset_dir=str(root / "phantoms"), task="classification", split_mode="ratios"
    )
    assert all(content[s] for s in ("training", "validation", "test"))
    return root, content


def _lung(path: str) -> np.ndarray:
    return np.asarray(Image.open(path)) > 0


def test_predict_lungs_writes_masks_rewrites_the_datalist_and_reports_bad_images(phantoms, tmp_path, capsys):
    root, content = phantoms
    good = content["training"][:3] + content["test"][:1]
    twin = tmp_path / "other" / Path(good[0]["image"]).name  # same stem as good[0], another folder
    twin.parent.mkdir()
    shutil.copy(good[0]["image"], twin)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    bad = [{"image": str(tmp_path / "broken.png"), "class_index": 0}, {"image": str(tmp_path / "absent.png")}]
    datalist = {"classes": CLASSES, "training": good[:3] + bad[:1], "test": good[3:] + bad[1:] + [{"image": str(twin)}]}
    (tmp_path / "in.json").write_text(json.dumps(datalist))

    argv = ["predict-lungs", "--bundle", str(UNET), "--datalist", str(tmp_path / "in.json")]
    assert main([*argv, "--output_dir", str(tmp_path / "out")]) == 0  # the snake_case alias still parses
    printed = capsys.readouterr().out
    assert "5 of 7 with a predicted lung mask, 2 left out" in printed

    new = json.loads((tmp_path / "out" / "datalist.json").read_text())
    assert new["classes"] == CLASSES and new["lungs"]["n_left_out"] == 2
    reasons = {x["image"]: (x["section"], x["reason"]) for x in new["lungs_left_out"]}
    assert reasons[bad[0]["image"]][0] == "training" and "image unreadable" in reasons[bad[0]["image"]][1]
    assert reasons[bad[1]["image"]][0] == "test" and "image unreadable" in reasons[bad[1]["image"]][1]
    assert [i["image"] for i in new["training"]] == [i["image"] for i in good[:3]]
    items = new["training"] + new["test"]
    assert len(items) == 5
    for item in items:
        mask = np.asarray(Image.open(item["lung"]))
        assert mask.shape == (64, 64) and set(np.unique(mask)) == {0, 255}
        assert Path(item["lung"]).is_relative_to((tmp_path / "out" / "masks").resolve())
    by_image = {i["image"]: i for i in items}
    assert Path(by_image[str(twin)]["lung"]).parent.name == "repeat_1"  # the same stem does not overwrite
    for item in good:  # the committed weights find the phantoms' lungs
        pred, ref = _lung(by_image[item["image"]]["lung"]), _lung(item["lung"])
        assert by_image[item["image"]]["lung_reference"] == item["lung"]
        assert 2 * (pred & ref).sum() / (pred.sum() + ref.sum()) > 0.6


def test_predict_lungs_needs_an_inference_config_with_a_datalist(tmp_path):
    (tmp_path / "seg" / "configs").mkdir(parents=True)
    (tmp_path / "seg" / "configs" / "inference.json").write_text(json.dumps({"output_dir": "x", "input_dir": "y"}))
    with pytest.raises(ValueError, match="no \\['datalist'\\] id"):
        predict_lungs(tmp_path / "seg", tmp_path / "out", input_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="no such inference config"):
        predict_lungs(tmp_path / "seg", tmp_path / "out", input_dir=tmp_path, config="configs/infer.json")


def test_check_mask_gives_each_failure_its_reason(tmp_path):
    def png(name: str, arr: np.ndarray) -> Path:
        Image.fromarray(arr.astype(np.uint8)).save(tmp_path / name)
        return tmp_path / name

    small = np.zeros((64, 64))
    small[:4, :4] = 255
    assert "empty" in _check_mask(png("empty.png", np.zeros((64, 64))), (64, 64), 0.0)
    assert "differs from the image size" in _check_mask(png("size.png", small[:32]), (64, 64), 0.0)
    assert "covers 0.39%" in _check_mask(png("small.png", small), (64, 64), 0.05)
    assert _check_mask(tmp_path / "small.png", (64, 64), 0.0) is None
    assert "wrote no mask" in _check_mask(tmp_path / "none.png", (64, 64), 0.0)


def test_subsample_keeps_sections_classes_and_order():
    items = [{"image": f"{s}{i}", "class_index": i % 3} for s in ("a",) for i in range(60)]
    content = {"training": items[:42], "validation": items[42:48], "test": items[48:], "classes": CLASSES}
    small = subsample_datalist(content, 20, seed=1)
    assert small["subsampled"]["to"] == {"training": 14, "validation": 2, "test": 4}
    assert [i["class_index"] for i in small["training"]].count(0) in (4, 5)
    assert small["training"] == sorted(small["training"], key=lambda i: int(i["image"][1:]))
    assert small == subsample_datalist(content, 20, seed=1) and small != subsample_datalist(content, 20, seed=2)
    assert subsample_datalist(content, 100) == content


def _first(wf: ConfigWorkflow, dataset_id: str) -> tuple[np.ndarray, np.ndarray]:
    item = wf.parser.get_parsed_content(dataset_id)[0]
    assert "lung" not in item  # loaded, applied, then deleted: masks of different sizes would not collate
    return item["image"][0].numpy(), item["image"].meta["filename_or_obj"]


@pytest.mark.parametrize("mode", ["keep", "remove"])
def test_overlay_masks_train_validate_evaluate_and_inference(phantoms, tmp_path, mode):
    """lung_masked.json composes with train.json, train+evaluate.json and inference.json (no training here)."""
    root, _ = phantoms
    datalist = str(root / "index" / "datalist.json")
    lung_of = {
        i["image"]: _lung(i["lung"])
        for s in ("training", "validation", "test")
        for i in json.loads(Path(datalist).read_text())[s]
    }

    def check(image: np.ndarray, path: str) -> None:
        hidden = ~lung_of[path] if mode == "keep" else lung_of[path]
        assert (image[hidden] == 0).all() and (image[~hidden] != 0).mean() > 0.5

    common = {"datalist_file": datalist, "output_dir": str(tmp_path), "spatial_size": [64, 64], "mask_mode": mode}
    files = [str(CNN_CONFIGS / n) for n in ("train.json", "lung_masked.json")]
    wf = ConfigWorkflow(config_file=files, logging_file=False, workflow_type="train", **common, **TINY_CNN)
    wf.initialize()
    check(*_first(wf, "train#dataset"))
    check(*_first(wf, "validate#dataset"))

    files = [str(CNN_CONFIGS / n) for n in ("train.json", "evaluate.json", "lung_masked.json")]
    wf = ConfigWorkflow(config_file=files, logging_file=False, workflow_type="eval", **common, **TINY_CNN)
    wf.initialize()
    image, path = _first(wf, "validate#dataset")
    check(image, path)
    assert path in {i["image"] for i in json.loads(Path(datalist).read_text())["test"]}

    files = [str(CNN_CONFIGS / n) for n in ("inference.json", "lung_masked.json")]
    wf = ConfigWorkflow(config_file=files, logging_file=False, workflow_type="infer", **common)
    wf.initialize()
    check(*_first(wf, "dataset"))


def test_compare_masking_end_to_end(phantoms, tmp_path, capsys):
    """predict-lungs, three trainings and evaluations, one table; in-process through ``main`` (no interpreter
    start-ups: the runner script's own wiring is checked with a stand-in below)."""
    root, _ = phantoms
    level = logging.getLogger().level
    overrides = [x for k, v in TINY_CNN.items() for x in ("--override", f"{k}={json.dumps(v)}")]
    argv = ["compare-masking", "--datalist", str(root / "index" / "datalist.json"), "--output-dir", str(tmp_path)]
    argv += ["--seg-bundle", str(UNET), "--seg-override", "spatial_size=[256,256]", "--num-epochs", "1"]
    argv += ["--spatial-size", "32", "--classifier-bundle", str(REPO / "bundles" / "simple_cnn"), *overrides]
    try:
        assert main(argv) == 0
    finally:
        logging.getLogger().setLevel(level)
    assert "| lungs_removed | remove |" in capsys.readouterr().out

    rows = list(csv.DictReader((tmp_path / "comparison.csv").open()))
    assert [r["variant"] for r in rows] == list(VARIANTS)
    assert [r["mask_mode"] for r in rows] == ["none", "keep", "remove"]
    info = json.loads((tmp_path / "comparison.json").read_text())
    assert info["schedule"]["num_epochs"] == 1 and info["schedule"]["spatial_size"] == [32, 32]
    lungs = json.loads((tmp_path / "lungs" / "datalist.json").read_text())
    test_images = {i["image"] for i in lungs["test"]}
    for row in rows:  # the table equals an independent recomputation from each variant's predictions
        preds = list(csv.DictReader((tmp_path / row["variant"] / "eval" / "predictions.csv").open()))
        assert {p["image"] for p in preds} == test_images and int(row["n_test"]) == len(preds)
        y, p = [r["true"] for r in preds], [r["pred"] for r in preds]
        assert float(row["accuracy"]) == pytest.approx(accuracy_score(y, p))
        assert float(row["macro_f1"]) == pytest.approx(f1_score(y, p, labels=CLASSES, average="macro", zero_division=0))
        recalls = recall_score(y, p, labels=CLASSES, average=None, zero_division=0)
        for name, recall in zip(CLASSES, recalls, strict=True):
            assert float(row[f"recall_{name}"]) == pytest.approx(recall)
    assert "Majority-class accuracy" in (tmp_path / "comparison.md").read_text()


def test_runner_script_indexes_then_compares(tmp_path):
    """scripts/segment_then_classify.sh with a stand-in for ``monaicxr`` that records its arguments."""
    stub = tmp_path / "monaicxr"
    stub.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$*" >> "$(dirname "$0")/calls.txt"\n')
    stub.chmod(0o755)
    env = {**os.environ, "MONAICXR": str(stub), "NUM_EPOCHS": "2", "SPATIAL_SIZE": "64", "MAX_ITEMS": "90"}
    script = str(REPO / "scripts" / "segment_then_classify.sh")
    proc = subprocess.run(
        ["bash", script, "data", "out", "--override", "batch_size=8"], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    index, compare = (tmp_path / "calls.txt").read_text().splitlines()
    assert index == "index data --out out/data --task classification --split-mode ratios --seed 0"
    assert compare.startswith("-v compare-masking --datalist out/data/datalist.json --output-dir out")
    for part in (
        "--num-epochs 2",
        "--spatial-size 64",
        "--max-items 90",
        "--seg-bundle bundles/unet",
        "--override batch_size=8",
    ):
        assert part in compare
    (tmp_path / "calls.txt").unlink()
    subprocess.run(["bash", script, "data", "out"], env={**env, "SEG_BUNDLE": "reference"}, check=True)
    assert "--reference-lungs" in (tmp_path / "calls.txt").read_text()
    assert subprocess.run(["bash", script], capture_output=True, text=True).returncode == 2  # usage


def test_predict_lungs_on_a_folder_puts_the_images_in_test(phantoms, tmp_path):
    root, content = phantoms
    (tmp_path / "in").mkdir()
    for item in content["test"][:2]:
        shutil.copy(item["image"], tmp_path / "in")
    (tmp_path / "in" / "notes.txt").write_text("not an image")  # left out by list_images with a warning
    s = predict_lungs(UNET, tmp_path / "out", input_dir=tmp_path / "in", overrides={"spatial_size": [256, 256]})
    new = json.loads(Path(s["datalist"]).read_text())
    assert s["n_ok"] == 2 and set(new) >= {"test", "lungs", "lungs_left_out"} and "training" not in new
    assert all(Path(i["lung"]).is_file() and "lung_reference" not in i for i in new["test"])
    assert new["lungs"]["overrides"] == {"spatial_size": [256, 256]}
