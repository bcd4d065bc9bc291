"""Engine helpers: batch preparation for MONAI's ``SupervisedTrainer`` / ``SupervisedEvaluator``, and CPU memory
reuse for training."""

from __future__ import annotations

from .cpu import retain_freed_memory
from .prepare import MemoryFormatPrepareBatch, resolve_memory_format

__all__ = ["MemoryFormatPrepareBatch", "resolve_memory_format", "retain_freed_memory"]
