"""``monaicxr train / evaluate / export``: a bundle by name, overlays by short name, config ids as options.

Thin parsing over :mod:`monaicxr.workflows.bundles`. Every option the verb does not know is a config override,
as on MONAI's bundle command line (``--num_epochs 2``, ``--spatial_size "[64, 64]"``); ``--set id=value`` does
the same for an id that looks like an option of its own. Values are Python or JSON literals where they parse
as one (``2``, ``[64, 64]``, ``True``, ``null``), strings otherwise. BUNDLE comes first.

Example::

    monaicxr train unet --overlay task_3level --num_epochs 2 --dataset_dir data/covidqu
    monaicxr evaluate simple_cnn --dataset_dir data/test_films --ckpt_path runs/simple_cnn/models/model.pt
    monaicxr export simple_cnn --onnx --torchscript --out exported/
"""

from __future__ import annotations

import argparse
import ast
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["add_commands", "parse_overrides", "parse_value"]


def parse_value(text: str) -> Any:
    """``text`` as a Python literal, else as JSON (``null``, ``true``), else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_overrides(sets: Sequence[str], extra: Sequence[str]) -> dict[str, Any]:
    """Config overrides from ``--set id=value`` items and the pass-through ``--id value`` / ``--id=value`` words.

    A ``--id`` followed by another option (or nothing) means ``True``, as with MONAI's command line.

    Raises:
        ValueError: for a ``--set`` item without ``=`` or a pass-through word that is not an option.
    """
    out: dict[str, Any] = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects id=value, got {item!r}")
        out[key] = parse_value(value)
    words = list(extra)
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith("--") or len(word) == 2:
            raise ValueError(f"unexpected argument {word!r}: config overrides are written --id value")
        key, sep, value = word[2:].partition("=")
        if sep:
            out[key] = parse_value(value)
            i += 1
        elif i + 1 < len(words) and not words[i + 1].startswith("--"):
            out[key] = parse_value(words[i + 1])
            i += 2
        else:
            out[key] = True
            i += 1
    return out


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return parse_overrides(args.set or [], getattr(args, "extra", []))


def _logging(args: argparse.Namespace) -> str | bool | None:
    return False if args.logging_conf == "none" else args.logging_conf


def _cmd_run(args: argparse.Namespace) -> int:
    from monaicxr.workflows.bundles import run_bundle

    workflow = "evaluate" if args.command == "evaluate" else "train"
    try:
        run_bundle(
            args.bundle, workflow, overlays=args.overlay or [], overrides=_overrides(args), logging_file=_logging(args)
        )
    except RuntimeError as e:
        # MONAI's config parser wraps an error raised while evaluating an expression; report the cause
        cause = _user_cause(e)
        if cause is None:
            raise
        raise cause from e
    return 0


def _user_cause(exc: BaseException) -> BaseException | None:
    """The first bad-input error (``ValueError``, ``FileNotFoundError``) that ``exc`` was raised from, if any."""
    seen = exc.__cause__ or exc.__context__
    while seen is not None:
        if isinstance(seen, (ValueError, FileNotFoundError, NotADirectoryError)):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _cmd_export(args: argparse.Namespace) -> int:
    from monaicxr.workflows.bundles import export_bundle

    written = export_bundle(
        args.bundle,
        onnx=args.onnx,
        torchscript=args.torchscript,
        overlays=args.overlay or [],
        overrides=_overrides(args),
        out_dir=args.out,
        atol=args.atol,
    )
    if "onnx" in written:
        print(f"onnx:        {written['onnx']} (max abs diff {written['max_abs_diff']:.3g}, {written['checked_with']})")
    if "torchscript" in written:
        print(f"torchscript: {written['torchscript']}")
    return 0


def _common_bundle_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", metavar="BUNDLE", help="a bundle name (unet, simple_cnn, ...) or a bundle folder")
    p.add_argument(
        "--overlay",
        action="append",
        metavar="NAME",
        help="an overlay config by short name (task_3level -> configs/task_3level.json) or path; repeatable",
    )
    p.add_argument("--set", action="append", metavar="ID=VALUE", help="override a config id; repeatable")
    p.add_argument(
        "--logging-conf",
        metavar="FILE",
        default=None,
        help="logging config file (default: the bundle's logging.conf; 'none' leaves logging as it is)",
    )


def _cmd_generate(args: argparse.Namespace) -> int:
    from monaicxr.workflows.bundle_configs import BundleConfigError, generate

    try:
        changed = generate(args.root, check=args.check)
    except BundleConfigError as err:
        raise ValueError(str(err)) from None
    root = Path(args.root).resolve()
    for path in changed:
        print(f"{'differs' if args.check else 'wrote'}: {path.relative_to(root)}")
    if args.check and changed:
        print(f"{len(changed)} generated bundle file(s) differ from configs/: run `monaicxr generate-bundles`")
        return 1
    if not changed:
        print("every generated bundle file matches configs/")
    return 0


def add_commands(sub, common: argparse.ArgumentParser) -> None:
    """Add ``train``, ``evaluate``, ``export`` and ``generate-bundles`` to the ``monaicxr`` sub-parsers."""
    g = sub.add_parser(
        "generate-bundles",
        parents=[common],
        help="write the bundles' train/evaluate/inference/multi_gpu_train.json and logging.conf from configs/",
        description="Merge each family base in configs/<family>/base/ with the bundle overlays "
        "configs/<family>/<bundle>.json and write bundles/<bundle>/configs/ (see monaicxr.workflows.bundle_configs). "
        "--check writes nothing and exits 1 when a committed file differs.",
    )
    g.add_argument("--root", default=".", help="repository root (default: the working directory)")
    g.add_argument("--check", action="store_true", help="compare only; exit 1 on drift")
    g.set_defaults(func=_cmd_generate)

    for name, text in (
        ("train", "train a bundle: train.json + overlays + overrides (MONAI's bundle run)"),
        ("evaluate", "evaluate a checkpoint: train.json + overlays + evaluate.json + overrides"),
    ):
        p = sub.add_parser(
            name,
            parents=[common],
            help=text,
            description=text + ". Unknown --id value options are config overrides.",
            allow_abbrev=False,
        )
        _common_bundle_args(p)
        p.set_defaults(func=_cmd_run, accepts_extra=True)

    p = sub.add_parser(
        "export",
        parents=[common],
        help="export a bundle's trained network to ONNX (checked against PyTorch) and / or TorchScript",
        allow_abbrev=False,
    )
    _common_bundle_args(p)
    p.add_argument("--onnx", action="store_true", help="write model.onnx (torch.onnx.export) and check its outputs")
    p.add_argument("--torchscript", action="store_true", help="write model.ts (monai.bundle ckpt_export)")
    p.add_argument("--out", metavar="DIR", default=None, help="output folder (default: the bundle's models/)")
    p.add_argument("--atol", type=float, default=1e-4, help="absolute tolerance of the ONNX check (default 1e-4)")
    p.set_defaults(func=_cmd_export, accepts_extra=True)
