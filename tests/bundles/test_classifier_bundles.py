"""bundles/{densenet121,efficientnet_b0,vgg16,xception}: local pretrained weights, input size, memory format.

Local ImageNet-style weights are loaded from a file named in the config (RGB filters summed for a grey input),
a missing one is an error, a --spatial_size override reaches the resize and the network, and channels_last is
how the networks and batches run. Train -> evaluate -> inference (with the report checked against
scikit-learn) is in test_all_bundles.py, for every bundle.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from bundle_helpers import error_messages, make_workflow
from monai.bundle import ConfigParser

REPO = Path(__file__).resolve().parents[2]
CLASSES = ["COVID-19", "Non-COVID", "Normal"]
BUNDLES = ["densenet121", "efficientnet_b0", "vgg16", "xception"]
SIZE = 32

TINY = {
    "spatial_size": [SIZE, SIZE],
    "batch_size": 8,
    "val_batch_size": 8,
    "num_workers": 0,
    "show_progress": False,
    "save_gallery": False,
    "num_epochs": 1,
}


def _configs(name: str) -> Path:
    return REPO / "bundles" / name / "configs"


# the reference network each bundle's pretrained file comes from, and a backbone tensor to compare
PRETRAINED = {
    "densenet121": ("monai.networks.nets.DenseNet121", {"spatial_dims": 2, "in_channels": 3, "out_channels": 1000,
                                                        "pretrained": False}, "features.conv0.weight"),
    "efficientnet_b0": ("monai.networks.nets.EfficientNetBN", {"model_name": "efficientnet-b0", "pretrained": False,
                                                               "in_channels": 3, "num_classes": 1000}, "_conv_stem.weight"),
    "vgg16": ("monaicxr.networks.nets.VGG16Classifier", {"in_channels": 3, "num_classes": 1000}, "features.0.weight"),
    "xception": ("monaicxr.networks.nets.XceptionClassifier", {"in_channels": 3, "num_classes": 1000}, "conv1.weight"),
}  # fmt: skip


@pytest.mark.parametrize("name", BUNDLES)
def test_pretrained_path_loads_a_local_rgb_state_dict(name, tmp_path):
    """An ImageNet-style (3 channels, 1000 classes) state_dict loads into the 1-channel, 3-class network."""
    target, args, first = PRETRAINED[name]
    reference = ConfigParser({"net": {"_target_": target, **args}}).get_parsed_content("net")
    weights = tmp_path / "weights.pt"
    torch.save(reference.state_dict(), weights)
    wf = make_workflow(_configs(name), TINY, tmp_path / "out", pretrained_path=str(weights))
    net = wf.parser.get_parsed_content("network")
    ref = reference.state_dict()
    got = {k: v.cpu() for k, v in net.state_dict().items()}
    assert torch.allclose(got[first], ref[first].sum(1, keepdim=True))  # RGB filters summed for a grey input
    heads = ("head.", "fc.", "_fc.", "class_layers.")  # the new classifier keeps its own initialisation
    loaded = [k for k in ref if k != first and not k.startswith(heads) and "num_batches" not in k]
    assert len(loaded) > 10 and all(torch.equal(got[k], ref[k]) for k in loaded)


def test_missing_pretrained_file_is_an_error(tmp_path):
    wf = make_workflow(_configs("vgg16"), TINY, tmp_path, pretrained_path=str(tmp_path / "no_weights.pt"))
    with pytest.raises(Exception) as info:
        wf.parser.get_parsed_content("network")
    assert "no_weights.pt" in error_messages(info.value) and "nothing is downloaded" in error_messages(info.value)


@pytest.mark.parametrize("name", BUNDLES)
def test_spatial_size_override(name):
    """A --spatial_size override reaches the resize, and the network (global pooling) accepts the new size."""
    parser = ConfigParser()
    parser.read_config(str(_configs(name) / "train.json"))
    parser["spatial_size"] = [96, 64]
    resize = next(
        t for t in parser.get_parsed_content("train#deterministic_transforms") if type(t).__name__ == "Resized"
    )
    assert list(resize.resizer.spatial_size) == [96, 64]
    net = parser.get_parsed_content("network_def").eval()
    with torch.no_grad():
        assert net(torch.rand(1, 1, 96, 64)).shape == (1, len(CLASSES))


@pytest.mark.parametrize("name", BUNDLES)
def test_channels_last_network_and_batches(name, tmp_path):
    """channels_last (the default): the batches of trainer and evaluator, and the activations the network makes."""
    for channels_last in (True, False):
        wf = make_workflow(_configs(name), TINY, tmp_path / str(channels_last), channels_last=channels_last)
        net = wf.parser.get_parsed_content("network").eval()
        rgb = {"image": torch.rand(2, 3, 8, 8), "label": torch.tensor([0, 1])}  # 3 channels: the layouts differ
        for engine in ("train#trainer", "validate#evaluator"):
            image, _ = wf.parser.get_parsed_content(engine).prepare_batch(rgb, "cpu")
            assert (image.is_contiguous(memory_format=torch.channels_last) and not image.is_contiguous()) is (
                channels_last
            ), engine
        image, _ = wf.parser.get_parsed_content("train#trainer").prepare_batch(
            {"image": torch.rand(2, 1, SIZE, SIZE), "label": torch.tensor([0, 1])}, "cpu"
        )
        layouts = []  # conv outputs with more than one channel and pixel, where the two layouts differ

        def record(module, args, out, layouts=layouts):
            if out.ndim == 4 and out.shape[1] > 1 and out.shape[2] * out.shape[3] > 1:
                layouts.append(out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous())

        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.register_forward_hook(record)
        with torch.no_grad():
            net(image)
        assert len(layouts) > 3 and set(layouts) == {channels_last}
