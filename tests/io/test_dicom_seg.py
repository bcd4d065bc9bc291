"""Tests for monaicxr.io.dicom_seg: DICOM SEG of lung / infection masks, on DICOM files made here with pydicom and
on the real radiographs of ``../shared/data/dicom`` (skipped when absent). The SEG is read back with pydicom
(highdicom 0.28's own reader refuses SEGs of projection radiographs: see the module docstring)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import SegmentationStorage

from monaicxr.io.dicom_seg import DicomSegError, write_dicom_seg
from tests.dicom_files import write_dicom

DICOM_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dicom"


def write_cr(path: Path, shape: tuple[int, int] = (60, 50), *, patient_id: str | None = "P001") -> Path:
    """A small 8-bit MONOCHROME2 CR image with the study / series / patient identification a PACS file has."""
    pixels = (np.arange(shape[0] * shape[1]) % 256).astype(np.uint8).reshape(shape)
    return write_dicom(path, pixels, pacs=True, patient_id=patient_id)


def _masks(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    lung = np.zeros(shape, bool)
    lung[10:40, 5:20] = lung[10:40, 28:45] = True
    infection = np.zeros(shape, bool)
    infection[20:30, 8:15] = True
    return lung, infection


def _segments(seg: pydicom.Dataset) -> dict[str, np.ndarray]:
    """Segment label -> its frame, from a SEG read with pydicom."""
    labels = {int(s.SegmentNumber): s.SegmentLabel for s in seg.SegmentSequence}
    frames = seg.pixel_array.reshape(int(seg.NumberOfFrames), int(seg.Rows), int(seg.Columns))
    shared = seg.SharedFunctionalGroupsSequence[0]
    numbers = [
        int(
            (f if "SegmentIdentificationSequence" in f else shared)
            .SegmentIdentificationSequence[0]
            .ReferencedSegmentNumber
        )
        for f in seg.PerFrameFunctionalGroupsSequence
    ]  # one segment: its number is in the shared functional groups
    return {labels[n]: frames[i].astype(bool) for i, n in enumerate(numbers)}


def test_seg_references_its_source_and_holds_both_masks(tmp_path):
    src = write_cr(tmp_path / "cr.dcm")
    lung, infection = _masks((60, 50))
    out = write_dicom_seg(src, {"lung": lung, "infection": infection}, tmp_path / "seg" / "cr.seg.dcm", algorithm="t")
    seg, source = pydicom.dcmread(out), pydicom.dcmread(src)
    assert seg.SOPClassUID == SegmentationStorage and seg.Modality == "SEG" and seg.SegmentationType == "BINARY"
    assert (seg.StudyInstanceUID, seg.PatientID) == (source.StudyInstanceUID, "P001")
    assert seg.SeriesInstanceUID != source.SeriesInstanceUID
    ref = seg.ReferencedSeriesSequence[0]
    assert ref.SeriesInstanceUID == source.SeriesInstanceUID
    assert ref.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    segments = _segments(seg)
    np.testing.assert_array_equal(segments["Lung"], lung)
    np.testing.assert_array_equal(segments["Infection"], infection)
    types = {s.SegmentLabel: s.SegmentedPropertyTypeCodeSequence[0].CodeMeaning for s in seg.SegmentSequence}
    assert types == {"Lung": "Lung", "Infection": "Lesion"}
    assert seg.SegmentSequence[0].SegmentAlgorithmName == "t"


def test_lung_only_and_empty_mask(tmp_path):
    src = write_cr(tmp_path / "cr.dcm")
    out = write_dicom_seg(src, {"lung": np.zeros((60, 50), bool), "infection": None}, tmp_path / "x.seg.dcm")
    segments = _segments(pydicom.dcmread(out))
    assert list(segments) == ["Lung"] and not segments["Lung"].any()


def test_source_without_patient_id_is_a_clear_error(tmp_path):
    src = write_cr(tmp_path / "anon.dcm", patient_id=None)
    with pytest.raises(DicomSegError, match="lacks PatientID") as err:
        write_dicom_seg(src, {"lung": _masks((60, 50))[0]}, tmp_path / "x.seg.dcm")
    assert err.value.reason.startswith("the source DICOM lacks PatientID")
    assert not (tmp_path / "x.seg.dcm").exists()


def test_bad_masks_and_sources(tmp_path):
    src = write_cr(tmp_path / "cr.dcm")
    with pytest.raises(DicomSegError, match=r"lung mask \(50, 60\) does not match the source's \(60, 50\)"):
        write_dicom_seg(src, {"lung": np.zeros((50, 60), bool)}, tmp_path / "x.seg.dcm")
    with pytest.raises(ValueError, match="masks must be some of"):
        write_dicom_seg(src, {"heart": np.zeros((60, 50), bool)}, tmp_path / "x.seg.dcm")
    (tmp_path / "text.dcm").write_text("not DICOM\n")
    with pytest.raises(DicomSegError, match="cannot be read as DICOM"):
        write_dicom_seg(tmp_path / "text.dcm", {"lung": np.zeros((60, 50), bool)}, tmp_path / "x.seg.dcm")


@pytest.mark.shared_data
@pytest.mark.skipif(not DICOM_DIR.is_dir(), reason=f"{DICOM_DIR} is absent (real DICOM radiographs)")
@pytest.mark.parametrize(
    "name, written",
    [
        ("c64d5667-a776-4f95-9e21-bfabafb07740.dcm", True),  # JPEG baseline, PixelSpacing 0.168
        ("RG1_J2KI.dcm", True),  # JPEG 2000, MONOCHROME1
        ("CR-MONO1-10-chest.dcm", False),  # no file meta, and no PatientID: highdicom cannot reference it
    ],
)
def test_real_dicom_radiographs(tmp_path, name, written):
    src = DICOM_DIR / name
    if not src.is_file():
        pytest.skip(f"{src} is absent")
    ds = pydicom.dcmread(src, force=True, stop_before_pixels=True)
    lung = np.zeros((int(ds.Rows), int(ds.Columns)), bool)
    lung[ds.Rows // 4 : ds.Rows // 2, ds.Columns // 4 : ds.Columns // 2] = True
    if not written:
        with pytest.raises(DicomSegError, match="PatientID"):
            write_dicom_seg(src, {"lung": lung}, tmp_path / "x.seg.dcm")
        return
    seg = pydicom.dcmread(write_dicom_seg(src, {"lung": lung}, tmp_path / "x.seg.dcm"))
    assert seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == ds.SOPInstanceUID
    np.testing.assert_array_equal(_segments(seg)["Lung"], lung)
