from __future__ import annotations

from .registry import CLASSIFIERS, build_classifier
from .simple_cnn import SimpleCNN, l2_param_groups
from .u2net import U2NET_CONFIGS, U2Net
from .vgg16 import VGG16Classifier
from .xception import XceptionClassifier

__all__ = [
    "CLASSIFIERS",
    "SimpleCNN",
    "U2NET_CONFIGS",
    "U2Net",
    "VGG16Classifier",
    "XceptionClassifier",
    "build_classifier",
    "l2_param_groups",
]
