"""Tests for monaicxr.transforms.array and .dictionary: bit-depth scaling, mask checks, 3-level label, levels."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monaicxr.data.records import DatasetError
from monaicxr.transforms import (
    BinarizeMask,
    BinarizeMaskd,
    LevelsToValues,
    LevelsToValuesd,
    ScaleByBitDepth,
    ScaleByBitDepthd,
    SnapToLevels,
    SnapToLevelsd,
    ThreeLevelLabel,
    ThreeLevelLabeld,
)


def _meta_tensor(values, **meta) -> MetaTensor:
    return MetaTensor(torch.as_tensor(np.asarray(values, dtype=np.float32))[None], meta=dict(meta))


# ----------------------------------------------------------------------------------------- ScaleByBitDepth

# (values, bit depth in the meta or None for a plain tensor, fixed bit_depth argument, depth that must apply)
SCALE_CASES = [
    pytest.param([[0, 51, 255]], 8, None, 8, id="meta8"),
    pytest.param([[0, 1000, 4095]], 12, None, 12, id="meta12"),
    pytest.param([[0, 1000, 65535]], 16, None, 16, id="meta16"),
    pytest.param([[0, 100, 255]], None, None, 8, id="no_meta_defaults_to_8"),
    pytest.param([[0, 1000, 4095]], 16, 12, 12, id="fixed_arg_wins_over_meta"),
    pytest.param([[-5, 128, 300]], 8, None, 8, id="clipped_to_unit_range"),
    pytest.param([[0, 70000, 65535]], None, 16, 16, id="fixed16_clipped"),
]


@pytest.mark.parametrize("values, meta_depth, fixed, depth", SCALE_CASES)
def test_scale_by_bit_depth(values, meta_depth, fixed, depth):
    if meta_depth is None:
        img = torch.as_tensor(values, dtype=torch.float32)[None]
    else:
        img = _meta_tensor(values, bit_depth=meta_depth, filename_or_obj="a.png")
    out = ScaleByBitDepth(fixed)(img)
    expected = np.clip(np.asarray(values, np.float64) / (2.0**depth - 1), 0.0, 1.0)[None]
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-6, atol=1e-7)
    assert out.dtype == torch.float32
    if meta_depth is not None:
        assert isinstance(out, MetaTensor) and out.meta["filename_or_obj"] == "a.png"


# ------------------------------------------------------------------------------------------- BinarizeMask

# (mask values, expected {0, 1} values)
BINARIZE_CASES = [
    pytest.param([[0, 255, 255], [0, 0, 255]], [[0, 1, 1], [0, 0, 1]], id="0_255"),
    pytest.param([[0, 1, 1], [1, 0, 0]], [[0, 1, 1], [1, 0, 0]], id="0_1"),
    pytest.param([[0, 0, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]], id="empty"),
    pytest.param([[255, 255, 255]], [[1, 1, 1]], id="all_255"),
]


@pytest.mark.parametrize("values, expected", BINARIZE_CASES)
def test_binarize_mask(values, expected):
    out = BinarizeMask()(_meta_tensor(values, filename_or_obj="m.png"))
    assert out.dtype == torch.float32
    np.testing.assert_array_equal(np.asarray(out)[0], np.asarray(expected, np.float32))


BAD_MASKS = [
    pytest.param([[0, 128, 255]], id="interpolated"),
    pytest.param([[0, 2, 3]], id="label_values"),
    pytest.param([[0, 1, 255]], id="mixed_1_and_255"),
]


@pytest.mark.parametrize("values", BAD_MASKS)
def test_binarize_mask_refuses_other_values(values):
    mask = _meta_tensor(values, filename_or_obj="/data/lung_masks/patient7.png")
    with pytest.raises(DatasetError, match="patient7.png"):
        BinarizeMask()(mask)


# (values, expected with allow_any: above half the maximum)
ALLOW_ANY_CASES = [
    pytest.param([[0, 100, 200, 101]], id="interpolated"),
    pytest.param([[0, 0, 0]], id="empty"),
    pytest.param([[0, 3, 7, 4]], id="small_values"),
]


@pytest.mark.parametrize("values", ALLOW_ANY_CASES)
def test_binarize_mask_allow_any(values):
    arr = np.asarray(values, np.float64)
    expected = (arr > arr.max() / 2).astype(np.float32) if arr.max() > 0 else np.zeros_like(arr, np.float32)
    out = BinarizeMask(allow_any=True)(_meta_tensor(values))
    np.testing.assert_array_equal(np.asarray(out)[0], expected)


# ---------------------------------------------------------------------------------------- ThreeLevelLabel

LUNG = np.array(
    [
        [0, 0, 0, 0, 0],
        [0, 1, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [0, 0, 1, 1, 0],
    ]
)
INFECTION = np.array(
    [
        [0, 0, 0, 0, 0],
        [0, 0, 1, 0, 0],
        [0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0],
    ]
)
LEVEL = np.array(  # written by hand: 0 non-lung, 1 lung, 2 infection
    [
        [0, 0, 0, 0, 0],
        [0, 1, 2, 0, 0],
        [0, 1, 1, 2, 0],
        [0, 0, 1, 1, 0],
    ]
)
OUTSIDE = (0, 4)  # an infection pixel outside the lung


def _lung_infection(outside: bool = False):
    inf = INFECTION.copy()
    if outside:
        inf[OUTSIDE] = 1
    lung = _meta_tensor(LUNG, filename_or_obj="lung_masks/x.png")
    infection = _meta_tensor(inf, filename_or_obj="infection_masks/x.png")
    return lung, infection


def test_three_level_label_hand_built():
    out = ThreeLevelLabel()(*_lung_infection())
    np.testing.assert_array_equal(np.asarray(out)[0], LEVEL)


def test_three_level_outside_error():
    with pytest.raises(DatasetError, match=r"infection_masks/x\.png: 1 infection pixels"):
        ThreeLevelLabel("error")(*_lung_infection(outside=True))


# (policy, level expected at the outside pixel)
OUTSIDE_CASES = [("warn", 2), ("clip", 0)]


@pytest.mark.parametrize("policy, value", OUTSIDE_CASES)
def test_three_level_outside_warn_clip(caplog, policy, value):
    with caplog.at_level(logging.WARNING, logger="monaicxr.transforms.array"):
        out = np.asarray(ThreeLevelLabel(policy)(*_lung_infection(outside=True)))[0]
    expected = LEVEL.copy()
    expected[OUTSIDE] = value
    np.testing.assert_array_equal(out, expected)
    assert "outside the lung mask" in caplog.text and "x.png" in caplog.text


def test_three_level_bad_policy_and_shape():
    with pytest.raises(ValueError, match="on_infection_outside_lung"):
        ThreeLevelLabel("ignore")
    lung = _meta_tensor(LUNG, filename_or_obj="lung_masks/y.png")
    with pytest.raises(DatasetError, match="y.png"):
        ThreeLevelLabel()(lung, _meta_tensor(INFECTION[:, :4]))


# ------------------------------------------------------------------------------ SnapToLevels / LevelsToValues

NEAR_MIDPOINTS = [-0.3, 0.0, 0.2, 0.24, 0.26, 0.3, 0.5, 0.7, 0.74, 0.76, 0.8, 1.0, 1.4]
# (levels given, in any order)
LEVEL_SETS = [
    pytest.param((0.0, 0.5, 1.0), id="default"),
    pytest.param((1.0, 0.0, 0.5), id="unsorted"),
    pytest.param((0.0, 0.25, 1.0), id="uneven"),
]


def _nearest_index(values, levels) -> np.ndarray:
    lv = np.sort(np.asarray(levels, np.float64))
    return np.abs(np.asarray(values, np.float64)[..., None] - lv).argmin(-1)


@pytest.mark.parametrize("levels", LEVEL_SETS)
def test_snap_to_levels_near_midpoints(levels):
    x = _meta_tensor([NEAR_MIDPOINTS], filename_or_obj="p.png")
    out = SnapToLevels(levels)(x)
    np.testing.assert_array_equal(np.asarray(out)[0], _nearest_index([NEAR_MIDPOINTS], levels))
    assert out.dtype == torch.int64
    assert isinstance(out, MetaTensor) and out.meta["filename_or_obj"] == "p.png"


# (a midpoint between two default levels, the two admissible indices)
MIDPOINTS = [(0.25, (0, 1)), (0.75, (1, 2))]


@pytest.mark.parametrize("value, either", MIDPOINTS)
def test_snap_exact_midpoint_goes_to_a_neighbour(value, either):
    out = int(SnapToLevels()(torch.tensor([value])).flatten()[0])
    assert out in either


@pytest.mark.parametrize("levels", LEVEL_SETS)
def test_levels_to_values_inverse(levels):
    lv = np.sort(np.asarray(levels, np.float64))
    index = torch.tensor([[[0, 1, 2, 1], [2, 2, 0, 0]]])
    values = LevelsToValues(levels)(index)
    np.testing.assert_allclose(np.asarray(values), lv[index.numpy()])
    assert torch.equal(SnapToLevels(levels)(values), index)
    # snap then back gives the nearest level value
    x = torch.tensor([NEAR_MIDPOINTS])
    back = LevelsToValues(levels)(SnapToLevels(levels)(x))
    np.testing.assert_allclose(np.asarray(back), lv[_nearest_index(x.numpy(), levels)])


# ------------------------------------------------------------------------------------------ dictionary twins

# (array transform, dictionary twin, constructor kwargs, input)
TWIN_CASES = [
    pytest.param(
        ScaleByBitDepth, ScaleByBitDepthd, {}, lambda: _meta_tensor([[0, 2000, 4095]], bit_depth=12), id="scale"
    ),
    pytest.param(
        ScaleByBitDepth, ScaleByBitDepthd, {"bit_depth": 16}, lambda: _meta_tensor([[0, 9, 65535]]), id="scale16"
    ),
    pytest.param(BinarizeMask, BinarizeMaskd, {}, lambda: _meta_tensor([[0, 255, 0]]), id="binarize"),
    pytest.param(
        BinarizeMask, BinarizeMaskd, {"allow_any": True}, lambda: _meta_tensor([[0, 90, 200]]), id="binarize_any"
    ),
    pytest.param(SnapToLevels, SnapToLevelsd, {}, lambda: _meta_tensor([NEAR_MIDPOINTS]), id="snap"),
    pytest.param(
        SnapToLevels,
        SnapToLevelsd,
        {"levels": (0.0, 0.25, 1.0)},
        lambda: _meta_tensor([NEAR_MIDPOINTS]),
        id="snap_uneven",
    ),
    pytest.param(LevelsToValues, LevelsToValuesd, {}, lambda: torch.tensor([[0, 2, 1, 1]]), id="values"),
]


@pytest.mark.parametrize("array_cls, dict_cls, kwargs, make", TWIN_CASES)
def test_dictionary_twin_matches_array(array_cls, dict_cls, kwargs, make):
    expected = array_cls(**kwargs)(make())
    out = dict_cls(keys=["a", "b"], **kwargs)({"a": make(), "b": make(), "other": "kept"})
    for key in ("a", "b"):
        assert torch.equal(torch.as_tensor(out[key]), torch.as_tensor(expected))
    assert out["other"] == "kept"


def test_dictionary_twin_missing_key():
    with pytest.raises(KeyError):
        ScaleByBitDepthd(keys="image")({"label": torch.zeros(1, 2, 2)})
    out = ScaleByBitDepthd(keys="image", allow_missing_keys=True)({"label": torch.zeros(1, 2, 2)})
    assert set(out) == {"label"}


# (policy)
THREE_LEVEL_TWIN_CASES = ["warn", "clip"]


@pytest.mark.parametrize("policy", THREE_LEVEL_TWIN_CASES)
def test_three_level_labeld_matches_array(policy):
    lung, infection = _lung_infection(outside=True)
    expected = ThreeLevelLabel(policy)(lung, infection)
    d = ThreeLevelLabeld("lung", "infection", "level", on_infection_outside_lung=policy)(
        {"lung": lung, "infection": infection}
    )
    assert torch.equal(torch.as_tensor(d["level"]), torch.as_tensor(expected))
    assert d["lung"] is lung and d["infection"] is infection
