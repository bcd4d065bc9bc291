"""Which files ``monaicxr predict`` reads, how (as displayed: EXIF orientation applied) and what looks implausible.

- :func:`find_inputs` walks files and folders (recursively, not into symbolic links to folders, nor into an
  earlier run's output folder) and keeps files with an image or DICOM suffix or a DICOM preamble.
- :func:`read_input` reads one file with :func:`monaicxr.io.reader.read_cxr`, refuses symbolic-link loops and
  images under :data:`MIN_SIDE` pixels a side, applies the EXIF orientation and lists :func:`input_warnings`.

EXIF orientation is applied here (:func:`apply_exif_orientation`, ``PIL.ImageOps.exif_transpose`` semantics)
rather than in :class:`~monaicxr.io.CXRImageReader`: training reads the stored pixels, on which the datasets'
masks were drawn, so the reader keeps them as stored.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from monaicxr.data.errors import DatasetError

__all__ = [
    "FLAT_RANGE",
    "GENERATOR",
    "MAX_ASPECT",
    "MIN_SIDE",
    "TINY_SIDE",
    "apply_exif_orientation",
    "find_inputs",
    "input_warnings",
    "read_input",
]

logger = logging.getLogger(__name__)

#: images with a side below this are skipped (nothing can be predicted on them)
MIN_SIDE = 16
#: images with a side below this are predicted but flagged
TINY_SIDE = 64
#: long side over short side above this is flagged
MAX_ASPECT = 2.0
#: a 1st-99th percentile range below this fraction of the full scale is a blank / near-constant image
FLAT_RANGE = 0.02
#: written into ``summary.json``; a folder holding such a file is an output, never walked as input
GENERATOR = "monaicxr predict"
_JUNK = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", "__MACOSX"})
_ORIENTATION_TAG = 0x0112
_ORIENTATION_NAMES = {
    2: "mirrored", 3: "rotated 180", 4: "flipped", 5: "transposed", 6: "rotated 90 clockwise",
    7: "transversed", 8: "rotated 90 counter-clockwise",
}  # fmt: skip


# -------------------------------------------------------------------------------------------------- input
def _is_candidate(path: Path) -> bool:
    from monaicxr.io.reader import DICOM_SUFFIXES, PIL_SUFFIXES, _has_dicm_preamble, is_nifti

    suffix = path.suffix.lower()
    return (
        suffix in PIL_SUFFIXES
        or suffix in DICOM_SUFFIXES
        or is_nifti(path)
        or (suffix == "" and _has_dicm_preamble(path))
    )


def _is_predict_output(folder: Path, files: list[str]) -> bool:
    if "summary.json" not in files or "predictions.csv" not in files:
        return False
    try:
        return json.loads((folder / "summary.json").read_text()).get("generator") == GENERATOR
    except (OSError, ValueError, AttributeError):
        return False


def find_inputs(
    inputs: str | os.PathLike | Sequence[str | os.PathLike], exclude: Path | None = None
) -> tuple[list[tuple[Path, str]], int]:
    """The files to predict as ``(path, name)`` pairs and the count of other files ignored in the folders.

    A file given by name is always taken (and reported if unreadable); in a folder, walked recursively without
    following symbolic links to folders, files with an image or DICOM suffix (or a DICOM preamble) are taken.
    ``name`` is the path under the folder (or the file's name). ``exclude`` (the output folder) is not walked,
    nor is any sub-folder holding an earlier run's output (its ``summary.json`` names :data:`GENERATOR`).
    """
    items: list[tuple[Path, str]] = []
    ignored = 0
    for given in [inputs] if isinstance(inputs, (str, os.PathLike)) else inputs:
        top = Path(given)
        if not top.is_dir():
            if not (top.exists() or top.is_symlink()):
                raise FileNotFoundError(f"input {top}: no such file or folder")
            items.append((top, top.name))
            continue
        for folder, dirs, files in os.walk(top):
            if folder != str(top) and _is_predict_output(Path(folder), files):
                logger.info("predict: %s holds an earlier predict run's output; not read as input", folder)
                dirs[:] = []
                continue
            dirs[:] = sorted(d for d in dirs if d not in _JUNK and (exclude is None or Path(folder, d) != exclude))
            for f in sorted(files):
                path = Path(folder, f)
                if f in _JUNK or f.startswith("._"):
                    continue
                if _is_candidate(path):
                    items.append((path, path.relative_to(top).as_posix()))
                else:
                    ignored += 1
    return items, ignored


def apply_exif_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """``array`` (H, W) as ``PIL.ImageOps.exif_transpose`` shows an image with that EXIF orientation (1-8)."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.T,
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].T,
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(ops[orientation](array)) if orientation in ops else array


def _exif_orientation(path: Path) -> int:
    from PIL import Image

    try:
        with Image.open(path) as img:
            return int(img.getexif().get(_ORIENTATION_TAG, 1) or 1)
    except Exception:  # a broken EXIF block: the pixels were readable, keep them as stored
        return 1


def read_input(path: Path) -> tuple[np.ndarray, dict, list[str]]:
    """Read one file as displayed: ``(array (H, W), meta, warnings)``.

    Raises:
        DatasetError: or ``OSError``, with the reason the file cannot be used.
    """
    from monaicxr.io.reader import read_cxr

    if path.is_symlink():
        try:
            path.resolve(strict=True)
        except RuntimeError as e:  # Python 3.11 reports a loop as RuntimeError("Symlink loop ...")
            raise DatasetError(f"{path}: symbolic link loop") from e
        except OSError as e:
            raise DatasetError(f"{path}: {'symbolic link loop' if e.errno == 40 else 'broken symbolic link'}") from e
    array, meta = read_cxr(path)
    h, w = array.shape
    if min(h, w) < MIN_SIDE:
        raise DatasetError(f"{path}: image of {w}x{h} px is too small to predict (under {MIN_SIDE} px a side)")
    warnings: list[str] = []
    if meta.get("format") not in ("DICOM", "NIfTI", "none"):
        orientation = _exif_orientation(path)
        if orientation in _ORIENTATION_NAMES:
            array = apply_exif_orientation(array, orientation)
            meta["spatial_shape"] = np.asarray(array.shape)
            warnings.append(f"EXIF orientation {orientation} applied ({_ORIENTATION_NAMES[orientation]})")
    return array, meta, warnings + input_warnings(array, meta)


def input_warnings(array: np.ndarray, meta: dict) -> list[str]:
    """Why a readable image looks implausible as a chest X-ray: near-constant, tiny, or extreme aspect."""
    h, w = array.shape
    out = []
    if min(h, w) < TINY_SIDE:
        out.append(f"tiny image ({w}x{h} px, under {TINY_SIDE} px a side)")
    if max(h, w) / min(h, w) > MAX_ASPECT:
        out.append(f"extreme aspect ratio {max(h, w) / min(h, w):.1f}:1 (over {MAX_ASPECT:g}:1)")
    full = 2.0 ** int(meta.get("bit_depth", 8) or 8) - 1
    lo, hi = np.percentile(array, [1, 99])
    if (hi - lo) / full < FLAT_RANGE:
        out.append(f"blank or near-constant image (1-99 percentile range {(hi - lo) / full:.1%} of full scale)")
    return out
