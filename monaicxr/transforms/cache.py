"""A smaller ``CacheDataset``: keep the deterministic transforms' output as 8-bit integers, expand it per batch.

A bundle's ``CacheDataset`` keeps what the deterministic transforms produce, float32 images in [0, 1] and float32
0/1 (or 0/1/2) labels: the COVID-QU-Ex Train split at 256² is 3,733 x 2 planes x 256² x 4 bytes = 1.96 GB.
:class:`ToCacheDtyped` stores the image as ``round(255 x)`` and the label as its integer class in ``uint8``
(a quarter of that), and :class:`FromCacheDtyped`, the first random transform, turns them back into float32.
MONAI's ``CastToTyped`` casts without scaling or rounding (it would truncate [0, 1] to 0), hence these two.

Exact for 8-bit films at their native size (the image is ``k / 255`` for an integer ``k`` before and after);
an image that was resized (area interpolation) or had more than 8 bits is rounded to the nearest 1/255, an
error of at most 0.002, the same as saving it as an 8-bit PNG. ``dtype="float32"`` stores float32 as before.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTrait

__all__ = ["CACHE_DTYPES", "FromCacheDtyped", "ToCacheDtyped"]

#: accepted ``dtype`` values
CACHE_DTYPES = ("float32", "uint8")


def _name(d: Mapping, key: Hashable) -> str:
    meta = getattr(d.get(key), "meta", None) or {}
    return str(meta.get("filename_or_obj", key))


def _check(dtype: str) -> str:
    if dtype not in CACHE_DTYPES:
        raise ValueError(f"cache dtype must be one of {', '.join(CACHE_DTYPES)}; got {dtype!r}")
    return dtype


class ToCacheDtyped(MapTransform):
    """Store images (values in [0, 1]) and integer labels in ``dtype``; the last deterministic transform.

    Args:
        keys: image keys, stored as ``round(255 x)``.
        label_keys: label keys, stored as ``label_scale x`` (a whole number in 0-255).
        label_scale: what a label is multiplied by to make it whole: 1 for 0/1 masks and class maps, 2 for the
            3-level target (0, 0.5, 1).
        dtype: ``"uint8"`` or ``"float32"`` (float32 images and labels, as MONAI's ``EnsureTyped`` would).

    Raises:
        ValueError: for an image outside [0, 1] or a label that is not a whole number in 0-255, naming the file:
            storing it in 8 bits would change it silently.
    """

    def __init__(
        self, keys: KeysCollection, label_keys: KeysCollection = (), label_scale: int = 1, dtype: str = "uint8"
    ) -> None:
        super().__init__(keys, allow_missing_keys=False)
        self.label_keys = [label_keys] if isinstance(label_keys, str) else list(label_keys)
        self.label_scale = int(label_scale)
        self.dtype = _check(dtype)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        for key in [*self.keys, *self.label_keys]:
            d[key] = torch.as_tensor(d[key]).float()
        if self.dtype == "float32":
            return d
        for key in self.keys:
            x = d[key]
            if x.numel() and (x.min() < 0 or x.max() > 1):
                raise ValueError(
                    f"{_name(d, key)}: {key!r} holds values in [{x.min():.4g}, {x.max():.4g}]; the uint8 cache "
                    "stores images in [0, 1] (scale them first, e.g. ScaleByBitDepthd)"
                )
            d[key] = torch.round(x * 255).to(torch.uint8)
        for key in self.label_keys:
            y = d[key] * self.label_scale
            if y.numel() and (y.min() < 0 or y.max() > 255 or not torch.equal(y, torch.round(y))):
                raise ValueError(
                    f"{_name(d, key)}: {key!r} times {self.label_scale} is not a whole number in 0-255; cannot "
                    "cache it as uint8 (set label_scale, or cache_dtype float32)"
                )
            d[key] = y.to(torch.uint8)
        return d


class FromCacheDtyped(MapTransform, RandomizableTrait):
    """Float32 images and labels back from :class:`ToCacheDtyped`'s storage (a no-op on float32 input).

    It draws nothing, but carries MONAI's ``RandomizableTrait`` marker: ``CacheDataset`` caches the transforms
    before the first transform so marked, so the cache ends here and holds the 8-bit items, not their float32
    expansion (without the marker MONAI would run this transform too before caching, undoing the saving).

    Args:
        keys: image keys (``uint8`` becomes ``x / 255``).
        label_keys: label keys (``uint8`` becomes float32 divided by ``label_scale``).
        label_scale: the same as :class:`ToCacheDtyped`'s.
    """

    def __init__(self, keys: KeysCollection, label_keys: KeysCollection = (), label_scale: int = 1) -> None:
        super().__init__(keys, allow_missing_keys=False)
        self.label_keys = [label_keys] if isinstance(label_keys, str) else list(label_keys)
        self.label_scale = int(label_scale)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        for key in self.keys:
            x = d[key]
            d[key] = x.float() / 255 if x.dtype == torch.uint8 else x.float()
        for key in self.label_keys:
            y = d[key]
            d[key] = y.float() / self.label_scale if y.dtype == torch.uint8 else y.float()
        return d
