"""Ignite handler that gathers one dictionary per image from an evaluator's output and writes them as CSV."""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from monai.utils import IgniteInfo, min_version, optional_import

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")

__all__ = ["RowsCSVWriter"]

logger = logging.getLogger(__name__)


def _plain(value):
    """A CSV cell: tensors and numpy scalars become Python numbers, ``None`` an empty cell."""
    if value is None:
        return ""
    if hasattr(value, "numel") and value.numel() == 1:
        return value.item()
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return value


class RowsCSVWriter:
    """Write ``item[key]`` (a flat dict, e.g. the severity row of :class:`monaicxr.transforms.Severityd`) per image.

    MONAI's ``MetricsSaver`` writes metric tensors, not per-image records of mixed types; this writes those.
    ``None`` values are written as empty cells. Single-process only.

    Args:
        output_path: the CSV file.
        key: the key of the per-image dict in the post-processed output (or in the decollated batch), or several keys whose dicts are joined
            into one row. A value that is not a dict (e.g. the string of
            :class:`monaicxr.transforms.SegInputCheckd`) becomes one column named after its key.
        image_key: whose ``filename_or_obj`` meta names the image in the first column.
        prefixes: key -> prefix for that key's columns, e.g. ``{"severity_ref": "ref_"}``.
        skip_empty: leave out images whose values are all empty (e.g. records without any input issue).
        write_header_only: with no row to write, still write the header (``image`` and the key names), so that
            "checked, nothing found" leaves a file behind.
    """

    def __init__(
        self,
        output_path: str,
        key: str | Sequence[str] = "severity",
        image_key: str = "image",
        prefixes: Mapping[str, str] | None = None,
        skip_empty: bool = False,
        write_header_only: bool = False,
    ) -> None:
        self.output_path = Path(output_path)
        self.keys = [key] if isinstance(key, str) else list(key)
        self.key = self.keys[0]
        self.image_key = image_key
        self.prefixes = dict(prefixes or {})
        self.skip_empty = skip_empty
        self.write_header_only = write_header_only
        self.rows: list[dict] = []

    def attach(self, engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, lambda e: self.rows.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._write)

    def _collect(self, engine) -> None:
        output = engine.state.output
        outputs = output if isinstance(output, list) else [output]
        batch = getattr(engine.state, "batch", None)
        batches = batch if isinstance(batch, list) and len(batch) == len(outputs) else [{}] * len(outputs)
        for item_batch, item_out in zip(batches, outputs, strict=True):
            # keys the post-processing wrote are in the output, keys of the loaded record (e.g. the findings of
            # SegInputCheckd) stay in the decollated batch
            item = {**item_batch, **item_out} if isinstance(item_batch, Mapping) else item_out
            values: dict = {}
            for key in self.keys:
                if key not in item:
                    continue
                value = item[key]
                prefix = self.prefixes.get(key, "")
                if isinstance(value, Mapping):
                    values.update({f"{prefix}{k}": _plain(v) for k, v in value.items()})
                else:
                    values[f"{prefix}{key}"] = _plain(value)
            if not values or (self.skip_empty and all(v in ("", None) for v in values.values())):
                continue
            meta = getattr(item.get(self.image_key), "meta", {}) or {}
            self.rows.append({"image": str(meta.get("filename_or_obj", "")), **values})

    def _write(self, engine) -> None:
        if not self.rows and not self.write_header_only:
            return
        self.output_path.parent.mkdir(parents=True, exist_ok=True)
        fields = list(dict.fromkeys(k for row in self.rows for k in row)) or ["image", *self.keys]
        with self.output_path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in self.rows)
        logger.info("%d rows written to %s", len(self.rows), self.output_path)
