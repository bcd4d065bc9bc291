"""Readers and writers MONAI lacks: chest radiographs with correct photometry, overlays, prediction PNGs,
sharded checkpoints."""

from __future__ import annotations

from .checkpoints import is_sharded, load_sharded, save_sharded
from .overlay import render_overlay, save_overlay
from .reader import CXRImageReader, read_cxr

__all__ = [
    "CXRImageReader",
    "is_sharded",
    "load_sharded",
    "read_cxr",
    "render_overlay",
    "save_overlay",
    "save_sharded",
]
