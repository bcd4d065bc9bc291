"""Datastores for chest radiographs: a local folder of PNG / JPEG / DICOM files, or a DICOMweb server of CR / DX.

MONAI Label's defaults are made for CT: the local datastore lists NIfTI, NRRD, JPEG, PNG and TIFF but not
DICOM, and the DICOMweb datastore searches ``Modality=CT`` and converts each series to NIfTI (which drops the
photometric interpretation, so a MONOCHROME1 radiograph would come out as a negative). Here the local store
also lists ``*.dcm`` / ``*.dicom``, and the DICOMweb store searches each of ``modalities`` (one QIDO query per
modality, since QIDO-RS has no OR on ``Modality``) and hands the DICOM file itself to the infer tasks, whose
reader (:class:`monaicxr.io.CXRImageReader`) applies the photometry.

:class:`CXRLocalDatastore` is MONAI Label's local datastore that takes image ids and label tags as names, never
as paths: MONAI Label joins them to the studies folder as they come, so ``../x``, ``..`` or an absolute path
reach files outside it. Here an id must be one plain file name (:func:`monaicxr.label.guard.valid_image_id`)
and a tag a plain folder name (:func:`~monaicxr.label.guard.valid_tag`); an invalid id reads as an unknown
one (so an answer never tells whether a path outside exists), an invalid tag or new id raises
:class:`~monaicxr.label.guard.InvalidNameError`, and every file written or removed is checked to lie in the
images folder or in ``labels/<tag>/``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from cachetools import TTLCache, cached
from monailabel.config import settings
from monailabel.datastore.dicom import DICOMWebDatastore
from monailabel.datastore.local import LocalDatastore
from monailabel.interfaces.exception import ImageNotFoundException, LabelNotFoundException
from pydicom.dataset import Dataset

from .guard import InvalidNameError, image_not_found, valid_image_id, valid_tag

__all__ = ["CXR_EXTENSIONS", "CXR_MODALITIES", "CXRDICOMWebDatastore", "CXRLocalDatastore"]

logger = logging.getLogger(__name__)

CXR_EXTENSIONS = ("*.png", "*.jpg", "*.jpeg", "*.dcm", "*.dicom", "*.tif", "*.tiff")
CXR_MODALITIES = ("CR", "DX")


class CXRDICOMWebDatastore(DICOMWebDatastore):
    """MONAI Label's DICOMweb datastore listing the series of several modalities (CR and DX by default).

    Args:
        client: a ``dicomweb_client`` client.
        modalities: the DICOM modalities to list.
        kwargs: passed on to ``DICOMWebDatastore`` (``cache_path``, ``fetch_by_frame``).
    """

    def __init__(self, client, modalities: Sequence[str] = CXR_MODALITIES, **kwargs) -> None:
        self.modalities = tuple(modalities)
        kwargs.setdefault("convert_to_nifti", False)
        super().__init__(client=client, search_filter={"Modality": self.modalities[0]}, **kwargs)

    def name(self) -> str:
        return f"DICOMweb datastore ({'/'.join(self.modalities)})"

    @cached(cache=TTLCache(maxsize=16, ttl=settings.MONAI_LABEL_DICOMWEB_CACHE_EXPIRY))
    def list_images(self) -> list[str]:
        series: list[str] = []
        for modality in self.modalities:
            for ds in self._client.search_for_series(search_filters={"Modality": modality}):
                series.append(str(Dataset.from_json(ds)["SeriesInstanceUID"].value))
        logger.debug("DICOMweb series of %s: %d", self.modalities, len(series))
        return series


def _check_tag(tag: str) -> None:
    if not valid_tag(tag):
        raise InvalidNameError(f"label tag {str(tag)[:100]!r}: expected letters, digits, '_' or '-' (e.g. final)")


def _inside(path: str, folder: str) -> bool:
    return os.path.dirname(os.path.realpath(path)) == os.path.realpath(folder)


class CXRLocalDatastore(LocalDatastore):
    """MONAI Label's local datastore with image ids and label tags kept inside the studies folder.

    Takes the arguments of ``LocalDatastore``; see the module docstring for what is refused.
    """

    def _known(self, image_id: str) -> bool:
        return valid_image_id(image_id) and image_id in self._datastore.objects

    def get_image_uri(self, image_id: str) -> str:
        return super().get_image_uri(image_id) if self._known(image_id) else ""

    def get_image_info(self, image_id: str):
        return super().get_image_info(image_id) if self._known(image_id) else {}

    def get_label_uri(self, label_id: str, label_tag: str) -> str:
        if not (self._known(label_id) and valid_tag(label_tag)):
            return ""
        return super().get_label_uri(label_id, label_tag)

    def get_label_info(self, label_id: str, label_tag: str):
        if not (self._known(label_id) and valid_tag(label_tag)):
            return {}
        return super().get_label_info(label_id, label_tag)

    def get_labels_by_image_id(self, image_id: str):
        return super().get_labels_by_image_id(image_id) if self._known(image_id) else {}

    def add_image(self, image_id: str, image_filename: str, image_info) -> str:
        new_id, ext = self._to_id(os.path.basename(image_filename))
        image_id = image_id or new_id
        if not valid_image_id(image_id):
            raise InvalidNameError(
                f"image id {str(image_id)[:300]!r}: expected a plain file name without '/', '\\' or a leading '.'"
            )
        if f"*{ext}" not in self._extensions:
            raise InvalidNameError(f"image file suffix {ext!r}: expected one of {sorted(self._extensions)}")
        if not _inside(os.path.join(self._datastore.image_path(), image_id + ext), self._datastore.image_path()):
            raise InvalidNameError(f"image id {image_id!r} does not name a file in the studies folder")
        return super().add_image(image_id, image_filename, image_info)

    def remove_image(self, image_id: str) -> None:
        if not self._known(image_id):
            raise ImageNotFoundException(image_not_found(image_id))
        return super().remove_image(image_id)

    def save_label(self, image_id: str, label_filename: str, label_tag: str, label_info) -> str:
        if not self._known(image_id):
            raise ImageNotFoundException(image_not_found(image_id))
        _check_tag(label_tag)
        _, ext = self._to_id(os.path.basename(label_filename))
        folder = self._datastore.label_path(label_tag)
        if not _inside(os.path.join(folder, image_id + ext), folder) or not _inside(
            folder, self._datastore.label_path(None)
        ):
            raise InvalidNameError(f"label {image_id!r} / {label_tag!r} does not name a file in the labels folder")
        return super().save_label(image_id, label_filename, label_tag, label_info)

    def remove_label(self, label_id: str, label_tag: str) -> None:
        if not self.get_label_uri(label_id, label_tag):
            raise LabelNotFoundException(f"label {str(label_id)[:300]!r} with tag {str(label_tag)[:100]!r} not found")
        return super().remove_label(label_id, label_tag)

    def update_image_info(self, image_id: str, info) -> None:
        if not self._known(image_id):
            raise ImageNotFoundException(image_not_found(image_id))
        return super().update_image_info(image_id, info)

    def update_label_info(self, label_id: str, label_tag: str, info) -> None:
        if not self.get_label_uri(label_id, label_tag):
            raise LabelNotFoundException(f"label {str(label_id)[:300]!r} with tag {str(label_tag)[:100]!r} not found")
        return super().update_label_info(label_id, label_tag, info)
