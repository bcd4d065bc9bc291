"""End-to-end workflows over the bundles: plain functions that the ``monaicxr`` sub-commands call."""

from __future__ import annotations

from .predict import DEFAULT_MODELS, ModelSpec, predict

__all__ = ["DEFAULT_MODELS", "ModelSpec", "predict"]
