"""The benchmark scripts run end to end at tiny sizes and print their tables (they measure nothing here)."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "benchmarks"
KERAS_PYTHON = BENCHMARKS / ".venv-keras" / "bin" / "python"

ROW = re.compile(r"^\| (\S+) \| (\d+)x(\d+) \| (\d+) \| ([\d,]+) \| ([\d.]+) \| ([\d.]+) \|$")


@pytest.fixture
def throughput(monkeypatch):
    import torch

    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the scripts import their helper _bench_data as a sibling
    threads = torch.get_num_threads()
    yield importlib.import_module("classifier_throughput")
    torch.set_num_threads(threads)  # main(["--threads", ...]) sets it for the whole process


def test_classifier_throughput_prints_the_table(throughput, tmp_path, capsys):
    out = tmp_path / "rows.json"
    argv = ["--networks", "simple_cnn", "simple_cnn_binary", "--size", "96", "--batch_size", "2", "--warmup", "1",
            "--iterations", "1", "--threads", "1", "--synthetic", "--max_images", "4", "--json", str(out)]  # fmt: skip
    rows = throughput.main(argv)
    printed = capsys.readouterr().out
    assert "| network | input | batch | params | images/s | s/step" in printed
    table = [m.groups() for m in map(ROW.match, printed.splitlines()) if m]
    assert [t[0] for t in table] == ["simple_cnn", "simple_cnn_binary"]
    for (_, h, w, batch, params, rate, step), row in zip(table, rows, strict=True):
        assert (int(h), int(w), int(batch)) == (96, 96, 2)
        assert float(rate) > 0 and float(step) > 0
        assert int(params.replace(",", "")) == row["params"] > 0
    assert json.loads(out.read_text())["rows"][1]["network"] == "simple_cnn_binary"


def test_recipes_match_the_simple_cnn_bundle(throughput):
    """The two simple_cnn recipes build the bundle's networks (same parameter count) at the bundle's batch."""
    import torch
    from monai.bundle import ConfigParser

    configs = REPO / "bundles" / "simple_cnn" / "configs"
    for name, files in [("simple_cnn", ["train.json"]), ("simple_cnn_binary", ["train.json", "binary_150.json"])]:
        parser = ConfigParser()
        parser.read_config([str(configs / f) for f in files])
        bundle_net = parser.get_parsed_content("network_def")
        recipe = throughput.RECIPES[name]
        net, _, _ = throughput.build(recipe, recipe.size, num_classes=3, device=torch.device("cpu"))
        assert recipe.size == parser["spatial_size"][0] and recipe.batch == parser["batch_size"]
        assert [p.shape for p in net.parameters()] == [p.shape for p in bundle_net.parameters()]


def test_unknown_network_is_refused(throughput):
    with pytest.raises(SystemExit):
        throughput.main(["--networks", "resnet999"])


@pytest.mark.slow
@pytest.mark.skipif(not KERAS_PYTHON.is_file(), reason="no Keras venv: run `bash benchmarks/setup_keras_env.sh` first")
def test_keras_vs_monaicxr_runs_both_sides(tmp_path):
    out = tmp_path / "keras_vs.json"
    cmd = [sys.executable, str(BENCHMARKS / "keras_vs_monaicxr.py"), "--images", "32", "--epochs", "1", "--synthetic",
           "--threads", "1", "--json", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| (a) training step, preloaded tensors |" in proc.stdout
    result = json.loads(out.read_text())
    rnd = result["rounds"][0]
    assert rnd["monaicxr_step"]["params_trainable"] == rnd["keras"]["params_trainable"] == 557_185
    assert rnd["monaicxr_step"]["params_total"] == rnd["keras"]["params_total"]
    assert result["medians"]["keras"]["idg"] > 0 and result["medians"]["monaicxr_epoch"] > 0


def test_cpu_memory_reuse_prints_the_table(tmp_path):
    out = tmp_path / "reuse.json"
    cmd = [sys.executable, str(BENCHMARKS / "cpu_memory_reuse.py"), "--networks", "simple_cnn_binary", "--steps", "1",
           "--warmup", "1", "--threads", "1", "--json", str(out)]  # fmt: skip
    printed = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert "| network | glibc default: s/step | freed memory kept: s/step |" in printed
    assert re.search(
        r"^\| bundles/simple_cnn binary_150, 150², batch 32 \| [\d.]+ \| [\d.]+ \| [\d.]+x \|", printed, re.M
    )
    results = json.loads(out.read_text())
    assert [(r["keep"], r["applied"]) for r in results] == [(False, False), (True, True)]


@pytest.fixture
def cpu_speed(monkeypatch):
    import torch

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    threads = torch.get_num_threads()
    yield importlib.import_module("cpu_training_speed")
    torch.set_num_threads(threads)


def test_cpu_training_speed_step_prints_every_mode(cpu_speed, capsys):
    rows = cpu_speed.main(["step", "--networks", "simple_cnn", "--synthetic", "--batch_size", "2", "--warmup", "1",
                           "--iterations", "1", "--threads", "1"])  # fmt: skip
    printed = capsys.readouterr().out
    assert [r["mode"] for r in rows] == list(cpu_speed.MODES)
    assert all(r["images_per_s"] > 0 and r["final_loss"] == r["final_loss"] for r in rows)
    assert printed.count("| simple_cnn | 100x100 | 2 |") == len(cpu_speed.MODES)
    assert "CPU: " in printed


@pytest.mark.slow
def test_cpu_training_speed_epoch_runs_the_bundle_twice(cpu_speed, capsys):
    rows = cpu_speed.main(["epoch", "--bundle", "simple_cnn", "--synthetic", "--threads", "1", "--num_workers", "0"])
    assert [r["settings"] for r in rows] == ["before (--precision fp32)", "defaults"]
    assert all(r["n_train"] > 0 and r["epoch_s"] > 0 for r in rows)
    assert "| defaults |" in capsys.readouterr().out
