"""bundles/u2net: small, full and multitask train -> evaluate -> inference on tiny synthetic phantoms, bad input.

Everything runs on the CPU at 32 x 32 on 64 x 64 phantoms. Outputs are checked independently of the bundle's
own code: Dice recomputed from the network, accuracy with scikit-learn from the predictions CSV, the severity
CSVs against fractions computed here (scipy components) from the written masks. Small's inference, the exports
and the metadata are checked in test_all_bundles.py, for every bundle.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_helpers import TINY_BASE, error_messages, make_workflow, run_workflow
from monai.bundle import ConfigWorkflow
from PIL import Image
from scipy import ndimage

from monaicxr.data.records import write_datalist
from monaicxr.data.registry import index_dataset
from monaicxr.data.synthetic import write_phantom_dataset

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "bundles" / "u2net" / "configs"

TINY = {**TINY_BASE, "max_overlays": 2, "precision": "auto"}  # the bundle's own precision


def _workflow(output_dir: Path, *overlays: str, workflow_type: str = "train", **override) -> ConfigWorkflow:
    return make_workflow(CONFIGS, TINY, output_dir, *overlays, workflow_type=workflow_type, **override)


def _run_datalist(run: Path) -> Path:
    """The datalist a training run used: written by the bundle, or the one the test gave it."""
    written = run / "datalist.json"
    return written if written.is_file() else run / "input_datalist.json"


def _evaluate(run: Path, *overlays: str, **override) -> ConfigWorkflow:
    override.setdefault("datalist_file", str(_run_datalist(run)))
    override.setdefault("ckpt_path", str(run / "models" / "model.pt"))
    wf = _workflow(run, *overlays, "evaluate.json", workflow_type="eval", **override)
    run_workflow(wf)
    return wf


def _infer(run: Path, input_dir: Path, output_dir: Path, *overlays: str, **override) -> None:
    wf = ConfigWorkflow(
        config_file=[str(CONFIGS / "inference.json")] + [str(CONFIGS / o) for o in overlays],
        meta_file=str(CONFIGS / "metadata.json"),
        logging_file=False,
        workflow_type="infer",
        input_dir=str(input_dir),
        output_dir=str(output_dir),
        ckpt_path=str(run / "models" / "model.pt"),
        spatial_size=TINY["spatial_size"],
        **override,
    )
    wf.initialize()
    run_workflow(wf)


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(path.open()))


def _fraction(lung: np.ndarray, infection: np.ndarray) -> dict[str, float | None]:
    """Infected fraction of the patient's right (image left) and left lung and of both, computed here with scipy."""
    labels, n = ndimage.label(lung, structure=np.ones((3, 3), bool))
    if n == 0:
        return {"right": None, "left": None, "total": None}
    sizes = np.bincount(labels.ravel())[1:]
    comps = [labels == k + 1 for k in np.argsort(-sizes, kind="stable")[:2]]
    comps.sort(key=lambda c: np.nonzero(c)[1].mean())
    out: dict[str, float | None] = {"right": None, "left": None}
    if len(comps) == 2:
        out["right"], out["left"] = (float((infection & c).sum() / c.sum()) for c in comps)
    else:  # one component: the image half holding its centroid (image left = patient right)
        side = "right" if np.nonzero(comps[0])[1].mean() < (lung.shape[1] - 1) / 2 else "left"
        out[side] = float((infection & comps[0]).sum() / comps[0].sum())
    union = np.logical_or.reduce(comps)
    out["total"] = float((infection & union).sum() / union.sum())
    return out


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("phantoms") / "set"
    write_phantom_dataset(root, n_per_class=3, size=64, seed=0)
    return root


def _datalist(phantoms: Path, path: Path, n_train: int, n_val: int) -> Path:
    result = index_dataset(phantoms, layout="covidqu_flat", verify=False)
    records = sorted(result.records, key=lambda r: (r.id[-1], r.id))  # interleave the classes
    extra = {"source": result.source, "synthetic": True, "root": str(phantoms)}
    split = {"train": records[:n_train], "val": records[n_train : n_train + n_val]}
    return write_datalist(path, split, result.classes, extra=extra)


@pytest.fixture(scope="module")
def small(tmp_path_factory, phantoms) -> Path:
    """U2Net small, lung task, from a dataset folder (the bundle indexes, splits and writes the datalist)."""
    out = tmp_path_factory.mktemp("u2net_small")
    run_workflow(_workflow(out, dataset_dir=str(phantoms)))
    return out


@pytest.fixture(scope="module")
def multitask(tmp_path_factory, phantoms) -> Path:
    """U2Net small with the 3-class head (3-level segmentation), 1 epoch on 6 phantoms, validated on 3."""
    out = tmp_path_factory.mktemp("u2net_multitask")
    datalist = _datalist(phantoms, out / "input_datalist.json", 6, 3)
    run_workflow(_workflow(out, "multitask.json", datalist_file=str(datalist)))
    return out


def test_small_train_writes_every_output(small):
    summary = json.loads((small / "summary.json").read_text())
    assert summary["epochs_completed"] == 1 and summary["data"]["network"] == "U2Net small"
    assert summary["data"]["loss"] == "bce with deep supervision (same)"
    assert 0.0 <= summary["best_metric"] <= 1.0
    assert (small / "models" / "model.pt").is_file()
    assert (small / "checkpoints" / "checkpoint_epoch=1.pt").is_file()
    assert (small / "metrics" / "val_dice_raw.csv").is_file()
    assert len(list((small / "overlays").glob("epoch_001/*.png"))) == TINY["max_overlays"]
    assert _rows(small / "metrics" / "input_issues.csv") == []  # checked, nothing wrong with the phantoms


def test_deep_supervision_loss_sums_fused_and_six_side_outputs():
    from monai.bundle import ConfigParser

    from monaicxr.networks import U2Net

    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "train.json"))
    assert parser["loss_name"] == "bce" and parser["deep_supervision"] is True
    loss = parser.get_parsed_content("seg_loss")
    tiny = {"encoder": [[2, 4]] * 6, "decoder": [[2, 4]] * 5}  # the outputs' contract, not the widths, matters here
    net = U2Net(spatial_dims=2, in_channels=1, out_channels=1, config=tiny).train()
    x, y = torch.rand(2, 1, 40, 40), (torch.rand(2, 1, 40, 40) > 0.5).float()
    outputs = net(x)
    assert isinstance(outputs, list) and len(outputs) == 7 and all(o.shape == y.shape for o in outputs)
    bce = torch.nn.BCEWithLogitsLoss()
    assert float(loss(outputs, y)) == pytest.approx(sum(float(bce(o, y)) for o in outputs), rel=1e-5)
    # an extra "ignore" target channel is honoured at every level (side outputs are at full resolution)
    ignore = torch.zeros_like(y)
    ignore[..., :20] = 1
    y_ignored = torch.where(ignore.bool(), 1 - y, y)  # wrong labels, but only where ignored
    with_channel = float(loss(outputs, torch.cat([y_ignored, ignore], 1)))
    kept = [float(bce(o[..., 20:], y[..., 20:])) for o in outputs]
    assert with_channel == pytest.approx(sum(kept), rel=1e-4)


def test_small_evaluate_dice_matches_an_independent_dice(small):
    wf = _evaluate(small)
    rows = list(csv.reader((small / "eval" / "val_dice_raw.csv").open()))
    written = {Path(r[0]).stem: float(r[1]) for r in rows[1:]}
    val = json.loads((small / "datalist.json").read_text())["validation"]
    assert len(written) == len(val) > 0
    network = wf.parser.get_parsed_content("network").eval()
    transforms = wf.parser.get_parsed_content("validate#preprocessing")
    for item in val:
        d = transforms(item)
        with torch.no_grad():
            out = network(d["image"][None])
        assert isinstance(out, torch.Tensor)  # eval mode: the fused output only
        pred = (torch.sigmoid(out) > 0.5).float()[0]
        inter, denom = float((pred * d["label"]).sum()), float(pred.sum() + d["label"].sum())
        assert written[Path(item["image"]).stem] == pytest.approx(2 * inter / denom, abs=1e-4)
    assert len(list((small / "eval" / "overlays").glob("*.png"))) == TINY["max_overlays"]
    assert not (small / "eval" / "severity.csv").exists()  # lung task: no infection, no severity


def test_full_network_trains_through_the_bundle(phantoms, tmp_path):
    """The 44 M-parameter net: one epoch of one batch of 4 phantoms at 32 x 32, then validation on 2."""
    datalist = _datalist(phantoms, tmp_path / "input_datalist.json", 4, 2)
    wf = _workflow(tmp_path / "run", "full.json", datalist_file=str(datalist))
    net = wf.parser.get_parsed_content("network_def")
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(44.0e6, rel=0.01)
    run_workflow(wf)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["epochs_completed"] == 1 and summary["data"]["network"] == "U2Net full"
    assert np.isfinite(summary["last_validation"]["val_dice"])


def test_multitask_evaluator_reports_segmentation_and_classification(multitask):
    from sklearn.metrics import accuracy_score

    _evaluate(multitask, "multitask.json")
    metrics = dict(csv.reader((multitask / "eval" / "metrics.csv").open()))
    assert {"val_dice", "val_iou", "val_precision", "val_recall", "val_accuracy", "val_mse_raw"} <= set(metrics)
    predictions = _rows(multitask / "eval" / "classification" / "predictions.csv")
    assert len(predictions) == 3
    expected = accuracy_score([r["true"] for r in predictions], [r["pred"] for r in predictions])
    assert float(metrics["val_accuracy"]) == pytest.approx(expected)
    report = json.loads((multitask / "eval" / "classification" / "classification_report.json").read_text())
    assert report["accuracy"] == pytest.approx(expected)
    # lung and infection Dice per image, as two columns
    header = next(csv.reader((multitask / "eval" / "val_dice_raw.csv").open()))
    assert header == ["filename", "class0", "class1", "mean"]


def test_multitask_evaluation_severity_matches_the_reference_masks(multitask):
    """The ref_ columns equal fractions computed here from the reference masks at the evaluated size."""
    wf = _evaluate(multitask, "multitask.json")
    rows = {Path(r["image"]).name: r for r in _rows(multitask / "eval" / "severity.csv")}
    transforms = wf.parser.get_parsed_content("validate#preprocessing")
    val = json.loads(_run_datalist(multitask).read_text())["validation"]
    assert set(rows) == {Path(item["image"]).name for item in val}
    for item in val:
        d = transforms(item)
        lung, infection = (d["lung"][0].numpy() > 0.5), (d["infection"][0].numpy() > 0.5)
        expected = _fraction(lung, infection)
        row = rows[Path(item["image"]).name]
        for side in ("right", "left", "total"):
            assert float(row[f"ref_{side}_fraction"]) == pytest.approx(expected[side], abs=1e-9)
            assert row[f"{side}_grade"] in ("", "none", "mild", "moderate", "severe", "critical")
    captioned = Image.open(next((multitask / "eval" / "overlays").glob("*.png")))
    assert captioned.width >= 256 and captioned.height > captioned.width  # the severity caption strip


def test_multitask_inference_writes_levels_severity_and_classes(multitask, phantoms, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    images = sorted((phantoms / "images").glob("*covid*.png"))[:2]
    for p in images:
        (folder / p.name).write_bytes(p.read_bytes())
    _infer(multitask, folder, tmp_path / "pred", "multitask.json")
    severity = {Path(r["image"]).name: r for r in _rows(tmp_path / "pred" / "severity.csv")}
    classes = {Path(r["image"]).name: r for r in _rows(tmp_path / "pred" / "classification.csv")}
    for p in images:
        mask = np.asarray(Image.open(tmp_path / "pred" / f"{p.stem}_mask.png"))
        assert set(np.unique(mask)) <= {0, 125, 255} and mask.shape == (64, 64)
        expected = _fraction(mask >= 125, mask == 255)
        row = severity[p.name]
        for side in ("right", "left", "total"):
            if expected[side] is None:
                assert row[f"{side}_fraction"] == ""
            else:
                assert float(row[f"{side}_fraction"]) == pytest.approx(expected[side], abs=1e-9)
        probs = [float(classes[p.name][f"p_{c}"]) for c in ("COVID-19", "Non-COVID", "Normal")]
        assert sum(probs) == pytest.approx(1.0, abs=1e-5)
        assert classes[p.name]["predicted"] == ("COVID-19", "Non-COVID", "Normal")[int(np.argmax(probs))]


def _bad_copy(phantoms: Path, dest: Path) -> tuple[Path, str, str]:
    """A copy of the phantom set with one empty lung mask and one infection mask reaching outside the lung."""
    import shutil

    shutil.copytree(phantoms, dest)
    empty = sorted((dest / "lung_masks").glob("*normal*.png"))[0]
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(empty)
    outside = sorted((dest / "infection_masks").glob("*covid*.png"))[0]
    inf = np.asarray(Image.open(outside)).copy()
    inf[:4, :4] = 255  # the image corner: outside any lung
    Image.fromarray(inf).save(outside)
    return dest, empty.name, outside.name


def test_bad_references_are_recorded_per_image_not_silent(multitask, phantoms, tmp_path):
    """Evaluating on bad references names each file in input_issues.csv; no NaN goes unexplained."""
    root, empty, outside = _bad_copy(phantoms, tmp_path / "bad")
    datalist = _datalist(root, tmp_path / "bad_datalist.json", 0, 9)
    out = tmp_path / "eval"
    _evaluate(multitask, "multitask.json", datalist_file=str(datalist), eval_dir=str(out))
    issues = {Path(r["image"]).name: r for r in _rows(out / "input_issues.csv")}
    assert "empty lung mask" in issues[empty]["input_issues"]
    assert "infection pixels lie outside the lung mask" in issues[outside]["input_issues"]
    # every NaN per-image Dice is explained in the same file
    for row in csv.DictReader((out / "val_dice_raw.csv").open()):
        if any(np.isnan(float(row[c])) for c in ("class0", "class1")):
            assert issues.get(Path(row["filename"]).name), row["filename"]
    severity = {Path(r["image"]).name: r for r in _rows(out / "severity.csv")}
    assert severity[empty]["ref_total_fraction"] == "" and severity[empty]["ref_total_reason"] == "no lung"


def test_bad_references_can_be_errors(phantoms, tmp_path):
    root, empty, _ = _bad_copy(phantoms, tmp_path / "bad")
    wf = _workflow(tmp_path / "run", dataset_dir=str(root), on_empty_lung="error")
    with pytest.raises(Exception) as info:
        wf.run()
    assert empty in error_messages(info.value) and "empty lung mask" in error_messages(info.value)


def test_multitask_without_class_labels_is_a_clear_error(phantoms, tmp_path):
    datalist = json.loads(_datalist(phantoms, tmp_path / "d.json", 4, 2).read_text())
    for section in ("training", "validation"):
        for item in datalist[section]:
            item.pop("class_index")
    (tmp_path / "d.json").write_text(json.dumps(datalist))
    wf = _workflow(tmp_path / "run", "multitask.json", datalist_file=str(tmp_path / "d.json"))
    with pytest.raises(Exception) as info:
        wf.run()
    assert "class_index" in error_messages(info.value)
    datalist.pop("classes")  # no class list at all: refused before a head of size 0 is built
    (tmp_path / "d.json").write_text(json.dumps(datalist))
    with pytest.raises(Exception) as info:
        _workflow(tmp_path / "run2", "multitask.json", datalist_file=str(tmp_path / "d.json")).run()
    assert "at least two classes" in error_messages(info.value)


def test_deployed_network_is_u2net_small():
    """inference.json's network has U²-Net small's 1.13 M parameters (shapes and metadata: test_all_bundles.py)."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "inference.json"))
    net = parser.get_parsed_content("network_def")
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(1.13e6, rel=0.01)
