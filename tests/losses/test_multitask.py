"""MultitaskLoss and MultitaskPrepareBatch: segmentation (deep supervision) + weighted cross-entropy."""

from __future__ import annotations

import pytest
import torch
from monai.losses import DeepSupervisionLoss

from monaicxr.data.records import DatasetError
from monaicxr.losses import MultitaskLoss, MultitaskPrepareBatch, segmentation_loss
from monaicxr.networks import U2Net


def test_multitask_loss_is_seg_plus_weighted_ce():
    torch.manual_seed(0)
    seg = DeepSupervisionLoss(segmentation_loss("bce", task="lung"), weight_mode="same")
    loss = MultitaskLoss(seg, class_weight=0.5)
    outputs = [torch.randn(2, 1, 8, 8) for _ in range(7)]
    logits, classes = torch.randn(2, 3), torch.tensor([0, 2])
    target = (torch.rand(2, 1, 8, 8) > 0.5).float()
    total = loss((outputs, logits), (target, classes))
    bce = torch.nn.BCEWithLogitsLoss()
    expected = sum(float(bce(o, target)) for o in outputs) + 0.5 * float(
        torch.nn.functional.cross_entropy(logits, classes)
    )
    assert float(total) == pytest.approx(expected, rel=1e-5)
    assert set(loss.last_terms) == {"seg", "class"}


def test_multitask_loss_trains_the_u2net_head():
    torch.manual_seed(0)
    tiny = {"encoder": [[2, 4]] * 6, "decoder": [[2, 4]] * 5}
    net = U2Net(spatial_dims=2, in_channels=1, out_channels=1, config=tiny, num_classes=3).train()
    loss = MultitaskLoss(DeepSupervisionLoss(segmentation_loss("dicece", task="lung"), weight_mode="same"))
    x = torch.rand(2, 1, 40, 40)
    value = loss(net(x), ((torch.rand(2, 1, 40, 40) > 0.5).float(), torch.tensor([1, 2])))
    value.backward()
    assert net.classifier[-1].weight.grad is not None and net.fuse.weight.grad is not None


def test_wrong_inputs_are_clear_errors():
    loss = MultitaskLoss(torch.nn.BCEWithLogitsLoss())
    with pytest.raises(TypeError, match="num_classes"):
        loss(torch.zeros(1, 1, 4, 4), (torch.zeros(1, 1, 4, 4), torch.zeros(1)))
    with pytest.raises(TypeError, match="MultitaskPrepareBatch"):
        loss((torch.zeros(1, 1, 4, 4), torch.zeros(1, 3)), torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="class_weight"):
        MultitaskLoss(torch.nn.BCEWithLogitsLoss(), class_weight=-1)


def test_prepare_batch():
    batch = {"image": torch.zeros(2, 1, 4, 4), "label": torch.ones(2, 1, 4, 4), "class_index": torch.tensor([2, 0])}
    image, (label, classes) = MultitaskPrepareBatch()(batch, torch.device("cpu"))
    assert image.shape == (2, 1, 4, 4) and label.shape == (2, 1, 4, 4) and classes.tolist() == [2, 0]
    with pytest.raises(DatasetError, match="class_index"):
        MultitaskPrepareBatch()({"image": batch["image"], "label": batch["label"]})


def test_require_class_names():
    from monaicxr.losses import require_class_names

    assert require_class_names({"classes": ["a", "b", "c"]}) == ["a", "b", "c"]
    with pytest.raises(DatasetError, match="at least two classes"):
        require_class_names({"source": "x", "root": "/d"})
