"""Chest X-ray transforms: ``array`` does the math, ``dictionary`` the ``...d`` twins."""

from __future__ import annotations

from .array import BinarizeMask, ExcludeIgnored, LevelsToValues, ScaleByBitDepth, SnapToLevels, ThreeLevelLabel
from .cache import CACHE_DTYPES, FromCacheDtyped, ToCacheDtyped
from .checks import INPUT_POLICIES, SegInputCheckd
from .compose import ComposeWithoutMeta
from .dictionary import (
    BinarizeMaskd,
    ExcludeIgnoredd,
    LevelsToValuesd,
    ScaleByBitDepthd,
    SnapToLevelsd,
    ThreeLevelLabeld,
)
from .io import LoadCXRImage, LoadCXRImaged
from .masking import LUNG_INPUTS, LungInputd, MaskImage, MaskImaged, insert_after_loading
from .postprocess import (
    FillLungHoles,
    FillLungHolesd,
    KeepLargestLungs,
    KeepLargestLungsd,
    LevelMasks,
    LevelMasksd,
    RestrictToLungs,
    RestrictToLungsd,
    Severityd,
)
from .segment import PredictLungsd
from .target import SEG_TASKS, SegTargetd

__all__ = [
    "CACHE_DTYPES",
    "ComposeWithoutMeta",
    "FromCacheDtyped",
    "ToCacheDtyped",
    "INPUT_POLICIES",
    "LevelMasks",
    "LevelMasksd",
    "SegInputCheckd",
    "FillLungHoles",
    "FillLungHolesd",
    "KeepLargestLungs",
    "KeepLargestLungsd",
    "RestrictToLungs",
    "RestrictToLungsd",
    "Severityd",
    "SEG_TASKS",
    "BinarizeMask",
    "BinarizeMaskd",
    "ExcludeIgnored",
    "ExcludeIgnoredd",
    "LevelsToValues",
    "LevelsToValuesd",
    "LoadCXRImage",
    "LoadCXRImaged",
    "LUNG_INPUTS",
    "LungInputd",
    "MaskImage",
    "MaskImaged",
    "PredictLungsd",
    "insert_after_loading",
    "ScaleByBitDepth",
    "ScaleByBitDepthd",
    "SegTargetd",
    "SnapToLevels",
    "SnapToLevelsd",
    "ThreeLevelLabel",
    "ThreeLevelLabeld",
]
