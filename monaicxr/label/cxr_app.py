"""The monaicxr MONAI Label app: lung and infection segmentation and COVID-19 classification of chest X-rays.

Served models are the records of :data:`monaicxr.label.models.SERVED_MODELS` whose bundle is present; each
has an infer task (:class:`~monaicxr.label.infer.CXRBundleInferTask`) and a train task
(:class:`~monaicxr.label.train.CXRBundleTrainTask`). Active learning: MONAI Label's ``random`` and ``first``
(first unlabelled image in name order) strategies.

Its ``infer`` takes an image id of the datastore (or an upload / session file the server made itself), never a
client's path: MONAI Label's runs on any file of the server's disk that a client names. ``save_label`` needs
the server started with ``--allow-writes`` and a plain label tag (see :mod:`monaicxr.label.guard`).

``--conf`` keys (MONAI Label's ``--conf key value``):

========================= ==================================================================================
``models``                ``all`` (default) or comma-separated model names
``bundles_dir``           the folder holding the bundles (default: the repository's ``bundles/``)
``model_dir``             where fine-tuned checkpoints go (default ``<studies>/.monaicxr_label/models``, or
                          ``~/.monaicxr_label/models`` for a DICOMweb studies URL)
``skip_trainers``         ``true`` to serve inference only
``dicomweb_modalities``   comma-separated modalities listed from a DICOMweb server (default ``CR,DX``)
========================= ==================================================================================
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path

import monailabel
from monailabel.config import settings
from monailabel.datastore.dicom import DICOMwebClientX
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.datastore import DefaultLabelTag
from monailabel.interfaces.exception import ImageNotFoundException
from monailabel.tasks.activelearning.first import First
from monailabel.tasks.activelearning.random import Random

from .datastore import CXR_EXTENSIONS, CXR_MODALITIES, CXRDICOMWebDatastore, CXRLocalDatastore
from .guard import (
    InvalidNameError,
    ServerPolicy,
    WritesDisabledError,
    image_not_found,
    is_trusted_path,
    valid_image_id,
    valid_tag,
)
from .infer import CXRBundleInferTask
from .models import bundle_labels, default_bundles_dir, served_models
from .train import CXRBundleTrainTask

__all__ = ["CXRLabelApp"]

logger = logging.getLogger(__name__)


def _truthy(value: str | None) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class CXRLabelApp(MONAILabelApp):
    """MONAI Label app over monaicxr's bundles (see the module docstring for ``conf``)."""

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        conf = dict(conf or {})
        self.bundles_dir = Path(conf.get("bundles_dir") or default_bundles_dir()).resolve()
        remote = studies.startswith(("http://", "https://"))
        default_model_dir = (
            Path.home() / ".monaicxr_label" / "models" if remote else Path(studies) / ".monaicxr_label" / "models"
        )
        self.model_dir = Path(conf.get("model_dir") or default_model_dir).resolve()
        self.policy = ServerPolicy.from_env()
        self.models = served_models(self.bundles_dir, conf.get("models"))
        if not self.models:
            raise ValueError(f"no servable bundle (configs/inference.json) found in {self.bundles_dir}")
        labels: dict[str, int] = {}
        for m in self.models:
            if m.kind != "classification":
                labels.update(bundle_labels(m, self.bundles_dir / m.bundle))
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name=f"monaicxr chest X-ray (MONAI Label {monailabel.__version__})",
            description="Lung and infection segmentation and COVID-19 / Non-COVID / Normal classification",
            version="0.1.0",
            labels=labels,
        )

    def init_datastore(self):
        if self.studies.startswith(("http://", "https://")):
            return self._init_dicomweb_datastore()
        return CXRLocalDatastore(
            self.studies,
            extensions=list(CXR_EXTENSIONS),
            auto_reload=settings.MONAI_LABEL_DATASTORE_AUTO_RELOAD,
            read_only=settings.MONAI_LABEL_DATASTORE_READ_ONLY,
        )

    def _init_dicomweb_datastore(self):
        # MONAI Label's version also downloads the dcmqi tools for DICOM SEG, which this app does not write
        client = DICOMwebClientX(
            url=self.studies.rstrip("/"),
            qido_url_prefix=settings.MONAI_LABEL_QIDO_PREFIX,
            wado_url_prefix=settings.MONAI_LABEL_WADO_PREFIX,
            stow_url_prefix=settings.MONAI_LABEL_STOW_PREFIX,
        )
        modalities = [m.strip() for m in self.conf.get("dicomweb_modalities", ",".join(CXR_MODALITIES)).split(",")]
        cache = settings.MONAI_LABEL_DICOMWEB_CACHE_PATH.strip() or None
        return CXRDICOMWebDatastore(client, modalities=modalities, cache_path=cache)

    def init_infers(self):
        return {m.name: CXRBundleInferTask(m, self.bundles_dir / m.bundle, self.model_dir) for m in self.models}

    def init_trainers(self):
        if _truthy(self.conf.get("skip_trainers")):
            return {}
        return {
            m.name: CXRBundleTrainTask(m, self.bundles_dir / m.bundle, self.model_dir, self.conf)
            for m in self.models
            if (self.bundles_dir / m.bundle / "configs" / "train.json").is_file()
        }

    def init_strategies(self):
        return {"random": Random(), "first": First()}

    def infer(self, request, datastore=None):
        """MONAI Label's infer, on a datastore image id or a file this server made (see the module docstring)."""
        if request.get("model") not in self._infers:
            return super().infer(request, datastore)  # which answers "no model ..." (404) before reading the image
        request = copy.deepcopy(dict(request))
        datastore = datastore or self.datastore()
        save_label = _truthy(request.get("save_label", False))
        tag = request.get("label_tag") or DefaultLabelTag.ORIGINAL.value
        if save_label and not self.policy.allow_writes:
            raise WritesDisabledError("save_label")
        if not valid_tag(tag):
            raise InvalidNameError(f"label tag {str(tag)[:100]!r}: expected letters, digits, '_' or '-'")
        image_id = request.get("image")
        if not isinstance(image_id, str) or not image_id:
            raise ImageNotFoundException(image_not_found(image_id))
        if is_trusted_path(image_id):
            save_label = False  # an upload has no datastore entry to save a label for
        else:
            uri = datastore.get_image_uri(image_id) if valid_image_id(image_id) else ""
            if not uri:
                raise ImageNotFoundException(image_not_found(image_id))
            request["image"] = uri
        # MONAI Label's infer runs on the path as given (and then saves no label); the label is saved here
        request["save_label"] = False
        result = super().infer(request, datastore)
        if save_label and result.get("file") and os.path.exists(result["file"]):
            params = result.get("params")
            result["label"] = datastore.save_label(
                image_id, result["file"], tag, {"model": request["model"], "params": params}
            )
            result["tag"] = tag
        return result

    def info(self):
        i = super().info()
        i["model_dir"] = os.fspath(self.model_dir)
        return i
