"""Classification evaluation shared by every classifier bundle: report, ROC curves, calibration, temperature.

Pure functions on plain tensors or numpy arrays; nothing here knows about Ignite or files (see
:mod:`monaicxr.io.reports` for the writers and :mod:`monaicxr.handlers.classification` for the handler).

What comes from where:

- the C x C confusion table and per-class precision, recall, F1 and support: scikit-learn's
  ``confusion_matrix`` and ``precision_recall_fscore_support(zero_division=0)``; only the list of warnings
  naming each zero denominator (scikit-learn warns, with ``zero_division="warn"``, but does not say which class)
  is added here;
- ROC curve points: ``sklearn.metrics.roc_curve``;
- one-vs-rest ROC AUC: ``monai.metrics.compute_roc_auc``; classes without positives or negatives are reported
  as ``None`` with a reason instead of MONAI's warning and NaN;
- expected calibration error: MONAI's ``calibration_binning`` (as in ``CalibrationErrorMetric``) applied to the
  top-label confidence (one channel holding the max probability, ground truth "prediction was correct"); MONAI
  applied to the one-hot probabilities would give the class-wise ECE instead, a different number. Reliability
  bins come from ``monai.metrics.calibration_binning``;
- temperature scaling, by hand: scikit-learn fits a temperature only inside
  ``CalibratedClassifierCV(method="temperature")``, around an estimator it calls, not on logits already
  written to ``predictions.csv`` (``monaicxr calibrate`` has only those), and MONAI has none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.metrics import calibration_binning, compute_roc_auc
from monai.utils import convert_to_tensor
from sklearn.metrics import confusion_matrix as _sklearn_confusion_matrix
from sklearn.metrics import precision_recall_fscore_support, roc_curve

__all__ = [
    "apply_temperature",
    "classification_report",
    "confusion_matrix",
    "expected_calibration_error",
    "fit_temperature",
    "minority_recall",
    "reliability_bins",
    "roc_curves",
]


def _as_probs(probs: Any) -> torch.Tensor:
    """(N, C) float64 probabilities; (N,) or (N, 1) sigmoid outputs become the two columns (1 - p, p)."""
    p = convert_to_tensor(probs, dtype=torch.float64, track_meta=False).detach().cpu()
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if p.ndim == 1:
        p = torch.stack([1.0 - p, p], dim=1)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"probs must have shape (N, C), (N,) or (N, 1) with N > 0, got {tuple(p.shape)}.")
    if not torch.isfinite(p).all():
        raise ValueError("probs contain NaN or infinite values.")
    return p


def _as_logits(logits: Any) -> torch.Tensor:
    """(N, C) float64 logits; binary (N,) or (N, 1) logits z become (0, z), so softmax gives (1 - sigmoid(z), sigmoid(z))."""
    z = convert_to_tensor(logits, dtype=torch.float64, track_meta=False).detach().cpu()
    if z.ndim == 2 and z.shape[1] == 1:
        z = z[:, 0]
    if z.ndim == 1:
        z = torch.stack([torch.zeros_like(z), z], dim=1)
    if z.ndim != 2 or z.shape[0] == 0:
        raise ValueError(f"logits must have shape (N, C), (N,) or (N, 1) with N > 0, got {tuple(z.shape)}.")
    return z


def _as_labels(labels: Any, n: int, num_classes: int) -> torch.Tensor:
    y = convert_to_tensor(labels, track_meta=False).detach().cpu().reshape(-1)
    if y.numel() != n:
        raise ValueError(f"labels must have one entry per sample ({n}), got {y.numel()}.")
    if y.is_floating_point():
        if not torch.equal(y, y.round()):
            raise ValueError("labels must be integer class indices, got non-integral values.")
    y = y.long()
    if n and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes - 1}], got values in [{int(y.min())}, {int(y.max())}].")
    return y


def _names(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    if class_names is None:
        return [str(i) for i in range(num_classes)]
    names = [str(c) for c in class_names]
    if len(names) != num_classes:
        raise ValueError(f"got {len(names)} class names {names} for {num_classes} probability columns.")
    if len(set(names)) != len(names):
        raise ValueError(f"class names must be unique, got {names}.")
    return names


def _counts(y: torch.Tensor, pred: torch.Tensor, num_classes: int) -> np.ndarray:
    """``sklearn.metrics.confusion_matrix`` over all ``num_classes`` classes (absent ones too), as int64."""
    return _sklearn_confusion_matrix(y.numpy(), pred.numpy(), labels=np.arange(num_classes)).astype(np.int64)


def confusion_matrix(probs: Any, labels: Any) -> torch.Tensor:
    """C x C counts, rows = true class, columns = predicted class (argmax of ``probs``), as int64.

    ``sklearn.metrics.confusion_matrix`` with every class listed, so a class absent from both the labels and the
    predictions still has its row and column.
    """
    p = _as_probs(probs)
    c = p.shape[1]
    y = _as_labels(labels, p.shape[0], c)
    return torch.from_numpy(_counts(y, p.argmax(1), c))


def expected_calibration_error(probs: Any, labels: Any, n_bins: int = 15) -> float:
    """Top-label expected calibration error (Guo et al. 2017): bins of equal width on the max probability.

    ``ECE = sum_b (n_b / N) * |accuracy_b - confidence_b|``, from MONAI's ``calibration_binning`` (the binning
    of ``monai.metrics.CalibrationErrorMetric``) on one channel that holds the max probability, with "the argmax
    was right" as ground truth. The metric class itself is not used: its buffer synchronises across processes,
    and under DDP this runs on rank 0 alone (the classification report), which would wait for the other ranks.
    """
    p = _as_probs(probs)
    y = _as_labels(labels, p.shape[0], p.shape[1])
    conf, pred = p.max(1)
    mean_p, mean_gt, counts = calibration_binning(
        y_pred=conf.float()[None, None], y=(pred == y).float()[None, None], num_bins=n_bins
    )
    return float(torch.nansum(torch.abs(mean_p - mean_gt) * counts) / counts.sum())


def reliability_bins(probs: Any, labels: Any, n_bins: int = 15) -> dict[str, np.ndarray]:
    """Per-bin statistics of the top-label confidence, for reliability diagrams.

    Returns:
        ``{"edges": (n_bins + 1,), "confidence": (n_bins,), "accuracy": (n_bins,), "count": (n_bins,)}`` numpy
        arrays; ``confidence`` (mean max probability) and ``accuracy`` are NaN in empty bins. Bins are
        ``(lo, hi]`` as in ``monai.metrics.calibration_binning``, which computes them.
    """
    p = _as_probs(probs)
    y = _as_labels(labels, p.shape[0], p.shape[1])
    conf, pred = p.max(1)
    mean_p, mean_gt, counts = calibration_binning(conf.float()[None, None], (pred == y).float()[None, None], n_bins)
    return {
        "edges": np.linspace(0.0, 1.0, n_bins + 1),
        "confidence": mean_p[0, 0].double().numpy(),
        "accuracy": mean_gt[0, 0].double().numpy(),
        "count": counts[0, 0].long().numpy(),
    }


def roc_curves(
    probs: Any, labels: Any, class_names: Sequence[str] | None = None
) -> dict[Any, tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
    """One-vs-rest ROC curve per class, from ``sklearn.metrics.roc_curve`` (MONAI computes only the area).

    Args:
        probs: (N, C) probabilities, or (N,) / (N, 1) sigmoid probabilities of class 1.
        labels: (N,) integer classes.
        class_names: keys of the result; class indices when omitted.

    Returns:
        class -> ``(fpr, tpr, thresholds)`` of ``sklearn.metrics.roc_curve`` (first threshold ``inf``, collinear
        points dropped), or ``None`` for a class whose curve is undefined because the labels hold no positive or
        no negative sample of it (scikit-learn would warn and return NaN).
    """
    p = _as_probs(probs)
    y = _as_labels(labels, p.shape[0], p.shape[1])
    keys = list(range(p.shape[1])) if class_names is None else _names(class_names, p.shape[1])
    out: dict[Any, tuple[np.ndarray, np.ndarray, np.ndarray] | None] = {}
    for c, key in enumerate(keys):
        positive = (y == c).numpy()
        defined = 0 < positive.sum() < positive.size
        out[key] = tuple(roc_curve(positive, p[:, c].numpy())) if defined else None
    return out


def _zero_division_warnings(name: str, zero: np.ndarray, names: list[str], reason: str) -> list[str]:
    """One entry per class whose ``name`` had a zero denominator (set to 0, as ``zero_division=0`` does)."""
    return [f"{name} of class '{names[c]}' is ill-defined ({reason}); set to 0.0" for c in np.flatnonzero(zero)]


def classification_report(probs: Any, labels: Any, class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Everything a classifier evaluation reports, as a JSON-ready dict (no NaN anywhere).

    Args:
        probs: (N, C) softmax probabilities, or (N,) / (N, 1) sigmoid probabilities of class 1 (binary).
        labels: (N,) integer classes in ``[0, C)``.
        class_names: C names; ``"0" .. "C-1"`` when omitted.

    Returns:
        ``{"num_samples", "class_names", "accuracy", "per_class": {name: {precision, recall, f1, support,
        roc_auc}}, "macro_avg", "weighted_avg" (precision, recall, f1, support, roc_auc), "roc_auc_undefined":
        {name: reason}, "ece", "ece_bins", "confusion_matrix" (rows = true), "warnings"}``. Averages and
        zero-division handling follow ``sklearn.metrics.classification_report(labels=range(C),
        zero_division=0)``: a precision (class never predicted), recall (class absent from labels) or F1 with a
        zero denominator is 0 and adds an entry to ``warnings``. A class absent from the labels (or present in
        every label) has ``roc_auc`` None with its reason in ``roc_auc_undefined``; the macro and weighted AUC
        average the defined classes only, and are None when none is defined.

    Example::

        report = classification_report(torch.softmax(logits, 1), labels, ["normal", "pneumonia", "covid"])
        report["macro_avg"]["f1"], report["per_class"]["covid"]["recall"], report["ece"]
    """
    p = _as_probs(probs)
    n, c = p.shape
    y = _as_labels(labels, n, c)
    names = _names(class_names, c)

    pred = p.argmax(1)
    y_onehot = F.one_hot(y, c).double()
    cm = _counts(y, pred, c)
    precision, recall, f1, support_ = precision_recall_fscore_support(
        y.numpy(), pred.numpy(), labels=np.arange(c), average=None, zero_division=0
    )
    precision, recall, f1, support = precision.tolist(), recall.tolist(), f1.tolist(), support_.tolist()
    predicted, present = cm.sum(0), cm.sum(1)
    warnings: list[str] = [
        *_zero_division_warnings("precision", predicted == 0, names, "never predicted"),
        *_zero_division_warnings("recall", present == 0, names, "absent from labels"),
        *_zero_division_warnings("f1", predicted + present == 0, names, "neither present nor predicted"),
    ]

    auc: list[float | None] = []
    undefined: dict[str, str] = {}
    for k in range(c):
        if support[k] == 0:
            undefined[names[k]] = "class absent from labels: no positive sample for its one-vs-rest ROC"
        elif support[k] == n:
            undefined[names[k]] = "every label is this class: no negative sample for its one-vs-rest ROC"
        auc.append(None if names[k] in undefined else float(compute_roc_auc(p[:, k], y_onehot[:, k])))
    warnings += [f"roc_auc of class '{name}' is undefined ({why})" for name, why in undefined.items()]
    defined = [k for k in range(c) if auc[k] is not None]
    auc_macro = float(np.mean([auc[k] for k in defined])) if defined else None
    weights = [support[k] for k in defined]
    auc_weighted = float(np.average([auc[k] for k in defined], weights=weights)) if defined else None

    def averages(weights: Sequence[float] | None, auc_avg: float | None) -> dict[str, Any]:
        avg = {
            m: float(np.average(v, weights=weights))
            for m, v in (("precision", precision), ("recall", recall), ("f1", f1))
        }
        return {**avg, "support": n, "roc_auc": auc_avg}

    return {
        "num_samples": n,
        "class_names": names,
        "accuracy": float((pred == y).double().mean()),
        "per_class": {
            names[k]: {
                "precision": precision[k],
                "recall": recall[k],
                "f1": f1[k],
                "support": support[k],
                "roc_auc": auc[k],
            }
            for k in range(c)
        },
        "macro_avg": averages(None, auc_macro),
        "weighted_avg": averages(support, auc_weighted),
        "roc_auc_undefined": undefined,
        "ece": expected_calibration_error(p, y, n_bins=15),
        "ece_bins": 15,
        "confusion_matrix": cm.tolist(),
        "warnings": warnings,
    }


def minority_recall(report: Mapping[str, Any], class_names: Sequence[str] | None = None) -> float:
    """Recall of the class with the smallest support in a :func:`classification_report`.

    Args:
        report: the dict :func:`classification_report` returns.
        class_names: restrict the choice to these classes (default: all). Classes with support 0 are skipped:
            their recall is undefined. Ties go to the first class in order.

    Raises:
        ValueError: a name not in the report, or no candidate class with support > 0.
    """
    per_class = report["per_class"]
    candidates = list(per_class) if class_names is None else [str(c) for c in class_names]
    missing = [c for c in candidates if c not in per_class]
    if missing:
        raise ValueError(f"classes {missing} are not in the report, which has {list(per_class)}.")
    present = [c for c in candidates if per_class[c]["support"] > 0]
    if not present:
        raise ValueError(f"none of the classes {candidates} occurs in the labels; minority recall is undefined.")
    smallest = min(present, key=lambda c: per_class[c]["support"])
    return float(per_class[smallest]["recall"])


def fit_temperature(logits: Any, labels: Any, max_iter: int = 200) -> float:
    """Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017), by hand.

    Finds the scalar ``T > 0`` minimising the negative log-likelihood of ``softmax(logits / T)``, by L-BFGS over
    ``log T`` (which keeps ``T`` positive). Fit it on validation logits, never on the test set; it does not
    change the argmax, so accuracy is unchanged and only calibration (ECE, NLL) moves.

    Args:
        logits: (N, C) pre-softmax outputs, or (N,) / (N, 1) binary logits (scaled as the logit of class 1).
        labels: (N,) integer classes.
        max_iter: L-BFGS iterations.

    Returns:
        the fitted temperature as a float.
    """
    z = _as_logits(logits)
    y = _as_labels(labels, z.shape[0], z.shape[1])
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [log_t], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-10, tolerance_change=1e-12
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(z * torch.exp(-log_t), y)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    t = float(torch.exp(log_t.detach()))
    if not np.isfinite(t) or t <= 0:
        raise RuntimeError(f"temperature scaling diverged (T = {t}); are the logits finite and the labels right?")
    return t


def apply_temperature(logits: Any, temperature: float) -> Any:
    """``logits / temperature``, returned as the type it was given (tensor or numpy array)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    if isinstance(logits, torch.Tensor):
        return logits / temperature
    return np.asarray(logits) / temperature
