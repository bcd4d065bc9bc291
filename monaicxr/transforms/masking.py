"""Mask a radiograph with its lung mask: keep the lungs (segment-then-classify) or remove them (shortcut check).

:class:`MaskImage` multiplies an image by a binary lung mask. ``mode="keep"`` zeroes everything outside the
lungs, so a classifier sees only lung fields; ``mode="remove"`` zeroes the lungs and keeps the rest, so a
classifier that still scores well is reading something other than the lungs (text markers, devices, the
body outline, the hospital's exposure settings).

What is MONAI's or scikit-image's and what is hand-written here:

- resizing the mask to the image is MONAI's ``Resize`` (``mode="nearest"``, so a binary mask stays binary);
- the optional dilation is scikit-image's ``morphology.dilation`` with a ``disk`` footprint;
- the mask check (only 0/1 or 0/255) is :class:`monaicxr.transforms.BinarizeMask`;
- hand-written: the checks that the mask belongs to the image (channel count, number of spatial dimensions,
  aspect ratio before resizing), the empty-mask policy, and the ``masked_fill`` itself (one line).

Every error names the image file and the mask file (their ``filename_or_obj`` meta entries).

Example (dictionary form, after loading the image and its mask; the bundle overlay
``bundles/simple_cnn/configs/lung_masked.json`` inserts exactly this)::

    Compose([
        LoadImaged(keys=["image", "lung"], reader=CXRImageReader(), image_only=True, ensure_channel_first=True),
        MaskImaged(keys="image", mask_key="lung", mode="keep"),
        DeleteItemsd(keys="lung"),
        ...
    ])
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms import LoadImaged, MapTransform, Resize, Transform
from monai.utils import convert_to_tensor
from skimage.morphology import dilation, disk

from monaicxr.data.errors import DatasetError

from .array import BinarizeMask

__all__ = [
    "MASK_MODES",
    "EMPTY_POLICIES",
    "LUNG_INPUTS",
    "LungInputd",
    "MaskImage",
    "MaskImaged",
    "insert_after_loading",
]

logger = logging.getLogger(__name__)

#: ``keep``: lungs kept, the rest set to ``fill_value``; ``remove``: lungs set to ``fill_value``, the rest kept
MASK_MODES = ("keep", "remove")
#: what an empty mask does: ``error`` raises, ``pass`` returns the image unchanged and logs a warning
EMPTY_POLICIES = ("error", "pass")
#: meta entry written on every masked image (the same key on every item, so that batches collate)
STATUS_KEY = "lung_mask_status"


def _name(x) -> str:
    meta = getattr(x, "meta", None) or {}
    return str(meta.get("filename_or_obj", "<array>"))


class MaskImage(Transform):
    """Multiply a channel-first image by a binary mask of the same scene.

    The mask may be ``(1, *spatial)`` or channel-less ``(*spatial)``, with values 0/1 or 0/255 (anything else
    is an error, see :class:`monaicxr.transforms.BinarizeMask`). When its size differs from the image's it is
    resized to the image with MONAI's ``Resize`` (nearest neighbour), provided the aspect ratios agree;
    ``dilation`` then grows it by that many image pixels (scikit-image ``dilation`` with a ``disk``
    footprint, 2D only), so that a tight mask does not clip the lung border.

    Every returned image carries a ``lung_mask_status`` meta entry: ``"kept lungs"`` / ``"removed lungs"``, or
    ``"empty mask: not masked"`` where an empty mask was passed through.

    Args:
        mode: ``"keep"`` (zero outside the lungs) or ``"remove"`` (zero the lungs).
        dilation: grow the mask by this many pixels (0: as is).
        on_empty: ``"error"`` (an empty mask raises :class:`monaicxr.data.records.DatasetError` naming the
            files) or ``"pass"`` (the image is returned unmasked, with a logged warning and the status above).
        fill_value: the value written where the image is masked out.
        allow_resize: resize a mask whose size differs from the image's; ``False`` makes that an error.
        aspect_tolerance: largest relative difference of the aspect ratios (height / width) of mask and image
            that resizing accepts; a larger one means the mask is probably not this image's.
        allow_any: threshold a mask with other values at half its maximum instead of refusing it.

    Raises:
        DatasetError: a mask with more than one channel or a different number of spatial dimensions, a size
            mismatch that cannot be resized, an empty mask (``on_empty="error"``), values other than 0/1 or
            0/255.

    Example::

        masked = MaskImage(mode="keep", dilation=3)(image, lung)   # image (1, H, W), lung (1, h, w)
    """

    def __init__(
        self,
        mode: str = "keep",
        dilation: int = 0,
        on_empty: str = "error",
        fill_value: float = 0.0,
        allow_resize: bool = True,
        aspect_tolerance: float = 0.02,
        allow_any: bool = False,
    ) -> None:
        if mode not in MASK_MODES:
            raise ValueError(f"mode must be one of {MASK_MODES}, got {mode!r}")
        if on_empty not in EMPTY_POLICIES:
            raise ValueError(f"on_empty must be one of {EMPTY_POLICIES}, got {on_empty!r}")
        if int(dilation) != dilation or dilation < 0:
            raise ValueError(f"dilation must be a whole number of pixels >= 0, got {dilation!r}")
        self.mode = mode
        self.dilation = int(dilation)
        self.on_empty = on_empty
        self.fill_value = float(fill_value)
        self.allow_resize = allow_resize
        self.aspect_tolerance = float(aspect_tolerance)
        self.binarize = BinarizeMask(allow_any=allow_any)

    def _mask_for(self, img: torch.Tensor, mask: NdarrayOrTensor, where: str) -> torch.Tensor:
        """The mask as a bool (1, *spatial) tensor of the image's spatial size (checked, resized, dilated)."""
        m = convert_to_tensor(mask, track_meta=True)
        spatial = tuple(img.shape[1:])
        if m.ndim == len(spatial):  # channel-less mask
            m = m.unsqueeze(0)
        if m.ndim != len(spatial) + 1 or m.shape[0] != 1:
            raise DatasetError(
                f"{where}: the mask must be (1, *spatial) or (*spatial) with {len(spatial)} spatial dimensions "
                f"like the image {tuple(img.shape)}, got {tuple(m.shape)}"
            )
        try:
            m = self.binarize(m)
        except DatasetError as e:
            raise DatasetError(f"{where}: {e}") from e
        size = tuple(m.shape[1:])
        if size != spatial:
            if not self.allow_resize:
                raise DatasetError(f"{where}: mask size {size} differs from image size {spatial} (allow_resize=False)")
            if len(spatial) >= 2:
                ratio_m, ratio_i = size[0] / size[1], spatial[0] / spatial[1]
                if abs(ratio_m / ratio_i - 1.0) > self.aspect_tolerance:
                    raise DatasetError(
                        f"{where}: mask size {size} and image size {spatial} have different aspect ratios "
                        f"({ratio_m:.3f} vs {ratio_i:.3f}); is it the mask of this image?"
                    )
            m = Resize(spatial_size=spatial, mode="nearest")(m)
        keep = convert_to_tensor(m, track_meta=False) > 0.5
        if self.dilation and keep.any():
            if len(spatial) != 2:
                raise ValueError(f"dilation is implemented for 2D images only, got spatial shape {spatial}")
            grown = dilation(keep[0].cpu().numpy(), disk(self.dilation))
            keep = torch.from_numpy(np.ascontiguousarray(grown))[None]
        return keep.to(img.device)

    def __call__(self, img: NdarrayOrTensor, mask: NdarrayOrTensor) -> torch.Tensor:
        t = convert_to_tensor(img, track_meta=True)
        where = f"{_name(img)} (mask {_name(mask)})"
        if t.ndim < 2:
            raise DatasetError(f"{where}: the image must be channel-first (C, *spatial), got shape {tuple(t.shape)}")
        keep = self._mask_for(t, mask, where)
        if not keep.any():
            if self.on_empty == "error":
                raise DatasetError(
                    f"{where}: the lung mask is empty after resizing to {tuple(t.shape[1:])}; "
                    "fix or leave out this item, or pass on_empty='pass' to use the image unmasked"
                )
            logger.warning("%s: empty lung mask, image passed through unmasked", where)
            return self._with_status(t.clone(), "empty mask: not masked")
        hidden = ~keep if self.mode == "keep" else keep
        out = t.masked_fill(hidden, self.fill_value)
        return self._with_status(out, "kept lungs" if self.mode == "keep" else "removed lungs")

    @staticmethod
    def _with_status(t: torch.Tensor, status: str) -> torch.Tensor:
        meta = getattr(t, "meta", None)
        if meta is not None:
            meta[STATUS_KEY] = status
        return t


def _require_mask(d: Mapping, mask_key: str, image) -> None:
    """Refuse an item whose mask is missing or was never loaded (still a path), naming the image."""
    if mask_key not in d or isinstance(d[mask_key], str):
        state = "missing" if mask_key not in d else f"not loaded ({d[mask_key]!r})"
        raise DatasetError(
            f"{_name(image)}: mask key {mask_key!r} is {state}; every item needs a loaded lung mask "
            "(monaicxr predict-lungs writes a datalist with one per item)"
        )


class MaskImaged(MapTransform):
    """Dictionary twin of :class:`MaskImage`: each key in ``keys`` is masked with ``d[mask_key]``.

    A missing mask key is an error naming the image file, with the hint that ``monaicxr predict-lungs`` writes
    a datalist in which every item has one. The mask itself stays in the dictionary; drop it afterwards with
    MONAI's ``DeleteItemsd`` if its size differs between items (it would not collate).

    Args:
        keys: image keys to mask.
        mask_key: key of the loaded mask, ``(1, H, W)`` or ``(H, W)``.
        mode, dilation, on_empty, fill_value, allow_resize, aspect_tolerance, allow_any: see :class:`MaskImage`.
        allow_missing_keys: as in MONAI (applies to ``keys``; a missing ``mask_key`` is always an error).
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        mask_key: str = "lung",
        mode: str = "keep",
        dilation: int = 0,
        on_empty: str = "error",
        fill_value: float = 0.0,
        allow_resize: bool = True,
        aspect_tolerance: float = 0.02,
        allow_any: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.mask_key = mask_key
        self.inner = MaskImage(mode, dilation, on_empty, fill_value, allow_resize, aspect_tolerance, allow_any)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            _require_mask(d, self.mask_key, d[key])
            d[key] = self.inner(d[key], d[self.mask_key])
        return d


def insert_after_loading(transforms: Sequence, extra: Sequence, key: str = "image") -> list:
    """``transforms`` with ``extra`` inserted right after the ``LoadImaged`` that loads ``key``.

    Hand-written glue for bundle overlays, which cannot insert into a list of another config file without
    naming a list position: ``$insert_after_loading(@train#deterministic_transforms, @lung_masking)``.

    Raises:
        ValueError: no ``LoadImaged`` in ``transforms`` loads ``key`` (the message lists what is there).
    """
    transforms = list(transforms)
    for i, t in enumerate(transforms):
        if isinstance(t, LoadImaged) and key in t.keys:
            return transforms[: i + 1] + list(extra) + transforms[i + 1 :]
    names = [type(t).__name__ for t in transforms]
    raise ValueError(f"no LoadImaged loads {key!r} in the transforms {names}; cannot insert {len(extra)} after it")


#: meta entry of the cropped image: the box in film pixels, ``[row0, col0, row1, col1]`` (end exclusive); the
#: whole film's box where nothing was cropped. ``monaicxr predict`` puts the Grad-CAM back into it.
BOX_KEY = "lung_box"
#: how a classifier sees the film: ``full`` (the whole film), ``crop`` (the lungs' bounding box),
#: ``mask`` (the whole film, zero outside the lungs), ``crop_mask`` (both)
LUNG_INPUTS = ("full", "crop", "mask", "crop_mask")


class LungInputd(MapTransform):
    """Cut a film down to its lungs for a classifier: bounding-box crop, then resize image and mask together.

    The lung mask (``d[lung_key]``, 0/1 or 0/255, checked by :class:`monaicxr.transforms.BinarizeMask` and
    resized to the image like :class:`MaskImage` does) gives the box: MONAI's
    ``generate_spatial_bounding_box`` with ``margin`` film pixels on every side, clipped to the film. The image
    (bilinear, anti-aliased) and the mask (nearest) are then resized to ``spatial_size`` with MONAI's
    ``Resize``; the mask stays in the dictionary as 0/1 so that random spatial transforms can move it with the
    image and a later :class:`MaskImaged` zeroes what lies outside it. ``mode="full"`` and ``mode="mask"``
    resize the whole film; the masking itself is left to :class:`MaskImaged` so that intensity
    normalisation and augmentation can run between the two.

    Hand-written here: only the choice between the modes and the empty-mask policy; the box and the resizing
    are MONAI's.

    Args:
        keys: the image key(s).
        lung_key: key of the loaded lung mask.
        mode: one of :data:`LUNG_INPUTS`.
        spatial_size: the network's input size.
        margin: film pixels added around the lungs' box.
        on_empty: ``"error"`` (an empty mask raises :class:`DatasetError` naming both files) or ``"pass"``
            (the whole film is used and a warning logged).

    Raises:
        DatasetError: a missing or unloaded mask, a mask that does not fit the image, an empty mask with
            ``on_empty="error"``.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        lung_key: str = "lung",
        mode: str = "crop_mask",
        spatial_size: Sequence[int] = (224, 224),
        margin: int = 8,
        on_empty: str = "error",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if mode not in LUNG_INPUTS:
            raise ValueError(f"mode must be one of {LUNG_INPUTS}, got {mode!r}")
        if on_empty not in EMPTY_POLICIES:
            raise ValueError(f"on_empty must be one of {EMPTY_POLICIES}, got {on_empty!r}")
        if int(margin) != margin or margin < 0:
            raise ValueError(f"margin must be a whole number of pixels >= 0, got {margin!r}")
        self.lung_key = lung_key
        self.mode = mode
        self.margin = int(margin)
        self.on_empty = on_empty
        self.spatial_size = tuple(int(s) for s in spatial_size)
        self._checker = MaskImage(mode="keep")
        self._resize_image = Resize(self.spatial_size, mode="bilinear", anti_aliasing=True)
        self._resize_mask = Resize(self.spatial_size, mode="nearest")

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        from monai.transforms.utils import generate_spatial_bounding_box

        d = dict(data)
        for key in self.key_iterator(d):
            img = convert_to_tensor(d[key], track_meta=True)
            _require_mask(d, self.lung_key, img)
            where = f"{_name(img)} (mask {_name(d[self.lung_key])})"
            keep = self._checker._mask_for(img, d[self.lung_key], where)
            if self.mode in ("crop", "crop_mask"):
                if not keep.any():
                    if self.on_empty == "error":
                        raise DatasetError(f"{where}: the lung mask is empty; no lung box to crop to")
                    logger.warning("%s: empty lung mask, the whole film is used", where)
                else:
                    start, end = generate_spatial_bounding_box(keep, margin=self.margin, allow_smaller=True)
                    box = tuple(slice(s, e) for s, e in zip(start, end, strict=True))
                    img = img[(slice(None), *box)]
                    keep = keep[(slice(None), *box)]
                    img.meta[BOX_KEY] = [int(v) for v in (*start, *end)]
            if BOX_KEY not in img.meta:
                img.meta[BOX_KEY] = [0] * (img.ndim - 1) + [int(v) for v in img.shape[1:]]
            d[key] = self._resize_image(img)
            d[self.lung_key] = self._resize_mask(keep.to(torch.float32))
        return d
