"""The offline metadata schema subset, and the DDP settings and run.

verify_net_in_out, ckpt_export, the multi-GPU overlay and each bundle's metadata are checked for every bundle
in test_all_bundles.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "bundles" / "unet" / "configs"
SCHEMA = Path(__file__).with_name("meta_schema_subset.json")


def test_metadata_validates_against_the_schema_offline():
    from monai.bundle import verify_metadata

    # filepath names an existing schema file, so nothing is downloaded
    verify_metadata(meta_file=str(CONFIGS / "metadata.json"), filepath=str(SCHEMA))


def test_metadata_missing_a_field_is_refused(tmp_path):
    from monai.bundle import verify_metadata

    meta = json.loads((CONFIGS / "metadata.json").read_text())
    del meta["network_data_format"]["inputs"]["image"]["num_channels"]
    bad = tmp_path / "metadata.json"
    bad.write_text(json.dumps(meta))
    with pytest.raises(Exception, match="num_channels"):
        verify_metadata(meta_file=str(bad), filepath=str(SCHEMA))


def test_weighted_sampler_under_ddp_is_refused():
    from monaicxr.engines import check_distributed_settings

    check_distributed_settings(weighted_sampler=False)
    with pytest.raises(ValueError, match="class_weighted_loss"):
        check_distributed_settings(weighted_sampler=True)


@pytest.mark.slow
def test_classifier_multi_gpu_overlay_runs_with_two_cpu_processes(tmp_path):
    """torchrun, 2 processes, gloo, on phantoms: the lung-cropped Lite0 classifier (weights card on rank 0)."""
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    cfg = "['bundles/efficientnet_lite0/configs/train.json','bundles/efficientnet_lite0/configs/multi_gpu_train.json']"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "monai.bundle", "run", "--config_file", cfg,
        "--meta_file", "bundles/efficientnet_lite0/configs/metadata.json", "--logging_file",
        "bundles/efficientnet_lite0/configs/logging.conf", "--output_dir", str(out), "--num_epochs", "1",
        "--spatial_size", "[32,32]", "--batch_size", "4", "--val_batch_size", "4", "--num_workers", "0",
        "--show_progress", "False", "--save_gallery", "False", "--synthetic_per_class", "4",
        "--split_ratios", "[0.5,0.25,0.25]",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert json.loads((out / "summary.json").read_text())["epochs_completed"] == 1
    assert json.loads((out / "models" / "model.json").read_text())["input"]["lung_input"] == "crop_mask"
