"""Engine helpers: batch preparation for MONAI's ``SupervisedTrainer`` / ``SupervisedEvaluator``."""

from __future__ import annotations

from .prepare import MemoryFormatPrepareBatch, resolve_memory_format

__all__ = ["MemoryFormatPrepareBatch", "resolve_memory_format"]
