"""Is this probably a frontal chest X-ray? A screen on the lung model's own output, for ``monaicxr predict``.

The lung model (``bundles/unet``) was trained on frontal (PA / AP) chest radiographs only. On one of those it
is confident and finds two lungs side by side; on a lateral view, a CT slice, a photograph or noise it is
usually unsure or finds something else. :func:`frontal_cxr_check` measures that on the sigmoid map at the
network's size (256 x 256 for the shipped weights), before any cleaning:

============================ ============================================== ============ ===================
measure                      what                                           flagged when  600 real CXRs
============================ ============================================== ============ ===================
``confidence``               mean probability of the pixels with p > 0.5    < 0.85       min 0.93, median 0.98
``uncertain_ratio``          pixels with 0.1 < p < 0.9 over pixels p > 0.5  > 0.75       max 0.44, median 0.10
``second_lung``              the second largest component, over the image   < 0.02       min 0.026
``size_ratio``               second over first largest component            < 0.2        min 0.34
``left`` / ``right``         centroid columns of the two largest, as a      left >= 0.5  left max 0.48,
                             fraction of the width (sorted)                 or           right min 0.53
                                                                            right <= 0.5
============================ ============================================== ============ ===================

Any one measure past its threshold flags the image with ``probably not a frontal chest X-ray (...)`` giving the
measures that fired. The "600 real CXRs" column is a random sample of the 4,660 COVID-QU-Ex Train/Val images
(``../shared/data/covidqu_infection``; COVID-19, Non-COVID and Normal; numpy ``default_rng(0)``), run through the
shipped lung weights (``models/model.pt``, trained at 256²); every threshold lies beyond the most extreme value
seen there, so on that data the flag fires on none (nor on the three DICOM radiographs of
``../shared/data/dicom``), and it fires on every synthetic case below and on ten radiographs rotated by 90
degrees. Measured with ``OMP_NUM_THREADS=1 python benchmarks/frontal_cxr_screen.py --n 600 --seed 0``; the
thresholds, first read from the earlier 128² weights, did not need to move. What it catches, as tested: uniform
discs (a crude CT slice), random and smooth noise textures, black and gradient images, a CT-like disc with two
dark "lungs", a radiograph rotated 90 degrees or inverted, a single central lung-like blob (a crude lateral
view).

This is a screen, not an out-of-distribution detector with a known error rate: it has not been measured on
real lateral views or CT slices (none are in ``../shared/data``), an image the lung model segments confidently
as two lungs side by side passes (a frontal film upside down can), and the thresholds belong to the shipped
lung weights: another lung model needs its own (:data:`FRONTAL_CXR_THRESHOLDS`).
"""

from __future__ import annotations

import numpy as np
from skimage.measure import label as cc_label

__all__ = ["FRONTAL_CXR_THRESHOLDS", "NOT_FRONTAL_CXR", "frontal_cxr_check", "lung_output_measures"]

#: the start of the warning, for whoever filters the warnings column
NOT_FRONTAL_CXR = "probably not a frontal chest X-ray"
#: measure -> (comparison, threshold); an image is flagged when any comparison holds (see the module docstring)
FRONTAL_CXR_THRESHOLDS: dict[str, tuple[str, float]] = {
    "confidence": ("<", 0.85),
    "uncertain_ratio": (">", 0.75),
    "second_lung": ("<", 0.02),
    "size_ratio": ("<", 0.2),
    "left": (">=", 0.5),
    "right": ("<=", 0.5),
}
_OPS = {"<": np.less, ">": np.greater, "<=": np.less_equal, ">=": np.greater_equal}


def lung_output_measures(prob: np.ndarray) -> dict[str, float]:
    """The measures of the module docstring for a lung model's sigmoid map ``prob`` (H, W), values in [0, 1].

    ``left`` / ``right`` are NaN (and ``second_lung``, ``size_ratio`` 0) when fewer than two components exist.
    """
    prob = np.asarray(prob, dtype=np.float64)
    if prob.ndim != 2:
        raise ValueError(f"expected a (H, W) probability map, got shape {prob.shape}")
    fg = prob > 0.5
    n_fg = int(fg.sum())
    out = {
        "confidence": float(prob[fg].mean()) if n_fg else 0.0,
        "uncertain_ratio": float(((prob > 0.1) & (prob < 0.9)).sum() / max(n_fg, 1)),
        "second_lung": 0.0,
        "size_ratio": 0.0,
        "left": float("nan"),
        "right": float("nan"),
    }
    labels = cc_label(fg, connectivity=2)
    sizes = np.bincount(labels.ravel())[1:]
    if len(sizes) >= 2:
        first, second = np.argsort(sizes)[::-1][:2] + 1
        cols = sorted(float(np.nonzero(labels == i)[1].mean()) / prob.shape[1] for i in (first, second))
        out.update(
            second_lung=float(sizes[second - 1] / prob.size),
            size_ratio=float(sizes[second - 1] / sizes[first - 1]),
            left=cols[0],
            right=cols[1],
        )
    return out


def frontal_cxr_check(prob: np.ndarray) -> str | None:
    """The warning for a lung model's sigmoid map that does not look like a frontal CXR's, or ``None``.

    Example::

        frontal_cxr_check(prob)  # "probably not a frontal chest X-ray (lung model: confidence 0.78 < 0.85)"
    """
    measures = lung_output_measures(prob)
    fired = []
    for name, (op, threshold) in FRONTAL_CXR_THRESHOLDS.items():
        value = measures[name]
        if name in ("left", "right") and np.isnan(value):
            continue  # fewer than two components: second_lung already fired
        if _OPS[op](value, threshold):
            fired.append(f"{name} {value:.2f} {op} {threshold:g}")
    return f"{NOT_FRONTAL_CXR} (lung model: {', '.join(fired)})" if fired else None
