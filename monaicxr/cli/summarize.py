"""``monaicxr summarize``: one table of the runs' ``summary.json`` files, to compare trainings side by side.

Each bundle's training writes ``<output_dir>/summary.json`` (:class:`monaicxr.handlers.RunSummary`): epochs,
data sizes, the best key metric and the last validation's metrics. This command prints them as one Markdown
(or CSV) table, a row per run, in the order given. A folder without a readable ``summary.json`` is reported on
stderr and left out; the others are still shown (exit status 1 then, 2 when none could be read).

Example::

    monaicxr summarize runs/loss_study/* --metrics val_dice val_iou val_precision val_recall val_hd95
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from pathlib import Path

__all__ = ["add_commands", "load_summary", "summary_table"]


def load_summary(run_dir: str | Path) -> dict:
    """The parsed ``summary.json`` of a run folder (or the file itself).

    Raises:
        FileNotFoundError: no ``summary.json`` there.
        ValueError: the file is not JSON or has no ``last_validation`` section.
    """
    path = Path(run_dir)
    if path.is_dir():
        path = path / "summary.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no summary.json (is it a finished bundle training folder?)")
    try:
        content = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(content, dict) or not isinstance(content.get("last_validation"), dict):
        raise ValueError(f"{path}: no 'last_validation' section; the run may not have validated yet")
    return content


def _fmt(value: object, digits: int) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}f}"
    return "" if value is None else str(value)


def summary_table(
    runs: dict[str, dict], metrics: list[str] | None = None, fmt: str = "markdown", digits: int = 4
) -> str:
    """A table of ``{name: summary}``: run, epochs, train / val sizes, the chosen last-validation metrics.

    Args:
        runs: run name -> parsed ``summary.json``.
        metrics: metric names (default: every last-validation metric of the first run, in its order).
        fmt: ``"markdown"`` or ``"csv"``.
        digits: decimals for floats.
    """
    if fmt not in ("markdown", "csv"):
        raise ValueError(f"unknown table format {fmt!r}; use 'markdown' or 'csv'")
    if metrics is None:
        metrics = list(next(iter(runs.values()))["last_validation"]) if runs else []
    header = ["run", "epochs", "n_train", "n_val", *metrics]
    rows = []
    for name, s in runs.items():
        data = s.get("data", {})
        values = [s["last_validation"].get(m) for m in metrics]
        rows.append([name, s.get("epochs_completed"), data.get("n_train"), data.get("n_val"), *values])
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return buf.getvalue()
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v, digits) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _cmd_summarize(args: argparse.Namespace) -> int:
    runs, failed = {}, 0
    for d in args.run_dirs:
        try:
            runs[Path(d).name if Path(d).is_dir() else str(d)] = load_summary(d)
        except (FileNotFoundError, ValueError) as e:
            failed += 1
            print(f"monaicxr summarize: skipped {d}: {e}", file=sys.stderr)
    if not runs:
        print("monaicxr summarize: error: no run could be read", file=sys.stderr)
        return 2
    print(summary_table(runs, args.metrics, args.format, args.digits), end="")
    return 1 if failed else 0


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register ``summarize`` on the ``monaicxr`` parser."""
    p = sub.add_parser(
        "summarize",
        parents=[common],
        help="one table of several training runs' summary.json",
        description="Print the last validation metrics of several bundle training runs as one table.",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="training output folders (or summary.json files)")
    p.add_argument("--metrics", nargs="+", default=None, help="metric columns (default: all of the first run)")
    p.add_argument("--format", choices=("markdown", "csv"), default="markdown")
    p.add_argument("--digits", type=int, default=4, help="decimals (default 4)")
    p.set_defaults(func=_cmd_summarize)


def _cmd_infection_gate(args: argparse.Namespace) -> int:
    from monaicxr.handlers.infection import gate_rows, read_rows, summarize_infection_rows

    rows = read_rows(args.rows_csv)
    column = f"p_{args.infected_class}"
    with open(args.classifier_predictions, newline="") as f:
        preds = list(csv.DictReader(f))
    if not preds or column not in preds[0]:
        raise ValueError(f"{args.classifier_predictions}: no column {column!r} (an evaluate run's predictions.csv)")
    gate = {r["image"]: float(r[column]) for r in preds}
    table = []
    for t in args.thresholds:
        s = summarize_infection_rows(gate_rows(rows, gate, t), eval_section=args.section)
        table.append({"threshold": t, **{k: v for k, v in s.items() if not isinstance(v, dict)}})
    text = json.dumps(table, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


def add_gate_command(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register ``infection-gate`` on the ``monaicxr`` parser."""
    p = sub.add_parser(
        "infection-gate",
        parents=[common],
        help="re-score an infection evaluation with an image-level classifier gate",
        description="Empty the predicted infection of every film whose classifier probability of INFECTED_CLASS is "
        "below each threshold, and print the infection summary (Dice over infected films, false-positive share "
        "on clean films, severity agreement) per threshold. ROWS_CSV: infection_summary_per_image.csv of an "
        "evaluate run; CLASSIFIER_PREDICTIONS: predictions.csv of a classifier evaluate run on the same section.",
    )
    p.add_argument("rows_csv", metavar="ROWS_CSV")
    p.add_argument("classifier_predictions", metavar="CLASSIFIER_PREDICTIONS")
    p.add_argument("--infected-class", default="COVID-19")
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.0, 0.3, 0.5, 0.7])
    p.add_argument("--section", default="validation", help="the section both runs evaluated (named in the output)")
    p.add_argument("--out", default=None, help="also write the table to this JSON file")
    p.set_defaults(func=_cmd_infection_gate)
