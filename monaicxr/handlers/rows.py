"""Ignite handler that gathers one dictionary per image from an evaluator's output and writes them as CSV."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from monai.utils import IgniteInfo, min_version, optional_import

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")

__all__ = ["RowsCSVWriter"]

logger = logging.getLogger(__name__)


class RowsCSVWriter:
    """Write ``item[key]`` (a flat dict, e.g. the severity row of :class:`monaicxr.transforms.Severityd`) per image.

    MONAI's ``MetricsSaver`` writes metric tensors, not per-image records of mixed types; this writes those.
    ``None`` values are written as empty cells. Single-process only.

    Args:
        output_path: the CSV file.
        key: the key of the per-image dict in the post-processed output.
        image_key: whose ``filename_or_obj`` meta names the image in the first column.
    """

    def __init__(self, output_path: str, key: str = "severity", image_key: str = "image") -> None:
        self.output_path = Path(output_path)
        self.key, self.image_key = key, image_key
        self.rows: list[dict] = []

    def attach(self, engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, lambda e: self.rows.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._write)

    def _collect(self, engine) -> None:
        output = engine.state.output
        for item in output if isinstance(output, list) else [output]:
            if self.key not in item:
                continue
            meta = getattr(item.get(self.image_key), "meta", {}) or {}
            self.rows.append({"image": str(meta.get("filename_or_obj", "")), **item[self.key]})

    def _write(self, engine) -> None:
        if not self.rows:
            return
        self.output_path.parent.mkdir(parents=True, exist_ok=True)
        fields = list(dict.fromkeys(k for row in self.rows for k in row))
        with self.output_path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in self.rows)
        logger.info("%d rows written to %s", len(self.rows), self.output_path)
