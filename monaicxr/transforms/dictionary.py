"""Dictionary twins of :mod:`monaicxr.transforms.array`; each wraps one inner array transform."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from .array import BinarizeMask, ExcludeIgnored, LevelsToValues, ScaleByBitDepth, SnapToLevels, ThreeLevelLabel

__all__ = [
    "ExcludeIgnoredd",
    "ScaleByBitDepthd",
    "BinarizeMaskd",
    "ThreeLevelLabeld",
    "SnapToLevelsd",
    "LevelsToValuesd",
]


class _Wrap(MapTransform):
    inner: object

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.inner(d[key])
        return d


class ScaleByBitDepthd(_Wrap):
    """Dictionary twin of :class:`ScaleByBitDepth`."""

    def __init__(self, keys: KeysCollection, bit_depth: int | None = None, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.inner = ScaleByBitDepth(bit_depth)


class BinarizeMaskd(_Wrap):
    """Dictionary twin of :class:`BinarizeMask`."""

    def __init__(self, keys: KeysCollection, allow_any: bool = False, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.inner = BinarizeMask(allow_any)


class SnapToLevelsd(_Wrap):
    """Dictionary twin of :class:`SnapToLevels`."""

    def __init__(
        self, keys: KeysCollection, levels: Sequence[float] = (0.0, 0.5, 1.0), allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.inner = SnapToLevels(levels)


class LevelsToValuesd(_Wrap):
    """Dictionary twin of :class:`LevelsToValues`."""

    def __init__(
        self, keys: KeysCollection, levels: Sequence[float] = (0.0, 0.5, 1.0), allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.inner = LevelsToValues(levels)


class ThreeLevelLabeld(MapTransform):
    """Dictionary twin of :class:`ThreeLevelLabel`: ``output_key`` = 3-level map of ``lung_key`` and ``infection_key``."""

    def __init__(
        self,
        lung_key: str = "lung",
        infection_key: str = "infection",
        output_key: str = "level",
        on_infection_outside_lung: str = "warn",
    ) -> None:
        super().__init__([lung_key, infection_key])
        self.lung_key, self.infection_key, self.output_key = lung_key, infection_key, output_key
        self.inner = ThreeLevelLabel(on_infection_outside_lung)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        d[self.output_key] = self.inner(d[self.lung_key], d[self.infection_key])
        return d


class ExcludeIgnoredd(MapTransform):
    """Dictionary twin of :class:`ExcludeIgnored`: zero ``ignore_key``'s pixels in every key (e.g. pred and label).

    Items without ``ignore_key`` (images with nothing to ignore) pass unchanged.
    """

    def __init__(self, keys: KeysCollection, ignore_key: str = "ignore", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.ignore_key = ignore_key
        self.inner = ExcludeIgnored()

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        if d.get(self.ignore_key) is None:
            return d
        for key in self.key_iterator(d):
            d[key] = self.inner(d[key], d[self.ignore_key])
        return d
