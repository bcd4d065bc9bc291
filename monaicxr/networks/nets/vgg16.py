"""VGG-16 classifier with a small head, loadable from a locally saved torchvision ImageNet state_dict.

Reference:
    K. Simonyan and A. Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
    ICLR 2015. https://arxiv.org/abs/1409.1556

This module also holds the two small helpers that read a local weights file and load the matching part of it
(:func:`read_state_dict`, :func:`load_pretrained_subset`); :mod:`monaicxr.networks.nets.xception` uses them too.
Nothing here downloads: weights come from a path the user gives.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from monai.networks.layers import Act, Conv, Norm, Pool
from monai.networks.utils import copy_model_state
from torch import nn

__all__ = ["VGG16Classifier", "VGG16_CONFIG", "read_state_dict", "load_pretrained_subset"]

# configuration "D" of the paper: output channels of the 13 convolutions in 5 blocks, each closed by a max-pool
VGG16_CONFIG: tuple[tuple[int, ...], ...] = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))

_SHOWN_KEYS = 5  # how many offending keys an error message names


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state_dict from a local file, never from the network.

    A checkpoint that wraps the weights under ``"state_dict"`` or ``"model"`` is unwrapped, and a ``"module."``
    prefix left by ``DataParallel`` is removed.

    Args:
        path: a file written by ``torch.save(model.state_dict(), path)``.

    Returns:
        the mapping from parameter names to tensors.

    Raises:
        FileNotFoundError: when ``path`` is not a file.
        ValueError: when the file does not hold a mapping of names to tensors.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Pretrained weights file not found: {path!r} (nothing is downloaded; save it there).")
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path!r} does not hold a state_dict (a mapping from parameter names to tensors).")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _shown(keys: Sequence[str]) -> str:
    keys = sorted(keys)
    more = f", ... ({len(keys)} in all)" if len(keys) > _SHOWN_KEYS else ""
    return ", ".join(keys[:_SHOWN_KEYS]) + more


def _adapt(name: str, given: torch.Tensor, expected: torch.Tensor, first_conv: str) -> torch.Tensor | None:
    """Return ``given`` reshaped to ``expected``'s shape where that is meaningful, else None."""
    if given.shape == expected.shape:
        return given
    if name == first_conv and given.dim() == expected.dim() and given.shape[0] == expected.shape[0]:
        if given.shape[1] == 3 and expected.shape[1] == 1 and given.shape[2:] == expected.shape[2:]:
            # a grey image fed to all three RGB inputs gives the same response as the summed filter
            return given.sum(dim=1, keepdim=True)
    if given.dim() == 2 and expected.dim() > 2 and all(s == 1 for s in expected.shape[2:]):
        if given.shape == expected.shape[:2]:  # 1x1 convolution stored as a matrix (some Xception ports)
            return given.reshape(expected.shape)
    return None


def load_pretrained_subset(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    first_conv: str,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> list[str]:
    """Load the part of a local state_dict that a model's backbone expects, strictly.

    The keys compared are those starting with one of ``include`` (all keys when empty) and with none of
    ``exclude``, on both sides; every such key of the model must be in the file with a compatible shape, and
    the file must have no other such key. ``num_batches_tracked`` counters may be absent (older checkpoints).
    The weight named ``first_conv`` may have 3 input channels where the model has 1: the RGB filters are
    summed. The checks and the first-convolution conversion are done here, the copy into the model by MONAI's
    ``monai.networks.utils.copy_model_state`` (which by itself skips a missing or misshapen key silently).

    Args:
        model: the network to load into.
        path: the local weights file.
        first_conv: name of the first convolution's weight, e.g. ``"features.0.weight"``.
        include: key prefixes that make up the backbone.
        exclude: key prefixes to ignore (the checkpoint's own classifier).

    Returns:
        the names of the tensors loaded.

    Raises:
        FileNotFoundError: when ``path`` is not a file.
        ValueError: when keys are missing or unexpected, or a shape cannot be matched.
    """
    include, exclude = tuple(include), tuple(exclude)

    def wanted(key: str) -> bool:
        return (not include or key.startswith(include)) and not (exclude and key.startswith(exclude))

    source = read_state_dict(path)
    given = {k: v for k, v in source.items() if wanted(k)}
    expected = {k: v for k, v in model.state_dict().items() if wanted(k)}
    missing = [k for k in expected if k not in given and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in given if k not in expected]
    name = type(model).__name__
    if missing or unexpected:
        parts = [f"{len(missing)} missing key(s): {_shown(missing)}"] if missing else []
        parts += [f"{len(unexpected)} unexpected key(s): {_shown(unexpected)}"] if unexpected else []
        raise ValueError(
            f"{os.fspath(path)!r} does not match {name}'s backbone: " + "; ".join(parts) + "."
            " Check that the file is the right architecture (e.g. batch_norm on or off)."
        )
    loaded: dict[str, torch.Tensor] = {}
    bad: list[str] = []
    for key, value in given.items():
        adapted = _adapt(key, value, expected[key], first_conv)
        if adapted is None:
            bad.append(f"{key}: file {tuple(value.shape)} vs model {tuple(expected[key].shape)}")
        else:
            loaded[key] = adapted
    if bad:
        raise ValueError(
            f"{os.fspath(path)!r} has tensors of the wrong shape for {name}: " + "; ".join(bad[:_SHOWN_KEYS])
        )
    copy_model_state(model, loaded, inplace=True)
    return sorted(loaded)


class VGG16Classifier(nn.Module):
    """VGG-16 convolutional stack, global average pooling and a small dense head.

    The 13 convolutions (3x3, padding 1) form 5 blocks of 64, 64 / 128, 128 / 256 x3 / 512 x3 / 512 x3
    channels, each block closed by a 2x2 max-pool (Simonyan & Zisserman, ICLR 2015, configuration D). The
    ImageNet classifier (4096, 4096, 1000) is replaced by global average pooling, ``Linear(512, head_hidden)``,
    ReLU, dropout and ``Linear(head_hidden, num_classes)``. The output is logits: apply softmax (or sigmoid)
    in the loss or the post-transforms. Global pooling makes any input of at least 32 x 32 valid.

    Layer names follow torchvision's ``vgg16`` / ``vgg16_bn`` (``features.0.weight`` ... ``features.28.weight``
    without batch norm, ``features.40.weight`` with), so a torchvision ImageNet state_dict saved locally
    (``vgg16-397923af.pth``, or ``vgg16_bn-6c64b313.pth`` with ``batch_norm=True``) loads into ``features`` with
    :meth:`load_pretrained`; torchvision's ``classifier.*`` weights are ignored. With ``in_channels=1`` the
    first convolution's RGB filters are summed, which gives the response the ImageNet network has to the grey
    image copied into all three channels (normalize the grey image with one mean and std).

    Args:
        in_channels: number of input channels (1 for grayscale, 3 for RGB).
        num_classes: number of output logits.
        head_hidden: width of the hidden dense layer; 0 or None for a single linear layer after pooling.
        dropout: dropout probability after the hidden dense layer.
        batch_norm: whether each convolution is followed by batch norm (torchvision's ``vgg16_bn``).
        pretrained_path: local torchvision state_dict to load into ``features``; None for random weights.

    Example::

        net = VGG16Classifier(in_channels=1, num_classes=3, pretrained_path="weights/vgg16-397923af.pth")
        logits = net(torch.zeros(2, 1, 224, 224))  # (2, 3)
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 3,
        head_hidden: int | None = 128,
        dropout: float = 0.5,
        batch_norm: bool = False,
        pretrained_path: str | None = None,
    ) -> None:
        super().__init__()
        conv, pool = Conv[Conv.CONV, 2], Pool[Pool.MAX, 2]
        layers: list[nn.Module] = []
        channels = in_channels
        for block in VGG16_CONFIG:  # torchvision's order, which fixes the indices in features.<i>
            for out in block:
                layers.append(conv(channels, out, kernel_size=3, padding=1))
                if batch_norm:
                    layers.append(Norm[Norm.BATCH, 2](out))
                layers.append(Act[Act.RELU](inplace=True))
                channels = out
            layers.append(pool(kernel_size=2, stride=2))
        self.features = nn.Sequential(*layers)
        self.pool = Pool[Pool.ADAPTIVEAVG, 2](1)
        if head_hidden:
            self.head = nn.Sequential(
                nn.Flatten(1),
                nn.Linear(channels, head_hidden),
                Act[Act.RELU](inplace=True),
                nn.Dropout(dropout),
                nn.Linear(head_hidden, num_classes),
            )
        else:
            self.head = nn.Sequential(nn.Flatten(1), nn.Dropout(dropout), nn.Linear(channels, num_classes))
        self._init_weights()
        if pretrained_path is not None:
            self.load_pretrained(pretrained_path)

    def _init_weights(self) -> None:
        # torchvision's VGG initialization
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def load_pretrained(self, path: str | os.PathLike) -> list[str]:
        """Load a local torchvision VGG-16 state_dict into ``features`` (strictly); ``classifier.*`` is ignored.

        Args:
            path: file saved with ``torch.save(torchvision_vgg16.state_dict(), path)``.

        Returns:
            the names of the tensors loaded.

        Raises:
            FileNotFoundError: when ``path`` is not a file.
            ValueError: when the file's ``features.*`` keys or shapes do not match this network.
        """
        return load_pretrained_subset(self, path, first_conv="features.0.weight", include=("features.",))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)))
