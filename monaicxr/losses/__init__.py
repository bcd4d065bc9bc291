from __future__ import annotations

from .segmentation import SEGMENTATION_LOSSES, IgnoreChannelLoss, SigmoidMSELoss, segmentation_loss

__all__ = ["SEGMENTATION_LOSSES", "IgnoreChannelLoss", "SigmoidMSELoss", "segmentation_loss"]
