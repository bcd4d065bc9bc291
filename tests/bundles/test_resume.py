"""Long schedules that survive interruption (bundles/unet): a hard-killed run, resumed with ``--resume True``,
ends with the same weights as an uninterrupted one; the time budget; the non-finite guard.

The kills are real ``SIGKILL``s of ``python -m monai.bundle run`` (through ``interrupt.py``), in the middle of an
epoch and halfway through writing a checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_helpers import UNET_TINY, make_workflow, run_workflow
from ignite.engine import Events
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "bundles" / "unet" / "configs"
HERE = Path(__file__).resolve().parent

#: big enough that the validation Dice moves between epochs (so the best-model and LR-plateau state matter)
SMALL = {
    "spatial_size": [64, 64],
    "features": [8, 8, 16, 16, 32, 8],
    "synthetic_per_class": 4,
    "batch_size": 2,
    "val_batch_size": 4,
    "learning_rate": 0.01,
    "num_epochs": 3,
    "show_progress": False,
    "max_overlays": 0,
}


def _cmd(output_dir: Path, kill: str | None = None, **override) -> list[str]:
    args = ["run", "--config_file", "bundles/unet/configs/train.json", "--output_dir", str(output_dir)]
    for key, value in {**SMALL, **override}.items():
        args += [f"--{key}", value if isinstance(value, str) else repr(value)]
    if kill is None:
        return [sys.executable, "-m", "monai.bundle", *args]
    return [sys.executable, str(HERE / "interrupt.py"), kill, *args]


def _run(output_dir: Path, kill: str | None = None, **override) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(_cmd(output_dir, kill, **override), cwd=REPO, capture_output=True, text=True,
                          timeout=600, env=env)  # fmt: skip
    (output_dir / f"log_{kill or 'run'}.txt").write_text(proc.stdout + proc.stderr)
    return proc


def _weights(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("model", state)


def _assert_identical(a: Path, b: Path) -> None:
    for name in ("checkpoints/checkpoint_final.pt", "models/model.pt"):
        wa, wb = _weights(a / name), _weights(b / name)
        assert wa.keys() == wb.keys()
        different = [k for k in wa if not torch.equal(wa[k], wb[k])]
        assert not different, f"{name}: {len(different)} tensors differ, e.g. {different[:3]}"


@pytest.fixture(scope="module")
def references(tmp_path_factory) -> dict[int, Path]:
    """Uninterrupted runs, keyed by num_workers (worker seeding differs from in-process transforms)."""
    out = {}
    for workers in (0, 1):
        folder = tmp_path_factory.mktemp(f"reference_w{workers}")
        proc = _run(folder, num_workers=workers)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out[workers] = folder
    return out


def _steps_per_epoch(folder: Path) -> int:
    n_train = json.loads((folder / "summary.json").read_text())["data"]["n_train"]
    return math.ceil(n_train / SMALL["batch_size"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "workers, moment",
    [
        (0, "mid-epoch 2"),
        (0, "writing checkpoint_epoch=2.pt"),
        (1, "mid-epoch 3"),  # after the best epoch: the restored best score keeps model.pt
    ],
)
def test_killed_run_resumes_to_identical_weights(references, tmp_path, workers, moment):
    steps = _steps_per_epoch(references[workers])
    assert steps >= 3
    if moment.startswith("mid-epoch"):
        epoch = int(moment[-1])
        kill = f"iteration={(epoch - 1) * steps + steps // 2 + 1}"
    else:
        kill = "save=checkpoint_epoch=2.pt"
    proc = _run(tmp_path, kill, num_workers=workers)
    assert proc.returncode == -9, proc.stderr[-3000:]  # SIGKILL
    assert not (tmp_path / "checkpoints" / "checkpoint_final.pt").exists()
    if kill.startswith("save"):
        assert (tmp_path / "checkpoints" / "checkpoint_epoch=2.pt.tmp").is_file()  # the half-written file

    proc = _run(tmp_path, num_workers=workers, resume=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    resumed_from = epoch - 1 if moment.startswith("mid-epoch") else 1
    assert f"Resuming from {tmp_path / 'checkpoints'}/checkpoint_epoch={resumed_from}.pt" in log
    assert json.loads((tmp_path / "summary.json").read_text())["epochs_completed"] == SMALL["num_epochs"]
    _assert_identical(references[workers], tmp_path)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["checkpoint_epoch=2.pt", "checkpoint_epoch=3.pt", "checkpoint_final.pt"]  # n_saved 2


def test_time_budget_stops_after_an_epoch_and_resume_finishes(tmp_path, caplog):
    wf = make_workflow(CONFIGS, UNET_TINY, tmp_path, num_epochs=3, time_budget_minutes=1e-6)
    run_workflow(wf)
    assert json.loads((tmp_path / "summary.json").read_text())["epochs_completed"] == 1
    assert (tmp_path / "checkpoints" / "checkpoint_epoch=1.pt").is_file()
    assert wf.parser.get_parsed_content("train#time_budget").stopped

    wf2 = make_workflow(CONFIGS, UNET_TINY, tmp_path, num_epochs=3, resume=True)
    trainer = wf2.parser.get_parsed_content("train#trainer")
    started = []
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: started.append(e.state.epoch))
    run_workflow(wf2)
    assert started == [2, 3]


def test_nan_image_is_left_out_and_reported(tmp_path):
    """A float TIFF holding NaN in a given datalist: left out before training, named in input_issues.csv.

    ``prepare_datalist`` decodes every file as the loader does (monaicxr.io.reader refuses NaN), so the run
    carries on with the other films and says which file it left out and why; ``NonFiniteGuard`` is the second
    line, for non-finite values a transform makes (tests/handlers/test_training.py and the test below).
    """
    import csv

    from monaicxr.data.prepare import prepare_datalist

    data = prepare_datalist(output_dir=str(tmp_path), synthetic_per_class=3)
    bad = Path(data["training"][0]["image"]).with_suffix(".tif")
    pixels = np.asarray(Image.open(data["training"][0]["image"]), dtype=np.float32)
    pixels[10:20, 10:20] = np.nan
    Image.fromarray(pixels, mode="F").save(bad)
    listing = json.loads((tmp_path / "datalist.json").read_text())
    listing["training"][0]["image"] = str(bad)
    datalist = tmp_path / "with_nan.json"
    datalist.write_text(json.dumps(listing))

    overrides = {k: v for k, v in UNET_TINY.items()}
    proc = _run(tmp_path, datalist_file=str(datalist), num_epochs=1, **{**overrides, "batch_size": 8})
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / "input_issues.csv", newline="") as f:
        issues = {r["file"]: r["reason"] for r in csv.DictReader(f)}
    assert list(issues) == [str(bad)] and "NaN" in issues[str(bad)], issues
    log = proc.stdout + proc.stderr
    assert "input_issues.csv" in log, log[-3000:]


def test_nan_loss_stops_before_the_optimizer_step(tmp_path):
    """The guard checks the loss before the backward pass, so the weights stay finite and no NaN is saved."""
    wf = make_workflow(CONFIGS, UNET_TINY, tmp_path, num_epochs=2)
    wf.parser["loss"] = "$lambda pred, label: pred.mean() * float('nan')"
    wf.parser.parse(True)  # re-parse with the override (the workflow was initialised before it)
    network = wf.parser.get_parsed_content("network")
    with pytest.raises(Exception) as info:
        wf.run()
    message = repr(info.value) + repr(info.value.__cause__)
    assert "non-finite loss" in message and ".png" in message
    assert all(torch.isfinite(p).all() for p in network.parameters())
    assert not (tmp_path / "models" / "model.pt").exists()
