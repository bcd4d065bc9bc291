from __future__ import annotations

from .efficientnet_lite import (
    LITE_MEAN_RGB,
    LITE_STDDEV_RGB,
    EfficientNetLite0,
    EfficientNetLiteEncoder,
    efficientnet_lite0_unet,
    efficientnet_lite0_weights_path,
)
from .registry import CLASSIFIERS, build_classifier
from .simple_cnn import SimpleCNN, l2_param_groups
from .u2net import U2NET_CONFIGS, U2Net
from .vgg16 import VGG16Classifier
from .xception import XceptionClassifier

__all__ = [
    "CLASSIFIERS",
    "EfficientNetLite0",
    "EfficientNetLiteEncoder",
    "LITE_MEAN_RGB",
    "LITE_STDDEV_RGB",
    "SimpleCNN",
    "U2NET_CONFIGS",
    "U2Net",
    "VGG16Classifier",
    "XceptionClassifier",
    "build_classifier",
    "efficientnet_lite0_unet",
    "efficientnet_lite0_weights_path",
    "l2_param_groups",
]
