"""File checks and folder walking shared by the dataset indexers.

An indexer first builds its records from folder and file names alone, then hands them to
:func:`verify_records`, which opens every image and mask once:

- ``verify=True`` decodes the pixels with Pillow (``Image.open(...).load()``), so zero-byte, truncated and
  non-image files are found at indexing time, then decodes them once more the way the loader does
  (:func:`monaicxr.io.reader.read_cxr`: frames, bit depth rules, float ranges, DICOM pixel data and
  photometric interpretation), so that a file that passes the index does not abort training later; it checks
  that each mask has the size of its image and holds only the documented values (0/255 or 0/1);
- ``verify=False`` only checks that each file exists and is not empty (a ``stat`` per file, no decoding).

A file that fails becomes a :class:`~monaicxr.data.records.SkippedItem` with the reason, never a silent drop.
Mask values are checked with ``mask_values="binary"`` (the default: ``{0, 255}`` or ``{0, 1}``, what
:class:`~monaicxr.transforms.BinarizeMask` accepts); ``"three_level"`` also accepts ``{0, 127, 255}`` and
``{0, 128, 255}`` (the 3-level maps of the studies); ``"any"`` accepts anything (for masks binarized later with
``BinarizeMask(allow_any=True)``). A 16-bit, RGB or JPEG-compressed mask fails with its mode and the values found.

DICOM files (``.dcm``) are checked by reading their header with pydicom (``Rows`` and ``Columns`` give the
size, ``PhotometricInterpretation`` the mode), then decoded by the reader: no pixel data, an unsupported
photometric interpretation (YBR_*, PALETTE COLOR), several frames and truncated pixel data are reported.
NIfTI (``.nii``, ``.nii.gz``), MetaImage (``.mha``) and NRRD (``.nrrd``) files are decoded by the reader only (a 2-D image or a single-slice volume).

Example::

    info = check_image("images/covid_1.png")        # ImageInfo(size=(256, 256), mode='L')
    check_mask("lung_masks/covid_1.png", info.size)  # raises BadFileError on a size mismatch
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from monaicxr.data.records import SPLITS, CXRRecord, DatasetError, SkippedItem

__all__ = [
    "PIL_SUFFIXES",
    "DICOM_SUFFIXES",
    "NIFTI_SUFFIXES",
    "ITK_SUFFIXES",
    "IMAGE_SUFFIXES",
    "ImageInfo",
    "BadFileError",
    "check_file",
    "check_image",
    "check_mask",
    "mask_values",
    "is_junk",
    "is_image_file",
    "not_image_reason",
    "stray_file",
    "dataset_root",
    "list_dir",
    "split_of",
    "name_stem",
    "record_id",
    "image_files",
    "pair_masks",
    "missing_masks",
    "verify_records",
    "log_skipped",
]

logger = logging.getLogger(__name__)

PIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")  # TIFF: 16-bit and float radiographs
DICOM_SUFFIXES = (".dcm",)
NIFTI_SUFFIXES = (".nii", ".nii.gz")  # 2-D images and masks, decoded by the loader's reader only
ITK_SUFFIXES = (".mha", ".nrrd")  # MetaImage and NRRD through ITK, likewise decoded by the loader's reader only
IMAGE_SUFFIXES = PIL_SUFFIXES + DICOM_SUFFIXES + NIFTI_SUFFIXES + ITK_SUFFIXES

# Operating-system litter that archives carry along; it is not part of any dataset and is ignored outright.
_JUNK_NAMES = frozenset({".DS_Store", "__MACOSX", "Thumbs.db", "desktop.ini"})

#: the value sets a mask may hold, per ``mask_values`` option
MASK_VALUE_SETS = {
    "binary": ({0, 255}, {0, 1}),
    "three_level": ({0, 255}, {0, 1}, {0, 127, 255}, {0, 128, 255}),
}

MaskSizeExceptions = Mapping[tuple[int, int], Collection[tuple[int, int]]]


@dataclass(frozen=True)
class ImageInfo:
    """What a check learned about an image file: ``size`` is ``(width, height)``; both are ``None`` unverified."""

    path: str
    size: tuple[int, int] | None = None
    mode: str | None = None
    bit_depth: int | None = None
    bit_depth_rule: str | None = None


class BadFileError(DatasetError):
    """A file that cannot be used; ``reason`` is the short text that goes into a :class:`SkippedItem`."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def check_file(path: str | Path) -> Path:
    """Check that ``path`` is an existing, non-empty regular file (no decoding); raise :class:`BadFileError`."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise BadFileError(path, "file does not exist") from None
    except OSError as e:
        raise BadFileError(path, f"cannot read file: {e}") from None
    if not path.is_file():
        raise BadFileError(path, "not a regular file")
    if size == 0:
        raise BadFileError(path, "zero-byte file")
    return path


def _looks_truncated(message: str) -> bool:
    message = message.lower()
    return "truncat" in message or "broken data stream" in message or "eof" in message


def _check_dicom(path: Path) -> ImageInfo:
    import pydicom  # a dependency, imported here so that indexing PNG trees does not pay for it

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        rows, cols = int(ds.Rows), int(ds.Columns)
    except Exception as e:  # pydicom raises many types for a bad file; all of them mean "unusable"
        raise BadFileError(path, f"not a readable DICOM file: {e}") from None
    return ImageInfo(str(path), (cols, rows), str(ds.get("PhotometricInterpretation", "")) or None)


def _decode_as_loader(path: Path) -> tuple[np.ndarray, dict]:
    """Decode ``path`` with the loader's reader; its :class:`DatasetError` becomes a :class:`BadFileError`."""
    from monaicxr.io.reader import read_cxr  # monaicxr.io imports monaicxr.data.records: import here

    try:
        return read_cxr(path)
    except DatasetError as e:
        message = str(e)
        message = message[len(str(path)) + 2 :] if message.startswith(f"{path}: ") else message
        raise BadFileError(path, f"not readable by the loader: {message}") from None


def _with_loader(info: ImageInfo, meta: dict) -> ImageInfo:
    return ImageInfo(info.path, info.size, info.mode, int(meta["bit_depth"]), str(meta["bit_depth_rule"]))


def check_image(path: str | Path, *, verify: bool = True) -> ImageInfo:
    """Check one image file and return its size and mode (and, verified, its bit depth and rule).

    Args:
        path: the file.
        verify: decode the pixels (Pillow, or the DICOM header for ``.dcm``); when ``False`` only check that
            the file exists and is not empty, and return an :class:`ImageInfo` without size.

    Raises:
        BadFileError: with ``reason`` one of ``"file does not exist"``, ``"zero-byte file"``,
            ``"not a decodable image: <Pillow's message>"``, ``"truncated image: <Pillow's message>"``,
            ``"not readable by the loader: <the reader's message>"`` (several frames, a float image of unknown
            range, DICOM without pixel data or with an unsupported photometric interpretation...).
    """
    return _check_image(path, verify=verify)[0]


def _check_image(path: str | Path, *, verify: bool = True) -> tuple[ImageInfo, np.ndarray | None]:
    """:func:`check_image`, also returning the array the loader decoded (``None`` unverified)."""
    path = check_file(path)
    if not verify:
        return ImageInfo(str(path)), None
    if path.suffix.lower() in DICOM_SUFFIXES:
        info = _check_dicom(path)
        arr, meta = _decode_as_loader(path)
        return _with_loader(info, meta), arr
    if path.name.lower().endswith(NIFTI_SUFFIXES + ITK_SUFFIXES):
        arr, meta = _decode_as_loader(path)
        info = ImageInfo(str(path), (int(arr.shape[1]), int(arr.shape[0])), str(meta["original_mode"]))
        return _with_loader(info, meta), arr
    try:
        img = Image.open(path)
    except Exception as e:  # UnidentifiedImageError, OSError, SyntaxError, ... depending on the format plugin
        kind = "truncated image" if _looks_truncated(str(e)) else "not a decodable image"
        raise BadFileError(path, f"{kind}: {e}") from None
    with img:
        size, mode = (int(img.size[0]), int(img.size[1])), img.mode
        try:
            img.load()
        except Exception as e:
            kind = "truncated image" if _looks_truncated(str(e)) else "not a decodable image"
            raise BadFileError(path, f"{kind}: {e}") from None
    arr, meta = _decode_as_loader(path)
    return _with_loader(ImageInfo(str(path), size, mode), meta), arr


def check_mask(
    path: str | Path,
    expected_size: tuple[int, int] | None = None,
    *,
    allowed_sizes: Collection[tuple[int, int]] = (),
    kind: str = "mask",
    verify: bool = True,
    values: str = "binary",
) -> ImageInfo:
    """Check that a mask file is readable, holds the documented values and, when ``expected_size`` is given,
    has the image's size.

    Args:
        path: the mask file.
        expected_size: ``(width, height)`` of its image; ``None`` skips the size check.
        allowed_sizes: other sizes accepted for this image, where a source documents a difference
            (the COVID-19 Radiography Database ships 256 x 256 masks for 299 x 299 images).
        kind: what the mask is, for the message (``"lung mask"``, ``"infection mask"``).
        verify: as in :func:`check_image`; without it no size is known and none is compared, and no values are read.
        values: ``"binary"``, ``"three_level"`` or ``"any"`` (see the module docstring).

    Raises:
        BadFileError: ``reason`` is ``"<kind> 128x128 does not match image 256x256"`` for a size mismatch,
            ``"<kind> <path>: values [0, 76] (mode RGB) ..."`` for unexpected values, or
            ``"<kind> <path>: <reason from check_image>"`` for an unreadable mask.
    """
    if values != "any" and values not in MASK_VALUE_SETS:
        raise ValueError(f"values must be one of {['any', *MASK_VALUE_SETS]}, got {values!r}")
    try:
        info, arr = _check_image(path, verify=verify)
    except BadFileError as e:
        raise BadFileError(path, f"{kind} {path}: {e.reason}") from None
    if arr is not None and values != "any":
        found = {int(v) if float(v).is_integer() else float(v) for v in np.unique(arr)}
        if not any(found <= ok for ok in MASK_VALUE_SETS[values]):
            shown = sorted(found)
            listed = ", ".join(str(v) for v in shown[:8]) + (f", ... ({len(shown)} values)" if len(shown) > 8 else "")
            allowed = " or ".join("/".join(str(v) for v in sorted(ok)) for ok in MASK_VALUE_SETS[values])
            raise BadFileError(
                path,
                f"{kind} {path}: values [{listed}] (mode {info.mode}) are not {allowed}; "
                "pass mask_values='any' to the indexer and binarize with BinarizeMask(allow_any=True)",
            )
    if expected_size is not None and info.size is not None:
        if info.size != tuple(expected_size) and info.size not in {tuple(s) for s in allowed_sizes}:
            w, h = info.size
            raise BadFileError(path, f"{kind} {w}x{h} does not match image {expected_size[0]}x{expected_size[1]}")
    return info


def mask_values(path: str | Path) -> set[int]:
    """The distinct pixel values of a mask file (all channels together, as stored), e.g. ``{0, 255}``.

    :func:`check_mask` checks the values the loader sees instead (an RGB mask becomes its luma).
    """
    path = check_file(path)
    try:
        with Image.open(path) as img:
            arr = np.asarray(img)
    except Exception as e:
        raise BadFileError(path, f"not a decodable image: {e}") from None
    return {int(v) for v in np.unique(arr)}


def is_junk(name: str) -> bool:
    """Operating-system litter (``.DS_Store``, ``__MACOSX``, AppleDouble ``._x`` files) that is ignored outright."""
    return name in _JUNK_NAMES or name.startswith("._")


def is_image_file(path: str | Path, suffixes: Collection[str] = IMAGE_SUFFIXES) -> bool:
    name = Path(path).name.lower()
    return Path(name).suffix in suffixes or (".nii.gz" in suffixes and name.endswith(".nii.gz"))


def not_image_reason(path: str | Path) -> str:
    """The skip reason for a file that an indexer does not read because of its name."""
    name = Path(path).name.lower()
    if name.endswith((".xlsx", ".xls", ".csv")):
        return "metadata spreadsheet, not an image"
    suffix = Path(path).suffix
    return f"not an image file (suffix {suffix!r})" if suffix else "not an image file (no suffix)"


def stray_file(path: Path, where: str, suffixes: Collection[str] = IMAGE_SUFFIXES) -> SkippedItem:
    """The :class:`SkippedItem` for a file found where the layout has none: an image outside ``where``, or a
    file that is not an image."""
    return SkippedItem(str(path), f"image outside {where}" if is_image_file(path, suffixes) else not_image_reason(path))


def dataset_root(root: str | Path) -> Path:
    """``root`` as an absolute path, checked to be an existing folder that is not empty; else DatasetError."""
    path = Path(os.path.abspath(Path(root).expanduser()))
    if not path.exists():
        raise DatasetError(f"dataset folder {path} does not exist")
    if not path.is_dir():
        raise DatasetError(f"dataset folder {path} is not a folder")
    if not any(not is_junk(p.name) for p in path.iterdir()):
        raise DatasetError(f"dataset folder {path} is empty")
    return path


def list_dir(folder: Path) -> tuple[list[Path], list[Path]]:
    """Sub-folders and files of ``folder``, each sorted by name, operating-system litter left out."""
    dirs: list[Path] = []
    files: list[Path] = []
    with os.scandir(folder) as it:
        for entry in it:
            if is_junk(entry.name):
                continue
            (dirs if entry.is_dir() else files).append(Path(entry.path))
    return sorted(dirs), sorted(files)


def split_of(name: str) -> str | None:
    """``"train"``, ``"val"`` or ``"test"`` for a split folder name (any case), else ``None``."""
    return name.lower() if name.lower() in SPLITS else None


def name_stem(path: Path) -> str:
    """The file name without its suffix, both of ``.nii.gz`` (``a.nii.gz`` -> ``a``, ``a.png`` -> ``a``)."""
    return path.name[: -len(".nii.gz")] if path.name.lower().endswith(".nii.gz") else path.stem


def record_id(path: Path, base: Path) -> str:
    """The record id: path relative to ``base``, suffix removed (both of ``.nii.gz``), with ``/`` separators."""
    rel = path.relative_to(base)
    return (
        rel.with_suffix("").with_suffix("") if rel.name.lower().endswith(".nii.gz") else rel.with_suffix("")
    ).as_posix()


def image_files(folder: Path, suffixes: Collection[str] = IMAGE_SUFFIXES) -> tuple[list[Path], list[SkippedItem]]:
    """Image files directly in ``folder`` (sorted), and a :class:`SkippedItem` for every other file or sub-folder."""
    dirs, files = list_dir(folder)
    images = [f for f in files if is_image_file(f, suffixes)]
    skipped = [SkippedItem(str(f), not_image_reason(f)) for f in files if not is_image_file(f, suffixes)]
    skipped += [SkippedItem(str(d), "sub-folder of an image folder is not indexed") for d in dirs]
    return images, skipped


def pair_masks(
    images: Iterable[Path], mask_dir: Path, *, kind: str, by_stem: bool = False
) -> tuple[dict[Path, Path], list[Path], list[SkippedItem]]:
    """Match each image with the file of the same name (or, with ``by_stem``, the same stem) in ``mask_dir``.

    Returns:
        ``(masks, missing, skipped)``: image -> mask for the images that have one, the images that have none,
        and a :class:`SkippedItem` for every file of ``mask_dir`` that belongs to no image.
    """
    mask_files, skipped = image_files(mask_dir, IMAGE_SUFFIXES) if mask_dir.is_dir() else ([], [])
    by_key: dict[str, Path] = {}
    for m in mask_files:
        key = name_stem(m) if by_stem else m.name
        if key in by_key:
            raise DatasetError(f"{mask_dir}: {by_key[key].name} and {m.name} are both the {kind} of image {key!r}")
        by_key[key] = m
    masks: dict[Path, Path] = {}
    missing: list[Path] = []
    for img in images:
        mask = by_key.pop(name_stem(img) if by_stem else img.name, None)
        if mask is None:
            missing.append(img)
        else:
            masks[img] = mask
    skipped += [SkippedItem(str(m), f"{kind} without an image") for m in by_key.values()]
    return masks, missing, skipped


def _short_list(paths: Collection[Path | str], n: int = 5) -> str:
    names = [str(p) for p in list(paths)[:n]]
    more = f" and {len(paths) - n} more" if len(paths) > n else ""
    return ", ".join(names) + more


def missing_masks(missing: Collection[Path], kind: str, mask_dir: Path, *, allow: bool) -> list[SkippedItem]:
    """Images without a mask: a :class:`DatasetError` naming them, or with ``allow`` one SkippedItem each."""
    if missing and not allow:
        raise DatasetError(
            f"{len(missing)} image(s) have no {kind} in {mask_dir}: {_short_list(missing)} "
            f"(pass allow_missing_masks=True to skip them instead)"
        )
    return [SkippedItem(str(p), f"no {kind} in {mask_dir}") for p in missing]


def verify_records(
    records: Iterable[CXRRecord],
    *,
    verify: bool = True,
    desc: str = "checking images",
    mask_size_exceptions: MaskSizeExceptions | None = None,
    mask_values: str = "binary",
) -> tuple[list[CXRRecord], list[SkippedItem]]:
    """Check every record's image and masks; return the usable records and a :class:`SkippedItem` per other.

    A record whose mask fails is skipped as a whole; the :class:`SkippedItem` names the image and gives the
    mask's reason. ``mask_size_exceptions`` maps an image size to mask sizes also accepted for it;
    ``mask_values`` is passed to :func:`check_mask`.
    """
    records = list(records)
    exceptions = mask_size_exceptions or {}
    kept: list[CXRRecord] = []
    skipped: list[SkippedItem] = []
    for rec in tqdm(records, desc=desc, unit="image", disable=None if verify else True, leave=False):
        try:
            info = check_image(rec.image, verify=verify)
            for kind, mask in (
                ("lung mask", rec.lung_mask),
                ("infection mask", rec.infection_mask),
                ("ignore mask", rec.ignore_mask),
            ):
                if mask is not None:
                    allowed = exceptions.get(info.size, ()) if info.size is not None else ()
                    check_mask(mask, info.size, allowed_sizes=allowed, kind=kind, verify=verify, values=mask_values)
        except BadFileError as e:
            skipped.append(SkippedItem(rec.image, e.reason))
            continue
        kept.append(rec)
    return kept, skipped


_QUIET_REASONS = ("metadata spreadsheet", "not an image file")


def log_skipped(source: str, root: Path, skipped: list[SkippedItem]) -> None:
    """A warning per reason with a count (not one per file); files skipped for not being images only at debug."""
    for item in skipped:
        logger.debug("%s: skipped %s: %s", source, item.path, item.reason)
    counts = Counter(s.reason.split(":")[0] for s in skipped if not s.reason.startswith(_QUIET_REASONS))
    for reason, n in sorted(counts.items()):
        example = next(s.path for s in skipped if s.reason.split(":")[0] == reason)
        logger.warning("%s: skipped %d file(s) under %s: %s (e.g. %s)", source, n, root, reason, example)
