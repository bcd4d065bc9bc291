"""Overlay images: a radiograph with predicted regions filled and reference regions outlined.

Written by hand because MONAI's image writers save arrays, not annotated pictures; boundaries come from
:func:`skimage.segmentation.find_boundaries`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from skimage.segmentation import find_boundaries

__all__ = ["CLASS_COLOURS", "add_caption", "render_overlay", "save_overlay"]

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


def add_caption(rgb: np.ndarray, text: str, min_width: int = 256) -> np.ndarray:
    """Return ``rgb`` (H, W, 3 uint8) with ``text`` written on a black strip below it.

    Small images are first enlarged (nearest neighbour) to at least ``min_width`` pixels wide so the text,
    drawn with Pillow's built-in font (nothing is loaded from disk or the network), stays readable. Long text
    is wrapped onto several lines. An empty ``text`` returns ``rgb`` unchanged.
    """
    if not text:
        return rgb
    from PIL import ImageDraw, ImageFont

    img = Image.fromarray(rgb)
    if img.width < min_width:
        scale = -(-min_width // img.width)
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    font = ImageFont.load_default()
    draw = ImageDraw.Draw(img)
    chars = max(8, img.width // max(1, int(draw.textlength("M", font=font))))
    lines: list[str] = []
    for para in str(text).split("\n"):
        while len(para) > chars:
            cut = para.rfind(" ", 0, chars)
            cut = cut if cut > 0 else chars
            lines.append(para[:cut])
            para = para[cut:].lstrip()
        lines.append(para)
    box = draw.textbbox((0, 0), "Ag", font=font)
    line_h = box[3] - box[1] + 4
    out = Image.new("RGB", (img.width, img.height + line_h * len(lines) + 4))
    out.paste(img, (0, 0))
    draw = ImageDraw.Draw(out)
    for i, line in enumerate(lines):
        draw.text((3, img.height + 2 + i * line_h), line, fill=(255, 255, 255), font=font)
    return np.asarray(out)
