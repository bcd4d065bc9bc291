"""Segment then classify: lungs from a segmentation bundle, then a classifier on the image masked to them.

Two steps, each a plain function with a ``monaicxr`` sub-command over it (:mod:`monaicxr.cli.segment_classify`):

- :func:`predict_lungs` (``monaicxr predict-lungs``) runs any segmentation bundle's inference config (through
  ``monai.bundle.ConfigWorkflow``, overriding only ``datalist``, ``output_dir``, ``bundle_root`` and, if given,
  ``ckpt_path``) over the images of a datalist and writes a new datalist in which each item's ``lung`` is the
  predicted mask. The bundle must follow the conventions of ``bundles/unet/configs/inference.json``: a
  ``datalist`` id (``[{"image": path}, ...]``), an ``output_dir`` id, and a ``<stem>_mask.png`` per image at the
  image's size. Items whose prediction failed (unreadable image, no mask written, a mask of another size, an
  empty mask) are kept out of the new datalist and listed with their reason under ``lungs_left_out``.
- :func:`compare_masking` (``monaicxr compare-masking``) trains and evaluates a classifier bundle three times
  on the same items, split and schedule (images unmasked, lungs kept, lungs removed; the last two through the
  bundle's ``configs/lung_masked.json`` overlay) and writes one table: accuracy, macro F1, recall per class.

The workflow, commands and outputs are described in ``docs/segment_then_classify.md``.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from monaicxr.data.errors import DatasetError

__all__ = ["VARIANTS", "predict_lungs", "subsample_datalist", "compare_masking", "masking_table"]

logger = logging.getLogger(__name__)

SECTIONS = ("training", "validation", "test")
#: table row name -> ``mask_mode`` of the lung_masked overlay (``None``: the plain classifier config)
VARIANTS: dict[str, str | None] = {"unmasked": None, "lungs_kept": "keep", "lungs_removed": "remove"}


def _read_json(path: str | Path, what: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{what} {path} does not exist")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DatasetError(f"{what} {path} is not valid JSON: {e}") from e


def _workflow(config_files: Sequence[Path], workflow_type: str, **override):
    from monai.bundle import ConfigWorkflow

    meta = Path(config_files[0]).parent / "metadata.json"
    wf = ConfigWorkflow(
        config_file=[str(f) for f in config_files],
        meta_file=str(meta) if meta.is_file() else None,
        logging_file=False,
        workflow_type=workflow_type,
        **override,
    )
    wf.initialize()
    return wf


def _run(wf) -> None:
    try:
        wf.run()
    finally:
        wf.finalize()


def _check_mask(mask: Path, h_w: tuple[int, ...], min_fraction: float) -> str | None:
    """The reason ``mask`` is unusable for an image of shape ``h_w``, or ``None`` if it is fine."""
    from monaicxr.io.reader import read_cxr

    if not mask.is_file():
        return f"the bundle wrote no mask ({mask.name} missing)"
    try:
        m, _ = read_cxr(mask)
    except (DatasetError, OSError) as e:
        return f"mask unreadable: {e}"
    if m.shape != h_w:
        return f"mask size {m.shape} differs from the image size {h_w}"
    fraction = float((m > 0).mean())
    if fraction == 0.0:
        return "predicted lung mask is empty"
    if fraction < min_fraction:
        return f"predicted lung mask covers {fraction:.2%} of the image, less than min_lung_fraction {min_fraction:.2%}"
    return None


def predict_lungs(
    bundle: str | Path,
    output_dir: str | Path,
    datalist_file: str | Path | None = None,
    input_dir: str | Path | None = None,
    config: str = "configs/inference.json",
    ckpt_path: str | Path | None = None,
    overrides: dict | None = None,
    mask_pattern: str = "{stem}_mask.png",
    min_lung_fraction: float = 0.0,
    progress: bool = True,
) -> dict:
    """Predict a lung mask for every image of a datalist (or folder) with a segmentation bundle.

    Args:
        bundle: the segmentation bundle's folder, e.g. ``bundles/unet`` or ``bundles/u2net``.
        output_dir: receives ``masks/`` (what the bundle writes: ``<stem>_mask.png``, ``<stem>_overlay.png``)
            and ``datalist.json`` (the input datalist with ``lung`` pointing at the predicted masks; the lung
            mask the item had before is kept as ``lung_reference``).
        datalist_file: a datalist (``training`` / ``validation`` / ``test`` sections, as ``monaicxr index``
            writes); every section is segmented. Exactly one of ``datalist_file`` and ``input_dir``.
        input_dir: a folder of images instead; the new datalist then has them all in ``test``.
        config: the inference config, relative to ``bundle``.
        ckpt_path: weights; default: the config's own ``ckpt_path`` (``<bundle>/models/model.pt``).
        overrides: more config overrides, e.g. ``{"spatial_size": [256, 256]}``.
        mask_pattern: the name of the mask the bundle writes for an image, from its ``stem``.
        min_lung_fraction: a mask covering less of the image than this is a failed prediction (0: only empty).
        progress: show progress bars (tqdm) while checking images and masks and while the bundle runs.

    Returns:
        A summary: ``{"datalist", "masks_dir", "n_items", "n_ok", "left_out": [{"section", "image",
        "reason"}], ...}``; ``left_out`` is also written into the datalist as ``lungs_left_out``.
    """
    from tqdm import tqdm

    from monaicxr.data.prepare import list_images
    from monaicxr.io.reader import read_cxr

    bundle = Path(bundle).resolve()
    config_file = bundle / config
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file}: no such inference config in the bundle {bundle}")
    raw = _read_json(config_file, "inference config")
    missing = [k for k in ("datalist", "output_dir") if k not in raw]
    if missing:
        raise ValueError(
            f"{config_file} has no {missing} id(s); predict-lungs needs an inference config with a 'datalist' "
            "([{'image': path}, ...]) and an 'output_dir', like bundles/unet/configs/inference.json"
        )
    if (datalist_file is None) == (input_dir is None):
        raise ValueError("give exactly one of datalist_file and input_dir")
    content = _read_json(datalist_file, "datalist") if datalist_file else {"test": list_images(input_dir)}
    out = Path(output_dir)
    masks_dir = (out / "masks").resolve()

    # one entry per distinct image; a reason per image that cannot be used
    images = sorted({str(item["image"]) for s in SECTIONS for item in content.get(s) or []})
    if not images:
        raise DatasetError(f"{datalist_file or input_dir}: no items in the sections {SECTIONS}")
    reason: dict[str, str] = {}
    shape: dict[str, tuple[int, ...]] = {}
    for path in tqdm(images, desc="predict-lungs: reading images", disable=not progress):
        try:
            shape[path] = read_cxr(path)[0].shape
        except (DatasetError, OSError) as e:
            reason[path] = f"image unreadable: {e}"
    # images with the same stem would overwrite each other's mask: one round (and sub-folder) per repeat
    rounds: list[dict[str, str]] = []  # stem -> image
    for path in (p for p in images if p not in reason):
        stem = Path(path).stem
        target = next((r for r in rounds if stem not in r), None)
        if target is None:
            rounds.append(target := {})
        target[stem] = path
    mask_of: dict[str, Path] = {}
    weights = None
    for k, group in enumerate(rounds):
        folder = masks_dir if k == 0 else masks_dir / f"repeat_{k}"
        override = {**(overrides or {}), "bundle_root": str(bundle), "output_dir": str(folder)}
        override["datalist"] = [{"image": p} for p in group.values()]
        if ckpt_path is not None:
            override["ckpt_path"] = str(Path(ckpt_path).resolve())
        logger.info("predict-lungs: %s on %d images -> %s", config_file, len(group), folder)
        wf = _workflow([config_file], "infer", **override)
        weights = wf.parser.get_parsed_content("ckpt_path") if "ckpt_path" in raw or ckpt_path else None
        if weights is not None and not Path(weights).is_file():
            raise FileNotFoundError(f"{bundle}: no weights at {weights}; train the bundle or pass ckpt_path")
        for stem in group:  # a mask left by an earlier run must not pass for this run's
            (folder / mask_pattern.format(stem=stem)).unlink(missing_ok=True)
        if progress and "evaluator" in raw:
            from ignite.handlers import ProgressBar

            ProgressBar(persist=False, desc="predict-lungs").attach(wf.parser.get_parsed_content("evaluator"))
        _run(wf)
        mask_of.update({p: folder / mask_pattern.format(stem=stem) for stem, p in group.items()})
    for path, mask in tqdm(mask_of.items(), desc="predict-lungs: checking masks", disable=not progress):
        why = _check_mask(mask, shape[path], min_lung_fraction)
        if why:
            reason[path] = why

    new = {k: v for k, v in content.items() if k not in SECTIONS}
    left_out = []
    for s in SECTIONS:
        if s not in content:
            continue
        new[s] = []
        for item in content[s] or []:
            path = str(item["image"])
            if path in reason:
                left_out.append({"section": s, "image": path, "reason": reason[path]})
                logger.warning("predict-lungs: left out %s: %s", path, reason[path])
                continue
            entry = dict(item)
            if "lung" in entry:
                entry["lung_reference"] = entry["lung"]
            entry["lung"] = str(mask_of[path])
            new[s].append(entry)
    n_items = sum(len(content.get(s) or []) for s in SECTIONS)
    summary = {
        "bundle": str(bundle),
        "config": str(config_file),
        "ckpt_path": str(weights) if weights is not None else "(none: the config has no ckpt_path)",
        "overrides": overrides or {},
        "source_datalist": str(datalist_file or input_dir),
        "masks_dir": str(masks_dir),
        "n_items": n_items,
        "n_ok": n_items - len(left_out),
        "n_left_out": len(left_out),
    }
    new["lungs"] = summary
    new["lungs_left_out"] = left_out
    out.mkdir(parents=True, exist_ok=True)
    (out / "datalist.json").write_text(json.dumps(new, indent=2))
    return {**summary, "datalist": str(out / "datalist.json"), "left_out": left_out}


def subsample_datalist(content: dict, max_items: int, seed: int = 0) -> dict:
    """At most ``max_items`` items in all, each section in proportion to its size and stratified by class.

    Items stay in their section (a grouped split stays grouped) and in their order; the draw is seeded. The
    result records what was done under ``subsampled``.
    """
    if max_items < 1:
        raise ValueError(f"max_items must be at least 1, got {max_items}")
    sizes = {s: len(content.get(s) or []) for s in SECTIONS}
    total = sum(sizes.values())
    new = dict(content)
    if max_items >= total:
        return new
    from monaicxr.data.prepare import stratified_subset

    for s in SECTIONS:
        items = content.get(s) or []
        if items:
            want = max(1, round(max_items * len(items) / total))
            new[s] = stratified_subset(items, want, seed=seed, key="class_index", min_per_class=1)
    new["subsampled"] = {
        "max_items": max_items,
        "seed": seed,
        "from": sizes,
        "to": {s: len(new.get(s) or []) for s in SECTIONS},
    }
    return new


def masking_table(output_dir: str | Path, variants: Sequence[str] = tuple(VARIANTS)) -> list[dict]:
    """One row per variant from ``<output_dir>/<variant>/eval/classification_report.json``."""
    rows = []
    for name in variants:
        report = _read_json(Path(output_dir) / name / "eval" / "classification_report.json", "evaluation report")
        row = {
            "variant": name,
            "mask_mode": VARIANTS.get(name) or "none",
            "n_test": report["num_samples"],
            "accuracy": report["accuracy"],
            "macro_f1": report["macro_avg"]["f1"],
        }
        row.update({f"recall_{c}": v["recall"] for c, v in report["per_class"].items()})
        rows.append(row)
    return rows


def _write_table(output_dir: Path, rows: list[dict], info: dict) -> dict[str, Path]:
    paths = {"csv": output_dir / "comparison.csv", "md": output_dir / "comparison.md"}
    with open(paths["csv"], "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    cols = list(rows[0])

    def cell(v) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    lines = [
        f"# Segment then classify: {info['lungs']}",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
        *("| " + " | ".join(cell(r[c]) for c in cols) + " |" for r in rows),
        "",
        f"Majority-class accuracy on the same test items: {info['majority_accuracy']:.4f}. A `lungs_removed` "
        "accuracy well above it means the classifier finds its answer outside the lungs (a shortcut).",
        "",
        f"Classifier: {info['classifier']}; schedule: {json.dumps(info['schedule'])}; items: "
        f"{json.dumps(info['n_items'])}; lung predictions left out: {info['n_left_out']} (listed in "
        f"{info['datalist']} under `lungs_left_out`).",
        "",
    ]
    paths["md"].write_text("\n".join(lines))
    (output_dir / "comparison.json").write_text(json.dumps({"rows": rows, **info}, indent=2))
    paths["json"] = output_dir / "comparison.json"
    return paths


def compare_masking(
    datalist_file: str | Path,
    output_dir: str | Path,
    seg_bundle: str | Path | None = None,
    seg_config: str = "configs/inference.json",
    seg_ckpt: str | Path | None = None,
    seg_overrides: dict | None = None,
    classifier_bundle: str | Path = "bundles/simple_cnn",
    num_epochs: int = 3,
    spatial_size: Sequence[int] = (100, 100),
    max_items: int | None = None,
    seed: int = 0,
    eval_section: str = "test",
    overrides: dict | None = None,
    variants: Sequence[str] = tuple(VARIANTS),
) -> dict:
    """Train and evaluate the classifier unmasked, on the lungs only and with the lungs removed.

    Args:
        datalist_file: a datalist with ``training`` / ``validation`` / ``test`` sections and class labels.
        output_dir: receives ``lungs/`` (from :func:`predict_lungs`), one folder per variant (the classifier's
            usual training outputs plus ``eval/``), ``comparison.csv``, ``comparison.md``, ``comparison.json``.
        seg_bundle: the segmentation bundle that supplies the lungs; ``None`` uses the ``lung`` masks already in
            the datalist (the reference masks: an upper bound for a segmentation bundle).
        seg_config, seg_ckpt, seg_overrides: passed to :func:`predict_lungs`.
        classifier_bundle: a bundle with ``configs/train.json``, ``evaluate.json`` and ``lung_masked.json``.
        num_epochs, spatial_size, seed: the schedule, the same for every variant.
        max_items: segment and use at most this many items (:func:`subsample_datalist`).
        eval_section: the datalist section the table reports on.
        overrides: more classifier overrides for every variant (e.g. ``{"batch_size": 32}``).
        variants: which rows to produce, names from :data:`VARIANTS`.

    Returns:
        ``{"rows": [...], "paths": {...}, ...}``, what ``comparison.json`` holds.
    """
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    out = Path(output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    content = _read_json(datalist_file, "datalist")
    if not content.get(eval_section):
        raise DatasetError(f"{datalist_file}: section {eval_section!r} is empty; pass another eval_section")
    if max_items:
        content = subsample_datalist(content, max_items, seed)
    source = out / "datalist_input.json"
    source.write_text(json.dumps(content, indent=2))

    if seg_bundle is not None:
        seg = predict_lungs(seg_bundle, out / "lungs", source, None, seg_config, seg_ckpt, seg_overrides)
        lungs, datalist, left_out = f"lungs predicted by {seg['bundle']}", Path(seg["datalist"]), seg["left_out"]
    else:
        left_out = [
            {"section": s, "image": item["image"], "reason": "no lung mask in the datalist"}
            for s in SECTIONS
            for item in content.get(s) or []
            if not item.get("lung")
        ]
        gone = {x["image"] for x in left_out}
        content = {**content, **{s: [i for i in content.get(s) or [] if i["image"] not in gone] for s in SECTIONS}}
        content["lungs_left_out"] = left_out
        datalist = out / "datalist_lungs.json"
        datalist.write_text(json.dumps(content, indent=2))
        lungs = "reference lung masks from the datalist"
    final = _read_json(datalist, "datalist")
    if not final.get(eval_section):
        raise DatasetError(f"{datalist}: no {eval_section!r} item has a usable lung mask; see lungs_left_out")

    configs = Path(classifier_bundle).resolve() / "configs"
    schedule = {"num_epochs": num_epochs, "spatial_size": [int(s) for s in spatial_size], "seed": seed}
    for name in variants:
        mode, run_dir = VARIANTS[name], out / name
        overlay = [configs / "lung_masked.json"] if mode else []
        common = {"datalist_file": str(datalist), "output_dir": str(run_dir), **schedule, **(overrides or {})}
        if mode:
            common["mask_mode"] = mode
        start = time.time()
        logger.info("compare-masking: training %s (%s)", name, mode or "no masking")
        _run(_workflow([configs / "train.json", *overlay], "train", **common))
        ckpt = run_dir / "models" / "model.pt"
        evaluate = [configs / "train.json", configs / "evaluate.json", *overlay]
        _run(_workflow(evaluate, "eval", ckpt_path=str(ckpt), eval_section=eval_section, **common))
        logger.info("compare-masking: %s done in %.0f s", name, time.time() - start)

    rows = masking_table(out, variants)
    labels = [item["class_index"] for item in final[eval_section]]
    info = {
        "lungs": lungs,
        "datalist": str(datalist),
        "eval_section": eval_section,
        "classifier": str(configs.parent),
        "schedule": {**schedule, **(overrides or {})},
        "n_items": {s: len(final.get(s) or []) for s in SECTIONS},
        "n_left_out": len(left_out),
        "majority_accuracy": max(labels.count(c) for c in set(labels)) / len(labels),
    }
    paths = _write_table(out, rows, info)
    return {"rows": rows, **info, "paths": {k: str(v) for k, v in paths.items()}}
