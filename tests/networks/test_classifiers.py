"""Tests for the classifiers in monaicxr.networks.nets and their registry.

``ClassifierChecks`` holds the generic checks every registered classifier must pass (forward shape, odd input
sizes, backward, state_dict round trip, TorchScript); each network's test class only subclasses it and adds
what is specific to it (parameter counts, layer names, loading local pretrained weights).
"""

from __future__ import annotations

import json
from typing import Any

import monai.networks.nets.densenet
import pytest
import torch
import torch.hub
import torch.utils.model_zoo
from torch import nn

from monaicxr.networks.nets.registry import CLASSIFIERS, build_classifier
from monaicxr.networks.nets.simple_cnn import SimpleCNN, l2_param_groups
from monaicxr.networks.nets.vgg16 import VGG16Classifier
from monaicxr.networks.nets.xception import XceptionClassifier

RECIPE_A = {"in_channels": 1, "num_classes": 3, "conv_channels": [32, 16, 16], "dense": [512, 256]}
RECIPE_B = {
    "in_channels": 1,
    "num_classes": 1,
    "conv_channels": [32, 64, 64, 128, 256],
    "batch_norm": True,
    "dense": [128],
    "spatial_size": [150, 150],
}


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def save_torchvision_vgg16(tmp_path, batch_norm: bool = False):
    """Save a state_dict laid out like torchvision's vgg16 / vgg16_bn: features.* and a classifier.* to ignore."""
    torch.manual_seed(2)
    state = {f"features.{k}": v for k, v in VGG16Classifier(batch_norm=batch_norm).features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(4, 4)  # torchvision's is 4096 x 25088
    state["classifier.6.bias"] = torch.zeros(1000)
    path = tmp_path / ("vgg16_bn-6c64b313.pth" if batch_norm else "vgg16-397923af.pth")
    torch.save(state, path)
    return path, state


class ClassifierChecks:
    """Generic checks; a subclass sets the registry name, the arguments and the input sizes."""

    name: str = ""
    kwargs: dict[str, Any] = {}
    size: tuple[int, int] = (64, 64)
    odd_size: tuple[int, int] | None = (45, 53)
    size_arg: str | None = None  # the constructor argument that fixes the input size, if any
    jit: str = "script"  # "script" or "trace"
    batch: int = 2

    def build(self, size: tuple[int, int] | None = None, seed: int = 0) -> nn.Module:
        torch.manual_seed(seed)
        kwargs = dict(self.kwargs)
        if self.size_arg and size is not None:
            kwargs[self.size_arg] = list(size)
        return build_classifier(self.name, **kwargs)

    @property
    def in_channels(self) -> int:
        return self.kwargs.get("in_channels", 3)

    @property
    def num_classes(self) -> int:
        return self.kwargs["num_classes"]

    def image(self, size: tuple[int, int], batch: int | None = None) -> torch.Tensor:
        return torch.randn(batch or self.batch, self.in_channels, *size)

    def test_kwargs_are_json(self):
        assert json.loads(json.dumps(self.kwargs)) == self.kwargs

    def test_forward_shape(self):
        net = self.build(self.size).eval()
        with torch.no_grad():
            out = net(self.image(self.size))
        assert out.shape == (self.batch, self.num_classes)
        assert torch.isfinite(out).all()

    def test_odd_size(self):
        if self.odd_size is None:
            pytest.skip("fixed input size")
        net = self.build(self.odd_size).eval()
        with torch.no_grad():
            assert net(self.image(self.odd_size)).shape == (self.batch, self.num_classes)

    def test_backward(self):
        net = self.build(self.size).train()
        net(self.image(self.size)).sum().backward()
        grads = [p.grad for p in net.parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)

    def test_state_dict_round_trip(self, tmp_path):
        net = self.build(self.size).eval()
        torch.save(net.state_dict(), tmp_path / "weights.pt")
        other = self.build(self.size, seed=1)
        other.load_state_dict(torch.load(tmp_path / "weights.pt", weights_only=True))
        other.eval()
        x = self.image(self.size)
        with torch.no_grad():
            torch.testing.assert_close(other(x), net(x))

    @pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
    def test_torchscript(self):
        net = self.build(self.size).eval()
        x = self.image(self.size)
        with torch.no_grad():
            compiled = torch.jit.script(net) if self.jit == "script" else torch.jit.trace(net, x)
            torch.testing.assert_close(compiled(x), net(x))
            y = self.image(self.size)
            torch.testing.assert_close(compiled(y), net(y))


class TestSimpleCNNRecipeA(ClassifierChecks):
    name = "simple_cnn"
    kwargs = RECIPE_A
    size = (100, 100)
    odd_size = (37, 51)
    size_arg = "spatial_size"

    def test_parameter_count(self):
        # 100 -> conv 98 -> pool 49 -> 47 -> 23 -> 21 -> 10: flatten 16 * 10 * 10
        convs = (1 * 9 + 1) * 32 + (32 * 9 + 1) * 16 + (16 * 9 + 1) * 16
        dense = (1600 + 1) * 512 + (512 + 1) * 256 + (256 + 1) * 3
        assert convs + dense == 959_075
        assert n_params(self.build()) == convs + dense

    def test_wrong_input_size(self):
        with pytest.raises(ValueError, match=r"built for spatial_size \[100, 100\]"):
            self.build()(torch.zeros(1, 1, 64, 64))

    def test_too_small(self):
        with pytest.raises(ValueError, match="too small"):
            SimpleCNN(spatial_size=8)

    def test_l2_param_groups(self):
        net = self.build()
        groups = l2_param_groups(net, 0.002)
        conv, other = groups[0]["params"], groups[1]["params"]
        assert [tuple(p.shape) for p in conv] == [(32, 1, 3, 3), (16, 32, 3, 3), (16, 16, 3, 3)]
        assert (groups[0]["weight_decay"], groups[1]["weight_decay"]) == (0.002, 0.0)
        assert {id(p) for p in conv} | {id(p) for p in other} == {id(p) for p in net.parameters()}
        assert len(conv) + len(other) == len(list(net.parameters()))
        torch.optim.Adam(groups, lr=1e-3)  # accepted as param groups

    def test_l2_param_groups_any_model(self):
        groups = l2_param_groups(VGG16Classifier(), 1e-4)
        assert len(groups[0]["params"]) == 13


class TestSimpleCNNRecipeB(ClassifierChecks):
    name = "simple_cnn"
    kwargs = RECIPE_B
    size = (150, 150)
    odd_size = (97, 111)
    size_arg = "spatial_size"

    def test_parameter_count(self):
        # 150 -> 148 -> 74 -> 72 -> 36 -> 34 -> 17 -> 15 -> 7 -> 5 -> 2: flatten 256 * 2 * 2
        # each stage: 3x3 kernels + bias, then batch norm's weight and bias
        convs = (
            (1 * 9 + 1) * 32
            + 2 * 32
            + (32 * 9 + 1) * 64
            + 2 * 64
            + (64 * 9 + 1) * 64
            + 2 * 64
            + (64 * 9 + 1) * 128
            + 2 * 128
            + (128 * 9 + 1) * 256
            + 2 * 256
        )
        dense = (256 * 2 * 2 + 1) * 128 + (128 + 1) * 1
        assert convs + dense == 557_185
        assert n_params(self.build()) == convs + dense


class TestVGG16(ClassifierChecks):
    name = "vgg16"
    kwargs = {"in_channels": 3, "num_classes": 3}
    size = (64, 64)
    odd_size = (45, 53)

    def test_parameter_count(self):
        net = VGG16Classifier()
        assert n_params(net.features) == 14_714_688  # torchvision vgg16 features
        assert n_params(net.head) == (512 + 1) * 128 + (128 + 1) * 3

    def test_torchvision_names(self):
        conv_ids = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
        keys = [k for k in VGG16Classifier().state_dict() if k.startswith("features.")]
        assert keys == [f"features.{i}.{p}" for i in conv_ids for p in ("weight", "bias")]

    def test_load_pretrained(self, tmp_path):
        path, state = save_torchvision_vgg16(tmp_path)
        net = VGG16Classifier()
        head = {k: v.clone() for k, v in net.head.state_dict().items()}
        loaded = net.load_pretrained(path)
        assert len(loaded) == 26
        for key, value in net.state_dict().items():
            if key.startswith("features."):
                torch.testing.assert_close(value, state[key])
        for key, value in net.head.state_dict().items():
            torch.testing.assert_close(value, head[key])
        built = VGG16Classifier(num_classes=2, pretrained_path=str(path))
        torch.testing.assert_close(built.features[28].weight, state["features.28.weight"])

    def test_one_channel_sums_rgb(self, tmp_path):
        path, state = save_torchvision_vgg16(tmp_path)
        grey = VGG16Classifier(in_channels=1, pretrained_path=str(path)).eval()
        rgb = VGG16Classifier(in_channels=3, pretrained_path=str(path)).eval()
        torch.testing.assert_close(grey.features[0].weight, state["features.0.weight"].sum(1, keepdim=True))
        rgb.head.load_state_dict(grey.head.state_dict())
        x = torch.rand(1, 1, 32, 32)
        with torch.no_grad():
            torch.testing.assert_close(grey(x), rgb(x.expand(-1, 3, -1, -1)), rtol=1e-4, atol=1e-5)

    def test_missing_file(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="vgg16-397923af.pth"):
            VGG16Classifier(pretrained_path=str(tmp_path / "vgg16-397923af.pth"))

    def test_mismatched_keys(self, tmp_path):
        path, _ = save_torchvision_vgg16(tmp_path)
        with pytest.raises(ValueError, match=r"missing key\(s\): features\.1\.bias, features\.1\.running_mean"):
            VGG16Classifier(batch_norm=True).load_pretrained(path)

    def test_mismatched_shape(self, tmp_path):
        path, state = save_torchvision_vgg16(tmp_path)
        state["features.2.weight"] = torch.zeros(64, 32, 3, 3)
        torch.save(state, path)
        with pytest.raises(ValueError, match=r"wrong shape.*features\.2\.weight"):
            VGG16Classifier().load_pretrained(path)


class TestVGG16BatchNormGrey(ClassifierChecks):
    name = "vgg16"
    kwargs = {"in_channels": 1, "num_classes": 2, "batch_norm": True, "head_hidden": 64}
    size = (64, 64)
    odd_size = (33, 47)

    def test_load_pretrained_bn(self, tmp_path):
        path, state = save_torchvision_vgg16(tmp_path, batch_norm=True)
        del state["features.1.num_batches_tracked"]  # older torchvision files lack the counters
        torch.save(state, path)
        net = self.build()
        net.load_pretrained(path)
        torch.testing.assert_close(net.features[40].weight, state["features.40.weight"])
        torch.testing.assert_close(net.features[41].running_var, state["features.41.running_var"])


class TestXception(ClassifierChecks):
    name = "xception"
    kwargs = {"in_channels": 3, "num_classes": 3}
    size = (71, 71)
    odd_size = (67, 75)

    def test_parameter_count(self):
        net = XceptionClassifier(num_classes=1000)
        top = n_params(net.fc)
        running = sum(b.numel() for k, b in net.named_buffers() if k.endswith(("running_mean", "running_var")))
        assert top == 2049 * 1000
        assert n_params(net) - top == 20_806_952  # trainable, without the top
        assert n_params(net) - top + running == 20_861_480  # Keras' count without the top
        assert n_params(net) + running == 22_910_480  # Keras' count with the top

    def test_names(self):
        state = XceptionClassifier().state_dict()
        shapes = {
            "conv1.weight": (32, 3, 3, 3),
            "bn2.running_var": (64,),
            "block1.rep.0.conv1.weight": (64, 1, 3, 3),
            "block1.rep.0.pointwise.weight": (128, 64, 1, 1),
            "block1.skip.weight": (128, 64, 1, 1),
            "block1.skipbn.weight": (128,),
            "block2.rep.1.pointwise.weight": (256, 128, 1, 1),
            "block4.rep.7.pointwise.weight": (728, 728, 1, 1),
            "block12.rep.4.pointwise.weight": (1024, 728, 1, 1),
            "block12.rep.5.running_mean": (1024,),
            "conv3.conv1.weight": (1024, 1, 3, 3),
            "conv4.pointwise.weight": (2048, 1536, 1, 1),
            "bn4.bias": (2048,),
            "fc.weight": (3, 2048),
        }
        for key, shape in shapes.items():
            assert tuple(state[key].shape) == shape, key
        assert not any(k.startswith("block4.skip") for k in state)

    def test_load_pretrained_cadene_layout(self, tmp_path):
        torch.manual_seed(3)
        state = {k: v for k, v in XceptionClassifier(num_classes=1000).state_dict().items() if not k.startswith("fc.")}
        state["last_linear.weight"] = torch.zeros(1000, 2048)
        state["block5.rep.4.pointwise.weight"] = state["block5.rep.4.pointwise.weight"].flatten(1)  # stored 2-D
        path = tmp_path / "xception.pth"
        torch.save(state, path)
        net = XceptionClassifier(in_channels=1, num_classes=2, pretrained_path=str(path))
        loaded = net.state_dict()
        torch.testing.assert_close(loaded["conv1.weight"], state["conv1.weight"].sum(1, keepdim=True))
        torch.testing.assert_close(
            loaded["block5.rep.4.pointwise.weight"].flatten(1), state["block5.rep.4.pointwise.weight"]
        )
        torch.testing.assert_close(loaded["bn4.running_var"], state["bn4.running_var"])
        with pytest.raises(FileNotFoundError, match="nothing.pth"):
            net.load_pretrained(tmp_path / "nothing.pth")
        del state["block7.rep.2.weight"]
        torch.save(state, path)
        with pytest.raises(ValueError, match=r"1 missing key\(s\): block7\.rep\.2\.weight"):
            net.load_pretrained(path)


class TestDenseNet121(ClassifierChecks):
    name = "densenet121"
    kwargs = {"in_channels": 1, "num_classes": 3}
    jit = "trace"


class TestEfficientNetB0(ClassifierChecks):
    name = "efficientnet_b0"
    kwargs = {"in_channels": 1, "num_classes": 3}
    jit = "trace"

    def build(self, size=None, seed=0):
        net = super().build(size, seed)
        net.set_swish(memory_efficient=False)  # the memory-efficient Swish is a custom autograd function
        return net


class TestEfficientNetLite0(ClassifierChecks):
    name = "efficientnet_lite0"
    kwargs = {"in_channels": 1, "num_classes": 3}
    jit = "trace"


def test_registry_names():
    names = ["densenet121", "efficientnet_b0", "efficientnet_lite0", "simple_cnn", "vgg16", "xception"]
    assert sorted(CLASSIFIERS) == names
    with pytest.raises(ValueError, match=", ".join(names)):
        build_classifier("resnet50")


@pytest.mark.parametrize("name", ["densenet121", "efficientnet_b0"])
def test_registry_refuses_download(name):
    with pytest.raises(ValueError, match="never downloads"):
        build_classifier(name, pretrained=True)


def test_nothing_downloads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(torch.utils.model_zoo, "load_url", refuse)
    monkeypatch.setattr(monai.networks.nets.densenet, "load_state_dict_from_url", refuse)
    for name in CLASSIFIERS:
        build_classifier(name, in_channels=1, num_classes=2)


class TestSimpleCNNPoolOrder:
    """Max-pooling before a monotonic activation: the same outputs, gradients and state_dict as after it."""

    @pytest.mark.parametrize("kwargs", [RECIPE_A, RECIPE_B], ids=["recipe_a", "recipe_b"])
    def test_same_outputs_and_gradients(self, kwargs):
        size = tuple(kwargs.get("spatial_size", (100, 100)))
        after = SimpleCNN(**{**kwargs, "spatial_size": size}, pool_before_act=False)
        before = SimpleCNN(**{**kwargs, "spatial_size": size})
        assert before.pool_before_act and not after.pool_before_act
        assert list(before.state_dict()) == list(after.state_dict())
        before.load_state_dict(after.state_dict())
        x = torch.randn(3, 1, *size)
        torch.manual_seed(5)  # training mode: the same dropout masks, drawn in the same order
        y_after = after.train()(x)
        torch.manual_seed(5)
        y_before = before.train()(x)
        assert torch.equal(y_after, y_before)
        y_after.square().sum().backward()
        y_before.square().sum().backward()
        for (name, p), q in zip(after.named_parameters(), before.parameters(), strict=True):
            assert torch.equal(p.grad, q.grad), name
        # the activation really moved: stage = conv, pool, activation, dropout
        assert [type(m).__name__ for m in before.features[0]] == ["Convolution", "MaxPool2d", "ReLU", "Dropout"]
        assert [type(m).__name__ for m in after.features[0]] == ["Convolution", "MaxPool2d", "Dropout"]

    @pytest.mark.parametrize(
        "pool, act, expected",
        [
            ("max", "relu", True),
            ("max", ("leakyrelu", {"negative_slope": 0.1}), True),
            ("max", ("leakyrelu", {"negative_slope": -0.1}), False),  # not monotonic
            ("max", "gelu", False),  # not monotonic
            ("max", "prelu", False),  # its slope is learned and may turn negative
            ("avg", "relu", False),  # averaging does not commute with the activation
        ],
    )
    def test_auto_only_where_exact(self, pool, act, expected):
        assert SimpleCNN(pool=pool, act=act).pool_before_act is expected

    def test_refuses_inexact_request(self):
        with pytest.raises(ValueError, match="pool_before_act=True changes the network"):
            SimpleCNN(pool="avg", pool_before_act=True)
