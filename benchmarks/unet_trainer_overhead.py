"""Training images/s of bundles/unet's MONAI/Ignite trainer beside a bare PyTorch loop, in one run.

Both loops use the same network, loss, optimizer and the very same DataLoader over the same CacheDataset, so
the difference is what the trainer and its handlers cost. Epochs alternate (trainer, bare, trainer, bare, ...)
after one warm-up epoch of each; the table reports the median images/s of each and their ratio.

Usage::

    python benchmarks/unet_trainer_overhead.py                      # synthetic phantoms, bundle defaults
    python benchmarks/unet_trainer_overhead.py --dataset_dir ../shared/data/covidqu_infection --epochs 3

Not a test: it measures; docs/BENCHMARKS.md records its output with the machine it ran on.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from ignite.engine import Events
from monai.bundle import ConfigWorkflow

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundles" / "unet" / "configs"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset_dir", default=None)
    ap.add_argument("--max_items", type=int, default=None, help="use only this many training items")
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs of each loop")
    ap.add_argument("--batch_size", type=int, default=8)
    ap.add_argument("--spatial_size", type=int, nargs=2, default=None)
    ap.add_argument("--num_workers", type=int, default=2)
    ap.add_argument("--amp", action="store_true")
    args = ap.parse_args(argv)

    out = tempfile.mkdtemp(prefix="unet_bench_")
    override = {
        "output_dir": out,
        "dataset_dir": args.dataset_dir,
        "batch_size": args.batch_size,
        "num_workers": args.num_workers,
        "show_progress": False,
        "val_interval": 10**6,  # no validation inside the timed epochs
        "num_epochs": 1 + args.epochs,
        "amp": args.amp,
    }
    if args.spatial_size:
        override["spatial_size"] = list(args.spatial_size)
    wf = ConfigWorkflow(config_file=str(CONFIGS / "train.json"), meta_file=str(CONFIGS / "metadata.json"), logging_file=False, **override)
    wf.initialize()
    if args.max_items:
        wf.parser["train#dataset#data"] = f"$@data['training'][:{args.max_items}]"
    trainer = wf.parser.get_parsed_content("train#trainer")
    # what the bundle's run list attaches besides the trainer's own handlers: per-epoch checkpoints
    wf.parser.get_parsed_content("train#checkpointer").attach(trainer)
    network = wf.parser.get_parsed_content("network")
    loss_fn = wf.parser.get_parsed_content("loss")
    optimizer = wf.parser.get_parsed_content("optimizer")
    loader = trainer.data_loader
    device = wf.parser.get_parsed_content("device")
    n_items = len(loader.dataset)

    def bare_epoch() -> float:
        network.train()
        _sync(device)
        start = time.perf_counter()
        for batch in loader:
            image = batch["image"].to(device, non_blocking=True)
            label = batch["label"].to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, enabled=args.amp):
                loss = loss_fn(network(image), label)
            loss.backward()
            optimizer.step()
        _sync(device)
        return n_items / (time.perf_counter() - start)

    trainer_rates: list[float] = []
    bare_rates: list[float] = []
    marks: dict[str, float] = {}

    @trainer.on(Events.EPOCH_STARTED)
    def _start(engine):
        _sync(device)
        marks["t"] = time.perf_counter()

    @trainer.on(Events.EPOCH_COMPLETED)
    def _stop(engine):
        _sync(device)
        rate = n_items / (time.perf_counter() - marks["t"])
        if engine.state.epoch > 1:  # epoch 1 is the trainer's warm-up
            trainer_rates.append(rate)
            bare_rates.append(bare_epoch())
        else:
            bare_epoch()  # the bare loop's warm-up

    trainer.run()

    t, b = statistics.median(trainer_rates), statistics.median(bare_rates)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, device {device}")
    print(f"data: {wf.parser.get_parsed_content('data')['source']}, {n_items} training items, batch {args.batch_size}, "
          f"spatial size {wf.parser.get_parsed_content('spatial_size')}, amp {args.amp}")
    print()
    print(f"| loop | images/s (median of {args.epochs} epochs) | per-epoch images/s |")
    print("|---|---|---|")
    print(f"| bundle trainer (SupervisedTrainer + handlers) | {t:.1f} | {', '.join(f'{r:.1f}' for r in trainer_rates)} |")
    print(f"| bare PyTorch loop | {b:.1f} | {', '.join(f'{r:.1f}' for r in bare_rates)} |")
    print(f"| ratio trainer / bare | {t / b:.3f} | goal >= 0.95 |")


if __name__ == "__main__":
    main()
