"""A MONAI image reader for chest radiographs: PNG / JPEG / BMP / TIFF through PIL, DICOM through pydicom,
NIfTI (``.nii``, ``.nii.gz``, a 2-D image or a single-slice volume) through nibabel, and MetaImage / NRRD
(``.mha``, ``.nrrd``, the formats 3D Slicer and ITK-SNAP save masks in) through ITK, with NIfTI's value rules.

Written by hand because neither MONAI reader covers what a chest X-ray pipeline needs:

- MONAI's ``PILReader`` reverses the axes by default (``reverse_indexing=True``, output ``(W, H)``), keeps RGB
  as three channels and does not record the bit depth of 16-bit PNGs.
- MONAI's ``PydicomReader`` returns stored values: it neither inverts MONOCHROME1 (a CR film read by it looks
  like a negative) nor applies the VOI window, and it does not refuse photometric interpretations that are
  not grey-scale.

:class:`CXRImageReader` returns one channel-less 2D ``float32`` array in ``(H, W)`` row-major order (the order
of ``numpy.asarray(PIL.Image.open(path))``), so a mask loaded by it lines up with a PNG written back with PIL
without any transpose. Use it as::

    LoadImaged(keys=["image", "lung"], reader=CXRImageReader(), image_only=True, ensure_channel_first=True)

Every image gets the same metadata keys, so that PNG and DICOM records collate in one batch:

========================== ============================================================================
key                        meaning
========================== ============================================================================
``bit_depth``              8, 12 or 16 for PIL files; BitsStored for DICOM. Values lie in
                           ``[0, 2**bit_depth - 1]`` (see :class:`monaicxr.transforms.ScaleByBitDepth`)
``bit_depth_rule``         where ``bit_depth`` came from (see :data:`BIT_DEPTH_RULES`): ``"dtype"``,
                           ``"sBIT"``, ``"BitsStored"``, ``"float [0,1]"``, ``"float integer range"``,
                           ``"max value"`` or ``"explicit"``
``original_mode``          the PIL mode (``"L"``, ``"I;16"``, ``"RGB"``...) or ``"DICOM"``
``format``                 the PIL format name (``"PNG"``...) or ``"DICOM"``
``photometric_interpretation``  DICOM (0028,0004), ``"none"`` for PIL files
``pixel_spacing``          ``float64`` array ``[row_mm, col_mm]``; ``[nan, nan]`` when unknown
``modality``               DICOM (0008,0060) or ``"none"``
``view_position``          DICOM (0018,5101) or ``"none"``
``inverted``               ``True`` where a MONOCHROME1 image was inverted
``voi``                    ``"window"``, ``"lut"`` or ``"none"``: which DICOM VOI transform was applied
``spatial_shape``          ``[H, W]``
========================== ============================================================================

The bit depth is never guessed silently; the rule that gave it is in ``bit_depth_rule``:

- ``"dtype"``: the sample depth of the file (8 for ``L`` / RGB / palette, 16 for a 16-bit PNG or TIFF).
- ``"sBIT"``: a PNG whose ``sBIT`` chunk says fewer significant bits than the sample depth (12-bit data in a
  16-bit PNG). Pillow does not expose ``sBIT``, so the PNG chunks are walked here (:func:`png_significant_bits`).
  Where the values exceed ``2**sBIT - 1`` the writer scaled them up to the sample depth, as the PNG
  specification recommends, and the sample depth is used instead.
- ``"BitsStored"``: DICOM (0028,0101).
- ``"float [0,1]"``: a float image (TIFF mode ``F``) with every value in ``[0, 1]``; it is multiplied by
  65535 and given ``bit_depth`` 16, so that it scales back to the same ``[0, 1]``.
- ``"float integer range"``: a float image holding only integers in ``[0, 65535]``: 8, 12 or 16 bits, the
  least that holds its maximum.
- ``"max value"``: a 32-bit integer image (mode ``I``, which states no bit depth): the least of 8, 12, 16 bits
  that holds its maximum; logged.
- ``"explicit"``: ``CXRImageReader(bit_depth=...)`` or ``CXRImageReader(float_range=(lo, hi))``.

NIfTI states no bit depth: an 8-bit integer datatype gives ``"dtype"`` (8 bits), a wider integer datatype the
``"max value"`` rule (as a 32-bit integer TIFF; logged), a float datatype (or integers with a scale factor,
``scl_slope`` / ``scl_inter``, which nibabel applies) the float rules above. The array is returned as
``(H, W)`` = the transpose of the stored ``(i, j)`` = ``(x, y)`` axes, as nibabel writes a ``(W, H)`` array;
the affine is not applied (pixels as stored, as for EXIF). A volume with more than one slice, frame or
channel, and an RGB or complex datatype, are refused.

A float image with NaN or infinite values, or whose range is neither ``[0, 1]`` nor an integer range, is a
:class:`~monaicxr.data.records.DatasetError` naming the file and its range unless ``float_range`` is given.

An unknown pixel spacing is ``[nan, nan]`` rather than ``None``: ``None`` stops torch's ``default_collate``
and MONAI's ``"none"`` string cannot be collated with a spacing from another file of the same batch.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from monai.data import ImageReader
from monai.utils import MetaKeys, ensure_tuple

from monaicxr.data.errors import DatasetError

__all__ = [
    "CXRImageReader",
    "read_cxr",
    "png_significant_bits",
    "is_nifti",
    "BIT_DEPTH_RULES",
    "PIL_SUFFIXES",
    "DICOM_SUFFIXES",
    "NIFTI_SUFFIXES",
    "ITK_SUFFIXES",
]

logger = logging.getLogger(__name__)

PIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
DICOM_SUFFIXES = (".dcm", ".dicom")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
ITK_SUFFIXES = (".mha", ".nrrd")  # single-file formats (a .mhd header names a separate .raw file)
_EXPECTED = "a PNG, JPEG, BMP or TIFF image, a DICOM file or a 2-D NIfTI image"
_NONE = "none"  # monai.utils.TraceKeys.NONE, MONAI's stand-in for None in metadata
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601
#: the values of the ``bit_depth_rule`` meta entry
BIT_DEPTH_RULES = ("dtype", "sBIT", "BitsStored", "float [0,1]", "float integer range", "max value", "explicit")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class _CXRImage:
    """What :meth:`CXRImageReader.read` returns: the decoded array and its metadata."""

    array: np.ndarray
    meta: dict = field(default_factory=dict)


def _base_meta(path: Path, height: int, width: int) -> dict:
    return {
        "filename_or_obj": str(path),
        "bit_depth": 8,
        "bit_depth_rule": "dtype",
        "original_mode": _NONE,
        "format": _NONE,
        "photometric_interpretation": _NONE,
        "pixel_spacing": np.array([math.nan, math.nan]),
        "modality": _NONE,
        "view_position": _NONE,
        "inverted": False,
        "voi": _NONE,
        MetaKeys.SPATIAL_SHAPE: np.asarray((height, width)),
        MetaKeys.ORIGINAL_CHANNEL_DIM: float("nan"),
    }


def _has_dicm_preamble(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of an ``(H, W, 3)`` array, rounded to integers like PIL's ``convert("L")``."""
    rgb = rgb[..., :3].astype(np.float64)
    return np.rint(rgb[..., 0] * _LUMA[0] + rgb[..., 1] * _LUMA[1] + rgb[..., 2] * _LUMA[2])


# ----------------------------------------------------------------------------------------------------- PIL


def png_significant_bits(path: str | os.PathLike) -> int | None:
    """The grey (or first colour) significant bits of a PNG's ``sBIT`` chunk, ``None`` when it has none.

    Pillow does not expose ``sBIT``, so the chunks are walked here: each is a 4-byte big-endian length, a
    4-byte type, the data and a CRC; ``sBIT`` must come before the first ``IDAT``.
    """
    with open(path, "rb") as f:
        if f.read(8) != _PNG_SIGNATURE:
            return None
        while True:
            head = f.read(8)
            if len(head) < 8:
                return None
            length, kind = int.from_bytes(head[:4], "big"), head[4:]
            if kind == b"sBIT":
                data = f.read(length)
                return int(data[0]) if data else None
            if kind in (b"IDAT", b"IEND"):
                return None
            f.seek(length + 4, os.SEEK_CUR)


def _least_depth(peak: float) -> int:
    return 8 if peak <= 255 else 12 if peak <= 4095 else 16


def _float_depth(path: Path, arr: np.ndarray, float_range: tuple[float, float] | None) -> tuple[np.ndarray, int, str]:
    """Bit depth of a float image, from its values or from ``float_range`` (see the module docstring)."""
    if float_range is not None:
        lo, hi = float(float_range[0]), float(float_range[1])
        scaled = (arr.astype(np.float64) - lo) * (65535.0 / max(hi - lo, 1e-12))
        return np.clip(np.nan_to_num(scaled, nan=0.0), 0.0, 65535.0), 16, "explicit"
    if arr.size == 0:
        return arr, 8, "float [0,1]"
    if not np.isfinite(arr).all():
        raise DatasetError(
            f"{path}: float image has {int((~np.isfinite(arr)).sum())} NaN or infinite value(s); "
            "pass float_range=(lo, hi) to map a known range and set them to lo"
        )
    lo, hi = float(arr.min()), float(arr.max())
    if lo >= 0.0 and hi <= 1.0:
        return arr.astype(np.float64) * 65535.0, 16, "float [0,1]"
    if lo >= 0.0 and hi <= 65535.0 and np.array_equal(arr, np.rint(arr)):
        return arr, _least_depth(hi), "float integer range"
    raise DatasetError(
        f"{path}: float image has values in [{lo:g}, {hi:g}], neither [0, 1] nor an integer range; "
        "pass float_range=(lo, hi) to say which values are black and white"
    )


def _read_pil(path: Path, bit_depth: int | None = None, float_range: tuple[float, float] | None = None) -> _CXRImage:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            fmt = img.format or _NONE
            n_frames = getattr(img, "n_frames", 1)
            if n_frames > 1:
                raise DatasetError(f"{path}: has {n_frames} frames; expected a single 2D radiograph")
            if mode in ("1", "P", "PA", "LA", "La"):
                img = img.convert("L")  # palette -> grey via the palette's luma; alpha dropped
            arr = np.asarray(img)
    except DatasetError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        raise DatasetError(f"{path}: cannot be read as an image ({type(e).__name__}: {e}); expected {_EXPECTED}") from e

    rule = "dtype"
    if mode in ("1", "L", "P", "PA", "LA", "La"):
        depth = 8
    elif mode.startswith("I;16"):
        depth = 16
        sbit = png_significant_bits(path) if fmt == "PNG" else None
        if sbit is not None and 1 <= sbit < 16 and (arr.size == 0 or int(arr.max()) <= 2**sbit - 1):
            depth, rule = sbit, "sBIT"
    elif mode == "I":
        peak = float(arr.max()) if arr.size else 0.0
        if float(arr.min() if arr.size else 0) < 0 or peak > 65535:
            if bit_depth is None:
                raise DatasetError(
                    f"{path}: 32-bit integer image has values in [{int(arr.min())}, {int(peak)}], outside "
                    "[0, 65535]; pass bit_depth=... to read it anyway"
                )
        depth, rule = _least_depth(peak), "max value"
        if bit_depth is None:
            logger.info("%s: mode I states no bit depth; %d bits from its maximum %g", path, depth, peak)
    elif mode == "F":
        arr, depth, rule = _float_depth(path, arr, float_range)
    elif mode in ("RGB", "RGBA", "RGBX"):
        arr = _luma(arr)  # alpha dropped: a radiograph has no meaningful transparency
        depth = 8
    else:
        raise DatasetError(
            f"{path}: PIL mode {mode!r} is not supported; expected one of 1, L, P, LA, I;16, I, F, RGB, RGBA"
        )
    if bit_depth is not None and mode != "F":
        depth, rule = int(bit_depth), "explicit"
    if arr.ndim != 2:
        raise DatasetError(f"{path}: decoded to shape {arr.shape}; expected a 2D grey-scale image")
    meta = _base_meta(path, *arr.shape)
    meta.update({"bit_depth": depth, "bit_depth_rule": rule, "original_mode": mode, "format": fmt})
    return _CXRImage(np.ascontiguousarray(arr, dtype=np.float32), meta)


# --------------------------------------------------------------------------------------------------- NIfTI


def is_nifti(path: str | os.PathLike) -> bool:
    """Whether ``path``'s name ends in ``.nii`` or ``.nii.gz`` (any case)."""
    return Path(path).name.lower().endswith(NIFTI_SUFFIXES)


def _read_nifti(path: Path, bit_depth: int | None = None, float_range: tuple[float, float] | None = None) -> _CXRImage:
    import nibabel as nib

    try:
        img = nib.load(str(path))
        arr = np.asanyarray(img.dataobj)
    except Exception as e:  # nibabel raises ImageFileError, EOFError, zlib / gzip errors... for a bad file
        raise DatasetError(f"{path}: cannot be read as NIfTI ({type(e).__name__}: {e}); expected {_EXPECTED}") from e
    if arr.dtype.fields is not None or np.iscomplexobj(arr) or arr.dtype.kind not in "biuf":
        raise DatasetError(f"{path}: NIfTI datatype {img.get_data_dtype()} is not supported; expected grey-scale")
    if arr.ndim < 2 or any(n != 1 for n in arr.shape[2:]):
        raise DatasetError(
            f"{path}: NIfTI image has shape {tuple(arr.shape)}; expected a 2-D image or a single-slice volume"
        )
    arr = arr.reshape(arr.shape[:2]).T  # stored (x, y) = (W, H)
    zooms = img.header.get_zooms()[:2]
    spacing = (zooms[1], zooms[0]) if len(zooms) == 2 else None  # [row, col] = [y, x]
    return _volume_grey(path, arr, "NIfTI", spacing, bit_depth, float_range)


def _volume_grey(
    path: Path,
    arr: np.ndarray,
    fmt: str,
    spacing: tuple[float, float] | None,
    bit_depth: int | None,
    float_range: tuple[float, float] | None,
) -> _CXRImage:
    """The grey-level rules shared by the formats that state no bit depth (NIfTI, MetaImage, NRRD)."""
    kind = arr.dtype.kind
    if kind == "f":
        arr, depth, rule = _float_depth(path, arr, float_range)
    elif kind == "b" or arr.dtype.itemsize == 1:
        if kind == "b" or int(arr.min(initial=0)) >= 0:
            depth, rule = 8, "dtype"
        else:
            raise DatasetError(f"{path}: {fmt} int8 image has negative values; expected unsigned grey levels")
    else:
        lo, peak = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        if (lo < 0 or peak > 65535) and bit_depth is None:
            raise DatasetError(
                f"{path}: {fmt} {arr.dtype} image has values in [{lo:g}, {peak:g}], outside [0, 65535]; "
                "pass bit_depth=... (or float_range for a scaled image) to read it anyway"
            )
        depth, rule = _least_depth(peak), "max value"
        if bit_depth is None:
            logger.info("%s: %s %s states no bit depth; %d bits from its maximum %g", path, fmt, arr.dtype, depth, peak)
    if bit_depth is not None and kind != "f":
        depth, rule = int(bit_depth), "explicit"
    meta = _base_meta(path, *arr.shape)
    meta.update({"bit_depth": depth, "bit_depth_rule": rule, "original_mode": str(arr.dtype), "format": fmt})
    if spacing is not None and all(math.isfinite(float(z)) and float(z) > 0 for z in spacing):
        meta["pixel_spacing"] = np.asarray([float(z) for z in spacing], dtype=np.float64)
    return _CXRImage(np.ascontiguousarray(arr, dtype=np.float32), meta)


# ----------------------------------------------------------------------------------------- MetaImage, NRRD


def is_itk_image(path: str | os.PathLike) -> bool:
    """Whether ``path``'s name ends in ``.mha`` or ``.nrrd`` (any case): read through ITK."""
    return Path(path).name.lower().endswith(ITK_SUFFIXES)


def _read_itk(path: Path, bit_depth: int | None = None, float_range: tuple[float, float] | None = None) -> _CXRImage:
    """MetaImage / NRRD through ITK (``itk.imread``): one grey component, 2-D or a single slice."""
    import itk

    try:
        img = itk.imread(str(path))
        arr = np.asarray(itk.array_from_image(img))
        components = int(img.GetNumberOfComponentsPerPixel())
        spacing = [float(v) for v in img.GetSpacing()]
    except Exception as e:  # ITK raises RuntimeError for an unreadable or truncated file
        raise DatasetError(f"{path}: cannot be read by ITK ({type(e).__name__}: {e}); expected {_EXPECTED}") from e
    if components != 1 or arr.dtype.kind not in "biuf":
        raise DatasetError(f"{path}: {components}-component {arr.dtype} pixels; expected one grey component")
    if arr.ndim < 2 or any(n != 1 for n in arr.shape[:-2]):  # ITK arrays are (..., y, x)
        raise DatasetError(f"{path}: ITK image has shape {tuple(arr.shape)}; expected a 2-D image or a single slice")
    arr = arr.reshape(arr.shape[-2:])
    return _volume_grey(path, arr, path.suffix.lstrip(".").upper(), (spacing[1], spacing[0]), bit_depth, float_range)


# --------------------------------------------------------------------------------------------------- DICOM


def _stored_range(ds) -> tuple[float, float]:
    bits = int(ds.BitsStored)
    if int(ds.get("PixelRepresentation", 0)) == 1:
        return -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    return 0.0, 2.0**bits - 1


def _modality_range(ds) -> tuple[float, float]:
    """Output range of the Modality LUT / rescale stage (as pydicom's ``apply_windowing`` computes it)."""
    if ds.get("ModalityLUTSequence"):
        return 0.0, 2.0 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1
    lo, hi = _stored_range(ds)
    if "RescaleSlope" in ds and "RescaleIntercept" in ds:
        slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        lo, hi = sorted((lo * slope + intercept, hi * slope + intercept))
    return lo, hi


def _pixel_spacing(ds) -> np.ndarray:
    """PixelSpacing, else ImagerPixelSpacing, as ``[row_mm, col_mm]``; NaN when absent or not positive."""
    for tag in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(tag)
        if value is None:
            continue
        try:
            spacing = [float(v) for v in ensure_tuple(value)]
        except (TypeError, ValueError):
            continue
        if len(spacing) == 1:
            spacing = spacing * 2
        if len(spacing) == 2 and all(math.isfinite(s) and s > 0 for s in spacing):
            return np.asarray(spacing, dtype=np.float64)
    return np.array([math.nan, math.nan])


def _read_dicom(path: Path, invert_monochrome1: bool, apply_voi: bool) -> _CXRImage:
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception as e:  # pydicom raises many types for garbage input
        raise DatasetError(f"{path}: cannot be parsed as DICOM ({type(e).__name__}: {e}); expected {_EXPECTED}") from e
    if "PixelData" not in ds:
        raise DatasetError(f"{path}: has no Pixel Data element (7FE0,0010); expected a DICOM image")

    if not ds.file_meta.get("TransferSyntaxUID"):
        # No file meta (e.g. CR-MONO1-10-chest.dcm): use the encoding pydicom detected, implicit VR LE by default.
        implicit, little = getattr(ds, "original_encoding", (True, True))
        ds.file_meta.TransferSyntaxUID = (
            ExplicitVRBigEndian
            if little is False
            else ExplicitVRLittleEndian
            if implicit is False
            else ImplicitVRLittleEndian
        )

    pi = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if pi not in ("MONOCHROME1", "MONOCHROME2", "RGB"):
        raise DatasetError(
            f"{path}: Photometric Interpretation {pi or '<absent>'!r} is not supported; "
            "expected MONOCHROME1, MONOCHROME2 or RGB"
        )
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    if n_frames > 1:
        raise DatasetError(f"{path}: has {n_frames} frames; expected a single-frame radiograph")
    if "BitsStored" not in ds:
        raise DatasetError(f"{path}: has no Bits Stored (0028,0101); expected a DICOM image")

    try:
        arr = ds.pixel_array
    except Exception as e:  # missing decoder, truncated data, bad header...
        syntax = ds.file_meta.TransferSyntaxUID
        raise DatasetError(
            f"{path}: pixel data cannot be decoded ({type(e).__name__}: {e}); transfer syntax "
            f"{getattr(syntax, 'name', syntax)}; JPEG / JPEG 2000 need pylibjpeg with its openjpeg and libjpeg plugins"
        ) from e

    bits = int(ds.BitsStored)
    out_max = 2.0**bits - 1
    voi = _NONE
    if pi == "RGB":
        if arr.ndim != 3 or arr.shape[-1] != 3:
            raise DatasetError(f"{path}: RGB pixel data has shape {arr.shape}; expected (rows, columns, 3)")
        values, (lo, hi) = _luma(arr), _stored_range(ds)
    else:
        if arr.ndim != 2:
            raise DatasetError(f"{path}: pixel data has shape {arr.shape}; expected (rows, columns)")
        values = apply_modality_lut(arr, ds)
        lo, hi = _modality_range(ds)
        if apply_voi:
            if ds.get("VOILUTSequence"):
                if not np.issubdtype(values.dtype, np.integer):
                    values = np.rint(values).astype(np.int64)
                item = ds.VOILUTSequence[0]
                first, n_entries = int(item.LUTDescriptor[1]), int(item.LUTDescriptor[0]) or 2**16
                lut = apply_voi_lut(np.arange(first, first + n_entries), ds)
                depth = min(int(item.LUTDescriptor[2]), max(8, int(lut.max()).bit_length()))
                values, (lo, hi), voi = apply_voi_lut(values, ds), (0.0, 2.0**depth - 1), "lut"
            elif "WindowCenter" in ds and "WindowWidth" in ds:
                values, voi = apply_voi_lut(values, ds), "window"  # output range stays (lo, hi)

    scaled = (np.asarray(values, dtype=np.float64) - lo) * (out_max / max(hi - lo, 1e-12))
    inverted = pi == "MONOCHROME1" and invert_monochrome1
    if inverted:
        scaled = out_max - scaled
    scaled = np.clip(scaled, 0.0, out_max)

    meta = _base_meta(path, *scaled.shape)
    meta.update(
        {
            "bit_depth": bits,
            "bit_depth_rule": "BitsStored",
            "original_mode": "DICOM",
            "format": "DICOM",
            "photometric_interpretation": pi,
            "pixel_spacing": _pixel_spacing(ds),
            "modality": str(ds.get("Modality", "") or _NONE),
            "view_position": str(ds.get("ViewPosition", "") or _NONE),
            "inverted": inverted,
            "voi": voi,
        }
    )
    return _CXRImage(np.ascontiguousarray(scaled, dtype=np.float32), meta)


# -------------------------------------------------------------------------------------------------- reader


def read_cxr(
    path: str | os.PathLike,
    *,
    invert_monochrome1: bool = True,
    apply_voi: bool = True,
    bit_depth: int | None = None,
    float_range: tuple[float, float] | None = None,
) -> tuple[np.ndarray, dict]:
    """Read one radiograph as a ``float32`` ``(H, W)`` array and its metadata (see the module docstring).

    Args:
        path: a PNG / JPEG / BMP / TIFF file, a DICOM file (``.dcm``, ``.dicom``, or no suffix) or a NIfTI file
            (``.nii``, ``.nii.gz``).
        invert_monochrome1: invert MONOCHROME1 DICOM so that bones are bright and lungs dark.
        apply_voi: apply the DICOM VOI LUT or the first Window Center / Width pair.
        bit_depth, float_range: explicit bit depth rules, as in :class:`CXRImageReader`.

    Returns:
        ``(array, meta)``.

    Raises:
        FileNotFoundError: the file does not exist.
        DatasetError: empty, truncated or non-image file, or an image this reader refuses.
    """
    reader = CXRImageReader(
        invert_monochrome1=invert_monochrome1, apply_voi=apply_voi, bit_depth=bit_depth, float_range=float_range
    )
    img = reader.read(path)
    return img.array, img.meta


class CXRImageReader(ImageReader):
    """Read a chest radiograph as one grey channel in ``(H, W)`` row-major order (unlike MONAI's ``PILReader``).

    The array has no channel dimension (``original_channel_dim`` is NaN, so ``ensure_channel_first=True`` adds
    one) and is in the order of ``numpy.asarray(PIL.Image.open(path))``: masks and images loaded by this reader
    line up with PNG files written back with PIL without any transpose. No affine is set (MONAI's identity
    default), as for ``PILReader``; the DICOM pixel spacing is kept in the metadata only.

    PIL files (modes ``1``, ``L``, ``P``, ``LA``, ``I;16``, ``I;16B``, ``I``, ``F``, ``RGB``, ``RGBA``) keep
    their value range. ``1`` and ``P`` become ``L`` (``1`` gives 0/255), ``LA`` drops alpha, ``RGB`` and ``RGBA``
    become the ITU-R 601 luma ``0.299 R + 0.587 G + 0.114 B`` rounded like PIL's ``convert("L")`` (alpha is
    dropped). ``bit_depth`` is 8 for 8-bit modes, 16 for ``I;16*`` or the PNG ``sBIT`` value, and for ``I`` / ``F``
    follows the rules of the module docstring; ``bit_depth_rule`` says which rule applied. EXIF orientation is not applied: pixels are returned as stored.

    DICOM files are read with ``pydicom.dcmread(force=True)`` (a file without file meta gets the transfer
    syntax pydicom detected, implicit VR little endian by default); JPEG and JPEG 2000 pixel data are decoded by
    the pylibjpeg plugins. The DICOM grey-scale pipeline is then applied in order: Modality LUT / rescale
    (``pydicom.pixels.apply_modality_lut``), VOI LUT or window (``pydicom.pixels.apply_voi_lut``, first window),
    MONOCHROME1 inversion, and a linear map of the stage's output range (not the image's own min / max) onto
    ``[0, 2**BitsStored - 1]``, so that the result is handled like a PNG of that bit depth. RGB is converted to
    luma; any other photometric interpretation (YBR_*, PALETTE COLOR...) and multi-frame files are refused, as
    TorchXRayVision does.

    The VOI transform is applied by default because it is what the modality chose for display, and the public
    PNG datasets that models are trained on were exported from displayed images; for CR / DX the window
    usually spans most of the stored range, so it changes little. Pass ``apply_voi=False`` to keep the
    Modality-LUT output instead.

    Args:
        invert_monochrome1: invert MONOCHROME1 so that bones are bright and lungs dark (default ``True``;
            ``False`` only for tests and inspection).
        apply_voi: apply the VOI LUT or window where the file has one.
        bit_depth: an explicit bit depth for PIL integer images (rule ``"explicit"``), e.g. 12 for 12-bit data in
            16-bit PNGs written without ``sBIT``. DICOM files always use BitsStored.
        float_range: ``(black, white)`` for float images: mapped linearly onto ``[0, 65535]`` (16 bits, rule
            ``"explicit"``), NaN set to black. Without it a float image must hold ``[0, 1]`` or integers.

    Example::

        reader = CXRImageReader()
        load = LoadImaged(keys=["image", "lung"], reader=reader, image_only=True, ensure_channel_first=True)
    """

    def __init__(
        self,
        invert_monochrome1: bool = True,
        apply_voi: bool = True,
        bit_depth: int | None = None,
        float_range: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        if bit_depth is not None and not 1 <= int(bit_depth) <= 16:
            raise ValueError(f"bit_depth must be between 1 and 16, got {bit_depth}")
        self.invert_monochrome1 = invert_monochrome1
        self.apply_voi = apply_voi
        self.bit_depth = bit_depth
        self.float_range = None if float_range is None else (float(float_range[0]), float(float_range[1]))

    def verify_suffix(self, filename: Sequence[str | os.PathLike] | str | os.PathLike) -> bool:
        """True when every file has a PIL or DICOM suffix, or no suffix and a DICM preamble."""
        for name in ensure_tuple(filename):
            path = Path(name)
            suffix = path.suffix.lower()
            if suffix in PIL_SUFFIXES or suffix in DICOM_SUFFIXES or is_nifti(path) or is_itk_image(path):
                continue
            if suffix == "" and _has_dicm_preamble(path):
                continue
            return False
        return True

    def read(self, data: Sequence[str | os.PathLike] | str | os.PathLike, **kwargs) -> _CXRImage | list[_CXRImage]:
        """Decode the file or files now, so that a bad file fails here with a :class:`DatasetError`."""
        images = [self._read_one(Path(name)) for name in ensure_tuple(data)]
        return images if len(images) > 1 else images[0]

    def get_data(self, img: _CXRImage | Sequence[_CXRImage]) -> tuple[np.ndarray, dict]:
        """Return the array and metadata; several images are stacked on a new first (channel) axis."""
        images = list(ensure_tuple(img))
        meta = dict(images[0].meta)
        if len(images) == 1:
            return images[0].array, meta
        shapes = {im.array.shape for im in images}
        if len(shapes) > 1:
            names = [im.meta["filename_or_obj"] for im in images]
            raise DatasetError(f"{names}: images to stack as channels differ in shape {sorted(shapes)}")
        meta[MetaKeys.ORIGINAL_CHANNEL_DIM] = 0
        return np.stack([im.array for im in images], axis=0), meta

    def _read_one(self, path: Path) -> _CXRImage:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file; expected {_EXPECTED}")
        if path.stat().st_size == 0:
            raise DatasetError(f"{path}: file is empty (0 bytes); expected {_EXPECTED}")
        suffix = path.suffix.lower()
        if is_nifti(path):
            return _read_nifti(path, self.bit_depth, self.float_range)
        if is_itk_image(path):
            return _read_itk(path, self.bit_depth, self.float_range)
        if suffix in DICOM_SUFFIXES or _has_dicm_preamble(path):
            return _read_dicom(path, self.invert_monochrome1, self.apply_voi)
        if suffix in PIL_SUFFIXES:
            return _read_pil(path, self.bit_depth, self.float_range)
        try:
            return _read_pil(path, self.bit_depth, self.float_range)
        except DatasetError as pil_error:
            try:  # DICOM without preamble and without a suffix
                return _read_dicom(path, self.invert_monochrome1, self.apply_voi)
            except DatasetError:
                raise pil_error from None
