"""Write segmentation predictions as PNG masks and overlays beside their source image names.

MONAI's ``SaveImaged`` writes arrays through ITK / PIL writers that transpose 2D images (MONAI's spatial
indexing) and know nothing of the 0 / 125 / 255 encoding of the studies' 3-level masks; this writer keeps
the (H, W) order of :class:`monaicxr.io.CXRImageReader` and draws the overlay on the original radiograph.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping
from pathlib import Path

import numpy as np
import torch
from monai.transforms import MapTransform
from PIL import Image

from .overlay import add_caption, render_overlay
from .reader import read_cxr

__all__ = ["SavePredictiond"]

logger = logging.getLogger(__name__)


class SavePredictiond(MapTransform):
    """Save ``<stem>_mask.png`` and ``<stem>_overlay.png`` for each item into ``output_dir``.

    Args:
        keys: the prediction key; a ``(1, H, W)`` map of {0, 1} (binary) or of level indices {0, 1, 2}.
        output_dir: destination folder (created).
        image_key: key whose ``filename_or_obj`` meta names the source file (re-read for the overlay).
        foreground_value: the label value a binary 1 stands for (1 lung, 2 infection), for the overlay.
        levels: for 3-level predictions, the grey value written for each index (the studies' 0, 125, 255).
        three_level: ``True`` if the prediction is always a level-index map (a 3-level model), ``False`` if it is
            always binary; ``None`` guesses from the values, which takes a 3-level map without any infection
            pixel (a normal radiograph) for a binary one and writes its lung as 255, the infection level.
        caption_key: optional key of a per-image caption for the overlay: a severity row of
            :class:`monaicxr.transforms.Severityd` or a string (see :func:`monaicxr.io.overlay.add_caption`).
    """

    def __init__(
        self,
        keys="pred",
        output_dir: str = "predictions",
        image_key: str = "image",
        foreground_value: int = 1,
        levels: tuple[int, ...] = (0, 125, 255),
        overlay: bool = True,
        three_level: bool | None = None,
        caption_key: str | None = None,
    ) -> None:
        super().__init__(keys)
        self.output_dir = Path(output_dir)
        self.image_key = image_key
        self.foreground_value = foreground_value
        self.levels = np.asarray(levels, dtype=np.uint8)
        self.overlay = overlay
        self.three_level = three_level
        self.caption_key = caption_key

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        source = Path(str(d[self.image_key].meta["filename_or_obj"]))
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for key in self.key_iterator(d):
            pred = torch.as_tensor(d[key]).detach().cpu()
            if pred.ndim == 3 and pred.shape[0] > 1:
                pred = pred.argmax(0)
            label = np.rint(pred.squeeze().numpy()).astype(np.int64)
            if self.three_level is None:
                binary = label.max() <= 1 and self.foreground_value != 0 and len(np.unique(label)) <= 2
            else:
                binary = not self.three_level
            grey = (label * 255).astype(np.uint8) if binary else self.levels[np.clip(label, 0, len(self.levels) - 1)]
            Image.fromarray(grey).save(self.output_dir / f"{source.stem}_mask.png")
            if self.overlay:
                image, _ = read_cxr(source)
                if image.shape != label.shape:
                    raise ValueError(
                        f"{source}: prediction {label.shape} does not match the image {image.shape}; "
                        "invert the resize (monai.transforms.Invertd) before saving"
                    )
                shown = label * self.foreground_value if binary else label
                rgb = render_overlay(image, shown)
                caption = d.get(self.caption_key) if self.caption_key else None
                if caption:
                    from monaicxr.metrics.severity import format_severity

                    rgb = add_caption(rgb, format_severity(caption) if isinstance(caption, dict) else str(caption))
                Image.fromarray(rgb).save(self.output_dir / f"{source.stem}_overlay.png")
        return d
