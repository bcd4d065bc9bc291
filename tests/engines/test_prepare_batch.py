"""Tests for monaicxr.engines: the memory-format ``prepare_batch``."""

from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from monaicxr.engines import MemoryFormatPrepareBatch, resolve_memory_format


@pytest.mark.parametrize(
    "value, expected",
    [
        (True, torch.channels_last),
        (False, torch.contiguous_format),
        (None, torch.contiguous_format),
        ("channels_last", torch.channels_last),
        ("channels_last_3d", torch.channels_last_3d),
        ("contiguous", torch.contiguous_format),
        (torch.channels_last, torch.channels_last),
    ],
)
def test_resolve_memory_format(value, expected):
    assert resolve_memory_format(value) == expected


def test_resolve_memory_format_rejects_unknown_names():
    with pytest.raises(ValueError, match="memory format must be one of"):
        resolve_memory_format("nhwc")


def test_channels_last_image_label_untouched():
    image = MetaTensor(torch.rand(2, 3, 6, 5), meta={"filename_or_obj": ["a.png", "b.png"]})
    label = torch.tensor([[1.0], [0.0]])  # a binary classifier's (N, 1) label has no channels-last layout
    got_image, got_label = MemoryFormatPrepareBatch("channels_last")({"image": image, "label": label}, "cpu")
    assert got_image.is_contiguous(memory_format=torch.channels_last)
    assert image.is_contiguous()  # the batch itself is not modified (3 channels: the layouts differ)
    assert torch.equal(got_image, image) and torch.equal(got_label, label)
    assert got_image.meta["filename_or_obj"] == ["a.png", "b.png"]


def test_rank_mismatch_and_contiguous_leave_image_alone():
    volume = torch.rand(2, 3, 3, 4, 5)
    out, _ = MemoryFormatPrepareBatch("channels_last")({"image": volume, "label": volume}, "cpu")
    assert out.is_contiguous()  # 5-D: channels_last (4-D) does not apply
    out, _ = MemoryFormatPrepareBatch("channels_last_3d")({"image": volume, "label": volume}, "cpu")
    assert out.is_contiguous(memory_format=torch.channels_last_3d) and not out.is_contiguous()
    image = torch.rand(2, 3, 4, 4)
    out, _ = MemoryFormatPrepareBatch(False)({"image": image, "label": image}, "cpu")
    assert out.is_contiguous()


def test_tensor_pair_batches_pass_through():
    image, label = torch.rand(2, 3, 4, 4), torch.ones(2)  # 3 channels: the two layouts differ
    got = MemoryFormatPrepareBatch()((image, label), "cpu")
    assert torch.equal(got[0], image) and got[0].is_contiguous()  # not a mapping: left as it is
