"""CPU training speed: float32 vs bfloat16 autocast, contiguous vs channels-last, torch.compile, and whole epochs.

Three measurements, each printed as a table (docs/BENCHMARKS.md records them with the machine they ran on):

- ``step``: one training step (forward, loss, backward, Adam) of each network in each mode, on the same real films
  (COVID-QU-Ex Train from ../shared/data when present, else phantoms), the same seed and the same initial weights,
  with the loss after the timed steps, so a mode that changes the result shows it. Modes: ``fp32``,
  ``fp32_cl`` (channels-last), ``bf16`` (``monaicxr.engines.AutocastInferer``), ``bf16_cl``, and with
  ``--compile`` also ``bf16_cl_compile`` (``torch.compile`` of the network; its compile time is reported apart).
- ``pipeline``: images/s that the unet bundle's own training DataLoader delivers (its deterministic transforms
  cached, its random transforms run by the workers), without a network, so it can be set beside the step.
- ``epoch``: a bundle (``--bundle``, default unet) run for one epoch through ``python -m monai.bundle run``, once
  with the settings it shipped with before bfloat16 autocast (:data:`BEFORE`: ``--precision fp32``, and for the
  segmentation bundles ``--channels_last False``) and once with today's defaults, in one invocation on the same
  data; images/s is the training items over the trainer's epoch time that Ignite logs (validation and caching
  not included).

Usage::

    python benchmarks/cpu_training_speed.py step --threads 1
    python benchmarks/cpu_training_speed.py step --networks basicunet densenet121 --compile
    python benchmarks/cpu_training_speed.py pipeline --num_workers 1 --batches 40 [--cache_dtype uint8]
    python benchmarks/cpu_training_speed.py epoch --threads 1                      # unet, all of Train, 256²
    python benchmarks/cpu_training_speed.py epoch --bundle densenet121 --max_train_items 800

Not a test: it measures. ``tests/benchmarks`` runs it at tiny sizes to keep it working.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _bench_data import REPO, resolve_dataset, training_items
from monai.networks.nets import BasicUNet
from monai.transforms import Compose, EnsureTyped, LoadImaged, Resized
from torch import nn

from monaicxr.engines import AutocastInferer, cpu_has_bf16, retain_freed_memory
from monaicxr.io import CXRImageReader
from monaicxr.networks.nets import build_classifier
from monaicxr.transforms import BinarizeMaskd, ScaleByBitDepthd

MODES = ("fp32", "fp32_cl", "bf16", "bf16_cl")


def _lite0_unet(in_channels: int = 1) -> nn.Module:
    from monai.networks.nets import FlexibleUNet

    import monaicxr.networks  # noqa: F401  (registers the efficientnet-lite0 backbone)

    return FlexibleUNet(in_channels, 1, backbone="efficientnet-lite0", pretrained=True, spatial_dims=2)


# name -> (builder, input size, task); built fresh from one seed for every mode
NETWORKS: dict[str, tuple[Any, int, str]] = {
    "basicunet": (lambda: BasicUNet(2, 1, 1, features=(16, 16, 32, 64, 128, 16), norm="batch"), 256, "seg"),
    "densenet121": (lambda: build_classifier("densenet121", in_channels=1, num_classes=3), 224, "cls"),
    "lite0": (
        lambda: build_classifier("efficientnet_lite0", in_channels=1, num_classes=3, pretrained=True),
        224,
        "cls",
    ),
    "lite0_unet": (_lite0_unet, 256, "seg"),
    "simple_cnn": (
        lambda: build_classifier("simple_cnn", in_channels=1, num_classes=3, spatial_size=(100, 100)),
        100,
        "cls",
    ),
}


def cpu_model() -> str:
    """The CPU's model name and its bfloat16 flags, as ``lscpu`` would say them."""
    name = "unknown CPU"
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and name == "unknown CPU":
                name = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    bf16 = sorted(flags & {"avx512_bf16", "amx_bf16", "amx_tile"}) or ["no bf16 instructions"]
    return f"{name} ({', '.join(bf16)}), {os.cpu_count()} cores"


def load_batch(n: int, size: int, task: str, synthetic: bool) -> tuple[torch.Tensor, torch.Tensor, str]:
    """``n`` real films (or phantoms) resized to ``size``², with lung masks (seg) or class indices (cls)."""
    dataset = resolve_dataset(None, synthetic=synthetic)
    items, source = training_items(dataset, n)
    if task == "seg":
        from monaicxr.data.covidqu import index_covidqu_flat

        if dataset is None:
            raise SystemExit("the seg networks need lung masks: run with ../shared/data present")
        masks = {r.image: r.lung_mask for r in index_covidqu_flat(dataset, verify=False).records}
        for item in items:
            item["lung"] = masks[item["image"]]
    keys = ["image", "lung"] if task == "seg" else ["image"]
    load = Compose(
        [
            LoadImaged(keys, reader=CXRImageReader(), image_only=True, ensure_channel_first=True),
            ScaleByBitDepthd("image"),
            *([BinarizeMaskd("lung")] if task == "seg" else []),
            Resized(keys, spatial_size=(size, size), mode=["area"] + ["nearest"] * (len(keys) - 1)),
            EnsureTyped(keys, dtype=torch.float32, track_meta=False),
        ]
    )
    done = [load(dict(item)) for item in items]
    images = torch.stack([d["image"] for d in done])
    if task == "seg":
        return images, torch.stack([d["lung"] for d in done]), source
    return images, torch.tensor([item["class_index"] for item in items]), source


def measure_step(
    name: str, mode: str, images: torch.Tensor, target: torch.Tensor, warmup: int, iterations: int, seed: int = 0
) -> dict[str, Any]:
    """Train a fresh copy of ``name`` (same seed in every mode) and time its steps."""
    builder, _, task = NETWORKS[name]
    torch.manual_seed(seed)
    net = builder().train()
    cl = "_cl" in mode
    if cl:
        net = net.to(memory_format=torch.channels_last)
    compile_s = 0.0
    if mode.endswith("_compile"):
        net = torch.compile(net)
    inferer = AutocastInferer(torch.bfloat16 if mode.startswith("bf16") else torch.float32)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    loss_fn = nn.BCEWithLogitsLoss() if task == "seg" else nn.CrossEntropyLoss()
    batch = images.shape[0]
    x = images.contiguous(memory_format=torch.channels_last) if cl else images
    times, losses = [], []
    for i in range(warmup + iterations):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(inferer(x, net), target)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if i == 0 and mode.endswith("_compile"):
            compile_s = dt
        if i >= warmup:
            times.append(dt)
            losses.append(loss.item())
    return {
        "network": name,
        "mode": mode,
        "input": f"{images.shape[-2]}x{images.shape[-1]}",
        "batch": batch,
        "images_per_s": batch * len(times) / sum(times),
        "s_per_step": statistics.median(times),
        "final_loss": losses[-1],
        "compile_s": compile_s,
    }


def run_step(args) -> list[dict[str, Any]]:
    modes = list(MODES) + (["bf16_cl_compile"] if args.compile else [])
    if args.modes:
        modes = args.modes
    rows = []
    print(f"CPU: {cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print("| network | input | batch | mode | images/s | s/step | vs fp32 | loss after timed steps | compile s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.networks:
        _, size, task = NETWORKS[name]
        size = args.size or size
        images, target, source = load_batch(args.batch_size, size, task, args.synthetic)
        base = None
        for mode in modes:
            try:
                row = measure_step(name, mode, images, target, args.warmup, args.iterations)
            except Exception as e:  # torch.compile can fail on a network: a row that says so, not a dead benchmark
                if not mode.endswith("_compile"):
                    raise
                reason = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
                print(f"| {name} | {size}x{size} | {args.batch_size} | {mode} | failed: {reason} | | | | |", flush=True)
                rows.append({"network": name, "mode": mode, "failed": reason})
                continue
            row["source"] = source
            base = base or row["images_per_s"]
            rows.append(row)
            print(
                f"| {name} | {row['input']} | {row['batch']} | {mode} | {row['images_per_s']:.2f} | "
                f"{row['s_per_step']:.3f} | {row['images_per_s'] / base:.2f}x | {row['final_loss']:.4f} | "
                f"{row['compile_s']:.0f} |",
                flush=True,
            )
    return rows


def _bundle_parser(overrides: dict[str, Any]):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(REPO / "bundles" / "unet" / "configs" / "train.json"))
    parser.update(overrides)
    return parser


def run_pipeline(args) -> list[dict[str, Any]]:
    """Iterate the unet bundle's own training DataLoader (no network)."""
    dataset = resolve_dataset(args.dataset_dir, synthetic=args.synthetic)
    out = tempfile.mkdtemp(prefix="monaicxr_bench_pipeline_")
    overrides = {
        "bundle_root": str(REPO / "bundles" / "unet"),
        "output_dir": out,
        "dataset_dir": str(dataset) if dataset else None,
        "spatial_size": [args.size or 256] * 2,
        "num_workers": args.num_workers,
        "max_train_items": args.max_train_items,
        "show_progress": False,
        "cache_dtype": args.cache_dtype,
    }
    parser = _bundle_parser(overrides)
    t0 = time.perf_counter()
    loader = parser.get_parsed_content("train#dataloader")
    build_s = time.perf_counter() - t0
    cache = getattr(loader.dataset, "_cache", [])
    cache_mb = sum(v.numel() * v.element_size() for item in cache for v in item.values() if torch.is_tensor(v)) / 1e6
    print(
        f"CPU: {cpu_model()}; unet bundle train DataLoader, {args.num_workers} worker(s), cache_dtype "
        f"{args.cache_dtype}: {len(cache)} items cached in {build_s:.1f} s, {cache_mb:.0f} MB of tensors"
    )
    rows = []
    for epoch in range(2):  # the first epoch starts the workers
        n, t0 = 0, time.perf_counter()
        for i, batch in enumerate(loader):
            n += batch["image"].shape[0]
            if i + 1 >= args.batches:
                break
        dt = time.perf_counter() - t0
        rows.append(
            {"epoch": epoch + 1, "images": n, "images_per_s": n / dt, "cache_dtype": args.cache_dtype,
             "cache_mb": cache_mb}
        )  # fmt: skip
    print("| pass | images | images/s |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r['epoch']} | {r['images']} | {r['images_per_s']:.1f} |")
    return rows


_EPOCH_TIME = re.compile(r"SupervisedTrainer - INFO - Epoch\[1\] Complete\. Time taken: (\d+):(\d+):([\d.]+)")


# what each bundle ran with before bfloat16 autocast existed (the classifiers were channels-last already)
BEFORE = {
    "unet": ["--precision", "fp32", "--channels_last", "False"],
    "resunet": ["--precision", "fp32", "--channels_last", "False"],
    "densenet121": ["--precision", "fp32"],
    "efficientnet_b0": ["--precision", "fp32"],
    "simple_cnn": ["--precision", "fp32"],
}
DEFAULT_SIZE = {"unet": 256, "resunet": 256}


def run_epoch(args) -> list[dict[str, Any]]:
    """One epoch of a bundle with its former settings and with today's, in one invocation."""
    dataset = resolve_dataset(args.dataset_dir, synthetic=args.synthetic)
    settings = {"before (" + " ".join(BEFORE[args.bundle]) + ")": BEFORE[args.bundle], "defaults": []}
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads or torch.get_num_threads()))
    rows = []
    print(f"CPU: {cpu_model()}; bundles/{args.bundle}, 1 epoch, {env['OMP_NUM_THREADS']} thread(s)")
    for label, extra in settings.items():
        out = tempfile.mkdtemp(prefix="monaicxr_bench_epoch_")
        cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", f"bundles/{args.bundle}/configs/train.json",
               "--output_dir", out, "--num_epochs", "1", "--num_workers", str(args.num_workers),
               "--show_progress", "False", *extra]  # fmt: skip
        size = args.size or DEFAULT_SIZE.get(args.bundle)
        if size:
            cmd += ["--spatial_size", json.dumps([size, size])]
        if dataset:
            cmd += ["--dataset_dir", str(dataset)]
        if args.max_train_items:
            cmd += ["--max_train_items", str(args.max_train_items)]
        if args.batch_size_epoch:
            cmd += ["--batch_size", str(args.batch_size_epoch)]
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        m = _EPOCH_TIME.search(proc.stdout + proc.stderr)
        if proc.returncode != 0 or not m:
            raise SystemExit(f"{label}: the bundle run failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        seconds = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
        n_train = json.loads((Path(out) / "summary.json").read_text())["data"]["n_train"]
        rows.append({"settings": label, "n_train": n_train, "epoch_s": seconds, "images_per_s": n_train / seconds})
    print("| settings | train images | epoch s | images/s | speed-up |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['settings']} | {r['n_train']} | {r['epoch_s']:.1f} | {r['images_per_s']:.2f} | "
            f"{r['images_per_s'] / rows[0]['images_per_s']:.2f}x |"
        )
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("what", choices=["step", "pipeline", "epoch"])
    ap.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    ap.add_argument("--modes", nargs="+", default=None, help=f"subset of {MODES} (+ bf16_cl_compile)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (minutes of compiling)")
    ap.add_argument("--size", type=int, default=None, help="input size (default: each network's own)")
    ap.add_argument("--batch_size", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--num_workers", type=int, default=1)
    ap.add_argument("--bundle", default="unet", choices=sorted(BEFORE), help="epoch: the bundle to run")
    ap.add_argument("--batch_size_epoch", type=int, default=None, help="epoch: the bundle's batch size")
    ap.add_argument("--cache_dtype", default="float32", choices=["float32", "uint8"], help="pipeline: cache dtype")
    ap.add_argument("--batches", type=int, default=40, help="pipeline: batches per pass")
    ap.add_argument("--max_train_items", type=int, default=None, help="epoch/pipeline: a seeded subset of Train")
    ap.add_argument("--dataset_dir", default=None)
    ap.add_argument("--synthetic", action="store_true", help="phantoms instead of ../shared/data")
    ap.add_argument("--json", default=None, help="also write the rows here")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    retain_freed_memory()
    if args.what == "step" and not cpu_has_bf16():
        print("note: this CPU has no bfloat16 instructions; the bf16 rows are emulated")
    rows = {"step": run_step, "pipeline": run_pipeline, "epoch": run_epoch}[args.what](args)
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu_model(), "rows": rows}, indent=1))
    return rows


if __name__ == "__main__":
    main()
