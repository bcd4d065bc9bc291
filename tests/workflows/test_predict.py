"""Tests for monaicxr.workflows.predict and monaicxr.io.html_report, end to end on SYNTHETIC phantoms.

The lung and classifier models are the committed ``bundles/unet`` and ``bundles/efficientnet_lite0`` weights. One run over
a folder of good, odd and broken files (class sub-folders, a non-square PNG, an EXIF-rotated JPEG, a DICOM file)
is shared by most tests. The infection paths are checked with stand-in weights in a temporary copy of the unet
bundle (the default task-infection overlay, and a 3-level BasicUNet of random weights): they test the wiring
(columns, masks, restriction to the lungs, severity), not a model.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from monaicxr.data.synthetic import make_phantom
from monaicxr.workflows.predict import (
    CSV_COLUMNS,
    DEFAULT_MODELS,
    ModelSpec,
    apply_exif_orientation,
    predict,
    resolve_bundle,
)
from tests.dicom_files import write_dicom
from tests.workflows.stand_ins import random_3level_model, unet_bundle_copy

REPO = Path(__file__).resolve().parents[2]
CLASSES = ["COVID-19", "Non-COVID", "Normal"]
CHROMIUM = Path("/usr/bin/chromium")

GOOD = {  # name -> (PIL size (W, H) of its masks, what its warnings must mention or None)
    "Normal/wide_native.png": ((300, 260), None),
    "COVID-19/phantom.png": ((128, 128), None),
    "COVID-19/rotated.jpg": ((260, 300), "EXIF orientation 6"),
    "scan.dcm": ((180, 200), None),
    "odd/blank.png": ((128, 128), "near-constant"),
    "odd/tiny.png": ((40, 40), "tiny image"),
    "odd/strip.png": ((300, 100), "aspect ratio"),
}
BAD = {  # name -> what the reason must mention
    "bad/truncated.png": "cannot be read",
    "bad/one_pixel.png": "too small",
    "bad/loop.png": "symbolic link loop",
    "bad/text.png": "cannot be read",
    "bad/cmyk.jpg": "CMYK",
    "bad/two_frames.png": "2 frames",
}


def _phantom(seed: int, kind: str, size: tuple[int, int] | None = None) -> Image.Image:
    img = Image.fromarray(make_phantom(seed, size=128, kind=kind).image)
    return img if size is None else img.resize(size, Image.BILINEAR)


def _write_dicom(path: Path, pixels: np.ndarray) -> None:
    write_dicom(path, np.asarray(pixels, dtype=np.uint8))


def write_inputs(root: Path) -> Path:
    """The test folder: :data:`GOOD` and :data:`BAD` files under class and other sub-folders, plus a text file."""
    for name in [*GOOD, *BAD]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
    _phantom(0, "normal", (300, 260)).save(root / "Normal/wide_native.png")
    _phantom(1, "covid").save(root / "COVID-19/phantom.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored on its side (300 x 260); shown rotated 90 degrees clockwise, upright, 260 x 300
    sideways = _phantom(2, "covid", (260, 300)).transpose(Image.Transpose.ROTATE_90)
    sideways.save(root / "COVID-19/rotated.jpg", exif=exif.tobytes(), quality=90)
    _write_dicom(root / "scan.dcm", np.asarray(_phantom(3, "pneumonia", (180, 200))))
    Image.new("L", (128, 128), 120).save(root / "odd/blank.png")
    _phantom(4, "normal", (40, 40)).save(root / "odd/tiny.png")
    _phantom(5, "normal", (300, 100)).save(root / "odd/strip.png")

    data = (root / "COVID-19/phantom.png").read_bytes()
    (root / "bad/truncated.png").write_bytes(data[: len(data) // 2])
    Image.new("L", (1, 1), 0).save(root / "bad/one_pixel.png")
    os.symlink("loop.png", root / "bad/loop.png")
    (root / "bad/text.png").write_text("this is not an image\n")
    Image.new("CMYK", (64, 64), (10, 20, 30, 40)).save(root / "bad/cmyk.jpg")
    frames = [_phantom(6, "normal"), _phantom(7, "covid")]
    frames[0].save(root / "bad/two_frames.png", save_all=True, append_images=frames[1:])
    (root / "odd/notes.txt").write_text("not an input\n")
    return root


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One predict run with the default models over the test folder; returns (summary, rows by file, out)."""
    root = write_inputs(tmp_path_factory.mktemp("inputs"))
    out = tmp_path_factory.mktemp("out")
    summary = predict(root, out, progress=False)
    with open(out / "predictions.csv", newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames
        rows = {r["file"]: r for r in reader}
    return summary, rows, out, header


def test_csv_columns_and_rows(run):
    summary, rows, out, header = run
    assert header == [*CSV_COLUMNS[:6], *(f"p_{c}" for c in CLASSES), *CSV_COLUMNS[6:]]
    assert sorted(rows) == sorted([*GOOD, *BAD])  # notes.txt is not an input
    for name in GOOD:
        r = rows[name]
        assert r["status"] == "predicted", (name, r["reason"])
        probs = [float(r[f"p_{c}"]) for c in CLASSES]
        assert sum(probs) == pytest.approx(1.0, abs=1e-3)
        assert r["predicted_class"] == CLASSES[int(np.argmax(probs))]
        assert r["calibration"].startswith("temperature ") and r["calibration"].endswith("(model.json)")
        assert 0.0 <= float(r["lung_area_fraction"]) <= 1.0
        for key in ("lung_mask", "overlay", "gradcam"):
            assert (out / r[key]).is_file(), (name, key)
    assert rows["COVID-19/phantom.png"]["lung_mask"] == "masks/COVID-19/phantom_lung.png"
    for name in ("COVID-19/phantom.png", "COVID-19/rotated.jpg", "Normal/wide_native.png"):
        assert float(rows[name]["lung_area_fraction"]) > 0.1, name  # the unet finds upright phantoms' lungs


def test_bad_files_reported_and_skipped(run):
    summary, rows, out, _ = run
    for name, why in BAD.items():
        r = rows[name]
        assert r["status"] == "skipped"
        assert why in r["reason"], (name, r["reason"])
        assert not r["lung_mask"] and not (out / "masks" / "bad").exists()
    assert {x["file"] for x in summary["skipped"]} == set(BAD)
    counts = (summary["n_found"], summary["n_read"], summary["n_predicted"], summary["n_skipped"])
    assert counts == (len(GOOD) + len(BAD), len(GOOD), len(GOOD), len(BAD))
    assert summary["line"].startswith(f"{len(GOOD) + len(BAD)} found, {len(GOOD)} read, {len(GOOD)} predicted")
    assert json.loads((out / "summary.json").read_text())["n_predicted"] == len(GOOD)


def test_masks_at_native_size_and_warnings(run):
    _, rows, out, _ = run
    for name, (size, warning) in GOOD.items():
        r = rows[name]
        with Image.open(out / r["lung_mask"]) as m:
            assert m.size == size, name
            assert set(np.unique(np.asarray(m)).tolist()) <= {0, 255}
        assert (r["width"], r["height"]) == (str(size[0]), str(size[1]))
        if warning:
            assert warning in r["warnings"], (name, r["warnings"])
        elif name != "scan.dcm":
            assert r["warnings"] == "", (name, r["warnings"])


def test_infection_runs_by_default_and_is_skipped_with_a_note_without_weights(run, tmp_path):
    summary, rows, _, _ = run
    assert (REPO / "bundles/unet" / DEFAULT_MODELS["infection"].weights).is_file()  # shipped: it ran
    assert summary["models"]["infection"]["overlay"] == "configs/task_infection.json"
    assert all(r["infection_mask"] for r in rows.values() if r["status"] == "predicted")
    # the same optional model in a bundle without its weights file: skipped with a note, nothing else changes
    copy = unet_bundle_copy(tmp_path)
    shutil.copy(REPO / "bundles/unet/models/model.pt", copy / "models/model.pt")
    spec = dataclasses.replace(DEFAULT_MODELS["infection"], bundle=str(copy))
    films = tmp_path / "films"
    films.mkdir()
    _phantom(4, "covid").save(films / "covid.png")
    alone = predict(films, tmp_path / "out", models=[ModelSpec("lung", str(copy)), spec], progress=False)
    assert any("infection model skipped" in n and "model_infection.pt" in n for n in alone["notes"])
    assert "infection" not in alone["models"] and alone["n_predicted"] == 1


def test_report_html(run):
    summary, rows, out, _ = run
    page = (out / "report.html").read_text()
    assert '<table id="results">' in page and "<script>" in page
    assert page.count('<img src="data:image/png;base64,') >= 3 * len(GOOD)  # table thumb, overlay, Grad-CAM
    assert 'src="http' not in page and 'href="http' not in page  # self-contained
    for name in [*GOOD, *BAD]:
        assert name in page
    assert "symbolic link loop" in page and summary["line"] in page


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed")
def test_report_renders_in_chromium(run, tmp_path):
    _, rows, out, _ = run
    shot = tmp_path / "report.png"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,900",
           (out / "report.html").as_uri()]  # fmt: skip
    subprocess.run(cmd, capture_output=True, timeout=90, check=False)
    assert shot.is_file(), "chromium wrote no screenshot"
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (900, 1200)
    assert pixels.std() > 10 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # text and thumbnails

    # sorting: click the "lung area" heading twice (descending), then read the file column's order
    probe = out / "report_sort_probe.html"
    click = "const th = document.querySelectorAll('#results th')[6]; th.click(); th.click();"
    order = "document.title = Array.from(document.querySelectorAll('#results tbody tr'), r => r.cells[2].textContent).join('|');"
    probe.write_text((out / "report.html").read_text().replace("</body>", f"<script>{click}{order}</script></body>"))
    dom = subprocess.run([*cmd[:-3], "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=90)
    title = dom.stdout.split("<title>", 1)[1].split("</title>", 1)[0]
    files = title.split("|")
    lung = {n: float(r["lung_area_fraction"]) for n, r in rows.items() if r["lung_area_fraction"]}
    assert files[: len(lung)] == sorted(lung, key=lung.get, reverse=True)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_like_pil(tmp_path, orientation):
    img = Image.fromarray(np.arange(6 * 4, dtype=np.uint8).reshape(4, 6) * 10)
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(tmp_path / "x.jpg", exif=exif.tobytes())  # only the tag is used: compare with the lossless original
    with Image.open(tmp_path / "x.jpg") as stored:
        expected_size = ImageOps.exif_transpose(stored).size
    img.info["exif"] = exif.tobytes()
    expected = np.asarray(ImageOps.exif_transpose(img))
    got = apply_exif_orientation(np.asarray(img, dtype=np.float32), orientation)
    np.testing.assert_array_equal(got, expected)
    assert got.shape[::-1] == expected_size


_bundle_copy = unet_bundle_copy


def test_missing_weights_error_before_work(tmp_path):
    copy = _bundle_copy(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"unet_copy/models/model\.pt"):
        predict(tmp_path / "no_such_input", tmp_path / "out", models=[ModelSpec("lung", str(copy))])
    assert not (tmp_path / "out").exists()


def test_bundles_resolved_from_the_repository_not_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_bundle("bundles/unet") == (REPO / "bundles/unet").resolve()
    with pytest.raises(FileNotFoundError, match="no_such_bundle"):
        resolve_bundle("bundles/no_such_bundle")


def _stand_in_infection_weights(copy: Path, everywhere: bool) -> Path:
    """``models/model_infection.pt`` of the bundle copy: a BasicUNet of the bundle's shape whose output is
    infection everywhere (final convolution 0, bias +10) or random (seeded)."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(copy / "configs/inference.json"))
    torch.manual_seed(0)
    state = parser.get_parsed_content("network_def").state_dict()
    if everywhere:
        state["final_conv.weight"].zero_()
        state["final_conv.bias"].fill_(10.0)
    path = copy / DEFAULT_MODELS["infection"].weights
    torch.save(state, path)
    return path


def test_infection_overlay_keeps_infection_inside_the_lung_model_lungs(tmp_path):
    from dataclasses import replace

    copy = _bundle_copy(tmp_path)
    shutil.copy(REPO / "bundles/unet/models/model.pt", copy / "models/model.pt")
    weights = _stand_in_infection_weights(copy, everywhere=True)
    lung, infection = (
        replace(DEFAULT_MODELS["lung"], bundle=str(copy)),
        replace(DEFAULT_MODELS["infection"], bundle=str(copy)),
    )
    assert infection.overlay == "configs/task_infection.json" and infection.optional
    root = tmp_path / "in"
    root.mkdir()
    _phantom(8, "covid", (300, 260)).save(root / "covid.png")
    summary = predict(root, tmp_path / "out", models=[lung, infection], progress=False, report=False)
    assert summary["n_predicted"] == 1
    assert summary["models"]["infection"]["weights"] == str(weights)
    assert summary["models"]["infection"]["overlay"] == "configs/task_infection.json"
    with open(tmp_path / "out/predictions.csv", newline="") as f:
        (row,) = csv.DictReader(f)
    lung_mask = np.asarray(Image.open(tmp_path / "out" / row["lung_mask"])) > 0
    infection_mask = np.asarray(Image.open(tmp_path / "out" / row["infection_mask"])) > 0
    assert infection_mask.shape == lung_mask.shape == (260, 300)
    # infected everywhere, restricted to the lung model's lungs: exactly the lungs, every lung fully infected
    assert lung_mask.any() and np.array_equal(infection_mask, lung_mask)
    assert float(row["infected_fraction_total"]) == pytest.approx(1.0)
    assert row["severity_total"] == "critical"

    # without the lung model there are no lungs to restrict to: refused before any image is read
    with pytest.raises(ValueError, match="add 'lung' to the models"):
        predict(root, tmp_path / "out2", models=[infection], progress=False)
    assert not (tmp_path / "out2").exists()
    # absent weights: skipped with a note naming the file (the lung model still runs)
    weights.unlink()
    summary = predict(root, tmp_path / "out3", models=[lung, infection], progress=False, report=False)
    assert "infection" not in summary["models"]
    assert any("infection model skipped" in n and str(weights) in n for n in summary["notes"])


def test_infection_wiring_with_random_weights(tmp_path):

    spec = random_3level_model(tmp_path)
    root = tmp_path / "in"
    root.mkdir()
    _phantom(8, "covid", (300, 260)).save(root / "covid.png")
    summary = predict(root, tmp_path / "out", models=["lung", spec], progress=False)
    assert summary["n_predicted"] == 1 and set(summary["models"]) == {"lung", "infection"}
    with open(tmp_path / "out/predictions.csv", newline="") as f:
        (row,) = csv.DictReader(f)
    assert not any(c.startswith("p_") for c in row) and row["predicted_class"] == row["gradcam"] == ""
    with Image.open(tmp_path / "out" / row["infection_mask"]) as m:
        assert m.size == (300, 260)
    for side in ("right", "left", "total"):
        fraction, grade = row[f"infected_fraction_{side}"], row[f"severity_{side}"]
        assert (fraction == "" and grade in ("lung not found", "no lung")) or (
            0.0 <= float(fraction) <= 1.0 and grade in ("none", "mild", "moderate", "severe", "critical")
        )


def test_stored_temperature_and_output_inside_input(tmp_path):
    cnn = tmp_path / "cnn_copy"
    shutil.copytree(REPO / "bundles/simple_cnn/configs", cnn / "configs")
    (cnn / "models").mkdir()
    shutil.copy(REPO / "bundles/simple_cnn/models/model.pt", cnn / "models/model.pt")
    root = tmp_path / "in"
    root.mkdir()
    _phantom(9, "covid").save(root / "covid.png")

    def probs(out: Path) -> tuple[list[float], str]:
        with open(out / "predictions.csv", newline="") as f:
            (row,) = csv.DictReader(f)
        return [float(row[f"p_{c}"]) for c in CLASSES], row["calibration"]

    plain = predict(root, root / "out_plain", models=[ModelSpec("classifier", str(cnn))], progress=False)
    card = {"weights": "model.pt", "sha256": None, "temperature": {"value": 4.0, "fitted_on": "validation"}}
    (cnn / "models/model.json").write_text(json.dumps(card))
    hot = predict(root, root / "out_hot", models=[ModelSpec("classifier", str(cnn))], progress=False)
    assert plain["n_found"] == hot["n_found"] == 1  # out_plain, inside the input folder, is not read as input
    (p_plain, cal_plain), (p_hot, cal_hot) = probs(root / "out_plain"), probs(root / "out_hot")
    assert cal_plain == "uncalibrated" and cal_hot == "temperature 4 (model.json)"
    assert max(p_hot) < max(p_plain) and int(np.argmax(p_hot)) == int(np.argmax(p_plain))  # softer, same class
    assert hot["models"]["classifier"]["calibration"] == cal_hot
