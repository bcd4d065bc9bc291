"""Tests for monaicxr.metrics.severity: per-lung infected fraction, left/right assignment, grades."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monaicxr.metrics.severity import infection_fraction, severity_grade, split_lungs


def _lungs() -> np.ndarray:
    lung = np.zeros((10, 20), dtype=np.uint8)
    lung[1:9, 2:7] = 1  # 40 px on the image left: the patient's RIGHT lung
    lung[1:9, 12:18] = 1  # 48 px on the image right: the patient's LEFT lung
    return lung


def test_split_left_right_by_centroid_column():
    sides = split_lungs(_lungs().astype(bool))
    assert int(sides["right"].sum()) == 40 and sides["right"][1:9, 2:7].all()
    assert int(sides["left"].sum()) == 48 and sides["left"][1:9, 12:18].all()


def test_fractions_by_hand():
    lung = _lungs()
    inf = np.zeros_like(lung)
    inf[1:5, 2:7] = 1  # 20 of the right lung's 40 px
    inf[1:3, 12:18] = 1  # 12 of the left lung's 48 px
    inf[0, 0] = 1  # outside any lung: ignored
    r = infection_fraction(lung, inf)
    assert r["right_fraction"] == pytest.approx(20 / 40)
    assert r["left_fraction"] == pytest.approx(12 / 48)
    assert r["total_fraction"] == pytest.approx(32 / 88)
    assert (r["right_lung_px"], r["left_lung_px"], r["right_infection_px"], r["left_infection_px"]) == (40, 48, 20, 12)
    assert r["right_reason"] is None and r["left_reason"] is None and r["total_reason"] is None


def test_mirrored_image_swaps_sides():
    lung = _lungs()[:, ::-1].copy()
    inf = np.zeros_like(lung)
    inf[1:9, 13:18] = 1  # all of the 40-px lung, now on the image right
    r = infection_fraction(torch.as_tensor(lung)[None], torch.as_tensor(inf)[None])
    assert r["left_fraction"] == 1.0 and r["left_lung_px"] == 40 and r["right_fraction"] == 0.0


def test_empty_lung_gives_none_not_nan():
    z = np.zeros((6, 6))
    r = infection_fraction(z, z)
    for side in ("right", "left", "total"):
        assert r[f"{side}_fraction"] is None and r[f"{side}_reason"] == "no lung"
    assert not any(isinstance(v, float) and math.isnan(v) for v in r.values())


def test_one_lung_missing():
    lung = _lungs()
    lung[:, 10:] = 0  # only the image-left (patient's right) lung
    r = infection_fraction(lung, np.zeros_like(lung))
    assert r["right_fraction"] == 0.0 and r["total_fraction"] == 0.0
    assert r["left_fraction"] is None and r["left_reason"] == "lung not found"


def test_non_binary_names_file():
    lung = MetaTensor(torch.as_tensor(_lungs() * 255)[None], meta={"filename_or_obj": "/x/lung_007.png"})
    with pytest.raises(ValueError, match="lung_007.png"):
        infection_fraction(lung, np.zeros((10, 20)))


def test_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        infection_fraction(_lungs(), np.zeros((10, 21)))


GRADE_CASES = [
    (0.0, "none"),
    (1e-6, "mild"),
    (0.2499, "mild"),
    (0.25, "moderate"),
    (0.4999, "moderate"),
    (0.5, "severe"),
    (0.75, "critical"),
    (1.0, "critical"),
    (None, None),
]


@pytest.mark.parametrize("fraction,grade", GRADE_CASES)
def test_grade_boundaries(fraction, grade):
    assert severity_grade(fraction) == grade


def test_grade_custom_thresholds_and_errors():
    assert severity_grade(0.05, thresholds=(0.1, 0.2, 0.3, 0.4)) == "none"
    assert severity_grade(0.3, thresholds=(0.1, 0.2, 0.3, 0.4)) == "severe"
    with pytest.raises(ValueError, match="ascending"):
        severity_grade(0.3, thresholds=(0.0, 0.5))
    for bad in (float("nan"), -0.1, 1.5):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            severity_grade(bad)
