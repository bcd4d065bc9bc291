"""Indexers for two generic layouts that many small chest X-ray sets use.

- :func:`index_class_folders`: one folder per class, optionally inside split folders::

      root/<class>/NAME.{png,jpg,jpeg,dcm}
      root/{train,val,test}/<class>/NAME.{png,jpg,jpeg,dcm}

  Classes are the folder names sorted alphabetically (the union over the split folders).
- :func:`index_image_mask_pairs`: images with same-named lung masks (any image suffix), and optionally
  infection masks; no classes::

      root/images/X.png   root/masks/X.png   [root/infection_masks/X.png]

Example::

    result = index_class_folders("/data/my_cxr")          # classes ("covid", "normal", ...)
    result = index_image_mask_pairs("/data/montgomery_like")
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path

from monaicxr.data.imagecheck import (
    IMAGE_SUFFIXES,
    dataset_root,
    image_files,
    is_image_file,
    list_dir,
    log_skipped,
    missing_masks,
    name_stem,
    pair_masks,
    record_id,
    split_of,
    stray_file,
    verify_records,
)
from monaicxr.data.records import CXRRecord, DatasetError, IndexResult, SkippedItem

__all__ = ["index_class_folders", "index_image_mask_pairs", "is_class_folders", "is_image_mask_pairs"]

logger = logging.getLogger(__name__)


def is_class_folders(root: str | Path, suffixes: Collection[str] = IMAGE_SUFFIXES) -> bool:
    """Whether ``root`` has a class folder holding images, directly or inside a split folder."""
    root = Path(root)
    if not root.is_dir():
        return False
    for d in list_dir(root)[0]:
        folders = list_dir(d)[0] if split_of(d.name) else [d]
        if any(is_image_file(f, suffixes) for c in folders for f in list_dir(c)[1]):
            return True
    return False


def is_image_mask_pairs(root: str | Path) -> bool:
    """Whether ``root`` has an ``images`` folder and a ``masks`` or ``lung_masks`` folder."""
    root = Path(root)
    return (root / "images").is_dir() and any((root / name).is_dir() for name in LUNG_MASK_FOLDERS)


#: the folder names of lung masks beside ``images/``, in order of preference
LUNG_MASK_FOLDERS = ("masks", "lung_masks")


def index_class_folders(
    root: str | Path, *, verify: bool = True, suffixes: Collection[str] = IMAGE_SUFFIXES
) -> IndexResult:
    """Index ``root/<class>/*`` or ``root/{train,val,test}/<class>/*``.

    Args:
        root: the folder holding the class folders, or the split folders.
        verify: decode every image (see :mod:`monaicxr.data.imagecheck`).
        suffixes: image file suffixes to read (lower case); other files are listed as skipped.

    Returns:
        records with ``class_name`` and, with split folders, ``source_split``; ``id`` such as
        ``"train/covid/x1"``. ``classes`` is sorted alphabetically and includes empty class folders.
    """
    root = dataset_root(root)
    suffixes = tuple(s.lower() for s in suffixes)
    dirs, files = list_dir(root)
    skipped = [stray_file(f, "a class folder", suffixes) for f in files]
    split_dirs = [d for d in dirs if split_of(d.name)]
    if split_dirs:
        skipped += [
            SkippedItem(str(d), "not a split folder (expected train, val or test)") for d in dirs if d not in split_dirs
        ]
        class_dirs: list[tuple[Path, str | None]] = []
        for split_dir in split_dirs:
            sub_dirs, sub_files = list_dir(split_dir)
            skipped += [stray_file(f, "a class folder", suffixes) for f in sub_files]
            class_dirs += [(d, split_of(split_dir.name)) for d in sub_dirs]
    else:
        class_dirs = [(d, None) for d in dirs]
    if not class_dirs:
        raise DatasetError(f"{root} has no class folders (expected <class>/ or train|val|test/<class>/ folders)")

    records: list[CXRRecord] = []
    for class_dir, split in class_dirs:
        images, skips = image_files(class_dir, suffixes)
        skipped += skips
        if not images:
            logger.warning("class_folders: class folder %s has no images", class_dir)
        records += [
            CXRRecord(
                id=record_id(img, root),
                image=str(img),
                class_name=class_dir.name,
                source="class_folders",
                source_split=split,
            )
            for img in images
        ]
    classes = tuple(sorted({d.name for d, _ in class_dirs}))
    records, bad = verify_records(sorted(records, key=lambda r: r.id), verify=verify, desc="class_folders")
    skipped += bad
    log_skipped("class_folders", root, skipped)
    return IndexResult("class_folders", str(root), classes, records, skipped)


def index_image_mask_pairs(
    root: str | Path, *, verify: bool = True, allow_missing_masks: bool = False, mask_values: str = "binary"
) -> IndexResult:
    """Index ``root/images/X`` with ``root/masks/X`` (or ``root/lung_masks/X``, the COVID-QU-Ex folder name,
    without its manifest) as lung mask and, if present, ``root/infection_masks/X``.

    Masks are matched to images by file stem, so ``images/X.jpg`` may have ``masks/X.png``.

    Args:
        root: the folder holding ``images/`` and ``masks/``.
        verify: decode every image and mask and compare sizes.
        allow_missing_masks: skip an image without a mask instead of raising :class:`DatasetError` naming it.
        mask_values: ``"binary"`` (default), ``"three_level"`` or ``"any"``: the mask values verification
            accepts (see :mod:`monaicxr.data.imagecheck`).

    Returns:
        records without class, ``id`` such as ``"images/X"``; ``classes`` is empty.
    """
    root = dataset_root(root)
    image_dir = root / "images"
    lung_folder = next((name for name in LUNG_MASK_FOLDERS if (root / name).is_dir()), None)
    if not image_dir.is_dir() or lung_folder is None:
        missing = "images/" if not image_dir.is_dir() else "masks/ or lung_masks/"
        raise DatasetError(f"{root} has no {missing} folder (expected images/ and masks/ or lung_masks/)")
    if all((root / name).is_dir() for name in LUNG_MASK_FOLDERS):
        raise DatasetError(f"{root} has both masks/ and lung_masks/; which holds the lung masks is ambiguous")
    images, skipped = image_files(image_dir)
    stems: dict[str, Path] = {}
    for img in images:
        if name_stem(img) in stems:
            raise DatasetError(f"{image_dir}: {stems[name_stem(img)].name} and {img.name} have the same name stem")
        stems[name_stem(img)] = img
    masks: dict[str, dict[Path, Path]] = {}
    for folder_name, kind in ((lung_folder, "lung mask"), ("infection_masks", "infection mask")):
        mask_dir = root / folder_name
        if not mask_dir.is_dir():
            continue
        found, missing, skips = pair_masks(images, mask_dir, kind=kind, by_stem=True)
        masks[kind] = found
        skipped += skips + missing_masks(missing, kind, mask_dir, allow=allow_missing_masks)
    dirs, files = list_dir(root)
    skipped += [stray_file(f, "images/") for f in files]
    known = {"images", lung_folder, "infection_masks"}
    skipped += [SkippedItem(str(d), "folder not part of the layout") for d in dirs if d.name not in known]

    infection = masks.get("infection mask")
    records = [
        CXRRecord(
            id=record_id(img, root),
            image=str(img),
            lung_mask=str(masks["lung mask"][img]),
            infection_mask=str(infection[img]) if infection is not None else None,
            source="image_mask_pairs",
        )
        for img in images
        if all(img in m for m in masks.values())
    ]
    records, bad = verify_records(records, verify=verify, desc="image_mask_pairs", mask_values=mask_values)
    skipped += bad
    log_skipped("image_mask_pairs", root, skipped)
    return IndexResult("image_mask_pairs", str(root), (), records, skipped)
