"""``monaicxr train / evaluate / export``: bundles by name, overlays by short name, overrides, clear errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from parameterized import parameterized

from monaicxr.cli.bundle import parse_overrides
from monaicxr.cli.main import main
from tests.bundles.bundle_helpers import REPO, UNET_TINY

OVERRIDE_CASES = [
    (["a=1"], [], {"a": 1}),
    ([], ["--spatial_size", "[32, 32]", "--name", "runs/x"], {"spatial_size": [32, 32], "name": "runs/x"}),
    ([], ["--flag", "--n=2", "--x", "null"], {"flag": True, "n": 2, "x": None}),
    (["validate#x=True"], ["--lr", "1e-3"], {"validate#x": True, "lr": 1e-3}),
]


@parameterized.expand(OVERRIDE_CASES)
def test_parse_overrides(sets, extra, expected):
    assert parse_overrides(sets, extra) == expected


def test_parse_overrides_rejects_words():
    with pytest.raises(ValueError, match="--id value"):
        parse_overrides([], ["stray"])
    with pytest.raises(ValueError, match="id=value"):
        parse_overrides(["novalue"], [])


ERROR_CASES = [
    (["train", "nosuch"], "unknown bundle 'nosuch'"),
    (["train", "unet", "--overlay", "nope"], "unknown overlay 'nope'"),
    (["evaluate", "densenet121"], "densenet121/models/model.pt does not exist"),
    (["export", "densenet121", "--onnx"], "densenet121/models/model.pt does not exist"),
    (["evaluate", "unet", "--ckpt_path", "/nonexistent/m.pt"], "/nonexistent/m.pt does not exist"),
]


@pytest.mark.parametrize(("argv", "message"), ERROR_CASES)
def test_errors_name_the_problem(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_unknown_options_only_pass_through_for_bundle_verbs(capsys):
    with pytest.raises(SystemExit):
        main(["layouts", "--num_epochs", "1"])
    assert "unrecognized arguments" in capsys.readouterr().err


def test_train_with_overlay_by_short_name(tmp_path):
    args = ["train", "unet", "--overlay", "task_3level", "--logging-conf", "none", "--set", f"output_dir={tmp_path}"]
    args += ["--num_epochs", "1"]
    for key, value in UNET_TINY.items():
        args += [f"--{key}", json.dumps(value) if not isinstance(value, str) else value]
    assert main(args) == 0
    assert (tmp_path / "models" / "model.pt").is_file()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert "val_mse_raw" in summary["last_validation"]  # the 3-level task's metric: the overlay was applied


def test_bundle_given_as_a_path(tmp_path, capsys):
    bundle = tmp_path / "my_cnn"
    shutil.copytree(REPO / "bundles" / "simple_cnn" / "configs", bundle / "configs")
    assert main(["export", str(bundle), "--onnx"]) == 2
    assert f"{bundle}/models/model.pt does not exist" in capsys.readouterr().err


def test_export_onnx_matches_torch(tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    assert main(["export", "simple_cnn", "--onnx", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "max abs diff" in out
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((3, 1, 100, 100), dtype=np.float32)  # a batch size not exported
    (pred,) = session.run(None, {"image": x})
    assert pred.shape == (3, 3)


def test_export_parity_failure_is_an_error(tmp_path, capsys, monkeypatch):
    import torch

    from monaicxr.workflows import bundles

    # an exporter whose file computes something else: outputs off by 0.5 everywhere
    monkeypatch.setattr(torch.onnx, "export", lambda net, args, path, **kw: open(path, "wb").close())
    monkeypatch.setattr(bundles, "_onnx_outputs", lambda path, x: ([np.full((x.shape[0], 3), 0.5)], "fake"))
    assert main(["export", "simple_cnn", "--onnx", "--out", str(tmp_path)]) == 2
    assert "ONNX outputs differ from the PyTorch network's by up to" in capsys.readouterr().err
