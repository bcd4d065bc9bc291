"""RowsCSVWriter with several keys / string values, severity captions on overlays."""

from __future__ import annotations

import csv

import numpy as np
import torch
from ignite.engine import Engine
from monai.data import MetaTensor
from PIL import Image

from monaicxr.handlers import OverlaySaver, RowsCSVWriter
from monaicxr.io.overlay import add_caption
from monaicxr.metrics.severity import format_severity

ROW = {"right_fraction": 0.1, "right_grade": "mild", "left_fraction": None, "left_reason": "lung not found",
       "total_fraction": 0.1, "total_grade": "mild"}  # fmt: skip


def _engine(items):
    engine = Engine(lambda e, batch: batch)
    return engine, [items]


def _image(name):
    return MetaTensor(torch.rand(1, 16, 16), meta={"filename_or_obj": name})


def test_rows_writer_joins_keys_with_prefixes_and_skips_empty(tmp_path):
    items = [
        {"image": _image("a.png"), "severity": {"total_fraction": 0.5}, "severity_ref": {"total_fraction": None},
         "issues": ""},
        {"image": _image("b.png"), "severity": {"total_fraction": torch.tensor(0.25)}, "issues": "bad"},
    ]  # fmt: skip
    engine, data = _engine(items)
    RowsCSVWriter(str(tmp_path / "s.csv"), ["severity", "severity_ref"], prefixes={"severity_ref": "ref_"}).attach(
        engine
    )
    RowsCSVWriter(str(tmp_path / "i.csv"), "issues", skip_empty=True).attach(engine)
    RowsCSVWriter(str(tmp_path / "none.csv"), "missing", write_header_only=True).attach(engine)
    engine.run(data)
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert rows[0] == {"image": "a.png", "total_fraction": "0.5", "ref_total_fraction": ""}
    assert rows[1]["total_fraction"] == "0.25"
    assert list(csv.DictReader((tmp_path / "i.csv").open())) == [{"image": "b.png", "issues": "bad"}]
    assert (tmp_path / "none.csv").read_text().strip() == "image,missing"


def test_caption_strip_and_text():
    assert format_severity(ROW) == "R 10.0% mild | L lung not found | both 10.0% mild"
    assert format_severity(None) == ""
    rgb = np.zeros((32, 32, 3), np.uint8)
    out = add_caption(rgb, format_severity(ROW))
    assert out.shape[1] == 256 and out.shape[0] > 256 and out[256:].any()  # enlarged, text below
    assert add_caption(rgb, "") is rgb


def test_overlay_saver_captions(tmp_path):
    item = {"image": _image("c.png"), "pred": torch.ones(1, 16, 16), "severity": ROW, "severity_ref": ROW}
    engine, data = _engine([item])
    OverlaySaver(str(tmp_path), per_epoch=False, caption_key=["severity", "severity_ref"]).attach(engine)
    engine.run(data)
    img = Image.open(tmp_path / "c.png")
    assert img.width == 256 and img.height > 256
