"""U²-Net: a two-level nested U-structure of residual U-blocks, with deep supervision and an optional
classification head.

Qin, X., Zhang, Z., Huang, C., Dehghan, M., Zaiane, O. R., Jagersand, M.,
"U²-Net: Going deeper with nested U-structure for salient object detection",
Pattern Recognition 106, 107404, 2020. https://arxiv.org/abs/2005.09007
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
from monai.networks.layers.factories import Conv, Pool

from monaicxr.networks.blocks.rsu import RSUBlock, interpolation_mode, upsample_like

__all__ = ["U2NET_CONFIGS", "U2Net"]

# (height, dilated) of each stage, as in the paper: En_1..En_6 then De_5..De_1
_ENCODER_BLOCKS = ((7, False), (6, False), (5, False), (4, False), (4, True), (4, True))
_DECODER_BLOCKS = ((4, True), (4, False), (5, False), (6, False), (7, False))


class U2Net(nn.Module):
    """U²-Net for binary or multi-class segmentation, optionally with an image-level classification head.

    Six encoder stages (RSU-7, RSU-6, RSU-5, RSU-4, RSU-4F, RSU-4F, with a 2x max-pooling between stages)
    and five decoder stages (De_5..De_1: RSU-4F, RSU-4, RSU-5, RSU-6, RSU-7), each decoder stage taking the
    concatenation of the upsampled deeper stage and the encoder stage of the same resolution (Qin et al. 2020,
    Fig. 5). Six side outputs (a 3x3 convolution to ``out_channels`` on De_1..De_5 and En_6, upsampled to the input
    size) are fused by a 1x1 convolution over their concatenation.

    Widths come from ``config``: ``"full"`` is the paper's U²-Net (44.0 M parameters for 3 input channels and 1
    output channel), ``"small"`` its U²-Net† (1.13 M: 16 inner and 64 output channels in every block); see
    :data:`U2NET_CONFIGS`. Input sizes need not be multiples of anything: pooling uses ``ceil_mode`` and every
    upsampling resizes to the exact size of the skip connection. En_6 works at 1/32 of the input size, so with
    instance normalization (or batch normalization on a batch of one in training) the input must be larger than
    32 along at least one axis.

    The state_dict holds the same tensors, in the same order and of the same shapes, as the official
    implementation's (github.com/xuebinqin/U-2-Net, ``U2NET`` / ``U2NETP``), so its released weights can be
    loaded by position; with them the fused output equals the official one before its sigmoid.

    All outputs are logits: apply a sigmoid (the paper's binary cross-entropy on each output) or a softmax in the
    loss or post-processing.

    Output:
        - ``self.training and deep_supervision``: a list ``[fused, side1, ..., side6]`` of seven tensors of shape
          ``(B, out_channels, *input_size)``, ``side1`` being the finest (De_1). This is what
          ``monai.losses.DeepSupervisionLoss`` accepts; the paper sums the seven losses with equal weights, i.e.
          ``DeepSupervisionLoss(loss, weight_mode="same")``.
        - otherwise (eval mode, or ``deep_supervision=False``): the fused tensor alone.
        - with ``num_classes > 0``: a tuple ``(segmentation_output, class_logits)``, the first being as above and
          ``class_logits`` of shape ``(B, num_classes)`` (global average pool of En_6, dropout, linear).

    Args:
        spatial_dims: number of spatial dimensions; 2 for radiographs (3 works through the same factories).
        in_channels: number of input channels.
        out_channels: number of segmentation output channels.
        config: name of a width configuration in :data:`U2NET_CONFIGS` (``"full"`` or ``"small"``), or a mapping
            of the same form: ``{"encoder": [[mid, out]] * 6, "decoder": [[mid, out]] * 5}`` for En_1..En_6 and
            De_5..De_1; input channels and side-output widths follow from it.
        deep_supervision: in training mode, return the six side outputs along with the fused output.
        num_classes: size of the classification head on the deepest encoder features; 0 for none.
        dropout: dropout probability before the classification head's linear layer.
        norm: normalization type and arguments of every convolution, as for ``monai.networks.blocks.Convolution``.
        act: activation type and arguments of every convolution, as for ``monai.networks.blocks.Convolution``.

    Example::

        >>> net = U2Net(spatial_dims=2, in_channels=1, out_channels=1, config="small").eval()
        >>> net(torch.rand(2, 1, 63, 71)).shape
        torch.Size([2, 1, 63, 71])
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        config: str | Mapping[str, Sequence[Sequence[int]]] = "full",
        deep_supervision: bool = True,
        num_classes: int = 0,
        dropout: float = 0.0,
        norm: tuple | str = ("batch", {}),
        act: tuple | str = ("relu", {"inplace": True}),
    ) -> None:
        super().__init__()
        encoder_widths, decoder_widths = _resolve_config(config)
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}.")
        self.deep_supervision = deep_supervision
        self.num_classes = num_classes
        self.mode = interpolation_mode(spatial_dims)

        encoder = []
        channels = in_channels
        for (height, dilated), (mid, out) in zip(_ENCODER_BLOCKS, encoder_widths, strict=True):
            encoder.append(RSUBlock(spatial_dims, channels, mid, out, height, dilated, norm, act))
            channels = out
        self.encoder = nn.ModuleList(encoder)

        # decoder[i] is De_{5 - i}: it sees the deeper stage's output and the skip from En_{5 - i}
        enc_out = [out for _, out in encoder_widths]
        decoder = []
        for i, ((height, dilated), (mid, out)) in enumerate(zip(_DECODER_BLOCKS, decoder_widths, strict=True)):
            decoder.append(RSUBlock(spatial_dims, channels + enc_out[4 - i], mid, out, height, dilated, norm, act))
            channels = out
        self.decoder = nn.ModuleList(decoder)

        # side[i] is side_{i + 1}: on De_1, ..., De_5, then En_6
        side_in = [out for _, out in reversed(decoder_widths)] + [enc_out[-1]]
        conv_type = Conv[Conv.CONV, spatial_dims]
        self.side = nn.ModuleList([conv_type(c, out_channels, kernel_size=3, padding=1) for c in side_in])
        self.fuse = conv_type(len(side_in) * out_channels, out_channels, kernel_size=1)
        self.pool = Pool[Pool.MAX, spatial_dims](kernel_size=2, stride=2, ceil_mode=True)

        self.classifier: nn.Module | None = None
        if num_classes > 0:
            self.classifier = nn.Sequential(
                Pool[Pool.ADAPTIVEAVG, spatial_dims](1),
                nn.Flatten(1),
                nn.Dropout(dropout),
                nn.Linear(enc_out[-1], num_classes),
            )

    def forward(self, x: torch.Tensor) -> Any:
        """See the class docstring for what is returned in each mode."""
        skips: list[torch.Tensor] = []
        h = x
        for i, enc in enumerate(self.encoder):
            if i > 0:
                h = self.pool(h)
            h = enc(h)
            skips.append(h)
        deepest = h

        levels: list[torch.Tensor] = [deepest]  # becomes [De_1, ..., De_5, En_6]
        for i, dec in enumerate(self.decoder):
            skip = skips[4 - i]
            h = dec(torch.cat([upsample_like(h, skip, self.mode), skip], dim=1))
            levels.insert(0, h)

        sides: list[torch.Tensor] = []
        for i, side in enumerate(self.side):
            sides.append(upsample_like(side(levels[i]), x, self.mode))
        fused = self.fuse(torch.cat(sides, dim=1))

        seg: Any = [fused] + sides if self.training and self.deep_supervision else fused
        if self.classifier is not None:
            return seg, self.classifier(deepest)
        return seg


def _resolve_config(
    config: str | Mapping[str, Sequence[Sequence[int]]],
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Look ``config`` up in :data:`U2NET_CONFIGS` (or check a custom mapping) and return its (mid, out) widths."""
    if isinstance(config, str):
        if config not in U2NET_CONFIGS:
            raise ValueError(f"Unknown U2Net config {config!r}; valid names: {sorted(U2NET_CONFIGS)}.")
        config = U2NET_CONFIGS[config]
    try:
        encoder = [(int(mid), int(out)) for mid, out in config["encoder"]]
        decoder = [(int(mid), int(out)) for mid, out in config["decoder"]]
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(
            f'A U2Net config must be {{"encoder": 6 [mid, out] pairs, "decoder": 5 [mid, out] pairs}}, got {config!r}.'
        ) from e
    if len(encoder) != len(_ENCODER_BLOCKS) or len(decoder) != len(_DECODER_BLOCKS):
        raise ValueError(f"A U2Net config needs 6 encoder and 5 decoder [mid, out] pairs, got {config!r}.")
    return encoder, decoder


# Widths (mid_channels, out_channels) of En_1..En_6 and De_5..De_1, as in the official implementation
# (github.com/xuebinqin/U-2-Net, model/u2net.py: U2NET and U2NETP).
U2NET_CONFIGS: dict[str, dict[str, tuple[tuple[int, int], ...]]] = {
    "full": {
        "encoder": ((32, 64), (32, 128), (64, 256), (128, 512), (256, 512), (256, 512)),
        "decoder": ((256, 512), (128, 256), (64, 128), (32, 64), (16, 64)),
    },
    "small": {
        "encoder": ((16, 64), (16, 64), (16, 64), (16, 64), (16, 64), (16, 64)),
        "decoder": ((16, 64), (16, 64), (16, 64), (16, 64), (16, 64)),
    },
}
