"""What bundles/*/models holds: files that fit the repository, and a clear error where models/model.pt is absent.

A bundle either ships ``models/model.pt`` or its ``evaluate.json`` and ``inference.json``, run with their
default ``ckpt_path``, stop with an error naming that file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bundle_helpers import error_messages
from monai.bundle import ConfigWorkflow
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
BUNDLES = sorted(p.name for p in (REPO / "bundles").iterdir() if (p / "configs" / "train.json").is_file())
WITHOUT_MODEL = [name for name in BUNDLES if not (REPO / "bundles" / name / "models" / "model.pt").is_file()]
MAX_FILE_BYTES = 50_000_000  # the repository's limit per committed file

# small enough that the data preparation before the error takes a moment
TINY = {
    "spatial_size": [32, 32],
    "num_workers": 0,
    "show_progress": False,
    "cache_rate": 0.0,
    "synthetic_per_class": 2,
    "split_ratios": [0.34, 0.33, 0.33],
}


def test_committed_weights_fit_the_per_file_limit():
    files = [p for p in (REPO / "bundles").glob("*/models/**/*") if p.is_file()]
    assert any(p.suffix == ".pt" for p in files)
    too_big = [
        f"{p.relative_to(REPO)} ({p.stat().st_size / 1e6:.1f} MB)" for p in files if p.stat().st_size > MAX_FILE_BYTES
    ]
    assert not too_big, f"over {MAX_FILE_BYTES / 1e6:g} MB: {too_big}"


def _workflow(name: str, config: str, tmp_path: Path) -> ConfigWorkflow:
    configs = REPO / "bundles" / name / "configs"
    common = {"bundle_root": str(REPO / "bundles" / name), "output_dir": str(tmp_path / "out"), **TINY}
    if config == "evaluate":
        files = [str(configs / "train.json"), str(configs / "evaluate.json")]
        return ConfigWorkflow(
            config_file=files, meta_file=str(configs / "metadata.json"), logging_file=False, workflow_type="eval",
            **common,
        )  # fmt: skip
    images = tmp_path / "in"
    images.mkdir()
    Image.fromarray(np.full((48, 48), 128, np.uint8)).save(images / "film.png")
    return ConfigWorkflow(
        config_file=str(configs / "inference.json"), meta_file=str(configs / "metadata.json"), logging_file=False,
        workflow_type="infer", input_dir=str(images), **common,
    )  # fmt: skip


def _run(wf: ConfigWorkflow) -> str:
    with pytest.raises(Exception) as info:
        wf.initialize()
        wf.run()
    return error_messages(info.value)


@pytest.mark.parametrize("config", ["evaluate", "inference"])
@pytest.mark.parametrize("name", WITHOUT_MODEL)
def test_missing_model_pt_is_named(name, config, tmp_path):
    message = _run(_workflow(name, config, tmp_path))
    assert f"checkpoint {REPO / 'bundles' / name / 'models' / 'model.pt'} does not exist" in message


@pytest.mark.parametrize("config", ["evaluate", "inference"])
@pytest.mark.parametrize("name", WITHOUT_MODEL)
def test_missing_model_pt_stops_before_the_data(name, config, tmp_path):
    message = _run(_workflow(name, config, tmp_path))
    assert "models/model.pt does not exist" in message
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
