"""Checks for the bundles' ``multi_gpu_train.json`` (torchrun / DDP): settings that DDP would silently change."""

from __future__ import annotations

__all__ = ["check_distributed_settings"]


def check_distributed_settings(weighted_sampler: bool = False) -> None:
    """Refuse settings that ``multi_gpu_train.json`` cannot honour, instead of dropping them silently.

    The overlay replaces the training sampler with MONAI's ``DistributedSampler`` (each process its shard), so a
    ``WeightedRandomSampler`` (``weighted_sampler: true``) would be ignored: that is an error; use the
    class-weighted loss (``class_weighted_loss: true``) under DDP instead.

    Raises:
        ValueError: ``weighted_sampler`` is set.
    """
    if weighted_sampler:
        raise ValueError(
            "weighted_sampler=True cannot be used with multi_gpu_train.json: its DistributedSampler replaces the "
            "weighted sampler; use class_weighted_loss=True for the class imbalance under DDP"
        )
