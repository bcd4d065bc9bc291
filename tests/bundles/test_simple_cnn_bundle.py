"""bundles/simple_cnn: the user command's TensorBoard log, imbalance options, overlays, memory format, bad data.

Everything runs on the CPU at 32 x 32 with a narrow SimpleCNN, so each training takes seconds. Train ->
evaluate -> inference, the exports and the metadata are in test_all_bundles.py, for every bundle.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_helpers import error_messages, make_workflow, run_workflow, train_with_cli
from monai.bundle import ConfigWorkflow

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "simple_cnn"
CONFIGS = BUNDLE / "configs"
CLASSES = ["COVID-19", "Non-COVID", "Normal"]

TINY = {
    "spatial_size": [32, 32],
    "conv_channels": [4, 4, 4],
    "dense": [16, 8],
    "synthetic_per_class": 6,
    "batch_size": 8,
    "val_batch_size": 8,
    "num_workers": 0,
    "show_progress": False,
    "save_gallery": False,
}


def _workflow(output_dir: Path, *overlays: str, workflow_type: str = "train", **override) -> ConfigWorkflow:
    return make_workflow(CONFIGS, TINY, output_dir, *overlays, workflow_type=workflow_type, **override)


_messages = error_messages
_run = run_workflow


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One training run through the exact user command (a subprocess of ``python -m monai.bundle run``)."""
    out = tmp_path_factory.mktemp("simple_cnn_train")
    overrides = {**TINY, "num_epochs": 2, "output_dir": str(out)}
    train_with_cli("bundles/simple_cnn/train.json", overrides)
    return out


def test_one_tensorboard_writer_with_loss_metrics_and_learning_rate(trained):
    """One event file per run (one SummaryWriter shared by every handler), holding the training loss, the
    validation metrics, the classification scalars and the learning rate of every epoch."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = list((trained / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1, events
    acc = EventAccumulator(str(events[0]))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train_loss", "val_accuracy", "val_loss", "classification/accuracy"} <= tags, tags
    # the recipe's optimizer has two parameter groups (L2 on the conv kernels only): one curve each
    assert {"learning_rate/group0", "learning_rate/group1"} <= tags, tags
    assert [e.step for e in acc.Scalars("learning_rate/group0")] == [1, 2]
    assert acc.Scalars("learning_rate/group0")[0].value == pytest.approx(1e-3)


def test_mistyped_dataset_dir_is_an_error(tmp_path):
    wf = _workflow(tmp_path / "out", dataset_dir=str(tmp_path / "no_such_folder"), num_epochs=1)
    with pytest.raises(Exception) as info:
        wf.run()
    assert "no_such_folder" in _messages(info.value) and "does not exist" in _messages(info.value)


def test_class_weighted_loss_and_weighted_sampler(tmp_path):
    wf = _workflow(tmp_path, num_epochs=1, class_weighted_loss=True, weighted_sampler=True)
    labels = [d["class_index"] for d in wf.parser.get_parsed_content("data")["training"]]
    counts = torch.bincount(torch.tensor(labels), minlength=len(CLASSES)).float()
    weights = wf.parser.get_parsed_content("class_weights")
    assert torch.allclose(weights, len(labels) / (len(CLASSES) * counts))
    assert torch.allclose(wf.parser.get_parsed_content("loss").weight.cpu(), weights)
    assert isinstance(wf.parser.get_parsed_content("train#sampler"), torch.utils.data.WeightedRandomSampler)
    _run(wf)
    assert json.loads((tmp_path / "summary.json").read_text())["epochs_completed"] == 1


def test_binary_150_overlay_trains_one_sigmoid_output(tmp_path):
    """The binary recipe at 96 x 96 (five valid 3x3 conv-pool stages need at least about 94 pixels)."""
    wf = _workflow(
        tmp_path, "binary_150.json", num_epochs=1, spatial_size=[96, 96], conv_channels=[2, 2, 2, 2, 2],
        class_weighted_loss=True, weighted_sampler=True,
    )  # fmt: skip
    net = wf.parser.get_parsed_content("network_def")
    assert net(torch.rand(2, 1, 96, 96)).shape == (2, 1)
    assert isinstance(wf.parser.get_parsed_content("optimizer"), torch.optim.RMSprop)
    _run(wf)
    report = json.loads((tmp_path / "eval_report" / "classification_report.json").read_text())
    assert list(report["per_class"]) == ["not COVID-19", "COVID-19"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["last_validation"]["val_accuracy"] == pytest.approx(report["accuracy"])
    # one sigmoid logit: p(not COVID-19) = 1 - p(COVID-19), and no invented logit for the negative class
    rows = list(csv.DictReader((tmp_path / "eval_report" / "predictions.csv").open()))
    assert list(rows[0]) == ["image", "true", "pred", "p_not COVID-19", "p_COVID-19", "logit_COVID-19", "correct"]
    for r in rows:
        p = float(r["p_COVID-19"])
        assert p == pytest.approx(float(torch.sigmoid(torch.tensor(float(r["logit_COVID-19"])))), abs=1e-6)
        assert float(r["p_not COVID-19"]) == pytest.approx(1 - p, abs=1e-6)


@pytest.mark.parametrize("channels_last", [True, False])
def test_memory_format_is_how_it_runs(tmp_path, channels_last):
    """channels_last (the default): the network and every batch it trains and validates on take that layout."""
    wf = _workflow(tmp_path, num_epochs=1, channels_last=channels_last, num_workers=1)
    network = wf.parser.get_parsed_content("network")
    kernel = network.features[1][0].conv.weight  # (4, 4, 3, 3): the layouts differ
    assert (kernel.is_contiguous(memory_format=torch.channels_last) and not kernel.is_contiguous()) is channels_last
    seen = []
    # the first stage's output has 4 channels, where the two layouts differ
    network.features[0].register_forward_hook(
        lambda m, i, out: seen.append(out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous())
    )
    _run(wf)
    assert seen and set(seen) == {channels_last}
    # the random part of the training transforms runs without metadata tracking, and only there
    assert type(wf.parser.get_parsed_content("train#preprocessing").transforms[-1]).__name__ == "ComposeWithoutMeta"
    assert json.loads((tmp_path / "summary.json").read_text())["epochs_completed"] == 1


def test_binary_150_overlay_holds_the_recipe():
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.json"), str(CONFIGS / "binary_150.json")])
    assert parser["spatial_size"] == [150, 150] and parser["batch_size"] == 32 and parser["num_epochs"] == 12
    sched = parser.get_parsed_content("lr_scheduler")
    assert sched.mode == "max" and sched.factor == 0.3 and sched.patience == 2 and set(sched.min_lrs) == {1e-6}
    with torch.no_grad():
        assert parser.get_parsed_content("network_def").eval()(torch.rand(1, 1, 150, 150)).shape == (1, 1)


def test_augment_imbalance_overlay(tmp_path):
    """The 3-class recipe with a weighted sampler and random affine / contrast augmentation after the cache."""
    wf = _workflow(tmp_path, "augment_imbalance.json", num_epochs=1)
    assert isinstance(wf.parser.get_parsed_content("train#sampler"), torch.utils.data.WeightedRandomSampler)
    last = wf.parser.get_parsed_content("train#preprocessing").transforms[-1]
    assert type(last).__name__ == "ComposeWithoutMeta"
    assert [type(t).__name__ for t in last.transforms] == ["RandAffined", "RandAdjustContrastd"]
    _run(wf)
    assert json.loads((tmp_path / "summary.json").read_text())["epochs_completed"] == 1


RADIOGRAPHY = ["COVID", "Lung_Opacity", "Normal", "Viral Pneumonia"]


def _radiography_tree(root: Path, per_class: int = 4) -> Path:
    """The older COVID-19 Radiography Database layout (``<class>/<name>.png``) with small noise images."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, cls in enumerate(RADIOGRAPHY):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (40, 40)).astype(np.uint8) // (k + 1)  # darker per class
            Image.fromarray(pixels).save(root / cls / f"{cls}-{i + 1}.png")
    return root


def test_radiography_4class_overlay_trains_four_classes(tmp_path):
    data = _radiography_tree(tmp_path / "radiography")
    wf = _workflow(
        tmp_path / "out", "radiography_4class.json", num_epochs=1, dataset_dir=str(data),
        split_ratios=[0.5, 0.25, 0.25],
    )  # fmt: skip
    assert wf.parser.get_parsed_content("num_classes") == 4
    _run(wf)
    report = json.loads((tmp_path / "out" / "eval_report" / "classification_report.json").read_text())
    assert list(report["per_class"]) == RADIOGRAPHY
    assert all(m["support"] == 1 for m in report["per_class"].values())
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["data"]["source"] == "radiography" and summary["data"]["classes"] == RADIOGRAPHY


def test_radiography_4class_overlay_refuses_three_class_data(tmp_path):
    """The overlay on the default (3-class phantom) data stops before training, naming the unknown classes."""
    wf = _workflow(tmp_path, "radiography_4class.json", num_epochs=1)
    with pytest.raises(Exception) as info:
        wf.run()
    assert "['COVID-19', 'Non-COVID'] are not among the bundle's classes" in _messages(info.value)
    assert not (tmp_path / "checkpoints").exists()


BAD_DATALISTS = {
    "label outside the classes": ({"training": [0, 1, 2, 7], "validation": [0, 1, 2]}, "train_3.png has class 7"),
    "single-class training split": ({"training": [1, 1, 1], "validation": [0, 1, 2]}, "single class, 'Non-COVID'"),
    "class without validation images": ({"training": [0, 1, 2], "validation": [0, 2]}, "['Non-COVID'] have no validation"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_DATALISTS))
def test_bad_classification_data_stops_before_training(tmp_path, case):
    """The check runs before any image is loaded for training or the network is built (the images are tiny
    real PNGs: the datalist's files are decoded once first, and missing ones would be left out)."""
    from PIL import Image

    sections, expected = BAD_DATALISTS[case]
    datalist = {"classes": CLASSES, "test": []}
    for section, labels in sections.items():
        prefix = "train" if section == "training" else "val"
        datalist[section] = []
        for i, c in enumerate(labels):
            image = tmp_path / f"{prefix}_{i}.png"
            Image.fromarray(np.full((16, 16), 40 * i, np.uint8)).save(image)
            datalist[section].append({"image": str(image), "class_index": c})
    path = tmp_path / "datalist.json"
    path.write_text(json.dumps(datalist))
    wf = _workflow(tmp_path / "out", datalist_file=str(path), num_epochs=1)
    with pytest.raises(Exception) as info:
        wf.run()
    assert expected in _messages(info.value)
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_image_failing_to_load_mid_epoch_is_named(trained, tmp_path):
    """Without caching, images load during the epoch; one damaged after the datalist was checked (the check
    decodes every file once and leaves bad ones out) stops training with its path."""
    listed = json.loads((trained / "datalist.json").read_text())
    damaged = tmp_path / "damaged.png"
    good = Path(listed["training"][0]["image"]).read_bytes()
    damaged.write_bytes(good)
    listed["training"].append({"image": str(damaged), "class_index": 0})
    path = tmp_path / "datalist.json"
    path.write_text(json.dumps(listed))
    wf = _workflow(tmp_path / "out", datalist_file=str(path), num_epochs=1, cache_rate=0.0)
    assert any(i["image"] == str(damaged) for i in wf.parser.get_parsed_content("data")["training"])
    damaged.write_bytes(good[: len(good) // 2])  # damaged between the check and the epoch
    with pytest.raises(Exception) as info:
        wf.run()
    assert f"{damaged}: cannot be read as an image" in _messages(info.value)
