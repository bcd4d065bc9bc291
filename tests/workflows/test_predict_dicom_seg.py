"""monaicxr predict writes a DICOM SEG for DICOM input (highdicom), and a source highdicom cannot use is a warning.

Inputs are small DICOM files made here with pydicom (phantom pixels) and, when present, the real radiographs of
``../shared/data/dicom``; the lung model is the shipped ``bundles/unet`` weights.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from monaicxr.data.synthetic import make_phantom
from monaicxr.workflows.predict import predict
from tests.dicom_files import write_dicom

DICOM_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dicom"


def _write_cr(path: Path, pixels: np.ndarray, *, patient_id: str | None) -> Path:
    return write_dicom(path, np.asarray(pixels, dtype=np.uint8), pacs=True, patient_id=patient_id)


def _rows(out: Path) -> dict[str, dict]:
    with open(out / "predictions.csv", newline="") as f:
        return {r["file"]: r for r in csv.DictReader(f)}


def test_seg_for_dicom_input_warning_for_an_unusable_source(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    pixels = np.asarray(Image.fromarray(make_phantom(0, size=128, kind="covid").image).resize((180, 200)))
    _write_cr(root / "full.dcm", pixels, patient_id="P1")
    _write_cr(root / "anonymous.dcm", pixels, patient_id=None)
    Image.fromarray(pixels).save(root / "film.png")
    summary = predict(root, tmp_path / "out", models=["lung"], progress=False, report=False)
    assert summary["n_predicted"] == 3
    rows = _rows(tmp_path / "out")

    full = rows["full.dcm"]
    assert full["dicom_seg"] == "dicom_seg/full.seg.dcm" and "DICOM SEG" not in full["warnings"]
    seg, source = pydicom.dcmread(tmp_path / "out" / full["dicom_seg"]), pydicom.dcmread(root / "full.dcm")
    assert seg.Modality == "SEG" and seg.StudyInstanceUID == source.StudyInstanceUID
    assert (
        seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    )
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["Lung"]  # no infection model ran
    with Image.open(tmp_path / "out" / full["lung_mask"]) as m:
        np.testing.assert_array_equal(seg.pixel_array.reshape(200, 180).astype(bool), np.asarray(m) > 0)

    anon = rows["anonymous.dcm"]
    assert anon["status"] == "predicted" and anon["dicom_seg"] == "" and anon["lung_mask"]
    assert "DICOM SEG not written: the source DICOM lacks PatientID" in anon["warnings"]
    assert rows["film.png"]["dicom_seg"] == ""  # PNG input: no SEG


@pytest.mark.shared_data
@pytest.mark.skipif(not DICOM_DIR.is_dir(), reason=f"{DICOM_DIR} is absent (real DICOM radiographs)")
def test_real_dicom_radiographs(tmp_path):
    summary = predict(DICOM_DIR, tmp_path / "out", models=["lung"], progress=False, report=False)
    rows = _rows(tmp_path / "out")
    assert summary["n_predicted"] == len(rows) == len(list(DICOM_DIR.glob("*.dcm")))
    for name, r in rows.items():
        if name == "CR-MONO1-10-chest.dcm":  # no PatientID
            assert r["dicom_seg"] == "" and "lacks PatientID" in r["warnings"]
            continue
        seg = pydicom.dcmread(tmp_path / "out" / r["dicom_seg"])
        source = pydicom.dcmread(DICOM_DIR / name, stop_before_pixels=True, force=True)
        assert (seg.Rows, seg.Columns) == (source.Rows, source.Columns)
        assert (
            seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID
            == source.SOPInstanceUID
        )
        assert seg.pixel_array.any() and "not a frontal" not in r["warnings"]


def test_seg_holds_the_infection_segment_when_the_infection_model_runs(tmp_path):
    """A 3-level model of random weights in a copy of the unet bundle: the wiring (two segments), not a model."""
    from tests.workflows.stand_ins import random_3level_model

    spec = random_3level_model(tmp_path)
    root = tmp_path / "in"
    root.mkdir()
    pixels = np.asarray(Image.fromarray(make_phantom(1, size=128, kind="covid").image))
    _write_cr(root / "full.dcm", pixels, patient_id="P2")
    predict(root, tmp_path / "out", models=["lung", spec], progress=False, report=False)
    row = _rows(tmp_path / "out")["full.dcm"]
    seg = pydicom.dcmread(tmp_path / "out" / row["dicom_seg"])
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["Lung", "Infection"]
    frames = seg.pixel_array.reshape(2, 128, 128).astype(bool)
    for i, key in enumerate(("lung_mask", "infection_mask")):
        with Image.open(tmp_path / "out" / row[key]) as m:
            np.testing.assert_array_equal(frames[i], np.asarray(m) > 0)
