"""Tests for monaicxr.data.fingerprint: counts, image headers, mask values and area statistics."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from monaicxr.data.fingerprint import compute_fingerprint, write_fingerprint
from monaicxr.data.records import CXRRecord, DatasetError, IndexResult, SkippedItem

H, W = 20, 30


def _png(path, array, mode=None):
    Image.fromarray(array, mode=mode).save(path)
    return str(path)


def _rect_mask(h, w, rows, cols, value=255):
    m = np.zeros((h, w), np.uint8)
    m[rows[0] : rows[1], cols[0] : cols[1]] = value
    return m


@pytest.fixture()
def dataset(tmp_path):
    """6 records: 4 COVID-19 (with infection) and 2 Normal, known lung and infection pixel counts."""
    recs, lung_px, inf_px = [], {}, {}
    for i in range(6):
        cls = "COVID-19" if i < 4 else "Normal"
        img = _png(tmp_path / f"img{i}.png", np.full((H, W), 100 + i, np.uint8))
        lung_rows = (2, 4 + 2 * i)  # 2 + 2i rows x 10 columns
        lung = _rect_mask(H, W, lung_rows, (5, 15))
        lung_px[f"img{i}"] = (lung > 0).sum()
        inf_path = None
        if cls == "COVID-19":
            inf = _rect_mask(H, W, (2, 3), (5, 5 + i + 1))  # 1 row x (i + 1) columns, inside the lung
            inf_px[f"img{i}"] = (inf > 0).sum()
            inf_path = _png(tmp_path / f"inf{i}.png", inf)
        recs.append(
            CXRRecord(
                id=f"img{i}",
                image=img,
                class_name=cls,
                lung_mask=_png(tmp_path / f"lung{i}.png", lung),
                infection_mask=inf_path,
                source="test",
            )
        )
    skipped = [SkippedItem("/data/a.png", "no lung mask"), SkippedItem("/data/b.txt", "not an image")]
    result = IndexResult("test", str(tmp_path), ("COVID-19", "Normal"), recs, skipped)
    return result, lung_px, inf_px


def _expected_stats(values):
    a = np.asarray(values, dtype=np.float64)
    return {
        "n": len(a),
        "mean": a.mean(),
        "std": a.std(),
        "min": a.min(),
        "p5": np.percentile(a, 5),
        "median": np.median(a),
        "p95": np.percentile(a, 95),
        "max": a.max(),
    }


def _assert_stats(got, values):
    exp = _expected_stats(values)
    assert got["n"] == exp.pop("n")
    for k, v in exp.items():
        assert got[k] == pytest.approx(v, abs=1e-6), k


def test_counts_and_headers(dataset):
    result, _, _ = dataset
    splits = {"train": ["img0", "img1", "img4"], "val": ["img2", "img5"], "test": ["img3"]}
    fp = compute_fingerprint(result, splits, progress=False)
    assert fp["source"] == "test" and fp["num_records"] == 6
    assert fp["class_counts"] == {"COVID-19": 4, "Normal": 2}
    assert fp["split_counts"] == {"train": 3, "val": 2, "test": 1}
    assert fp["class_split_counts"]["train"] == {"COVID-19": 2, "Normal": 1}
    assert fp["class_split_counts"]["test"] == {"COVID-19": 1}
    assert fp["image_sizes"] == {f"{W}x{H}": 6}
    assert fp["image_modes"] == {"L": 6}
    assert fp["bits_per_sample"] == {"8": 6}
    assert fp["mask_counts"] == {"lung": 6, "infection": 4, "ignore": 0}
    assert fp["mask_values"] == {"infection": [0, 255], "lung": [0, 255]}
    assert fp["unexpected_mask_values"] == [] and fp["mask_size_mismatches"] == [] and fp["unreadable"] == []
    assert fp["skipped"] == [
        {"path": "/data/a.png", "reason": "no lung mask"},
        {"path": "/data/b.txt", "reason": "not an image"},
    ]
    assert fp["num_skipped"] == 2 and fp["mask_stats_sample"] == 6


def test_area_statistics(dataset):
    result, lung_px, inf_px = dataset
    fp = compute_fingerprint(result, progress=False)
    lung_frac = {k: v / (H * W) for k, v in lung_px.items()}
    _assert_stats(fp["lung_area_fraction"]["all"], list(lung_frac.values()))
    _assert_stats(fp["lung_area_fraction"]["by_class"]["Normal"], [lung_frac["img4"], lung_frac["img5"]])
    _assert_stats(fp["infection_area_fraction"]["all"], [v / (H * W) for v in inf_px.values()])
    _assert_stats(fp["infection_lung_fraction"]["by_class"]["COVID-19"], [inf_px[k] / lung_px[k] for k in inf_px])
    assert "Normal" not in fp["infection_area_fraction"]["by_class"]


def test_modes_unexpected_values_and_mismatch(tmp_path):
    recs = [
        CXRRecord("a", _png(tmp_path / "a.png", np.zeros((8, 8), np.uint16) + 1000), lung_mask=None),
        CXRRecord("b", _png(tmp_path / "b.png", np.zeros((8, 10, 3), np.uint8))),
        CXRRecord(
            "c",
            _png(tmp_path / "c.png", np.zeros((8, 8), np.uint8)),
            lung_mask=_png(tmp_path / "c_lung.png", _rect_mask(8, 8, (0, 4), (0, 8), value=1)),  # 0/1 is fine
            ignore_mask=_png(tmp_path / "c_ign.png", np.array([[0, 128, 255, 7] * 2] * 8, np.uint8)),
        ),
        CXRRecord(
            "d",
            _png(tmp_path / "d.png", np.zeros((8, 8), np.uint8)),
            lung_mask=_png(tmp_path / "d_lung.png", np.zeros((4, 4), np.uint8)),
        ),
        CXRRecord("e", str(tmp_path / "missing.png")),
    ]
    fp = compute_fingerprint(IndexResult("t", str(tmp_path), (), recs), progress=False)
    assert fp["image_modes"]["RGB"] == 1 and fp["image_modes"]["L"] == 2
    assert fp["image_modes"].get("I;16", 0) + fp["image_modes"].get("I", 0) == 1
    assert fp["image_sizes"] == {"8x8": 3, "10x8": 1}
    assert fp["mask_values"] == {"ignore": [0, 7, 128, 255], "lung": [0, 1]}
    assert fp["unexpected_mask_values"] == [
        {"id": "c", "kind": "ignore", "path": str(tmp_path / "c_ign.png"), "shape": [8, 8], "values": [0, 7, 128, 255],
         "num_values": 4}
    ]  # fmt: skip
    assert [(m["id"], m["mask"], m["image"]) for m in fp["mask_size_mismatches"]] == [("d", "4x4", "8x8")]
    assert [u["id"] for u in fp["unreadable"]] == ["e"]
    assert fp["class_counts"] == {"<none>": 5}
    _assert_stats(fp["lung_area_fraction"]["all"], [0.5, 0.0])


def test_max_masks_sample_is_seeded(dataset, tmp_path):
    result, _, _ = dataset
    a = compute_fingerprint(result, max_masks=3, seed=1, progress=False)
    b = compute_fingerprint(result, max_masks=3, seed=1, progress=False)
    assert a["mask_stats_sample"] == 3 and a["lung_area_fraction"]["all"]["n"] == 3
    assert a == b
    assert a["mask_counts"]["lung"] == 6  # presence is counted over all records
    path = write_fingerprint(tmp_path / "out" / "fingerprint.json", a)
    assert json.loads(path.read_text()) == json.loads(json.dumps(a))


def test_splits_must_cover_records(dataset):
    result, _, _ = dataset
    with pytest.raises(DatasetError, match="in no split"):
        compute_fingerprint(result, {"train": ["img0"], "val": [], "test": []}, progress=False)
