"""Segmentation losses selectable by name from a bundle config.

MONAI provides the losses themselves (:class:`monai.losses.DiceLoss`, :class:`monai.losses.DiceCELoss`,
:class:`monai.losses.MaskedLoss`); this module only maps the names the bundles use to configured instances, and
adds the two small pieces MONAI lacks: a mean-squared error on sigmoid outputs (the 3-level regression target
of the studies) and a wrapper that excludes "ignore" pixels carried as an extra target channel.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from monai.losses import DiceCELoss, DiceLoss, MaskedLoss
from torch import nn

__all__ = ["SigmoidMSELoss", "IgnoreChannelLoss", "segmentation_loss", "SEGMENTATION_LOSSES"]


class SigmoidMSELoss(nn.Module):
    """Mean squared error between ``sigmoid(logits)`` and a target in [0, 1].

    Used for the 3-level mask (non-lung 0, lung 0.5, infection 1) regressed by a single output channel, as the
    studies did before snapping predictions to the nearest level. Written here because MONAI has no loss that
    applies an activation before MSE.
    """

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # noqa: A002
        return torch.mean((torch.sigmoid(input) - target.to(input.dtype)) ** 2)


class IgnoreChannelLoss(nn.Module):
    """Apply ``loss`` only where the ignore mask is 0, when the target carries it as its last channel.

    The polygon indexers (:mod:`monaicxr.data.polygons`) keep annotators' "Ignore" regions (devices over the
    lungs) as a separate mask; a pipeline that concatenates it to the target as one extra channel gets those
    pixels excluded from the loss. With a target of the prediction's channel count the loss is applied as is.
    Masking is done by :class:`monai.losses.MaskedLoss`.
    """

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss
        self.masked = MaskedLoss(loss)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # noqa: A002
        if target.shape[1] == input.shape[1] + 1:
            keep = (target[:, -1:] < 0.5).to(input.dtype)
            return self.masked(input, target[:, :-1], mask=keep)
        return self.loss(input, target)


def _bce() -> nn.Module:
    return nn.BCEWithLogitsLoss()


# name -> (factory, tasks it is meaningful for). Binary tasks output one logit channel; the 3-level task
# regresses one channel to the levels 0 / 0.5 / 1, for which only pixel-wise losses make sense.
SEGMENTATION_LOSSES: dict[str, tuple[Callable[[], nn.Module], tuple[str, ...]]] = {
    "dice": (lambda: DiceLoss(sigmoid=True), ("lung", "infection")),
    "bce": (_bce, ("lung", "infection", "3level")),
    "dicece": (lambda: DiceCELoss(sigmoid=True), ("lung", "infection")),
    "mse": (SigmoidMSELoss, ("3level",)),
}


def segmentation_loss(name: str, task: str = "lung", ignore_channel: bool = True) -> nn.Module:
    """Build the loss called ``name`` for ``task`` ("lung", "infection" or "3level").

    Args:
        name: one of :data:`SEGMENTATION_LOSSES` (``dice``, ``bce``, ``dicece``, ``mse``).
        task: the segmentation task; a loss that does not fit the task is refused with the valid choices.
        ignore_channel: wrap in :class:`IgnoreChannelLoss` so an extra ignore channel in the target is honoured.

    Example::

        loss = segmentation_loss("dicece", task="lung")
    """
    key = name.lower()
    if key not in SEGMENTATION_LOSSES:
        raise ValueError(f"unknown segmentation loss {name!r}; choose one of {sorted(SEGMENTATION_LOSSES)}")
    factory, tasks = SEGMENTATION_LOSSES[key]
    if task not in tasks:
        valid = sorted(k for k, (_, t) in SEGMENTATION_LOSSES.items() if task in t)
        raise ValueError(f"loss {name!r} does not fit task {task!r}; for {task!r} choose one of {valid}")
    loss = factory()
    return IgnoreChannelLoss(loss) if ignore_channel else loss
