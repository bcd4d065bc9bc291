"""``monaicxr shrink-weights``: store a checkpoint's floating-point tensors in half precision.

Bundles ship their trained weights in ``models/``; half precision halves the file (an Xception checkpoint goes
from 83 MB to 42 MB) and loads into the float32 network unchanged: ``load_state_dict`` (and MONAI's
``CheckpointLoader``) copy each tensor into the parameter's own dtype. Integer tensors (batch-norm
``num_batches_tracked``) are kept as they are. Written here because neither MONAI nor torch has a one-call
"save this checkpoint in half precision".

Example::

    monaicxr shrink-weights runs/cls/xception/models/model.pt bundles/xception/models/model.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

__all__ = ["add_commands", "half_precision"]


def half_precision(obj):
    """``obj`` (a tensor, or dicts / lists of them, as a checkpoint holds) with float32/64 tensors as float16."""
    if isinstance(obj, torch.Tensor):
        return obj.half() if obj.is_floating_point() else obj
    if isinstance(obj, dict):
        return type(obj)((k, half_precision(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(half_precision(v) for v in obj)
    return obj


def _cmd_shrink(args: argparse.Namespace) -> int:
    src, dst = Path(args.src), Path(args.dst)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no such checkpoint file")
    try:
        content = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a file that is not a checkpoint
        raise ValueError(f"{src}: not a PyTorch checkpoint of tensors ({e})") from e
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(half_precision(content), dst)
    print(f"{dst}: {dst.stat().st_size / 1e6:.1f} MB (from {src.stat().st_size / 1e6:.1f} MB)")
    return 0


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register ``shrink-weights`` on the ``monaicxr`` parser."""
    p = sub.add_parser(
        "shrink-weights",
        parents=[common],
        help="copy a checkpoint with its floating-point tensors in half precision",
        description="Copy SRC to DST with float tensors stored as float16 (they load into float32 networks).",
    )
    p.add_argument("src", metavar="SRC")
    p.add_argument("dst", metavar="DST")
    p.set_defaults(func=_cmd_shrink)
