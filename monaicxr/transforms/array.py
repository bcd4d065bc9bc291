"""Chest X-ray transforms on tensors: intensity by bit depth, mask checks, the 3-level label, level snapping.

Written by hand because MONAI has no notion of a radiograph's bit depth (``ScaleIntensity`` rescales by the
image's own min and max, which changes contrast image to image), no check that a mask holds only the values a
mask may hold, and no 3-level (non-lung / lung / infection) encoding.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import Transform
from monai.utils import convert_to_tensor

from monaicxr.data.errors import DatasetError

__all__ = ["ScaleByBitDepth", "BinarizeMask", "ThreeLevelLabel", "SnapToLevels", "LevelsToValues", "ExcludeIgnored"]

logger = logging.getLogger(__name__)


def _name(x) -> str:
    meta = getattr(x, "meta", None) or {}
    return str(meta.get("filename_or_obj", "<array>"))


class ScaleByBitDepth(Transform):
    """Divide by ``2**bit_depth - 1`` so that any 8-, 12- or 16-bit radiograph lands in [0, 1].

    Args:
        bit_depth: a fixed bit depth; ``None`` reads the ``bit_depth`` meta entry that
            :class:`monaicxr.io.CXRImageReader` writes (its ``bit_depth_rule`` entry says where it came from).
            An image with metadata but no ``bit_depth`` (read by another reader, e.g. a NIfTI file) is an error
            naming the file rather than a guess; a plain array without metadata is taken as 8-bit.
    """

    def __init__(self, bit_depth: int | None = None) -> None:
        self.bit_depth = bit_depth

    def __call__(self, img: NdarrayOrTensor) -> torch.Tensor:
        depth = self.bit_depth
        if depth is None:
            meta = getattr(img, "meta", None) or {}
            if meta and meta.get("bit_depth") is None:
                raise DatasetError(
                    f"{_name(img)}: no bit_depth in the image metadata (was it read with monaicxr's "
                    "CXRImageReader?); pass bit_depth=... to ScaleByBitDepth"
                )
            depth = int(meta.get("bit_depth", 8) or 8)
        t = convert_to_tensor(img, track_meta=True, dtype=torch.float32)
        return torch.clamp(t / float(2**depth - 1), 0.0, 1.0)


class BinarizeMask(Transform):
    """A 0/255 or 0/1 mask to float {0, 1}; any other value is an error naming the file.

    Args:
        allow_any: threshold at half the maximum instead of refusing other values (for masks that were
            resized with interpolation before they reached us).
    """

    def __init__(self, allow_any: bool = False) -> None:
        self.allow_any = allow_any

    def __call__(self, mask: NdarrayOrTensor) -> torch.Tensor:
        t = convert_to_tensor(mask, track_meta=True)
        values = torch.unique(t)
        if self.allow_any:
            top = float(values.max()) if values.numel() else 0.0
            return (t > top / 2).to(torch.float32) if top > 0 else torch.zeros_like(t, dtype=torch.float32)
        vals = {float(v) for v in values}
        if vals <= {0.0, 1.0}:
            return t.to(torch.float32)
        if vals <= {0.0, 255.0}:
            return (t > 0).to(torch.float32)
        odd = sorted(vals - {0.0, 255.0} if 255.0 in vals else vals - {0.0, 1.0})[:5]
        raise DatasetError(
            f"{_name(mask)}: a mask must hold only 0/255 or 0/1, found {len(vals)} values, e.g. {odd}; "
            "pass allow_any=True for masks resized with interpolation"
        )


class ThreeLevelLabel(Transform):
    """Combine {0, 1} lung and infection masks into 0 non-lung, 1 lung, 2 infection.

    Args:
        on_infection_outside_lung: ``"error"`` raises naming the file and the pixel count, ``"warn"`` logs and
            keeps those pixels as infection, ``"clip"`` logs and sets them to non-lung.
    """

    def __init__(self, on_infection_outside_lung: str = "warn") -> None:
        if on_infection_outside_lung not in ("error", "warn", "clip"):
            raise ValueError("on_infection_outside_lung must be 'error', 'warn' or 'clip'")
        self.policy = on_infection_outside_lung

    def __call__(self, lung: NdarrayOrTensor, infection: NdarrayOrTensor) -> torch.Tensor:
        lung_t = convert_to_tensor(lung, track_meta=True) > 0.5
        inf_t = convert_to_tensor(infection, track_meta=False) > 0.5
        if lung_t.shape != inf_t.shape:
            raise DatasetError(
                f"{_name(lung)}: lung mask {tuple(lung_t.shape)} and infection mask {tuple(inf_t.shape)} differ"
            )
        outside = int((inf_t & ~lung_t).sum())
        if outside:
            msg = f"{_name(infection)}: {outside} infection pixels lie outside the lung mask"
            if self.policy == "error":
                raise DatasetError(msg)
            logger.warning("%s (%s)", msg, "kept as infection" if self.policy == "warn" else "set to non-lung")
            if self.policy == "clip":
                inf_t = inf_t & lung_t
        level = lung_t.to(torch.int64) + inf_t.to(torch.int64)
        level = torch.where(inf_t, torch.full_like(level, 2), level)
        return level


class SnapToLevels(Transform):
    """Map a continuous prediction to the index of its nearest level, as the studies did for the 3-level mask.

    Args:
        levels: the level values, e.g. ``(0.0, 0.5, 1.0)`` (the studies' 0, 125 and 255 over 255 are near these).
    """

    def __init__(self, levels: Sequence[float] = (0.0, 0.5, 1.0)) -> None:
        self.levels = torch.as_tensor(sorted(float(v) for v in levels))

    def __call__(self, pred: NdarrayOrTensor) -> torch.Tensor:
        t = convert_to_tensor(pred, track_meta=True, dtype=torch.float32)
        levels = self.levels.to(t.device)
        dist = (t.unsqueeze(-1) - levels).abs()
        index = dist.argmin(-1)
        if isinstance(t, MetaTensor):
            index = MetaTensor(index, meta=t.meta)
        return index


class LevelsToValues(Transform):
    """The inverse of :class:`SnapToLevels`: level indices to level values."""

    def __init__(self, levels: Sequence[float] = (0.0, 0.5, 1.0)) -> None:
        self.levels = torch.as_tensor(sorted(float(v) for v in levels))

    def __call__(self, index: NdarrayOrTensor) -> torch.Tensor:
        t = convert_to_tensor(index, track_meta=True).long()
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= len(self.levels)):
            raise ValueError(f"{_name(index)}: level indices must lie in 0..{len(self.levels) - 1}")
        return self.levels.to(t.device)[t]


class ExcludeIgnored(Transform):
    """Set the pixels of an "ignore" mask to background, so foreground metrics leave them out.

    The polygon indexers keep annotators' "Ignore" regions (devices over the lungs) as a separate mask.
    Applied to both the prediction and the reference before MONAI's metrics, ignored pixels add nothing to
    the intersection, the prediction or the reference, so Dice, IoU, precision and recall are computed on the
    other pixels only (true negatives grow, which those metrics do not use). Written by hand because MONAI's
    metrics take no mask. One-hot inputs: ignored pixels become channel 0 (background).
    """

    def __call__(self, img: NdarrayOrTensor, ignore: NdarrayOrTensor) -> torch.Tensor:
        t = convert_to_tensor(img, track_meta=True)
        mask = convert_to_tensor(ignore, track_meta=False).to(t.device) > 0.5
        if mask.shape[-2:] != t.shape[-2:]:
            raise ValueError(f"{_name(img)}: ignore mask {tuple(mask.shape)} does not match {tuple(t.shape)}")
        mask = mask.reshape((1,) * (t.ndim - mask.ndim) + tuple(mask.shape)) if mask.ndim < t.ndim else mask[:1]
        out = t.masked_fill(mask.expand_as(t), 0)
        if t.ndim == 3 and t.shape[0] > 1:  # one-hot: ignored pixels are background
            out[:1] = out[:1].masked_fill(mask, 1)
        return out
