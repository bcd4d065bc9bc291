"""The ``monaicxr`` console script: thin argument parsing over the functions of :mod:`monaicxr.data`.

Each sub-command parses its arguments, calls one library function and prints what it wrote; the work itself
lives in the library, which logs instead of printing. Bad input (a missing folder, an unknown layout, a dataset
that breaks its layout's rules) ends with a one-line message on stderr and exit status 2; ``-v`` also shows the
traceback and INFO logging.

Example::

    monaicxr layouts
    monaicxr detect ../shared/data/covidqu_infection
    monaicxr index ../shared/data/covidqu_infection --out runs/cq --task infection
    monaicxr fingerprint ../shared/data/covidqu_infection --out runs/cq/fingerprint.json --max-masks 200
    monaicxr phantoms /tmp/phantoms --per-class 8 --size 128
    monaicxr summarize runs/loss_study/*
    monaicxr predict chest_xrays/ runs/predict --models lung,classifier
    monaicxr train unet --overlay task_3level --num_epochs 2
    monaicxr evaluate simple_cnn --dataset_dir test_films/
    monaicxr export simple_cnn --onnx
"""

from __future__ import annotations

import argparse
import inspect
import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from monaicxr import __version__
from monaicxr.cli.bundle import add_commands as add_bundle_commands
from monaicxr.cli.predict import add_commands as add_predict_commands
from monaicxr.cli.segment_classify import add_commands as add_segment_classify_commands
from monaicxr.cli.summarize import add_commands as add_summarize_commands
from monaicxr.cli.summarize import add_gate_command
from monaicxr.cli.weights import add_commands as add_weights_commands
from monaicxr.data.records import DatasetError
from monaicxr.data.registry import INDEXERS, detect_layout, index_dataset

__all__ = ["main", "build_parser"]

# prepare.TASK_KEYS, repeated so that building the parser does not import prepare (and the synthetic generator)
TASKS = ("lung", "infection", "3level", "classification", "none")
SPLIT_MODES = ("auto", "source", "ratios")
# imagecheck.MASK_VALUE_SETS and "any", repeated for the same reason
MASK_VALUES = ("binary", "three_level", "any")
_MASK_VALUES_HELP = (
    "mask values accepted: binary (0/255 or 0/1, default), three_level (also 0/127/255) or any "
    "(the bundles then binarize at half the maximum)"
)
#: errors that mean bad input rather than a bug: reported in one line, exit status 2
USER_ERRORS = (DatasetError, FileNotFoundError, NotADirectoryError, ValueError)
#: split name -> datalist section
_SECTIONS = {"train": "training", "val": "validation", "test": "test"}


def _cmd_layouts(args: argparse.Namespace) -> int:
    for name in INDEXERS:
        print(name)
    return 0


def _cmd_detect(args: argparse.Namespace) -> int:
    print(detect_layout(args.dataset_dir))
    return 0


def _cmd_index(args: argparse.Namespace) -> int:
    from monaicxr.data.prepare import prepare_datalist

    kwargs: dict = {}
    if "verify" in inspect.signature(prepare_datalist).parameters:
        kwargs["verify"] = not args.no_verify
    elif args.no_verify:
        raise ValueError("--no-verify is not available: prepare_datalist() takes no verify argument yet")
    content = prepare_datalist(
        str(args.out),
        dataset_dir=str(args.dataset_dir),
        task=args.task,
        layout=args.layout,
        split_mode=args.split_mode,
        ratios=tuple(args.ratios),
        split_seed=args.seed,
        mask_values=args.mask_values,
        **kwargs,
    )
    out = Path(args.out)
    for name in ("datalist", "splits", "fingerprint"):
        print(f"{name + ':':13s}{out / (name + '.json')}")
    print(f"source:      {content.get('source')}{' (SYNTHETIC)' if content.get('synthetic') else ''}")
    print(f"classes:     {', '.join(content.get('classes') or []) or '-'}")
    sizes = {split: len(content.get(section) or []) for split, section in _SECTIONS.items()}
    print("split sizes: " + ", ".join(f"{split} {n}" for split, n in sizes.items()) + f" (total {sum(sizes.values())})")
    return 0


def _cmd_fingerprint(args: argparse.Namespace) -> int:
    from monaicxr.data.fingerprint import compute_fingerprint, write_fingerprint

    options = {} if args.mask_values == "binary" else {"mask_values": args.mask_values}
    result = index_dataset(args.dataset_dir, layout=args.layout, **options)
    fp = compute_fingerprint(result, max_masks=args.max_masks)
    path = write_fingerprint(args.out, fp)
    print(f"fingerprint: {path}")
    print(f"source:      {fp['source']}, {fp['num_records']} records, {fp['num_skipped']} skipped")
    print("classes:     " + ", ".join(f"{c} {n}" for c, n in fp["class_counts"].items()))
    return 0


def _cmd_phantoms(args: argparse.Namespace) -> int:
    from monaicxr.data.synthetic import write_phantom_dataset

    path = write_phantom_dataset(args.out_dir, n_per_class=args.per_class, size=args.size, seed=args.seed)
    print(f"SYNTHETIC chest X-ray phantoms (generated by monaicxr, not patient data): {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``monaicxr`` script (one sub-parser per command)."""
    parser = argparse.ArgumentParser(prog="monaicxr", description="MONAI-based chest X-ray toolkit.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level and show tracebacks")
    # -v is also accepted after the command; SUPPRESS keeps the sub-parser from resetting a -v given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    layouts = ["auto", *INDEXERS]

    p = sub.add_parser(
        "index",
        parents=[common],
        help="index a dataset folder; write datalist.json, splits.json and fingerprint.json",
        description="Index DATASET_DIR, split it and write datalist.json, splits.json and fingerprint.json to OUT.",
    )
    p.add_argument("dataset_dir", type=Path, metavar="DATASET_DIR")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder the three JSON files go to")
    p.add_argument("--layout", choices=layouts, default="auto", help="folder layout (default: detect it)")
    p.add_argument("--split-mode", choices=SPLIT_MODES, default="auto", help="default: the source's split if any")
    p.add_argument(
        "--ratios",
        type=float,
        nargs=3,
        default=(0.7, 0.1, 0.2),
        metavar=("TRAIN", "VAL", "TEST"),
        help="split fractions for ratios mode (default 0.7 0.1 0.2)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    p.add_argument("--task", choices=TASKS, default="lung", help="what every record must provide (default lung)")
    p.add_argument("--no-verify", action="store_true", help="do not decode every image and mask while indexing")
    p.add_argument("--mask-values", choices=MASK_VALUES, default="binary", help=_MASK_VALUES_HELP)
    p.set_defaults(func=_cmd_index)

    p = sub.add_parser("layouts", parents=[common], help="list the known dataset layouts")
    p.set_defaults(func=_cmd_layouts)

    p = sub.add_parser("detect", parents=[common], help="print the layout of a dataset folder")
    p.add_argument("dataset_dir", type=Path, metavar="DATASET_DIR")
    p.set_defaults(func=_cmd_detect)

    p = sub.add_parser("fingerprint", parents=[common], help="index a dataset folder and write its fingerprint")
    p.add_argument("dataset_dir", type=Path, metavar="DATASET_DIR")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="the JSON file to write")
    p.add_argument("--layout", choices=layouts, default="auto", help="folder layout (default: detect it)")
    p.add_argument("--max-masks", type=int, default=None, metavar="N", help="decode at most N records' masks")
    p.add_argument("--mask-values", choices=MASK_VALUES, default="binary", help=_MASK_VALUES_HELP)
    p.set_defaults(func=_cmd_fingerprint)

    p = sub.add_parser("phantoms", parents=[common], help="write the SYNTHETIC phantom data set")
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    p.add_argument("--per-class", type=int, default=40, help="images per class (default 40)")
    p.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generator (default 0)")
    p.set_defaults(func=_cmd_phantoms)

    add_bundle_commands(sub, common)  # train, evaluate, export
    add_predict_commands(sub, common)
    add_segment_classify_commands(sub, common)  # predict-lungs, compare-masking
    add_summarize_commands(sub, common)
    add_gate_command(sub, common)
    add_weights_commands(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``monaicxr`` script with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra  # config overrides of train / evaluate / export
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)
    try:
        return args.func(args)
    except USER_ERRORS as e:
        if args.verbose:
            traceback.print_exc()
        print(f"monaicxr {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
