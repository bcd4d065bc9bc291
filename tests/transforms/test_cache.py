"""monaicxr.transforms.cache: the uint8 cache gives back exactly what 8-bit films held, and refuses what it would change."""

from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from monaicxr.transforms import FromCacheDtyped, ToCacheDtyped


def _item(image, label):
    return {"image": MetaTensor(image, meta={"filename_or_obj": "/data/film.png"}), "label": label}


def test_8bit_film_and_mask_round_trip_exactly():
    image = torch.randint(0, 256, (1, 16, 16)).float() / 255
    label = (torch.rand(1, 16, 16) > 0.5).float()
    cached = ToCacheDtyped("image", "label")(_item(image, label))
    assert cached["image"].dtype == torch.uint8 and cached["label"].dtype == torch.uint8
    back = FromCacheDtyped("image", "label")(cached)
    assert back["image"].dtype == torch.float32
    assert torch.equal(back["image"], image) and torch.equal(back["label"], label)
    assert back["image"].meta["filename_or_obj"] == "/data/film.png"  # metadata survives the round trip


def test_3level_target_needs_its_scale():
    image = torch.zeros(1, 4, 4)
    label = torch.tensor([0.0, 0.5, 1.0, 0.5]).reshape(1, 2, 2)
    with pytest.raises(ValueError, match="label_scale"):
        ToCacheDtyped("image", "label")(_item(image, label))
    cached = ToCacheDtyped("image", "label", label_scale=2)(_item(image, label))
    assert torch.equal(FromCacheDtyped("image", "label", label_scale=2)(cached)["label"], label)


def test_resized_image_is_rounded_to_the_nearest_step():
    image = torch.rand(1, 32, 32)
    back = FromCacheDtyped("image")(ToCacheDtyped("image")(_item(image, torch.zeros(1))))
    assert (back["image"] - image).abs().max() <= 0.5 / 255 + 1e-7


def test_unscaled_image_is_an_error_naming_the_file():
    with pytest.raises(ValueError, match=r"/data/film.png.*\[0, 1\]"):
        ToCacheDtyped("image")(_item(torch.full((1, 4, 4), 200.0), torch.zeros(1)))


def test_float32_setting_changes_nothing_but_the_dtype():
    image, label = torch.rand(1, 8, 8), torch.ones(1, 8, 8)
    out = ToCacheDtyped("image", "label", dtype="float32")(_item(image.double(), label.long()))
    assert out["image"].dtype == torch.float32 and torch.allclose(out["image"], image)
    assert out["label"].dtype == torch.float32


def test_unknown_dtype_is_refused():
    with pytest.raises(ValueError, match="cache dtype"):
        ToCacheDtyped("image", dtype="float16")


def test_unet_bundle_caches_uint8_and_trains_on_float32(tmp_path):
    """With --cache_dtype uint8 the bundle's CacheDataset holds 8-bit items and hands float32 ones to training."""
    from pathlib import Path

    from monai.bundle import ConfigParser

    repo = Path(__file__).resolve().parents[2]
    parser = ConfigParser()
    parser.read_config(str(repo / "bundles" / "unet" / "configs" / "train.json"))
    parser.update({"bundle_root": str(repo / "bundles" / "unet"), "output_dir": str(tmp_path), "num_workers": 0,
                   "synthetic_per_class": 8, "spatial_size": [32, 32], "cache_dtype": "uint8",
                   "show_progress": False})  # fmt: skip
    for section in ("train", "validate"):
        dataset = parser.get_parsed_content(f"{section}#dataset")
        assert dataset._cache[0]["image"].dtype == torch.uint8 and dataset._cache[0]["label"].dtype == torch.uint8
        item = dataset[0]
        assert item["image"].dtype == torch.float32 and item["label"].dtype == torch.float32
        if section == "validate":  # training items carry random noise, which may leave [0, 1]
            assert 0 <= float(item["image"].min()) and float(item["image"].max()) <= 1
