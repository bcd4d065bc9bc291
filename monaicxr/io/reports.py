"""Write a classifier evaluation to disk: report JSON and text, confusion matrix, curves, predictions, gallery.

The numbers come from :mod:`monaicxr.metrics.classification`; this module only formats and draws them. The
confusion matrix, ROC curves and reliability diagram are scikit-learn's ``ConfusionMatrixDisplay``,
``RocCurveDisplay`` and ``CalibrationDisplay``, given the numbers already computed (so the figures show exactly
the report's values and the ECE's bins) and drawn on an axis of a ``matplotlib.figure.Figure`` saved with
``FigureCanvasAgg``: writing them neither needs a display nor changes the pyplot backend of the caller. The
gallery of films is drawn here (scikit-learn has no such display).
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.calibration import CalibrationDisplay
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay

from monaicxr.metrics.classification import (
    _as_labels,
    _as_logits,
    _as_probs,
    _names,
    classification_report,
    reliability_bins,
    roc_curves,
)

__all__ = ["format_classification_report", "write_classification_outputs"]

logger = logging.getLogger(__name__)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def format_classification_report(report: dict[str, Any], digits: int = 2) -> str:
    """The report as the table ``sklearn.metrics.classification_report`` prints, plus ROC AUC, ECE and warnings."""
    names = report["class_names"]
    rows = ["macro avg", "weighted avg", *names]
    width = max(len(r) for r in rows)
    head = ["precision", "recall", "f1-score", "support", "roc-auc"]
    lines = [" " * width + "".join(f"{h:>10}" for h in head), ""]

    def row(label: str, m: dict[str, Any]) -> str:
        cells = [_fmt(m["precision"], digits), _fmt(m["recall"], digits), _fmt(m["f1"], digits), str(m["support"])]
        return f"{label:>{width}}" + "".join(f"{c:>10}" for c in cells) + f"{_fmt(m['roc_auc'], digits):>10}"

    lines += [row(name, report["per_class"][name]) for name in names]
    lines += [
        "",
        f"{'accuracy':>{width}}" + " " * 20 + f"{_fmt(report['accuracy'], digits):>10}{report['num_samples']:>10}",
    ]
    lines += [row("macro avg", report["macro_avg"]), row("weighted avg", report["weighted_avg"]), ""]
    lines.append(f"expected calibration error ({report['ece_bins']} bins, top-label): {report['ece']:.4f}")
    if report.get("temperature") is not None:
        lines.append(
            f"  with temperature {report['temperature']:.4g} (weights card); before it: {report['ece_uncalibrated']:.4f}"
        )
    if report["warnings"]:
        lines += ["", "warnings:"] + [f"  - {w}" for w in report["warnings"]]
    return "\n".join(lines) + "\n"


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.savefig(path)
    return path


def _confusion_figure(cm: np.ndarray, names: list[str]) -> Figure:
    size = 2.5 + 0.6 * len(names)
    fig = Figure(figsize=(size + 1, size), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    display = ConfusionMatrixDisplay(cm, display_labels=names)
    display.plot(ax=ax, cmap="Blues", values_format="d", xticks_rotation=45)
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix (rows = true)")
    return fig


def _roc_figure(curves: dict, report: dict[str, Any]) -> Figure:
    fig = Figure(figsize=(5, 5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    first = True
    for name, curve in curves.items():
        if curve is None:
            ax.plot([], [], " ", label=f"{name} (undefined: {report['roc_auc_undefined'][name].split(':')[0]})")
            continue
        fpr, tpr, _ = curve
        display = RocCurveDisplay(fpr=fpr, tpr=tpr, roc_auc=report["per_class"][name]["roc_auc"], name=name)
        display.plot(ax=ax, curve_kwargs={"lw": 1.5}, plot_chance_level=first, chance_level_kw={"lw": 1})
        first = False
    ax.set(xlabel="false positive rate", ylabel="true positive rate")
    ax.set_title(f"ROC one-vs-rest (macro AUC = {_fmt(report['macro_avg']['roc_auc'], 3)})")
    ax.legend(loc="lower right", fontsize="small")
    return fig


def _reliability_figure(bins: dict[str, np.ndarray], confidence: np.ndarray, ece: float) -> Figure:
    """The top-label reliability curve over the non-empty bins of the ECE, each point labelled with its count."""
    fig = Figure(figsize=(5, 5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    filled = bins["count"] > 0
    display = CalibrationDisplay(bins["accuracy"][filled], bins["confidence"][filled], confidence)
    display.plot(ax=ax, name="top-label")
    for x, y, n in zip(bins["confidence"][filled], bins["accuracy"][filled], bins["count"][filled], strict=True):
        ax.annotate(str(int(n)), (x, y), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=6)
    ax.set(xlim=(0, 1), ylim=(0, 1.05), xlabel="confidence (max probability)", ylabel="accuracy")
    ax.set_title(f"Reliability diagram (ECE = {ece:.4f}, {len(filled)} bins)")
    return fig


def _gallery_figure(picks: list[tuple[np.ndarray, str, bool]]) -> Figure:
    cols = min(8, len(picks))
    rows = -(-len(picks) // cols)
    fig = Figure(figsize=(2 * cols, 2.2 * rows), dpi=100, layout="constrained")
    for k, (image, title, correct) in enumerate(picks):
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.imshow(image, cmap="gray")
        ax.set_title(title, fontsize=8, color="green" if correct else "red")
        ax.axis("off")
    return fig


def _as_2d(image: Any) -> np.ndarray:
    a = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image, dtype=np.float32)
    a = np.squeeze(a)
    if a.ndim == 3:  # channel-first (C, H, W): show the first channel
        a = a[0]
    if a.ndim != 2:
        raise ValueError(f"gallery images must be 2D (or channel-first with one shown channel), got shape {a.shape}.")
    return a


def write_classification_outputs(
    out_dir: str | Path,
    probs: Any,
    labels: Any,
    class_names: Sequence[str],
    image_paths: Sequence[str] | None = None,
    logits: Any = None,
    images: Sequence[Any] | None = None,
    summary_writer: Any = None,
    step: int = 0,
    max_gallery: int = 8,
    report: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Compute :func:`~monaicxr.metrics.classification.classification_report` and write every output.

    Args:
        out_dir: folder to write to (created).
        probs: (N, C) softmax probabilities, or (N,) / (N, 1) sigmoid probabilities of class 1.
        labels: (N,) integer classes.
        class_names: C names.
        image_paths: N paths (or identifiers) for ``predictions.csv``; ``sample_<i>`` when omitted.
        logits: optional (N, C) logits, added to ``predictions.csv`` as ``logit_<class>`` columns so that a
            temperature can be fitted later (:func:`~monaicxr.metrics.classification.fit_temperature`). A single
            sigmoid logit per image ((N,) or (N, 1)) is written as one column, ``logit_<class_names[1]>``: the
            network has no logit for the negative class (its probability column ``p_<class_names[0]>`` is
            ``1 - p``).
        images: optional N 2D arrays (or None for samples not kept) for ``gallery.png``.
        summary_writer: optional ``torch.utils.tensorboard.SummaryWriter``: gets the confusion matrix figure and
            the scalar metrics under ``classification/``.
        step: global step for the summary writer.
        max_gallery: at most this many correct and this many incorrect predictions in the gallery.
        report: a report already computed from the same inputs (it is recomputed when omitted).

    Returns:
        name -> path of each file written: ``report_json``, ``report_txt``, ``confusion_csv``, ``confusion_png``,
        ``roc_png``, ``reliability_png``, ``predictions_csv`` and, with ``images``, ``gallery_png``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    p = _as_probs(probs)
    n, c = p.shape
    y = _as_labels(labels, n, c)
    names = _names(class_names, c)
    if report is None:
        report = classification_report(p, y, names)
    paths = [f"sample_{i}" for i in range(n)] if image_paths is None else [str(s) for s in image_paths]
    if len(paths) != n:
        raise ValueError(f"got {len(paths)} image paths for {n} predictions.")
    z = None if logits is None else _as_logits(logits)
    if z is not None and z.shape != p.shape:
        raise ValueError(f"logits shape {tuple(z.shape)} does not match probabilities {tuple(p.shape)}.")
    # one sigmoid logit: _as_logits pads it to (0, z); write z alone rather than a constant column of zeros
    single_logit = logits is not None and np.prod(np.shape(logits)[1:], dtype=int) == 1 and c == 2
    pred, truth = p.argmax(1).tolist(), y.tolist()
    written: dict[str, Path] = {}

    written["report_json"] = out / "classification_report.json"
    written["report_json"].write_text(json.dumps(report, indent=2, allow_nan=False))
    written["report_txt"] = out / "classification_report.txt"
    written["report_txt"].write_text(format_classification_report(report))

    cm = np.asarray(report["confusion_matrix"], dtype=np.int64)
    written["confusion_csv"] = out / "confusion_matrix.csv"
    with open(written["confusion_csv"], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["true \\ predicted", *names])
        w.writerows([name, *row] for name, row in zip(names, cm.tolist(), strict=True))
    written["confusion_png"] = _save(_confusion_figure(cm, names), out / "confusion_matrix.png")
    written["roc_png"] = _save(_roc_figure(roc_curves(p, y, names), report), out / "roc_curves.png")
    bins = reliability_bins(p, y, n_bins=report["ece_bins"])
    reliability = _reliability_figure(bins, p.max(1).values.numpy(), report["ece"])
    written["reliability_png"] = _save(reliability, out / "reliability_diagram.png")

    written["predictions_csv"] = out / "predictions.csv"
    with open(written["predictions_csv"], "w", newline="") as f:
        w = csv.writer(f)
        logit_names = [] if z is None else names[1:] if single_logit else names
        logit_cols = [f"logit_{name}" for name in logit_names]
        w.writerow(["image", "true", "pred", *[f"p_{name}" for name in names], *logit_cols, "correct"])
        for i in range(n):
            # 9 significant digits keep every float32 value apart: metrics recomputed from the file (ROC AUC
            # ranks the probabilities) then match the report even where an untrained network's outputs differ
            # only in the seventh decimal
            extra = [] if z is None else [f"{v:.9g}" for v in z[i, -len(logit_names) :].tolist()]
            probs_i = [f"{v:.9g}" for v in p[i].tolist()]
            correct = "yes" if pred[i] == truth[i] else "no"
            w.writerow([paths[i], names[truth[i]], names[pred[i]], *probs_i, *extra, correct])

    if images is not None:
        if len(images) != n:
            raise ValueError(f"got {len(images)} images for {n} predictions (use None for samples not kept).")
        right = [i for i in range(n) if images[i] is not None and pred[i] == truth[i]][:max_gallery]
        wrong = [i for i in range(n) if images[i] is not None and pred[i] != truth[i]][:max_gallery]
        picks = [
            (_as_2d(images[i]), f"{names[truth[i]]} / {names[pred[i]]} ({float(p[i, pred[i]]):.2f})", i in right)
            for i in right + wrong
        ]
        if picks:
            written["gallery_png"] = _save(_gallery_figure(picks), out / "gallery.png")

    if summary_writer is not None:
        summary_writer.add_figure("classification/confusion_matrix", _confusion_figure(cm, names), step)
        scalars = {"accuracy": report["accuracy"], "ece": report["ece"]}
        scalars.update({f"macro_{k}": v for k, v in report["macro_avg"].items() if k != "support"})
        scalars.update({f"recall/{name}": m["recall"] for name, m in report["per_class"].items()})
        scalars.update({f"roc_auc/{name}": m["roc_auc"] for name, m in report["per_class"].items()})
        for key, value in scalars.items():
            if value is not None:
                summary_writer.add_scalar(f"classification/{key}", value, step)
        summary_writer.flush()

    logger.info("classification report (%d samples) written to %s", n, out)
    return written
