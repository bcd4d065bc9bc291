"""Tests for monaicxr.transforms.ComposeWithoutMeta."""

from __future__ import annotations

import pytest
import torch
from monai.data import CacheDataset, DataLoader, MetaTensor, get_track_meta
from monai.transforms import Compose, Lambdad, RandAffined, RandFlipd

from monaicxr.transforms import ComposeWithoutMeta


def _item() -> dict:
    return {"image": MetaTensor(torch.rand(1, 12, 10), meta={"filename_or_obj": "a.png"})}


def test_plain_tensor_out_and_setting_restored():
    assert get_track_meta()
    aug = ComposeWithoutMeta([RandAffined("image", prob=1.0, rotate_range=0.3), RandFlipd("image", prob=1.0)])
    out = aug(_item())["image"]
    assert type(out) is torch.Tensor and out.shape == (1, 12, 10)
    assert get_track_meta()  # switched back on


def test_setting_restored_after_an_error():
    def boom(_):
        assert not get_track_meta()  # it runs with tracking off
        raise RuntimeError("bad item")

    with pytest.raises(RuntimeError) as err:
        ComposeWithoutMeta([Lambdad("image", boom)])(_item())
    assert "bad item" in str(err.value.__cause__)  # MONAI wraps it, naming the transform
    assert get_track_meta()


def test_same_values_as_with_tracking():
    item = _item()
    tracked = Compose([RandAffined("image", prob=1.0, rotate_range=0.3, translate_range=2)]).set_random_state(3)
    plain = ComposeWithoutMeta([RandAffined("image", prob=1.0, rotate_range=0.3, translate_range=2)])
    plain.set_random_state(3)
    a, b = tracked(dict(item))["image"], plain(dict(item))["image"]
    assert isinstance(a, MetaTensor) and type(b) is torch.Tensor
    torch.testing.assert_close(a.as_tensor(), b)


def test_cache_dataset_caches_before_it_and_workers_apply_it():
    calls = []

    def count(x):
        calls.append(1)
        return x

    deterministic = [Lambdad("image", count)]
    preprocessing = Compose([*deterministic, ComposeWithoutMeta([RandFlipd("image", prob=0.5, spatial_axis=1)])])
    assert type(preprocessing.flatten().transforms[-1]) is ComposeWithoutMeta  # flatten keeps it whole
    ds = CacheDataset([_item() for _ in range(4)], transform=preprocessing, progress=False, num_workers=1)
    assert len(calls) == 4  # the deterministic part ran once per item, at caching
    assert isinstance(ds._cache[0]["image"], MetaTensor)  # the cache keeps the metadata for other uses
    batch = next(iter(DataLoader(ds, batch_size=4, num_workers=1)))
    assert type(batch["image"]) is torch.Tensor and batch["image"].shape == (4, 1, 12, 10)
    assert len(calls) == 4  # not re-run per epoch
