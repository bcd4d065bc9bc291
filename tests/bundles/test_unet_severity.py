"""bundles/unet evaluate.json: JSON-configured post-processing and the severity CSV (3-level task), and the
infection overlay configs/task_infection.json (its own weights file, infection inside the predicted lungs)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_helpers import UNET_TINY, error_messages, make_workflow, run_workflow
from monai.bundle import ConfigParser, ConfigWorkflow
from monai.networks.nets import BasicUNet
from PIL import Image

from monaicxr.data.synthetic import make_phantom
from monaicxr.workflows.bundles import run_bundle

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "bundles" / "unet" / "configs"
TINY = UNET_TINY


def test_three_level_evaluation_post_processes_and_writes_severity(tmp_path):
    run_workflow(make_workflow(CONFIGS, TINY, tmp_path, "task_3level.json", num_epochs=1))
    wf = make_workflow(
        CONFIGS, TINY, tmp_path, "task_3level.json", "evaluate.json", workflow_type="eval",
        ckpt_path=str(tmp_path / "models" / "model.pt"), postprocess=True,
    )  # fmt: skip
    run_workflow(wf)
    metrics = dict(csv.reader((tmp_path / "eval" / "metrics.csv").open()))
    assert {"val_dice", "val_mse_raw", "val_iou"} <= set(metrics)
    rows = {Path(r["image"]).name: r for r in csv.DictReader((tmp_path / "eval" / "severity.csv").open())}
    val = json.loads((tmp_path / "datalist.json").read_text())["validation"]
    assert set(rows) == {Path(item["image"]).name for item in val}
    transforms = wf.parser.get_parsed_content("validate#preprocessing")
    for item in val:
        level = transforms(item)["level"][0].numpy()
        lung, infection = level >= 1, level == 2
        row = rows[Path(item["image"]).name]
        assert float(row["ref_total_fraction"]) == pytest.approx(infection.sum() / lung.sum(), abs=1e-9)
        assert int(row["ref_right_lung_px"]) + int(row["ref_left_lung_px"]) <= int(lung.sum())
        if row["total_fraction"]:  # the prediction's severity, after KeepLargestLungs / FillLungHoles / Restrict
            assert 0.0 <= float(row["total_fraction"]) <= 1.0
    overlay = Image.open(next((tmp_path / "eval" / "overlays").glob("*.png")))
    assert overlay.height > overlay.width >= 256  # severity caption below the image
    assert np.asarray(overlay).dtype == np.uint8


# --------------------------------------------------------------------- task_infection.json: its own weights file


def _bundle_copy(tmp_path: Path) -> Path:
    """configs and the shipped lung weights (the predicted lungs) in tmp; no models/model_infection.pt yet."""
    copy = tmp_path / "unet"
    shutil.copytree(CONFIGS, copy / "configs")
    (copy / "models").mkdir()
    shutil.copy(REPO / "bundles/unet/models/model.pt", copy / "models/model.pt")
    return copy


def _stand_in_infection_weights(copy: Path, everywhere: bool = False) -> Path:
    """A tiny BasicUNet (UNET_TINY features) as models/model_infection.pt; ``everywhere``: output +10 logits."""
    net = BasicUNet(spatial_dims=2, in_channels=1, out_channels=1, features=TINY["features"], norm="batch")
    state = net.state_dict()
    if everywhere:
        state["final_conv.weight"].zero_()
        state["final_conv.bias"].fill_(10.0)
    torch.save(state, copy / "models/model_infection.pt")
    return copy / "models/model_infection.pt"


@pytest.mark.parametrize("order", [("task_infection.json", "evaluate.json"), ("evaluate.json", "task_infection.json")])
def test_infection_overlay_chooses_its_weights_and_lungs_in_either_order(order):
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.json"), *(str(CONFIGS / f) for f in order)])
    parser["bundle_root"] = "B"
    assert parser.get_parsed_content("ckpt_path") == "B/models/model_infection.pt"
    assert (parser["task"], parser["infection_lungs"], parser["infection_min_size"]) == ("infection", "predicted", 0)
    plain = ConfigParser()
    plain.read_config([str(CONFIGS / "train.json"), str(CONFIGS / "evaluate.json")])
    plain["bundle_root"] = "B"  # evaluate.json's own defaults are unchanged
    assert plain.get_parsed_content("ckpt_path") == "B/models/model.pt"
    assert (plain["task"], plain["infection_lungs"], plain["infection_min_size"]) == ("lung", "none", 0)


def test_infection_overlay_missing_weights_is_an_error_before_any_work(tmp_path):
    copy = _bundle_copy(tmp_path)
    configs = copy / "configs"
    wf = make_workflow(
        configs, TINY, tmp_path / "run", "task_infection.json", "evaluate.json", workflow_type="eval",
        bundle_root=str(copy),
    )  # fmt: skip
    with pytest.raises(Exception) as info:
        wf.run()
    assert f"checkpoint {copy}/models/model_infection.pt does not exist" in error_messages(info.value)
    assert not (tmp_path / "run" / "datalist.json").exists()  # no data was prepared, nothing cached
    with pytest.raises(FileNotFoundError, match=r"unet/models/model_infection\.pt does not exist"):
        run_bundle(copy, "evaluate", overlays=["task_infection"], overrides={"output_dir": str(tmp_path / "cli")})
    assert not (tmp_path / "cli").exists()


def test_infection_overlay_evaluates_inside_the_predicted_lungs(tmp_path):
    copy = _bundle_copy(tmp_path)
    weights = _stand_in_infection_weights(copy)
    wf = make_workflow(
        copy / "configs", TINY, tmp_path, "task_infection.json", "evaluate.json", workflow_type="eval",
        bundle_root=str(copy),
    )  # fmt: skip
    run_workflow(wf)
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["checkpoint"] == str(weights)
    infection = json.loads((tmp_path / "eval" / "infection_summary.json").read_text())
    assert infection  # pooled infection figures, from the lungs the shipped lung model predicted
    rows = list(csv.DictReader((tmp_path / "eval" / "severity.csv").open()))
    val = json.loads((tmp_path / "datalist.json").read_text())["validation"]
    assert len(rows) == len(val)
    for row in rows:
        if row["total_fraction"]:
            assert 0.0 <= float(row["total_fraction"]) <= 1.0


def test_infection_overlay_inference_writes_the_infection_mask(tmp_path):
    copy = _bundle_copy(tmp_path)
    _stand_in_infection_weights(copy, everywhere=True)
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(make_phantom(0, size=80, kind="covid").image).save(folder / "covid.png")
    wf = ConfigWorkflow(
        config_file=[str(copy / "configs/inference.json"), str(copy / "configs/task_infection.json")],
        meta_file=str(copy / "configs/metadata.json"),
        logging_file=False,
        workflow_type="infer",
        bundle_root=str(copy),
        input_dir=str(folder),
        output_dir=str(tmp_path / "pred"),
        spatial_size=TINY["spatial_size"],
        features=TINY["features"],
    )
    wf.initialize()
    run_workflow(wf)
    mask = np.asarray(Image.open(tmp_path / "pred" / "covid_mask.png"))
    assert mask.shape == (80, 80) and (mask == 255).all()  # the infection weights ran (infected everywhere)
    assert (tmp_path / "pred" / "covid_overlay.png").is_file()
