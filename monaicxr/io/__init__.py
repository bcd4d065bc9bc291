"""Readers and writers MONAI lacks: chest radiographs with correct photometry, overlays, prediction PNGs."""

from __future__ import annotations

from .overlay import render_overlay, save_overlay
from .reader import CXRImageReader, read_cxr

__all__ = ["CXRImageReader", "read_cxr", "render_overlay", "save_overlay"]
