"""Training images/s of each classifier, through MONAI's SupervisedTrainer as the bundles train them.

Every network comes from ``monaicxr.networks.nets.build_classifier`` with its recipe (input size, batch size,
loss, optimizer; the two simple_cnn recipes are those of bundles/simple_cnn's train.json and binary_150.json),
and trains on grayscale images preloaded in memory (real COVID-QU-Ex radiographs from ../shared/data when
present, else synthetic phantoms), so the disk and the augmentation are not measured. The first iterations
are warm-up and are not timed; images/s is the timed images over the wall time of the timed iterations,
s/step the median time of one iteration (forward, loss, backward, optimizer step).

Usage::

    python benchmarks/classifier_throughput.py                              # every network, CPU
    python benchmarks/classifier_throughput.py --networks simple_cnn simple_cnn_binary --iterations 10
    python benchmarks/classifier_throughput.py --device cuda --json runs/throughput_cuda.json
    python benchmarks/classifier_throughput.py --networks densenet121 --size 64 --batch_size 4 --iterations 2

Not a test: it measures; docs/BENCHMARKS.md records its output with the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from _bench_data import preprocess, resolve_dataset, training_items
from ignite.engine import Events
from monai.engines import SupervisedTrainer
from monai.inferers import SimpleInferer
from torch import nn

from monaicxr.engines import retain_freed_memory
from monaicxr.networks.nets import build_classifier, l2_param_groups

logger = logging.getLogger("classifier_throughput")


@dataclass
class Recipe:
    """How one classifier is trained: the network's arguments, input size, batch size, loss and optimizer."""

    network: str
    size: int
    batch: int  # the recipe's batch, used on CUDA (and on the CPU unless cpu_batch is set)
    loss: str  # "ce": CrossEntropyLoss on class indices; "bce": BCEWithLogitsLoss on one 0/1 target
    optimizer: str  # "adam_l2" (Adam, L2 on the convolutions), "rmsprop" or "adam"
    lr: float = 1e-3
    kwargs: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    cpu_batch: int | None = None  # a smaller default batch on the CPU, where one recipe step takes minutes


RECIPES: dict[str, Recipe] = {
    "simple_cnn": Recipe(
        "simple_cnn", 100, 64, "ce", "adam_l2",
        kwargs={"conv_channels": (32, 16, 16), "dense": (512, 256), "dropout": 0.25, "dense_dropout": 0.5},
        note="3-class recipe, bundles/simple_cnn train.json",
    ),
    "simple_cnn_binary": Recipe(
        "simple_cnn", 150, 32, "bce", "rmsprop",
        kwargs={"conv_channels": (32, 64, 64, 128, 256), "batch_norm": True, "dense": (128,), "num_classes": 1},
        note="binary recipe, bundles/simple_cnn binary_150.json",
    ),
    "densenet121": Recipe("densenet121", 224, 32, "ce", "adam", lr=1e-4, note="MONAI DenseNet121", cpu_batch=8),
    "efficientnet_b0": Recipe("efficientnet_b0", 224, 32, "ce", "adam", lr=1e-4, note="MONAI EfficientNetBN b0", cpu_batch=8),
    "vgg16": Recipe("vgg16", 224, 32, "ce", "adam", lr=1e-4, note="VGG-16, GAP + dense 128 head", cpu_batch=8),
    "xception": Recipe("xception", 299, 32, "ce", "adam", lr=1e-4, note="Xception", cpu_batch=8),
}  # fmt: skip


def build(recipe: Recipe, size: int, num_classes: int, device: torch.device) -> tuple[nn.Module, nn.Module, Any]:
    """The network (on ``device``), loss and optimizer of ``recipe`` at input ``size``."""
    kwargs = {"in_channels": 1, "num_classes": 1 if recipe.loss == "bce" else num_classes, **recipe.kwargs}
    if recipe.network == "simple_cnn":
        kwargs["spatial_size"] = (size, size)  # SimpleCNN flattens, so it is built for one input size
    net = build_classifier(recipe.network, **kwargs).to(device)
    loss = nn.BCEWithLogitsLoss() if recipe.loss == "bce" else nn.CrossEntropyLoss()
    if recipe.optimizer == "adam_l2":  # bundles/simple_cnn: l2_lambda 0.001 as coupled weight decay 2 * lambda
        opt = torch.optim.Adam(l2_param_groups(net, 2 * 0.001), lr=recipe.lr)
    elif recipe.optimizer == "rmsprop":
        opt = torch.optim.RMSprop(net.parameters(), lr=recipe.lr)
    else:
        opt = torch.optim.Adam(net.parameters(), lr=recipe.lr)
    return net, loss, opt


def measure(
    name: str,
    recipe: Recipe,
    images: torch.Tensor,
    classes: torch.Tensor,
    *,
    size: int,
    batch: int,
    warmup: int,
    iterations: int,
    device: torch.device,
    amp: bool,
    channels_last: bool,
    num_workers: int,
) -> dict[str, Any]:
    """Train ``recipe`` for ``warmup + iterations`` iterations with SupervisedTrainer; time the last ones."""
    net, loss, opt = build(recipe, size, num_classes=3, device=device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    n = batch * (warmup + iterations)  # one epoch of exactly the iterations run, images cycled
    index = torch.arange(n) % images.shape[0]
    labels = classes[index]
    labels = (labels == 0).float().unsqueeze(1) if recipe.loss == "bce" else labels  # binary: COVID-19 vs not
    data = [{"image": images[i], "label": labels[k]} for k, i in enumerate(index.tolist())]
    loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, num_workers=num_workers, drop_last=True)

    def prepare_batch(batchdata, device=None, non_blocking=False, **kwargs):
        image = batchdata["image"].to(device=device, non_blocking=non_blocking, memory_format=memory_format)
        return image, batchdata["label"].to(device=device, non_blocking=non_blocking)

    trainer = SupervisedTrainer(
        device=device,
        max_epochs=1,
        train_data_loader=loader,
        network=net,
        optimizer=opt,
        loss_function=loss,
        inferer=SimpleInferer(),
        prepare_batch=prepare_batch,
        amp=amp,
        decollate=False,
    )
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    marks: dict[str, float] = {}
    steps: list[float] = []

    @trainer.on(Events.ITERATION_STARTED)
    def _start(engine):
        sync()
        marks["step"] = time.perf_counter()

    @trainer.on(Events.ITERATION_COMPLETED)
    def _stop(engine):
        sync()
        now = time.perf_counter()
        if engine.state.iteration == warmup:
            marks["timed"] = now
        elif engine.state.iteration > warmup:
            steps.append(now - marks["step"])
        marks["end"] = now

    trainer.run()
    wall = marks["end"] - marks["timed"]
    return {
        "network": name,
        "input": f"{size}x{size}",
        "batch": batch,
        "params": sum(p.numel() for p in net.parameters() if p.requires_grad),
        "images_per_s": batch * iterations / wall,
        "s_per_step": statistics.median(steps),
        "timed_iterations": iterations,
        "warmup_iterations": warmup,
        "recipe": recipe.note,
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--networks",
        nargs="+",
        default=list(RECIPES),
        choices=list(RECIPES),
        metavar="NAME",
        help=f"which recipes to run (default all: {', '.join(RECIPES)})",
    )
    ap.add_argument("--size", type=int, default=None, help="input side for every network (default: each recipe's)")
    ap.add_argument("--batch_size", type=int, default=None, help="batch for every network (default: each recipe's)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed iterations first")
    ap.add_argument("--iterations", type=int, default=5, help="timed iterations")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (cuda falls back to cpu if unavailable)")
    ap.add_argument("--amp", choices=["auto", "on", "off"], default="auto", help="auto: on for CUDA, as the bundles")
    ap.add_argument("--channels_last", action="store_true", help="network and inputs in channels_last memory format")
    ap.add_argument("--num_workers", type=int, default=0, help="DataLoader workers over the preloaded tensors")
    ap.add_argument(
        "--malloc_default",
        action="store_true",
        help="CPU: glibc's default malloc (the bundles call monaicxr.engines.retain_freed_memory; so does this)",
    )
    ap.add_argument("--max_images", type=int, default=256, help="distinct images preloaded (cycled if fewer needed)")
    ap.add_argument(
        "--dataset_dir", default=None, help="flat COVID-QU-Ex copy (default ../shared/data/covidqu_infection)"
    )
    ap.add_argument("--synthetic", action="store_true", help="use phantoms even when real data is present")
    ap.add_argument("--json", default=None, help="also write the rows and the machine to this JSON file")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("ignite").setLevel(logging.WARNING)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        logger.warning("CUDA is not available: measuring on the CPU instead.")
        device = torch.device("cpu")
    keep_freed = retain_freed_memory(device.type == "cpu" and not args.malloc_default)  # as the bundles train
    amp = device.type == "cuda" if args.amp == "auto" else args.amp == "on"
    torch.backends.cudnn.benchmark = device.type == "cuda"

    def batch_of(recipe: Recipe) -> int:
        if args.batch_size:
            return args.batch_size
        return recipe.batch if device.type == "cuda" or recipe.cpu_batch is None else recipe.cpu_batch

    dataset = resolve_dataset(args.dataset_dir, args.synthetic)
    need = max(batch_of(RECIPES[n]) * (args.warmup + args.iterations) for n in args.networks)
    items, source = training_items(dataset, min(need, args.max_images))
    preloaded: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    rows = []
    for name in args.networks:
        recipe = RECIPES[name]
        size = args.size or recipe.size
        if size not in preloaded:
            preloaded[size] = preprocess(items, (size, size))
        images, classes = preloaded[size]
        batch = batch_of(recipe)
        logger.info(
            "%s: %dx%d, batch %d, %d warm-up + %d timed iterations ...",
            name,
            size,
            size,
            batch,
            args.warmup,
            args.iterations,
        )
        rows.append(
            measure(
                name,
                recipe,
                images.to(device),
                classes,
                size=size,
                batch=batch,
                warmup=args.warmup,
                iterations=args.iterations,
                device=device,
                amp=amp,
                channels_last=args.channels_last,
                num_workers=args.num_workers,
            )
        )

    machine = {
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "torch": torch.__version__,
        "amp": amp,
        "channels_last": args.channels_last,
        "freed_memory_kept": keep_freed,
        "data": f"{source}, {len(items)} images preloaded",
    }
    print(
        f"machine: {machine['processor']}, {machine['cpu_count']} CPUs, {machine['torch_threads']} torch threads, "
        f"device {machine['device']}, torch {machine['torch']}, amp {amp}, channels_last {args.channels_last}, "
        f"freed memory kept {keep_freed}"
    )
    print(f"data: {machine['data']}; grayscale input (1 channel); {args.warmup} warm-up iterations not timed")
    print()
    print(f"| network | input | batch | params | images/s | s/step (median of {args.iterations}) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['network']} | {r['input']} | {r['batch']} | {r['params']:,} | {r['images_per_s']:.1f} "
            f"| {r['s_per_step']:.3f} |"
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
