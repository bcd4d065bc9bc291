"""COVID-QU-Ex (Qatar University): chest X-rays with lung masks, and infection masks for a subset.

Two layouts are indexed:

- :func:`index_covidqu`, the layout as published on Kaggle (``anasmohammedtahir/covidqu``)::

      root/Infection Segmentation Data/{Train,Val,Test}/{COVID-19,Non-COVID,Normal}/
          images/NAME.png   lung masks/NAME.png   infection masks/NAME.png
      root/Lung Segmentation Data/{Train,Val,Test}/{COVID-19,Non-COVID,Normal}/
          images/NAME.png   lung masks/NAME.png

  ``root`` may be the top folder or either ``... Segmentation Data`` folder; the Kaggle archive nests each one
  in a folder of the same name, which is followed.
- :func:`index_covidqu_flat`, a flat copy: ``images/``, ``lung_masks/``, ``infection_masks/`` and a
  ``manifest.csv`` (``file,class,split``), with an optional ``near_duplicates.csv`` whose pairs are joined into
  groups. The project's synthetic phantom generator writes the same layout with a ``SYNTHETIC`` marker file.

Reference: A. M. Tahir et al., "COVID-19 infection localization and severity grading from chest X-ray
images", Computers in Biology and Medicine 139:105002 (2021).

Example::

    result = index_covidqu("/data/COVID-QU-Ex_Dataset")      # the infection part, Train/Val/Test
    result = index_covidqu_flat("../shared/data/covidqu_infection", verify=False)
    result.totals()   # {"COVID-19": 2330, "Non-COVID": 1165, "Normal": 1165}
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable
from pathlib import Path

from monaicxr.data.imagecheck import (
    dataset_root,
    image_files,
    list_dir,
    log_skipped,
    missing_masks,
    pair_masks,
    record_id,
    split_of,
    stray_file,
    verify_records,
)
from monaicxr.data.records import SPLITS, CXRRecord, DatasetError, IndexResult, SkippedItem

__all__ = ["COVIDQU_CLASSES", "SUBSETS", "index_covidqu", "index_covidqu_flat", "is_covidqu", "is_covidqu_flat"]

logger = logging.getLogger(__name__)

COVIDQU_CLASSES = ("COVID-19", "Non-COVID", "Normal")
SUBSETS = {"infection": "Infection Segmentation Data", "lung": "Lung Segmentation Data"}
SYNTHETIC_MARKER = "SYNTHETIC"

_IMAGES, _LUNG, _INFECTION = "images", "lung masks", "infection masks"


def _has_splits(folder: Path) -> bool:
    return folder.is_dir() and any(split_of(d.name) for d in list_dir(folder)[0])


def _unnest(folder: Path) -> Path:
    """The Kaggle archive puts ``X Segmentation Data`` inside a folder of the same name: follow it."""
    inner = folder / folder.name
    return inner if not _has_splits(folder) and _has_splits(inner) else folder


def _find_parts(root: Path) -> dict[str, Path]:
    """Subset name -> the folder that holds its ``Train`` / ``Val`` / ``Test`` folders."""
    for subset, name in SUBSETS.items():
        if root.name.lower() == name.lower():
            return {subset: _unnest(root)}
    parts = {}
    children = {d.name.lower(): d for d in list_dir(root)[0]}
    for subset, name in SUBSETS.items():
        if name.lower() in children and _has_splits(_unnest(children[name.lower()])):
            parts[subset] = _unnest(children[name.lower()])
    if not parts and _has_splits(root):
        # A renamed part folder: tell the two apart by their mask folders.
        has_infection = any(p.is_dir() for p in root.glob(f"*/*/{_INFECTION}"))
        has_classes = any(p.is_dir() for c in COVIDQU_CLASSES for p in root.glob(f"*/{c}/{_IMAGES}"))
        if has_classes:
            parts["infection" if has_infection else "lung"] = root
    return parts


def is_covidqu(root: str | Path) -> bool:
    """Whether ``root`` looks like the Kaggle COVID-QU-Ex layout (used by the layout detection)."""
    root = Path(root)
    return root.is_dir() and bool(_find_parts(root))


def is_covidqu_flat(root: str | Path) -> bool:
    """Whether ``root`` looks like the flat layout: ``manifest.csv`` beside an ``images`` folder."""
    root = Path(root)
    return (root / "manifest.csv").is_file() and (root / "images").is_dir()


def _class_of(name: str) -> str | None:
    return {c.lower(): c for c in COVIDQU_CLASSES}.get(name.lower())


def _sub(folder: Path, name: str) -> Path | None:
    """Sub-folder ``name`` of ``folder`` in any case (``Lung Masks`` or ``lung masks``)."""
    return next((d for d in list_dir(folder)[0] if d.name.lower() == name), None)


def index_covidqu(
    root: str | Path,
    *,
    verify: bool = True,
    subset: str | None = None,
    allow_missing_masks: bool = False,
    mask_values: str = "binary",
) -> IndexResult:
    """Index the Kaggle COVID-QU-Ex layout.

    Args:
        root: the top folder, or one of the ``Infection Segmentation Data`` / ``Lung Segmentation Data`` folders.
        verify: decode every image and mask and compare sizes (see :mod:`monaicxr.data.imagecheck`).
        subset: ``"infection"`` or ``"lung"``; by default the infection part where present (it is the one with
            infection masks), else the lung part.
        allow_missing_masks: skip an image without a mask instead of raising :class:`DatasetError`.
        mask_values: ``"binary"`` (default), ``"three_level"`` or ``"any"``: the mask values verification
            accepts (see :mod:`monaicxr.data.imagecheck`).

    Returns:
        records with ``image``, ``lung_mask``, ``infection_mask`` (``None`` in the lung part), ``class_name``,
        ``source_split`` (``train`` / ``val`` / ``test`` from the folder) and ``id`` relative to the part folder,
        e.g. ``"Train/COVID-19/images/covid_1"``.
    """
    root = dataset_root(root)
    parts = _find_parts(root)
    if not parts:
        found = ", ".join(sorted(p.name for p in list_dir(root)[0])) or "no folders"
        raise DatasetError(
            f"{root} is not a COVID-QU-Ex folder: expected {' or '.join(repr(n) for n in SUBSETS.values())} "
            f"holding Train/Val/Test/<class>/images; found {found}"
        )
    if subset is not None and subset not in SUBSETS:
        raise DatasetError(f"unknown COVID-QU-Ex subset {subset!r}; expected one of {list(SUBSETS)}")
    if subset is not None and subset not in parts:
        raise DatasetError(f"{root} has no {SUBSETS[subset]!r} folder; it has {[SUBSETS[s] for s in parts]}")
    subset = subset or ("infection" if "infection" in parts else "lung")
    if len(parts) > 1:
        logger.info("covidqu: indexing %r (pass subset='lung' for the other part)", SUBSETS[subset])
    base = parts[subset]

    records: list[CXRRecord] = []
    skipped: list[SkippedItem] = []
    split_dirs, files = list_dir(base)
    skipped += [stray_file(f, "an images folder") for f in files]
    for split_dir in split_dirs:
        split = split_of(split_dir.name)
        if split is None:
            skipped.append(SkippedItem(str(split_dir), "not a split folder (expected Train, Val or Test)"))
            continue
        class_dirs, files = list_dir(split_dir)
        skipped += [stray_file(f, "an images folder") for f in files]
        for class_dir in class_dirs:
            class_name = _class_of(class_dir.name)
            if class_name is None:
                skipped.append(SkippedItem(str(class_dir), f"not a class folder (expected one of {COVIDQU_CLASSES})"))
                continue
            recs, skips = _index_class_dir(class_dir, base, class_name, split, subset, allow_missing_masks)
            records += recs
            skipped += skips

    records, bad = verify_records(
        sorted(records, key=lambda r: r.id), verify=verify, desc="covidqu", mask_values=mask_values
    )
    skipped += bad
    log_skipped("covidqu", base, skipped)
    return IndexResult("covidqu", str(base), COVIDQU_CLASSES, records, skipped)


def _index_class_dir(
    class_dir: Path, base: Path, class_name: str, split: str, subset: str, allow_missing_masks: bool
) -> tuple[list[CXRRecord], list[SkippedItem]]:
    image_dir = _sub(class_dir, _IMAGES)
    if image_dir is None:
        raise DatasetError(f"COVID-QU-Ex class folder {class_dir} has no {_IMAGES!r} folder")
    images, skipped = image_files(image_dir)
    wanted = {_LUNG: "lung mask"} | ({_INFECTION: "infection mask"} if subset == "infection" else {})
    masks: dict[str, dict[Path, Path]] = {}
    for folder_name, kind in wanted.items():
        mask_dir = _sub(class_dir, folder_name)
        if mask_dir is None:
            raise DatasetError(f"COVID-QU-Ex class folder {class_dir} has no {folder_name!r} folder")
        found, missing, skips = pair_masks(images, mask_dir, kind=kind)
        masks[kind] = found
        skipped += skips + missing_masks(missing, kind, mask_dir, allow=allow_missing_masks)
    known = {_IMAGES, *wanted}
    for d in list_dir(class_dir)[0]:
        if d.name.lower() not in known:
            skipped.append(SkippedItem(str(d), "folder not part of the COVID-QU-Ex layout"))
    records = [
        CXRRecord(
            id=record_id(img, base),
            image=str(img),
            class_name=class_name,
            lung_mask=str(masks["lung mask"][img]),
            infection_mask=str(masks["infection mask"][img]) if "infection mask" in masks else None,
            source="covidqu",
            source_split=split,
        )
        for img in images
        if all(img in m for m in masks.values())
    ]
    return records, skipped


def _read_csv(path: Path, required: Iterable[str]) -> list[tuple[int, dict[str, str]]]:
    """Rows of a CSV file with their line numbers; DatasetError if a required column is absent."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in required if c not in columns]
        if missing:
            raise DatasetError(f"{path}: missing column(s) {missing}; it has {columns}")
        rows = []
        for row in reader:
            rows.append((reader.line_num, {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}))
    return rows


def _union_groups(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Join pairs into connected groups (union-find); each member maps to the smallest id of its group."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in parent}


def index_covidqu_flat(root: str | Path, *, verify: bool = True, mask_values: str = "binary") -> IndexResult:
    """Index the flat COVID-QU-Ex copy (``images/``, ``lung_masks/``, ``infection_masks/``, ``manifest.csv``).

    Every manifest row must have its image and a lung mask (and an infection mask where the
    ``infection_masks`` folder exists): a missing one is a :class:`DatasetError` naming it, as is a class
    outside :data:`COVIDQU_CLASSES`. An image that the manifest does not list is a :class:`SkippedItem`.
    Near-duplicate pairs from ``near_duplicates.csv`` (columns ``file_a``, ``file_b``) are joined into groups
    and every member gets the same ``group``: the smallest record id of the group.

    Args:
        root: the folder holding ``manifest.csv``.
        verify: decode every image and mask and compare sizes.
        mask_values: ``"binary"`` (default), ``"three_level"`` or ``"any"``: the mask values verification
            accepts (see :mod:`monaicxr.data.imagecheck`).

    Returns:
        records with ``source="covidqu_flat"``, or ``"synthetic"`` where the folder holds a ``SYNTHETIC`` file;
        ``id`` is ``"images/NAME"``, ``source_split`` the manifest's split lower-cased.
    """
    root = dataset_root(root)
    manifest = root / "manifest.csv"
    if not manifest.is_file():
        raise DatasetError(f"{root} has no manifest.csv (expected columns file,class,split)")
    image_dir, lung_dir, infection_dir = root / "images", root / "lung_masks", root / "infection_masks"
    for folder in (image_dir, lung_dir):
        if not folder.is_dir():
            raise DatasetError(f"{root} has no {folder.name}/ folder (the flat COVID-QU-Ex layout needs one)")
    has_infection = infection_dir.is_dir()
    source = "synthetic" if (root / SYNTHETIC_MARKER).exists() else "covidqu_flat"

    rows: dict[str, tuple[str, str | None]] = {}
    blank_split: list[int] = []
    for line, row in _read_csv(manifest, ("file", "class")):
        name, class_name, split = row["file"], row["class"], row.get("split", "").lower() or None
        if not name:
            raise DatasetError(f"{manifest} line {line}: empty file name")
        if class_name not in COVIDQU_CLASSES:
            raise DatasetError(f"{manifest} line {line}: {name} has class {class_name!r}, not one of {COVIDQU_CLASSES}")
        if split is not None and split not in SPLITS:
            raise DatasetError(f"{manifest} line {line}: {name} has split {row['split']!r}, not one of Train/Val/Test")
        if name in rows:
            raise DatasetError(f"{manifest} line {line}: {name} is listed twice")
        if split is None:
            blank_split.append(line)
        rows[name] = (class_name, split)
    if blank_split and len(blank_split) < len(rows):
        lines = ", ".join(str(n) for n in blank_split[:5]) + (" ..." if len(blank_split) > 5 else "")
        raise DatasetError(
            f"{manifest} line {lines}: empty split cell ({len(blank_split)} of {len(rows)} rows); "
            "expected Train, Val or Test on every row, or on none"
        )

    for folder, what in ((image_dir, "image"), (lung_dir, "lung mask")) + (
        ((infection_dir, "infection mask"),) if has_infection else ()
    ):
        absent = [folder / n for n in rows if not (folder / n).is_file()]
        if absent:
            more = f" and {len(absent) - 5} more" if len(absent) > 5 else ""
            raise DatasetError(
                f"{manifest} lists {len(absent)} file(s) with no {what} in {folder}: "
                + ", ".join(str(p) for p in absent[:5])
                + more
            )

    skipped: list[SkippedItem] = []
    for folder in (image_dir, lung_dir) + ((infection_dir,) if has_infection else ()):
        dirs, files = list_dir(folder)
        skipped += [SkippedItem(str(f), "not listed in manifest.csv") for f in files if f.name not in rows]
        skipped += [SkippedItem(str(d), "sub-folder is not part of the flat layout") for d in dirs]

    groups: dict[str, str] = {}
    dup_file = root / "near_duplicates.csv"
    if dup_file.is_file():
        pairs = []
        for line, row in _read_csv(dup_file, ("file_a", "file_b")):
            for key in ("file_a", "file_b"):
                if row[key] not in rows:
                    raise DatasetError(f"{dup_file} line {line}: {row[key]} is not listed in {manifest}")
            pairs.append((record_id(image_dir / row["file_a"], root), record_id(image_dir / row["file_b"], root)))
        groups = _union_groups(pairs)

    records = []
    for name, (class_name, split) in sorted(rows.items()):
        rid = record_id(image_dir / name, root)
        records.append(
            CXRRecord(
                id=rid,
                image=str(image_dir / name),
                class_name=class_name,
                lung_mask=str(lung_dir / name),
                infection_mask=str(infection_dir / name) if has_infection else None,
                group=groups.get(rid),
                source=source,
                source_split=split,
            )
        )
    records, bad = verify_records(records, verify=verify, desc=source, mask_values=mask_values)
    skipped += bad
    log_skipped(source, root, skipped)
    return IndexResult(source, str(root), COVIDQU_CLASSES, records, skipped)
