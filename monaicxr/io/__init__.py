"""Readers and writers MONAI lacks: chest radiographs with correct photometry, overlays, prediction PNGs,
atomic and checked checkpoint files, sharded checkpoints."""

from __future__ import annotations

from .checkpoints import CheckpointError, is_sharded, load_checkpoint, load_sharded, save_atomic, save_sharded
from .overlay import render_overlay, save_overlay
from .reader import CXRImageReader, read_cxr
from . import weights_card

__all__ = [
    "CheckpointError",
    "CXRImageReader",
    "is_sharded",
    "load_checkpoint",
    "load_sharded",
    "read_cxr",
    "render_overlay",
    "save_atomic",
    "save_overlay",
    "save_sharded",
]
