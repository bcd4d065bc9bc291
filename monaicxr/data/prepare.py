"""From "where is the data" to a datalist a bundle can train on, with every step written down.

:func:`prepare_datalist` is what the bundle configs call. It indexes a dataset folder (or generates the
synthetic phantom set when no data is given), makes or reuses a seeded, stratified, grouped split, writes the
dataset fingerprint, split file and datalist into the run's folder, and checks that every record has what the
task needs. A path that does not exist is an error: there is no silent fallback to synthetic data.

Unusable input never aborts a run later: a dataset folder's indexer decodes every image and mask the way the
loader does and skips the bad ones; a given datalist is checked by :func:`verify_datalist_inputs`, which
decodes every file it names with the loader's reader and drops the items that fail. Either way the bad files
go to ``<output_dir>/input_issues.csv`` (:func:`write_input_issues`) and the log says how many.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .fingerprint import compute_fingerprint, write_fingerprint
from .records import DatasetError, IndexResult, SkippedItem, write_datalist
from .registry import index_dataset
from .splits import apply_splits, load_splits, make_splits, resolve_split_mode, write_splits

__all__ = [
    "FILE_KEYS",
    "INPUT_ISSUES_FILE",
    "TASK_KEYS",
    "list_images",
    "prepare_datalist",
    "verify_datalist_inputs",
    "write_input_issues",
]

logger = logging.getLogger(__name__)

# What each task needs from a record (datalist keys).
TASK_KEYS: dict[str, tuple[str, ...]] = {
    "lung": ("image", "lung"),
    "infection": ("image", "lung", "infection"),
    "3level": ("image", "lung", "infection"),
    "classification": ("image", "class_index"),
    "none": ("image",),
}


def _check_task(datalist: dict, task: str, origin: str) -> None:
    if task not in TASK_KEYS:
        raise ValueError(f"unknown task {task!r}; choose one of {sorted(TASK_KEYS)}")
    needed = TASK_KEYS[task]
    for section in ("training", "validation", "test"):
        items = datalist.get(section) or []
        missing = [(i, [k for k in needed if k not in item]) for i, item in enumerate(items)]
        missing = [(i, ks) for i, ks in missing if ks]
        if missing:
            i, ks = missing[0]
            raise DatasetError(
                f"{origin}: task {task!r} needs {list(needed)} for every item, but {len(missing)} of "
                f"{len(items)} {section} items lack some; e.g. {items[i].get('image', f'item {i}')} lacks {ks}"
            )


def prepare_datalist(
    output_dir: str,
    dataset_dir: str | None = None,
    datalist_file: str | None = None,
    task: str = "lung",
    layout: str = "auto",
    split_mode: str = "auto",
    ratios: Sequence[float] = (0.7, 0.1, 0.2),
    split_seed: int = 0,
    splits_file: str | None = None,
    synthetic_per_class: int = 40,
    synthetic_size: int = 256,
    synthetic_dir: str | None = None,
    fingerprint_masks: int | None = 500,
    max_train_items: int | None = None,
    eval_section: str | None = None,
    mask_values: str = "binary",
) -> dict:
    """Index, split and describe a dataset, and return its datalist.

    Exactly one data source is used, in this order: ``datalist_file`` (a MONAI datalist JSON with ``training``
    / ``validation`` / ``test`` sections, used as is), ``dataset_dir`` (a folder in any layout
    :func:`monaicxr.data.registry.index_dataset` knows), or, when both are ``None``, the synthetic phantom set
    (written once to ``synthetic_dir``, by default ``<output_dir>/synthetic_phantoms``).

    Files written to ``output_dir``: ``datalist.json``, ``splits.json`` and ``fingerprint.json`` (not for a
    given datalist), and ``input_issues.csv`` (``file,reason``: every input file left out, see
    :func:`write_input_issues`; the items of a given datalist are checked by :func:`verify_datalist_inputs`).

    Args:
        output_dir: the run folder.
        dataset_dir: a dataset folder; it must exist.
        datalist_file: a ready datalist; it must exist.
        task: what the records must provide (see :data:`TASK_KEYS`).
        layout: the folder layout name, or ``"auto"`` to detect it.
        split_mode: ``"auto"`` (the source's own split where it has train and val, else ``ratios``),
            ``"source"`` or ``"ratios"``.
        ratios: train / val / test fractions for ``"ratios"``.
        split_seed: seed of the split.
        splits_file: reuse this split file instead of making one (ids must match the dataset).
        synthetic_per_class, synthetic_size, synthetic_dir: the phantom set used when no data is given.
        fingerprint_masks: at most this many masks are decoded for the fingerprint's pixel statistics.
        max_train_items: keep at most this many training items, a seeded (``split_seed``) class-stratified
            subset, for short schedules on slow machines; validation and test are never reduced. The datalist
            records it as ``"training_subset": {"kept": n, "of": total, "seed": s}`` and the log says so.
        eval_section: the section an evaluation scores (``"test"``, ``"validation"``, ``"training"``; ``None``
            when training). When every record's source split is that section's (a folder of test films, a
            manifest whose split column says Test only), all of them go there as the source says, whatever
            ``split_mode`` is: an evaluation of a test set scores all of it, not a random share. The same holds
            for any single source split other than train (a Val-only folder evaluated as ``"test"``); a
            train-only source is split as usual, so that the held-out share of a training folder stays so.
        mask_values: the mask values the index accepts, ``"binary"`` (0/255 or 0/1), ``"three_level"``
            (also 0/127/255) or ``"any"`` (binarize later with ``BinarizeMaskd(allow_any=True)``); see
            :mod:`monaicxr.data.imagecheck`. Only for layouts with masks.

    Returns:
        ``{"training": [...], "validation": [...], "test": [...], "classes": [...], "source": str,
        "synthetic": bool, "root": str}``.
    """
    kwargs = dict(locals())
    kwargs.pop("max_train_items")

    def build() -> dict:
        return _train_subset(_prepare(**kwargs), max_train_items, split_seed, output_dir)

    if datalist_file is None and _distributed():
        # torchrun: rank 0 indexes, splits and writes; the other ranks wait, then read what it wrote.
        import torch.distributed as dist

        content = build() if dist.get_rank() == 0 else None
        dist.barrier()
        if content is None:
            content = json.loads((Path(output_dir) / "datalist.json").read_text())
        return content
    return build()


def _distributed() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _train_subset(content: dict, max_train_items: int | None, seed: int, output_dir: str) -> dict:
    """``content`` with its training section cut to ``max_train_items`` (see :func:`prepare_datalist`)."""
    if max_train_items is None or len(content.get("training", [])) <= max_train_items:
        return content
    total = len(content["training"])
    content["training"] = stratified_subset(content["training"], max_train_items, seed=seed)
    content["training_subset"] = {"kept": len(content["training"]), "of": total, "seed": seed}
    logger.warning(
        "max_train_items=%d: training on a class-stratified subset of %d of %d training items (seed %d); "
        "validation and test are complete",
        max_train_items,
        len(content["training"]),
        total,
        seed,
    )
    (Path(output_dir) / "datalist.json").write_text(json.dumps(content, indent=2))
    return content


def stratified_subset(
    items: list[dict], n: int, seed: int = 0, key: str = "class_name", min_per_class: int = 0
) -> list[dict]:
    """A seeded subset of ``n`` datalist items keeping each class's share (largest remainders).

    Written by hand: MONAI has no stratified sampler, and scikit-learn's ``train_test_split(train_size=n,
    stratify=...)``, the nearest one, has no ``min_per_class``, breaks ties in the quotas at random, and draws with
    its own generator, so it would keep other items than this function does for the same seed (the subsets of
    runs already reported would change). ``key`` names the class of an item; items without one count as one class. With ``min_per_class``
    every class keeps at least that many items (taken from the largest quotas) where ``n`` leaves room, so a
    small validation section still has every class. The order of the kept items is their original order. The
    one subsampling helper of the package (``max_train_items`` and ``monaicxr compare-masking --max_items``).

    Raises:
        ValueError: for ``n < 1``.
    """
    if n < 1:
        raise ValueError(f"max_train_items must be at least 1, got {n}")
    if n >= len(items):
        return list(items)
    by_class: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        by_class.setdefault(str(item.get(key)), []).append(i)
    quotas = {c: n * len(idx) / len(items) for c, idx in by_class.items()}
    counts = {c: int(q) for c, q in quotas.items()}
    for c in sorted(quotas, key=lambda c: (counts[c] - quotas[c], c))[: n - sum(counts.values())]:
        counts[c] += 1
    if min_per_class and n >= min_per_class * len(counts):
        for c in sorted(c for c in counts if counts[c] < min_per_class):
            while counts[c] < min(min_per_class, len(by_class[c])):
                counts[max(counts, key=lambda k: (counts[k], k))] -= 1
                counts[c] += 1
    rng = np.random.default_rng(seed)
    kept: list[int] = []
    for c, idx in sorted(by_class.items()):
        kept.extend(rng.choice(idx, size=counts[c], replace=False).tolist())
    return [items[i] for i in sorted(kept)]


def _prepare(
    output_dir: str,
    dataset_dir: str | None,
    datalist_file: str | None,
    task: str,
    layout: str,
    split_mode: str,
    ratios: Sequence[float],
    split_seed: int,
    splits_file: str | None,
    synthetic_per_class: int,
    synthetic_size: int,
    synthetic_dir: str | None,
    fingerprint_masks: int | None,
    eval_section: str | None = None,
    mask_values: str = "binary",
) -> dict:
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if datalist_file is not None:
        path = Path(datalist_file)
        if not path.is_file():
            raise DatasetError(f"datalist_file {path} does not exist")
        try:
            content = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise DatasetError(f"datalist_file {path} is not valid JSON: {e}") from e
        _check_task(content, task, str(path))
        content, issues = verify_datalist_inputs(content, origin=str(path))
        write_input_issues(out, issues)
        content.setdefault("source", "datalist")
        content.setdefault("synthetic", False)
        content.setdefault("root", str(path))
        return content

    synthetic = dataset_dir is None
    if synthetic:
        from .synthetic import write_phantom_dataset

        root = Path(synthetic_dir) if synthetic_dir else out / "synthetic_phantoms"
        logger.warning(
            "no dataset_dir given: using SYNTHETIC chest X-ray phantoms generated by monaicxr (not patient data) in %s",
            root,
        )
        write_phantom_dataset(root, n_per_class=synthetic_per_class, size=synthetic_size, seed=split_seed)
        layout = "covidqu_flat"
    else:
        root = Path(dataset_dir).expanduser().resolve()
        if not root.is_dir():
            raise DatasetError(
                f"dataset_dir {root} does not exist or is not a folder (cwd {Path.cwd()}); "
                "check the path: monaicxr does not fall back to synthetic data when a path is given"
            )
    options = {} if mask_values == "binary" else {"mask_values": mask_values}  # the default of every indexer
    result: IndexResult = index_dataset(root, layout=layout, **options)
    if not result.records:
        raise DatasetError(f"{root}: no usable images found ({len(result.skipped)} skipped)")
    for item in result.skipped:
        logger.warning("skipped %s: %s", item.path, item.reason)
    write_input_issues(out, result.skipped)  # the indexer decoded every file as the loader does

    eval_splits = _eval_splits(result.records, eval_section, root) if eval_section and not splits_file else None
    if eval_splits is not None:
        splits = eval_splits
        write_splits(
            out / "splits.json",
            splits,
            seed=None,
            ratios=None,
            mode=f"evaluation: all in {eval_section}",
            source=result.source,
            records=result.records,
        )
    elif splits_file is not None:
        splits = load_splits(splits_file)
    else:
        splits = make_splits(result.records, ratios=tuple(ratios), seed=split_seed, mode=split_mode)
        used = resolve_split_mode(result.records, split_mode)
        write_splits(
            out / "splits.json",
            splits,
            seed=split_seed if used == "ratios" else None,
            ratios=tuple(ratios) if used == "ratios" else None,
            mode=used,
            source=result.source,
            records=result.records,
        )
        if not splits.get("test"):
            logger.warning("%s: the split has no test set (the source's own split has none); report on val", root)
    by_split = apply_splits(result.records, splits)
    write_fingerprint(out / "fingerprint.json", compute_fingerprint(result, splits, max_masks=fingerprint_masks))
    extra = {"source": result.source, "synthetic": synthetic or result.source == "synthetic", "root": str(root)}
    path = write_datalist(out / "datalist.json", by_split, result.classes, extra=extra)
    content = json.loads(path.read_text())
    _check_task(content, task, str(root))
    logger.info(
        "%s data from %s: %s train / %s val / %s test items; datalist %s",
        "SYNTHETIC" if content["synthetic"] else result.source,
        root,
        len(content.get("training", [])),
        len(content.get("validation", [])),
        len(content.get("test", [])),
        path,
    )
    return content


#: the file written beside the datalist listing every input file left out, with its reason
INPUT_ISSUES_FILE = "input_issues.csv"
#: datalist keys whose value is a file the bundles' loader reads
FILE_KEYS = ("image", "lung", "infection", "ignore")


def verify_datalist_inputs(content: dict, origin: str = "datalist") -> tuple[dict, list[SkippedItem]]:
    """Decode every file a datalist names the way the bundles' loader does, and drop the items that fail.

    Each :data:`FILE_KEYS` value of every ``training`` / ``validation`` / ``test`` item is decoded once with
    :func:`monaicxr.io.reader.read_cxr` (what :class:`monaicxr.io.CXRImageReader` runs inside ``LoadImaged``),
    so a file that passes here does not abort training or evaluation later. An item with any file that fails
    is dropped as a whole. Relative paths are read from the current folder, as the loader reads them. One
    decode per file: about 6 s for the 4,660 images of 256² of COVID-QU-Ex on one CPU core.

    Returns:
        ``(content with the bad items removed, one SkippedItem (file, reason) per bad file)``.

    Raises:
        DatasetError: when no item is left in any section (the message gives the first reasons).
    """
    from tqdm import tqdm

    from monaicxr.io.reader import read_cxr  # monaicxr.io imports monaicxr.data.records: import here

    from .imagecheck import BadFileError, check_file

    sections = [s for s in ("training", "validation", "test") if content.get(s)]
    n_items = sum(len(content[s]) for s in sections)
    reasons: dict[str, str | None] = {}  # file -> reason (None: fine); a file named twice is decoded once

    def reason(path: str) -> str | None:
        if path not in reasons:
            try:
                read_cxr(check_file(path))
                reasons[path] = None
            except BadFileError as e:
                reasons[path] = e.reason
            except Exception as e:  # whatever the reader raises, the loader would raise it too
                message = str(e).removeprefix(f"{path}: ")
                reasons[path] = f"not readable by the loader: {message or type(e).__name__}"
        return reasons[path]

    bar = tqdm(total=n_items, desc="checking datalist files", unit="item", leave=False, disable=None)
    issues: list[SkippedItem] = []
    out = dict(content)
    for section in sections:
        kept = []
        for item in content[section]:
            files = [str(item[k]) for k in FILE_KEYS if isinstance(item.get(k), (str, Path))]
            bad = [(f, r) for f in files if (r := reason(f)) is not None]
            issues += [SkippedItem(f, r) for f, r in bad if not any(i.path == f for i in issues)]
            if not bad:
                kept.append(item)
            bar.update()
        out[section] = kept
    bar.close()
    if n_items and not any(out[s] for s in sections):
        shown = "; ".join(f"{i.path}: {i.reason}" for i in issues[:3])
        raise DatasetError(f"{origin}: none of the {n_items} datalist items can be read by the loader ({shown})")
    return out, issues


def write_input_issues(output_dir: str | Path, issues: Sequence[SkippedItem]) -> Path:
    """Write ``<output_dir>/input_issues.csv`` (``file,reason``; a header only when nothing was left out).

    Logs a warning with the count when ``issues`` is not empty.
    """
    path = Path(output_dir) / INPUT_ISSUES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "reason"])
        writer.writerows((i.path, i.reason) for i in issues)
    if issues:
        logger.warning("%d input file(s) left out of the datalist; file and reason in %s", len(issues), path)
    return path


#: datalist section -> split name
SECTION_SPLITS = {"training": "train", "validation": "val", "test": "test"}


def _eval_splits(records, eval_section: str, root: Path) -> dict[str, list[str]] | None:
    """All records in ``eval_section`` (validation or test) when the source holds one split other than train."""
    splits = {r.source_split for r in records}
    wanted = SECTION_SPLITS.get(eval_section)
    if wanted not in ("val", "test") or len(splits) != 1 or splits <= {None, "train"}:
        return None
    (only,) = splits
    logger.warning(
        "%s: every one of the %d records is in the source's %s split, so all of them are evaluated as the %s "
        "section (split_mode is not applied to a single-split dataset under evaluation)",
        root,
        len(records),
        only,
        eval_section,
    )
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    out[wanted] = sorted(r.id for r in records)
    return out


def list_images(input_dir: str | Path, output_dir: str | Path | None = None) -> list[dict]:
    """A datalist (``[{"image": path}, ...]``) of every image file in ``input_dir``, for inference.

    Every image is decoded once the way the loader does (:func:`verify_datalist_inputs`), so one unreadable
    file (truncated, CMYK, several frames, a DICOM without pixel data) does not abort the whole run: it is
    left out, logged with its reason and, with ``output_dir``, written to ``<output_dir>/input_issues.csv``
    beside the predictions. Files that are not images are treated the same way. A missing folder, or one in
    which nothing is readable, is an error naming it.
    """
    from .imagecheck import dataset_root, image_files

    folder = dataset_root(input_dir)
    files, skipped = image_files(folder)
    for item in skipped:
        logger.warning("not an image, left out: %s (%s)", item.path, item.reason)
    if not files:
        raise DatasetError(f"{folder}: no image files (png, jpg, jpeg, bmp, tif, dcm) found")
    content, bad = verify_datalist_inputs({"test": [{"image": str(p)} for p in sorted(files)]}, origin=str(folder))
    if output_dir is not None:
        write_input_issues(output_dir, [*skipped, *bad])
    return content["test"]
