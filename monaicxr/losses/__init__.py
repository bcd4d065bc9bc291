from __future__ import annotations

from .multitask import MultitaskLoss, MultitaskPrepareBatch, require_class_names
from .segmentation import SEGMENTATION_LOSSES, IgnoreChannelLoss, SigmoidMSELoss, segmentation_loss

__all__ = [
    "MultitaskLoss",
    "MultitaskPrepareBatch",
    "SEGMENTATION_LOSSES",
    "IgnoreChannelLoss",
    "SigmoidMSELoss",
    "segmentation_loss",
    "require_class_names",
]
