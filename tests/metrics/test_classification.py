"""Every number of monaicxr.metrics.classification against scikit-learn or a plain numpy reference.

The confusion table, per-class precision / recall / F1 and ROC points are scikit-learn's own; for those the
comparison checks the wiring (every class listed, names in order, zero-division policy and warnings). ROC AUC and
ECE come from MONAI and are checked against scikit-learn and numpy.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from monaicxr.metrics import (
    apply_temperature,
    classification_report,
    confusion_matrix,
    expected_calibration_error,
    fit_temperature,
    minority_recall,
    reliability_bins,
    roc_curves,
)


def _random_case(n: int, c: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c)) + 1.5 * np.eye(c)[labels]  # informative but imperfect
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return probs, labels


def _numpy_ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    conf, correct = probs.max(1), (probs.argmax(1) == labels).astype(float)
    edges = np.linspace(0, 1, n_bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return ece


def _check_against_sklearn(report: dict, probs: np.ndarray, labels: np.ndarray, names: list[str]) -> None:
    c = probs.shape[1]
    pred = probs.argmax(1)
    kw = {"labels": list(range(c)), "zero_division": 0}
    assert report["accuracy"] == pytest.approx(skm.accuracy_score(labels, pred), abs=1e-12)
    p, r, f, s = skm.precision_recall_fscore_support(labels, pred, **kw)
    for k, name in enumerate(names):
        got = report["per_class"][name]
        assert [got["precision"], got["recall"], got["f1"]] == pytest.approx([p[k], r[k], f[k]], abs=1e-9)
        assert got["support"] == s[k]
    sk = skm.classification_report(labels, pred, target_names=names, output_dict=True, **kw)
    for ours, theirs in (("macro_avg", "macro avg"), ("weighted_avg", "weighted avg")):
        for m, sm in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
            assert report[ours][m] == pytest.approx(sk[theirs][sm], abs=1e-9), (ours, m)
        assert report[ours]["support"] == sk[theirs]["support"]
    np.testing.assert_array_equal(report["confusion_matrix"], skm.confusion_matrix(labels, pred, labels=list(range(c))))
    for k, name in enumerate(names):
        positives = labels == k
        if 0 < positives.sum() < len(labels):
            assert report["per_class"][name]["roc_auc"] == pytest.approx(skm.roc_auc_score(positives, probs[:, k]))
        else:
            assert report["per_class"][name]["roc_auc"] is None
            assert name in report["roc_auc_undefined"]
    assert report["ece"] == pytest.approx(_numpy_ece(probs, labels), abs=1e-6)
    json.dumps(report, allow_nan=False)  # JSON-ready: no NaN, no tensors


@pytest.mark.parametrize("n,c,seed", [(60, 4, 0), (37, 3, 1), (25, 2, 2), (80, 5, 3)])
def test_random_cases_match_sklearn(n, c, seed):
    probs, labels = _random_case(n, c, seed)
    names = [f"class_{k}" for k in range(c)]
    report = classification_report(torch.from_numpy(probs), torch.from_numpy(labels), names)
    _check_against_sklearn(report, probs, labels, names)
    assert report["macro_avg"]["roc_auc"] == pytest.approx(
        skm.roc_auc_score(labels, probs, multi_class="ovr", average="macro")
        if c > 2
        else skm.roc_auc_score(labels, probs[:, 1])
    )
    if c > 2:
        assert report["weighted_avg"]["roc_auc"] == pytest.approx(
            skm.roc_auc_score(labels, probs, multi_class="ovr", average="weighted")
        )
    # numpy input gives the same report as torch input
    assert classification_report(probs, labels, names) == report


def test_perfect_predictions():
    labels = np.array([0, 1, 2, 2, 1, 0, 2])
    probs = 0.1 + 0.7 * np.eye(3)[labels]
    report = classification_report(probs, labels, ["a", "b", "c"])
    _check_against_sklearn(report, probs, labels, ["a", "b", "c"])
    assert report["accuracy"] == 1.0 and report["macro_avg"]["f1"] == 1.0 and report["macro_avg"]["roc_auc"] == 1.0
    assert report["warnings"] == []


def test_all_one_class_predictions_zero_division():
    probs, labels = _random_case(30, 3, 4)
    probs = np.tile([0.6, 0.3, 0.1], (30, 1))  # always predicts "a"
    report = classification_report(probs, labels, ["a", "b", "c"])
    _check_against_sklearn(report, probs, labels, ["a", "b", "c"])
    assert report["per_class"]["b"]["precision"] == 0.0 and report["per_class"]["c"]["precision"] == 0.0
    flagged = [w for w in report["warnings"] if w.startswith("precision")]
    assert len(flagged) == 2 and "'b'" in flagged[0] and "'c'" in flagged[1]
    with pytest.warns(skm._classification.UndefinedMetricWarning):  # sklearn flags the same case
        skm.precision_score(labels, probs.argmax(1), average=None, zero_division="warn")


@pytest.mark.parametrize("shape", ["flat", "column"])
def test_binary_sigmoid_input(shape):
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 40)
    p1 = np.clip(0.5 + 0.3 * (labels - 0.5) + 0.25 * rng.normal(size=40), 0.01, 0.99)
    report = classification_report(p1 if shape == "flat" else p1[:, None], labels, ["normal", "abnormal"])
    two = np.stack([1 - p1, p1], 1)
    _check_against_sklearn(report, two, labels, ["normal", "abnormal"])
    assert report["per_class"]["abnormal"]["roc_auc"] == pytest.approx(skm.roc_auc_score(labels, p1))
    assert report["accuracy"] == pytest.approx(skm.accuracy_score(labels, p1 > 0.5))


def test_class_absent_from_labels():
    probs, labels = _random_case(50, 4, 6)
    labels[labels == 2] = 3  # class "c" never occurs
    names = ["a", "b", "c", "d"]
    report = classification_report(probs, labels, names)
    _check_against_sklearn(report, probs, labels, names)
    assert report["per_class"]["c"]["roc_auc"] is None
    assert "absent" in report["roc_auc_undefined"]["c"]
    assert any("roc_auc of class 'c'" in w for w in report["warnings"])
    assert any("recall of class 'c'" in w for w in report["warnings"])
    defined = [skm.roc_auc_score(labels == k, probs[:, k]) for k in (0, 1, 3)]
    assert report["macro_avg"]["roc_auc"] == pytest.approx(np.mean(defined))
    assert (
        minority_recall(report)
        == report["per_class"][min(["a", "b", "d"], key=lambda k: report["per_class"][k]["support"])]["recall"]
    )


def test_minority_recall_and_confusion_matrix():
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2])
    pred = np.array([0, 0, 1, 0, 1, 0, 2, 2, 0])
    probs = np.eye(3)[pred] * 0.8 + 0.2 / 3
    report = classification_report(probs, labels, ["x", "y", "z"])
    assert minority_recall(report) == pytest.approx(0.5)  # "y": support 2, recall 1/2
    assert minority_recall(report, ["x", "z"]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="not in the report"):
        minority_recall(report, ["w"])
    np.testing.assert_array_equal(confusion_matrix(probs, labels).numpy(), skm.confusion_matrix(labels, pred))


def test_roc_curves_match_sklearn():
    probs, labels = _random_case(45, 3, 7)
    probs = np.round(probs, 2)  # ties, so that thresholds are shared by several samples
    curves = roc_curves(probs, labels, ["a", "b", "c"])
    for k, name in enumerate(["a", "b", "c"]):
        fpr, tpr, thr = skm.roc_curve(labels == k, probs[:, k])
        np.testing.assert_allclose(curves[name][0], fpr)
        np.testing.assert_allclose(curves[name][1], tpr)
        np.testing.assert_allclose(curves[name][2], thr)
    assert roc_curves(probs, np.zeros(45, int))[1] is None  # class 1 absent: undefined curve


def test_reliability_bins_and_ece_match_numpy():
    probs, labels = _random_case(200, 3, 8)
    bins = reliability_bins(probs, labels, n_bins=10)
    conf, correct = probs.max(1), probs.argmax(1) == labels
    idx = np.clip(np.ceil(conf * 10).astype(int) - 1, 0, 9)
    for b in range(10):
        m = idx == b
        assert bins["count"][b] == m.sum()
        if m.any():
            assert bins["confidence"][b] == pytest.approx(conf[m].mean(), abs=1e-6)
            assert bins["accuracy"][b] == pytest.approx(correct[m].mean(), abs=1e-6)
        else:
            assert np.isnan(bins["confidence"][b]) and np.isnan(bins["accuracy"][b])
    assert expected_calibration_error(probs, labels, 10) == pytest.approx(_numpy_ece(probs, labels, 10), abs=1e-6)


def test_temperature_scaling_recovers_known_temperature():
    g = torch.Generator().manual_seed(0)
    true_logits = 1.5 * torch.randn(3000, 4, generator=g, dtype=torch.float64)
    labels = torch.multinomial(torch.softmax(true_logits, 1), 1, generator=g)[:, 0]
    logits = true_logits * 3.0  # an over-confident model
    t = fit_temperature(logits, labels)
    assert t == pytest.approx(3.0, rel=0.15)
    nll = torch.nn.functional.cross_entropy
    assert nll(apply_temperature(logits, t), labels) < nll(logits, labels)
    assert isinstance(apply_temperature(logits.numpy(), t), np.ndarray)
    with pytest.raises(ValueError):
        apply_temperature(logits, 0.0)


def test_bad_inputs_are_named():
    probs, labels = _random_case(10, 3, 9)
    with pytest.raises(ValueError, match="class names"):
        classification_report(probs, labels, ["a", "b"])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        classification_report(probs, labels + 1, ["a", "b", "c"])
    with pytest.raises(ValueError, match="one entry per sample"):
        classification_report(probs, labels[:5], ["a", "b", "c"])
