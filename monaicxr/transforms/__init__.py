"""Chest X-ray transforms: ``array`` does the math, ``dictionary`` the ``...d`` twins."""

from __future__ import annotations

from .array import BinarizeMask, ExcludeIgnored, LevelsToValues, ScaleByBitDepth, SnapToLevels, ThreeLevelLabel
from .dictionary import (
    BinarizeMaskd,
    ExcludeIgnoredd,
    LevelsToValuesd,
    ScaleByBitDepthd,
    SnapToLevelsd,
    ThreeLevelLabeld,
)
from .postprocess import (
    FillLungHoles,
    FillLungHolesd,
    KeepLargestLungs,
    KeepLargestLungsd,
    RestrictToLungs,
    RestrictToLungsd,
    Severityd,
)
from .target import SEG_TASKS, SegTargetd

__all__ = [
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
    "ScaleByBitDepth",
    "ScaleByBitDepthd",
    "SegTargetd",
    "SnapToLevels",
    "SnapToLevelsd",
    "ThreeLevelLabel",
    "ThreeLevelLabeld",
]
