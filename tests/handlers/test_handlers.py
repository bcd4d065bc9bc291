from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from monai.data import MetaTensor
from PIL import Image

from monaicxr.handlers import OverlaySaver, RunSummary, latest_checkpoint
from monaicxr.io.overlay import CLASS_COLOURS, render_overlay


def test_latest_checkpoint_picks_the_highest_epoch(tmp_path):
    for n in (1, 2, 10):
        (tmp_path / f"checkpoint_epoch={n}.pt").write_bytes(b"x")
    (tmp_path / "checkpoint_final.pt").write_bytes(b"x")
    assert latest_checkpoint(tmp_path).endswith("checkpoint_epoch=10.pt")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        latest_checkpoint(tmp_path / "empty")
    assert latest_checkpoint(tmp_path / "empty", required=False) is None


def test_render_overlay_fills_prediction_and_outlines_truth():
    image = np.zeros((10, 12), np.float32)
    pred = np.zeros((10, 12))
    pred[2:5, 2:5] = 1
    truth = np.zeros((10, 12))
    truth[5:9, 6:10] = 2
    rgb = render_overlay(image, pred, truth, alpha=0.5)
    assert rgb.shape == (10, 12, 3)
    fill = CLASS_COLOURS[1][0]
    assert tuple(rgb[3, 3]) == tuple(int(0.5 * c) for c in fill)
    assert tuple(rgb[5, 6]) == CLASS_COLOURS[2][1]  # boundary pixel of the reference infection
    assert tuple(rgb[0, 0]) == (0, 0, 0)


def _engine(items):
    def step(engine, batch):
        return batch

    return Engine(step), [items]


def test_overlay_saver_writes_max_images(tmp_path):
    items = []
    for i in range(3):
        img = MetaTensor(torch.rand(1, 8, 8), meta={"filename_or_obj": f"/data/img_{i}.png"})
        items.append({"image": img, "pred": torch.ones(1, 8, 8), "label": torch.zeros(1, 8, 8)})
    engine, data = _engine(items)
    OverlaySaver(str(tmp_path), max_images=2, foreground_value=2).attach(engine)
    engine.run(data, max_epochs=1)
    written = sorted(p.name for p in (tmp_path / "epoch_001").glob("*.png"))
    assert written == ["img_0.png", "img_1.png"]
    rgb = np.asarray(Image.open(tmp_path / "epoch_001" / "img_0.png"))
    # infection fill colour dominates the red channel
    assert rgb[..., 0].mean() > rgb[..., 2].mean()


def test_run_summary_writes_json(tmp_path):
    engine = Engine(lambda e, b: None)
    RunSummary(str(tmp_path / "s.json"), outputs={"model": "m.pt"}, data_info={"synthetic": True}).attach(engine)
    engine.run([0, 1], max_epochs=2)
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["epochs_completed"] == 2 and s["iterations"] == 4 and s["outputs"] == {"model": "m.pt"}
