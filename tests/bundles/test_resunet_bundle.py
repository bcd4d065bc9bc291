"""bundles/resunet: MONAI UNet with residual units for infection segmentation, and every loss of the loss study.

Everything runs on the CPU at 32 x 32 with a narrow network on synthetic phantoms, so each training takes seconds.
Inference, the exports and the metadata are checked in test_all_bundles.py, for every bundle.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from bundle_helpers import make_workflow, run_workflow, train_with_cli
from monai.networks.blocks import ResidualUnit

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "bundles" / "resunet" / "configs"
STUDY_LOSSES = ["bce", "dice", "dicece", "dicefocal", "focal", "tversky"]

TINY = {
    "spatial_size": [32, 32],
    "channels": [4, 8, 8, 16, 16],
    "synthetic_per_class": 3,
    "batch_size": 4,
    "val_batch_size": 4,
    "num_workers": 0,
    "show_progress": False,
    "max_overlays": 2,
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """Two epochs through the exact user command (``python -m monai.bundle run``)."""
    out = tmp_path_factory.mktemp("resunet_train")
    proc = train_with_cli("bundles/resunet/train.json", {**TINY, "num_epochs": 2, "output_dir": str(out)})
    (out / "stdout.txt").write_text(proc.stdout + proc.stderr)
    return out


def test_train_writes_every_output_for_the_infection_task(trained):
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["epochs_completed"] == 2
    assert summary["data"]["synthetic"] is True
    assert (trained / "models" / "model.pt").is_file()
    assert (trained / "checkpoints" / "checkpoint_epoch=2.pt").is_file()
    assert (trained / "metrics" / "val_dice_raw.csv").is_file()
    assert len(list((trained / "overlays").glob("epoch_*/*.png"))) == 2 * TINY["max_overlays"]


def test_network_is_monai_unet_with_residual_units(tmp_path):
    wf = make_workflow(CONFIGS, TINY, tmp_path, num_epochs=1)
    net = wf.parser.get_parsed_content("network")
    assert type(net).__name__ == "UNet"
    assert net.num_res_units == 2
    assert sum(isinstance(m, ResidualUnit) for m in net.modules()) == 2 * len(TINY["channels"]) - 1
    assert wf.parser.get_parsed_content("task") == "infection"


def test_per_image_infection_dice_matches_an_independent_dice(trained):
    """Evaluation's per-image Dice equals one computed here; images without infection have none (NaN)."""
    wf = make_workflow(
        CONFIGS, TINY, trained, "evaluate.json", workflow_type="eval", ckpt_path=str(trained / "models" / "model.pt")
    )
    run_workflow(wf)
    rows = list(csv.reader((trained / "eval" / "val_dice_raw.csv").open()))
    written = {Path(r[0]).stem: float(r[1]) for r in rows[1:] if r[0] not in ("mean", "median", "std")}
    val = json.loads((trained / "datalist.json").read_text())["validation"]
    assert len(written) == len(val)
    network = wf.parser.get_parsed_content("network").eval()
    transforms = wf.parser.get_parsed_content("validate#preprocessing")
    n_with_infection = 0
    for item in val:
        d = transforms(item)
        with torch.no_grad():
            pred = (torch.sigmoid(network(d["image"][None])) > 0.5).float()[0]
        truth = d["label"]
        got = written[Path(item["image"]).stem]
        if float(truth.sum()) == 0:
            assert math.isnan(got)  # no infection to find: not counted, never a silent 0 or 1
            continue
        n_with_infection += 1
        expected = 2 * float((pred * truth).sum()) / float(pred.sum() + truth.sum())
        assert got == pytest.approx(expected, abs=1e-4)
    assert n_with_infection > 0


@pytest.mark.parametrize("loss_name", STUDY_LOSSES)
def test_every_loss_of_the_study_trains(loss_name, tmp_path):
    wf = make_workflow(CONFIGS, TINY, tmp_path, num_epochs=1, loss_name=loss_name)
    run_workflow(wf)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["epochs_completed"] == 1
    assert {"val_dice", "val_iou", "val_precision", "val_recall", "val_hd95"} <= set(summary["last_validation"])
    assert math.isfinite(float(wf.parser.get_parsed_content("train#trainer").state.output["loss"]))
