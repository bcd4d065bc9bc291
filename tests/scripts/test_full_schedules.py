"""scripts/full_schedules.sh (the GPU schedules) runs end to end on the CPU at tiny sizes and writes its table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "full_schedules.sh"


@pytest.mark.slow
def test_tiny_schedules_train_and_tabulate(tmp_path):
    env = dict(os.environ, TINY="1", ONLY="unet_3level simple_cnn", PYTHON=sys.executable, OMP_NUM_THREADS="1")
    proc = subprocess.run(["bash", str(SCRIPT), str(tmp_path)], cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seg, cls = (t.splitlines() for t in (tmp_path / "results.md").read_text().strip().split("\n\n"))
    assert (
        seg[0].startswith("| run |")
        and "val_dice" in seg[0]
        and [r.split("|")[1].strip() for r in seg[2:]] == ["unet_3level"]
    )
    assert "val_accuracy" in cls[0] and [r.split("|")[1].strip() for r in cls[2:]] == ["simple_cnn"]
    for job in ("unet_3level", "simple_cnn"):
        weights = tmp_path / "weights" / f"{job}.pt"
        assert weights.is_file() and weights.stat().st_size > 0, f"{job}: no half-precision weights"
    assert "done   unet_3level" in proc.stdout and "done   simple_cnn" in proc.stdout


def test_refuses_a_cpu_full_run_and_a_missing_dataset(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, TINY="0")
    proc = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path), str(tmp_path / "no_such_dataset")], cwd=REPO, env=env,
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "no_such_dataset does not exist" in proc.stderr
    import torch

    if torch.cuda.is_available():
        return  # the full schedules are for this machine: nothing to refuse
    proc = subprocess.run(["bash", str(SCRIPT), str(tmp_path), str(tmp_path)], cwd=REPO, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2 and "no CUDA GPU here" in proc.stderr
