"""MONAI Label train task that fine-tunes a monaicxr bundle on the datastore's labels.

A subclass of MONAI Label's ``BundleTrainTask`` (which runs the bundle's ``train.json`` through
``monai.bundle.run`` with overrides and starts from the current weights through a ``CheckpointLoader``), with
what monaicxr's bundles need on top:

- the bundle's task overlays (``configs/task_3level.json``) are merged with ``train.json``;
- the datastore's records become a monaicxr datalist file (``datalist_file``), the bundles' one data source:
  segmentation masks are split into the ``lung`` / ``infection`` masks the bundle reads (see
  :func:`monaicxr.label.models.split_label`), classifier labels come from ``classes.csv`` in the studies folder (``image,class``);
- everything is written under ``<model_dir>/<name>/`` (the run's ``output_dir``), never into the bundle: the
  best checkpoint lands in ``<model_dir>/<name>/models/model.pt``, where the infer task looks first;
- fine-tuning starts from that checkpoint when it exists, else from the bundle's ``models/model.pt``.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path
from typing import Any

import monai.bundle
import numpy as np
from monailabel.interfaces.datastore import Datastore
from monailabel.tasks.train.bundle import BundleConstants, BundleTrainTask
from PIL import Image

from monaicxr.data.errors import DatasetError
from monaicxr.io import read_cxr

from .infer import checkpoint_paths
from .models import CLASSIFICATION, ServedModel, bundle_labels, split_label

__all__ = ["CXRBundleTrainTask", "read_classes_csv", "CLASSES_CSV"]

logger = logging.getLogger(__name__)

CLASSES_CSV = "classes.csv"


def read_classes_csv(studies: str) -> dict[str, str]:
    """``<studies>/classes.csv`` (columns ``image`` and ``class``) as ``{image id or file name: class}``."""
    path = Path(studies) / CLASSES_CSV
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and not {"image", "class"} <= set(rows[0]):
        raise DatasetError(f"{path}: needs the columns 'image' and 'class', found {list(rows[0])}")
    return {r["image"].strip(): r["class"].strip() for r in rows}


class _Constants(BundleConstants):
    def configs(self):
        return ["train.json"]


class CXRBundleTrainTask(BundleTrainTask):
    """Fine-tune one :class:`~monaicxr.label.models.ServedModel` on the labels of a MONAI Label datastore.

    Args:
        model: the served model record.
        bundle_dir: the bundle folder.
        model_dir: where this app keeps fine-tuned models; the run folder is ``<model_dir>/<name>``.
        conf: the app's ``--conf`` pairs.

    Request keys (beside MONAI Label's ``max_epochs``, ``val_split``, ``pretrained``, ``device``):
    ``batch_size``, ``learning_rate``.
    """

    def __init__(self, model: ServedModel, bundle_dir: Path, model_dir: Path, conf: dict[str, str]) -> None:
        self.model = model
        self.output_dir = Path(model_dir) / model.name
        self._model_dir = Path(model_dir)
        super().__init__(str(bundle_dir), conf, const=_Constants(), load_strict=True)
        self._config_files = [os.path.join(self.bundle_path, "configs", c) for c in model.train_configs]
        self.bundle_config = self._load_bundle_config(self.bundle_path, self._config_files)

    def _load_bundle_config(self, path, config):
        parser = monai.bundle.ConfigParser()
        parser.read_config(config)
        parser.config.update({self.const.key_bundle_root(): path})
        return parser

    def config(self) -> dict[str, Any]:
        c = super().config()
        c.update({"max_epochs": 10, "val_split": 0.2, "multi_gpu": False, "tracking": ["None"]})
        c.pop("tracking_uri", None)
        c.pop("tracking_experiment_name", None)
        return c

    def _fetch_datalist(self, request, datastore: Datastore) -> list[dict[str, Any]]:
        if self.model.kind == CLASSIFICATION:
            return self._classification_records(datastore)
        return self._segmentation_records(datastore)

    def _segmentation_records(self, datastore: Datastore) -> list[dict[str, Any]]:
        masks = self.output_dir / "masks"
        masks.mkdir(parents=True, exist_ok=True)
        records = []
        for d in datastore.datalist():
            label, _ = read_cxr(d["label"])
            lung, infection = split_label(label, d["label"])
            stem = Path(d["label"]).name.split(".")[0]
            record = {"image": d["image"], "lung": str(masks / f"{stem}_lung.png")}
            Image.fromarray(lung.astype(np.uint8) * 255).save(record["lung"])
            if self.model.task != "lung":
                record["infection"] = str(masks / f"{stem}_infection.png")
                Image.fromarray(infection.astype(np.uint8) * 255).save(record["infection"])
            records.append(record)
        return records

    def _classification_records(self, datastore: Datastore) -> list[dict[str, Any]]:
        names = bundle_labels(self.model, Path(self.bundle_path))
        classes = read_classes_csv(datastore._datastore_path) if hasattr(datastore, "_datastore_path") else {}
        records = []
        for image_id in datastore.list_images():
            uri = datastore.get_image_uri(image_id)
            cls = classes.get(image_id, classes.get(os.path.basename(uri)))
            if cls is None:
                continue
            if cls not in names:
                raise DatasetError(f"{CLASSES_CSV}: {image_id} has class {cls!r}; expected one of {names}")
            records.append({"image": uri, "class_index": names.index(cls), "class": cls})
        return records

    def _partition_datalist(self, datalist, request, shuffle=False):
        if self.model.kind != CLASSIFICATION:
            return super()._partition_datalist(datalist, request, shuffle)
        # the classifier's checks need every class in training and in validation: split each class
        val_split = float(request.get("val_split", 0.2))
        train, val = [], []
        for c in sorted({d["class_index"] for d in datalist}):
            items = [d for d in datalist if d["class_index"] == c]
            n_val = min(max(1, round(len(items) * val_split)), len(items) - 1) if len(items) > 1 else 0
            val += items[:n_val]
            train += items[n_val:]
        return train, val

    def _load_checkpoint(self, model_pytorch, pretrained, train_handlers):
        # start from this app's latest fine-tuned weights when there are some, else from the bundle's
        for path in reversed(checkpoint_paths(self.model, Path(self.bundle_path), self._model_dir, start=True)):
            if os.path.exists(path):
                return super()._load_checkpoint(path, pretrained, train_handlers)
        logger.info("%s: no weights to start from, training from scratch", self.model.name)

    def __call__(self, request, datastore: Datastore):
        request = {**request, "multi_gpu": False, "tracking": "None"}
        return super().__call__(request, datastore)

    def _update_overrides(self, overrides: dict[str, Any]) -> dict[str, Any]:
        train = overrides.pop(self.const.key_train_dataset_data())
        val = overrides.pop(self.const.key_validate_dataset_data(), None) or []
        if not train or not val:
            raise DatasetError(
                f"{self.model.name}: training needs labelled images for training and validation, got "
                f"{len(train)} and {len(val)}; label more images (final labels in the datastore"
                + (f", classes in {CLASSES_CSV}" if self.model.kind == CLASSIFICATION else "")
                + ")"
            )
        self.output_dir.mkdir(parents=True, exist_ok=True)
        datalist = {
            "training": train,
            "validation": val,
            "test": [],
            "source": "monailabel datastore",
            "synthetic": False,
        }
        if self.model.kind == CLASSIFICATION:
            datalist["classes"] = bundle_labels(self.model, Path(self.bundle_path))
        datalist_file = self.output_dir / "monailabel_datalist.json"
        datalist_file.write_text(json.dumps(datalist, indent=2))
        overrides.update(
            {
                "output_dir": str(self.output_dir),
                "datalist_file": str(datalist_file),
                "num_workers": 0,
                "show_progress": False,
                "resume": False,
            }
        )
        return overrides

    def run_single_gpu(self, request, overrides):
        for key in ("batch_size", "learning_rate"):
            if key in request:
                overrides[key] = request[key]
        monai.bundle.run(
            run_id="run",
            meta_file=self.bundle_metadata_path,
            config_file=self._config_files,
            logging_file=os.path.join(self.bundle_path, "configs", "logging.conf"),
            **overrides,
        )
