"""The training target of each segmentation task, built from the lung and infection masks of a record.

=============  =================================================================================
task           target (one channel)
=============  =================================================================================
``lung``       lung mask, {0, 1}
``infection``  infection mask, {0, 1}
``3level``     level / 2, i.e. 0 non-lung, 0.5 lung, 1 infection (the studies' 0 / 125 / 255 mask)
=============  =================================================================================

For ``3level`` the integer level map (0, 1, 2) is also kept under ``level_key`` so that metrics after
snapping predictions to the nearest level can compare class maps.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.transforms import MapTransform

from .array import ThreeLevelLabel

__all__ = ["SEG_TASKS", "SegTargetd"]

SEG_TASKS = ("lung", "infection", "3level")


class SegTargetd(MapTransform):
    """Write the target of ``task`` under ``output_key`` (see the module docstring).

    Args:
        task: ``"lung"``, ``"infection"`` or ``"3level"``.
        lung_key, infection_key: keys of binarised {0, 1} masks.
        output_key: where the target goes (``"label"`` for MONAI's trainers).
        level_key: for ``3level``, where the integer level map goes.
        on_infection_outside_lung: passed to :class:`monaicxr.transforms.ThreeLevelLabel`.
    """

    def __init__(
        self,
        task: str,
        lung_key: str = "lung",
        infection_key: str = "infection",
        output_key: str = "label",
        level_key: str = "level",
        on_infection_outside_lung: str = "warn",
    ) -> None:
        if task not in SEG_TASKS:
            raise ValueError(f"unknown segmentation task {task!r}; choose one of {list(SEG_TASKS)}")
        keys = [lung_key] if task == "lung" else [infection_key] if task == "infection" else [lung_key, infection_key]
        super().__init__(keys)
        self.task = task
        self.lung_key, self.infection_key = lung_key, infection_key
        self.output_key, self.level_key = output_key, level_key
        self.three_level = ThreeLevelLabel(on_infection_outside_lung=on_infection_outside_lung)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        if self.task == "lung":
            d[self.output_key] = d[self.lung_key]
        elif self.task == "infection":
            d[self.output_key] = d[self.infection_key]
        else:
            level = self.three_level(d[self.lung_key], d[self.infection_key])
            d[self.level_key] = level
            d[self.output_key] = level.float() / 2.0
        return d
