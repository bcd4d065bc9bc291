"""COVID-19 Radiography Database (Kaggle, Rahman, Chowdhury et al., Qatar University and Dhaka University).

Two releases are indexed by :func:`index_radiography`:

- the current one, with lung masks::

      root/{COVID,Lung_Opacity,Normal,Viral Pneumonia}/images/NAME.png
      root/{COVID,Lung_Opacity,Normal,Viral Pneumonia}/masks/NAME.png

- the older one without masks: ``root/{COVID,...}/NAME.png``.

The ``*.metadata.xlsx`` spreadsheets and the README beside the class folders are not images: they are listed
as skipped with that reason, and not warned about.

**Mask size.** The images are 299 x 299 but the masks were published at 256 x 256; that one difference is
documented upstream and accepted (:data:`RADIOGRAPHY_IMAGE_SIZE`, :data:`RADIOGRAPHY_MASK_SIZE`): the transforms
resize masks to the image. Any other mismatch skips the image.

The source defines no split and no patient ids.

References: M. E. H. Chowdhury et al., "Can AI help in screening viral and COVID-19 pneumonia?", IEEE Access 8
(2020); T. Rahman et al., "Exploring the effect of image enhancement techniques on COVID-19 detection using
chest X-ray images", Computers in Biology and Medicine 132:104319 (2021).

Example::

    result = index_radiography("/data/COVID-19_Radiography_Dataset")
"""

from __future__ import annotations

import logging
from pathlib import Path

from monaicxr.data.imagecheck import (
    dataset_root,
    image_files,
    list_dir,
    log_skipped,
    missing_masks,
    pair_masks,
    record_id,
    stray_file,
    verify_records,
)
from monaicxr.data.records import CXRRecord, DatasetError, IndexResult, SkippedItem

__all__ = [
    "RADIOGRAPHY_CLASSES",
    "RADIOGRAPHY_IMAGE_SIZE",
    "RADIOGRAPHY_MASK_SIZE",
    "index_radiography",
    "is_radiography",
]

logger = logging.getLogger(__name__)

RADIOGRAPHY_CLASSES = ("COVID", "Lung_Opacity", "Normal", "Viral Pneumonia")
RADIOGRAPHY_IMAGE_SIZE = (299, 299)
RADIOGRAPHY_MASK_SIZE = (256, 256)


def _key(name: str) -> str:
    return name.lower().replace(" ", "_")


_CLASS_BY_KEY = {_key(c): c for c in RADIOGRAPHY_CLASSES}


def _class_dirs(root: Path) -> dict[str, Path]:
    return {_CLASS_BY_KEY[_key(d.name)]: d for d in list_dir(root)[0] if _key(d.name) in _CLASS_BY_KEY}


def is_radiography(root: str | Path) -> bool:
    """Whether ``root`` looks like the database: ``COVID`` beside ``Lung_Opacity`` or ``Viral Pneumonia``, or a
    class folder with ``images`` and ``masks`` sub-folders (used by the layout detection)."""
    root = Path(root)
    if not root.is_dir():
        return False
    found = _class_dirs(root)
    if "COVID" in found and ({"Lung_Opacity", "Viral Pneumonia"} & set(found)):
        return True
    return any((d / "images").is_dir() and (d / "masks").is_dir() for d in found.values())


def index_radiography(
    root: str | Path, *, verify: bool = True, allow_missing_masks: bool = False, mask_values: str = "binary"
) -> IndexResult:
    """Index the COVID-19 Radiography Database (either release).

    Args:
        root: the folder holding the class folders.
        verify: decode every image and mask and compare sizes (256 x 256 masks of 299 x 299 images accepted).
        allow_missing_masks: in the release with masks, skip an image without one instead of raising.
        mask_values: ``"binary"`` (default), ``"three_level"`` or ``"any"``: the mask values verification
            accepts (see :mod:`monaicxr.data.imagecheck`).

    Returns:
        records with ``class_name``, ``lung_mask`` (current release) and ``id`` such as
        ``"COVID/images/COVID-1"``; no ``source_split``. ``classes`` always lists all four classes, also
        where a class folder is absent or empty.
    """
    root = dataset_root(root)
    found = _class_dirs(root)
    if not found:
        names = ", ".join(sorted(p.name for p in list_dir(root)[0])) or "no folders"
        raise DatasetError(f"{root} has none of the class folders {RADIOGRAPHY_CLASSES}; found {names}")
    absent = [c for c in RADIOGRAPHY_CLASSES if c not in found]
    if absent:
        logger.warning("radiography: %s has no folder for class(es) %s", root, absent)

    dirs, files = list_dir(root)
    skipped = [stray_file(f, "a class folder") for f in files]
    skipped += [
        SkippedItem(str(d), f"not a class folder (expected one of {RADIOGRAPHY_CLASSES})")
        for d in dirs
        if _key(d.name) not in _CLASS_BY_KEY
    ]
    records: list[CXRRecord] = []
    for class_name, class_dir in sorted(found.items()):
        image_dir = class_dir / "images"
        if image_dir.is_dir():
            recs, skips = _index_with_masks(root, class_dir, class_name, allow_missing_masks)
        else:
            images, skips = image_files(class_dir)
            recs = [_record(root, img, class_name, None) for img in images]
        records += recs
        skipped += skips

    records, bad = verify_records(
        sorted(records, key=lambda r: r.id),
        verify=verify,
        desc="radiography",
        mask_values=mask_values,
        mask_size_exceptions={RADIOGRAPHY_IMAGE_SIZE: (RADIOGRAPHY_MASK_SIZE,)},
    )
    skipped += bad
    log_skipped("radiography", root, skipped)
    return IndexResult("radiography", str(root), RADIOGRAPHY_CLASSES, records, skipped)


def _record(root: Path, image: Path, class_name: str, mask: Path | None) -> CXRRecord:
    return CXRRecord(
        id=record_id(image, root),
        image=str(image),
        class_name=class_name,
        lung_mask=str(mask) if mask is not None else None,
        source="radiography",
    )


def _index_with_masks(
    root: Path, class_dir: Path, class_name: str, allow_missing_masks: bool
) -> tuple[list[CXRRecord], list[SkippedItem]]:
    images, skipped = image_files(class_dir / "images")
    mask_dir = class_dir / "masks"
    masks, missing, skips = pair_masks(images, mask_dir, kind="lung mask")
    skipped += skips + missing_masks(missing, "lung mask", mask_dir, allow=allow_missing_masks)
    dirs, files = list_dir(class_dir)
    skipped += [stray_file(f, "the images/ folder") for f in files]
    skipped += [SkippedItem(str(d), "folder not part of the layout") for d in dirs if d.name not in ("images", "masks")]
    return [_record(root, img, class_name, masks[img]) for img in images if img in masks], skipped
