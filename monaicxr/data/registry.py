"""Find the right indexer for a dataset folder, by name or by looking at the folder.

Example::

    layout = detect_layout("/data/COVID-19_Radiography_Dataset")   # "radiography"
    result = index_dataset("/data/chest_xray")                      # detects "kermany", then indexes
    result = index_dataset("/data/x", layout="class_folders", verify=False)
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from pathlib import Path

from monaicxr.data.covidqu import index_covidqu, index_covidqu_flat, is_covidqu, is_covidqu_flat
from monaicxr.data.generic import index_class_folders, index_image_mask_pairs, is_class_folders, is_image_mask_pairs
from monaicxr.data.imagecheck import dataset_root, list_dir
from monaicxr.data.kermany import index_kermany, is_kermany
from monaicxr.data.polygons import index_coco, index_darwin, is_coco, is_darwin
from monaicxr.data.radiography import index_radiography, is_radiography
from monaicxr.data.records import DatasetError, IndexResult

__all__ = ["INDEXERS", "DETECTORS", "detect_layout", "index_dataset"]

logger = logging.getLogger(__name__)


def detect_layout(root: str | Path) -> str:
    """The name of the layout of ``root`` (a key of :data:`INDEXERS`), from its folder names and marker files.

    The checks run in the order of :data:`DETECTORS`, most specific first: a ``manifest.csv`` beside
    ``images/`` (the flat COVID-QU-Ex copy, also written by the synthetic generator with a ``SYNTHETIC``
    marker), the COVID-QU-Ex part folders, Kermany's ``train/NORMAL`` (split folders holding only NORMAL / PNEUMONIA:
    ``test/COVID-19`` + ``test/Normal`` is class folders with split test), the Radiography Database class names,
    ``images/`` + ``masks/`` or ``lung_masks/``, and last any class folders holding images.

    Raises:
        DatasetError: ``root`` does not exist, is empty, or matches no layout (the message lists the known
            layouts and what ``root`` holds).
    """
    root = dataset_root(root)
    for name, matches in DETECTORS.items():
        if matches(root):
            logger.info("%s: detected layout %r", root, name)
            return name
    dirs, files = list_dir(root)
    found = [d.name + "/" for d in dirs[:15]] + [f.name for f in files[:5]]
    raise DatasetError(
        f"cannot tell the layout of dataset folder {root}: it holds {', '.join(found)}"
        f"{' ...' if len(dirs) > 15 or len(files) > 5 else ''}; known layouts are {sorted(INDEXERS)} "
        "(pass layout=<name> to choose one)"
    )


def index_dataset(root: str | Path, layout: str = "auto", **kwargs) -> IndexResult:
    """Index ``root`` with the indexer named ``layout`` (``"auto"``: :func:`detect_layout`).

    Args:
        root: the dataset folder.
        layout: a key of :data:`INDEXERS`, or ``"auto"``.
        kwargs: passed to the indexer, e.g. ``verify=False``, ``subset="lung"``, ``allow_missing_masks=True``.

    Raises:
        DatasetError: unknown layout name (the message lists the valid ones), an option the layout's indexer does
            not take (``mask_values`` for a layout without masks), or bad input found by the indexer.
    """
    if layout == "auto":
        layout = detect_layout(root)
    if layout not in INDEXERS:
        raise DatasetError(f"unknown dataset layout {layout!r}; valid layouts are {['auto', *sorted(INDEXERS)]}")
    indexer = INDEXERS[layout]
    taken = inspect.signature(indexer).parameters
    var_kw = any(p.kind == p.VAR_KEYWORD for p in taken.values())
    unknown = [] if var_kw else sorted(k for k in kwargs if k not in taken)
    if unknown:
        options = sorted(n for n, p in taken.items() if p.kind == p.KEYWORD_ONLY)
        raise DatasetError(f"{root}: the {layout!r} layout's indexer takes no {unknown}; its options are {options}")
    return indexer(root, **kwargs)


# Layout detection, most specific first (the generic layouts match many folders, so they come last).
DETECTORS: dict[str, Callable[[Path], bool]] = {
    "covidqu_flat": is_covidqu_flat,
    "covidqu": is_covidqu,
    "darwin": is_darwin,
    "coco": is_coco,
    "kermany": is_kermany,
    "radiography": is_radiography,
    "image_mask_pairs": is_image_mask_pairs,
    "class_folders": is_class_folders,
}

INDEXERS: dict[str, Callable[..., IndexResult]] = {
    "covidqu": index_covidqu,
    "covidqu_flat": index_covidqu_flat,
    "radiography": index_radiography,
    "kermany": index_kermany,
    "class_folders": index_class_folders,
    "image_mask_pairs": index_image_mask_pairs,
    "darwin": index_darwin,
    "coco": index_coco,
}
