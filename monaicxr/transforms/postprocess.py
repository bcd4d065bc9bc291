"""Post-processing of predicted lung / infection masks and the per-lung severity, for every segmentation bundle.

Unlike :mod:`.array` / :mod:`.dictionary`, this module holds both the array transforms and their ``...d``
twins (each twin wraps one inner instance), so a bundle's post-processing lives in one place. The connected
components and hole filling are MONAI's (``KeepLargestConnectedComponent(num_components=...)`` and
``FillHoles``); the code here only checks the input is a binary (1, H, W) mask, works on a copy (both MONAI
transforms write into their input in monai 1.6) and adds the lung-specific defaults. Every transform refuses a
mask with values outside {0, 1} with an error naming the file (``filename_or_obj`` meta entry).

Example (an inference config's postprocessing, after ``AsDiscreted(threshold=0.5)``)::

    Compose([
        KeepLargestLungsd(keys="lung"),
        FillLungHolesd(keys="lung"),
        RestrictToLungsd(keys="infection", lung_key="lung"),
        Severityd(lung_key="lung", infection_key="infection", output_key="severity"),
    ])
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping, Sequence

import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms import FillHoles, KeepLargestConnectedComponent, MapTransform, Transform
from monai.utils import convert_to_tensor

from monaicxr.data.errors import DatasetError
from monaicxr.metrics.severity import infection_fraction, severity_grade

__all__ = [
    "KeepLargestLungs",
    "KeepLargestLungsd",
    "FillLungHoles",
    "FillLungHolesd",
    "RestrictToLungs",
    "RestrictToLungsd",
    "Severityd",
    "LevelMasks",
    "LevelMasksd",
]

logger = logging.getLogger(__name__)


def _name(x) -> str:
    meta = getattr(x, "meta", None) or {}
    return str(meta.get("filename_or_obj", "<array>"))


def _binary_mask(x: NdarrayOrTensor, what: str = "mask") -> torch.Tensor:
    """A copy of ``x`` as a tensor (meta kept); refuses shapes other than (1, H, W) and values outside {0, 1}."""
    t = convert_to_tensor(x, track_meta=True)
    if t.ndim != 3 or t.shape[0] != 1:
        raise DatasetError(f"{_name(x)}: the {what} must be channel-first (1, H, W), got shape {tuple(t.shape)}")
    if t.dtype != torch.bool:
        odd = [v for v in torch.unique(t).tolist() if v not in (0, 1)]
        if odd:
            raise DatasetError(
                f"{_name(x)}: the {what} must hold only 0 and 1, found {len(odd)} other values, e.g. {odd[:5]}; "
                "binarize it first (BinarizeMask or AsDiscrete(threshold=0.5))"
            )
    return t.clone()


class KeepLargestLungs(Transform):
    """Keep the ``num_components`` largest connected components of a binary (1, H, W) lung mask.

    Thin over MONAI's ``KeepLargestConnectedComponent``; removes specks and false islands outside the lungs.

    Args:
        num_components: components to keep (2: the two lungs).
        connectivity: 1 for 4-connectivity, 2 (default, ``None``) for 8-connectivity.
    """

    def __init__(self, num_components: int = 2, connectivity: int | None = None) -> None:
        if num_components < 1:
            raise ValueError(f"num_components must be at least 1, got {num_components}")
        self.inner = KeepLargestConnectedComponent(
            applied_labels=[1], is_onehot=False, connectivity=connectivity, num_components=num_components
        )

    def __call__(self, mask: NdarrayOrTensor) -> torch.Tensor:
        return self.inner(_binary_mask(mask, "lung mask"))


class FillLungHoles(Transform):
    """Fill the holes of a binary (1, H, W) mask (MONAI's ``FillHoles``): enclosed background becomes foreground.

    Args:
        connectivity: as in ``FillHoles`` (``None``: full connectivity).
    """

    def __init__(self, connectivity: int | None = None) -> None:
        self.inner = FillHoles(applied_labels=[1], connectivity=connectivity)

    def __call__(self, mask: NdarrayOrTensor) -> torch.Tensor:
        return self.inner(_binary_mask(mask, "mask"))


class RestrictToLungs(Transform):
    """Infection := infection AND lung, both binary (1, H, W) masks; the clipped pixel count is logged (debug)."""

    def __call__(self, infection: NdarrayOrTensor, lung: NdarrayOrTensor) -> torch.Tensor:
        inf_t = _binary_mask(infection, "infection mask")
        lung_t = _binary_mask(lung, "lung mask").to(inf_t.device)
        if lung_t.shape != inf_t.shape:
            raise DatasetError(
                f"{_name(infection)}: infection mask {tuple(inf_t.shape)} and lung mask {tuple(lung_t.shape)} differ"
            )
        outside = (inf_t != 0) & (lung_t == 0)
        n = int(outside.sum())
        if n:
            logger.debug("%s: %d infection pixels outside the lung set to 0", _name(infection), n)
        return inf_t.masked_fill(outside, 0)


class KeepLargestLungsd(MapTransform):
    """Dictionary twin of :class:`KeepLargestLungs`."""

    def __init__(
        self,
        keys: KeysCollection,
        num_components: int = 2,
        connectivity: int | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.inner = KeepLargestLungs(num_components, connectivity)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.inner(d[key])
        return d


class FillLungHolesd(MapTransform):
    """Dictionary twin of :class:`FillLungHoles`."""

    def __init__(self, keys: KeysCollection, connectivity: int | None = None, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.inner = FillLungHoles(connectivity)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.inner(d[key])
        return d


class RestrictToLungsd(MapTransform):
    """Dictionary twin of :class:`RestrictToLungs`: each key in ``keys`` is clipped to ``lung_key``."""

    def __init__(
        self, keys: KeysCollection = "infection", lung_key: str = "lung", allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.lung_key = lung_key
        self.inner = RestrictToLungs()

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.inner(d[key], d[self.lung_key])
        return d


class Severityd(MapTransform):
    """Write :func:`monaicxr.metrics.severity.infection_fraction` plus a grade per side into ``output_key``.

    The value is a flat dict (``right_fraction``, ``left_fraction``, ``total_fraction``, their ``..._reason``,
    pixel counts, and ``right_grade``, ``left_grade``, ``total_grade``), with ``None`` where a lung is missing,
    ready to be one CSV row. Run it on single items (post-processing after decollation): ``None`` values do not
    collate into a batch.

    Args:
        lung_key: binary lung mask, (1, H, W).
        infection_key: binary infection mask, (1, H, W).
        output_key: where the dict goes.
        thresholds: grade bounds for :func:`monaicxr.metrics.severity.severity_grade` (a configurable convention).
    """

    def __init__(
        self,
        lung_key: str = "lung",
        infection_key: str = "infection",
        output_key: str = "severity",
        thresholds: Sequence[float] = (0.0, 0.25, 0.5, 0.75),
    ) -> None:
        super().__init__([lung_key, infection_key])
        self.lung_key, self.infection_key, self.output_key = lung_key, infection_key, output_key
        self.thresholds = tuple(float(v) for v in thresholds)
        severity_grade(None, self.thresholds)  # validate the thresholds now, not on the first image

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        result = infection_fraction(d[self.lung_key], d[self.infection_key])
        for side in ("right", "left", "total"):
            result[f"{side}_grade"] = severity_grade(result[f"{side}_fraction"], self.thresholds)
        d[self.output_key] = result
        return d


class LevelMasks(Transform):
    """Split a 3-level map into binary lung (level >= 1) and infection (level 2) masks, refusing other values.

    The map may be an index map (1, H, W) of ``levels`` (the default 0, 1, 2; the studies' stored masks use
    ``(0, 125, 255)``) or a one-hot (3, H, W) map, as ``AsDiscreted(to_onehot=3)`` writes it. Any value that is
    not one of ``levels`` is an error naming the file: a 3-level label is never silently re-interpreted.

    Returns:
        ``(lung, infection)``, two float {0, 1} tensors of shape (1, H, W), meta kept.
    """

    def __init__(self, levels: Sequence[float] = (0, 1, 2)) -> None:
        if len(levels) != 3 or len(set(float(v) for v in levels)) != 3:
            raise ValueError(f"levels must be three distinct values (non-lung, lung, infection), got {levels}")
        self.levels = [float(v) for v in levels]

    def __call__(self, level: NdarrayOrTensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = convert_to_tensor(level, track_meta=True)
        if t.ndim == 3 and t.shape[0] == 3:  # one-hot
            t = t.argmax(0, keepdim=True)
            index = t
        else:
            if t.ndim != 3 or t.shape[0] != 1:
                raise DatasetError(
                    f"{_name(level)}: a 3-level map must be (1, H, W) or one-hot (3, H, W), got {tuple(t.shape)}"
                )
            odd = [v for v in torch.unique(t).tolist() if float(v) not in self.levels]
            if odd:
                raise DatasetError(
                    f"{_name(level)}: a 3-level map must hold only {self.levels} (non-lung, lung, infection), "
                    f"found {len(odd)} other values, e.g. {odd[:5]}"
                )
            index = torch.zeros_like(t, dtype=torch.int64)
            for i, v in enumerate(self.levels):
                index = torch.where(t == v, torch.full_like(index, i), index)
        lung = (index >= 1).to(torch.float32)
        infection = (index == 2).to(torch.float32)
        return lung, infection


class LevelMasksd(MapTransform):
    """Dictionary twin of :class:`LevelMasks`: ``lung_key`` and ``infection_key`` from the 3-level map in ``keys``.

    Args:
        keys: the key of the 3-level map (one key).
        lung_key, infection_key: where the binary masks go.
        levels: see :class:`LevelMasks`.
    """

    def __init__(
        self,
        keys: KeysCollection,
        lung_key: str = "pred_lung",
        infection_key: str = "pred_infection",
        levels: Sequence[float] = (0, 1, 2),
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 1:
            raise ValueError(f"LevelMasksd takes one key, got {self.keys}")
        self.lung_key, self.infection_key = lung_key, infection_key
        self.inner = LevelMasks(levels)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            d[self.lung_key], d[self.infection_key] = self.inner(d[key])
        return d
