"""Readers and writers MONAI lacks: chest radiographs with correct photometry, overlays, prediction PNGs,
atomic and checked checkpoint files, sharded checkpoints."""

from __future__ import annotations

from . import weights_card
from .checkpoints import CheckpointError, is_sharded, load_checkpoint, load_sharded, save_atomic, save_sharded
from .overlay import render_overlay, save_overlay
from .reader import CXRImageReader, read_cxr

__all__ = [
    "weights_card",
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
