"""Datastores for chest radiographs: a local folder of PNG / JPEG / DICOM files, or a DICOMweb server of CR / DX.

MONAI Label's defaults are made for CT: the local datastore lists NIfTI, NRRD, JPEG, PNG and TIFF but not
DICOM, and the DICOMweb datastore searches ``Modality=CT`` and converts each series to NIfTI (which drops the
photometric interpretation, so a MONOCHROME1 radiograph would come out as a negative). Here the local store
also lists ``*.dcm`` / ``*.dicom``, and the DICOMweb store searches each of ``modalities`` (one QIDO query per
modality, since QIDO-RS has no OR on ``Modality``) and hands the DICOM file itself to the infer tasks, whose
reader (:class:`monaicxr.io.CXRImageReader`) applies the photometry.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from cachetools import TTLCache, cached
from monailabel.config import settings
from monailabel.datastore.dicom import DICOMWebDatastore
from pydicom.dataset import Dataset

__all__ = ["CXR_EXTENSIONS", "CXR_MODALITIES", "CXRDICOMWebDatastore"]

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
