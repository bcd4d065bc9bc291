"""Thin Ignite handlers for what MONAI's handlers do not cover."""

from __future__ import annotations

from .checkpoints import latest_checkpoint
from .overlay import OverlaySaver
from .summary import RunSummary

__all__ = ["OverlaySaver", "RunSummary", "latest_checkpoint"]
