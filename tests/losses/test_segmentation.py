from __future__ import annotations

import pytest
import torch
from monai.losses import DiceCELoss, DiceFocalLoss, DiceLoss, FocalLoss, TverskyLoss

from monaicxr.losses import IgnoreChannelLoss, SigmoidMSELoss, segmentation_loss

CASES = [
    ("dice", "lung"),
    ("bce", "infection"),
    ("dicece", "lung"),
    ("mse", "3level"),
    ("bce", "3level"),
    ("focal", "infection"),
    ("dicefocal", "infection"),
    ("tversky", "infection"),
]


@pytest.mark.parametrize("name,task", CASES)
def test_losses_build_and_decrease_towards_the_target(name, task):
    loss = segmentation_loss(name, task=task)
    target = (torch.rand(2, 1, 8, 8) > 0.5).float() * (0.5 if task == "3level" else 1.0)
    good = torch.where(target > 0, 6.0, -6.0)
    bad = -good
    assert float(loss(good, target)) < float(loss(bad, target))


def test_wrong_loss_for_task_lists_valid_ones():
    with pytest.raises(ValueError, match=r"\['bce', 'mse'\]"):
        segmentation_loss("dice", task="3level")
    with pytest.raises(ValueError, match="choose one of"):
        segmentation_loss("hinge")


def test_names_map_to_monai_losses():
    assert isinstance(segmentation_loss("dice", ignore_channel=False), DiceLoss)
    assert isinstance(segmentation_loss("dicece", ignore_channel=False), DiceCELoss)
    assert isinstance(segmentation_loss("dicefocal", ignore_channel=False), DiceFocalLoss)
    assert isinstance(segmentation_loss("focal", ignore_channel=False), FocalLoss)
    assert isinstance(segmentation_loss("tversky", ignore_channel=False), TverskyLoss)


def test_sigmoid_mse_matches_definition():
    x, t = torch.randn(2, 1, 4, 4), torch.rand(2, 1, 4, 4)
    assert torch.allclose(SigmoidMSELoss()(x, t), ((torch.sigmoid(x) - t) ** 2).mean())


def test_ignore_channel_excludes_pixels():
    base = torch.nn.BCEWithLogitsLoss()
    wrapped = IgnoreChannelLoss([(base, True)])
    pred = torch.full((1, 1, 4, 4), 5.0)
    target = torch.ones(1, 1, 4, 4)
    target[..., :2, :] = 0  # wrong in the top half ...
    ignore = torch.zeros(1, 1, 4, 4)
    ignore[..., :2, :] = 1  # ... which is ignored
    masked = wrapped(pred, torch.cat([target, ignore], 1))
    assert float(masked) == pytest.approx(float(base(pred[..., 2:, :], target[..., 2:, :])), rel=1e-4)
    assert float(wrapped(pred, target)) == pytest.approx(float(base(pred, target)))


def test_ignore_channel_dice_equals_dice_on_kept_pixels():
    wrapped = segmentation_loss("dice", task="lung")
    pred = torch.randn(1, 1, 6, 6)
    target = (torch.rand(1, 1, 6, 6) > 0.5).float()
    ignore = torch.zeros(1, 1, 6, 6)
    ignore[..., :, :3] = 1
    masked = wrapped(pred, torch.cat([target, ignore], 1))
    expected = DiceLoss(sigmoid=True)(pred[..., :, 3:], target[..., :, 3:])
    assert float(masked) == pytest.approx(float(expected), abs=1e-5)


def test_dicece_matches_monai_without_ignore_channel():
    pred, target = torch.randn(2, 1, 6, 6), (torch.rand(2, 1, 6, 6) > 0.5).float()
    ours = segmentation_loss("dicece", task="lung")(pred, target)
    assert float(ours) == pytest.approx(float(DiceCELoss(sigmoid=True)(pred, target)), rel=1e-5)


@pytest.mark.parametrize("name", ["dicefocal", "tversky", "focal"])
def test_loss_study_losses_match_monai_without_ignore_channel(name):
    pred, target = torch.randn(2, 1, 6, 6), (torch.rand(2, 1, 6, 6) > 0.5).float()
    reference = {
        "dicefocal": DiceFocalLoss(sigmoid=True, gamma=2.0),
        "tversky": TverskyLoss(sigmoid=True, alpha=0.3, beta=0.7),
        "focal": FocalLoss(gamma=2.0),
    }[name]
    ours = segmentation_loss(name, task="infection")(pred, target)
    assert float(ours) == pytest.approx(float(reference(pred, target)), rel=1e-5)


def test_tversky_punishes_missed_infection_more_than_false_alarms():
    loss = segmentation_loss("tversky", task="infection")
    target = torch.zeros(1, 1, 8, 8)
    target[..., :4, :] = 1
    missed = torch.where(target > 0, -6.0, -6.0)  # predicts nothing: all infection missed
    false_alarm = torch.full((1, 1, 8, 8), 6.0)  # predicts everything: as many false positives as positives
    assert float(loss(missed, target)) > float(loss(false_alarm, target))
