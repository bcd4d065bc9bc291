"""``monaicxr predict-lungs`` and ``monaicxr compare-masking``: argument parsing over
:mod:`monaicxr.workflows.segment_classify`, where the work is done (docs/segment_then_classify.md)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from monaicxr.workflows.segment_classify import SECTIONS, compare_masking, predict_lungs

__all__ = ["add_commands"]


# ----------------------------------------------------------------------------------------------- command line
def _parse_overrides(pairs: Sequence[str] | None) -> dict:
    """``["key=value", ...]`` to a dict; values are JSON where they parse as JSON, strings otherwise."""
    result = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--override expects KEY=VALUE, got {pair!r}")
        try:
            result[key] = json.loads(value)
        except json.JSONDecodeError:
            result[key] = value
    return result


def _cmd_predict_lungs(args: argparse.Namespace) -> int:
    s = predict_lungs(
        args.bundle,
        args.output_dir,
        datalist_file=args.datalist,
        input_dir=args.input_dir,
        config=args.config,
        ckpt_path=args.ckpt_path,
        overrides=_parse_overrides(args.override),
        min_lung_fraction=args.min_lung_fraction,
    )
    print(f"datalist:  {s['datalist']}")
    print(f"masks:     {s['masks_dir']}")
    print(f"items:     {s['n_ok']} of {s['n_items']} with a predicted lung mask, {s['n_left_out']} left out")
    for x in s["left_out"][:10]:
        print(f"  left out: {x['image']}: {x['reason']}")
    if s["n_left_out"] > 10:
        print(f"  ... and {s['n_left_out'] - 10} more, listed in the datalist under lungs_left_out")
    return 0


def _cmd_compare_masking(args: argparse.Namespace) -> int:
    size = args.spatial_size * 2 if len(args.spatial_size) == 1 else args.spatial_size
    result = compare_masking(
        args.datalist,
        args.output_dir,
        seg_bundle=None if args.reference_lungs else args.seg_bundle,
        seg_config=args.seg_config,
        seg_ckpt=args.seg_ckpt,
        seg_overrides=_parse_overrides(args.seg_override),
        classifier_bundle=args.classifier_bundle,
        num_epochs=args.num_epochs,
        spatial_size=size,
        max_items=args.max_items,
        seed=args.seed,
        eval_section=args.eval_section,
        overrides=_parse_overrides(args.override),
    )
    print(Path(result["paths"]["md"]).read_text())
    print("\n".join(f"{k + ':':6s}{v}" for k, v in result["paths"].items()))
    return 0


def add_commands(sub, common: argparse.ArgumentParser) -> None:
    """Add ``predict-lungs`` and ``compare-masking`` to the ``monaicxr`` sub-parsers ``sub``.

    Flags are kebab-case like every other command; the snake_case spelling of the first release still parses
    (a second option string of the same flag), so existing scripts keep working.
    """
    p = sub.add_parser(
        "predict-lungs",
        parents=[common],
        help="predict lung masks with a segmentation bundle; write a datalist pointing at them",
        description="Run a segmentation bundle's inference config over a datalist's images (or a folder) and "
        "write OUTPUT_DIR/datalist.json whose 'lung' entries are the predicted masks in OUTPUT_DIR/masks.",
    )
    p.add_argument("--bundle", type=Path, required=True, help="segmentation bundle folder, e.g. bundles/unet")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--datalist", type=Path, help="datalist JSON (e.g. runs/x/datalist.json)")
    src.add_argument("--input-dir", "--input_dir", type=Path, help="a folder of images instead of a datalist")
    p.add_argument("--output-dir", "--output_dir", type=Path, required=True, help="folder for masks/ and datalist.json")
    p.add_argument("--config", default="configs/inference.json", help="inference config inside the bundle")
    p.add_argument("--ckpt-path", "--ckpt_path", type=Path, help="weights (default: the bundle's models/model.pt)")
    p.add_argument(
        "--min_lung_fraction",
        "--min-lung-fraction",
        type=float,
        default=0.0,
        help="smaller masks count as failed (default 0)",
    )
    p.add_argument("--override", action="append", metavar="KEY=VALUE", help="config override (JSON value), repeatable")
    p.set_defaults(func=_cmd_predict_lungs)

    p = sub.add_parser(
        "compare-masking",
        parents=[common],
        help="train and evaluate a classifier unmasked, lungs kept and lungs removed; write one table",
        description="Predict lungs with SEG_BUNDLE, then train and evaluate the classifier bundle three times "
        "with one split and schedule; writes comparison.csv / .md / .json to OUTPUT_DIR.",
    )
    p.add_argument("--datalist", type=Path, required=True, help="datalist with class labels (monaicxr index)")
    p.add_argument("--output-dir", "--output_dir", type=Path, required=True)
    seg = p.add_mutually_exclusive_group()
    seg.add_argument(
        "--seg-bundle", "--seg_bundle", type=Path, default=Path("bundles/unet"), help="default bundles/unet"
    )
    seg.add_argument(
        "--reference-lungs", "--reference_lungs", action="store_true", help="use the datalist's own lung masks instead"
    )
    p.add_argument("--seg-config", "--seg_config", default="configs/inference.json")
    p.add_argument(
        "--seg-ckpt", "--seg_ckpt", type=Path, help="segmentation weights (default: the bundle's models/model.pt)"
    )
    p.add_argument(
        "--seg-override", "--seg_override", action="append", metavar="KEY=VALUE", help="segmentation config override"
    )
    p.add_argument("--classifier-bundle", "--classifier_bundle", type=Path, default=Path("bundles/simple_cnn"))
    p.add_argument("--num-epochs", "--num_epochs", type=int, default=3, help="epochs per training (default 3)")
    p.add_argument(
        "--spatial-size", "--spatial_size", type=int, nargs="+", default=[100], help="classifier input side(s)"
    )
    p.add_argument("--max-items", "--max_items", type=int, help="use at most this many items, stratified (default all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-section", "--eval_section", default="test", choices=SECTIONS)
    p.add_argument("--override", action="append", metavar="KEY=VALUE", help="classifier override, repeatable")
    p.set_defaults(func=_cmd_compare_masking)
