"""DICOM Segmentation objects for predicted lung and infection masks, written with highdicom.

:func:`write_dicom_seg` writes one binary DICOM SEG per source radiograph: segment 1 ``Lung`` (SNOMED CT
Anatomical Structure / Lung), and segment 2 ``Infection`` (Morphologically Abnormal Structure / Lesion) where an
infection mask is given. The SEG references its source image (same study and patient, the source SOP Instance
UID in ``ReferencedSeriesSequence`` and in each frame's derivation), so a PACS or viewer shows it over that
image. Masks must have the source's ``Rows`` x ``Columns`` as stored (``monaicxr predict`` masks of DICOM input
are: no EXIF rotation applies to DICOM).

highdicom needs the source to carry the patient and study identification of a DICOM image (``PatientID``,
``StudyInstanceUID``, ``SeriesInstanceUID``, ``SOPInstanceUID``, ``SOPClassUID``...); a file without them (an
anonymised test file such as ``CR-MONO1-10-chest.dcm`` has no ``PatientID``) raises :class:`DicomSegError` with
the reason, and ``predict`` puts that reason in its warnings column instead of a SEG.

A known limit of highdicom 0.28 (not of the file): its own reader (``highdicom.seg.segread``) refuses a SEG of a
projection radiograph, whose Pixel Measures carry a PixelSpacing but no SliceThickness; pydicom and viewers read
it. Research software, not a medical device: the SEG says so in its series description.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ["DicomSegError", "SEGMENTS", "write_dicom_seg"]

#: mask name -> (segment label, property category, property type); segment numbers follow this order
SEGMENTS: dict[str, tuple[str, str, str]] = {
    "lung": ("Lung", "AnatomicalStructure", "Lung"),
    "infection": ("Infection", "MorphologicallyAbnormalStructure", "Lesion"),
}


class DicomSegError(ValueError):
    """The DICOM SEG could not be made for this source; ``reason`` is the short text for a warnings column."""

    def __init__(self, source: str | Path, reason: str):
        super().__init__(f"{source}: DICOM SEG not written: {reason}")
        self.reason = reason


def _reason(e: Exception) -> str:
    missing = re.search(r"has no attribute '(\w+)'", str(e))
    if missing:
        return f"the source DICOM lacks {missing.group(1)}, which highdicom needs"
    return f"{type(e).__name__}: {e}"


def write_dicom_seg(
    source: str | os.PathLike,
    masks: Mapping[str, np.ndarray],
    path: str | os.PathLike,
    *,
    algorithm: str = "monaicxr",
    version: str | None = None,
) -> Path:
    """Write the masks of ``source`` as a binary DICOM SEG at ``path``.

    Args:
        source: the source DICOM file (read with ``pydicom.dcmread(force=True)``, without its pixel data).
        masks: ``{"lung": (Rows, Columns) bool, "infection": ...}``, keys of :data:`SEGMENTS`; ``None`` values
            are left out. An all-zero mask is kept as an empty segment (no frame is omitted).
        path: the output file (its folder is created).
        algorithm: the algorithm name recorded in each segment (e.g. ``"monaicxr unet"``).
        version: its version; default ``monaicxr.__version__``.

    Returns:
        ``path``.

    Raises:
        DicomSegError: the source cannot be read as DICOM, lacks what highdicom needs, or the masks do not have
            its size.
        ValueError: a mask name outside :data:`SEGMENTS`, or no mask.
    """
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    from monaicxr import __version__

    version = version or __version__
    masks = {k: v for k, v in masks.items() if v is not None}
    unknown = sorted(set(masks) - set(SEGMENTS))
    if unknown or not masks:
        raise ValueError(f"masks must be some of {list(SEGMENTS)}, got {sorted(masks)}")
    try:
        ds = pydicom.dcmread(source, force=True, stop_before_pixels=True)
        shape = (int(ds.Rows), int(ds.Columns))
    except Exception as e:  # pydicom raises many types for a bad file
        raise DicomSegError(source, f"the source cannot be read as DICOM ({_reason(e)})") from e
    names = [n for n in SEGMENTS if n in masks]
    for n in names:
        if np.shape(masks[n]) != shape:
            raise DicomSegError(source, f"{n} mask {np.shape(masks[n])} does not match the source's {shape}")
    pixels = np.stack([np.asarray(masks[n], dtype=bool) for n in names], axis=-1)[None]  # (1, R, C, segments)
    family = codes.DCM.ArtificialIntelligence
    ident = hd.AlgorithmIdentificationSequence(name=algorithm, version=version, family=family)
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=i,
            segment_label=SEGMENTS[n][0],
            segmented_property_category=getattr(codes.SCT, SEGMENTS[n][1]),
            segmented_property_type=getattr(codes.SCT, SEGMENTS[n][2]),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=ident,
        )
        for i, n in enumerate(names, start=1)
    ]
    try:
        seg = hd.seg.Segmentation(
            source_images=[ds],
            pixel_array=pixels,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=900,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="monaicxr",
            manufacturer_model_name="monaicxr predict",
            software_versions=version,
            device_serial_number="none",
            series_description="monaicxr predict (research use, not for diagnosis)",
            omit_empty_frames=False,
        )
    except Exception as e:  # highdicom raises AttributeError / ValueError / TypeError for what the source lacks
        raise DicomSegError(source, _reason(e)) from e
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(path)
    return path
