"""Residual U-block (RSU) of U²-Net.

Qin, X., Zhang, Z., Huang, C., Dehghan, M., Zaiane, O. R., Jagersand, M.,
"U²-Net: Going deeper with nested U-structure for salient object detection",
Pattern Recognition 106, 107404, 2020. https://arxiv.org/abs/2005.09007
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from monai.networks.layers.factories import Pool

__all__ = ["RSUBlock", "interpolation_mode", "upsample_like"]

_LINEAR_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


def interpolation_mode(spatial_dims: int) -> str:
    """The (bi/tri)linear ``torch.nn.functional.interpolate`` mode for ``spatial_dims`` (1, 2 or 3)."""
    if spatial_dims not in _LINEAR_MODES:
        raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims}.")
    return _LINEAR_MODES[spatial_dims]


def upsample_like(x: torch.Tensor, ref: torch.Tensor, mode: str) -> torch.Tensor:
    """Resize ``x`` to the spatial size of ``ref`` (no-op when the sizes already agree).

    Resizing to the reference's exact size, rather than by a factor of 2, is what lets odd input sizes
    through the ``ceil_mode`` max-pooling of the encoder.
    """
    if x.shape[2:] == ref.shape[2:]:
        return x
    return F.interpolate(x, size=ref.shape[2:], mode=mode, align_corners=False)


class RSUBlock(nn.Module):
    """Residual U-block RSU-L (and its dilated variant RSU-4F) from U²-Net.

    An input convolution maps ``in_channels`` to ``out_channels`` (the local features); a small U-Net of
    ``height`` levels with ``mid_channels`` channels then extracts multi-scale features from them and its output
    is added back to the local features (Qin et al. 2020, Fig. 2 (e)). Every convolution is the paper's REBNCONV:
    3x3 convolution, normalization, activation.

    ``dilated=False`` (RSU-L): ``height - 1`` encoder convolutions with a 2x max-pooling (``ceil_mode``) between
    them, a bottom convolution with dilation 2, then ``height - 1`` decoder convolutions, each on the
    concatenation of the upsampled deeper features and the encoder's skip features. Upsampling is (bi/tri)linear
    to the skip's exact size, so any input size works.

    ``dilated=True`` (RSU-4F when ``height=4``): no pooling; the encoder convolutions use dilations
    1, 2, 4, ..., the bottom convolution ``2 ** (height - 1)``, and the decoder the encoder's dilations in
    reverse (1, 2, 4, 8 then 4, 2, 1 for RSU-4F). Resolution is kept throughout.

    Args:
        spatial_dims: number of spatial dimensions (2 for images, 3 for volumes).
        in_channels: number of input channels.
        mid_channels: number of channels inside the nested U-structure.
        out_channels: number of output channels.
        height: depth ``L`` of the block (7 for RSU-7, 4 for RSU-4 / RSU-4F); at least 2.
        dilated: use dilated convolutions instead of pooling (the paper's RSU-4F).
        norm: normalization type and arguments, as for ``monai.networks.blocks.Convolution``.
        act: activation type and arguments, as for ``monai.networks.blocks.Convolution``.

    Example::

        >>> block = RSUBlock(2, in_channels=3, mid_channels=16, out_channels=64, height=7)
        >>> block(torch.rand(1, 3, 63, 71)).shape
        torch.Size([1, 64, 63, 71])
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        mid_channels: int,
        out_channels: int,
        height: int,
        dilated: bool = False,
        norm: tuple | str = ("batch", {}),
        act: tuple | str = ("relu", {"inplace": True}),
    ) -> None:
        super().__init__()
        if height < 2:
            raise ValueError(f"RSUBlock height must be at least 2, got {height}.")
        self.dilated = dilated
        self.mode = interpolation_mode(spatial_dims)

        def conv(cin: int, cout: int, dilation: int) -> Convolution:
            return Convolution(spatial_dims, cin, cout, kernel_size=3, dilation=dilation, norm=norm, act=act)

        if dilated:
            enc_dilations = [2**i for i in range(height - 1)]
            bottom_dilation = 2 ** (height - 1)
        else:
            enc_dilations = [1] * (height - 1)
            bottom_dilation = 2

        self.conv_in = conv(in_channels, out_channels, 1)
        self.encoder = nn.ModuleList(
            [conv(out_channels if i == 0 else mid_channels, mid_channels, d) for i, d in enumerate(enc_dilations)]
        )
        self.bottom = conv(mid_channels, mid_channels, bottom_dilation)
        # decoder[i] mirrors encoder[height - 2 - i]: deepest first, the last one maps back to out_channels
        self.decoder = nn.ModuleList(
            [
                conv(2 * mid_channels, out_channels if i == height - 2 else mid_channels, d)
                for i, d in enumerate(reversed(enc_dilations))
            ]
        )
        self.pool = nn.Identity() if dilated else Pool[Pool.MAX, spatial_dims](kernel_size=2, stride=2, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        local = self.conv_in(x)
        skips: list[torch.Tensor] = []
        h = local
        last = len(self.encoder) - 1
        for i, enc in enumerate(self.encoder):
            h = enc(h)
            skips.append(h)
            if i < last:
                h = self.pool(h)
        h = self.bottom(h)
        for i, dec in enumerate(self.decoder):
            skip = skips[last - i]
            if not self.dilated:
                h = upsample_like(h, skip, self.mode)
            h = dec(torch.cat([h, skip], dim=1))
        return h + local
