"""Checks a classification datalist against a bundle's classes before any image is loaded.

The classifier bundles call :func:`check_classification_data` first thing in their ``run`` section, so that a
datalist that cannot train a sensible classifier stops with one clear message naming the item or the class,
instead of failing (or worse, training) half an hour later. MONAI has no such check: its datasets take
whatever labels they are given.

Example::

    data = prepare_datalist("runs/x", dataset_dir="data/covidqu", task="classification")
    check_classification_data(data, ["COVID-19", "Non-COVID", "Normal"])
"""

from __future__ import annotations

import logging
import numbers
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .records import DatasetError

__all__ = ["check_classification_data"]

logger = logging.getLogger(__name__)

_SHOWN = 5  # how many offending items a message names


def _name(item: Mapping[str, Any], i: int) -> str:
    return str(item.get("image", f"item {i}"))


def _check_source_classes(data: Mapping[str, Any], expected: list[str], sections: Sequence[str]) -> None:
    given = data.get("classes")
    if given is None or list(given) == expected:
        return
    given = [str(c) for c in given]
    unknown = [c for c in given if c not in expected]
    if unknown:
        used = {i: c for i, c in enumerate(given) if c in unknown}
        example = next(
            (
                f"; e.g. {_name(item, k)} is {used[item['class_index']]!r}"
                for s in sections
                for k, item in enumerate(data.get(s) or [])
                if item.get("class_index") in used
            ),
            "",
        )
        raise DatasetError(
            f"the datalist's class(es) {unknown} are not among the bundle's classes {expected}{example}; "
            "use a dataset of these classes, or set class_names (and metadata.json) to the data's classes "
            f"{given}"
        )
    raise DatasetError(
        f"the datalist's classes {given} are not the bundle's classes {expected} in the same order (class_index "
        "counts positions in that list); set class_names to the datalist's order"
    )


def _labels(items: Sequence[Mapping[str, Any]], section: str, class_of: Callable, n_classes: int) -> list[int]:
    labels, bad = [], []
    for i, item in enumerate(items):
        if "class_index" not in item:
            bad.append(f"{_name(item, i)} has no class_index")
            continue
        value = class_of(item)
        is_int = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if not is_int or not 0 <= value < n_classes:
            bad.append(f"{_name(item, i)} has class {value!r}")
            continue
        labels.append(int(value))
    if bad:
        more = f" ({len(bad)} in all)" if len(bad) > _SHOWN else ""
        raise DatasetError(
            f"{section}: {len(bad)} item(s) with a label outside the bundle's {n_classes} classes "
            f"(expected an integer class_index in 0..{n_classes - 1}): " + "; ".join(bad[:_SHOWN]) + more
        )
    return labels


def _counts(labels: list[int], class_names: list[str]) -> str:
    counted = Counter(labels)
    return ", ".join(f"{name}: {counted[k]}" for k, name in enumerate(class_names))


def check_classification_data(
    data: Mapping[str, Any],
    class_names: Sequence[str],
    class_of: Callable[[Mapping[str, Any]], int] | None = None,
    data_classes: Sequence[str] | None = None,
    sections: Sequence[str] = ("training", "validation"),
) -> Mapping[str, Any]:
    """Refuse a classification datalist that cannot train a classifier of ``class_names``.

    Checks, each with an error naming the item or the class:

    - the datalist's ``classes`` (when it has the key) are ``data_classes`` in that order, so that
      ``class_index`` means what the bundle thinks it means; a class the bundle does not know is named, with an
      image of that class;
    - every item of ``sections`` has a ``class_index`` and ``class_of(item)`` is an integer in
      ``0 .. len(class_names) - 1``;
    - the ``"training"`` section holds at least two classes, and every class of ``class_names``;
    - the ``"validation"`` section is not empty and holds every class (per-class recall, ROC curves and early
      stopping on validation need each class there).

    Args:
        data: a datalist (``{"training": [...], "validation": [...], "classes": [...]}``), e.g. from
            :func:`monaicxr.data.prepare.prepare_datalist`.
        class_names: the bundle's classes, in the order of its output channels (metadata ``class_names``);
            two for a single sigmoid output (negative, positive).
        class_of: maps an item to its class index among ``class_names``; ``item["class_index"]`` by default.
            A bundle that derives its classes from the data's (e.g. positive vs. the rest) passes its mapping.
        data_classes: the classes the datalist's ``class_index`` must refer to; ``class_names`` by default.
        sections: the sections whose labels are checked; the class-coverage checks apply to ``"training"``
            and ``"validation"`` where listed.

    Returns:
        ``data`` itself, unchanged, so that a config can wrap the expression that builds it.

    Raises:
        DatasetError: for the first problem found.
    """
    names = [str(c) for c in class_names]
    if len(names) < 2:
        raise ValueError(f"a classifier needs at least two class_names, got {names}.")
    expected_source = names if data_classes is None else [str(c) for c in data_classes]
    _check_source_classes(data, expected_source, sections)
    class_of = class_of or (lambda item: item["class_index"])

    for section in sections:
        items = data.get(section) or []
        labels = _labels(items, section, class_of, len(names))
        present = sorted(set(labels))
        if section == "training":
            if not items:
                raise DatasetError("the training split is empty; nothing to train on")
            if len(present) < 2:
                raise DatasetError(
                    f"the training split holds a single class, {names[present[0]]!r} ({len(labels)} images); "
                    f"a classifier of {names} needs images of at least two classes"
                )
            absent = [names[k] for k in range(len(names)) if k not in present]
            if absent:
                raise DatasetError(
                    f"class(es) {absent} have no training images ({_counts(labels, names)}); the network could "
                    "never predict them: add images or remove the class from class_names"
                )
        elif section == "validation":
            if not items:
                raise DatasetError(
                    "the validation split is empty; early stopping, the best-model checkpoint and the report need "
                    "validation images (check split_mode and split_ratios)"
                )
            absent = [names[k] for k in range(len(names)) if k not in present]
            if absent:
                raise DatasetError(
                    f"class(es) {absent} have no validation images ({_counts(labels, names)}); per-class recall "
                    "and ROC AUC would be undefined: use more data or a larger validation ratio"
                )
        logger.info("%s: %d images (%s)", section, len(labels), _counts(labels, names))
    return data
