"""Infection extent per lung from a binary lung mask and a binary infection mask, and a severity grade.

Left and right are the PATIENT's: on a postero-anterior (PA) film the patient faces the viewer, so the
patient's right lung lies on the IMAGE's left (smaller column index). The lung mask is split into its two
largest connected components (``skimage.measure.label``, 8-connectivity); the component whose centroid column
is smaller is the right lung. With a single component (one lung missing, or both lungs fused into one blob),
that component is assigned by which half of the image holds its centroid and the other side is reported
missing; apply :class:`monaicxr.transforms.KeepLargestLungs` first so that stray specks do not count.
AP films are displayed the same way (patient's right on image left), so the rule holds for them too, unless an
image was stored mirrored.

Fractions are infected lung pixels over lung pixels (infection outside the lung is ignored: clip it first with
:class:`monaicxr.transforms.RestrictToLungs` to make that explicit). A lung that cannot be measured gets
``None`` and a reason, never NaN, so the result can go straight into a CSV.

Grades: the default thresholds ``(0.0, 0.25, 0.5, 0.75)`` give the quartile bins of lung involvement used by
the per-lung extent score of the modified RALE / Wong et al. chest radiograph score (Wong et al., Radiology
2020;296:E72-E78: 0 none, 1 <25 %, 2 25-50 %, 3 50-75 %, 4 >75 %). They are a configurable convention, not
the grading of Tahir et al. 2021 (COVID-QU-Ex), which reports the infected percentage itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from monai.config import NdarrayOrTensor
from monai.utils import convert_to_numpy
from skimage.measure import label as cc_label

from monaicxr.data.errors import DatasetError

__all__ = ["GRADES", "SIDES", "check_binary", "format_severity", "infection_fraction", "severity_grade", "split_lungs"]

GRADES = ("none", "mild", "moderate", "severe", "critical")
SIDES = ("right", "left", "total")


def _name(x) -> str:
    meta = getattr(x, "meta", None) or {}
    return str(meta.get("filename_or_obj", "<array>"))


def check_binary(x: NdarrayOrTensor, what: str = "mask") -> np.ndarray:
    """``x`` as a 2D boolean array; values outside {0, 1} or a shape other than (H, W) / (1, H, W) raise.

    Raises:
        DatasetError: (a ``ValueError``) naming the file from the ``filename_or_obj`` meta entry.
    """
    a = convert_to_numpy(x)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise DatasetError(f"{_name(x)}: the {what} must be (H, W) or (1, H, W), got shape {tuple(a.shape)}")
    values = np.unique(a)
    odd = [v for v in values.tolist() if v not in (0, 1)]
    if odd:
        raise DatasetError(
            f"{_name(x)}: the {what} must hold only 0 and 1, found {len(odd)} other values, e.g. {odd[:5]}; "
            "binarize it first (monaicxr.transforms.BinarizeMask or AsDiscrete(threshold=0.5))"
        )
    return a.astype(bool)


def split_lungs(lung: np.ndarray) -> dict[str, np.ndarray | None]:
    """The patient's right and left lung of a 2D boolean mask: the two largest components, by centroid column.

    Returns:
        ``{"right": mask or None, "left": mask or None}``; see the module docstring for the one-component rule.
    """
    labels, n = cc_label(lung, connectivity=2, return_num=True)
    out: dict[str, np.ndarray | None] = {"right": None, "left": None}
    if n == 0:
        return out
    sizes = np.bincount(labels.ravel())[1:]
    keep = np.argsort(-sizes, kind="stable")[:2] + 1
    comps = [labels == k for k in keep]
    cols = [float(np.nonzero(c)[1].mean()) for c in comps]
    if len(comps) == 2:
        right, left = (0, 1) if cols[0] < cols[1] else (1, 0)
        out["right"], out["left"] = comps[right], comps[left]
    else:
        # one component: its side is the half of the image holding its centroid (image left = patient right)
        out["right" if cols[0] < (lung.shape[1] - 1) / 2 else "left"] = comps[0]
    return out


def infection_fraction(lung: NdarrayOrTensor, infection: NdarrayOrTensor) -> dict:
    """Infected fraction of the patient's right lung, left lung and both lungs together.

    Args:
        lung: binary lung mask, (H, W) or (1, H, W), values in {0, 1} (bool allowed).
        infection: binary infection mask of the same shape.

    Returns:
        A flat dict (one CSV row): ``right_fraction``, ``left_fraction``, ``total_fraction`` (float in [0, 1] or
        ``None``), ``right_reason``, ``left_reason``, ``total_reason`` (``None`` when the fraction is given,
        else ``"no lung"`` for an empty lung mask or ``"lung not found"`` for a side without a component),
        and the pixel counts ``right_lung_px``, ``left_lung_px``, ``right_infection_px``,
        ``left_infection_px``. ``total`` covers the two lung components found.

    Raises:
        DatasetError: (a ``ValueError``) for values outside {0, 1} or mismatched shapes, naming the file.

    Example::

        >>> lung = np.zeros((4, 8)); lung[:, 0:3] = 1; lung[:, 5:8] = 1
        >>> inf = np.zeros((4, 8)); inf[:2, 0:3] = 1
        >>> infection_fraction(lung, inf)["right_fraction"]
        0.5
    """
    lung_a = check_binary(lung, "lung mask")
    inf_a = check_binary(infection, "infection mask")
    if lung_a.shape != inf_a.shape:
        raise DatasetError(
            f"{_name(infection)}: infection mask {inf_a.shape} and lung mask {lung_a.shape} differ in shape"
        )
    result: dict = {}
    sides = split_lungs(lung_a)
    found = [m for m in sides.values() if m is not None]
    for side in SIDES:
        mask = sides.get(side) if side != "total" else (np.logical_or.reduce(found) if found else None)
        n_lung = int(mask.sum()) if mask is not None else 0
        n_inf = int((inf_a & mask).sum()) if mask is not None else 0
        if not lung_a.any():
            reason = "no lung"
        elif n_lung == 0:
            reason = "lung not found"
        else:
            reason = None
        result[f"{side}_fraction"] = None if reason else n_inf / n_lung
        result[f"{side}_reason"] = reason
        if side != "total":
            result[f"{side}_lung_px"] = n_lung
            result[f"{side}_infection_px"] = n_inf
    return result


def severity_grade(fraction: float | None, thresholds: Sequence[float] = (0.0, 0.25, 0.5, 0.75)) -> str | None:
    """Grade an infected fraction: "none", "mild", "moderate", "severe" or "critical".

    ``fraction <= thresholds[0]`` is "none"; otherwise the grade is that of the highest threshold among
    ``thresholds[1:]`` the fraction reaches (lower bounds inclusive). With the defaults: 0 → none,
    (0, 0.25) → mild, [0.25, 0.5) → moderate, [0.5, 0.75) → severe, [0.75, 1] → critical.

    Args:
        fraction: infected fraction in [0, 1], or ``None`` (a lung that could not be measured → ``None``).
        thresholds: four ascending bounds; a configurable convention (see the module docstring).
    """
    t = [float(v) for v in thresholds]
    if len(t) != len(GRADES) - 1 or any(b <= a for a, b in zip(t[:-1], t[1:], strict=True)):
        raise ValueError(f"thresholds must be {len(GRADES) - 1} strictly ascending values, got {tuple(thresholds)}")
    if fraction is None:
        return None
    f = float(fraction)
    if not 0.0 <= f <= 1.0:  # also refuses NaN
        raise ValueError(f"an infected fraction must lie in [0, 1], got {fraction}")
    if f <= t[0]:
        return GRADES[0]
    return GRADES[1 + sum(f >= b for b in t[1:])]


def format_severity(row: dict | None) -> str:
    """One line for an overlay caption from a :class:`monaicxr.transforms.Severityd` row.

    Example::

        >>> format_severity({"right_fraction": 0.1, "right_grade": "mild", "left_fraction": None,
        ...                  "left_reason": "lung not found", "total_fraction": 0.1, "total_grade": "mild"})
        'R 10.0% mild | L lung not found | both 10.0% mild'
    """
    if not row:
        return ""
    parts = []
    for side, short in (("right", "R"), ("left", "L"), ("total", "both")):
        fraction = row.get(f"{side}_fraction")
        if fraction is None:
            parts.append(f"{short} {row.get(f'{side}_reason') or 'n/a'}")
        else:
            parts.append(f"{short} {100 * float(fraction):.1f}% {row.get(f'{side}_grade') or ''}".rstrip())
    return " | ".join(parts)
