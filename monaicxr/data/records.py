"""The one record every dataset indexer produces, and the MONAI datalist it is written to.

Every indexer in :mod:`monaicxr.data` (one module per public folder layout) returns an :class:`IndexResult`:
the records it found, the class names of the source in their canonical order, and every file it skipped with
the reason. Nothing is dropped silently: a file that is not used is either an error or a :class:`SkippedItem`.

A datalist entry (what MONAI datasets and the bundle configs read) uses these keys:

=================  =====================================================================================
key                meaning
=================  =====================================================================================
``image``          absolute path of the radiograph
``lung``           absolute path of the lung mask (0/255 or 0/1 PNG), when the source has one
``infection``      absolute path of the infection mask, when the source has one
``ignore``         absolute path of a mask of pixels that losses and metrics must exclude (devices, ...)
``class_name``     the source's class name, e.g. ``"COVID-19"``
``class_index``    position of ``class_name`` in the class list written beside the datalist
``group``          id used to keep related images on one side of a split (patient id, near-duplicates)
``source``         name of the indexer that produced the record, e.g. ``"covidqu"``
``id``             a stable id unique within the dataset (relative path without suffix)
=================  =====================================================================================

MONAI's own convention calls the target ``label``; a chest X-ray record has up to three targets (lung mask,
infection mask, class), so each is named for what it is.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import DatasetError

__all__ = ["CXRRecord", "SkippedItem", "IndexResult", "DatasetError", "write_datalist", "load_datalist"]

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class CXRRecord:
    """One chest radiograph and whatever targets its source provides.

    Args:
        id: unique, stable id within the dataset (relative path of the image without its suffix).
        image: absolute path of the image file.
        class_name: the source's class name, or ``None`` where the source has no class labels.
        lung_mask: absolute path of the lung mask, if any.
        infection_mask: absolute path of the infection mask, if any.
        ignore_mask: absolute path of a mask of pixels to exclude from losses and metrics, if any.
        group: grouping id for splits; defaults to ``id`` (every image its own group).
        source: name of the indexer that produced the record.
        source_split: ``"train"``, ``"val"`` or ``"test"`` where the source defines a split.
    """

    id: str
    image: str
    class_name: str | None = None
    lung_mask: str | None = None
    infection_mask: str | None = None
    ignore_mask: str | None = None
    group: str | None = None
    source: str = ""
    source_split: str | None = None

    def __post_init__(self) -> None:
        if self.source_split is not None and self.source_split not in SPLITS:
            raise DatasetError(f"{self.image}: source split {self.source_split!r} is not one of {SPLITS}")

    @property
    def group_id(self) -> str:
        return self.group if self.group is not None else self.id

    def to_datalist_entry(self, classes: Sequence[str] | None = None) -> dict:
        """The MONAI datalist dictionary for this record (keys listed in the module docstring)."""
        entry: dict = {"id": self.id, "image": self.image}
        for key, value in (("lung", self.lung_mask), ("infection", self.infection_mask), ("ignore", self.ignore_mask)):
            if value is not None:
                entry[key] = value
        if self.class_name is not None:
            entry["class_name"] = self.class_name
            if classes is not None:
                if self.class_name not in classes:
                    raise DatasetError(f"{self.image}: class {self.class_name!r} is not one of {list(classes)}")
                entry["class_index"] = list(classes).index(self.class_name)
        entry["group"] = self.group_id
        entry["source"] = self.source
        return entry


@dataclass(frozen=True)
class SkippedItem:
    """A file an indexer saw and did not use, with the reason (recorded in the fingerprint)."""

    path: str
    reason: str


@dataclass
class IndexResult:
    """What an indexer found: records, the class list in canonical order, and skipped files with reasons."""

    source: str
    root: str
    classes: tuple[str, ...]
    records: list[CXRRecord] = field(default_factory=list)
    skipped: list[SkippedItem] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        """Number of records per class (``"<none>"`` for records without a class), like TorchXRayVision's."""
        return dict(Counter(r.class_name or "<none>" for r in self.records))

    def has_source_split(self) -> bool:
        return bool(self.records) and all(r.source_split is not None for r in self.records)

    def to_json(self) -> dict:
        return {
            "source": self.source,
            "root": self.root,
            "classes": list(self.classes),
            "records": [asdict(r) for r in self.records],
            "skipped": [asdict(s) for s in self.skipped],
        }


def write_datalist(
    path: str | Path,
    records_by_split: dict[str, Iterable[CXRRecord]],
    classes: Sequence[str] | None,
    extra: dict | None = None,
) -> Path:
    """Write a MONAI datalist JSON: ``{"classes": [...], "training": [...], "validation": [...], "test": [...]}``.

    ``records_by_split`` is keyed by ``train`` / ``val`` / ``test``; the MONAI section names are used in the file
    so that ``monai.data.load_decathlon_datalist(path, data_list_key="training")`` reads it.
    """
    keys = {"train": "training", "val": "validation", "test": "test"}
    out: dict = {"classes": list(classes) if classes is not None else None}
    if extra:
        out.update(extra)
    for split, recs in records_by_split.items():
        if split not in keys:
            raise ValueError(f"unknown split {split!r}; expected one of {list(keys)}")
        out[keys[split]] = [r.to_datalist_entry(classes) for r in recs]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    return path


def load_datalist(path: str | Path, section: str) -> list[dict]:
    """Read one section (``training``, ``validation`` or ``test``) of a datalist, with a clear error if absent."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"datalist {path} does not exist")
    try:
        content = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DatasetError(f"datalist {path} is not valid JSON: {e}") from e
    if section not in content:
        raise DatasetError(f"datalist {path} has no section {section!r}; it has {sorted(content)}")
    return list(content[section])
