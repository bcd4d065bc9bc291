"""MONAI's own bundle tools accept bundles/unet offline: metadata validation, verify_net_in_out, ckpt_export."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "bundles" / "unet" / "configs"
SCHEMA = Path(__file__).with_name("meta_schema_subset.json")


def _bundle(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "monai.bundle", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)


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


@pytest.mark.parametrize("config", ["train.json", "inference.json"])
def test_verify_net_in_out(config):
    proc = _bundle(
        "verify_net_in_out", "--net_id", "network_def",
        "--meta_file", str(CONFIGS / "metadata.json"),
        "--config_file", str(CONFIGS / config),
        "--n", "4", "--any", "16",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "data shape of network is verified with no error" in proc.stdout + proc.stderr


def test_ckpt_export_to_torchscript(tmp_path):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "inference.json"))
    net = parser.get_parsed_content("network_def")
    ckpt = tmp_path / "model.pt"
    torch.save(net.state_dict(), ckpt)
    out = tmp_path / "model.ts"
    proc = _bundle(
        "ckpt_export", "--net_id", "network_def",
        "--filepath", str(out), "--ckpt_file", str(ckpt),
        "--meta_file", str(CONFIGS / "metadata.json"),
        "--config_file", str(CONFIGS / "inference.json"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    ts = torch.jit.load(str(out))
    x = torch.rand(1, 1, 128, 128)
    net.eval()
    assert torch.allclose(ts(x), net(x), atol=1e-5)


# --- classifier bundles ----------------------------------------------------------------------------------------

CLASSIFIER_BUNDLES = ["simple_cnn", "densenet121", "efficientnet_b0", "efficientnet_lite0", "vgg16", "xception"]


@pytest.mark.parametrize("name", CLASSIFIER_BUNDLES)
def test_classifier_bundle_layout_and_metadata(name):
    from monai.bundle import ConfigParser, verify_metadata

    bundle = REPO / "bundles" / name
    for link in ("train.json", "metadata.json", "logging.conf"):
        assert (bundle / link).is_symlink() and (bundle / link).resolve() == (bundle / "configs" / link).resolve()
    assert (bundle / "docs" / "README.md").is_file()
    configs = bundle / "configs"
    verify_metadata(meta_file=str(configs / "metadata.json"), filepath=str(SCHEMA))
    meta = json.loads((configs / "metadata.json").read_text())
    outputs = meta["network_data_format"]["outputs"]["pred"]
    assert list(outputs["channel_def"].values()) == meta["class_names"] and outputs["num_channels"] == 3
    shape = meta["network_data_format"]["inputs"]["image"]["spatial_shape"]
    for config in ("train.json", "inference.json"):
        parser = ConfigParser()
        parser.read_config(str(configs / config))
        assert parser["class_names"] == meta["class_names"] and parser["spatial_size"] == shape


@pytest.mark.parametrize("name", CLASSIFIER_BUNDLES)
def test_classifier_verify_net_in_out(name):
    """MONAI's verify_net_in_out (in-process, faster than the CLI) on the deployed network at its declared size.

    Only ``inference.json``: ``train.json`` builds the same network (plus dropout and ``pretrained_path``), and a
    224 x 224 / 299 x 299 forward pass of DenseNet or Xception costs seconds on a loaded CPU.
    """
    from monai.bundle import verify_net_in_out

    configs = REPO / "bundles" / name / "configs"
    verify_net_in_out(
        net_id="network_def", meta_file=str(configs / "metadata.json"), config_file=str(configs / "inference.json"),
        device="cpu",
    )  # fmt: skip


ALL_BUNDLES = sorted(p.name for p in (REPO / "bundles").iterdir() if (p / "configs" / "train.json").is_file())


@pytest.mark.parametrize("name", ALL_BUNDLES)
def test_every_bundle_has_a_multi_gpu_overlay_that_resolves(name):
    """multi_gpu_train.json merges onto train.json and its pieces resolve (the DDP network is built only in a
    process group, so the test parses the plain parts and checks the DDP wiring by id)."""
    from monai.bundle import ConfigParser

    configs = REPO / "bundles" / name / "configs"
    parser = ConfigParser()
    parser.read_config([str(configs / "train.json"), str(configs / "multi_gpu_train.json")])
    assert parser["network"]["_target_"] == "torch.nn.parallel.DistributedDataParallel"
    assert parser["train#dataloader#sampler"] == "@train#sampler"
    assert parser["train#sampler"]["_target_"] == "DistributedSampler"
    assert any("init_process_group" in s for s in parser["initialize"])
    assert any("checkpointer.attach" in s and "@rank == 0" in s for s in parser["run"])
    assert any("trainer.run()" in s for s in parser["run"])
    plain = ConfigParser()
    plain.read_config(str(configs / "train.json"))
    # everything train.json runs, the overlay runs too (rank-0 guards aside)
    assert len(parser["run"]) == len(plain["run"])
    assert all(s in parser["initialize"] for s in plain["initialize"])


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
