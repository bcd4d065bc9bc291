"""Readers and writers MONAI lacks: chest radiographs with correct photometry, overlays, prediction PNGs,
atomic and checked checkpoint files."""

from __future__ import annotations

from . import weights_card
from .checkpoints import CheckpointError, load_checkpoint, save_atomic
from .overlay import render_overlay, save_overlay
from .reader import CXRImageReader, read_cxr

__all__ = [
    "weights_card",
    "CheckpointError",
    "CXRImageReader",
    "load_checkpoint",
    "read_cxr",
    "render_overlay",
    "save_atomic",
    "save_overlay",
]
