"""The items an evaluation scores: one datalist section, never empty, with classes matched by name.

Every bundle's ``evaluate.json`` reads its dataset through :func:`eval_items`. It picks ``eval_section``
(``"all"`` joins the three), refuses an empty one with an error naming it, and for a classifier maps each
item's ``class_name`` to the model's class list by name: a folder of ``COVID-19/`` and ``Normal/`` films has
``class_index`` 0 and 1 in its own datalist, which by position would label the Normal films as the model's
``Non-COVID``. A class the model does not know is an error; a model class the data lacks is a warning.

Example::

    data = prepare_datalist("runs/eval", dataset_dir="test_films", task="classification", eval_section="test")
    items = eval_items(data, "test", data_classes=["COVID-19", "Non-COVID", "Normal"])

A segmentation task is an overlay: its evaluation pieces (``task_eval_postprocessing``, ``task_eval_handlers``)
come from ``train.json`` (the default task) or from ``configs/task_<task>.json``, which also says which task
they were written for (``task_eval_for``). :func:`check_task_overlay` refuses a ``task`` set on its own.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from .records import DatasetError

__all__ = ["SECTIONS", "check_task_overlay", "eval_items"]

logger = logging.getLogger(__name__)

SECTIONS = ("training", "validation", "test")


def _sizes(data: Mapping[str, Any]) -> str:
    return ", ".join(f"{s} {len(data.get(s) or [])}" for s in SECTIONS)


def _class_name(item: Mapping[str, Any], classes: Sequence[str] | None) -> str | None:
    if item.get("class_name") is not None:
        return str(item["class_name"])
    index = item.get("class_index")
    if classes is not None and isinstance(index, int) and 0 <= index < len(classes):
        return str(classes[index])
    return None


def _by_name(items: list[dict], data: Mapping[str, Any], section: str, model_classes: list[str]) -> list[dict]:
    classes = data.get("classes")
    names = [_class_name(item, classes) for item in items]
    if any(n is None for n in names):
        if any("class_index" in item for item in items):
            logger.warning(
                "%s: items with a class_index but no class_name in a datalist without a 'classes' list: their "
                "class_index is taken to count the model's classes %s",
                section,
                model_classes,
            )
        return items
    unknown = sorted(set(names) - set(model_classes))
    if unknown:
        example = next(item.get("image") for item, n in zip(items, names, strict=True) if n == unknown[0])
        raise DatasetError(
            f"{section}: class(es) {unknown} are not among the model's classes {model_classes} "
            f"(e.g. {example}); evaluate a model trained on these classes, or leave those images out"
        )
    counts = Counter(names)
    absent = [c for c in model_classes if c not in counts]
    if absent:
        logger.warning(
            "%s: the model's class(es) %s have no images in the evaluated data (classes present: %s); their "
            "recall and ROC-AUC are undefined and the report's averages are over the classes present",
            section,
            absent,
            ", ".join(f"{c} {counts[c]}" for c in model_classes if c in counts),
        )
    if classes is not None and list(classes) != model_classes:
        logger.info("%s: data classes %s mapped by name to the model's %s", section, list(classes), model_classes)
    return [{**item, "class_index": model_classes.index(n)} for item, n in zip(items, names, strict=True)]


def eval_items(
    data: Mapping[str, Any], section: str, data_classes: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """The items of ``data[section]`` to evaluate, checked and, for a classifier, relabelled by class name.

    Args:
        data: a datalist (``{"training": [...], "validation": [...], "test": [...], "classes": [...]}``).
        section: ``"training"``, ``"validation"``, ``"test"`` or ``"all"`` (the three joined).
        data_classes: the model's classes that ``class_index`` counts (a classifier bundle's
            ``data_classes``); ``None`` for a segmentation model (no class mapping).

    Returns:
        the items, each ``class_index`` set to the position of its ``class_name`` in ``data_classes``.

    Raises:
        DatasetError: unknown or empty section (naming it and the sizes of all three), a class the model does
            not know (naming it and an image of it).
    """
    if section == "all":
        items = [dict(item) for s in SECTIONS for item in data.get(s) or []]
    elif section in SECTIONS:
        items = [dict(item) for item in data.get(section) or []]
    else:
        raise DatasetError(f"unknown eval_section {section!r}; choose one of {[*SECTIONS, 'all']}")
    root = data.get("root", "the datalist")
    if not items:
        raise DatasetError(
            f"eval_section {section!r} is empty: {root} gives {_sizes(data)} items; choose another section with "
            "--eval_section (or 'all'), or give data that has images in this one"
        )
    if data_classes is not None:
        items = _by_name(items, data, section, [str(c) for c in data_classes])
    total = sum(len(data.get(s) or []) for s in SECTIONS)
    logger.info("evaluating section %r: %d of the %d items of %s", section, len(items), total, root)
    return items


def check_task_overlay(task: str, task_eval_for: str) -> None:
    """Refuse an evaluation whose ``task`` is not the task its evaluation pieces were written for.

    ``--task infection`` without ``configs/task_infection.json`` would score infection with the lung task's
    post-processing and handlers (no severity, no infection summary); the overlay brings the right ones.

    Args:
        task: the config's ``task``.
        task_eval_for: the task of the loaded ``task_eval_postprocessing`` / ``task_eval_handlers``.

    Raises:
        ValueError: the two differ, naming the overlay to add.
    """
    if task != task_eval_for:
        raise ValueError(
            f"task {task!r}, but the evaluation pieces loaded are for task {task_eval_for!r}: a task is an overlay, "
            f"add configs/task_{task}.json before evaluate.json (monaicxr evaluate BUNDLE --overlay task_{task}) "
            "instead of setting task on its own"
        )
