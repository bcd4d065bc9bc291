from __future__ import annotations

import pytest
import torch

from monaicxr.transforms import SegTargetd


def _masks():
    lung = torch.zeros(1, 4, 4)
    lung[:, 1:3, :] = 1
    inf = torch.zeros(1, 4, 4)
    inf[:, 1, 0] = 1
    return {"lung": lung, "infection": inf}


@pytest.mark.parametrize("task", ["lung", "infection"])
def test_binary_targets(task):
    d = SegTargetd(task)(_masks())
    assert torch.equal(d["label"], _masks()[task])


def test_three_level_target_and_level_map():
    d = SegTargetd("3level")(_masks())
    assert d["level"][0, 1, 0] == 2 and d["level"][0, 2, 3] == 1 and d["level"][0, 0, 0] == 0
    assert torch.equal(d["label"], d["level"].float() / 2)


def test_unknown_task():
    with pytest.raises(ValueError, match="choose one of"):
        SegTargetd("heart")


def test_exclude_ignored_removes_pixels_from_dice():
    from monai.metrics import DiceMetric

    from monaicxr.transforms import ExcludeIgnored, ExcludeIgnoredd

    label = torch.zeros(1, 4, 4)
    label[:, :2, :] = 1
    pred = label.clone()
    pred[:, 3, :] = 1  # 4 false-positive pixels in row 3 ...
    ignore = torch.zeros(1, 4, 4)
    ignore[:, 3, :] = 1  # ... all inside the ignored region
    before = DiceMetric()(pred[None], label[None]).item()
    d = ExcludeIgnoredd(keys=["pred", "label"])({"pred": pred, "label": label, "ignore": ignore})
    after = DiceMetric()(d["pred"][None], d["label"][None]).item()
    assert before == pytest.approx(2 * 8 / (12 + 8)) and after == pytest.approx(1.0)
    onehot = torch.cat([1 - pred, pred])
    masked = ExcludeIgnored()(onehot, ignore)
    assert torch.equal(masked[:, 3, :], torch.tensor([[1.0] * 4, [0.0] * 4]))
    assert ExcludeIgnoredd(keys="pred")({"pred": pred})["pred"] is pred  # no ignore mask: unchanged
