"""Tests for monaicxr.cli.main: the ``monaicxr`` console script, run in-process through ``main([...])``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monaicxr import __version__
from monaicxr.cli.main import main
from monaicxr.data.registry import INDEXERS

N_PAIRS = 10


def _png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def make_pairs(root: Path, n: int = N_PAIRS) -> Path:
    """A tiny ``image_mask_pairs`` layout: ``root/images/img_<i>.png`` with ``root/masks/img_<i>.png``."""
    for i in range(n):
        image = np.full((16, 16), 20 * i, dtype=np.uint8)
        image[:8] = 255 - 20 * i
        mask = np.zeros((16, 16), dtype=np.uint8)
        mask[4:12, 4:12] = 255
        _png(root / "images" / f"img_{i}.png", image)
        _png(root / "masks" / f"img_{i}.png", mask)
    return root


@pytest.fixture(autouse=True)
def _restore_root_log_level():
    """main() sets the root logger's level; put it back so later tests are not affected."""
    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    return make_pairs(tmp_path / "pairs")


def test_layouts(capsys):
    assert main(["layouts"]) == 0
    assert capsys.readouterr().out.split() == list(INDEXERS)


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_detect(pairs, capsys):
    assert main(["detect", str(pairs)]) == 0
    assert capsys.readouterr().out.strip() == "image_mask_pairs"


@pytest.mark.parametrize("command", [["detect"], ["fingerprint", "--out", "fp.json"], ["index", "--out", "run"]])
def test_missing_folder_exit_2(tmp_path, capsys, command):
    missing = tmp_path / "no_such_dataset"
    args = [command[0], str(missing), *(str(tmp_path / a) if a.endswith(("json", "run")) else a for a in command[1:])]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert str(missing) in err
    assert "Traceback" not in err


def test_verbose_shows_traceback(tmp_path, capsys):
    missing = tmp_path / "no_such_dataset"
    assert main(["detect", str(missing), "-v"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and str(missing) in err


def test_undetectable_folder_exit_2(tmp_path, capsys):
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "notes.txt").write_text("not a dataset\n")
    assert main(["detect", str(tmp_path / "odd")]) == 2
    err = capsys.readouterr().err
    assert "cannot tell the layout" in err and "Traceback" not in err


def test_unknown_layout_is_argparse_error(pairs, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["index", str(pairs), "--out", str(tmp_path / "run"), "--layout", "nope"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "nope" in err and "image_mask_pairs" in err and "covidqu_flat" in err
    assert not (tmp_path / "run").exists()


def test_fingerprint(pairs, tmp_path, capsys):
    out = tmp_path / "fp" / "fingerprint.json"
    assert main(["fingerprint", str(pairs), "--out", str(out), "--max-masks", "3"]) == 0
    assert str(out) in capsys.readouterr().out
    fp = json.loads(out.read_text())
    assert fp["source"] == "image_mask_pairs"
    assert fp["num_records"] == N_PAIRS
    assert fp["mask_stats_sample"] == 3


def test_index(pairs, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        ["index", str(pairs), "--out", str(out), "--layout", "image_mask_pairs", "--ratios", "0.6", "0.2", "0.2"]
        + ["--seed", "1", "--task", "lung"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    for name in ("datalist.json", "splits.json", "fingerprint.json"):
        assert (out / name).is_file()
        assert str(out / name) in printed
    datalist = json.loads((out / "datalist.json").read_text())
    sizes = {s: len(datalist[s]) for s in ("training", "validation", "test")}
    assert sum(sizes.values()) == N_PAIRS
    assert f"train {sizes['training']}, val {sizes['validation']}, test {sizes['test']}" in printed
    splits = json.loads((out / "splits.json").read_text())
    assert splits["seed"] == 1 and splits["ratios"] == [0.6, 0.2, 0.2]


def test_index_task_not_met_exit_2(pairs, tmp_path, capsys):
    # image_mask_pairs has no infection masks, so the infection task must be refused with a clear message
    assert main(["index", str(pairs), "--out", str(tmp_path / "run"), "--task", "infection"]) == 2
    err = capsys.readouterr().err
    assert "infection" in err and "Traceback" not in err


def test_index_always_verifies(pairs, tmp_path, capsys):
    """Index decodes every file as the loader does; there is no switch to skip that (a file that passes index
    must never abort training), so --no-verify is an unknown option."""
    with pytest.raises(SystemExit) as exit_info:
        main(["index", str(pairs), "--out", str(tmp_path / "run"), "--no-verify"])
    assert exit_info.value.code == 2 and "--no-verify" in capsys.readouterr().err


def test_bad_ratios_exit_2(pairs, tmp_path, capsys):
    code = main(
        ["index", str(pairs), "--out", str(tmp_path / "run"), "--split-mode", "ratios", "--ratios", "0.5", "0.5", "0.5"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "sum to 1" in err and "Traceback" not in err


def test_phantoms(tmp_path, capsys):
    out = tmp_path / "phantoms"
    assert main(["phantoms", str(out), "--per-class", "2", "--size", "64", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert "SYNTHETIC" in printed and str(out) in printed
    assert (out / "manifest.csv").is_file()
    with Image.open(next((out / "images").iterdir())) as img:
        assert img.size == (64, 64)
    assert main(["detect", str(out)]) == 0
    assert capsys.readouterr().out.strip() == "covidqu_flat"


def test_help_imports_neither_torch_nor_monai():
    """``monaicxr --help`` stays fast (well under a second here) because building the parser imports no heavy
    package: every command imports torch / MONAI inside its own function. Checked by module, not by time."""
    import subprocess
    import sys

    code = "import sys, monaicxr.cli.main as m; m.build_parser(); print(sorted({'torch', 'monai'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
