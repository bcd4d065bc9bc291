"""Load chest radiographs with :class:`~monaicxr.io.CXRImageReader` only, so that a bad file is named.

MONAI's ``LoadImage(reader=CXRImageReader())`` also registers MONAI's default readers and falls back to them
when the given reader fails. For a damaged PNG that hides the reader's message (which names the file):
``PILReader`` opens the file lazily, "succeeds", and then fails inside ``get_data`` with PIL's bare
``OSError: image file is truncated``, naming no file. Mid-epoch, with a dataset of thousands of images, that
error is useless. :class:`LoadCXRImage` passes the reader to ``LoadImage`` as its runtime reader, which
MONAI uses alone, so the reader's :class:`~monaicxr.data.records.DatasetError` (``"<path>: cannot be read
as an image (...)"``) reaches the user unchanged. Everything else is MONAI's ``LoadImage``.
"""

from __future__ import annotations

import numpy as np
from monai.config import DtypeLike, KeysCollection
from monai.data import ImageReader
from monai.transforms import LoadImage, LoadImaged

from monaicxr.io.reader import CXRImageReader

__all__ = ["LoadCXRImage", "LoadCXRImaged"]


class LoadCXRImage(LoadImage):
    """MONAI's ``LoadImage`` with :class:`~monaicxr.io.CXRImageReader` as its only reader (no fallback).

    Args:
        image_only: return only the ``MetaTensor`` (default) or also the metadata dict.
        dtype: data type of the loaded array.
        ensure_channel_first: add the channel dimension (default ``True``).
        invert_monochrome1: passed to :class:`~monaicxr.io.CXRImageReader`.
        apply_voi: passed to :class:`~monaicxr.io.CXRImageReader`.
        bit_depth, float_range: explicit bit depth rules, passed to :class:`~monaicxr.io.CXRImageReader`.
        kwargs: other ``LoadImage`` arguments (``simple_keys``, ``prune_meta_pattern``, ...).

    Example::

        image = LoadCXRImage()("chest.png")  # (1, H, W); a damaged file raises DatasetError naming it
    """

    def __init__(
        self,
        image_only: bool = True,
        dtype: DtypeLike | None = np.float32,
        ensure_channel_first: bool = True,
        invert_monochrome1: bool = True,
        apply_voi: bool = True,
        bit_depth: int | None = None,
        float_range: tuple[float, float] | None = None,
        **kwargs,
    ) -> None:
        self.cxr_reader = CXRImageReader(
            invert_monochrome1=invert_monochrome1, apply_voi=apply_voi, bit_depth=bit_depth, float_range=float_range
        )
        super().__init__(
            reader=self.cxr_reader, image_only=image_only, dtype=dtype, ensure_channel_first=ensure_channel_first,
            **kwargs,
        )  # fmt: skip

    def __call__(self, filename, reader: ImageReader | None = None):
        # a runtime reader is used alone: its error, which names the file, is not replaced by another reader's
        return super().__call__(filename, reader=reader or self.cxr_reader)


class LoadCXRImaged(LoadImaged):
    """Dictionary twin of :class:`LoadCXRImage`: MONAI's ``LoadImaged`` reading with ``CXRImageReader`` only.

    Args:
        keys: keys of the file paths to load.
        image_only: see :class:`LoadCXRImage`.
        dtype: see :class:`LoadCXRImage`.
        ensure_channel_first: see :class:`LoadCXRImage`.
        invert_monochrome1: see :class:`LoadCXRImage`.
        apply_voi: see :class:`LoadCXRImage`.
        bit_depth, float_range: see :class:`LoadCXRImage`.
        allow_missing_keys: do not raise for a missing key.
        kwargs: other ``LoadImaged`` arguments (``meta_keys``, ``meta_key_postfix``, ``overwriting``).

    Example::

        {"_target_": "monaicxr.transforms.LoadCXRImaged", "keys": "image"}
    """

    def __init__(
        self,
        keys: KeysCollection,
        image_only: bool = True,
        dtype: DtypeLike | None = np.float32,
        ensure_channel_first: bool = True,
        invert_monochrome1: bool = True,
        apply_voi: bool = True,
        bit_depth: int | None = None,
        float_range: tuple[float, float] | None = None,
        allow_missing_keys: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(
            keys, image_only=image_only, dtype=dtype, ensure_channel_first=ensure_channel_first,
            allow_missing_keys=allow_missing_keys, **kwargs,
        )  # fmt: skip
        self._loader = LoadCXRImage(
            image_only=image_only, dtype=dtype, ensure_channel_first=ensure_channel_first,
            invert_monochrome1=invert_monochrome1, apply_voi=apply_voi, bit_depth=bit_depth, float_range=float_range,
        )  # fmt: skip

    def register(self, reader: ImageReader) -> None:
        raise NotImplementedError("LoadCXRImaged reads with CXRImageReader only; use MONAI's LoadImaged for others.")
