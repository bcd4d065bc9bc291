"""Predict and report: lungs, infection, class and saliency for a folder of chest X-rays, in one pass.

:func:`predict` runs up to three bundles over every image of a file, a folder (walked recursively, class
sub-folders fine) or a list of files, and writes to one output folder:

========================== ==========================================================================
``predictions.csv``        one row per input file (:data:`CSV_COLUMNS`; a ``p_<class>`` column per class
                           name), skipped files included with their reason
``masks/<name>_lung.png``  lung mask, 0 / 255, at the image's native size (as displayed: see EXIF below)
``masks/<name>_infection.png``  infection mask, where an infection model ran
``overlays/<name>.png``    the image with lungs (blue) and infection (red), captioned with class and severity
``gradcam/<name>.png``     Grad-CAM of the predicted class over the image (``monai.visualize.GradCAM``)
``dicom_seg/<name>.seg.dcm``  for DICOM input: lung (and infection) masks as a DICOM SEG referencing the source
                           image (:func:`monaicxr.io.dicom_seg.write_dicom_seg`, highdicom); a source that
                           lacks what highdicom needs gets a ``DICOM SEG not written: ...`` warning instead
``report.html``            one self-contained page (:mod:`monaicxr.io.html_report`)
``summary.json``           counts (found, read, predicted, skipped), the models and their weights, notes
========================== ==========================================================================

``<name>`` is the file's path under the input folder without its suffix, so class sub-folders are kept.

How each model runs: the bundle's ``configs/inference.json`` is read with ``monai.bundle.ConfigParser`` and
its ``network_def`` and ``preprocessing`` are built from it (the loader left out: every file is read once
here, by :func:`monaicxr.io.reader.read_cxr`), the weights are checked and loaded with
:func:`monaicxr.io.load_checkpoint`. Segmentation runs at the network's size; the mask is thresholded
(sigmoid > 0.5; the 3-level model's output snapped to the levels 0, 0.5, 1), cleaned there (two largest lungs,
holes filled) and resized back to the image with nearest-neighbour interpolation. The default infection model is
the unet bundle with ``configs/task_infection.json`` (task ``infection``, weights ``models/model_infection.pt``):
its mask is sigmoid > 0.5, resized to the image and restricted to the lung model's lungs
(:class:`~monaicxr.transforms.RestrictToLungs`), so it needs the lung model; a 3-level model's infection is
restricted to the lung model's lungs where that runs, else to its own. Per-lung infected fractions come from
:func:`monaicxr.metrics.severity.infection_fraction`: the lung mask's two largest connected components, the
one whose centroid lies further left in the image being the patient's right lung; a single component is
assigned by the image half holding its centroid. Grades are :func:`~monaicxr.metrics.severity.severity_grade`.

The classifier's probabilities use the temperature of its weights card (``models/model.json`` beside
``models/model.pt``, fitted on Val by ``monaicxr calibrate``: :mod:`monaicxr.io.weights_card`); otherwise the
``calibration`` column says ``uncalibrated``. A lung-cropped classifier (``efficientnet_lite0``) predicts its
own lungs inside its preprocessing, and its Grad-CAM is put back into the lung box it saw. Grad-CAM's target layer is :data:`GRADCAM_LAYERS` for the
networks named there and the last ``Conv2d`` otherwise.

Input checks (:mod:`monaicxr.workflows.inputs`): a file that cannot be read (truncated, not an image, CMYK,
several frames, a symbolic-link loop, a side under ``MIN_SIDE`` pixels...) is skipped with its reason; nothing
stops the batch. Implausible input is predicted but flagged in ``warnings``: near-constant images, sides under
``TINY_SIDE`` pixels, aspect ratios over ``MAX_ASPECT``, and an EXIF orientation, which is applied there
(``PIL.ImageOps.exif_transpose`` semantics) rather than in :class:`~monaicxr.io.CXRImageReader`, whose training
callers need the stored pixels that their masks were drawn on. Where the lung model runs, an image whose lung
output does not look like a frontal chest X-ray's (unsure, or not two lungs side by side: a lateral view, a CT
slice, noise) is flagged ``probably not a frontal chest X-ray (...)`` by
:func:`monaicxr.workflows.ood.frontal_cxr_check`, whose docstring gives the rule and its thresholds.

Example::

    summary = predict("chest_xrays/", "runs/predict", models=["lung", "classifier"])
    print(summary["n_predicted"], "predicted,", summary["n_skipped"], "skipped")
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from monaicxr.data.errors import DatasetError
from monaicxr.io.weights_card import card_path, card_temperature, check_input
from monaicxr.workflows.inputs import GENERATOR, apply_exif_orientation, find_inputs, input_warnings, read_input
from monaicxr.workflows.ood import frontal_cxr_check

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_MODELS",
    "GRADCAM_LAYERS",
    "LoadedModel",
    "ModelSpec",
    "apply_exif_orientation",
    "find_inputs",
    "input_warnings",
    "load_model",
    "predict",
    "read_input",
    "resolve_bundle",
    "resolve_models",
]

logger = logging.getLogger(__name__)

ROLES = ("lung", "infection", "classifier")
#: the tasks an infection-role model may have: infection alone (lungs from the lung model) or 3-level
INFECTION_TASKS = ("infection", "3level")
#: network class name -> the module Grad-CAM hooks (its output feature map); others: the last Conv2d
GRADCAM_LAYERS = {"SimpleCNN": "features.2", "DenseNet121": "class_layers.relu"}
#: the fixed leading columns; ``p_<class>`` columns follow ``reason`` when a classifier runs
CSV_COLUMNS = (
    "file", "path", "status", "reason", "width", "height",
    "calibration", "predicted_class", "lung_area_fraction",
    "infected_fraction_right", "infected_fraction_left", "infected_fraction_total",
    "severity_right", "severity_left", "severity_total",
    "lung_mask", "infection_mask", "overlay", "gradcam", "dicom_seg", "warnings",
)  # fmt: skip


@dataclass(frozen=True)
class ModelSpec:
    """Where one model of :func:`predict` comes from: a bundle folder, its config and its weights.

    Args:
        role: ``"lung"``, ``"infection"`` (an infection model, task ``infection``, which needs the lung model
            beside it, or a 3-level lung / infection model, task ``3level``) or ``"classifier"``.
        bundle: the bundle folder; a relative path is looked up under the repository (or installed package)
            first and the current directory second (:func:`resolve_bundle`).
        config: the inference config inside the bundle.
        overlay: a config whose plain (un-nested) ids are set over ``config``, e.g. ``configs/task_infection.json``
            (its ``train#...`` / ``validate#...`` ids are for training and are not used).
        weights: the weights file inside the bundle.
        optional: a missing weights file skips the model with a note instead of stopping with an error.
    """

    role: str
    bundle: str
    config: str = "configs/inference.json"
    overlay: str | None = None
    weights: str = "models/model.pt"
    optional: bool = False


@dataclass
class LoadedModel:
    """A built, weighted network with its bundle's preprocessing (without the loader) and what it predicts."""

    spec: ModelSpec
    root: Path
    weights: Path
    network: torch.nn.Module
    preprocessing: object
    task: str = "lung"
    class_names: list[str] = field(default_factory=list)
    activation: str = "softmax"
    temperature: float | None = None
    calibration: str = "uncalibrated"
    gradcam: object = None
    gradcam_layer: str | None = None


# ------------------------------------------------------------------------------------------------ bundles
def _search_roots() -> list[Path]:
    package = Path(__file__).resolve().parents[1]  # .../monaicxr
    return [package.parent, package]  # the repository (editable install) and the package folder itself


def resolve_bundle(bundle: str | os.PathLike) -> Path:
    """The folder of ``bundle``: absolute as given; relative under the repository / package, then the cwd."""
    path = Path(bundle).expanduser()
    candidates = [path] if path.is_absolute() else [*(r / path for r in _search_roots()), Path.cwd() / path]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    raise FileNotFoundError(f"bundle {bundle}: no such folder (looked at {', '.join(str(c) for c in candidates)})")


def _bundle_role(root: Path) -> str:
    """Guess the role of a bundle given by path: classifier if it has class names, else by its ``task``."""
    config = json.loads((root / "configs" / "inference.json").read_text())
    if "class_names" in config:
        return "classifier"
    task = str(config.get("task", "lung"))
    if task in INFECTION_TASKS:
        return "infection"
    if task == "lung":
        return "lung"
    raise ValueError(
        f"{root}: inference task {task!r}; predict runs lung, infection, 3level and classification bundles"
    )


def resolve_models(models: Sequence[str | ModelSpec | os.PathLike] | str | None = None) -> list[ModelSpec]:
    """Model specs from names of :data:`DEFAULT_MODELS`, bundle paths and specs (strings may be comma-joined)."""
    if models is None:
        models = list(DEFAULT_MODELS)
    if isinstance(models, (str, os.PathLike)):
        models = [models]
    specs: list[ModelSpec] = []
    for item in models:
        tokens = [item] if isinstance(item, ModelSpec) else [t.strip() for t in str(item).split(",") if t.strip()]
        for t in tokens:
            if isinstance(t, ModelSpec):
                specs.append(t)
            elif t in DEFAULT_MODELS:
                specs.append(DEFAULT_MODELS[t])
            elif any(sep in t for sep in ("/", os.sep)) or Path(t).is_dir():
                root = resolve_bundle(t)
                specs.append(ModelSpec(role=_bundle_role(root), bundle=str(root)))
            else:
                raise ValueError(f"unknown model {t!r}: give one of {list(DEFAULT_MODELS)} or a bundle folder")
    roles = [s.role for s in specs]
    twice = sorted({r for r in roles if roles.count(r) > 1})
    if twice:
        raise ValueError(f"more than one model for {twice}; give one lung, one infection and one classifier")
    for s in specs:
        if s.role not in ROLES:
            raise ValueError(f"model role {s.role!r} is not one of {ROLES}")
    return specs


def _gradcam_layer(network: torch.nn.Module) -> str:
    name = GRADCAM_LAYERS.get(type(network).__name__)
    if name is not None:
        return name
    convs = [n for n, m in network.named_modules() if isinstance(m, torch.nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(network).__name__} has no Conv2d layer for Grad-CAM; add it to GRADCAM_LAYERS")
    return convs[-1]


def load_model(spec: ModelSpec) -> LoadedModel | str:
    """Build ``spec``'s network and preprocessing with ``ConfigParser`` and load its weights.

    Returns:
        the :class:`LoadedModel`, or for an optional model without weights the note saying why it is skipped.

    Raises:
        FileNotFoundError: naming the bundle, config or weights file that is missing.
    """
    from monai.bundle import ConfigParser
    from monai.transforms import Compose, LoadImaged

    from monaicxr.io import load_checkpoint

    root = resolve_bundle(spec.bundle)
    config = root / spec.config
    if not config.is_file():
        raise FileNotFoundError(f"{config}: no such inference config in the {spec.role} bundle {root}")
    weights = root / spec.weights
    if not weights.is_file():
        if spec.optional:
            return f"{spec.role} model skipped: {weights} does not exist (no weights trained for it yet)"
        raise FileNotFoundError(f"{weights}: the {spec.role} model's weights file does not exist; train the bundle")
    parser = ConfigParser()
    parser.read_config(str(config))
    meta = next((m for m in (root / "configs" / "metadata.json", root / "metadata.json") if m.is_file()), None)
    if meta is not None:
        parser.read_meta(str(meta))
    if spec.overlay:
        overlay = json.loads((root / spec.overlay).read_text())
        parser.update({k: v for k, v in overlay.items() if "#" not in k})
    parser["bundle_root"] = str(root)
    network = parser.get_parsed_content("network_def")
    ckpt = load_checkpoint(weights, map_location="cpu", expected={"model": network})
    network.load_state_dict(ckpt["model"])
    network.eval()
    pre = parser.get_parsed_content("preprocessing")
    pre = Compose([t for t in pre.transforms if not isinstance(t, LoadImaged)])
    model = LoadedModel(spec, root, weights, network, pre)
    if spec.role == "classifier":
        from monai.visualize import GradCAM

        names = parser.get("_meta_", {}).get("class_names") or parser.get_parsed_content("class_names")
        model.class_names = [str(n) for n in names]
        model.activation = str(parser.get_parsed_content("activation")) if "activation" in parser else "softmax"
        if "input_card" in parser:  # lung-cropped weights refuse a config with other input settings
            check_input(weights, **parser.get_parsed_content("input_card"))
        t = card_temperature(weights)
        if t is not None:
            model.temperature, model.calibration = t, f"temperature {t:.4g} ({card_path(weights).name})"
        model.gradcam_layer = _gradcam_layer(network)
        model.gradcam = GradCAM(nn_module=network, target_layers=model.gradcam_layer)
    else:
        model.task = str(parser.get_parsed_content("task")) if "task" in parser else "lung"
        if (spec.role == "infection") != (model.task in INFECTION_TASKS):
            raise ValueError(f"{config}: task {model.task!r} does not fit the {spec.role} role")
    logger.info("predict: %s model %s with %s", spec.role, config, weights)
    return model


# ------------------------------------------------------------------------------------------------ predict
def _network_input(model: LoadedModel, array: np.ndarray, meta: dict) -> torch.Tensor:
    from monai.data import MetaTensor

    image = MetaTensor(torch.as_tensor(array[None], dtype=torch.float32), meta=dict(meta))
    return torch.as_tensor(model.preprocessing({"image": image})["image"]).float()[None]


def _to_native(mask: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """A (1, h, w) binary mask at the network size, resized to ``shape`` by nearest neighbour, as bool (H, W)."""
    from monai.transforms import Resize

    out = Resize(spatial_size=shape, mode="nearest")(torch.as_tensor(mask, dtype=torch.float32))
    return torch.as_tensor(out)[0].numpy() > 0.5


def _clean_lungs(mask: torch.Tensor) -> torch.Tensor:
    from monaicxr.transforms import FillLungHoles, KeepLargestLungs

    return FillLungHoles()(KeepLargestLungs()(mask.float()))


def _segment(
    model: LoadedModel, array: np.ndarray, meta: dict
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
    """``(lung, infection, prob)``: bool masks at the image's size (infection ``None`` for a lung model, lung
    ``None`` for a task-``infection`` model) and the sigmoid map (h, w) at the network's size."""
    from monaicxr.transforms import SnapToLevels

    with torch.no_grad():
        prob = torch.sigmoid(model.network(_network_input(model, array, meta)))[0]
    if model.task == "3level":
        level = SnapToLevels((0.0, 0.5, 1.0))(prob)
        lung, infection = _clean_lungs((level >= 1).float()), (level == 2).float()
        return _to_native(lung, array.shape), _to_native(infection, array.shape), prob[0].numpy()
    if model.task == "infection":
        return None, _to_native((prob > 0.5).float(), array.shape), prob[0].numpy()
    return _to_native(_clean_lungs((prob > 0.5).float()), array.shape), None, prob[0].numpy()


def _classify(model: LoadedModel, array: np.ndarray, meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(probabilities (C,), Grad-CAM in [0, 1] at the image's size)``."""
    from monai.data import MetaTensor
    from monai.transforms import Resize

    from monaicxr.transforms.masking import BOX_KEY

    image = MetaTensor(torch.as_tensor(array[None], dtype=torch.float32), meta=dict(meta))
    ready = model.preprocessing({"image": image})["image"]
    box = (getattr(ready, "meta", None) or {}).get(BOX_KEY)  # a lung-cropped classifier saw only this box
    x = torch.as_tensor(ready).float()[None]
    with torch.no_grad():
        logits = model.network(x)[0].float()
    if model.temperature:
        logits = logits / model.temperature
    if model.activation == "sigmoid" and logits.numel() == 1:
        p1 = torch.sigmoid(logits)[0]
        probs = torch.stack([1 - p1, p1])
    elif model.activation == "sigmoid":
        probs = torch.sigmoid(logits)
    else:
        probs = torch.softmax(logits, dim=0)
    class_idx = int(probs.argmax()) if logits.numel() > 1 else 0
    cam = model.gradcam(x, class_idx=class_idx).detach()[0]  # (1, h, w), normalised to [0, 1]
    if box is None:
        cam = torch.as_tensor(Resize(spatial_size=array.shape, mode="bilinear")(cam))[0].numpy()
    else:
        (r0, c0, r1, c1), full = (int(v) for v in box), np.zeros(array.shape, dtype=np.float32)
        full[r0:r1, c0:c1] = torch.as_tensor(Resize(spatial_size=(r1 - r0, c1 - c0), mode="bilinear")(cam))[0].numpy()
        cam = full
    return probs.numpy(), np.nan_to_num(cam.clip(0, 1))


def _restrict_to_lungs(infection: np.ndarray, lung: np.ndarray) -> np.ndarray:
    """``infection AND lung`` of two bool (H, W) masks, by :class:`~monaicxr.transforms.RestrictToLungs`."""
    from monaicxr.transforms import RestrictToLungs

    out = RestrictToLungs()(torch.from_numpy(infection[None]).float(), torch.from_numpy(lung[None]).float())
    return torch.as_tensor(out)[0].numpy() > 0.5


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.4f}"


def _save_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _gradcam_picture(array: np.ndarray, cam: np.ndarray) -> np.ndarray:
    from matplotlib import colormaps

    lo, hi = float(array.min()), float(array.max())
    grey = (array - lo) / (hi - lo) if hi > lo else np.zeros_like(array)
    heat = colormaps["jet"](cam)[..., :3]
    return (255 * (0.55 * grey[..., None] + 0.45 * heat)).clip(0, 255).astype(np.uint8)


def _predict_one(models: dict[str, LoadedModel], array: np.ndarray, meta: dict, row: dict, out: Path, name: str):
    from monaicxr.io.overlay import add_caption, render_overlay
    from monaicxr.metrics.severity import format_severity, infection_fraction, severity_grade

    lung = infection = None
    caption = []
    warnings = row["warnings"]
    if "lung" in models:
        lung, _, prob = _segment(models["lung"], array, meta)
        not_frontal = frontal_cxr_check(prob)
        if not_frontal:
            warnings.append(not_frontal)
            logger.warning("predict: %s: %s", row["path"], not_frontal)
    if "infection" in models:
        lung3, infection, _ = _segment(models["infection"], array, meta)
        lung = lung3 if lung is None else lung
        if lung is None:  # predict() refuses a task-infection model without the lung model
            raise ValueError("the infection model needs lungs: run it with the lung model")
        infection = _restrict_to_lungs(infection, lung)
    if lung is not None:
        row["lung_area_fraction"] = _fmt(float(lung.mean()))
        row["lung_mask"] = f"masks/{name}_lung.png"
        _save_png(out / row["lung_mask"], lung.astype(np.uint8) * 255)
        if not lung.any():
            warnings.append("no lung found")
    if infection is not None:
        row["infection_mask"] = f"masks/{name}_infection.png"
        _save_png(out / row["infection_mask"], infection.astype(np.uint8) * 255)
        if lung.any():
            sev = infection_fraction(lung, infection)
            for side in ("right", "left", "total"):
                row[f"infected_fraction_{side}"] = _fmt(sev[f"{side}_fraction"])
                row[f"severity_{side}"] = severity_grade(sev[f"{side}_fraction"]) or sev[f"{side}_reason"]
                sev[f"{side}_grade"] = row[f"severity_{side}"]
            caption.append(format_severity(sev))
    if "classifier" in models:
        clf = models["classifier"]
        probs, cam = _classify(clf, array, meta)
        for n, p in zip(clf.class_names, probs, strict=True):
            row[f"p_{n}"] = _fmt(float(p))
        row["calibration"] = clf.calibration
        row["predicted_class"] = clf.class_names[int(probs.argmax())]
        row["gradcam"] = f"gradcam/{name}.png"
        _save_png(out / row["gradcam"], _gradcam_picture(array, cam))
        caption.insert(0, f"{row['predicted_class']} {float(probs.max()):.2f}")
    if lung is not None and meta.get("format") == "DICOM":
        _write_seg(models, row, out, name, lung, infection)
    labels = None
    if lung is not None:
        labels = lung.astype(np.uint8) + (infection.astype(np.uint8) if infection is not None else 0)
    row["overlay"] = f"overlays/{name}.png"
    _save_png(out / row["overlay"], add_caption(render_overlay(array, labels), " | ".join(caption)))


def _write_seg(models: dict[str, LoadedModel], row: dict, out: Path, name: str, lung, infection) -> None:
    """``dicom_seg/<name>.seg.dcm`` for a DICOM input; a source highdicom cannot use is a warning, not a failure."""
    from monaicxr.io.dicom_seg import DicomSegError, write_dicom_seg

    bundles = sorted({models[r].root.name for r in ("lung", "infection") if r in models})
    target = f"dicom_seg/{name}.seg.dcm"
    try:
        write_dicom_seg(
            row["path"], {"lung": lung, "infection": infection}, out / target, algorithm=f"monaicxr {'+'.join(bundles)}"
        )
    except Exception as e:  # DicomSegError, or anything highdicom raises: the masks are written, the row stays
        reason = e.reason if isinstance(e, DicomSegError) else f"{type(e).__name__}: {e}"
        row["warnings"].append(f"DICOM SEG not written: {reason}")
        logger.warning("predict: %s: DICOM SEG not written: %s", row["path"], reason)
        logger.debug("predict: DICOM SEG of %s failed", row["path"], exc_info=True)
    else:
        row["dicom_seg"] = target


def _names(items: list[tuple[Path, str]]) -> list[str]:
    """Output names (input name without suffix); a name taken twice keeps its suffix as ``_png``."""
    stems = [str(Path(n).with_suffix("")) if Path(n).suffix else n for _, n in items]
    return [s if stems.count(s) == 1 else n.replace(".", "_") for s, (_, n) in zip(stems, items, strict=True)]


def predict(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    output_dir: str | os.PathLike,
    models: Sequence[str | ModelSpec | os.PathLike] | str | None = None,
    report: bool = True,
    progress: bool = True,
) -> dict:
    """Predict lungs, infection and class for every input image and write the outputs listed in the module doc.

    Args:
        inputs: a file, a folder (recursive) or several of them.
        output_dir: the output folder (created; files of an earlier run with the same names are replaced).
        models: names of :data:`DEFAULT_MODELS` (``"lung,classifier"`` or a list), bundle folders, or
            :class:`ModelSpec` records; default all three. Every model is loaded before any image is read, so
            missing weights stop the run at once (an optional model's are a note in the summary instead).
        report: also write ``report.html``.
        progress: show a tqdm progress bar.

    Returns:
        the summary written to ``summary.json``: ``n_found``, ``n_read``, ``n_predicted``, ``n_skipped``,
        ``skipped`` (``[{"file", "reason"}]``), ``models``, ``notes``, ``predictions_csv``, ``report_html``.

    Raises:
        FileNotFoundError: a missing input, bundle or (non-optional) weights file.
        ValueError: unknown model names, or no model left to run.
    """
    from tqdm import tqdm

    specs = resolve_models(models)
    loaded: dict[str, LoadedModel] = {}
    notes: list[str] = []
    for spec in specs:
        m = load_model(spec)
        if isinstance(m, str):
            notes.append(m)
            logger.warning("predict: %s", m)
        else:
            loaded[spec.role] = m
    if not loaded:
        raise ValueError(f"no model to run: {'; '.join(notes) or 'none given'}")
    if "infection" in loaded and loaded["infection"].task == "infection" and "lung" not in loaded:
        raise ValueError(
            f"the infection model ({loaded['infection'].weights}) segments infection only and takes its lungs from "
            "the lung model: add 'lung' to the models"
        )
    out = Path(output_dir).resolve()
    items, ignored = find_inputs(inputs, exclude=out)
    if ignored:
        notes.append(f"{ignored} file(s) without an image or DICOM suffix ignored in the input folders")
    out.mkdir(parents=True, exist_ok=True)
    class_cols = [f"p_{n}" for n in loaded["classifier"].class_names] if "classifier" in loaded else []
    columns = [*CSV_COLUMNS[:6], *class_cols, *CSV_COLUMNS[6:]]
    rows, skipped = [], []
    n_read = 0
    for (path, rel), name in zip(tqdm(items, desc="predict", disable=not progress), _names(items), strict=True):
        row: dict = {c: "" for c in columns}
        row.update({"file": rel, "path": str(path), "status": "skipped", "warnings": []})
        try:
            array, meta, row["warnings"] = read_input(path)
        except (DatasetError, OSError, ValueError) as e:
            row["reason"] = str(e).removeprefix(f"{path}: ")
        else:
            n_read += 1
            row["height"], row["width"] = array.shape
            try:
                _predict_one(loaded, array, meta, row, out, name)
                row["status"] = "predicted"
            except Exception as e:  # one file never ends the batch; the log has the traceback
                logger.debug("predict: %s failed", path, exc_info=True)
                row["reason"] = f"prediction failed ({type(e).__name__}: {e})"
        if row["status"] == "skipped":
            skipped.append({"file": rel, "reason": row["reason"]})
            logger.warning("predict: skipped %s: %s", path, row["reason"])
        rows.append(row)
    csv_path = out / "predictions.csv"
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows({**r, "warnings": "; ".join(r["warnings"])} for r in rows)
    n_predicted = sum(r["status"] == "predicted" for r in rows)
    summary = {
        "generator": GENERATOR,
        "inputs": [str(p) for p in ([inputs] if isinstance(inputs, (str, os.PathLike)) else inputs)],
        "output_dir": str(out),
        "n_found": len(items),
        "n_read": n_read,
        "n_predicted": n_predicted,
        "n_skipped": len(items) - n_predicted,
        "n_flagged": sum(bool(r["warnings"]) and r["status"] == "predicted" for r in rows),
        "skipped": skipped,
        "models": {
            role: {"bundle": str(m.root), "weights": str(m.weights), "config": m.spec.config, "overlay": m.spec.overlay}
            | ({"calibration": m.calibration, "gradcam_layer": m.gradcam_layer} if role == "classifier" else {})
            for role, m in loaded.items()
        },
        "notes": notes,
        "predictions_csv": str(csv_path),
        "report_html": str(out / "report.html") if report else None,
    }
    summary["line"] = (
        f"{summary['n_found']} found, {n_read} read, {n_predicted} predicted, {summary['n_skipped']} skipped"
        + (f", {summary['n_flagged']} flagged" if summary["n_flagged"] else "")
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if report:
        from monaicxr.io.html_report import write_predict_report

        write_predict_report(out / "report.html", rows, columns, summary)
    logger.info("predict: %s (%s)", summary["line"], csv_path)
    return summary


#: the models ``predict`` runs by name; bundles are looked up as :func:`resolve_bundle` says
DEFAULT_MODELS: dict[str, ModelSpec] = {
    "lung": ModelSpec(role="lung", bundle="bundles/unet"),
    "infection": ModelSpec(
        role="infection",
        bundle="bundles/unet",
        overlay="configs/task_infection.json",
        weights="models/model_infection.pt",
        optional=True,
    ),
    "classifier": ModelSpec(role="classifier", bundle="bundles/efficientnet_lite0"),
}
