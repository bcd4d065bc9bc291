"""Thin Ignite handlers for what MONAI's handlers do not cover."""

from __future__ import annotations

from .checkpoints import (
    AtomicCheckpointSaver,
    AtomicDiskSaver,
    CheckedCheckpointLoader,
    ResumeCheckpointLoader,
    checkpoint_candidates,
    latest_checkpoint,
)
from .classification import ClassificationReportHandler
from .infection import InfectionSummary
from .overlay import OverlaySaver
from .rows import RowsCSVWriter
from .summary import EvaluationSummary, RunSummary, SectionMetricNames, section_metric_name
from .training import LearningRateWriter, NonFiniteGuard, TimeBudget, TrainingState

__all__ = [
    "AtomicCheckpointSaver",
    "AtomicDiskSaver",
    "CheckedCheckpointLoader",
    "ClassificationReportHandler",
    "EvaluationSummary",
    "InfectionSummary",
    "LearningRateWriter",
    "NonFiniteGuard",
    "OverlaySaver",
    "ResumeCheckpointLoader",
    "RowsCSVWriter",
    "RunSummary",
    "SectionMetricNames",
    "section_metric_name",
    "TimeBudget",
    "TrainingState",
    "checkpoint_candidates",
    "latest_checkpoint",
]
