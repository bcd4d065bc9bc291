"""predictions.csv for a single sigmoid output: p(negative) = 1 - p(positive), and only the one logit there is."""

from __future__ import annotations

import csv

import pytest
import torch

from monaicxr.io.reports import write_classification_outputs


@pytest.mark.parametrize("shape", [(6,), (6, 1)])
def test_single_logit_is_written_once(tmp_path, shape):
    z = torch.tensor([-2.0, -0.5, 0.1, 0.7, 1.5, 3.0]).reshape(shape)
    labels = torch.tensor([0, 0, 1, 0, 1, 1])
    p = torch.sigmoid(z)
    written = write_classification_outputs(tmp_path, p, labels, ["not covid", "covid"], logits=z)
    rows = list(csv.DictReader(written["predictions_csv"].open()))
    assert list(rows[0]) == ["image", "true", "pred", "p_not covid", "p_covid", "logit_covid", "correct"]
    for row, zi, pi in zip(rows, z.reshape(-1).tolist(), p.reshape(-1).tolist(), strict=True):
        assert float(row["logit_covid"]) == pytest.approx(zi, rel=1e-5)
        assert float(row["p_covid"]) == pytest.approx(pi, abs=1e-6)
        assert float(row["p_not covid"]) == pytest.approx(1 - pi, abs=1e-6)
        assert row["pred"] == ("covid" if zi > 0 else "not covid")


def test_two_logits_keep_two_columns(tmp_path):
    z = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    written = write_classification_outputs(tmp_path, torch.softmax(z, 1), torch.tensor([1, 0]), ["a", "b"], logits=z)
    header = next(csv.reader(written["predictions_csv"].open()))
    assert header[-3:] == ["logit_a", "logit_b", "correct"]
