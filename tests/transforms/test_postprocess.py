"""Tests for monaicxr.transforms.postprocess: largest lungs, hole filling, clipping to the lungs, Severityd."""

from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from monaicxr.data.records import DatasetError
from monaicxr.transforms import (
    FillLungHoles,
    FillLungHolesd,
    KeepLargestLungs,
    KeepLargestLungsd,
    RestrictToLungs,
    RestrictToLungsd,
    Severityd,
)


def _two_lungs_and_speck() -> torch.Tensor:
    m = torch.zeros(1, 12, 14)
    m[0, 1:9, 1:5] = 1  # 32 px, image left = patient's right
    m[0, 1:10, 8:12] = 1  # 36 px, image right = patient's left
    m[0, 11, 6] = 1  # speck
    return m


def _ring() -> torch.Tensor:
    m = torch.zeros(1, 7, 7)
    m[0, 1:6, 1:6] = 1
    m[0, 2:5, 2:5] = 0  # 9-pixel hole
    return m


def test_keep_largest_removes_speck_and_leaves_input():
    m = _two_lungs_and_speck()
    before = m.clone()
    out = KeepLargestLungs()(m)
    expected = before.clone()
    expected[0, 11, 6] = 0
    assert torch.equal(out.as_tensor() if isinstance(out, MetaTensor) else out, expected)
    assert torch.equal(m, before)  # MONAI's transform works in place; ours on a copy


def test_keep_largest_one_component():
    out = KeepLargestLungs(num_components=1)(_two_lungs_and_speck())
    assert int(out.sum()) == 36 and int(out[0, 1:10, 8:12].sum()) == 36


def test_keep_largest_dict_keeps_meta():
    m = MetaTensor(_two_lungs_and_speck(), meta={"filename_or_obj": "a.png"})
    d = KeepLargestLungsd(keys="lung")({"lung": m, "other": 1})
    assert int(d["lung"].sum()) == 68 and d["other"] == 1
    assert d["lung"].meta["filename_or_obj"] == "a.png"


def test_fill_holes_ring():
    ring = _ring()
    out = FillLungHoles()(ring)
    assert int(out.sum()) == 25 and int(ring.sum()) == 16
    d = FillLungHolesd(keys=["lung"])({"lung": ring.bool()})
    assert d["lung"].dtype == torch.bool and int(d["lung"].sum()) == 25


def test_restrict_clips_infection_outside_lung():
    lung = torch.zeros(1, 6, 8)
    lung[0, :, :4] = 1
    inf = torch.zeros(1, 6, 8)
    inf[0, 1:3, 2:6] = 1  # 8 px, half (4 px) outside the lung
    out = RestrictToLungs()(inf, lung)
    assert int(out.sum()) == 4 and int(out[0, :, 4:].sum()) == 0 and int(inf.sum()) == 8
    d = RestrictToLungsd(keys="infection", lung_key="lung")({"infection": inf, "lung": lung})
    assert int(d["infection"].sum()) == 4


BAD_CASES = [
    pytest.param(lambda m: KeepLargestLungs()(m), id="keep_largest"),
    pytest.param(lambda m: FillLungHoles()(m), id="fill_holes"),
    pytest.param(lambda m: RestrictToLungs()(m, torch.ones(1, 4, 4)), id="restrict"),
    pytest.param(
        lambda m: Severityd()({"lung": torch.ones(1, 4, 4), "infection": m}),
        id="severityd",
    ),
]


@pytest.mark.parametrize("call", BAD_CASES)
def test_non_binary_mask_names_file(call):
    m = MetaTensor(torch.full((1, 4, 4), 255.0), meta={"filename_or_obj": "/data/bad_mask.png"})
    with pytest.raises(ValueError, match="bad_mask.png"):
        call(m)


def test_wrong_shape_refused():
    with pytest.raises(DatasetError, match=r"\(1, H, W\)"):
        KeepLargestLungs()(torch.zeros(2, 4, 4))


def test_severityd_writes_row():
    lung = _two_lungs_and_speck()
    lung[0, 11, 6] = 0
    inf = torch.zeros_like(lung)
    inf[0, 1:9, 1:3] = 1  # 16 of the right lung's 32 px
    d = Severityd(lung_key="lung", infection_key="infection")({"lung": lung, "infection": inf})
    row = d["severity"]
    assert row["right_fraction"] == pytest.approx(0.5) and row["right_grade"] == "severe"
    assert row["left_fraction"] == 0.0 and row["left_grade"] == "none"
    assert row["total_fraction"] == pytest.approx(16 / 68) and row["total_grade"] == "mild"


def test_severityd_empty_lung():
    z = torch.zeros(1, 5, 5)
    row = Severityd(output_key="sev")({"lung": z, "infection": z})["sev"]
    for side in ("right", "left", "total"):
        assert row[f"{side}_fraction"] is None and row[f"{side}_grade"] is None
        assert row[f"{side}_reason"] == "no lung"


def test_severityd_bad_thresholds():
    with pytest.raises(ValueError, match="ascending"):
        Severityd(thresholds=(0.0, 0.5, 0.25, 0.75))
