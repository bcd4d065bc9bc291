"""SegInputCheckd (empty lungs, infection outside the lung) and LevelMasks (3-level maps with unexpected values)."""

from __future__ import annotations

import logging

import pytest
import torch
from monai.data import MetaTensor

from monaicxr.data.records import DatasetError
from monaicxr.transforms import LevelMasks, LevelMasksd, SegInputCheckd


def _mask(values, name="case.png"):
    return MetaTensor(torch.as_tensor(values, dtype=torch.float32)[None], meta={"filename_or_obj": name})


LUNG = [[0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
INSIDE = [[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
OUTSIDE = [[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]
EMPTY = [[0] * 4] * 3


def test_clean_record_has_no_issues():
    d = SegInputCheckd()({"lung": _mask(LUNG), "infection": _mask(INSIDE)})
    assert d["input_issues"] == "" and d["metric_notes"] == ""


def test_infection_outside_lung_is_recorded_and_logged(caplog):
    with caplog.at_level(logging.WARNING):
        d = SegInputCheckd()({"lung": _mask(LUNG, "x/img7.png"), "infection": _mask(OUTSIDE)})
    assert d["input_issues"] == "2 of 3 infection pixels lie outside the lung mask"
    assert "x/img7.png" in caplog.text


def test_empty_lung_is_recorded_or_an_error():
    d = SegInputCheckd()({"lung": _mask(EMPTY), "infection": _mask(EMPTY)})
    assert d["input_issues"].startswith("empty lung mask")
    with pytest.raises(DatasetError, match="img3.png: empty lung mask"):
        SegInputCheckd(on_empty_lung="error")({"lung": _mask(EMPTY, "img3.png")})
    with pytest.raises(DatasetError, match="outside the lung"):
        SegInputCheckd(on_infection_outside_lung="error")({"lung": _mask(LUNG), "infection": _mask(OUTSIDE)})
    assert SegInputCheckd(on_empty_lung="ignore")({"lung": _mask(EMPTY)})["input_issues"] == ""


def test_empty_infection_gets_a_metric_note_not_a_warning():
    d = SegInputCheckd(note_empty_keys=["infection"])({"lung": _mask(LUNG), "infection": _mask(EMPTY)})
    assert d["input_issues"] == "" and "infection Dice / IoU / HD95 are NaN" in d["metric_notes"]


def test_unloaded_masks_are_not_checked():
    d = SegInputCheckd()({"lung": _mask(LUNG), "infection": "/data/infection.png"})
    assert d["input_issues"] == ""
    with pytest.raises(ValueError, match="on_empty_lung"):
        SegInputCheckd(on_empty_lung="drop")


def test_level_masks_index_grey_and_one_hot():
    lung, inf = LevelMasks()(_mask([[0, 1, 2]]))
    assert lung.tolist() == [[[0, 1, 1]]] and inf.tolist() == [[[0, 0, 1]]]
    lung, inf = LevelMasks(levels=(0, 125, 255))(_mask([[0, 125, 255]]))
    assert lung.tolist() == [[[0, 1, 1]]] and inf.tolist() == [[[0, 0, 1]]]
    onehot = torch.nn.functional.one_hot(torch.tensor([[0, 1, 2]]), 3).permute(2, 0, 1).float()
    lung, inf = LevelMasks()(onehot)
    assert lung.tolist() == [[[0, 1, 1]]] and inf.tolist() == [[[0, 0, 1]]]
    d = LevelMasksd("level", "lung", "infection")({"level": _mask([[2, 0]])})
    assert d["lung"].tolist() == [[[1, 0]]] and d["infection"].tolist() == [[[1, 0]]]


def test_level_masks_refuse_unexpected_values():
    with pytest.raises(DatasetError, match=r"lv\.png: a 3-level map must hold only .* e\.g\. \[128\.0\]"):
        LevelMasks(levels=(0, 125, 255))(_mask([[0, 125, 128, 255]], "lv.png"))
    with pytest.raises(DatasetError, match="3-level map"):
        LevelMasks()(_mask([[0, 1, 3]]))
    with pytest.raises(ValueError, match="three distinct"):
        LevelMasks(levels=(0, 1))
