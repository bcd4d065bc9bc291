"""Ignite handler that writes the full classification report after each evaluation run."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.transforms import Activations
from monai.utils import IgniteInfo, convert_to_tensor, min_version, optional_import

from monaicxr.io.reports import write_classification_outputs
from monaicxr.metrics.classification import classification_report

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")

__all__ = ["ClassificationReportHandler"]

logger = logging.getLogger(__name__)


class ClassificationReportHandler:
    """Collect probabilities and labels over an evaluation epoch, then write every classification output.

    Reads ``engine.state.output`` as MONAI's decollated list of dicts (one per image) and on
    ``EPOCH_COMPLETED`` calls :func:`monaicxr.io.reports.write_classification_outputs` (report JSON / text,
    confusion matrix CSV / PNG, ROC curves, reliability diagram, ``predictions.csv``, gallery). The last report
    and the paths written stay available as ``handler.report`` and ``handler.written``.

    Single process only: under DDP each rank would see only its own shard, so attach it on rank 0 to an
    evaluator that sees the whole validation set (a warning is logged when ``torch.distributed`` runs with more
    than one process).

    Args:
        output_dir: folder for the outputs, overwritten by each evaluation run.
        class_names: one name per class, in the order of the prediction channels (two for a single sigmoid).
        pred_key: key of the prediction: per item (C,) logits or probabilities, or (1,) for a binary sigmoid.
        label_key: key of the label: an integer (any shape with one element) or a one-hot vector.
        image_key: key of the image, used for its ``filename_or_obj`` and for the gallery.
        summary_writer: optional ``torch.utils.tensorboard.SummaryWriter`` for the confusion matrix figure and the
            scalar metrics.
        save_images: keep up to ``max_gallery`` correct and ``max_gallery`` incorrect images for ``gallery.png``.
        max_gallery: see ``save_images``.
        activation: ``"softmax"`` or ``"sigmoid"`` when ``pred`` holds logits (applied with MONAI's
            ``Activations``; the logits also go to ``predictions.csv``, as a single ``logit_<class_names[1]>``
            column for a single sigmoid output), ``None`` when it holds probabilities.
        step_transform: maps the engine to the TensorBoard step; the engine's epoch when omitted (pass
            ``lambda _: trainer.state.epoch`` for validation during training).
        temperature: divide the logits by this before the activation (temperature scaling, as stored in the
            weights card: :func:`monaicxr.io.weights_card.card_temperature`); the report then also gives the
            uncalibrated ECE (``ece_uncalibrated``) beside the calibrated ``ece``. ``None``: uncalibrated.

    Example::

        ClassificationReportHandler("runs/eval", ["normal", "pneumonia", "covid"], activation="softmax").attach(evaluator)
    """

    def __init__(
        self,
        output_dir: str | Path,
        class_names: Sequence[str],
        pred_key: str = "pred",
        label_key: str = "label",
        image_key: str = "image",
        summary_writer: Any = None,
        save_images: bool = True,
        max_gallery: int = 8,
        activation: str | None = "softmax",
        step_transform: Callable[[Any], int] | None = None,
        temperature: float | None = None,
    ) -> None:
        if activation not in ("softmax", "sigmoid", None):
            raise ValueError(f"activation must be 'softmax', 'sigmoid' or None, got {activation!r}.")
        if temperature is not None and not (activation and float(temperature) > 0):
            raise ValueError(f"temperature needs logits (an activation) and must be > 0, got {temperature!r}.")
        self.temperature = None if temperature is None else float(temperature)
        self.output_dir = Path(output_dir)
        self.class_names = [str(c) for c in class_names]
        self.pred_key, self.label_key, self.image_key = pred_key, label_key, image_key
        self.summary_writer = summary_writer
        self.save_images = save_images
        self.max_gallery = max_gallery
        self.activation = activation
        self._act = Activations(softmax=activation == "softmax", sigmoid=activation == "sigmoid")
        self.step_transform = step_transform
        self.report: dict[str, Any] | None = None
        self.written: dict[str, Path] = {}
        self._reset(None)

    def attach(self, engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._write)

    def _reset(self, engine) -> None:
        self._probs: list[torch.Tensor] = []
        self._raw_probs: list[torch.Tensor] = []
        self._logits: list[torch.Tensor] = []
        self._labels: list[int] = []
        self._paths: list[str] = []
        self._images: list[np.ndarray | None] = []
        self._kept = {True: 0, False: 0}

    def _collect(self, engine) -> None:
        output = engine.state.output
        for item in output if isinstance(output, list) else [output]:
            pred = convert_to_tensor(item[self.pred_key], track_meta=False).detach().cpu().float().reshape(-1)
            prob = convert_to_tensor(self._act(pred), track_meta=False).reshape(-1) if self.activation else pred
            if self.temperature is not None:
                self._raw_probs.append(prob)
                prob = convert_to_tensor(self._act(pred / self.temperature), track_meta=False).reshape(-1)
            label = convert_to_tensor(item[self.label_key], track_meta=False).detach().cpu().reshape(-1)
            label = int(label.argmax()) if label.numel() > 1 else int(label.item())
            self._probs.append(prob)
            if self.activation:
                self._logits.append(pred)
            self._labels.append(label)
            image = item.get(self.image_key)
            meta = getattr(image, "meta", None) or item.get(f"{self.image_key}_meta_dict") or {}
            self._paths.append(str(meta.get("filename_or_obj", f"sample_{len(self._paths)}")))
            self._images.append(self._keep_image(image, prob, label))

    def _keep_image(self, image, prob: torch.Tensor, label: int) -> np.ndarray | None:
        if not self.save_images or image is None:
            return None
        predicted = int(prob.argmax()) if prob.numel() > 1 else int(prob.item() > 0.5)
        correct = predicted == label
        if self._kept[correct] >= self.max_gallery:
            return None
        self._kept[correct] += 1
        a = convert_to_tensor(image, track_meta=False).detach().cpu().float()
        return (a[0] if a.ndim == 3 else a).numpy().copy()

    def _write(self, engine) -> None:
        if not self._probs:
            logger.warning("ClassificationReportHandler: no predictions collected, nothing written")
            return
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            if torch.distributed.get_world_size() > 1:
                logger.warning("ClassificationReportHandler sees only this rank's samples; run it single-process")
        probs = torch.stack(self._probs)
        labels = torch.tensor(self._labels)
        self.report = classification_report(probs, labels, self.class_names)
        if self.temperature is not None:
            raw = classification_report(torch.stack(self._raw_probs), labels, self.class_names)
            self.report["temperature"] = self.temperature
            self.report["ece_uncalibrated"] = raw["ece"]
        step = self.step_transform(engine) if self.step_transform else engine.state.epoch
        self.written = write_classification_outputs(
            self.output_dir,
            probs,
            labels,
            self.class_names,
            image_paths=self._paths,
            logits=torch.stack(self._logits) if self._logits else None,
            images=self._images if self.save_images else None,
            summary_writer=self.summary_writer,
            step=step,
            max_gallery=self.max_gallery,
            report=self.report,
        )
        r = self.report
        logger.info(
            "classification: accuracy %.4f, macro F1 %.4f, macro AUC %s, ECE %.4f%s -> %s",
            r["accuracy"],
            r["macro_avg"]["f1"],
            "n/a" if r["macro_avg"]["roc_auc"] is None else f"{r['macro_avg']['roc_auc']:.4f}",
            r["ece"],
            ""
            if self.temperature is None
            else f" (temperature {self.temperature:.4g}; uncalibrated {r['ece_uncalibrated']:.4f})",
            self.output_dir,
        )
