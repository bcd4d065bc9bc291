"""bundles/unet evaluate.json: JSON-configured post-processing and the severity CSV (3-level task)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from bundle_helpers import UNET_TINY, make_workflow, run_workflow
from PIL import Image

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
