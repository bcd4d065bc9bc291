"""Classifier registry: a name -> constructor table and :func:`build_classifier`.

Every entry builds a network that maps ``(batch, in_channels, H, W)`` images to ``(batch, num_classes)`` logits.
Nothing here downloads weights: MONAI's ``DenseNet121`` and ``EfficientNetBN`` are built with
``pretrained=False``, and VGG-16 / Xception take ImageNet weights only from a local ``pretrained_path``.
"""

from __future__ import annotations

from typing import Any

from monai.networks.nets import DenseNet121, EfficientNetBN
from torch import nn

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


def build_classifier(name: str, **kwargs: Any) -> nn.Module:
    """Build the classifier registered as ``name``.

    The common arguments are ``in_channels`` and ``num_classes`` for every entry (``num_classes`` becomes
    ``out_channels`` for MONAI's ``DenseNet121``, whose ``spatial_dims`` defaults to 2 here). ``pretrained=True``
    is refused: nothing downloads; VGG-16 and Xception load local files through ``pretrained_path``.

    Args:
        name: a key of :data:`CLASSIFIERS`.
        kwargs: constructor arguments.

    Returns:
        the network.

    Raises:
        ValueError: for an unknown name, or ``pretrained=True``.

    Example::

        net = build_classifier("simple_cnn", in_channels=1, num_classes=3, spatial_size=(100, 100))
    """
    if name not in CLASSIFIERS:
        raise ValueError(f"Unknown classifier {name!r}; valid names: {', '.join(sorted(CLASSIFIERS))}.")
    if kwargs.get("pretrained"):
        raise ValueError(
            f"build_classifier({name!r}) never downloads weights: pretrained=True is not supported"
            " (VGG-16 and Xception take a local pretrained_path)."
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
}
