"""``monaicxr predict``: thin argument parsing over :func:`monaicxr.workflows.predict.predict`.

Example::

    monaicxr predict chest_xrays/ runs/predict
    monaicxr predict scan.dcm runs/one --models lung,classifier
    monaicxr predict chest_xrays/ runs/mine --models /path/to/my_lung_bundle classifier

Exit status: 0 when at least one image was predicted, 1 when none could be (every file unreadable, or no
image found), 2 for bad arguments, a missing input or missing weights (reported before any image is read).
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_commands"]

#: repeated from monaicxr.workflows.predict.DEFAULT_MODELS so that building the parser imports no torch
MODEL_NAMES = ("lung", "infection", "classifier")


def _cmd_predict(args: argparse.Namespace) -> int:
    from monaicxr.workflows.predict import predict

    s = predict(args.inputs, args.output, models=args.models, report=not args.no_report, progress=not args.quiet)
    for note in s["notes"]:
        print(f"note: {note}")
    for x in s["skipped"][:10]:
        print(f"skipped: {x['file']}: {x['reason']}")
    if len(s["skipped"]) > 10:
        print(f"... and {len(s['skipped']) - 10} more skipped, listed in {s['predictions_csv']}")
    print(f"predict: {s['line']}")
    print(f"csv:    {s['predictions_csv']}")
    if s["report_html"]:
        print(f"report: {s['report_html']}")
    return 0 if s["n_predicted"] else 1


def add_commands(sub, common: argparse.ArgumentParser) -> None:
    """Add ``predict`` to the ``monaicxr`` sub-parsers ``sub``."""
    p = sub.add_parser(
        "predict",
        parents=[common],
        help="predict lungs, infection and class for images; write predictions.csv, masks and report.html",
        description="Run the lung, infection and classifier bundles over INPUT (a file, a folder walked "
        "recursively, or several) and write predictions.csv, masks/, overlays/, gradcam/, report.html and "
        "summary.json to OUTPUT. Unreadable files are skipped and listed with their reason.",
    )
    p.add_argument("inputs", type=Path, nargs="+", metavar="INPUT", help="image file(s), DICOM file(s) or folder(s)")
    p.add_argument("output", type=Path, metavar="OUTPUT", help="output folder")
    p.add_argument(
        "--models",
        nargs="+",
        default=list(MODEL_NAMES),
        metavar="MODEL",
        help=f"comma-separated names from {','.join(MODEL_NAMES)} and/or bundle folders (default: all three; "
        "infection, which needs lung, is skipped with a note while bundles/unet/models/model_infection.pt does not exist)",
    )
    p.add_argument("--no-report", action="store_true", help="do not write report.html")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_predict)
