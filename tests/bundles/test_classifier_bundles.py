"""bundles/{densenet121,efficientnet_b0,vgg16,xception}: train -> evaluate -> inference on tiny phantoms.

Every bundle trains one epoch at 32 x 32 on 4 phantoms per class (one shared phantom datalist), evaluates its
best model on the test split, and the report is checked against scikit-learn on the bundle's own
``predictions.csv``. Local pretrained weights are loaded from a file named in the config.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_helpers import classification_phantoms, error_messages, make_workflow, run_workflow
from monai.bundle import ConfigParser, ConfigWorkflow
from sklearn import metrics as skm

REPO = Path(__file__).resolve().parents[2]
CLASSES = ["COVID-19", "Non-COVID", "Normal"]
BUNDLES = ["densenet121", "efficientnet_b0", "vgg16", "xception"]
SIZE = 32

TINY = {
    "spatial_size": [SIZE, SIZE],
    "batch_size": 8,
    "val_batch_size": 8,
    "num_workers": 0,
    "show_progress": False,
    "save_gallery": False,
    "num_epochs": 1,
}


def _configs(name: str) -> Path:
    return REPO / "bundles" / name / "configs"


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> Path:
    """One phantom datalist (4 per class, split 2 / 1 / 1) shared by the tests of this file."""
    return classification_phantoms(tmp_path_factory.mktemp("phantoms"))


@pytest.fixture(scope="module", params=BUNDLES)
def trained(request, phantoms, tmp_path_factory) -> tuple[str, Path]:
    name = request.param
    out = tmp_path_factory.mktemp(name)
    run_workflow(make_workflow(_configs(name), TINY, out, datalist_file=str(phantoms)))
    return name, out


def test_train_writes_model_summary_and_report(trained):
    name, out = trained
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_completed"] == 1 and summary["data"]["classes"] == CLASSES
    assert {"val_accuracy", "val_loss"} <= set(summary["last_validation"])
    assert (out / "models" / "model.pt").is_file() and (out / "metrics" / "metrics.csv").is_file()
    report = json.loads((out / "eval_report" / "classification_report.json").read_text())
    assert list(report["per_class"]) == CLASSES
    assert report["accuracy"] == pytest.approx(summary["last_validation"]["val_accuracy"])


def test_evaluate_report_matches_sklearn(trained, phantoms):
    name, out = trained
    wf = make_workflow(
        _configs(name), TINY, out, "evaluate.json", workflow_type="eval",
        datalist_file=str(phantoms), ckpt_path=str(out / "models" / "model.pt"),
    )  # fmt: skip
    run_workflow(wf)
    report = json.loads((out / "eval" / "classification_report.json").read_text())
    rows = list(csv.DictReader((out / "eval" / "predictions.csv").open()))
    test = json.loads(phantoms.read_text())["test"]
    assert sorted(r["image"] for r in rows) == sorted(item["image"] for item in test)
    truth = {item["image"]: CLASSES[item["class_index"]] for item in test}
    assert all(r["true"] == truth[r["image"]] for r in rows)

    y = np.array([CLASSES.index(r["true"]) for r in rows])
    probs = np.array([[float(r[f"p_{c}"]) for c in CLASSES] for r in rows])
    pred = np.array([CLASSES.index(r["pred"]) for r in rows])
    assert np.array_equal(pred, probs.argmax(1)) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert report["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=[0, 1, 2], zero_division=0)
    for k, c in enumerate(CLASSES):
        got = report["per_class"][c]
        assert (got["precision"], got["recall"], got["f1"], got["support"]) == pytest.approx((p[k], r[k], f[k], s[k]))
        assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y == k, probs[:, k]), abs=1e-6)
    assert report["macro_avg"]["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro", zero_division=0))
    assert report["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=[0, 1, 2]).tolist()


def test_inference_writes_one_row_per_image(trained, phantoms, tmp_path):
    name, out = trained
    images = sorted((phantoms.parent / "synthetic_phantoms" / "images").glob("*.png"))[:3]
    folder = tmp_path / "in"
    folder.mkdir()
    for p in images:
        (folder / p.name).write_bytes(p.read_bytes())
    wf = ConfigWorkflow(
        config_file=str(_configs(name) / "inference.json"),
        meta_file=str(_configs(name) / "metadata.json"),
        logging_file=False,
        workflow_type="infer",
        input_dir=str(folder),
        output_dir=str(tmp_path / "pred"),
        ckpt_path=str(out / "models" / "model.pt"),
        spatial_size=[SIZE, SIZE],
    )
    wf.initialize()
    run_workflow(wf)
    rows = list(csv.reader((tmp_path / "pred" / "predictions.csv").open()))
    assert sorted(Path(r[0]).name for r in rows) == [p.name for p in images]
    for r in rows:
        probs = [float(v) for v in r[1:]]
        assert len(probs) == len(CLASSES) and sum(probs) == pytest.approx(1.0, abs=1e-4)


# the reference network each bundle's pretrained file comes from, and a backbone tensor to compare
PRETRAINED = {
    "densenet121": ("monai.networks.nets.DenseNet121", {"spatial_dims": 2, "in_channels": 3, "out_channels": 1000,
                                                        "pretrained": False}, "features.conv0.weight"),
    "efficientnet_b0": ("monai.networks.nets.EfficientNetBN", {"model_name": "efficientnet-b0", "pretrained": False,
                                                               "in_channels": 3, "num_classes": 1000}, "_conv_stem.weight"),
    "vgg16": ("monaicxr.networks.nets.VGG16Classifier", {"in_channels": 3, "num_classes": 1000}, "features.0.weight"),
    "xception": ("monaicxr.networks.nets.XceptionClassifier", {"in_channels": 3, "num_classes": 1000}, "conv1.weight"),
}  # fmt: skip


@pytest.mark.parametrize("name", BUNDLES)
def test_pretrained_path_loads_a_local_rgb_state_dict(name, tmp_path):
    """An ImageNet-style (3 channels, 1000 classes) state_dict loads into the 1-channel, 3-class network."""
    target, args, first = PRETRAINED[name]
    reference = ConfigParser({"net": {"_target_": target, **args}}).get_parsed_content("net")
    weights = tmp_path / "weights.pt"
    torch.save(reference.state_dict(), weights)
    wf = make_workflow(_configs(name), TINY, tmp_path / "out", pretrained_path=str(weights))
    net = wf.parser.get_parsed_content("network")
    ref = reference.state_dict()
    got = {k: v.cpu() for k, v in net.state_dict().items()}
    assert torch.allclose(got[first], ref[first].sum(1, keepdim=True))  # RGB filters summed for a grey input
    heads = ("head.", "fc.", "_fc.", "class_layers.")  # the new classifier keeps its own initialisation
    loaded = [k for k in ref if k != first and not k.startswith(heads) and "num_batches" not in k]
    assert len(loaded) > 10 and all(torch.equal(got[k], ref[k]) for k in loaded)


def test_missing_pretrained_file_is_an_error(tmp_path):
    wf = make_workflow(_configs("vgg16"), TINY, tmp_path, pretrained_path=str(tmp_path / "no_weights.pt"))
    with pytest.raises(Exception) as info:
        wf.parser.get_parsed_content("network")
    assert "no_weights.pt" in error_messages(info.value) and "nothing is downloaded" in error_messages(info.value)


@pytest.mark.parametrize("name", BUNDLES)
def test_spatial_size_override(name):
    """A --spatial_size override reaches the resize, and the network (global pooling) accepts the new size."""
    parser = ConfigParser()
    parser.read_config(str(_configs(name) / "train.json"))
    parser["spatial_size"] = [96, 64]
    resize = next(
        t for t in parser.get_parsed_content("train#deterministic_transforms") if type(t).__name__ == "Resized"
    )
    assert list(resize.resizer.spatial_size) == [96, 64]
    net = parser.get_parsed_content("network_def").eval()
    with torch.no_grad():
        assert net(torch.rand(1, 1, 96, 64)).shape == (1, len(CLASSES))


@pytest.mark.parametrize("name", BUNDLES)
def test_channels_last_network_and_batches(name, tmp_path):
    """channels_last (the default): the batches of trainer and evaluator, and the activations the network makes."""
    for channels_last in (True, False):
        wf = make_workflow(_configs(name), TINY, tmp_path / str(channels_last), channels_last=channels_last)
        net = wf.parser.get_parsed_content("network").eval()
        rgb = {"image": torch.rand(2, 3, 8, 8), "label": torch.tensor([0, 1])}  # 3 channels: the layouts differ
        for engine in ("train#trainer", "validate#evaluator"):
            image, _ = wf.parser.get_parsed_content(engine).prepare_batch(rgb, "cpu")
            assert (image.is_contiguous(memory_format=torch.channels_last) and not image.is_contiguous()) is (
                channels_last
            ), engine
        image, _ = wf.parser.get_parsed_content("train#trainer").prepare_batch(
            {"image": torch.rand(2, 1, SIZE, SIZE), "label": torch.tensor([0, 1])}, "cpu"
        )
        layouts = []  # conv outputs with more than one channel and pixel, where the two layouts differ

        def record(module, args, out, layouts=layouts):
            if out.ndim == 4 and out.shape[1] > 1 and out.shape[2] * out.shape[3] > 1:
                layouts.append(out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous())

        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.register_forward_hook(record)
        with torch.no_grad():
            net(image)
        assert len(layouts) > 3 and set(layouts) == {channels_last}
