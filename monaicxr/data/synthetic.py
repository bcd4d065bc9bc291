"""Synthetic chest X-ray phantoms: the embedded default dataset, generated here, never patient data.

Each phantom is drawn from a seed (a :class:`numpy.random.Generator`; nothing global is seeded): a thorax
with soft-tissue falloff, two lungs (the left one smaller, notched by the heart), heart, mediastinum and
spine, ribs, clavicles and diaphragm domes, then blur and noise. Infection-like opacities are drawn only
inside the lungs: ``covid`` gives bilateral, peripheral, lower-zone ground-glass patches; ``pneumonia`` a
denser unilateral lobar consolidation; ``normal`` none. Lung and infection masks are exact.

:func:`write_phantom_dataset` writes them in the flat COVID-QU-Ex layout (``images/``, ``lung_masks/``,
``infection_masks/``, ``manifest.csv``) with a ``SYNTHETIC`` marker file, so the same indexer reads them
and every record says ``source="synthetic"``. Drawing uses :mod:`skimage.draw` and :mod:`scipy.ndimage`.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage.draw import ellipse, polygon

__all__ = ["KINDS", "CLASS_OF_KIND", "Phantom", "make_phantom", "write_phantom_dataset"]

logger = logging.getLogger(__name__)

KINDS = ("normal", "covid", "pneumonia")
# phantom kind -> COVID-QU-Ex class name, so phantoms stand in for that dataset
CLASS_OF_KIND = {"covid": "COVID-19", "pneumonia": "Non-COVID", "normal": "Normal"}


@dataclass
class Phantom:
    """One phantom: ``image`` uint8 (H, W); ``lung`` and ``infection`` uint8 {0, 1}; its ``kind``."""

    image: np.ndarray
    lung: np.ndarray
    infection: np.ndarray
    kind: str


def _lung_polygon(cx: float, top: float, bottom: float, half_w: float, outer_sign: int, heart_notch: float):
    """A lung outline: rounded apex, straight-ish outer wall, medial wall bowed in by the heart at the base."""
    t = np.linspace(0, 1, 40)
    # outer wall from apex to costophrenic angle
    outer_x = cx + outer_sign * half_w * (0.55 + 0.45 * np.sin(np.pi / 2 * np.minimum(t * 1.6, 1)))
    outer_y = top + (bottom - top) * t
    # base (diaphragm dome), from outer angle to medial side
    b = np.linspace(0, 1, 20)
    base_x = cx + outer_sign * half_w * (1 - 2 * b)
    base_y = bottom - (bottom - top) * 0.08 * np.sin(np.pi * b)
    # medial wall back up to apex, bowed inwards (towards the lung centre) low down by the heart
    m = np.linspace(1, 0, 40)
    medial_x = cx - outer_sign * half_w * (1 - heart_notch * np.sin(np.pi * m) * (m > 0.35)) * (
        0.45 + 0.55 * np.minimum(m * 1.4, 1)
    )
    medial_y = top + (bottom - top) * m
    xs = np.concatenate([outer_x, base_x, medial_x])
    ys = np.concatenate([outer_y, base_y, medial_y])
    return ys, xs


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a boolean mask (the mask itself when it has at most one)."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n <= 1:
        return mask
    return labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))


def make_phantom(seed: int, size: int = 256, kind: str = "normal") -> Phantom:
    """Draw one phantom of ``kind`` ("normal", "covid" or "pneumonia") at ``size`` x ``size``; same seed, same phantom."""
    if kind not in KINDS:
        raise ValueError(f"unknown phantom kind {kind!r}; choose one of {list(KINDS)}")
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    s = float(size)
    shape = (size, size)
    img = np.zeros(shape, np.float32)

    # thorax: bright soft tissue falling off to the edges
    cy, cx = s * rng.uniform(0.52, 0.56), s * rng.uniform(0.48, 0.52)
    rr, cc = ellipse(cy, cx, s * 0.47, s * rng.uniform(0.40, 0.45), shape=shape)
    body = np.zeros(shape, np.float32)
    body[rr, cc] = 1.0
    body = ndimage.gaussian_filter(body, s * 0.03)
    img += 0.55 * body

    # lungs: image left = patient right (larger), image right = patient left (heart notch)
    top = s * rng.uniform(0.14, 0.19)
    lung = np.zeros(shape, bool)
    halves = []
    for side, sign in ((-1, -1), (1, 1)):
        lcx = cx + side * s * rng.uniform(0.17, 0.20)
        half_w = s * rng.uniform(0.12, 0.14) * (0.92 if side > 0 else 1.0)
        bottom = s * rng.uniform(0.70, 0.76) + (s * 0.03 if side < 0 else 0.0)
        ys, xs = _lung_polygon(lcx, top, bottom, half_w, sign, heart_notch=0.35 if side > 0 else 0.1)
        rr, cc = polygon(ys, xs, shape=shape)
        m = np.zeros(shape, bool)
        m[rr, cc] = True
        er, ec = ellipse(bottom, lcx, (bottom - top) * 1.02, half_w * 1.25, shape=shape)  # rounds the apex
        dome = np.zeros(shape, bool)
        dome[er, ec] = True
        halves.append(m & dome)
    heart_cy, heart_cx = s * rng.uniform(0.60, 0.64), cx + s * rng.uniform(0.05, 0.08)
    rr, cc = ellipse(heart_cy, heart_cx, s * 0.13, s * 0.16, shape=shape)
    heart = np.zeros(shape, np.float32)
    heart[rr, cc] = 1.0
    # the heart shadow is not lung; it can cut a sliver off a lung base, which is dropped (one piece per lung)
    halves = [_largest_component(h & (heart == 0)) for h in halves]
    for h in halves:
        lung |= h
    img -= 0.38 * ndimage.gaussian_filter(lung.astype(np.float32), 1.5)

    # mediastinum + spine, heart (towards image right = patient left), diaphragm below the lungs
    spine = np.zeros(shape, np.float32)
    spine[:, int(cx - s * 0.045) : int(cx + s * 0.045)] = 1.0
    img += 0.12 * ndimage.gaussian_filter(spine, s * 0.01) * body
    img += 0.22 * ndimage.gaussian_filter(heart, 2.0)
    below = np.zeros(shape, np.float32)
    below[int(s * 0.78) :, :] = 1.0
    img += 0.1 * ndimage.gaussian_filter(below, 3) * body

    # ribs: bright curved bands across each hemithorax; clavicles near the top
    ribs = np.zeros(shape, np.float32)
    for k in range(9):
        y0 = top + k * s * 0.062 + rng.normal(0, s * 0.004)
        for side in (-1, 1):
            xs = np.linspace(cx + side * s * 0.04, cx + side * s * 0.38, 30)
            u = (xs - cx) / (side * s * 0.38)
            ys = y0 + s * 0.09 * u**1.5 - s * 0.02 * u
            thick = s * 0.011
            rr, cc = polygon(
                np.concatenate([ys - thick, ys[::-1] + thick]), np.concatenate([xs, xs[::-1]]), shape=shape
            )
            ribs[rr, cc] = 1.0
    for side in (-1, 1):
        xs = np.linspace(cx + side * s * 0.05, cx + side * s * 0.30, 20)
        ys = top - s * 0.02 + s * 0.03 * ((xs - cx) / (side * s * 0.3)) ** 2
        rr, cc = polygon(
            np.concatenate([ys - s * 0.012, ys[::-1] + s * 0.012]), np.concatenate([xs, xs[::-1]]), shape=shape
        )
        ribs[rr, cc] = 1.0
    img += 0.13 * ndimage.gaussian_filter(ribs, 1.0) * body

    # opacities inside the lungs
    infection = np.zeros(shape, bool)
    if kind != "normal":
        field = np.zeros(shape, np.float32)
        yy, xx = np.mgrid[0:size, 0:size]
        targets = halves if kind == "covid" else [halves[int(rng.integers(2))]]
        for half in targets:
            ys, xs = np.nonzero(half)
            y_lo, y_hi = np.percentile(ys, [55, 95]) if kind == "covid" else np.percentile(ys, [35, 95])
            x_mid = xs.mean()
            outer = 1.0 if xs.mean() > cx else -1.0
            n = int(rng.integers(2, 4)) if kind == "covid" else 1
            for _ in range(n):
                py = rng.uniform(y_lo, y_hi)
                px = x_mid + outer * rng.uniform(0.2, 0.5) * (xs.max() - xs.min()) / 2 if kind == "covid" else x_mid
                ry = s * (rng.uniform(0.05, 0.09) if kind == "covid" else rng.uniform(0.12, 0.16))
                rx = s * (rng.uniform(0.04, 0.07) if kind == "covid" else rng.uniform(0.07, 0.09))
                field += np.exp(-(((yy - py) / ry) ** 2 + ((xx - px) / rx) ** 2))
        field = ndimage.gaussian_filter(field, 2.0)
        threshold = 0.35
        infection = (field > threshold) & lung
        strength = 0.22 if kind == "covid" else 0.32
        img += strength * np.clip(field, 0, 1.2) * lung

    # global variation, blur and noise
    img = ndimage.gaussian_filter(img, 0.8)
    img = np.clip(img, 0, None)
    img = img / max(float(img.max()), 1e-6)
    img = img ** rng.uniform(0.85, 1.2) * rng.uniform(0.85, 1.0)
    img += rng.normal(0, 0.02, shape).astype(np.float32)
    image = (np.clip(img, 0, 1) * 255).astype(np.uint8)
    return Phantom(image=image, lung=lung.astype(np.uint8), infection=infection.astype(np.uint8), kind=kind)


def write_phantom_dataset(
    out_dir: str | Path, *, n_per_class: int = 40, size: int = 256, seed: int = 0, val_fraction: float = 0.2
) -> Path:
    """Write ``n_per_class`` phantoms of each kind in the flat COVID-QU-Ex layout, or reuse an identical set.

    Args:
        out_dir: destination; created. If it already holds a set with the same parameters it is reused; if it
            holds anything else, ``FileExistsError`` names it (nothing is overwritten).
        n_per_class: phantoms per kind.
        size: image side in pixels.
        seed: base seed; phantom ``i`` of a kind uses ``(seed, i)``.
        val_fraction: fraction of each kind put in the ``Val`` split (the rest ``Train``).

    Returns:
        ``out_dir``.
    """
    out = Path(out_dir)
    params = {"generator": "monaicxr.data.synthetic", "version": 1, "n_per_class": n_per_class, "size": size,
              "seed": seed, "val_fraction": val_fraction}  # fmt: skip
    marker = out / "phantoms.json"
    if marker.is_file() and json.loads(marker.read_text()) == params and (out / "manifest.csv").is_file():
        logger.info("SYNTHETIC phantom dataset reused from %s", out)
        return out
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(
            f"{out} already holds files that are not a phantom set with these parameters {params}; "
            "choose another folder or remove it"
        )
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    for sub in ("images", "lung_masks", "infection_masks"):
        (tmp / sub).mkdir(parents=True)
    rows = []
    n_val = int(round(n_per_class * val_fraction))
    for kind in KINDS:
        for i in range(n_per_class):
            p = make_phantom(seed * 100003 + i, size=size, kind=kind)
            name = f"synthetic_{kind}_{i:04d}.png"
            Image.fromarray(p.image).save(tmp / "images" / name)
            Image.fromarray(p.lung * 255).save(tmp / "lung_masks" / name)
            Image.fromarray(p.infection * 255).save(tmp / "infection_masks" / name)
            rows.append((name, CLASS_OF_KIND[kind], "Val" if i < n_val else "Train"))
    with (tmp / "manifest.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "class", "split"])
        w.writerows(rows)
    (tmp / "SYNTHETIC").write_text(
        "SYNTHETIC chest X-ray phantoms generated by monaicxr.data.synthetic. Not patient data.\n"
        + json.dumps(params, indent=2)
        + "\n"
    )
    (tmp / "phantoms.json").write_text(json.dumps(params, indent=2))
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    logger.warning("SYNTHETIC phantom dataset (not patient data): %d images written to %s", len(rows), out)
    return out
