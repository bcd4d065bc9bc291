"""Files written by monaicxr.io.reports.write_classification_outputs."""

from __future__ import annotations

import csv
import json

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

from monaicxr.io.reports import format_classification_report, write_classification_outputs
from monaicxr.metrics import classification_report

NAMES = ["normal", "pneumonia", "covid"]


def _case(n: int = 24, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)) + 1.2 * np.eye(3)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    images = [rng.random((16, 20)).astype(np.float32) for _ in range(n)]
    return logits, probs, labels, images


def test_all_outputs_written_and_consistent(tmp_path):
    backend = matplotlib.get_backend()
    logits, probs, labels, images = _case()
    paths = [f"/data/img_{i}.png" for i in range(len(labels))]
    written = write_classification_outputs(
        tmp_path / "eval", torch.from_numpy(probs), labels, NAMES, paths, logits=logits, images=images
    )
    expected = {
        "report_json": "classification_report.json",
        "report_txt": "classification_report.txt",
        "confusion_csv": "confusion_matrix.csv",
        "confusion_png": "confusion_matrix.png",
        "roc_png": "roc_curves.png",
        "reliability_png": "reliability_diagram.png",
        "predictions_csv": "predictions.csv",
        "gallery_png": "gallery.png",
    }
    assert {k: p.name for k, p in written.items()} == expected
    assert all(p.is_file() for p in written.values())
    assert matplotlib.get_backend() == backend  # the caller's backend is left alone

    report = classification_report(probs, labels, NAMES)
    assert json.loads(written["report_json"].read_text()) == report
    text = written["report_txt"].read_text()
    assert "precision" in text and "macro avg" in text and "weighted avg" in text and "calibration" in text
    assert all(name in text for name in NAMES)

    with open(written["confusion_csv"]) as f:
        rows = list(csv.reader(f))
    assert rows[0][1:] == NAMES and [r[0] for r in rows[1:]] == NAMES
    np.testing.assert_array_equal(np.array([r[1:] for r in rows[1:]], dtype=int), report["confusion_matrix"])

    with open(written["predictions_csv"]) as f:
        preds = list(csv.DictReader(f))
    assert len(preds) == len(labels)
    assert list(preds[0]) == [
        "image",
        "true",
        "pred",
        *[f"p_{c}" for c in NAMES],
        *[f"logit_{c}" for c in NAMES],
        "correct",
    ]
    for i, row in enumerate(preds):
        assert row["image"] == paths[i] and row["true"] == NAMES[labels[i]] and row["pred"] == NAMES[probs[i].argmax()]
        assert float(row["p_covid"]) == pytest.approx(probs[i, 2], abs=1e-6)
        assert row["correct"] == ("yes" if probs[i].argmax() == labels[i] else "no")

    for key in ("confusion_png", "roc_png", "reliability_png", "gallery_png"):
        with Image.open(written[key]) as im:
            assert im.format == "PNG" and 200 <= im.width <= 3000 and 200 <= im.height <= 3000, (key, im.size)


def test_binary_without_images_and_with_summary_writer(tmp_path):
    class Recorder:  # the two SummaryWriter methods used, recorded
        def __init__(self):
            self.figures, self.scalars = [], {}

        def add_figure(self, tag, figure, step):
            self.figures.append((tag, figure, step))

        def add_scalar(self, tag, value, step):
            self.scalars[tag] = (value, step)

        def flush(self):
            pass

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 30)
    p1 = np.clip(0.5 + 0.4 * (labels - 0.5) + 0.2 * rng.normal(size=30), 0.01, 0.99)
    writer = Recorder()
    written = write_classification_outputs(tmp_path, p1, labels, ["neg", "pos"], summary_writer=writer, step=7)
    assert "gallery_png" not in written
    assert writer.figures[0][0] == "classification/confusion_matrix" and writer.figures[0][2] == 7
    report = json.loads(written["report_json"].read_text())
    assert writer.scalars["classification/accuracy"] == (report["accuracy"], 7)
    assert writer.scalars["classification/roc_auc/pos"][0] == pytest.approx(report["per_class"]["pos"]["roc_auc"])
    with open(written["predictions_csv"]) as f:
        assert next(csv.reader(f)) == ["image", "true", "pred", "p_neg", "p_pos", "correct"]


def test_tensorboard_summary_writer(tmp_path):
    tb = pytest.importorskip("torch.utils.tensorboard")
    _, probs, labels, _ = _case(12, 2)
    with tb.SummaryWriter(log_dir=str(tmp_path / "tb")) as writer:
        write_classification_outputs(tmp_path / "out", probs, labels, NAMES, summary_writer=writer, step=3)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_undefined_auc_is_shown_not_nan(tmp_path):
    _, probs, labels, _ = _case(20, 3)
    labels[labels == 1] = 0  # "pneumonia" absent
    written = write_classification_outputs(tmp_path, probs, labels, NAMES)
    text = written["report_txt"].read_text()
    assert "n/a" in text and "nan" not in text.lower().replace("pneumonia", "")
    assert format_classification_report(classification_report(probs, labels, NAMES)) == text


def test_bad_lengths_are_named(tmp_path):
    _, probs, labels, images = _case(10, 4)
    with pytest.raises(ValueError, match="image paths"):
        write_classification_outputs(tmp_path, probs, labels, NAMES, ["a.png"])
    with pytest.raises(ValueError, match="images"):
        write_classification_outputs(tmp_path, probs, labels, NAMES, images=images[:3])
