"""``ComposeWithoutMeta``: run transforms on plain tensors, without MONAI's metadata tracking.

MONAI tracks metadata (the affine, the applied operations) through every transform when
``monai.data.get_track_meta()`` is on, which the evaluation reports need (file names). The random augmentation
of a training batch needs none of it, and tracking it doubles the cost of ``RandAffined`` (2.5 ms against 1.4 ms
per 150 x 150 image measured here), which on a 2-core machine competes with the training step for the same cores.
MONAI switches tracking only globally (``set_track_meta``), so this Compose switches it off while its own
transforms run and restores it afterwards.

Not thread-safe: the switch is process-wide, so use it where one thread transforms at a time, as in a
``DataLoader`` (its workers are processes) or with ``num_workers=0``; not with ``ThreadDataLoader``. Its output
images are plain tensors: put it after every transform that reads metadata (``ScaleByBitDepthd`` reads the bit
depth), i.e. around the random transforms only.
"""

from __future__ import annotations

from typing import Any

from monai.data import get_track_meta, set_track_meta
from monai.transforms import Compose

__all__ = ["ComposeWithoutMeta"]


class ComposeWithoutMeta(Compose):
    """A ``Compose`` whose transforms run with ``set_track_meta(False)``; the previous setting is restored after.

    A subclass of ``Compose``, so ``Compose.flatten`` keeps it whole and ``CacheDataset`` treats it as random:
    it caches the deterministic transforms before it and runs this one at every epoch.
    """

    def __call__(
        self, input_: Any, start: int = 0, end: int | None = None, threading: bool = False, lazy: bool | None = None
    ) -> Any:
        previous = get_track_meta()
        set_track_meta(False)
        try:
            return super().__call__(input_, start=start, end=end, threading=threading, lazy=lazy)
        finally:
            set_track_meta(previous)
