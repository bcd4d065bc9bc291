"""Kermany et al. pediatric chest X-rays (Guangzhou Women and Children's Medical Center), NORMAL / PNEUMONIA.

Layout (Kaggle ``paultimothymooney/chest-xray-pneumonia``)::

    chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}/NAME.jpeg

``root`` may be the ``chest_xray`` folder or the folder above it. The Kaggle archive also holds a second copy
at ``chest_xray/chest_xray/...`` and a ``__MACOSX`` folder: the outer copy is indexed (the nested one is listed
as skipped) and ``__MACOSX`` / ``.DS_Store`` are ignored.

File names carry a patient id, used as the record's ``group`` so that a split keeps a patient's images
together: ``person1_bacteria_1.jpeg`` -> ``person1``; ``IM-0115-0001.jpeg`` -> ``IM-0115``;
``NORMAL2-IM-1427-0001.jpeg`` -> ``NORMAL2-IM-1427``. The ``bacteria`` / ``virus`` part of a PNEUMONIA file
name is not recorded: the class stays ``PNEUMONIA``.

Reference: D. S. Kermany et al., "Identifying medical diagnoses and treatable diseases by image-based deep
learning", Cell 172(5):1122-1131 (2018).

Example::

    result = index_kermany("/data/chest_xray")
    result.has_source_split()   # True
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from monaicxr.data.imagecheck import (
    PIL_SUFFIXES,
    dataset_root,
    image_files,
    list_dir,
    log_skipped,
    record_id,
    split_of,
    stray_file,
    verify_records,
)
from monaicxr.data.records import CXRRecord, DatasetError, IndexResult, SkippedItem

__all__ = ["KERMANY_CLASSES", "index_kermany", "is_kermany", "patient_id"]

logger = logging.getLogger(__name__)

KERMANY_CLASSES = ("NORMAL", "PNEUMONIA")

_PATIENT_PATTERNS = (
    re.compile(r"^(person\d+)_(?:bacteria|virus)_\d+$", re.IGNORECASE),
    re.compile(r"^((?:NORMAL\d*-)?IM-\d+)-\d+$", re.IGNORECASE),
)


def patient_id(stem: str) -> str | None:
    """The patient id in a file name without suffix, or ``None`` where the name carries none."""
    for pattern in _PATIENT_PATTERNS:
        match = pattern.match(stem)
        if match:
            return match.group(1)
    return None


def _is_split_root(folder: Path, *, strict: bool = False) -> bool:
    """A folder holding a split folder with a NORMAL or PNEUMONIA folder in it.

    With ``strict`` (layout detection), every class folder under the split folders must be NORMAL or PNEUMONIA:
    ``test/COVID-19`` + ``test/Normal`` (a COVID-19 Radiography-style copy split into folders) is the
    ``class_folders`` layout with split ``test``, not Kermany, although it has a ``Normal`` folder. Hidden
    folders (``.ipynb_checkpoints``) are not counted. :func:`index_kermany` itself is lenient: it indexes the
    Kermany classes and lists other folders as skipped.
    """
    if not folder.is_dir():
        return False
    found = False
    for split_dir in list_dir(folder)[0]:
        if not split_of(split_dir.name):
            continue
        classes = {d.name.upper() for d in list_dir(split_dir)[0] if not d.name.startswith(".")}
        if strict and not classes <= set(KERMANY_CLASSES):
            return False
        found = found or bool(classes & set(KERMANY_CLASSES))
    return found


def _find_base(root: Path, *, strict: bool = False) -> Path | None:
    for candidate in (root, root / "chest_xray", root / "chest_xray" / "chest_xray"):
        if _is_split_root(candidate, strict=strict):
            return candidate
    return None


def is_kermany(root: str | Path) -> bool:
    """Whether ``root`` looks like the Kermany layout (used by the layout detection): split folders holding
    NORMAL / PNEUMONIA class folders and no other class folder (see :func:`_is_split_root`)."""
    root = Path(root)
    return root.is_dir() and _find_base(root, strict=True) is not None


def index_kermany(root: str | Path, *, verify: bool = True) -> IndexResult:
    """Index Kermany's ``chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}`` layout.

    Args:
        root: the ``chest_xray`` folder, or the folder holding it.
        verify: decode every image (see :mod:`monaicxr.data.imagecheck`).

    Returns:
        records with ``class_name``, ``source_split`` from the folder, ``group`` = patient id where the file
        name carries one (see :func:`patient_id`), ``id`` such as ``"train/NORMAL/IM-0115-0001"``.
    """
    root = dataset_root(root)
    base = _find_base(root)
    if base is None:
        found = ", ".join(sorted(p.name for p in list_dir(root)[0])) or "no folders"
        raise DatasetError(
            f"{root} is not a Kermany chest_xray folder: expected {{train,val,test}}/{{NORMAL,PNEUMONIA}}/*.jpeg "
            f"(directly or under chest_xray/); found {found}"
        )
    skipped: list[SkippedItem] = []
    for above in (root, root / "chest_xray"):
        if above != base and base.is_relative_to(above):
            dirs, files = list_dir(above)
            skipped += [stray_file(f, "a class folder") for f in files]
            skipped += [
                SkippedItem(str(d), "folder not part of the layout") for d in dirs if not base.is_relative_to(d)
            ]
    records: list[CXRRecord] = []
    dirs, files = list_dir(base)
    skipped += [stray_file(f, "a class folder") for f in files]
    for split_dir in dirs:
        split = split_of(split_dir.name)
        if split is None:
            nested = split_dir.name == "chest_xray" and _is_split_root(split_dir)
            reason = f"nested copy of the layout (Kaggle archive); indexed {base} instead" if nested else None
            skipped.append(SkippedItem(str(split_dir), reason or "not a split folder (expected train, val or test)"))
            continue
        class_dirs, files = list_dir(split_dir)
        skipped += [stray_file(f, "a class folder") for f in files]
        for class_dir in class_dirs:
            class_name = class_dir.name.upper()
            if class_name not in KERMANY_CLASSES:
                skipped.append(SkippedItem(str(class_dir), f"not a class folder (expected one of {KERMANY_CLASSES})"))
                continue
            images, skips = image_files(class_dir, PIL_SUFFIXES)
            skipped += skips
            records += [
                CXRRecord(
                    id=record_id(img, base),
                    image=str(img),
                    class_name=class_name,
                    group=patient_id(img.stem),
                    source="kermany",
                    source_split=split,
                )
                for img in images
            ]
    records, bad = verify_records(sorted(records, key=lambda r: r.id), verify=verify, desc="kermany")
    skipped += bad
    log_skipped("kermany", base, skipped)
    return IndexResult("kermany", str(base), KERMANY_CLASSES, records, skipped)
