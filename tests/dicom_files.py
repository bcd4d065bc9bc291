"""One DICOM writer for the tests: small radiographs made with pydicom, with only the tags a case needs.

Used by the reader, index, corpus, predict and DICOM SEG tests (each used to carry its own copy).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_dicom(
    path: Path,
    pixels: np.ndarray | None,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    modality: str = "CR",
    pacs: bool = False,
    patient_id: str | None = "P001",
    shape: tuple[int, int] | None = None,
    **tags,
) -> Path:
    """Write ``pixels`` ((H, W) grey or (H, W, 3) colour; ``None``: no Pixel Data) as an explicit-VR file.

    Args:
        photometric: PhotometricInterpretation.
        bits_stored: BitsStored (BitsAllocated follows the dtype); default the dtype's width.
        modality: Modality; ``pacs=True`` makes it a CR Image Storage instance with study, series and patient
            identification (``patient_id`` ``None`` leaves PatientID out), as a PACS file has; otherwise
            Secondary Capture with none.
        shape: Rows / Columns instead of the pixels' own (a file whose Pixel Data does not fit its header).
        tags: further attributes set as given (e.g. ``NumberOfFrames=2``).
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import (
        ComputedRadiographyImageStorage,
        ExplicitVRLittleEndian,
        SecondaryCaptureImageStorage,
        generate_uid,
    )

    path.parent.mkdir(parents=True, exist_ok=True)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ComputedRadiographyImageStorage if pacs else SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    if pacs:
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        if patient_id is not None:
            ds.PatientID = patient_id
        ds.PatientName, ds.PatientBirthDate, ds.PatientSex = "Test^Phantom", "19700101", "O"
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20240101", "120000", "1", "A1"
        ds.ReferringPhysicianName = ""
        ds.SeriesNumber, ds.InstanceNumber, ds.PatientOrientation = 1, 1, ["L", "F"]
    arr = None if pixels is None else np.ascontiguousarray(pixels)
    ds.Rows, ds.Columns = shape or (arr.shape[:2] if arr is not None else (16, 16))
    colour = arr is not None and arr.ndim == 3
    ds.SamplesPerPixel = 3 if colour else 1
    if colour:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    allocated = 8 * (arr.dtype.itemsize if arr is not None else (2 if (bits_stored or 8) > 8 else 1))
    ds.BitsAllocated = allocated
    ds.BitsStored = bits_stored or allocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    for key, value in tags.items():
        setattr(ds, key, value)
    if arr is not None:
        ds.PixelData = arr.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path
