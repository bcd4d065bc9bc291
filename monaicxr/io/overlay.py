"""Overlay images: a radiograph with predicted regions filled and reference regions outlined.

Written by hand because MONAI's image writers save arrays, not annotated pictures; boundaries come from
:func:`skimage.segmentation.find_boundaries`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from skimage.segmentation import find_boundaries

__all__ = ["CLASS_COLOURS", "render_overlay", "save_overlay"]

# label value -> RGB. 1: lung (blue), 2: infection (red). Reference outlines use the lighter tone.
CLASS_COLOURS: dict[int, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    1: ((30, 120, 255), (120, 255, 120)),
    2: ((255, 40, 20), (255, 230, 0)),
}


def _to_2d(x) -> np.ndarray:
    arr = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x)
    arr = np.squeeze(arr)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2D image or label map, got shape {arr.shape}")
    return arr


def render_overlay(image, pred=None, truth=None, alpha: float = 0.35) -> np.ndarray:
    """Render an RGB uint8 overlay.

    Args:
        image: 2D (or 1xHxW) intensities; rescaled to [0, 255] by its own min and max.
        pred: optional label map (0 background, 1 lung, 2 infection), drawn as translucent fill
            (lung blue, infection red).
        truth: optional reference label map with the same values, drawn as outlines (lung green, infection yellow).
        alpha: opacity of the prediction fill.

    Returns:
        An ``(H, W, 3)`` uint8 array.
    """
    img = _to_2d(image).astype(np.float32)
    lo, hi = float(img.min()), float(img.max())
    grey = (img - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(img)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    if pred is not None:
        p = np.rint(_to_2d(pred)).astype(np.int64)
        for value, (fill, _) in CLASS_COLOURS.items():
            sel = p == value
            rgb[sel] = (1 - alpha) * rgb[sel] + alpha * np.asarray(fill, dtype=np.float32)
    if truth is not None:
        t = np.rint(_to_2d(truth)).astype(np.int64)
        for value, (_, outline) in CLASS_COLOURS.items():
            edge = find_boundaries(t == value, mode="inner")
            rgb[edge] = outline
    return np.clip(rgb, 0, 255).astype(np.uint8)


def save_overlay(path: str | Path, image, pred=None, truth=None, alpha: float = 0.35) -> Path:
    """Render with :func:`render_overlay` and write a PNG; parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(render_overlay(image, pred, truth, alpha)).save(path)
    return path
