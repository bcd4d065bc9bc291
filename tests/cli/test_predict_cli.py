"""Tests for ``monaicxr predict`` (monaicxr.cli.predict): exit status and messages, on SYNTHETIC phantoms."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from PIL import Image

from monaicxr.cli.main import main
from monaicxr.data.synthetic import make_phantom

REPO = Path(__file__).resolve().parents[2]


def _folder(root: Path, good: int, bad: int) -> Path:
    root.mkdir(parents=True)
    for i in range(good):
        Image.fromarray(make_phantom(i, size=96, kind="covid").image).save(root / f"good_{i}.png")
    for i in range(bad):
        (root / f"bad_{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return root


def test_predict_good_and_bad(tmp_path, capsys):
    inputs = _folder(tmp_path / "in", good=2, bad=1)
    assert main(["predict", str(inputs), str(tmp_path / "out"), "--models", "lung,classifier", "-q"]) == 0
    printed = capsys.readouterr().out
    assert "predict: 3 found, 2 read, 2 predicted, 1 skipped" in printed
    assert "skipped: bad_0.png: cannot be read as an image" in printed
    assert "note:" not in printed  # infection was not asked for
    with open(tmp_path / "out/predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["skipped", "predicted", "predicted"]
    assert (tmp_path / "out/report.html").is_file()


def test_predict_single_file_with_default_models(tmp_path, capsys):
    inputs = _folder(tmp_path / "in", good=1, bad=0)
    assert main(["predict", str(inputs / "good_0.png"), str(tmp_path / "out"), "--no-report", "-q"]) == 0
    printed = capsys.readouterr().out
    if not (REPO / "bundles/unet/models/model_infection.pt").is_file():
        assert "note: infection model skipped" in printed
    assert "1 found, 1 read, 1 predicted, 0 skipped" in printed
    assert not (tmp_path / "out/report.html").exists()


def test_nothing_predicted_exit_1(tmp_path, capsys):
    inputs = _folder(tmp_path / "in", good=0, bad=2)
    assert main(["predict", str(inputs), str(tmp_path / "out"), "--models", "lung", "-q"]) == 1
    assert "2 found, 0 read, 0 predicted, 2 skipped" in capsys.readouterr().out


@pytest.mark.parametrize(
    "models, message",
    [("lung,no_such_model", "unknown model 'no_such_model'"), ("lung,lung", "more than one model for ['lung']")],
)
def test_bad_models_exit_2(tmp_path, capsys, models, message):
    inputs = _folder(tmp_path / "in", good=1, bad=0)
    assert main(["predict", str(inputs), str(tmp_path / "out"), "--models", models]) == 2
    assert message in capsys.readouterr().err


def test_missing_weights_and_input_exit_2(tmp_path, capsys):
    bundle = tmp_path / "unet_copy"
    shutil.copytree(REPO / "bundles/unet/configs", bundle / "configs")
    assert main(["predict", str(tmp_path / "nothing"), str(tmp_path / "out"), "--models", str(bundle)]) == 2
    err = capsys.readouterr().err
    assert f"{bundle}/models/model.pt" in err and "weights file does not exist" in err
    assert main(["predict", str(tmp_path / "nothing"), str(tmp_path / "out"), "--models", "lung"]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
