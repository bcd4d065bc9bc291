"""bundles/unet: the user command's outputs, independent Dice, 3-level task, determinism, resume, DDP.

Everything runs on the CPU at 32 x 32 with a narrow BasicUNet, so each training takes seconds. The generic
train -> evaluate -> inference, exports and metadata checks are in test_all_bundles.py, for every bundle.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_helpers import UNET_TINY, error_messages, make_workflow, run_inference, run_workflow, train_with_cli
from monai.bundle import ConfigWorkflow
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "unet"
CONFIGS = BUNDLE / "configs"

TINY = UNET_TINY


def _workflow(output_dir: Path, *overlays: str, workflow_type: str = "train", **override) -> ConfigWorkflow:
    return make_workflow(CONFIGS, TINY, output_dir, *overlays, workflow_type=workflow_type, **override)


_messages = error_messages
_run = run_workflow


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One training run through the exact user command (a subprocess of ``python -m monai.bundle run``)."""
    out = tmp_path_factory.mktemp("unet_train")
    overrides = {**TINY, "num_epochs": 2, "output_dir": str(out)}
    proc = train_with_cli("bundles/unet/train.json", overrides)
    (out / "stdout.txt").write_text(proc.stdout + proc.stderr)
    return out


def test_train_writes_every_output(trained):
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["epochs_completed"] == 2
    assert summary["data"]["synthetic"] is True and summary["data"]["source"] == "synthetic"
    assert 0.0 <= summary["best_metric"] <= 1.0
    assert (trained / "models" / "model.pt").is_file()
    assert (trained / "checkpoints" / "checkpoint_epoch=2.pt").is_file()
    assert any((trained / "tensorboard").glob("events.out.tfevents.*"))
    assert (trained / "metrics" / "metrics.csv").is_file()
    assert (trained / "metrics" / "val_dice_raw.csv").is_file()
    overlays = sorted((trained / "overlays").glob("epoch_*/*.png"))
    assert len(overlays) == 2 * TINY["max_overlays"]
    assert Image.open(overlays[0]).mode == "RGB"
    for name in ("datalist.json", "splits.json", "fingerprint.json"):
        assert (trained / name).is_file()
    log = (trained / "stdout.txt").read_text()
    assert "SYNTHETIC" in log and str(trained / "summary.json") in log  # the paths are printed


def test_per_image_metrics_match_an_independent_dice(trained):
    """The per-image Dice the bundle wrote equals a Dice computed here from the saved model's predictions."""
    wf = _workflow(trained, "evaluate.json", workflow_type="eval", ckpt_path=str(trained / "models" / "model.pt"))
    _run(wf)
    rows = list(csv.reader((trained / "eval" / "val_dice_raw.csv").open(), delimiter=","))
    written = {Path(r[0]).stem: float(r[1]) for r in rows[1:] if r[0] not in ("mean", "median", "std")}
    val = json.loads((trained / "datalist.json").read_text())["validation"]
    assert len(written) == len(val)

    network = wf.parser.get_parsed_content("network")
    network.eval()
    transforms = wf.parser.get_parsed_content("validate#preprocessing")
    for item in val:
        d = transforms(item)
        with torch.no_grad():
            pred = (torch.sigmoid(network(d["image"][None])) > 0.5).float()[0]
        truth = d["label"]
        inter = float((pred * truth).sum())
        denom = float(pred.sum() + truth.sum())
        expected = 2 * inter / denom if denom > 0 else 1.0
        assert written[Path(item["image"]).stem] == pytest.approx(expected, abs=1e-4)
    assert (trained / "eval" / "metrics.csv").is_file()
    assert len(list((trained / "eval" / "overlays").glob("*.png"))) == TINY["max_overlays"]


def _infer(trained: Path, input_dir: Path, output_dir: Path, **override) -> None:
    """Run the standalone inference.json with the tiny network the ``trained`` fixture produced."""
    sizes = {"spatial_size": TINY["spatial_size"], "features": TINY["features"]}
    run_inference(CONFIGS, input_dir, output_dir, trained / "models" / "model.pt", **sizes, **override)


def test_mistyped_dataset_dir_is_an_error(tmp_path):
    wf = _workflow(tmp_path / "out", dataset_dir=str(tmp_path / "no_such_folder"), num_epochs=1)
    with pytest.raises(Exception) as info:
        wf.run()
    assert "no_such_folder" in _messages(info.value) and "does not exist" in _messages(info.value)


def test_three_level_task_reports_raw_and_snapped_metrics(tmp_path):
    wf = _workflow(tmp_path, "task_3level.json", num_epochs=1)
    _run(wf)
    metrics = json.loads((tmp_path / "summary.json").read_text())["last_validation"]
    assert {"val_dice", "val_mse_raw", "val_mae_raw", "val_iou", "val_precision", "val_recall"} <= set(metrics)
    assert 0.0 <= metrics["val_mse_raw"] <= 1.0 and 0.0 <= metrics["val_mae_raw"] <= 1.0


def test_same_seed_gives_identical_metrics(tmp_path):
    results = []
    for run in ("a", "b"):
        wf = _workflow(tmp_path / run, num_epochs=1)
        _run(wf)
        results.append(json.loads((tmp_path / run / "summary.json").read_text())["last_validation"])
    assert results[0] == results[1]


def test_killed_run_resumes_at_the_right_epoch(tmp_path):
    """Stop a 3-epoch run in the middle of epoch 2, resume, and check it continues at epoch 2 and ends at 3."""
    from ignite.engine import Events

    class Killed(RuntimeError):
        pass

    wf = _workflow(tmp_path, num_epochs=3)
    trainer = wf.parser.get_parsed_content("train#trainer")
    per_epoch = len(trainer.data_loader)

    @trainer.on(Events.ITERATION_COMPLETED)
    def _kill(engine):
        if engine.state.epoch == 2 and engine.state.iteration == per_epoch + 1:
            raise Killed

    with pytest.raises(Exception) as info:
        wf.run()  # the bundle's own run list: attach checkpointing, then train
    assert isinstance(info.value, Killed) or isinstance(info.value.__cause__, Killed)
    assert (tmp_path / "checkpoints" / "checkpoint_epoch=1.pt").is_file()

    wf2 = _workflow(tmp_path, num_epochs=3, resume=True)
    trainer2 = wf2.parser.get_parsed_content("train#trainer")
    started = []
    trainer2.add_event_handler(Events.EPOCH_STARTED, lambda e: started.append(e.state.epoch))
    _run(wf2)
    assert started == [2, 3]
    assert trainer2.state.iteration == 3 * per_epoch


def test_resume_without_checkpoint_is_an_error(tmp_path):
    wf = _workflow(tmp_path, num_epochs=1, resume=True)
    with pytest.raises(Exception) as info:
        wf.run()
    assert "holds no checkpoint" in _messages(info.value)


@pytest.mark.slow
def test_multi_gpu_overlay_runs_with_two_cpu_processes(tmp_path):
    """torchrun with 2 processes and the gloo backend on phantoms (the DDP path users take on several GPUs).

    No datalist is given, so rank 0 generates the phantoms and writes the datalist while rank 1 waits.
    """
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "monai.bundle", "run",
        "--config_file", "['bundles/unet/configs/train.json','bundles/unet/configs/multi_gpu_train.json']",
        "--meta_file", "bundles/unet/configs/metadata.json",
        "--logging_file", "bundles/unet/configs/logging.conf",
        "--output_dir", str(out),
        "--num_epochs", "2",
    ]  # fmt: skip
    for key, value in TINY.items():
        cmd += [f"--{key}", repr(value)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_completed"] == 2
    assert (out / "models" / "model.pt").is_file()


def test_three_level_inference_writes_level_masks(trained, tmp_path):
    """inference.json with task 3level snaps to 0 / 125 / 255 (weights of any 1-channel net of this shape fit)."""
    image = sorted((trained / "synthetic_phantoms" / "images").glob("*.png"))[0]
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / image.name).write_bytes(image.read_bytes())
    _infer(trained, folder, tmp_path / "pred", task="3level")
    mask = np.asarray(Image.open(tmp_path / "pred" / f"{image.stem}_mask.png"))
    assert mask.shape == np.asarray(Image.open(image)).shape
    assert set(np.unique(mask)) <= {0, 125, 255}
    rows = list(csv.DictReader((tmp_path / "pred" / "severity.csv").open()))
    assert len(rows) == 1 and Path(rows[0]["image"]).name == image.name
    lung, infected = int((mask >= 125).sum()), int((mask == 255).sum())
    if lung:  # severity is computed on the same post-processed maps that were saved
        assert float(rows[0]["total_fraction"]) == pytest.approx(infected / lung, abs=1e-6)
    else:
        assert rows[0]["total_fraction"] == "" and rows[0]["total_reason"] == "no lung"


def test_study_schedule_overlay_builds_the_studies_network():
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.json"), str(CONFIGS / "study_schedule.json")])
    assert parser["spatial_size"] == [256, 256] and parser["batch_size"] == 16 and parser["num_epochs"] == 100
    assert parser["learning_rate"] == 1e-4
    net = parser.get_parsed_content("network_def")
    with torch.no_grad():
        assert net.eval()(torch.rand(1, 1, 256, 256)).shape == (1, 1, 256, 256)


def test_lite0_network_overlay_builds_a_flexible_unet_of_the_bundle_shape():
    """configs/net_lite0.json: MONAI's FlexibleUNet on the Lite0 encoder, 1 grey channel in, 1 logit out."""
    from monai.bundle import ConfigParser
    from monai.networks.nets import FlexibleUNet

    parser = ConfigParser()
    parser.read_config(
        [str(REPO / "bundles/unet/configs/train.json"), str(REPO / "bundles/unet/configs/net_lite0.json")]
    )
    parser["pretrained_encoder"] = False
    net = parser.get_parsed_content("network_def")
    assert isinstance(net, FlexibleUNet)
    with torch.no_grad():
        out = net.eval()(torch.rand(1, 1, 64, 64))
    assert out.shape == (1, 1, 64, 64)
