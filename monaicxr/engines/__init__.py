"""Engine helpers: batch preparation for MONAI's ``SupervisedTrainer`` / ``SupervisedEvaluator``, bfloat16 autocast on
the CPU, and CPU memory reuse for training."""

from __future__ import annotations

from .cpu import retain_freed_memory
from .distributed import check_distributed_settings
from .precision import PRECISIONS, AutocastInferer, cpu_has_bf16, resolve_precision
from .prepare import MemoryFormatPrepareBatch, resolve_memory_format

__all__ = [
    "PRECISIONS",
    "AutocastInferer",
    "check_distributed_settings",
    "MemoryFormatPrepareBatch",
    "cpu_has_bf16",
    "resolve_memory_format",
    "resolve_precision",
    "retain_freed_memory",
]
