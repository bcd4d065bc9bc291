"""Per-image checks of segmentation references, so bad input is an error or a recorded warning, never a silent NaN.

Two things in a reference make a segmentation metric or a severity meaningless without an error anywhere: an
empty lung mask (Dice / IoU of an empty reference are NaN and quietly left out of MONAI's means; the infected
fraction has no denominator) and infection pixels outside the lung mask (the 3-level target then marks
non-lung tissue as infected; the infected fraction silently ignores them). :class:`SegInputCheckd` looks for
both on the binarised masks and, per image, either raises a :class:`~monaicxr.data.records.DatasetError`
naming the file or logs a warning naming the file and writes the finding into the item (``output_key``), where
:class:`monaicxr.handlers.RowsCSVWriter` can gather it into a CSV. Written by hand: MONAI has no reference
checks. (Mask values other than 0/255 or 0/1 are refused earlier, by :class:`monaicxr.transforms.BinarizeMask`;
3-level maps with unexpected values by :class:`monaicxr.transforms.LevelMasks`.)
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.transforms import MapTransform
from monai.utils import convert_to_tensor

from monaicxr.data.errors import DatasetError

__all__ = ["SegInputCheckd", "INPUT_POLICIES"]

logger = logging.getLogger(__name__)

INPUT_POLICIES = ("error", "warn", "ignore")


def _name(data: Mapping, *keys: str) -> str:
    for key in keys:
        meta = getattr(data.get(key), "meta", None) or {}
        if meta.get("filename_or_obj"):
            return str(meta["filename_or_obj"])
    return "<item>"


def _is_array(x) -> bool:
    return isinstance(x, (torch.Tensor, np.ndarray))


class SegInputCheckd(MapTransform):
    """Check a record's lung and infection masks; raise, or log and record what is wrong with this image.

    Run it after :class:`~monaicxr.transforms.BinarizeMaskd` (masks in {0, 1}) and before any resizing. A missing
    key, or one still holding a file path (a mask the task does not load), is not checked.

    Args:
        lung_key, infection_key: keys of the binarised masks.
        image_key: key whose ``filename_or_obj`` names the image in messages (the mask's file name otherwise).
        output_key: where the findings go, as one string (``""`` when the record is fine; findings joined by
            ``"; "``), so the item still collates into a batch.
        on_empty_lung: ``"error"``, ``"warn"`` (log and record) or ``"ignore"`` for an all-zero lung mask.
        on_infection_outside_lung: the same for infection pixels outside the lung mask.
        note_empty_keys: masks that may legitimately be empty (the infection mask of a healthy image) but whose
            emptiness makes that image's Dice / IoU / HD95 undefined: an empty one gets a note under
            ``notes_key`` (no warning), so a NaN in the per-image metrics is explained, not silent.
        notes_key: where those notes go (a string, ``""`` when none).

    Example::

        SegInputCheckd(on_empty_lung="error")({"lung": torch.zeros(1, 8, 8)})  # raises DatasetError
    """

    def __init__(
        self,
        lung_key: str = "lung",
        infection_key: str = "infection",
        image_key: str = "image",
        output_key: str = "input_issues",
        on_empty_lung: str = "warn",
        on_infection_outside_lung: str = "warn",
        note_empty_keys: Sequence[str] = (),
        notes_key: str = "metric_notes",
    ) -> None:
        super().__init__([lung_key, infection_key], allow_missing_keys=True)
        for what, policy in (
            ("on_empty_lung", on_empty_lung),
            ("on_infection_outside_lung", on_infection_outside_lung),
        ):
            if policy not in INPUT_POLICIES:
                raise ValueError(f"{what} must be one of {INPUT_POLICIES}, got {policy!r}")
        self.lung_key, self.infection_key, self.image_key = lung_key, infection_key, image_key
        self.output_key = output_key
        self.on_empty_lung, self.on_outside = on_empty_lung, on_infection_outside_lung
        self.note_empty_keys = [note_empty_keys] if isinstance(note_empty_keys, str) else list(note_empty_keys)
        self.notes_key = notes_key

    def _report(self, name: str, policy: str, message: str, issues: list[str]) -> None:
        if policy == "ignore":
            return
        if policy == "error":
            raise DatasetError(f"{name}: {message}")
        logger.warning("%s: %s", name, message)
        issues.append(message)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        name = _name(d, self.image_key, self.lung_key, self.infection_key)
        issues: list[str] = []
        # a key that holds a path (a mask the task does not load) is not checked
        lung, infection = (d.get(k) if _is_array(d.get(k)) else None for k in (self.lung_key, self.infection_key))
        lung_t = None if lung is None else convert_to_tensor(lung, track_meta=False) > 0.5
        if lung_t is not None and not bool(lung_t.any()):
            self._report(
                name,
                self.on_empty_lung,
                "empty lung mask (lung Dice / IoU undefined, no infected fraction)",
                issues,
            )
        if lung_t is not None and infection is not None:
            inf_t = convert_to_tensor(infection, track_meta=False) > 0.5
            if inf_t.shape != lung_t.shape:
                raise DatasetError(
                    f"{name}: infection mask {tuple(inf_t.shape)} and lung mask {tuple(lung_t.shape)} differ in shape"
                )
            outside = int((inf_t & ~lung_t).sum())
            if outside:
                total = int(inf_t.sum())
                self._report(
                    name,
                    self.on_outside,
                    f"{outside} of {total} infection pixels lie outside the lung mask",
                    issues,
                )
        d[self.output_key] = "; ".join(issues)
        notes = []
        for key in self.note_empty_keys:
            mask = d.get(key)
            if _is_array(mask) and not bool((convert_to_tensor(mask, track_meta=False) > 0.5).any()):
                notes.append(f"empty {key} mask: this image's {key} Dice / IoU / HD95 are NaN, left out of the means")
        d[self.notes_key] = "; ".join(notes)
        return d
