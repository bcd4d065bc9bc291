"""Tests for monaicxr.data.polygons: polygon rasterisation and the Darwin / COCO indexers."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from parameterized import parameterized
from PIL import Image

from monaicxr.data.polygons import index_coco, index_darwin, rasterize_polygons
from monaicxr.data.records import DatasetError

H, W = 30, 40


def _square(x0, y0, x1, y1):
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _darwin_path(points):
    return [{"x": x, "y": y} for x, y in points]


def _image(path: Path, w=W, h=H):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w), 90, np.uint8)).save(path)


def _read(path) -> np.ndarray:
    return np.asarray(Image.open(path))


@parameterized.expand(
    [
        ("square", [_square(2, 2, 6, 6)], 25),
        ("two_squares", [_square(0, 0, 1, 1), _square(10, 10, 12, 12)], 4 + 9),
        ("overlap_united", [_square(0, 0, 4, 4), _square(2, 2, 6, 6)], 25 + 25 - 9),
        ("clipped", [_square(-10, -10, 4, 2)], 5 * 3),
        ("outside", [_square(100, 100, 120, 120)], 0),
        ("degenerate", [[(1, 1), (5, 5)]], 0),
    ]
)
def test_rasterize_pixel_count(_, polygons, expected):
    mask = rasterize_polygons(polygons, H, W)
    assert mask.dtype == np.uint8 and mask.shape == (H, W)
    assert set(np.unique(mask)) <= {0, 1}
    assert int(mask.sum()) == expected


def test_rasterize_rows_are_y():
    mask = rasterize_polygons([_square(30, 1, 35, 3)], H, W)  # x in 30..35, y in 1..3
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (1, 3, 30, 35)


def test_rasterize_even_odd_hole():
    rings = [_square(0, 0, 10, 10), _square(3, 3, 5, 5)]
    assert int(rasterize_polygons(rings, H, W, even_odd=True).sum()) == 121 - 9
    assert int(rasterize_polygons(rings, H, W).sum()) == 121


def _darwin(root: Path, name: str, annotations, *, filename=None, w=W, h=H, image=True):
    filename = filename or f"{name}.png"
    if image:
        _image(root / "images" / filename)
    ann = {"image": {"filename": filename, "width": w, "height": h}, "annotations": annotations}
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / f"{name}.json").write_text(json.dumps(ann))


@pytest.fixture()
def darwin_root(tmp_path):
    root = tmp_path / "v7"
    _darwin(
        root,
        "a",
        [
            {"name": "Left Lung", "polygon": {"path": _darwin_path(_square(2, 2, 6, 6))}},
            {"name": "Right Lung", "polygon": {"path": _darwin_path(_square(20, 2, 24, 6))}},
            {"name": "Ignore", "polygon": {"path": _darwin_path(_square(3, 3, 4, 4))}},
            {"name": "COVID-19", "tag": {}},
        ],
    )
    _darwin(
        root,
        "b",
        [
            {
                "name": "Lungs",
                "complex_polygon": {"path": [_darwin_path(_square(0, 0, 10, 10)), _darwin_path(_square(3, 3, 5, 5))]},
            },
            {"name": "No Pneumonia (healthy)", "tag": {}},
        ],
    )
    _darwin(root, "c", [{"name": "COVID-19", "tag": {}}])  # lateral view: no lungs drawn
    _darwin(root, "d", [{"name": "Lungs", "polygon": {"path": _darwin_path(_square(1, 1, 3, 3))}}], image=False)
    _darwin(root, "e", [{"name": "Lungs", "polygon": {"path": _darwin_path(_square(1, 1, 3, 3))}}], w=W * 2)
    _image(root / "images" / "orphan.png")
    return root


def test_darwin_masks_and_skips(darwin_root, tmp_path):
    out = tmp_path / "masks"
    result = index_darwin(darwin_root, out_dir=out)
    assert result.source == "darwin" and result.classes == ()
    by_id = {r.id: r for r in result.records}
    assert sorted(by_id) == ["images/a", "images/b"]
    a, b = by_id["images/a"], by_id["images/b"]
    assert a.class_name is None and a.image == str((darwin_root / "images" / "a.png").resolve())
    lung = _read(a.lung_mask)
    assert lung.shape == (H, W) and set(np.unique(lung)) == {0, 255}
    expected = np.zeros((H, W), bool)
    expected[2:7, 2:7] = expected[2:7, 20:25] = True
    np.testing.assert_array_equal(lung > 0, expected)
    ignore = _read(a.ignore_mask)
    assert set(np.unique(ignore)) == {0, 255} and int((ignore > 0).sum()) == 4
    assert Path(a.lung_mask).is_relative_to(out) and Path(a.ignore_mask).is_relative_to(out)
    assert b.ignore_mask is None and not (out / "ignore" / "images" / "b.png").exists()
    assert int((_read(b.lung_mask) > 0).sum()) == 121 - 9  # complex polygon: the inner ring is a hole
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert "no lung polygon" in reasons["c.png"]
    assert "not found" in reasons["d.json"] and "d.png" in reasons["d.json"]
    assert f"{2 * W}x{H}" in reasons["e.png"] and f"{W}x{H}" in reasons["e.png"]
    assert reasons["orphan.png"] == "image has no annotation"
    assert len(result.skipped) == 4


def test_darwin_default_out_dir_and_class_names(darwin_root):
    mapping = {"COVID-19": "COVID-19", "no pneumonia (HEALTHY)": "Normal"}
    result = index_darwin(darwin_root, class_names=mapping)
    assert result.classes == ("COVID-19", "Normal")
    assert {r.id: r.class_name for r in result.records} == {"images/a": "COVID-19", "images/b": "Normal"}
    assert all(Path(r.lung_mask).is_relative_to((darwin_root / ".monaicxr_masks").resolve()) for r in result.records)


def test_darwin_ambiguous_class(tmp_path):
    lungs = {"name": "Lungs", "polygon": {"path": _darwin_path(_square(1, 1, 3, 3))}}
    _darwin(tmp_path, "x", [lungs, {"name": "A", "tag": {}}, {"name": "B", "tag": {}}])
    result = index_darwin(tmp_path, class_names={"A": "a", "B": "b"})
    assert result.records == [] and "ambiguous" in result.skipped[0].reason


@parameterized.expand(
    [
        ("no_image_key", {"annotations": []}, "'image'"),
        ("no_annotations_key", {"image": {"filename": "x.png"}}, "'annotations'"),
        ("coco_like", {"images": [], "annotations": "nope"}, "'image'"),
        ("point_without_y", {"image": {"filename": "x.png"}, "annotations": [{"name": "Lungs", "polygon": {"path": [{"x": 1}]}}]}, "'x' and 'y'"),  # noqa: E501
    ]
)  # fmt: skip
def test_darwin_not_darwin_json(_, content, match):
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "annotations").mkdir()
        (Path(d) / "annotations" / "bad.json").write_text(json.dumps(content))
        with pytest.raises(DatasetError, match=match) as err:
            index_darwin(d, out_dir=Path(d) / "m")
        assert "bad.json" in str(err.value)


def test_darwin_no_annotation_folder(tmp_path):
    with pytest.raises(DatasetError, match="annotations"):
        index_darwin(tmp_path)


def _coco(root: Path, annotations, images=None):
    images = images if images is not None else [
        {"id": 1, "file_name": "p1.png", "width": W, "height": H},
        {"id": 2, "file_name": "p2.png", "width": W, "height": H},
    ]  # fmt: skip
    categories = [{"id": 1, "name": "Lungs"}, {"id": 2, "name": "Ignore"}, {"id": 3, "name": "COVID-19"}]
    root.mkdir(parents=True, exist_ok=True)
    path = root / "annotations.json"
    path.write_text(json.dumps({"images": images, "categories": categories, "annotations": annotations}))
    return path


def _flat(points):
    return [c for p in points for c in p]


def test_coco_masks(tmp_path):
    root = tmp_path / "coco"
    _image(root / "images" / "p1.png")
    _image(root / "images" / "p2.png")
    # uncompressed RLE, column-major: the first 5 pixels of column 0 are zero, then 10 ones
    rle = {"counts": [5, 10, H * W - 15], "size": [H, W]}
    path = _coco(
        root,
        [
            {"id": 10, "image_id": 1, "category_id": 1, "segmentation": [_flat(_square(2, 2, 6, 6)), _flat(_square(20, 2, 24, 6))]},  # noqa: E501
            {"id": 11, "image_id": 1, "category_id": 2, "segmentation": [_flat(_square(3, 3, 4, 4))]},
            {"id": 12, "image_id": 1, "category_id": 3, "segmentation": [_flat(_square(0, 0, 1, 1))]},
            {"id": 13, "image_id": 2, "category_id": 1, "segmentation": rle, "iscrowd": 1},
        ],
    )  # fmt: skip
    result = index_coco(path, out_dir=tmp_path / "m", class_names={"COVID-19": "COVID-19"})
    by_id = {r.id: r for r in result.records}
    assert result.source == "coco" and sorted(by_id) == ["images/p1", "images/p2"]
    p1, p2 = by_id["images/p1"], by_id["images/p2"]
    assert p1.class_name == "COVID-19" and p2.class_name is None
    assert int((_read(p1.lung_mask) > 0).sum()) == 50
    assert int((_read(p1.ignore_mask) > 0).sum()) == 4 and p2.ignore_mask is None
    lung2 = _read(p2.lung_mask) > 0
    assert int(lung2.sum()) == 10 and lung2[5:15, 0].all()
    # the folder works too, with the default mask folder
    assert len(index_coco(root).records) == 2 and (root / ".monaicxr_masks" / "lung" / "images").is_dir()


def test_coco_skips(tmp_path):
    root = tmp_path / "coco"
    _image(root / "images" / "p1.png", w=W + 1)
    images = [
        {"id": 1, "file_name": "p1.png", "width": W, "height": H},
        {"id": 2, "file_name": "gone.png", "width": W, "height": H},
    ]
    lungs = _flat(_square(1, 1, 5, 5))
    path = _coco(
        root,
        [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [lungs]},
            {"id": 2, "image_id": 2, "category_id": 1, "segmentation": [lungs]},
        ],
        images,
    )
    result = index_coco(path, out_dir=tmp_path / "m")
    assert result.records == []
    reasons = sorted(s.reason for s in result.skipped)
    assert any("gone.png" in r and "not found" in r for r in reasons)
    assert any(f"{W}x{H}" in r and f"{W + 1}x{H}" in r for r in reasons)


def test_coco_no_lung_polygon(tmp_path):
    _image(tmp_path / "images" / "p1.png")
    path = _coco(tmp_path, [], [{"id": 1, "file_name": "p1.png", "width": W, "height": H}])
    result = index_coco(path, out_dir=tmp_path / "m")
    assert result.records == [] and "no lung polygon" in result.skipped[0].reason


def test_coco_compressed_rle_names_annotation(tmp_path):
    seg = {"counts": "abc123", "size": [H, W]}
    path = _coco(tmp_path, [{"id": 77, "image_id": 1, "category_id": 1, "segmentation": seg, "iscrowd": 1}])
    with pytest.raises(DatasetError, match="annotation 77.*compressed RLE"):
        index_coco(path, out_dir=tmp_path / "m")


@parameterized.expand([("images",), ("annotations",), ("categories",)])
def test_coco_missing_key(key):
    with tempfile.TemporaryDirectory() as d:
        content = {"images": [], "annotations": [], "categories": []}
        del content[key]
        path = Path(d) / "coco.json"
        path.write_text(json.dumps(content))
        with pytest.raises(DatasetError, match=f"coco.json.*'{key}'"):
            index_coco(path, out_dir=Path(d) / "m")


def test_registry_detects_darwin_and_coco(darwin_root, tmp_path):
    from monaicxr.data.registry import detect_layout

    assert detect_layout(darwin_root) == "darwin"
    root = tmp_path / "coco"
    _image(root / "images" / "p1.png")
    _coco(root, [{"id": 10, "image_id": 1, "category_id": 1, "segmentation": [_flat(_square(2, 2, 6, 6))]}])
    assert detect_layout(root) == "coco"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.json").write_text('{"images": []}')  # a JSON file that is not COCO
    assert not __import__("monaicxr.data.polygons", fromlist=["is_coco"]).is_coco(tmp_path / "other")
