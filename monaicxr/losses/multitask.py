"""Segmentation + image-level classification loss for a multitask network, and the batch it consumes.

MONAI's ``SupervisedTrainer`` calls ``loss_function(pred, targets)`` with whatever ``prepare_batch`` returned as
targets, and MONAI's ``default_prepare_batch`` only passes on one ``label`` tensor. A network with a
classification head (:class:`monaicxr.networks.nets.U2Net` with ``num_classes > 0``) needs two targets, so
:class:`MultitaskPrepareBatch` returns ``(image, (label, class_index))`` and :class:`MultitaskLoss` adds a
weighted cross-entropy on the class logits to the segmentation loss. Both written by hand because MONAI has no
multitask loss; the terms themselves are MONAI's / torch's.

Example (bundle config)::

    "loss": "$monaicxr.losses.MultitaskLoss(monai.losses.DeepSupervisionLoss(seg_loss, weight_mode='same'), 0.5)",
    "train#trainer#prepare_batch": "$monaicxr.losses.MultitaskPrepareBatch('class_index')",
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from monai.engines.utils import PrepareBatch
from monai.utils import CommonKeys
from torch import nn

from monaicxr.data.errors import DatasetError

__all__ = ["MultitaskLoss", "MultitaskPrepareBatch", "require_class_names"]


class MultitaskLoss(nn.Module):
    """``seg_loss(seg_pred, seg_target) + class_weight * CrossEntropy(class_logits, class_target)``.

    Args:
        seg_loss: the segmentation loss; it receives the network's segmentation output unchanged (a list of
            deep-supervision outputs in training when wrapped in ``monai.losses.DeepSupervisionLoss``).
        class_weight: weight of the classification term.
        class_loss: the classification loss; ``torch.nn.CrossEntropyLoss()`` when omitted.

    ``forward(pred, target)`` takes ``pred = (seg_pred, class_logits)`` as the multitask U2Net returns it and
    ``target = (seg_target, class_index)`` as :class:`MultitaskPrepareBatch` returns it. The two terms of the
    last call stay available as ``last_terms`` (detached floats) for logging.
    """

    def __init__(self, seg_loss: nn.Module, class_weight: float = 1.0, class_loss: nn.Module | None = None) -> None:
        super().__init__()
        if class_weight < 0:
            raise ValueError(f"class_weight must be >= 0, got {class_weight}")
        self.seg_loss = seg_loss
        self.class_loss = class_loss if class_loss is not None else nn.CrossEntropyLoss()
        self.class_weight = float(class_weight)
        self.last_terms: dict[str, float] = {}

    def forward(self, pred: Sequence[Any], target: Sequence[Any]) -> torch.Tensor:
        if not isinstance(pred, (tuple, list)) or len(pred) != 2 or isinstance(pred[1], (tuple, list)):
            raise TypeError("MultitaskLoss expects pred = (segmentation output, class logits); is num_classes > 0?")
        if not isinstance(target, (tuple, list)) or len(target) != 2:
            raise TypeError(
                "MultitaskLoss expects target = (segmentation target, class index); "
                "set the trainer's prepare_batch to monaicxr.losses.MultitaskPrepareBatch"
            )
        seg_pred, logits = pred
        seg_target, class_target = target
        seg = self.seg_loss(seg_pred, seg_target)
        cls = self.class_loss(logits.float(), class_target.to(logits.device).long().reshape(-1))
        self.last_terms = {"seg": float(seg.detach()), "class": float(cls.detach())}
        return seg + self.class_weight * cls


class MultitaskPrepareBatch(PrepareBatch):
    """``prepare_batch`` for a trainer: ``(image, (label, class_index))`` on the device.

    Args:
        class_key: the batch key of the integer class (the datalist's ``class_index``).
        image_key, label_key: keys of the image and of the segmentation target.

    Raises:
        DatasetError: when a batch lacks ``class_key`` (the datalist has no class labels).
    """

    def __init__(
        self, class_key: str = "class_index", image_key: str = CommonKeys.IMAGE, label_key: str = CommonKeys.LABEL
    ) -> None:
        self.class_key, self.image_key, self.label_key = class_key, image_key, label_key

    def __call__(
        self,
        batchdata: Mapping[str, Any],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        if self.class_key not in batchdata:
            raise DatasetError(
                f"the multitask network needs a class for every image, but the batch has no {self.class_key!r} "
                f"(keys: {sorted(map(str, batchdata))}); use a dataset with class labels"
            )
        image = batchdata[self.image_key].to(device=device, non_blocking=non_blocking, **kwargs)
        label = batchdata[self.label_key].to(device=device, non_blocking=non_blocking, **kwargs)
        classes = torch.as_tensor(batchdata[self.class_key]).long().to(device=device, non_blocking=non_blocking)
        return image, (label, classes)


def require_class_names(data: Mapping[str, Any]) -> list[str]:
    """The ``classes`` of a datalist (as :func:`monaicxr.data.prepare.prepare_datalist` returns it), or an error.

    A multitask config sizes its classification head from this list, so a datalist without classes must stop the
    run rather than silently train a segmentation-only network.
    """
    classes = list(data.get("classes") or [])
    if len(classes) < 2:
        raise DatasetError(
            f"the multitask network needs at least two classes, but the datalist (source {data.get('source')!r}, "
            f"root {data.get('root')!r}) lists {classes}; use a dataset with class labels"
        )
    return [str(c) for c in classes]
