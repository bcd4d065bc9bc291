"""Pure tensor metrics on plain tensors / numpy arrays; Ignite adapters live in monaicxr.handlers."""

from __future__ import annotations

from .classification import (
    apply_temperature,
    classification_report,
    confusion_matrix,
    expected_calibration_error,
    fit_temperature,
    minority_recall,
    reliability_bins,
    roc_curves,
)

__all__ = [
    "apply_temperature",
    "classification_report",
    "confusion_matrix",
    "expected_calibration_error",
    "fit_temperature",
    "minority_recall",
    "reliability_bins",
    "roc_curves",
]
