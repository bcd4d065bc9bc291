"""The card beside a weights file: what input the weights expect and the temperature fitted for them.

A classifier's weights are only right for the input they were trained on (the whole film, or the lungs cut out
by a segmentation) and their probabilities only calibrated with the temperature fitted for those very weights.
Both live in a small JSON file beside the weights, ``<weights stem>.json`` (``models/model.pt`` ->
``models/model.json``)::

    {
      "weights": "model.pt",
      "sha256": "<of the weights file>",
      "input": {"lung_input": "crop_mask", "spatial_size": [224, 224], "lung_margin": 8, "mask_dilation": 4},
      "temperature": {"value": 1.31, "fitted_on": "validation", "n_images": 927,
                      "ece_before": 0.041, "ece_after": 0.012, "nll_before": 0.29, "nll_after": 0.27}
    }

``input`` is written by training (:func:`write_input_card`, called from the classifier bundles' ``run``) and
checked by evaluation and inference (:func:`check_input`): a config whose input settings differ from the
weights' is an error naming the card, so lung-cropped weights cannot be fed whole films by mistake.
``temperature`` is written by ``monaicxr calibrate`` (:func:`fit_card_temperature`) from an evaluation's
``predictions.csv`` on the validation section, and read by evaluate, inference, ``monaicxr predict`` and MONAI
Label (:func:`card_temperature`). The ``sha256`` ties the card to one weights file: after retraining, a stale
temperature is refused rather than applied.

Hand-written: the file format and its checks; the temperature itself is
:func:`monaicxr.metrics.classification.fit_temperature`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .checkpoints import CheckpointError, save_atomic

__all__ = [
    "CardError",
    "card_path",
    "read_card",
    "write_input_card",
    "seal_card",
    "check_input",
    "card_temperature",
    "fit_card_temperature",
]

logger = logging.getLogger(__name__)


class CardError(ValueError):
    """A weights card that does not belong to its weights, or a config that does not fit the card."""


def card_path(weights: str | Path) -> Path:
    """``models/model.pt`` -> ``models/model.json``."""
    return Path(weights).with_suffix(".json")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_card(weights: str | Path) -> dict | None:
    """The card of ``weights`` as a dict, or ``None`` when there is none.

    Raises:
        CardError: the card is not valid JSON, or its ``sha256`` is not that of ``weights``.
    """
    weights, card = Path(weights), card_path(weights)
    if not card.is_file():
        return None
    try:
        content = json.loads(card.read_text())
    except json.JSONDecodeError as e:
        raise CardError(f"{card}: the weights card is not valid JSON ({e})") from e
    if not isinstance(content, dict):
        raise CardError(f"{card}: the weights card must be a JSON object, got {type(content).__name__}")
    if weights.is_file() and content.get("sha256") and content["sha256"] != _sha256(weights):
        raise CardError(
            f"{card} describes other weights than {weights} (sha256 differs): the weights were replaced after the "
            "card was written; retrain or re-run `monaicxr calibrate`, or delete the stale card"
        )
    return content


def _write(weights: Path, content: dict) -> Path:
    card = card_path(weights)
    content = {"weights": weights.name, "sha256": _sha256(weights) if weights.is_file() else None, **content}
    save_atomic(content, card, save=lambda obj, f: f.write((json.dumps(obj, indent=2) + "\n").encode()))
    return card


def write_input_card(weights: str | Path, **settings: Any) -> Path:
    """Record the input settings the weights are trained with (``lung_input``, ``spatial_size``, ...).

    Called before training starts, with ``weights`` the best-model path that training will write; the hash is
    filled in when the weights exist (:func:`fit_card_temperature` and :func:`seal_card` do it afterwards).
    Any temperature of an earlier card is dropped: it belongs to other weights.
    """
    weights = Path(weights)
    weights.parent.mkdir(parents=True, exist_ok=True)
    plain = {k: list(v) if isinstance(v, (tuple, list)) else v for k, v in settings.items()}
    card = _write(weights, {"input": plain})
    logger.info("weights card %s: input %s", card, plain)
    return card


def seal_card(weights: str | Path) -> Path | None:
    """Put the hash of the finished ``weights`` into its card (``None`` when there is no card)."""
    weights = Path(weights)
    card = card_path(weights)
    if not card.is_file() or not weights.is_file():
        return None
    content = json.loads(card.read_text())
    content.pop("weights", None)
    content.pop("sha256", None)
    return _write(weights, content)


def check_input(weights: str | Path, **settings: Any) -> dict | None:
    """Refuse settings that differ from the ones the card of ``weights`` records.

    Only keys present on both sides are compared; weights without a card (older releases) pass, with the
    settings as given. Returns the card's ``input`` (or ``None``). Evaluation and inference call it first, so
    missing weights are reported here, before any image is read.

    Raises:
        CheckpointError: ``weights`` does not exist (naming it).
        CardError: a setting differs; the message names the card, the setting and both values.
    """
    if not Path(weights).is_file():
        raise CheckpointError(f"checkpoint {weights} does not exist; train the bundle first, or pass --ckpt_path FILE")
    card = read_card(weights)
    recorded = (card or {}).get("input")
    if not recorded:
        return None
    for key, value in settings.items():
        if key not in recorded:
            continue
        given = list(value) if isinstance(value, (tuple, list)) else value
        if given != recorded[key]:
            raise CardError(
                f"{card_path(weights)}: the weights {Path(weights).name} were trained with {key}={recorded[key]!r}, "
                f"but this config asks for {key}={given!r}; set {key} to {recorded[key]!r} (or use weights trained "
                f"with {given!r})"
            )
    return recorded


def card_temperature(weights: str | Path | None) -> float | None:
    """The temperature of the card of ``weights``, or ``None`` (no weights, no card, no temperature)."""
    if weights is None or not Path(weights).is_file():
        return None
    card = read_card(weights)
    entry = (card or {}).get("temperature")
    if not entry:
        return None
    value = float(entry["value"])
    if not value > 0:
        raise CardError(f"{card_path(weights)}: temperature must be > 0, got {value}")
    return value


def _read_predictions(path: Path, class_names: Sequence[str]) -> tuple[list[list[float]], list[int]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise CardError(f"{path}: no predictions")
    cols = [f"logit_{c}" for c in class_names]
    missing = [c for c in cols if c not in rows[0]]
    if missing:
        raise CardError(f"{path}: columns {missing} missing; temperature needs the logits an evaluation writes")
    index = {c: i for i, c in enumerate(class_names)}
    logits, labels = [], []
    for n, row in enumerate(rows, start=2):
        if row["true"] not in index:
            raise CardError(f"{path} line {n}: true class {row['true']!r} is not one of {list(class_names)}")
        logits.append([float(row[c]) for c in cols])
        labels.append(index[row["true"]])
    return logits, labels


def fit_card_temperature(
    weights: str | Path, eval_dir: str | Path, class_names: Sequence[str] | None = None, n_bins: int = 15
) -> dict:
    """Fit a temperature on an evaluation of ``weights`` on the validation section and store it in the card.

    ``eval_dir`` is the folder an evaluate run wrote (``summary.json`` and ``predictions.csv`` with logits).
    The run must have scored the validation section with these very weights: a test-section evaluation or one
    of other weights is refused (a temperature fitted on the test set would make its ECE a lie).

    Returns:
        the card's ``temperature`` entry (value, section, count, ECE and NLL before and after).

    Raises:
        CardError: missing files, another section, other weights, no logits.
    """
    import torch
    import torch.nn.functional as F

    from monaicxr.metrics.classification import expected_calibration_error, fit_temperature

    weights, eval_dir = Path(weights), Path(eval_dir)
    if not weights.is_file():
        raise CardError(f"{weights}: no such weights file")
    summary_file, preds = eval_dir / "summary.json", eval_dir / "predictions.csv"
    for f in (summary_file, preds):
        if not f.is_file():
            raise CardError(f"{f}: missing; pass the folder an evaluate run wrote (its summary.json, predictions.csv)")
    summary: Mapping[str, Any] = json.loads(summary_file.read_text())
    section = summary.get("eval_section")
    if section != "validation":
        raise CardError(
            f"{summary_file}: the evaluation scored the {section!r} section; fit the temperature on 'validation' "
            "only (evaluate with --eval_section validation)"
        )
    ckpt = summary.get("checkpoint")
    if ckpt and Path(ckpt).is_file() and _sha256(Path(ckpt)) != _sha256(weights):
        raise CardError(f"{summary_file}: the evaluation used {ckpt}, other weights than {weights}")
    names = list(class_names or summary.get("data", {}).get("classes") or [])
    if not names:
        with open(preds, newline="") as f:
            header = next(csv.reader(f))
        names = [c[len("logit_") :] for c in header if c.startswith("logit_")]
    logits, labels = _read_predictions(preds, names)
    z, y = torch.tensor(logits, dtype=torch.float64), torch.tensor(labels)
    t = fit_temperature(z, y)
    entry = {
        "value": t,
        "fitted_on": "validation",
        "n_images": len(labels),
        "ece_before": expected_calibration_error(F.softmax(z, 1), y, n_bins),
        "ece_after": expected_calibration_error(F.softmax(z / t, 1), y, n_bins),
        "nll_before": float(F.cross_entropy(z, y)),
        "nll_after": float(F.cross_entropy(z / t, y)),
        "ece_bins": n_bins,
        "evaluation": str(eval_dir),
    }
    content = read_card(weights) or {}
    content.pop("weights", None)
    content.pop("sha256", None)
    content["temperature"] = entry
    card = _write(weights, content)
    logger.info("temperature %.4f fitted on %d validation images -> %s", t, len(labels), card)
    return entry
