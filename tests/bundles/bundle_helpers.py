"""Shared by the bundle tests: build a ConfigWorkflow with overrides, run the exact user command, read errors,
and the overrides that make any bundle run in seconds on the CPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from monai.bundle import ConfigWorkflow

REPO = Path(__file__).resolve().parents[2]


def make_workflow(
    configs: Path, base: dict, output_dir: Path, *overlays: str, workflow_type: str = "train", **override
):
    """``configs/train.json`` plus ``overlays`` with ``base`` and ``override`` applied, initialised."""
    files = [str(configs / "train.json")] + [str(configs / name) for name in overlays]
    wf = ConfigWorkflow(
        config_file=files,
        meta_file=str(configs / "metadata.json"),
        logging_file=False,
        workflow_type=workflow_type,
        **{**base, "output_dir": str(output_dir), **override},
    )
    wf.initialize()
    return wf


def run_workflow(wf: ConfigWorkflow) -> None:
    wf.run()
    wf.finalize()


def error_messages(exc: BaseException | None) -> str:
    """The messages of an exception and of everything it was raised from (config errors wrap the cause)."""
    parts = []
    while exc is not None:
        parts.append(str(exc))
        exc = exc.__cause__
    return " | ".join(parts)


def train_with_cli(config_file: str, overrides: dict) -> subprocess.CompletedProcess:
    """``python -m monai.bundle run --config_file <config_file> --key value ...`` from the repository root."""
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", config_file]
    for key, value in overrides.items():
        cmd += [f"--{key}", value if isinstance(value, str) else repr(value)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def copy_images(paths, folder: Path) -> Path:
    """Copy image files into a new ``folder`` (an inference input folder) and return it."""
    folder.mkdir(parents=True)
    for p in paths:
        (folder / p.name).write_bytes(p.read_bytes())
    return folder


def run_inference(configs: Path, input_dir: Path, output_dir: Path, ckpt_path: Path, **override) -> ConfigWorkflow:
    """Run a bundle's standalone ``configs/inference.json`` on ``input_dir`` with ``override``; return the workflow."""
    wf = ConfigWorkflow(
        config_file=str(configs / "inference.json"),
        meta_file=str(configs / "metadata.json"),
        logging_file=False,
        workflow_type="infer",
        input_dir=str(input_dir),
        output_dir=str(output_dir),
        ckpt_path=str(ckpt_path),
        **override,
    )
    wf.initialize()
    run_workflow(wf)
    return wf


#: overrides that make any bundle's train, evaluate and inference take seconds on the CPU (ids a config lacks are
#: added and left unused): 32 x 32, small batches, no worker processes, no progress bars or galleries, float32
TINY_BASE = {
    "spatial_size": [32, 32],
    "batch_size": 4,
    "val_batch_size": 4,
    "num_workers": 0,
    "show_progress": False,
    "save_gallery": False,
    "max_overlays": 1,
    "num_epochs": 1,
    "precision": "fp32",
}

#: per bundle, the width ids (present in its train.json and inference.json) that shrink its network; a bundle not
#: listed here runs at its own widths, at TINY_BASE's size
TINY_WIDTHS = {
    "resunet": {"channels": [4, 8, 8, 16, 16]},
    "simple_cnn": {"conv_channels": [4, 4, 4], "dense": [16, 8]},
    "unet": {"features": [4, 4, 8, 8, 16, 4]},
}


def tiny_overrides(name: str) -> dict:
    """:data:`TINY_BASE` with bundle ``name``'s :data:`TINY_WIDTHS`."""
    return {**TINY_BASE, **TINY_WIDTHS.get(name, {})}


#: bundles/unet at a size where a training run takes seconds on the CPU (shared by the unet test modules)
UNET_TINY = {
    "spatial_size": [32, 32],
    **TINY_WIDTHS["unet"],
    "synthetic_per_class": 3,
    "batch_size": 4,
    "val_batch_size": 4,
    "num_workers": 0,
    "show_progress": False,
    "max_overlays": 2,
}


def classification_phantoms(out: Path) -> Path:
    """One phantom datalist for the classifier bundles (4 per class, split 2 / 1 / 1): its path."""
    from monaicxr.data.prepare import prepare_datalist

    prepare_datalist(
        str(out), task="classification", split_mode="ratios", ratios=(0.5, 0.25, 0.25), synthetic_per_class=4
    )
    return out / "datalist.json"
