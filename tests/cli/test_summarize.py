"""monaicxr summarize: a table of several runs' summary.json; bad folders reported, the rest still shown."""

from __future__ import annotations

import csv
import io
import json

import pytest

from monaicxr.cli.main import main
from monaicxr.cli.summarize import load_summary, summary_table


def _run(tmp_path, name, dice, epochs=3):
    folder = tmp_path / name
    folder.mkdir()
    summary = {
        "epochs_completed": epochs,
        "data": {"n_train": 10, "n_val": 4},
        "last_validation": {"val_dice": dice, "val_hd95": float("nan")},
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_markdown_table_has_a_row_per_run_in_order(tmp_path, capsys):
    a, b = _run(tmp_path, "bce", 0.5), _run(tmp_path, "dice", 0.61234, epochs=2)
    assert main(["summarize", str(a), str(b)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| run | epochs | n_train | n_val | val_dice | val_hd95 |"
    assert lines[2] == "| bce | 3 | 10 | 4 | 0.5000 | nan |"
    assert lines[3] == "| dice | 2 | 10 | 4 | 0.6123 | nan |"


def test_csv_with_chosen_metrics(tmp_path):
    table = summary_table({"x": load_summary(_run(tmp_path, "x", 0.25))}, metrics=["val_dice"], fmt="csv")
    assert list(csv.reader(io.StringIO(table))) == [
        ["run", "epochs", "n_train", "n_val", "val_dice"],
        ["x", "3", "10", "4", "0.25"],
    ]


def test_bad_folders_are_reported_and_the_rest_shown(tmp_path, capsys):
    good = _run(tmp_path, "good", 0.7)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "summary.json").write_text("{not json")
    assert main(["summarize", str(good), str(tmp_path / "missing"), str(broken)]) == 1
    out, err = capsys.readouterr()
    assert "| good |" in out
    assert "missing" in err and "no summary.json" in err
    assert "broken" in err and "not valid JSON" in err
    assert main(["summarize", str(tmp_path / "missing")]) == 2


def test_summary_without_validation_is_refused(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"epochs_completed": 0}))
    with pytest.raises(ValueError, match="last_validation"):
        load_summary(tmp_path)
