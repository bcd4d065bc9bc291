"""``prepare_batch`` that hands the network its images in a chosen memory format (channels-last).

MONAI's ``default_prepare_batch`` moves ``image`` and ``label`` to the device as they are, contiguous
(N, C, H, W). Convolutional networks on a CPU (oneDNN) and on tensor-core GPUs run faster in the channels-last
layout, which PyTorch selects per tensor; MONAI has no ``prepare_batch`` for it, so this module adds one. Only the
image changes layout: the values, and so everything the network computes, are the same. Labels are left alone (a
binary classifier's label is (N, 1), which has no channels-last layout).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from monai.engines.utils import PrepareBatch, default_prepare_batch

__all__ = ["MemoryFormatPrepareBatch", "resolve_memory_format"]

_FORMATS = {
    "contiguous": torch.contiguous_format,
    "channels_last": torch.channels_last,
    "channels_last_3d": torch.channels_last_3d,
}


def resolve_memory_format(name: str | bool | torch.memory_format | None) -> torch.memory_format:
    """A ``torch.memory_format`` from a config value: a name in ``_FORMATS``, a bool (True: channels_last), or None.

    Raises:
        ValueError: for any other name, listing the accepted ones.
    """
    if isinstance(name, torch.memory_format):
        return name
    if name is None or name is False:
        return torch.contiguous_format
    if name is True:
        return torch.channels_last
    if name not in _FORMATS:
        raise ValueError(f"memory format must be one of {sorted(_FORMATS)} (or true / false), got {name!r}.")
    return _FORMATS[name]


class MemoryFormatPrepareBatch(PrepareBatch):
    """``default_prepare_batch`` with the image converted to ``memory_format`` on the device.

    The image is the batch's ``image`` entry, as for ``default_prepare_batch``; ``channels_last`` applies to 4-D
    images, ``channels_last_3d`` to 5-D ones, and an image of another rank (or a batch that is not a mapping) is
    returned as ``default_prepare_batch`` prepares it. Convert the network too (``network.to(memory_format=...)``),
    or PyTorch converts back at every layer. A ``MetaTensor`` image keeps its metadata.

    Args:
        memory_format: a ``torch.memory_format`` or a name accepted by :func:`resolve_memory_format`.
    """

    def __init__(self, memory_format: str | bool | torch.memory_format = "channels_last") -> None:
        self.memory_format = resolve_memory_format(memory_format)

    def __call__(
        self,
        batchdata: Mapping[str, Any] | Any,
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> Any:
        prepared = default_prepare_batch(batchdata, device, non_blocking, **kwargs)
        if self.memory_format == torch.contiguous_format or not isinstance(batchdata, Mapping):
            return prepared
        image, *rest = prepared
        if isinstance(image, torch.Tensor):
            fmt = {4: torch.channels_last, 5: torch.channels_last_3d}.get(image.ndim)
            if fmt is not None and self.memory_format == fmt:
                image = image.contiguous(memory_format=fmt)
        return (image, *rest)
