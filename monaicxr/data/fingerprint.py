"""A dataset fingerprint in the manner of nnU-Net: one JSON file a person reads before training on the data.

It records what the indexer found (counts per class and split), what the files are (image sizes, PIL modes,
bit depths and under ``bit_depth_rule`` how many files got their bit depth from which rule of
:mod:`monaicxr.io.reader` -- ``"dtype"``, ``"sBIT"``, ``"BitsStored"``, ``"float [0,1]"``, ``"explicit"``...,
mask values), how large the lungs and the infections are, and every file the indexer skipped with
its reason. Every image is decoded as the loader decodes it; masks are fully decoded, optionally for a seeded
sample only.

Example::

    result = index_covidqu(root)
    fp = compute_fingerprint(result, load_splits("splits.json"), max_masks=1000)
    write_fingerprint("fingerprint.json", fp)
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from monaicxr.data.records import SPLITS, CXRRecord, IndexResult
from monaicxr.data.splits import NO_CLASS, apply_splits

__all__ = ["compute_fingerprint", "write_fingerprint", "MASK_KINDS"]

logger = logging.getLogger(__name__)

#: mask kinds: fingerprint name -> CXRRecord attribute
MASK_KINDS = {"lung": "lung_mask", "infection": "infection_mask", "ignore": "ignore_mask"}
#: the value sets a binary mask may have; anything else is listed under ``unexpected_mask_values``
EXPECTED_MASK_VALUES = ({0, 255}, {0, 1})
_MAX_LISTED_VALUES = 20


def _stats(values: Iterable[float]) -> dict:
    """Summary statistics of fractions; ``{"n": 0}`` when there are none."""
    a = np.asarray(list(values), dtype=np.float64)
    if a.size == 0:
        return {"n": 0}
    p5, median, p95 = np.percentile(a, [5, 50, 95])
    out = {
        "n": int(a.size),
        "mean": a.mean(),
        "std": a.std(),
        "min": a.min(),
        "p5": p5,
        "median": median,
        "p95": p95,
        "max": a.max(),
    }
    return {k: (v if k == "n" else round(float(v), 6)) for k, v in out.items()}


def _stats_by_class(values: dict[str, list[float]]) -> dict:
    everything = [v for vs in values.values() for v in vs]
    return {"all": _stats(everything), "by_class": {c: _stats(values[c]) for c in sorted(values)}}


def _image_header(path: str) -> tuple[tuple[int, int], str, int | None, str]:
    """(width, height), mode, bit depth and bit depth rule, decoded as the loader decodes the image.

    The file is read with :func:`monaicxr.io.reader.read_cxr`, since the bit depth of a PNG with ``sBIT`` or of
    a float TIFF depends on more than the header.
    """
    from monaicxr.io.reader import read_cxr  # monaicxr.io imports monaicxr.data.records

    arr, meta = read_cxr(path)
    mode = str(meta["original_mode"])
    if mode == "DICOM":
        mode = f"DICOM {meta['photometric_interpretation']}"
    return (int(arr.shape[1]), int(arr.shape[0])), mode, int(meta["bit_depth"]), str(meta["bit_depth_rule"])


def _read_mask(path: str) -> np.ndarray:
    from monaicxr.io.reader import is_nifti, read_cxr

    if is_nifti(path):
        return read_cxr(path)[0]
    with Image.open(path) as img:
        return np.asarray(img)


def compute_fingerprint(
    result: IndexResult,
    splits: dict | None = None,
    *,
    max_masks: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Describe an indexed dataset: counts, image sizes and modes, mask values, lung and infection areas.

    Areas are fractions of the mask's pixels that are non-zero: ``lung_area_fraction`` is lung pixels over image
    pixels, ``infection_area_fraction`` infection pixels over image pixels, and ``infection_lung_fraction``
    infection pixels over lung pixels (records with both masks and a non-empty lung). Each is given for all
    records and per class, as n, mean, std, min, p5, median, p95 and max.

    Args:
        result: what an indexer returned.
        splits: ``{"train": [ids], ...}`` to count classes per split; every record must be in a split.
        max_masks: decode the masks of at most this many records (a seeded sample of those with any mask) for
            the mask values and area statistics; ``None`` decodes all. Counts of masks present are always over
            all records.
        seed: seed of the sample drawn when ``max_masks`` is set.
        progress: show a tqdm progress bar.

    Returns:
        A JSON-serialisable dict; see :func:`write_fingerprint`. Files that cannot be opened are listed under
        ``unreadable`` rather than stopping the whole pass.
    """
    records = list(result.records)
    fp: dict = {
        "source": result.source,
        "root": result.root,
        "classes": list(result.classes),
        "num_records": len(records),
        "class_counts": dict(sorted(Counter(r.class_name or NO_CLASS for r in records).items())),
    }
    if splits is not None:
        by_split = apply_splits(records, splits)
        fp["split_counts"] = {s: len(by_split[s]) for s in SPLITS}
        fp["class_split_counts"] = {
            s: dict(sorted(Counter(r.class_name or NO_CLASS for r in by_split[s]).items())) for s in SPLITS
        }
    fp["mask_counts"] = {kind: sum(getattr(r, attr) is not None for r in records) for kind, attr in MASK_KINDS.items()}

    with_masks = [i for i, r in enumerate(records) if any(getattr(r, a) is not None for a in MASK_KINDS.values())]
    if max_masks is not None and max_masks < len(with_masks):
        chosen = np.random.default_rng(seed).choice(len(with_masks), size=max(max_masks, 0), replace=False)
        decode = {with_masks[i] for i in chosen}
    else:
        decode = set(with_masks)
    fp["mask_stats_sample"] = len(decode)

    sizes: Counter = Counter()
    modes: Counter = Counter()
    bits: Counter = Counter()
    rules: Counter = Counter()
    values: dict[str, set[int]] = defaultdict(set)
    unexpected: list[dict] = []
    mismatched: list[dict] = []
    unreadable: list[dict] = []
    lung_frac: dict[str, list[float]] = defaultdict(list)
    inf_frac: dict[str, list[float]] = defaultdict(list)
    inf_lung_frac: dict[str, list[float]] = defaultdict(list)

    for index, rec in enumerate(tqdm(records, desc=f"fingerprint {result.source}", disable=not progress)):
        try:
            size, mode, nbits, rule = _image_header(rec.image)
        except Exception as e:  # any decoder error: list the file, keep going
            unreadable.append({"id": rec.id, "path": rec.image, "error": f"{type(e).__name__}: {e}"})
            size = None
        else:
            sizes[f"{size[0]}x{size[1]}"] += 1
            modes[mode] += 1
            bits[str(nbits) if nbits is not None else "unknown"] += 1
            rules[rule] += 1
        if index in decode:
            _mask_pass(rec, size, values, unexpected, mismatched, unreadable, lung_frac, inf_frac, inf_lung_frac)

    fp["image_sizes"] = dict(sizes.most_common())
    fp["image_modes"] = dict(modes.most_common())
    fp["bits_per_sample"] = dict(sorted(bits.items()))
    fp["bit_depth_rule"] = dict(rules.most_common())
    fp["mask_values"] = {k: sorted(v) for k, v in sorted(values.items())}
    fp["unexpected_mask_values"] = unexpected
    fp["mask_size_mismatches"] = mismatched
    fp["lung_area_fraction"] = _stats_by_class(lung_frac)
    fp["infection_area_fraction"] = _stats_by_class(inf_frac)
    fp["infection_lung_fraction"] = _stats_by_class(inf_lung_frac)
    fp["unreadable"] = unreadable
    fp["num_skipped"] = len(result.skipped)
    fp["skipped_reasons"] = dict(Counter(s.reason for s in result.skipped).most_common())
    fp["skipped"] = [asdict(s) for s in result.skipped]
    if unexpected or mismatched or unreadable:
        logger.warning(
            "fingerprint of %s: %d mask(s) with unexpected values, %d mask(s) of another size than the image, "
            "%d unreadable file(s)",
            result.source,
            len(unexpected),
            len(mismatched),
            len(unreadable),
        )
    return fp


def _mask_pass(
    rec: CXRRecord,
    image_size: tuple[int, int] | None,
    values: dict[str, set[int]],
    unexpected: list[dict],
    mismatched: list[dict],
    unreadable: list[dict],
    lung_frac: dict[str, list[float]],
    inf_frac: dict[str, list[float]],
    inf_lung_frac: dict[str, list[float]],
) -> None:
    """Decode one record's masks and add to the running value sets and area lists."""
    cls = rec.class_name or NO_CLASS
    fg: dict[str, np.ndarray] = {}
    for kind, attr in MASK_KINDS.items():
        path = getattr(rec, attr)
        if path is None:
            continue
        try:
            arr = _read_mask(path)
        except Exception as e:  # any decoder error: list the file, keep going
            unreadable.append({"id": rec.id, "path": path, "error": f"{type(e).__name__}: {e}"})
            continue
        seen = {int(v) for v in np.unique(arr)}
        values[kind] |= seen
        if arr.ndim != 2 or not any(seen <= ok for ok in EXPECTED_MASK_VALUES):
            shown = sorted(seen)
            unexpected.append(
                {
                    "id": rec.id,
                    "kind": kind,
                    "path": path,
                    "shape": list(arr.shape),
                    "values": shown[:_MAX_LISTED_VALUES],
                    "num_values": len(shown),
                }
            )
        mask_size = (arr.shape[1], arr.shape[0])
        if image_size is not None and mask_size != tuple(image_size):
            mismatched.append(
                {
                    "id": rec.id,
                    "kind": kind,
                    "path": path,
                    "mask": f"{mask_size[0]}x{mask_size[1]}",
                    "image": f"{image_size[0]}x{image_size[1]}",
                }
            )
        fg[kind] = (arr > 0).any(axis=-1) if arr.ndim == 3 else arr > 0
    if "lung" in fg:
        lung = fg["lung"]
        lung_frac[cls].append(float(lung.sum()) / lung.size)
    if "infection" in fg:
        inf = fg["infection"]
        inf_frac[cls].append(float(inf.sum()) / inf.size)
        if "lung" in fg and fg["lung"].shape == inf.shape and fg["lung"].any():
            inf_lung_frac[cls].append(float(inf.sum()) / float(fg["lung"].sum()))


def write_fingerprint(path: str | Path, fp: dict) -> Path:
    """Write a fingerprint from :func:`compute_fingerprint` as indented JSON; parent folders are created.

    Args:
        path: the JSON file to write.
        fp: the fingerprint.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fp, indent=2) + "\n")
    logger.info("wrote %s", path)
    return path
