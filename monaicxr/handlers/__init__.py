"""Thin Ignite handlers for what MONAI's handlers do not cover."""

from __future__ import annotations

from .checkpoints import ShardedCheckpointLoader, latest_checkpoint
from .classification import ClassificationReportHandler
from .overlay import OverlaySaver
from .rows import RowsCSVWriter
from .summary import RunSummary

__all__ = [
    "ClassificationReportHandler",
    "OverlaySaver",
    "RowsCSVWriter",
    "RunSummary",
    "ShardedCheckpointLoader",
    "latest_checkpoint",
]
