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
