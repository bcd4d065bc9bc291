"""Depthwise separable convolution and the Xception residual block built from it.

Reference:
    F. Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions", CVPR 2017.
    https://arxiv.org/abs/1610.02357

Submodule names follow the widely used PyTorch port of Xception (Cadene ``pretrainedmodels`` and timm's
``xception``): a separable convolution holds ``conv1`` (depthwise) and ``pointwise``; a block holds ``rep``
(a sequence whose positions match that port, ReLUs included) and, when its shape changes, ``skip`` and
``skipbn``. Keeping the names lets a state_dict saved from that port load unchanged.
"""

from __future__ import annotations

import torch
from monai.networks.layers import Act, Conv, Norm, Pool
from torch import nn

__all__ = ["SeparableConv", "XceptionBlock"]


class SeparableConv(nn.Module):
    """Depthwise convolution (one filter per input channel) followed by a 1x1 pointwise convolution.

    As in the paper and in Keras' ``SeparableConv2D``, there is no normalization or activation between the two
    convolutions; the caller puts batch norm (and ReLU) after the pair.

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: number of input channels.
        out_channels: number of output channels.
        kernel_size: kernel size of the depthwise convolution.
        stride: stride of the depthwise convolution.
        padding: padding of the depthwise convolution.
        dilation: dilation of the depthwise convolution.
        bias: whether both convolutions have a bias (Xception has none).

    Example::

        conv = SeparableConv(2, 64, 128, kernel_size=3, padding=1)
        y = conv(torch.zeros(1, 64, 32, 32))  # (1, 128, 32, 32)
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        dilation: int = 1,
        bias: bool = False,
    ) -> None:
        super().__init__()
        conv = Conv[Conv.CONV, spatial_dims]
        self.conv1 = conv(
            in_channels,
            in_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=in_channels,
            bias=bias,
        )
        self.pointwise = conv(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.conv1(x))


class XceptionBlock(nn.Module):
    """Xception residual block: ``reps`` x (ReLU, separable conv 3x3, batch norm), an optional max-pool, a shortcut.

    The shortcut is the identity when the shape is kept, otherwise a strided 1x1 convolution and batch norm.

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: number of input channels.
        out_channels: number of output channels.
        reps: number of separable convolutions.
        stride: stride of the closing 3x3 max-pool (1: no pool) and of the shortcut convolution.
        start_with_relu: whether the block opens with a ReLU (False for the first entry-flow block, which
            follows a ReLU already).
        grow_first: whether the first separable convolution changes the channel count (True) or the last one
            (False, the exit-flow block 728 -> 1024).
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        reps: int,
        stride: int = 1,
        start_with_relu: bool = True,
        grow_first: bool = True,
    ) -> None:
        super().__init__()
        if reps < 1:
            raise ValueError(f"reps must be at least 1, got {reps}.")
        relu = Act[Act.RELU]
        norm = Norm[Norm.BATCH, spatial_dims]
        self.skip: nn.Module | None = None
        self.skipbn: nn.Module | None = None
        if out_channels != in_channels or stride != 1:
            self.skip = Conv[Conv.CONV, spatial_dims](in_channels, out_channels, 1, stride=stride, bias=False)
            self.skipbn = norm(out_channels)

        layers: list[nn.Module] = []
        for i in range(reps):
            if grow_first:
                cin, cout = (in_channels if i == 0 else out_channels), out_channels
            else:
                cin, cout = in_channels, (in_channels if i < reps - 1 else out_channels)
            # the first ReLU must not overwrite the block input, which the shortcut still needs
            layers.append(relu(inplace=i > 0))
            layers.append(SeparableConv(spatial_dims, cin, cout, kernel_size=3, padding=1))
            layers.append(norm(cout))
        if not start_with_relu:
            layers = layers[1:]
        if stride != 1:
            layers.append(Pool[Pool.MAX, spatial_dims](kernel_size=3, stride=stride, padding=1))
        self.rep = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.rep(x)
        if self.skip is not None and self.skipbn is not None:
            return out + self.skipbn(self.skip(x))
        return out + x
