"""Seeded, stratified, grouped train / val / test splits, written to a ``splits.json`` a person can read.

Like nnU-Net's ``splits_final.json``, a split is made once, written to a file, and everything downstream (the
datalist, the bundle configs) points at that file; nothing splits data with list slices.

The split is made by hand rather than with :func:`monai.data.partition_dataset_classes`: that function stratifies
by class but has no notion of groups, so near-duplicate radiographs (or images of one patient) could land on both
sides of a split, and its result depends on the order of the input list. Here whole groups are assigned, the
result depends only on the records and the seed, and a source's own split can be kept.

scikit-learn does have grouped splitters, and they are not used on purpose: ``GroupShuffleSplit`` does not
stratify, and ``StratifiedGroupKFold`` makes k equal folds (0.7 / 0.1 / 0.2 would take 10 folds regrouped), balances
the class counts of single records rather than of groups' majority classes, and draws with numpy's legacy
``RandomState``. Either would move records between train, val and test for every existing seed, and the
``splits.json`` files behind reported results could no longer be remade from their seed.

Example::

    result = index_covidqu(root)
    splits = make_splits(result.records, seed=0)
    write_splits("splits.json", splits, seed=0, ratios=(0.7, 0.1, 0.2), mode="auto", source=result.source,
                 records=result.records)
    by_split = apply_splits(result.records, load_splits("splits.json"))
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from monaicxr.data.records import SPLITS, CXRRecord, DatasetError

__all__ = ["make_splits", "resolve_split_mode", "write_splits", "load_splits", "apply_splits"]

logger = logging.getLogger(__name__)

MODES = ("auto", "source", "ratios")
NO_CLASS = "<none>"


def _check_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    try:
        values = tuple(float(r) for r in ratios)
    except (TypeError, ValueError) as e:
        raise ValueError(f"ratios must be 3 numbers for {SPLITS}, got {ratios!r}") from e
    if len(values) != 3:
        raise ValueError(f"ratios must be 3 numbers for {SPLITS}, got {len(values)}: {ratios!r}")
    if any(not math.isfinite(r) or r < 0 for r in values):
        raise ValueError(f"ratios must be finite and non-negative, got {ratios!r}")
    if not math.isclose(sum(values), 1.0, abs_tol=1e-6):
        raise ValueError(f"ratios must sum to 1, got {ratios!r} (sum {sum(values):g})")
    return values  # type: ignore[return-value]


def _few(items: Sequence[str] | set[str], n: int = 5) -> str:
    items = sorted(items)
    shown = ", ".join(repr(i) for i in items[:n])
    return shown + (f", ... ({len(items)} in all)" if len(items) > n else "")


def _sorted_unique(records: Sequence[CXRRecord]) -> list[CXRRecord]:
    if not records:
        raise DatasetError("no records to split")
    counts = Counter(r.id for r in records)
    dup = [i for i, n in counts.items() if n > 1]
    if dup:
        raise DatasetError(f"record ids must be unique; duplicated: {_few(dup)}")
    return sorted(records, key=lambda r: r.id)


def resolve_split_mode(records: Sequence[CXRRecord], mode: str = "auto") -> str:
    """The mode :func:`make_splits` will actually use: ``"source"`` or ``"ratios"``.

    Args:
        records: the records to split.
        mode: ``"auto"`` (the source's split when every record has one and it has at least train and val
            images, ratios when no record has one), ``"source"`` or ``"ratios"``.

    Raises:
        ValueError: for an unknown mode.
        DatasetError: for ``mode="source"`` when some record has no source split, and for ``"auto"`` when some
            records have one and others not (a blank cell must not switch the whole dataset to ratios).
    """
    if mode not in MODES:
        raise ValueError(f"unknown split mode {mode!r}; expected one of {MODES}")
    if mode == "ratios":
        return "ratios"
    missing = [r.id for r in records if r.source_split is None]
    if mode == "source":
        if missing:
            raise DatasetError(f"mode='source' needs a source split on every record; missing on {_few(missing)}")
        return "source"
    present = {r.source_split for r in records}
    if missing and len(missing) < len(records):
        raise DatasetError(
            f"{len(records) - len(missing)} record(s) have a source split but {len(missing)} have none: "
            f"{_few(missing)}; fill the split in, or pass split_mode='ratios' to ignore the source split"
        )
    if records and not missing and {"train", "val"} <= present:
        return "source"
    return "ratios"


def _group_split(members: list[CXRRecord]) -> str:
    """Source split of a group: where most of its members are, ties going to the earlier split (train first)."""
    counts = Counter(r.source_split for r in members)
    return max(SPLITS, key=lambda s: (counts.get(s, 0), -SPLITS.index(s)))


def _majority_class(members: list[CXRRecord]) -> str:
    counts = Counter(r.class_name if r.class_name is not None else NO_CLASS for r in members)
    return min(counts, key=lambda c: (-counts[c], c))


def _split_by_source(groups: dict[str, list[CXRRecord]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    moved = 0
    for members in groups.values():
        split = _group_split(members)
        moved += sum(r.source_split != split for r in members)
        out[split].extend(r.id for r in members)
    if moved:
        logger.warning(
            "%d record(s) moved off their source split so that no group crosses splits "
            "(each group goes where most of its members are)",
            moved,
        )
    return out


def _split_by_ratios(
    groups: dict[str, list[CXRRecord]], ratios: tuple[float, float, float], seed: int
) -> dict[str, list[str]]:
    rng = np.random.default_rng(seed)
    strata: dict[str, list[str]] = defaultdict(list)
    for gid in sorted(groups):
        strata[_majority_class(groups[gid])].append(gid)
    active = [i for i, r in enumerate(ratios) if r > 0]
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    overall = np.zeros(3)
    for name in sorted(strata):
        gids = [strata[name][i] for i in rng.permutation(len(strata[name]))]
        gids.sort(key=lambda g: -len(groups[g]))  # stable: big groups first, in shuffled order within a size
        total = sum(len(groups[g]) for g in gids)
        target = np.asarray(ratios) * total
        count = np.zeros(3)
        for gid in gids:
            # the split furthest below its target in this stratum; ties go to the one furthest below overall
            deficit = target - count
            overall_deficit = np.asarray(ratios) * (overall.sum() + 1) - overall
            best = max(active, key=lambda i: (deficit[i], overall_deficit[i], -i))
            size = len(groups[gid])
            count[best] += size
            overall[best] += size
            out[SPLITS[best]].extend(r.id for r in groups[gid])
    return out


def make_splits(
    records: Sequence[CXRRecord],
    *,
    ratios: Sequence[float] = (0.7, 0.1, 0.2),
    seed: int = 0,
    mode: str = "auto",
) -> dict[str, list[str]]:
    """Split records into train / val / test, keeping every group whole.

    With ratios, groups (``record.group_id``) are stratified by their majority class (records without a class
    form one stratum); within each stratum the groups are shuffled with a seeded :func:`numpy.random.default_rng`,
    ordered largest first, and each is given to the split furthest below its target count. Class proportions
    therefore come within about one group of the ratios. A split with ratio 0 stays empty.

    With the source's split, each record keeps ``record.source_split``, except that a group whose members sit in
    several source splits is moved whole to the split holding most of them (ties: the earliest of train, val,
    test), with a warning: keeping a near-duplicate pair on both sides would leak.

    The result depends only on the set of records and the seed, not on their order.

    Args:
        records: the records to split; ids must be unique.
        ratios: fractions for train, val and test; 3 non-negative numbers summing to 1.
        seed: seed of the random generator.
        mode: ``"auto"``, ``"source"`` or ``"ratios"`` (see :func:`resolve_split_mode`).

    Returns:
        ``{"train": [ids], "val": [ids], "test": [ids]}``, each list sorted.

    Raises:
        ValueError: for bad ratios or an unknown mode.
        DatasetError: for no records, duplicated ids, or ``mode="source"`` with a record lacking a source split.

    Example::

        splits = make_splits(result.records, ratios=(0.8, 0.2, 0.0), seed=1, mode="ratios")
    """
    checked = _check_ratios(ratios)
    ordered = _sorted_unique(records)
    used = resolve_split_mode(ordered, mode)
    groups: dict[str, list[CXRRecord]] = defaultdict(list)
    for r in ordered:
        groups[r.group_id].append(r)
    out = _split_by_source(groups) if used == "source" else _split_by_ratios(groups, checked, seed)
    logger.info(
        "split %d records in %d groups (mode %s): %s",
        len(ordered),
        len(groups),
        used,
        ", ".join(f"{s} {len(out[s])}" for s in SPLITS),
    )
    return {s: sorted(out[s]) for s in SPLITS}


def _class_counts(splits: dict, records: Sequence[CXRRecord]) -> dict[str, dict[str, int]]:
    by_id = {r.id: r for r in records}
    counts: dict[str, dict[str, int]] = {}
    for s in SPLITS:
        c = Counter((by_id[i].class_name or NO_CLASS) if i in by_id else "<not in records>" for i in splits.get(s, []))
        counts[s] = dict(sorted(c.items()))
    return counts


def write_splits(
    path: str | Path,
    splits: dict,
    *,
    seed: int | None,
    ratios: Sequence[float] | None,
    mode: str,
    source: str | None,
    records: Sequence[CXRRecord] | None = None,
) -> Path:
    """Write ``splits.json``: how the split was made, counts, then the ids of each split.

    The file reads ``{"seed", "ratios", "mode", "source", "sizes": {split: n}, "counts": {split: {class: n}},
    "train": [...], "val": [...], "test": [...]}``; ``counts`` is written only when ``records`` is given (the
    ids alone do not carry classes). A person may edit the id lists; :func:`load_splits` checks them again.

    Args:
        path: the JSON file to write; parent folders are created.
        splits: ``{"train": [ids], "val": [ids], "test": [ids]}``, e.g. from :func:`make_splits`.
        seed: the seed used (``None`` for a source split).
        ratios: the ratios used (``None`` for a source split).
        mode: the mode used, preferably resolved (``"source"`` or ``"ratios"``, see :func:`resolve_split_mode`).
        source: the name of the dataset source, e.g. ``"covidqu"``.
        records: the records split, to write class counts per split.

    Returns:
        The path written.
    """
    _check_disjoint(splits, str(path))
    out: dict = {
        "seed": seed,
        "ratios": list(ratios) if ratios is not None else None,
        "mode": mode,
        "source": source,
        "sizes": {s: len(splits.get(s, [])) for s in SPLITS},
    }
    if records is not None:
        out["counts"] = _class_counts(splits, records)
    for s in SPLITS:
        out[s] = list(splits.get(s, []))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    logger.info("wrote %s", path)
    return path


def _check_disjoint(splits: dict, where: str) -> None:
    seen: dict[str, str] = {}
    for s in SPLITS:
        ids = splits.get(s, [])
        dup = [i for i, n in Counter(ids).items() if n > 1]
        if dup:
            raise DatasetError(f"{where}: split {s!r} lists some ids twice: {_few(dup)}")
        for i in ids:
            if i in seen:
                raise DatasetError(f"{where}: id {i!r} is in both {seen[i]!r} and {s!r}")
            seen[i] = s


def load_splits(path: str | Path) -> dict:
    """Read and check a ``splits.json`` written by :func:`write_splits` (or edited by hand).

    Args:
        path: the JSON file.

    Returns:
        The file's content; ``train``, ``val`` and ``test`` are lists of ids (``test`` may be absent in the file,
        and is then an empty list).

    Raises:
        DatasetError: naming the file when it is missing, not JSON, lacks ``train`` or ``val``, holds something
            other than a list of string ids, or lists an id twice (in one split or in two).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"split file {path} does not exist")
    try:
        content = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DatasetError(f"split file {path} is not valid JSON: {e}") from e
    if not isinstance(content, dict):
        raise DatasetError(f"split file {path} must hold a JSON object with {list(SPLITS)}")
    for s in SPLITS:
        if s not in content:
            if s == "test":
                content[s] = []
                continue
            raise DatasetError(f"split file {path} has no {s!r} list; it has {sorted(content)}")
        ids = content[s]
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise DatasetError(f"split file {path}: {s!r} must be a list of string ids")
    _check_disjoint(content, f"split file {path}")
    return content


def apply_splits(records: Sequence[CXRRecord], splits: dict) -> dict[str, list[CXRRecord]]:
    """The records of each split, in the order the split lists them.

    Args:
        records: the indexed records.
        splits: ``{"train": [ids], "val": [ids], "test": [ids]}``, e.g. from :func:`load_splits`.

    Returns:
        ``{"train": [records], "val": [records], "test": [records]}``, ready for
        :func:`monaicxr.data.records.write_datalist`.

    Raises:
        DatasetError: when the split names ids that are not among the records (the data changed since the split
            was made), when some record is in no split (nothing is dropped silently), or an id is listed twice.
    """
    _check_disjoint(splits, "splits")
    by_id: dict[str, CXRRecord] = {}
    for r in records:
        if r.id in by_id:
            raise DatasetError(f"record ids must be unique; {r.id!r} appears twice")
        by_id[r.id] = r
    listed = {i for s in SPLITS for i in splits.get(s, [])}
    unknown = listed - by_id.keys()
    if unknown:
        raise DatasetError(f"{len(unknown)} id(s) in the split are not among the records: {_few(unknown)}")
    unassigned = by_id.keys() - listed
    if unassigned:
        raise DatasetError(f"{len(unassigned)} record(s) are in no split: {_few(unassigned)}")
    return {s: [by_id[i] for i in splits.get(s, [])] for s in SPLITS}
