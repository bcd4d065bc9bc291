"""Tests for monaicxr.data.synthetic: phantom anatomy and the phantom dataset folder."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
from PIL import Image
from skimage.measure import label

from monaicxr.data.registry import index_dataset
from monaicxr.data.synthetic import make_phantom, write_phantom_dataset

SIZE = 64
N_PER_CLASS = 2
KINDS = ["normal", "covid", "pneumonia"]
SEEDS = [0, 1, 7, 18]  # at size 64, seeds 7 and 18 once had a lung-base sliver cut off by the heart
# kind -> number of lungs that must hold infection
INFECTED_LUNGS = {"normal": 0, "covid": 2, "pneumonia": 1}
CASES = [(kind, seed) for kind in KINDS for seed in SEEDS]


@pytest.mark.parametrize("kind", KINDS)
def test_make_phantom_is_deterministic(kind):
    a, b, other = (
        make_phantom(3, size=SIZE, kind=kind),
        make_phantom(3, size=SIZE, kind=kind),
        make_phantom(4, size=SIZE, kind=kind),
    )
    for field in ("image", "lung", "infection"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.image, other.image)
    assert not np.array_equal(a.lung, other.lung)
    assert a.image.shape == a.lung.shape == a.infection.shape == (SIZE, SIZE)
    assert a.image.dtype == np.uint8 and a.kind == kind


@pytest.mark.parametrize("kind, seed", CASES)
def test_phantom_anatomy(kind, seed):
    p = make_phantom(seed, size=SIZE, kind=kind)
    lung, infection = p.lung.astype(bool), p.infection.astype(bool)
    assert set(np.unique(p.lung)) <= {0, 1} and set(np.unique(p.infection)) <= {0, 1}
    assert not (infection & ~lung).any(), "infection outside the lung"
    assert 0.1 <= lung.mean() <= 0.4
    assert infection.any() == (kind != "normal")

    components = label(lung)  # skimage: full (8-) connectivity in 2D
    assert components.max() == 2, f"expected two lungs, found {components.max()} lung pieces"
    infected = sum(bool(infection[components == k].any()) for k in (1, 2))
    assert infected == INFECTED_LUNGS[kind]


def test_lungs_darker_than_surroundings():
    """The phantom is a radiograph, not a negative: lung pixels are darker than the rest of the thorax."""
    p = make_phantom(0, size=SIZE, kind="normal")
    lung = p.lung.astype(bool)
    centre = p.image[:, SIZE // 2 - 3 : SIZE // 2 + 3]
    assert p.image[lung].mean() < centre.mean()


def test_unknown_kind():
    with pytest.raises(ValueError, match="tuberculosis"):
        make_phantom(0, size=SIZE, kind="tuberculosis")


# ------------------------------------------------------------------------------------------ the dataset folder

SUBFOLDERS = ["images", "lung_masks", "infection_masks"]
FILES = ["manifest.csv", "SYNTHETIC", "phantoms.json"]


@pytest.fixture(scope="module")
def phantom_dir(tmp_path_factory):
    return write_phantom_dataset(tmp_path_factory.mktemp("phantoms") / "set", n_per_class=N_PER_CLASS, size=SIZE)


def test_layout(phantom_dir):
    assert sorted(p.name for p in phantom_dir.iterdir()) == sorted(SUBFOLDERS + FILES)
    with (phantom_dir / "manifest.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * N_PER_CLASS
    assert set(rows[0]) == {"file", "class", "split"}
    names = sorted(r["file"] for r in rows)
    for sub in SUBFOLDERS:
        assert sorted(p.name for p in (phantom_dir / sub).iterdir()) == names
    params = json.loads((phantom_dir / "phantoms.json").read_text())
    assert params["n_per_class"] == N_PER_CLASS and params["size"] == SIZE


@pytest.mark.parametrize("sub", ["lung_masks", "infection_masks"])
def test_masks_are_0_255(phantom_dir, sub):
    seen: set[int] = set()
    for path in (phantom_dir / sub).iterdir():
        arr = np.asarray(Image.open(path))
        assert arr.shape == (SIZE, SIZE)
        values = set(np.unique(arr).tolist())
        assert values <= {0, 255}, f"{path.name}: {values}"
        seen |= values
    assert seen == {0, 255}


def test_reused_when_parameters_equal(phantom_dir):
    before = {p: p.stat().st_mtime_ns for p in phantom_dir.rglob("*")}
    again = write_phantom_dataset(phantom_dir, n_per_class=N_PER_CLASS, size=SIZE)
    assert again == phantom_dir
    assert {p: p.stat().st_mtime_ns for p in phantom_dir.rglob("*")} == before


def test_other_parameters_do_not_overwrite(phantom_dir):
    with pytest.raises(FileExistsError, match=re.escape(str(phantom_dir))):
        write_phantom_dataset(phantom_dir, n_per_class=N_PER_CLASS + 1, size=SIZE)


def test_refuses_folder_with_other_content(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match=re.escape(str(out))):
        write_phantom_dataset(out, n_per_class=N_PER_CLASS, size=SIZE)
    assert (out / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_index_dataset_says_synthetic(phantom_dir):
    result = index_dataset(phantom_dir)
    assert result.source == "synthetic"
    assert len(result.records) == 3 * N_PER_CLASS
    assert {r.source for r in result.records} == {"synthetic"}
    assert all(r.lung_mask and r.infection_mask for r in result.records)
