"""monaicxr predict end to end on real COVID-QU-Ex films with the shipped default models (skipped without data)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monaicxr.workflows.predict import predict

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "covidqu_infection"
CLASSES = ["COVID-19", "Non-COVID", "Normal"]


@pytest.mark.shared_data
@pytest.mark.skipif(not DATA.is_dir(), reason=f"{DATA} is absent (the real COVID-QU-Ex copy)")
def test_predict_on_real_films(tmp_path):
    names = sorted(p.name for p in (DATA / "images").iterdir())[::700][:6]  # all three classes
    films = tmp_path / "films"
    films.mkdir()
    for n in names:
        (films / n).write_bytes((DATA / "images" / n).read_bytes())
    summary = predict(films, tmp_path / "out", progress=False)
    assert summary["n_predicted"] == len(names) and summary["n_skipped"] == 0
    with open(tmp_path / "out" / "predictions.csv", newline="") as f:
        rows = {Path(r["file"]).name: r for r in csv.DictReader(f)}
    dice = []
    for n in names:
        r = rows[n]
        assert "not a frontal" not in r["warnings"], r["warnings"]
        assert abs(sum(float(r[f"p_{c}"]) for c in CLASSES) - 1) < 1e-4
        mask = np.asarray(Image.open(tmp_path / "out" / r["lung_mask"])) > 0
        truth = np.asarray(Image.open(DATA / "lung_masks" / n)) > 0
        assert mask.shape == truth.shape
        dice.append(2 * (mask & truth).sum() / (mask.sum() + truth.sum()))
    assert np.mean(dice) > 0.93, dice
    assert (tmp_path / "out" / "report.html").is_file()
