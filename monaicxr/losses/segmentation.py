"""Segmentation losses selectable by name from a bundle config.

MONAI provides the losses themselves (:class:`monai.losses.DiceLoss`, :class:`monai.losses.DiceCELoss`,
:class:`monai.losses.FocalLoss`, :class:`monai.losses.DiceFocalLoss`, :class:`monai.losses.TverskyLoss`);
this module only maps the names the bundles use to configured instances, and
adds the two small pieces MONAI lacks: a mean-squared error on sigmoid outputs (the 3-level regression target
of the studies) and a wrapper that excludes "ignore" pixels carried as an extra target channel.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from monai.losses import DiceCELoss, DiceFocalLoss, DiceLoss, FocalLoss, TverskyLoss
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
    """Sum of loss terms that skip "ignore" pixels carried as an extra last channel of the target.

    The polygon indexers (:mod:`monaicxr.data.polygons`) keep annotators' "Ignore" regions (devices over the
    lungs) as a separate mask; a pipeline that concatenates it to the target as one extra channel gets those
    pixels excluded. Written by hand because :class:`monai.losses.MaskedLoss` multiplies the *logits* by the
    mask, which leaves a sigmoid of 0.5 (not nothing) at masked pixels.

    Ignored pixels are set to a confident, correct background (logit -30, target 0), which adds nothing to a
    Dice term; pixel-mean terms (BCE, MSE) are rescaled by ``pixels / kept pixels`` so they average over the
    kept pixels only. With a target of the prediction's channel count the terms are applied as they are.

    Args:
        terms: ``(loss, is_pixel_mean)`` pairs, summed.
    """

    def __init__(self, terms: list[tuple[nn.Module, bool]]) -> None:
        super().__init__()
        self.losses = nn.ModuleList([t for t, _ in terms])
        self.pixel_mean = [p for _, p in terms]

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # noqa: A002
        scale = 1.0
        if target.shape[1] == input.shape[1] + 1:
            ignore = target[:, -1:] >= 0.5
            target = torch.where(ignore, torch.zeros_like(target[:, :-1]), target[:, :-1])
            input = torch.where(ignore, torch.full_like(input, -30.0), input)  # noqa: A001
            kept = float((~ignore).sum()) * input.shape[1]
            scale = input.numel() / max(kept, 1.0)
        total = input.new_zeros(())
        for loss, pixel_mean in zip(self.losses, self.pixel_mean, strict=True):
            total = total + loss(input, target) * (scale if pixel_mean else 1.0)
        return total


# name -> (terms as (factory, is_pixel_mean), tasks it is meaningful for). Binary tasks output one logit
# channel; the 3-level task regresses one channel to the levels 0 / 0.5 / 1, where only pixel losses fit.
# "dicece" equals monai.losses.DiceCELoss(sigmoid=True) (Dice + BCE with logits, both weighted 1) and "dicefocal"
# monai.losses.DiceFocalLoss(sigmoid=True); "tversky" weights false negatives more than false positives
# (alpha 0.3, beta 0.7, the usual setting for small lesions such as infection).
TVERSKY_ALPHA_BETA = (0.3, 0.7)
FOCAL_GAMMA = 2.0
SEGMENTATION_LOSSES: dict[str, tuple[tuple[tuple[Callable[[], nn.Module], bool], ...], tuple[str, ...]]] = {
    "dice": (((lambda: DiceLoss(sigmoid=True), False),), ("lung", "infection")),
    "bce": (((nn.BCEWithLogitsLoss, True),), ("lung", "infection", "3level")),
    "dicece": (((lambda: DiceLoss(sigmoid=True), False), (nn.BCEWithLogitsLoss, True)), ("lung", "infection")),
    "mse": (((SigmoidMSELoss, True),), ("3level",)),
    "focal": (((lambda: FocalLoss(gamma=FOCAL_GAMMA), True),), ("lung", "infection")),
    "dicefocal": (
        ((lambda: DiceLoss(sigmoid=True), False), (lambda: FocalLoss(gamma=FOCAL_GAMMA), True)),
        ("lung", "infection"),
    ),
    "tversky": (
        ((lambda: TverskyLoss(sigmoid=True, alpha=TVERSKY_ALPHA_BETA[0], beta=TVERSKY_ALPHA_BETA[1]), False),),
        ("lung", "infection"),
    ),
}

# the plain MONAI losses equal to the multi-term entries, returned when ignore_channel=False
_PLAIN_COMBINED: dict[str, Callable[[], nn.Module]] = {
    "dicece": lambda: DiceCELoss(sigmoid=True),
    "dicefocal": lambda: DiceFocalLoss(sigmoid=True, gamma=FOCAL_GAMMA),
}


def segmentation_loss(name: str, task: str = "lung", ignore_channel: bool = True) -> nn.Module:
    """Build the loss called ``name`` for ``task`` ("lung", "infection" or "3level").

    Args:
        name: one of :data:`SEGMENTATION_LOSSES` (``dice``, ``bce``, ``dicece``, ``mse``, ``focal``,
            ``dicefocal``, ``tversky``).
        task: the segmentation task; a loss that does not fit the task is refused with the valid choices.
        ignore_channel: build an :class:`IgnoreChannelLoss` so an extra ignore channel in the target is honoured;
            with ``False`` the plain MONAI / torch loss is returned.

    Example::

        loss = segmentation_loss("dicece", task="lung")
    """
    key = name.lower()
    if key not in SEGMENTATION_LOSSES:
        raise ValueError(f"unknown segmentation loss {name!r}; choose one of {sorted(SEGMENTATION_LOSSES)}")
    terms, tasks = SEGMENTATION_LOSSES[key]
    if task not in tasks:
        valid = sorted(k for k, (_, t) in SEGMENTATION_LOSSES.items() if task in t)
        raise ValueError(f"loss {name!r} does not fit task {task!r}; for {task!r} choose one of {valid}")
    if not ignore_channel and len(terms) == 1:
        return terms[0][0]()
    if not ignore_channel:
        return _PLAIN_COMBINED[key]()
    return IgnoreChannelLoss([(factory(), pixel_mean) for factory, pixel_mean in terms])
