"""ClassificationReportHandler on a tiny Ignite engine whose step returns MONAI-style decollated dicts."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from monai.data import MetaTensor
from PIL import Image
from sklearn import metrics as skm

from monaicxr.handlers.classification import ClassificationReportHandler

NAMES = ["normal", "pneumonia", "covid"]


def _batches(logits: torch.Tensor, labels: torch.Tensor, batch: int = 5, one_hot: bool = False):
    """Decollated items as SupervisedEvaluator leaves them in engine.state.output."""
    items = []
    for i in range(len(labels)):
        image = MetaTensor(torch.rand(1, 12, 12), meta={"filename_or_obj": f"/data/img_{i:02d}.png"})
        label = torch.nn.functional.one_hot(labels[i], logits.shape[1]) if one_hot else labels[i : i + 1]
        items.append({"image": image, "pred": logits[i], "label": label})
    return [items[i : i + batch] for i in range(0, len(items), batch)]


def _run(handler, data, epochs: int = 1):
    engine = Engine(lambda engine, batch: batch)
    handler.attach(engine)
    engine.run(data, max_epochs=epochs)
    return engine


def test_softmax_logits_match_sklearn(tmp_path):
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (23,), generator=g)
    logits = torch.randn(23, 3, generator=g) + 1.5 * torch.nn.functional.one_hot(labels, 3)
    handler = ClassificationReportHandler(tmp_path, NAMES, activation="softmax", max_gallery=4)
    _run(handler, _batches(logits, labels, one_hot=True), epochs=2)  # a second run replaces the first one

    probs, y = torch.softmax(logits, 1).numpy(), labels.numpy()
    pred = probs.argmax(1)
    report = json.loads((tmp_path / "classification_report.json").read_text())
    assert report["num_samples"] == 23  # reset between epochs
    assert report["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=[0, 1, 2], zero_division=0)
    for k, name in enumerate(NAMES):
        got = report["per_class"][name]
        assert [got["precision"], got["recall"], got["f1"], got["support"]] == pytest.approx([p[k], r[k], f[k], s[k]])
        assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y == k, probs[:, k]))
    np.testing.assert_array_equal(report["confusion_matrix"], skm.confusion_matrix(y, pred))
    assert handler.report == report

    with open(tmp_path / "predictions.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [row["image"] for row in rows] == [f"/data/img_{i:02d}.png" for i in range(23)]
    assert float(rows[3]["logit_covid"]) == pytest.approx(float(logits[3, 2]), rel=1e-5)
    for name in ("confusion_matrix.png", "roc_curves.png", "reliability_diagram.png", "gallery.png"):
        with Image.open(tmp_path / name) as im:
            assert im.width > 100 and im.height > 100
    assert set(handler.written) >= {"report_json", "gallery_png", "predictions_csv"}
    kept = [im for im in handler._images if im is not None]
    assert 0 < len(kept) <= 8 and kept[0].shape == (12, 12)


def test_binary_sigmoid_and_probabilities(tmp_path):
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 2, (14,), generator=g)
    z = (2.0 * labels - 1.0 + torch.randn(14, generator=g)).unsqueeze(1)  # (N, 1) logit per item
    _run(
        ClassificationReportHandler(tmp_path / "sig", ["neg", "pos"], activation="sigmoid", save_images=False),
        _batches(z, labels),
    )
    report = json.loads((tmp_path / "sig" / "classification_report.json").read_text())
    p1 = torch.sigmoid(z[:, 0]).numpy()
    assert report["per_class"]["pos"]["roc_auc"] == pytest.approx(skm.roc_auc_score(labels.numpy(), p1))
    assert report["accuracy"] == pytest.approx(skm.accuracy_score(labels.numpy(), p1 > 0.5))
    assert not (tmp_path / "sig" / "gallery.png").exists()

    probs = torch.softmax(torch.randn(9, 3, generator=g), 1)  # already probabilities
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2])
    _run(ClassificationReportHandler(tmp_path / "p", NAMES, activation=None), _batches(probs, y))
    report = json.loads((tmp_path / "p" / "classification_report.json").read_text())
    assert report["ece"] >= 0 and report["accuracy"] == pytest.approx(skm.accuracy_score(y, probs.argmax(1)))


def test_bad_activation():
    with pytest.raises(ValueError, match="activation"):
        ClassificationReportHandler("out", NAMES, activation="relu")
