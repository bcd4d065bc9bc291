"""Segment the lungs inside a transform chain, so that a lung-cropped classifier needs nothing but the film.

:class:`PredictLungsd` runs a lung-segmentation network on ``d["image"]`` and writes the binary lung mask of
the image's own size to ``d[lung_key]``; :class:`monaicxr.transforms.LungInputd` and
:class:`monaicxr.transforms.MaskImaged` then cut the classifier's input from it. It is how the classifier
bundles' ``inference.json`` (and so MONAI Label and ``monaicxr predict``) see the same lungs at inference that
training read from the dataset's masks.

MONAI's pieces: ``Resize`` (area down, nearest back), the sigmoid, ``KeepLargestConnectedComponent`` and
``FillHoles`` through :class:`monaicxr.transforms.KeepLargestLungs` / :class:`monaicxr.transforms.FillLungHoles`.
Hand-written: running the network in a transform (no grad, eval mode, the weights loaded once and checked by
:func:`monaicxr.io.load_checkpoint`).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Resize
from monai.utils import convert_to_tensor

from .postprocess import FillLungHoles, KeepLargestLungs

__all__ = ["PredictLungsd"]

logger = logging.getLogger(__name__)


class PredictLungsd(MapTransform):
    """Predict the lung mask of ``d[key]`` (a (1, H, W) film in [0, 1]) with a segmentation network.

    Args:
        keys: the image key (one).
        network: the lung network (one logit channel), e.g. the unet bundle's ``BasicUNet``.
        weights: its weights file (state dict or ``{"model": state_dict}``); loaded once, here.
        lung_key: where the mask goes: (1, H, W) float 0/1 at the image's size.
        spatial_size: the network's input size.
        threshold: on the sigmoid.
        clean: keep the two largest components and fill holes (as the unet bundle's ``postprocess``).
        device: where the network runs.

    Example::

        PredictLungsd("image", BasicUNet(2, 1, 1, features=(16, 16, 32, 64, 128, 16)), "lung.pt")
    """

    def __init__(
        self,
        keys: KeysCollection,
        network: torch.nn.Module,
        weights: str | Path,
        lung_key: str = "lung",
        spatial_size: Sequence[int] = (256, 256),
        threshold: float = 0.5,
        clean: bool = True,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(keys)
        from monaicxr.io.checkpoints import load_checkpoint

        weights = Path(weights)
        network.load_state_dict(load_checkpoint(weights, map_location="cpu", expected={"model": network})["model"])
        self.network = network.to(device).eval()
        self.device = torch.device(device)
        self.weights = weights
        self.lung_key = lung_key
        self.threshold = float(threshold)
        self.clean = clean
        self.down = Resize(tuple(spatial_size), mode="area")
        self._largest, self._fill = KeepLargestLungs(), FillLungHoles()

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            img = convert_to_tensor(d[key], track_meta=False).float()
            if img.ndim != 3 or img.shape[0] != 1:
                raise ValueError(f"PredictLungsd needs a (1, H, W) image, got {tuple(img.shape)}")
            x = self.down(img)
            with torch.no_grad():
                p = torch.sigmoid(self.network(x[None].to(self.device))[0].float()).cpu()
            m = (Resize(tuple(img.shape[1:]), mode="nearest")(p) > self.threshold).to(torch.float32)
            m = convert_to_tensor(m, track_meta=False)
            if self.clean and m.any():
                m = convert_to_tensor(self._fill(self._largest(m)), track_meta=False).to(torch.float32)
            d[self.lung_key] = m
        return d
