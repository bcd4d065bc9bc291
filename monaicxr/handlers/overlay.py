"""Ignite handler that writes prediction overlays (PNG and TensorBoard) after each evaluation."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from monai.utils import IgniteInfo, min_version, optional_import

from monaicxr.io.overlay import add_caption, render_overlay
from monaicxr.metrics.severity import format_severity

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")

__all__ = ["OverlaySaver"]

logger = logging.getLogger(__name__)


class OverlaySaver:
    """Save overlays of the first ``max_images`` items an evaluator sees in each run.

    The label maps are read from ``engine.state.output`` (MONAI's decollated post-processed items). A binary
    map is multiplied by ``foreground_value`` so that an infection-only task is drawn in the infection colour.

    Args:
        output_dir: folder for ``epoch_XXX/<image name>.png`` (or ``<image name>.png`` with ``per_epoch=False``).
        max_images: how many items per run to draw.
        image_key, pred_key, label_key: keys of the image, the predicted label map and the reference label map.
        foreground_value: value a binary map's 1 stands for (1 lung, 2 infection); 3-level maps use 1.
        summary_writer: an optional ``torch.utils.tensorboard.SummaryWriter`` to log the overlays as images.
        per_epoch: write into one sub-folder per trainer epoch (validation during training).
        tag: TensorBoard tag.
        caption_key: optional key (or keys, one line each, labelled by key) of a per-image caption: a severity row of
            :class:`monaicxr.transforms.Severityd` (formatted with
            :func:`monaicxr.metrics.severity.format_severity`) or a string; written on a strip below the overlay.
            Captioned overlays are enlarged to at least 256 pixels wide, so TensorBoard gets them uncaptioned.
    """

    def __init__(
        self,
        output_dir: str,
        max_images: int = 8,
        image_key: str = "image",
        pred_key: str = "pred",
        label_key: str | None = "label",
        foreground_value: int = 1,
        summary_writer=None,
        per_epoch: bool = True,
        tag: str = "val_overlay",
        caption_key: str | Sequence[str] | None = None,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.max_images = max_images
        self.image_key, self.pred_key, self.label_key = image_key, pred_key, label_key
        self.foreground_value = foreground_value
        self.summary_writer = summary_writer
        self.per_epoch = per_epoch
        self.tag = tag
        self.caption_key = caption_key
        self._items: list[tuple[str, np.ndarray]] = []
        self._captions: list[str] = []

    def attach(self, engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._write)

    def _reset(self, engine) -> None:
        self._items = []
        self._captions = []

    def _collect(self, engine) -> None:
        output = engine.state.output
        items = output if isinstance(output, list) else [output]
        for item in items:
            if len(self._items) >= self.max_images:
                return
            image = item[self.image_key]
            pred = self._label_map(item[self.pred_key])
            truth = self._label_map(item[self.label_key]) if self.label_key and self.label_key in item else None
            name = Path(str(getattr(image, "meta", {}).get("filename_or_obj", f"item_{len(self._items)}"))).stem
            self._items.append((name, render_overlay(image, pred, truth)))
            self._captions.append(self._caption(item))

    def _caption(self, item) -> str:
        keys = (
            []
            if not self.caption_key
            else [self.caption_key]
            if isinstance(self.caption_key, str)
            else self.caption_key
        )
        lines = []
        for key in keys:
            value = item.get(key)
            text = format_severity(value) if isinstance(value, dict) else str(value or "")
            if text:
                lines.append(f"{key}: {text}" if len(keys) > 1 else text)
        return "\n".join(lines)

    def _label_map(self, x) -> np.ndarray:
        arr = x.detach().cpu() if isinstance(x, torch.Tensor) else torch.as_tensor(x)
        if arr.ndim == 3 and arr.shape[0] > 1:  # one-hot -> label map
            arr = arr.argmax(0)
        arr = arr.squeeze().numpy()
        if arr.max() <= 1:
            arr = arr * self.foreground_value
        return arr

    def _write(self, engine) -> None:
        if not self._items:
            return
        folder = self.output_dir / f"epoch_{engine.state.epoch:03d}" if self.per_epoch else self.output_dir
        folder.mkdir(parents=True, exist_ok=True)
        from PIL import Image

        for (name, rgb), caption in zip(self._items, self._captions, strict=True):
            Image.fromarray(add_caption(rgb, caption)).save(folder / f"{name}.png")
        if self.summary_writer is not None:
            grid = np.stack([rgb for _, rgb in self._items]).transpose(0, 3, 1, 2)
            self.summary_writer.add_images(self.tag, grid, engine.state.epoch, dataformats="NCHW")
            self.summary_writer.flush()
        logger.info("overlays of %d images written to %s", len(self._items), folder)
