"""Xception classifier.

Reference:
    F. Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions", CVPR 2017.
    https://arxiv.org/abs/1610.02357
"""

from __future__ import annotations

import os

import torch
from monai.networks.layers import Act, Conv, Norm, Pool
from torch import nn

from monaicxr.networks.blocks.separable import SeparableConv, XceptionBlock
from monaicxr.networks.nets.vgg16 import load_pretrained_subset

__all__ = ["XceptionClassifier"]


class XceptionClassifier(nn.Module):
    """Xception (Chollet, CVPR 2017) with global average pooling and a linear classifier.

    Entry flow: conv 3x3/32 stride 2 and conv 3x3/64 (no padding, each with batch norm and ReLU), then three
    residual blocks of two separable convolutions (128, 256, 728 channels) closed by a 3x3 stride-2 max-pool,
    with a strided 1x1 convolution + batch norm as shortcut. Middle flow: 8 blocks of three separable
    convolutions (728) with identity shortcut. Exit flow: a block 728 -> 728 -> 1024 with pool and shortcut,
    separable convolutions 1536 and 2048 (each with batch norm and ReLU), global average pooling, optional
    dropout and a linear layer. Every separable convolution (depthwise 3x3 then pointwise 1x1, no bias) is
    followed by batch norm, ReLU comes before it inside the blocks, as in the paper's figure 5. The output is
    logits (softmax or sigmoid belongs to the loss). Inputs down to 32 x 32 work; the paper uses 299 x 299.

    Without the top (``fc``) the network has 20,861,480 weights counting batch norm running means and
    variances as Keras does (20,806,952 trainable parameters); ``fc`` adds ``2049 * num_classes``.

    Layer names (``conv1``, ``bn1``, ``conv2``, ``bn2``, ``block1`` ... ``block12``, ``conv3``, ``bn3``, ``conv4``,
    ``bn4``, ``fc``) follow the Cadene ``pretrainedmodels`` / timm ``xception`` port of the Keras ImageNet
    weights, so its state_dict, saved locally, loads with :meth:`load_pretrained` (its ``fc.*`` or
    ``last_linear.*`` are ignored). With ``in_channels=1`` the first convolution's RGB filters are summed.

    Args:
        in_channels: number of input channels.
        num_classes: number of output logits.
        dropout: dropout probability before the linear layer.
        pretrained_path: local state_dict to load into everything but ``fc``; None for random weights.

    Example::

        net = XceptionClassifier(in_channels=1, num_classes=3)
        logits = net(torch.zeros(2, 1, 299, 299))  # (2, 3)
    """

    num_features = 2048

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 3,
        dropout: float = 0.0,
        pretrained_path: str | None = None,
    ) -> None:
        super().__init__()
        conv, norm, relu = Conv[Conv.CONV, 2], Norm[Norm.BATCH, 2], Act[Act.RELU]
        # entry flow
        self.conv1 = conv(in_channels, 32, 3, stride=2, padding=0, bias=False)
        self.bn1 = norm(32)
        self.act1 = relu(inplace=True)
        self.conv2 = conv(32, 64, 3, padding=0, bias=False)
        self.bn2 = norm(64)
        self.act2 = relu(inplace=True)
        self.block1 = XceptionBlock(2, 64, 128, reps=2, stride=2, start_with_relu=False)
        self.block2 = XceptionBlock(2, 128, 256, reps=2, stride=2)
        self.block3 = XceptionBlock(2, 256, 728, reps=2, stride=2)
        # middle flow
        self.block4 = XceptionBlock(2, 728, 728, reps=3)
        self.block5 = XceptionBlock(2, 728, 728, reps=3)
        self.block6 = XceptionBlock(2, 728, 728, reps=3)
        self.block7 = XceptionBlock(2, 728, 728, reps=3)
        self.block8 = XceptionBlock(2, 728, 728, reps=3)
        self.block9 = XceptionBlock(2, 728, 728, reps=3)
        self.block10 = XceptionBlock(2, 728, 728, reps=3)
        self.block11 = XceptionBlock(2, 728, 728, reps=3)
        # exit flow
        self.block12 = XceptionBlock(2, 728, 1024, reps=2, stride=2, grow_first=False)
        self.conv3 = SeparableConv(2, 1024, 1536, kernel_size=3, padding=1)
        self.bn3 = norm(1536)
        self.act3 = relu(inplace=True)
        self.conv4 = SeparableConv(2, 1536, self.num_features, kernel_size=3, padding=1)
        self.bn4 = norm(self.num_features)
        self.act4 = relu(inplace=True)
        self.global_pool = Pool[Pool.ADAPTIVEAVG, 2](1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.num_features, num_classes)
        self._init_weights()
        if pretrained_path is not None:
            self.load_pretrained(pretrained_path)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def load_pretrained(self, path: str | os.PathLike) -> list[str]:
        """Load a local Xception state_dict (Cadene / timm names) into everything but ``fc``, strictly.

        Args:
            path: the weights file.

        Returns:
            the names of the tensors loaded.

        Raises:
            FileNotFoundError: when ``path`` is not a file.
            ValueError: when the file's keys or shapes do not match this network.
        """
        return load_pretrained_subset(self, path, first_conv="conv1.weight", exclude=("fc.", "last_linear."))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the 2048-channel feature map before global pooling."""
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        x = self.block1(x)
        x = self.block2(x)
        x = self.block3(x)
        x = self.block4(x)
        x = self.block5(x)
        x = self.block6(x)
        x = self.block7(x)
        x = self.block8(x)
        x = self.block9(x)
        x = self.block10(x)
        x = self.block11(x)
        x = self.block12(x)
        x = self.act3(self.bn3(self.conv3(x)))
        return self.act4(self.bn4(self.conv4(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.global_pool(self.forward_features(x)).flatten(1)
        return self.fc(self.dropout(x))
