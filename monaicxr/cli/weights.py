"""``monaicxr shrink-weights`` (a checkpoint's float tensors in half precision) and ``monaicxr calibrate``.

Bundles ship their trained weights in ``models/``; half precision halves the file (an Xception checkpoint goes
from 83 MB to 42 MB) and loads into the float32 network unchanged: ``load_state_dict`` (and MONAI's
``CheckpointLoader``) copy each tensor into the parameter's own dtype. Integer tensors (batch-norm
``num_batches_tracked``) are kept as they are. Written here because neither MONAI nor torch has a one-call
"save this checkpoint in half precision".

Weights still over the repository's ~50 MB per file in half precision (U²-Net full: 88 MB) are not committed;
``shrink-weights`` says so when DST is over that size.

Example::

    monaicxr shrink-weights runs/cls/xception/models/model.pt bundles/xception/models/model.pt
    monaicxr calibrate bundles/efficientnet_lite0/models/model.pt runs/eval_lite0/eval

``calibrate`` fits the temperature of :mod:`monaicxr.io.weights_card`; ``shrink-weights`` carries the card of SRC
(its input settings) over to DST.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_commands", "half_precision"]

#: the most a committed weights file may weigh (bytes)
MAX_COMMITTED_BYTES = 50_000_000


def half_precision(obj):
    """``obj`` (a tensor, or dicts / lists of them, as a checkpoint holds) with float32/64 tensors as float16."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.half() if obj.is_floating_point() else obj
    if isinstance(obj, dict):
        return type(obj)((k, half_precision(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(half_precision(v) for v in obj)
    return obj


def _cmd_shrink(args: argparse.Namespace) -> int:
    import torch

    from monaicxr.io.weights_card import card_path, read_card, seal_card, write_input_card

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
    if dst.stat().st_size > MAX_COMMITTED_BYTES:
        print(
            f"{dst} is over the {MAX_COMMITTED_BYTES / 1e6:g} MB a committed weights file may take, even in half "
            "precision: do not commit it to bundles/*/models/"
        )
    if card_path(src).is_file():
        # the card goes with the weights; a temperature fitted for the float32 file is dropped (refit on DST)
        card = read_card(src) or {}
        write_input_card(dst, **card.get("input", {}))
        seal_card(dst)
        print(f"{card_path(dst)}: the weights card (input settings; fit its temperature with `monaicxr calibrate`)")
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from monaicxr.io.weights_card import card_path, fit_card_temperature

    entry = fit_card_temperature(args.weights, args.eval_dir)
    print(
        f"{card_path(args.weights)}: temperature {entry['value']:.4f} from {entry['n_images']} validation images; "
        f"ECE {entry['ece_before']:.4f} -> {entry['ece_after']:.4f}, NLL {entry['nll_before']:.4f} -> "
        f"{entry['nll_after']:.4f}"
    )
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

    c = sub.add_parser(
        "calibrate",
        parents=[common],
        help="fit a classifier's temperature on its validation evaluation and store it in the weights card",
        description="Fit temperature scaling on the logits of EVAL_DIR/predictions.csv (an evaluate run of WEIGHTS "
        "on the validation section) and write it into WEIGHTS' card (models/model.pt -> models/model.json), which "
        "evaluate, inference, predict and MONAI Label then apply.",
    )
    c.add_argument("weights", metavar="WEIGHTS")
    c.add_argument("eval_dir", metavar="EVAL_DIR")
    c.set_defaults(func=_cmd_calibrate)
