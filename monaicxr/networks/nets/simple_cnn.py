"""A small configurable CNN: conv-pool-dropout stages, flatten, dense layers, logits.

The chest X-ray studies this toolkit reproduces train such networks from scratch, with two recipes that this
class expresses through its arguments alone:

* 3-class (COVID-19 / pneumonia / normal) at 100 x 100: convolutions of 32, 16, 16 channels (3x3), each followed
  by 2x2 max-pooling and dropout, dense layers of 512 and 256, softmax over 3 outputs, L2 on the convolution
  kernels::

      SimpleCNN(in_channels=1, num_classes=3, conv_channels=(32, 16, 16), dense=(512, 256), spatial_size=(100, 100))

* binary at 150 x 150 grayscale: convolutions of 32, 64, 64, 128, 256 channels with batch norm, max-pooling and
  dropout, a dense layer of 128 and one sigmoid output::

      SimpleCNN(in_channels=1, num_classes=1, conv_channels=(32, 64, 64, 128, 256), batch_norm=True,
                dense=(128,), spatial_size=(150, 150))

This is not a published architecture: it mirrors the studies' Keras ``Conv2D`` / ``MaxPooling2D`` / ``Dropout`` /
``Flatten`` / ``Dense`` models, so padding is "valid" and pooling floors, as in Keras.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from monai.networks.blocks import Convolution
from monai.networks.layers import Pool
from monai.networks.layers.utils import get_act_layer
from monai.utils import ensure_tuple_rep
from torch import nn

from monaicxr.networks.blocks.dropout import Dropout

__all__ = ["SimpleCNN", "l2_param_groups"]

_POOLS = {"max": Pool.MAX, "avg": Pool.AVG}


class SimpleCNN(nn.Module):
    """Conv-pool-dropout stages, flatten, dense layers with dropout, and a linear layer producing logits.

    Each stage is ``Convolution`` (``kernel_size``, stride 1, optional batch norm, activation), a 2x2 pooling and
    dropout. The feature map is flattened, as in the studies, so the network is built for one input size,
    ``spatial_size``, and the first dense layer's size (and so the parameter count and the state_dict) is
    fixed by it; a differently sized input raises a ValueError. Adaptive pooling was not used because the
    studies flatten, which keeps the position information a global pool would drop.

    The output is logits: the loss applies softmax (``CrossEntropyLoss``) or sigmoid (``BCEWithLogitsLoss``).
    For a binary task the studies used one sigmoid output: ``num_classes=1``.

    L2 regularization of the convolutions (Keras ``kernel_regularizer=l2(lam)``) is optimizer weight decay on
    :meth:`conv_parameters` only; see :func:`l2_param_groups`.

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: number of input channels.
        num_classes: number of output logits (1 for a binary sigmoid output).
        conv_channels: output channels of the convolution stages.
        kernel_size: convolution kernel size.
        batch_norm: whether each convolution is followed by batch norm (before the activation).
        dropout: dropout probability after each conv-pool stage (:class:`monaicxr.networks.blocks.Dropout`:
            ``nn.Dropout`` with a mask drawn faster on the CPU).
        dense: widths of the hidden dense layers.
        dense_dropout: dropout probability after each hidden dense layer.
        pool: "max" or "avg" 2x2 pooling.
        act: activation, a MONAI activation name or ``(name, {args})``.
        spatial_size: input spatial size (one int for all dimensions) the network is built for.
        padding: "valid" (no padding, Keras' default) or "same" (``kernel_size // 2``, odd kernels).
        pool_before_act: apply the max-pooling before the activation instead of after it. The two orders give
            bit-identical outputs, and the same gradients, when the activation is monotonic non-decreasing
            (max-pooling picks the same element either way), and pooling first runs the activation and its
            backward pass on a quarter of the values (the binary recipe's CPU step: 88.4 to 96.6 images/s, see
            docs/BENCHMARKS.md). None (default): on for max-pooling with a monotonic activation (relu, relu6,
            leaky relu and elu with non-negative slopes, selu, celu, sigmoid, tanh), off otherwise. The
            parameters and state_dict keys are the same in both orders.

    Example::

        net = SimpleCNN(num_classes=3, spatial_size=(100, 100))
        logits = net(torch.zeros(4, 1, 100, 100))  # (4, 3)
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        num_classes: int = 3,
        conv_channels: Sequence[int] = (32, 16, 16),
        kernel_size: int = 3,
        batch_norm: bool = False,
        dropout: float = 0.25,
        dense: Sequence[int] = (512, 256),
        dense_dropout: float = 0.5,
        pool: str = "max",
        act: str | tuple = "relu",
        spatial_size: Sequence[int] | int = (100, 100),
        padding: str = "valid",
        pool_before_act: bool | None = None,
    ) -> None:
        super().__init__()
        if pool not in _POOLS:
            raise ValueError(f"pool must be one of {sorted(_POOLS)}, got {pool!r}.")
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}.")
        pad = kernel_size // 2 if padding == "same" else 0
        monotonic = _is_monotonic(act)
        if pool_before_act is None:
            pool_before_act = pool == "max" and monotonic
        elif pool_before_act and not (pool == "max" and monotonic):
            raise ValueError(
                f"pool_before_act=True changes the network unless the pooling is 'max' and the activation is "
                f"monotonic non-decreasing; got pool={pool!r}, act={act!r}."
            )
        self.pool_before_act = bool(pool_before_act)
        self.spatial_size = tuple(int(s) for s in ensure_tuple_rep(spatial_size, spatial_dims))
        self._input_shape = list(self.spatial_size)  # a list, for TorchScript's comparison with x.shape

        stages: list[nn.Module] = []
        size = list(self.spatial_size)
        channels = in_channels
        for i, out in enumerate(conv_channels):
            conv = Convolution(
                spatial_dims,
                channels,
                out,
                kernel_size=kernel_size,
                act=None if self.pool_before_act else act,
                norm="batch" if batch_norm else None,
                adn_ordering="NA",
                padding=pad,
            )
            stage_pool = Pool[_POOLS[pool], spatial_dims](kernel_size=2)
            if self.pool_before_act:  # the activation has no parameters: the state_dict keys do not change
                stages.append(nn.Sequential(conv, stage_pool, get_act_layer(act), Dropout(dropout)))
            else:
                stages.append(nn.Sequential(conv, stage_pool, Dropout(dropout)))
            size = [(s + 2 * pad - kernel_size + 1) // 2 for s in size]
            if min(size) < 1:
                raise ValueError(
                    f"spatial_size {self.spatial_size} is too small for {len(conv_channels)} conv-pool stages "
                    f"(nothing left after stage {i + 1})."
                )
            channels = out
        self.features = nn.Sequential(*stages)

        head: list[nn.Module] = [nn.Flatten(1)]
        width = channels * math.prod(size)
        for hidden in dense:
            head += [nn.Linear(width, hidden), get_act_layer(act), Dropout(dense_dropout)]
            width = hidden
        head.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*head)

    def conv_parameters(self) -> Iterator[nn.Parameter]:
        """Yield the convolution kernels (not biases, not batch norm): the weights Keras' L2 applies to."""
        for m in self.features.modules():
            if isinstance(m, nn.modules.conv._ConvNd):
                yield m.weight

    def other_parameters(self) -> Iterator[nn.Parameter]:
        """Yield every parameter that :meth:`conv_parameters` does not."""
        conv = {id(p) for p in self.conv_parameters()}
        for p in self.parameters():
            if id(p) not in conv:
                yield p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if list(x.shape[2:]) != self._input_shape:
            raise ValueError(
                f"SimpleCNN was built for spatial_size {self._input_shape}, got an input of {x.shape[2:]}."
            )
        return self.classifier(self.features(x))


_MONOTONIC_ACTS = {"relu", "relu6", "leakyrelu", "elu", "selu", "celu", "sigmoid", "tanh"}


def _is_monotonic(act: str | tuple | None) -> bool:
    """Whether a MONAI activation spec is monotonic non-decreasing (so it commutes with max-pooling)."""
    if act is None:  # nothing to move
        return False
    name, args = (act, {}) if isinstance(act, str) else (act[0], dict(act[1]) if len(act) > 1 else {})
    if not isinstance(name, str) or name.lower() not in _MONOTONIC_ACTS:
        return False
    return all(float(args.get(k, 0.0)) >= 0 for k in ("negative_slope", "alpha"))


def l2_param_groups(
    model: nn.Module, conv_weight_decay: float, other_weight_decay: float = 0.0
) -> list[dict[str, object]]:
    """Optimizer parameter groups that put weight decay on the convolution kernels only.

    Uses ``model.conv_parameters()`` / ``model.other_parameters()`` when the model has them, otherwise the
    weights of every convolution module. Keras' ``l2(lam)`` adds ``lam * sum(w ** 2)`` to the loss, whose
    gradient is ``2 * lam * w``: pass ``conv_weight_decay = 2 * lam`` to an optimizer with coupled weight decay
    (``torch.optim.Adam`` or ``SGD``, not ``AdamW``) for the same update.

    Args:
        model: the network.
        conv_weight_decay: weight decay on the convolution kernels.
        other_weight_decay: weight decay on every other parameter.

    Returns:
        two parameter groups, to pass as ``params`` to a ``torch.optim`` optimizer.

    Example::

        "optimizer": {"_target_": "torch.optim.Adam", "lr": 0.001,
                      "params": "$monaicxr.networks.nets.simple_cnn.l2_param_groups(@network_def, 0.002)"}
    """
    if hasattr(model, "conv_parameters") and hasattr(model, "other_parameters"):
        conv, other = list(model.conv_parameters()), list(model.other_parameters())
    else:
        conv = [m.weight for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)]
        ids = {id(p) for p in conv}
        other = [p for p in model.parameters() if id(p) not in ids]
    return [
        {"params": conv, "weight_decay": conv_weight_decay},
        {"params": other, "weight_decay": other_weight_decay},
    ]
