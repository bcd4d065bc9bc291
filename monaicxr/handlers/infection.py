"""The infection figures a reader of COVID-QU-Ex results asks for, in one file per evaluation.

MONAI's ``MeanDice`` over an infection task averages only over images whose reference is non-empty (empty
ones are NaN and ignored), so it says nothing about the films without infection, where a model that marks a
little infection on every healthy film looks as good as one that does not. :class:`InfectionSummary` collects,
per image, the predicted and reference infection masks and writes ``infection_summary.json``:

- ``dice_infected_mean`` / ``dice_infected_pooled``: Dice over the images whose reference has infection (per
  image then averaged; and pooled over all their pixels);
- ``false_positive_share``: the share of the images whose reference has **no** infection with any predicted
  infection pixel (and their count), overall and per class name where the items carry ``class_name``;
- ``severity_agreement``: where the items carry predicted and reference severity rows
  (:class:`monaicxr.transforms.Severityd`), the share of infected images whose ``total_grade`` agrees, and the
  share where both lungs' grades agree;
- ``three_level_miou_pooled``: with ``lung_keys`` given, the mean over non-lung / lung / infection of the
  pooled IoU of the 3-level maps built from the lung and infection masks.

Hand-written: these counts (a few sums per image); Dice and IoU are the textbook formulas on binary masks.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np
from ignite.engine import Events
from monai.utils import convert_to_tensor

__all__ = ["InfectionSummary", "summarize_infection_rows", "write_rows", "read_rows", "gate_rows"]

logger = logging.getLogger(__name__)


def _binary(x) -> np.ndarray:
    return convert_to_tensor(x, track_meta=False).detach().cpu().float().numpy().reshape(-1) > 0.5


class InfectionSummary:
    """Collect infection masks over an evaluation epoch and write ``infection_summary.json``.

    Args:
        output_path: the JSON file.
        pred_key, label_key: binary (1, H, W) infection masks in the post-processed items.
        lung_keys: ``(pred_lung, label_lung)`` keys for the pooled 3-level IoU, or ``None``.
        severity_keys: ``(predicted, reference)`` keys of severity rows, or ``None``.
        eval_section: named in the file and the log.
        image_key: whose ``filename_or_obj`` names the image in ``<output stem>_per_image.csv``.
    """

    def __init__(
        self,
        output_path: str | Path,
        pred_key: str = "pred",
        label_key: str = "label",
        lung_keys: tuple[str, str] | None = None,
        severity_keys: tuple[str, str] | None = None,
        eval_section: str = "validation",
        image_key: str = "image",
    ) -> None:
        self.image_key = image_key
        self.output_path = Path(output_path)
        self.pred_key, self.label_key = pred_key, label_key
        self.lung_keys = tuple(lung_keys) if lung_keys else None
        self.severity_keys = tuple(severity_keys) if severity_keys else None
        self.eval_section = eval_section
        self.summary: dict | None = None
        self._reset()

    def attach(self, engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, lambda e: self._reset())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._write)

    def _reset(self) -> None:
        self.rows: list[dict] = []
        self._confusion = np.zeros((3, 3), dtype=np.int64)

    def _collect(self, engine) -> None:
        output = engine.state.output
        outputs = output if isinstance(output, list) else [output]
        batch = getattr(engine.state, "batch", None)
        batches = batch if isinstance(batch, list) and len(batch) == len(outputs) else [{}] * len(outputs)
        # MONAI's post-processing leaves the keys that came with the data (class_name, the reference lung) in
        # engine.state.batch and the ones it made in engine.state.output: read both
        for item in ({**b, **o} if isinstance(b, dict) else o for b, o in zip(batches, outputs, strict=True)):
            pred, ref = _binary(item[self.pred_key]), _binary(item[self.label_key])
            inter, p, r = int((pred & ref).sum()), int(pred.sum()), int(ref.sum())
            image = item.get(self.image_key)
            meta = getattr(image, "meta", None) or {}
            row = {"image": str(meta.get("filename_or_obj", f"sample_{len(self.rows)}")),
                   "class_name": item.get("class_name"), "inter": inter, "pred": p, "ref": r}  # fmt: skip
            if self.severity_keys:
                sp, sr = (item.get(k) or {} for k in self.severity_keys)
                for side in ("total", "right", "left"):
                    row[f"{side}_grade"], row[f"ref_{side}_grade"] = sp.get(f"{side}_grade"), sr.get(f"{side}_grade")
            if self.lung_keys:
                lp, lr = (_binary(item[k]) for k in self.lung_keys)
                lev_p = lp.astype(np.int64) + (pred & lp)  # infection counted inside the lungs, as the levels say
                lev_r = lr.astype(np.int64) + (ref & lr)
                # one bincount per image: sklearn.metrics.confusion_matrix gives the same table, but takes about
                # 15 ms for a 256 x 256 image against 0.3 ms (its input validation dominates)
                self._confusion += np.bincount(lev_r * 3 + lev_p, minlength=9).reshape(3, 3)
            self.rows.append(row)

    def _write(self, engine) -> None:
        summary = summarize_infection_rows(self.rows, self.eval_section)
        if self.lung_keys:
            c = self._confusion
            union = [c[k, :].sum() + c[:, k].sum() - c[k, k] for k in range(3)]
            iou = [float(c[k, k] / union[k]) if union[k] else None for k in range(3)]  # None: level absent
            summary["three_level_iou_pooled"] = {"non_lung": iou[0], "lung": iou[1], "infection": iou[2]}
            present = [v for v in iou if v is not None]
            summary["three_level_miou_pooled"] = float(np.mean(present)) if present else None
        self.summary = summary
        self.output_path.parent.mkdir(parents=True, exist_ok=True)
        self.output_path.write_text(json.dumps(summary, indent=2) + "\n")
        write_rows(self.rows, self.output_path.with_name(self.output_path.stem + "_per_image.csv"))
        fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
        logger.info(
            "infection on %s: Dice %s (pooled %s) over %d infected images; %d of %d clean images (%s) with predicted "
            "infection -> %s",
            self.eval_section, fmt(summary["dice_infected_mean"]), fmt(summary["dice_infected_pooled"]),
            summary["n_infected"], summary["false_positive_count"], summary["n_clean"],
            fmt(summary["false_positive_share"]),
            self.output_path,
        )  # fmt: skip


_INT_COLUMNS = ("inter", "pred", "ref")


def summarize_infection_rows(rows: list[dict], eval_section: str = "validation") -> dict:
    """The summary of :class:`InfectionSummary` from its per-image rows (also for gated rows: :func:`gate_rows`)."""
    infected = [r for r in rows if r["ref"] > 0]
    clean = [r for r in rows if r["ref"] == 0]
    dice = [2 * r["inter"] / (r["pred"] + r["ref"]) for r in infected]
    inter = sum(r["inter"] for r in infected)
    total = sum(r["pred"] + r["ref"] for r in infected)
    by_class: dict[str, list[dict]] = defaultdict(list)
    for r in clean:
        by_class[str(r.get("class_name") or "(no class)")].append(r)
    summary = {
        "eval_section": eval_section,
        "n_images": len(rows),
        "n_infected": len(infected),
        "n_clean": len(clean),
        "dice_infected_mean": float(np.mean(dice)) if dice else None,
        "dice_infected_pooled": 2 * inter / total if total else None,
        "false_positive_share": float(np.mean([r["pred"] > 0 for r in clean])) if clean else None,
        "false_positive_count": int(sum(r["pred"] > 0 for r in clean)),
        "false_positive_share_by_class": {
            k: float(np.mean([r["pred"] > 0 for r in v])) for k, v in sorted(by_class.items())
        },
    }
    if infected and "total_grade" in infected[0]:
        summary["severity_agreement"] = float(np.mean([r["total_grade"] == r["ref_total_grade"] for r in infected]))
        summary["severity_agreement_both_lungs"] = float(
            np.mean(
                [r["right_grade"] == r["ref_right_grade"] and r["left_grade"] == r["ref_left_grade"] for r in infected]
            )
        )
    return summary


def write_rows(rows: list[dict], path: str | Path) -> Path:
    """The per-image rows as CSV (one header, the keys of the first row)."""
    import csv

    path = Path(path)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["image"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_rows(path: str | Path) -> list[dict]:
    """Rows written by :func:`write_rows`, with the pixel counts as integers."""
    import csv

    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in _INT_COLUMNS:
            r[k] = int(r[k])
    return rows


def gate_rows(rows: list[dict], p_infected: dict[str, float], threshold: float = 0.5) -> list[dict]:
    """Rows as if the infection mask were emptied on every film an image-level gate calls clean.

    ``p_infected`` maps the image path to the gate's probability that the film has infection (a classifier's
    ``p_COVID-19``); a film below ``threshold`` gets no predicted infection (its grades become ``none``). A film
    the gate has no probability for is an error: nothing is silently left ungated.
    """
    missing = [r["image"] for r in rows if r["image"] not in p_infected]
    if missing:
        raise ValueError(f"the gate has no probability for {len(missing)} of {len(rows)} images, e.g. {missing[0]}")
    out = []
    for r in rows:
        g = dict(r)
        if p_infected[r["image"]] < threshold:
            g["inter"] = g["pred"] = 0
            for side in ("total", "right", "left"):
                if f"{side}_grade" in g:
                    g[f"{side}_grade"] = "none"
        out.append(g)
    return out
