"""Stand-in models for the predict tests: a copy of the unet bundle's configs with seeded random weights."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def unet_bundle_copy(tmp_path: Path) -> Path:
    """``tmp_path/unet_copy`` with the unet bundle's configs and an empty ``models/``."""
    copy = tmp_path / "unet_copy"
    shutil.copytree(REPO / "bundles/unet/configs", copy / "configs")
    (copy / "models").mkdir()
    return copy


def random_3level_model(tmp_path: Path):
    """A ``ModelSpec`` of a 3-level infection model with random (seeded) weights: the wiring, not a model."""
    import torch
    from monai.bundle import ConfigParser

    from monaicxr.workflows.predict import ModelSpec

    copy = unet_bundle_copy(tmp_path)
    parser = ConfigParser()
    parser.read_config(str(copy / "configs/inference.json"))
    torch.manual_seed(0)
    torch.save(parser.get_parsed_content("network_def").state_dict(), copy / "models/model_3level.pt")
    return ModelSpec("infection", str(copy), overlay="configs/task_3level.json", weights="models/model_3level.pt")
