"""MONAI Label infer task over a monaicxr bundle's ``configs/inference.json``.

MONAI Label's own ``BundleInferTask`` cannot be used here: it imports ``monailabel.transform.post``, which
needs torchvision, and no torchvision build imports beside the CPU torch 2.13.0 this project pins. This task
is a ``BasicInferTask`` (the base class MONAI Label's sample apps use) whose pieces all come from the bundle:

- network: ``network_def``; weights: the newest of the app's fine-tuned checkpoint and the bundle's
  ``models/model.pt`` (MONAI Label reloads a checkpoint whose modification time changed, so a finished
  training run is picked up by the next request);
- pre-transforms: the bundle's ``preprocessing`` (``LoadImaged`` with :class:`monaicxr.io.CXRImageReader`, so
  DICOM is rendered with its photometry: MONOCHROME1 inverted, VOI window applied; JPEG 2000 decoded);
- post-transforms: the bundle's ``postprocessing`` without its file writer (sigmoid, inverse resize to the
  image's own size, threshold, largest-lungs clean-up, 3-level snapping and severity); a classifier's logits
  are divided by the temperature in the weights card of the checkpoint in use (:mod:`monaicxr.io.weights_card`),
  and a card's input settings are checked against the config before each request.

The result mask is a PNG of the image's size (values as in :mod:`monaicxr.label.models`); a classifier
returns ``{"prediction": [{"idx", "label", "score"}, ...]}``. A file that is not a readable image raises
:class:`InferInputError` (HTTP 415 from :mod:`monaicxr.label.server`); a model without weights raises
:class:`ModelNotReadyError` (HTTP 409).
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.bundle import ConfigParser
from monailabel.interfaces.tasks.infer_v2 import InferType
from monailabel.tasks.infer.basic_infer import BasicInferTask

from monaicxr.data.errors import DatasetError
from monaicxr.io import read_cxr
from monaicxr.io.weights_card import card_temperature, check_input

from .models import CLASSIFICATION, ServedModel, bundle_labels

__all__ = ["CXRBundleInferTask", "InferInputError", "ModelNotReadyError", "checkpoint_paths"]

logger = logging.getLogger(__name__)

_WRITER_TARGETS = ("SavePredictiond",)  # the bundle's own file writers; MONAI Label writes the result


class InferInputError(ValueError):
    """The uploaded or stored file is not an image this app can read; the message says why."""


class ModelNotReadyError(RuntimeError):
    """The model has no weights yet (neither shipped nor fine-tuned)."""


def checkpoint_paths(model: ServedModel, bundle_dir: Path, model_dir: Path, start: bool = False) -> list[str]:
    """Candidate weights in MONAI Label's order (the last existing one is used).

    The bundle's shipped ``model.pt`` (where it was trained for this task, or, with ``start=True``, as a
    starting point for training), then the app's fine-tuned one.
    """
    shipped = [str(bundle_dir / "models" / "model.pt")] if model.shipped_weights or start else []
    return shipped + [str(model_dir / model.name / "models" / "model.pt")]


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (torch.Tensor, np.ndarray, np.generic)):
        arr = np.asarray(value)
        return arr.item() if arr.size == 1 else arr.tolist()
    return value


def _series_file(path: str) -> str:
    """A DICOMweb series fetched without NIfTI conversion is a folder: a radiograph is its one instance."""
    if not os.path.isdir(path):
        return path
    files = sorted(f for f in Path(path).iterdir() if f.is_file())
    if not files:
        raise InferInputError(f"{path}: the series folder holds no file")
    return str(files[0])


class CXRBundleInferTask(BasicInferTask):
    """Inference with one :class:`~monaicxr.label.models.ServedModel`.

    Args:
        model: the served model record.
        bundle_dir: the bundle folder (holding ``configs/`` and ``models/``).
        model_dir: where this app keeps fine-tuned checkpoints (``<model_dir>/<name>/models/model.pt``).

    Example::

        task = CXRBundleInferTask(SERVED_MODELS[0], Path("bundles/unet"), Path("/tmp/models"))
        label_png, result = task({"image": "chest.png", "device": "cpu"})
    """

    def __init__(self, model: ServedModel, bundle_dir: Path, model_dir: Path) -> None:
        self.model = model
        self.bundle_dir = Path(bundle_dir)
        configs = self.bundle_dir / "configs"
        parser = ConfigParser()
        parser.read_meta(str(configs / "metadata.json"))
        parser.read_config(str(configs / "inference.json"))
        parser.update({"bundle_root": str(self.bundle_dir), **model.infer_overrides})
        transforms = parser.get("postprocessing#transforms")
        parser.set(
            [t for t in transforms if not str(t.get("_target_", "")).endswith(_WRITER_TARGETS)],
            "postprocessing#transforms",
        )
        self._parser = parser
        self._post, self._temperature = None, None
        network = parser.get_parsed_content("network_def")
        classification = model.kind == CLASSIFICATION
        super().__init__(
            path=checkpoint_paths(model, self.bundle_dir, Path(model_dir)),
            network=network,
            type=InferType.CLASSIFICATION if classification else InferType.SEGMENTATION,
            labels=bundle_labels(model, self.bundle_dir),
            dimension=2,
            description=model.description or parser.get("_meta_#task", model.name),
        )

    def is_valid(self) -> bool:
        """Listed even without weights: a request then gets an error that says to train the model first."""
        return True

    def info(self) -> dict[str, Any]:
        i = super().info()
        i["bundle"] = self.model.bundle
        i["weights"] = self.get_path() or "none yet: train this model first (POST /train/" + self.model.name + ")"
        return i

    def pre_transforms(self, data=None) -> list:
        if data is not None and isinstance(data.get("image"), str):
            data["image"] = _series_file(data["image"])
        return list(self._parser.get_parsed_content("preprocessing").transforms)

    def post_transforms(self, data=None) -> list:
        if "temperature" in self._parser:
            # the temperature of the weights in use (a fine-tuned checkpoint has no card: uncalibrated, 1.0)
            weights = self.get_path()
            temperature = card_temperature(weights) if weights else None
            if temperature != self._temperature or self._post is None:
                self._parser["temperature"] = temperature or 1.0
                self._post = self._parser.get_parsed_content("postprocessing", lazy=False)
                self._temperature = temperature
            return list(self._post.transforms)
        return list(self._parser.get_parsed_content("postprocessing").transforms)

    def __call__(self, request, callbacks=None):
        if not self.get_path():
            raise ModelNotReadyError(
                f"model {self.model.name!r} has no weights yet (none of {self.path} exists); "
                f"train it first (POST /train/{self.model.name})"
            )
        if "input_card" in self._parser:  # lung-cropped weights: the config must feed them what they learnt on
            check_input(self.get_path(), **self._parser.get_parsed_content("input_card"))
        return super().__call__(request, callbacks)

    def run_pre_transforms(self, data: dict[str, Any], transforms):
        try:
            return super().run_pre_transforms(data, transforms)
        except Exception as e:
            # MONAI's LoadImage falls back to its other readers and reports only the last one's failure: read
            # the file again with the CXR reader alone for the reason that names the file and what was expected
            path = data.get("image")
            if isinstance(path, str):
                try:
                    read_cxr(path)
                except (DatasetError, FileNotFoundError) as reason:
                    raise InferInputError(str(reason)) from e
            raise

    def writer(self, data: dict[str, Any], extension=None, dtype=None):
        if self.type == InferType.CLASSIFICATION:
            return super().writer(data)
        data = copy.copy(data)
        severity = data.get("severity")
        if severity is not None:
            data[self.output_json_key] = {**data.get(self.output_json_key, {}), "severity": _json_safe(severity)}
        pred = np.asarray(torch.as_tensor(data[self.output_label_key]).detach().cpu())[0]  # (H, W), row-major
        # MONAI Label's Writer holds 2D images in (W, H) order (MONAI's ITK / PIL readers) and transposes before
        # ITK writes them; hand it (W, H) so that the PNG has the image's own rows and columns.
        data[self.output_label_key] = np.ascontiguousarray(pred.T)
        return super().writer(data, extension=".png", dtype="uint8")
