"""bundles/unet trains and evaluates on a folder dataset holding a truncated PNG and a non-image among good files.

The bad files are left out of the datalist by ``prepare_datalist`` (the indexer decodes every file as the loader
does) and listed in ``<output_dir>/input_issues.csv``; training does not stop on them. CPU, 32 x 32, seconds.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from bundle_helpers import UNET_TINY, make_workflow, run_workflow
from PIL import Image

from monaicxr.data.synthetic import make_phantom

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "bundles" / "unet" / "configs"


def _dataset(root: Path, n_good: int = 8) -> Path:
    """``images/`` + ``masks/`` phantoms at 64 x 64, plus ``cut.png`` (truncated) and ``text.png`` (not an image)."""
    for folder in ("images", "masks"):
        (root / folder).mkdir(parents=True)
    for i in range(n_good):
        p = make_phantom(i, size=64, kind="covid" if i % 2 else "normal")
        Image.fromarray(p.image).save(root / "images" / f"good{i}.png")
        Image.fromarray((p.lung * 255).astype(np.uint8)).save(root / "masks" / f"good{i}.png")
    data = (root / "images" / "good0.png").read_bytes()
    (root / "images" / "cut.png").write_bytes(data[: len(data) // 2])
    (root / "images" / "text.png").write_text("this is not an image\n")
    for name in ("cut.png", "text.png"):
        (root / "masks" / name).write_bytes((root / "masks" / "good0.png").read_bytes())
    return root


def test_train_and_evaluate_carry_on_past_bad_files(tmp_path):
    data = _dataset(tmp_path / "data")
    out = tmp_path / "run"
    run_workflow(make_workflow(CONFIGS, UNET_TINY, out, num_epochs=1, dataset_dir=str(data), split_mode="ratios"))
    assert json.loads((out / "summary.json").read_text())["epochs_completed"] == 1
    assert (out / "models" / "model.pt").is_file()
    with open(out / "input_issues.csv", newline="") as f:
        issues = {Path(r["file"]).name: r["reason"] for r in csv.DictReader(f)}
    assert set(issues) == {"cut.png", "text.png"}, issues
    datalist = json.loads((out / "datalist.json").read_text())
    used = {Path(i["image"]).name for s in ("training", "validation", "test") for i in datalist[s]}
    assert used == {f"good{i}.png" for i in range(8)}

    ev = make_workflow(
        CONFIGS, UNET_TINY, out, "evaluate.json", workflow_type="eval",
        dataset_dir=str(data), split_mode="ratios", ckpt_path=str(out / "models" / "model.pt"),
    )  # fmt: skip
    run_workflow(ev)
    with open(out / "input_issues.csv", newline="") as f:
        assert {Path(r["file"]).name for r in csv.DictReader(f)} == {"cut.png", "text.png"}


def test_inference_carries_on_past_bad_files(tmp_path):
    """A classifier's and the lung model's inference.json over a folder with two bad files among good ones."""
    from monai.bundle import ConfigWorkflow

    data = _dataset(tmp_path / "data", n_good=3)
    for bundle, rows_file in (("simple_cnn", "predictions.csv"), ("unet", None)):
        configs = REPO / "bundles" / bundle / "configs"
        out = tmp_path / f"pred_{bundle}"
        wf = ConfigWorkflow(
            config_file=str(configs / "inference.json"), meta_file=str(configs / "metadata.json"),
            logging_file=False, workflow_type="infer", input_dir=str(data / "images"), output_dir=str(out),
        )  # fmt: skip
        wf.initialize()
        run_workflow(wf)
        with open(out / "input_issues.csv", newline="") as f:
            issues = {Path(r["file"]).name for r in csv.DictReader(f)}
        assert issues == {"cut.png", "text.png"}, (bundle, issues)
        if rows_file:
            rows = [line.split(",")[0] for line in (out / rows_file).read_text().splitlines() if line]
            assert sorted(Path(r).name for r in rows) == ["good0.png", "good1.png", "good2.png"]
        else:
            assert len(list(out.rglob("*_mask.png"))) == 3
