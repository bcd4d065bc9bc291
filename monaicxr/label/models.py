"""Which monaicxr bundles the MONAI Label app serves, as plain data, and the label names each one produces.

A :class:`ServedModel` names a bundle folder, the config overrides or overlay files that select its task, and
the labels its masks carry. Segmentation models share one label encoding so that one ``labels/final`` mask per
image trains all of them: ``0`` background, ``1`` lung, ``2`` infection (MONAI Label's ``{name: value}``
convention). A lung-only model reads any mask value above 0 as lung.

Weights: a model uses ``<model_dir>/<name>/models/model.pt`` (written by this app's training) when it exists,
else the bundle's shipped ``models/model.pt`` where that was trained for the model's task. A model with
neither is listed but answers inference with an error that says to train it first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monaicxr.data.errors import DatasetError

__all__ = ["ServedModel", "SERVED_MODELS", "served_models", "bundle_labels", "default_bundles_dir", "split_label"]

SEGMENTATION = "segmentation"
CLASSIFICATION = "classification"

LUNG = 1
INFECTION = 2


@dataclass(frozen=True)
class ServedModel:
    """One MONAI Label model backed by a monaicxr bundle.

    Args:
        name: the MONAI Label model name (``/infer/<name>``, ``/train/<name>``).
        bundle: the bundle folder name under the bundles directory.
        kind: ``"segmentation"`` or ``"classification"``.
        infer_overrides: config ids set on ``configs/inference.json`` (e.g. ``{"task": "3level"}``).
        train_configs: config files under ``configs/`` merged in order for training.
        task: the segmentation task (``"lung"`` or ``"3level"``); decides which masks training derives.
        labels: label name to mask value; ``None`` takes the names from the bundle's ``metadata.json``.
        shipped_weights: whether the bundle's ``models/model.pt`` was trained for this task (the unet bundle ships
            lung weights: the 3-level model only starts its training from them).
        description: shown to clients; ``None`` takes the bundle metadata's ``task``.
    """

    name: str
    bundle: str
    kind: str
    infer_overrides: dict = field(default_factory=dict)
    train_configs: tuple[str, ...] = ("train.json",)
    task: str = "lung"
    labels: dict | None = None
    shipped_weights: bool = True
    description: str | None = None


def default_bundles_dir() -> Path:
    """The repository's ``bundles/`` folder (this app serves bundles from a source checkout)."""
    return Path(__file__).resolve().parents[2] / "bundles"


def bundle_labels(model: ServedModel, bundle_dir: Path) -> dict[str, int] | list[str]:
    """The label names of ``model``: ``{name: mask value}`` for segmentation, the class list for classification.

    Taken from the bundle's ``metadata.json`` (``class_names``, or the output ``channel_def``) unless the record
    gives them (the 3-level task, whose single regression channel has no per-level names in the metadata).
    """
    if model.labels is not None:
        return dict(model.labels)
    meta = json.loads((bundle_dir / "configs" / "metadata.json").read_text())
    channel_def = meta["network_data_format"]["outputs"]["pred"].get("channel_def", {})
    if model.kind == CLASSIFICATION:
        names = meta.get("class_names") or [channel_def[k] for k in sorted(channel_def, key=int)]
        return list(names)
    # one foreground channel per name; value = channel index + 1 (0 stays background)
    names = [channel_def[k] for k in sorted(channel_def, key=int) if channel_def[k] != "background"]
    return {n: LUNG if n == "lung" else i + 1 for i, n in enumerate(names)}


def split_label(label: np.ndarray, path: str = "label") -> tuple[np.ndarray, np.ndarray]:
    """A datastore mask to binary ``(lung, infection)`` masks.

    Accepted encodings: ``{0, 1}`` or ``{0, 255}`` (lung only: infection all zero), ``{0, 1, 2}`` (this app's
    ``lung`` = 1, ``infection`` = 2) and ``{0, 125, 255}`` (the studies' 3-level masks).

    Raises:
        DatasetError: any other set of values, naming ``path``.
    """
    values = {float(v) for v in np.unique(label)}
    if values <= {0.0, 1.0} or values <= {0.0, 255.0}:
        return label > 0, np.zeros(label.shape, dtype=bool)
    if values <= {0.0, float(LUNG), float(INFECTION)}:
        return label >= LUNG, label == INFECTION
    if values <= {0.0, 125.0, 255.0}:
        return label > 0, label == 255
    raise DatasetError(
        f"{path}: a label mask must hold 0/1, 0/255, 0/1/2 (lung 1, infection 2) or 0/125/255, "
        f"found values {sorted(values)[:6]}"
    )


def served_models(bundles_dir: Path, names: str | None = None) -> list[ServedModel]:
    """The records of :data:`SERVED_MODELS` whose bundle has an ``inference.json`` in ``bundles_dir``.

    Args:
        bundles_dir: the folder holding the bundles.
        names: ``None`` or ``"all"`` for every available model, else comma-separated model names.

    Raises:
        ValueError: an unknown name; the message lists the valid ones.
    """
    available = [m for m in SERVED_MODELS if (bundles_dir / m.bundle / "configs" / "inference.json").is_file()]
    if not names or names.strip() == "all":
        return available
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    by_name = {m.name: m for m in available}
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        raise ValueError(f"unknown or unavailable model(s) {unknown}; available in {bundles_dir}: {sorted(by_name)}")
    return [by_name[n] for n in wanted]


SERVED_MODELS: tuple[ServedModel, ...] = (
    ServedModel(name="segmentation_lung", bundle="unet", kind=SEGMENTATION, task="lung"),
    ServedModel(
        name="segmentation_lung_infection",
        bundle="unet",
        kind=SEGMENTATION,
        infer_overrides={"task": "3level"},
        train_configs=("train.json", "task_3level.json"),
        task="3level",
        labels={"lung": LUNG, "infection": INFECTION},
        shipped_weights=False,
        description="Lung and COVID-19 infection (3-level: background 0, lung 1, infection 2) segmentation, "
        "BasicUNet; no shipped weights: train it on the datastore's labels (starts from the lung weights)",
    ),
    ServedModel(name="segmentation_lung_u2net", bundle="u2net", kind=SEGMENTATION, task="lung"),
    ServedModel(name="classification_covid", bundle="simple_cnn", kind=CLASSIFICATION),
    ServedModel(
        name="classification_covid_lungs",
        bundle="efficientnet_lite0",
        kind=CLASSIFICATION,
        train_configs=("train.json", "label_train.json"),
        description="COVID-19 / Non-COVID / Normal from the lungs alone: ImageNet EfficientNet-Lite0 on the lung box "
        "cut out by the bundled lung U-Net, temperature-scaled (the weights card)",
    ),
)
