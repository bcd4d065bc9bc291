"""The studies' binary CNN trained by monaicxr (bundles/simple_cnn, binary_150.json) beside Keras, in one run.

Both sides train the same architecture (150 x 150 grayscale; conv 32 / 64 / 64 / 128 / 256, 3x3 valid, each with
batch norm, ReLU, 2x2 max-pool and dropout 0.25; dense 128 + dropout 0.5; one sigmoid output; binary cross
entropy; RMSprop, learning rate 1e-3; batch 32) on the same images (the bundle's deterministic preprocessing of
the same files, preloaded before timing), with the same number of intra-op threads, for the same number of
epochs; the first epoch of each is warm-up and not timed. Two modes:

(a) step: the training step alone on tensors in memory (monaicxr: the bundle's SupervisedTrainer over a
    DataLoader of the preloaded tensors, no workers; Keras: ``model.fit(x, y)`` on NumPy arrays).
(b) epoch: a training epoch with each framework's augmentation (rotation +-30 degrees, zoom 0.2, shifts 0.1,
    horizontal flip). monaicxr: the bundle's own ``train#dataset`` (CacheDataset; its deterministic part is
    cached before timing, as in the bundle), ``train#dataloader`` (its workers) and ``train#random_transforms``
    (RandAffined + RandFlipd). Keras: the studies' ``ImageDataGenerator(...).flow`` (``idg``) and, with
    ``--keras_modes ... layers``, ``keras.layers`` random layers over ``tf.data``.

The monaicxr side is the bundle's configuration read with MONAI's ConfigParser (network, loss, optimizer,
trainer, transforms, dataset, dataloader), with only the handlers removed (no validation, logging or
checkpoints inside the timed epochs). The bundle runs channels-last, pools before the ReLU, keeps freed memory
in the process instead of page-faulting it afresh each step, and augments without metadata tracking (all four
change how it runs, never what it computes); ``--contiguous``, ``--act_before_pool`` and ``--malloc_default``
turn the first three off, to measure what each brings; ``--compile``, ``--no_meta`` (no
metadata anywhere, the cache included) and ``--num_workers`` change other settings of how it runs. The Keras
side runs in its own virtual environment, made once with ``bash benchmarks/setup_keras_env.sh``, as a subprocess (``benchmarks/_keras_worker.py``).

Usage::

    bash benchmarks/setup_keras_env.sh                                   # once: benchmarks/.venv-keras
    python benchmarks/keras_vs_monaicxr.py                               # 256 real images, 2 threads, 2 epochs
    python benchmarks/keras_vs_monaicxr.py --images 512 --epochs 3 --rounds 2 --json runs/keras_vs.json
    python benchmarks/keras_vs_monaicxr.py --skip_keras --contiguous     # monaicxr side only, NCHW

On a machine shared with other jobs, PyTorch's OpenMP threads wait at every parallel region for a thread that
the scheduler has taken away, so ``--threads 2`` can be slower than ``--threads 1`` there, while TensorFlow's
work-stealing pool degrades gently: measure on a quiet machine, or compare at ``--threads 1``, or start the
script with ``OMP_WAIT_POLICY=PASSIVE`` (PyTorch's OpenMP only; TensorFlow does not use OpenMP). The CPU seconds
per image of (a), printed under the table, change much less with the load than images/s do.

Not a test: it measures; docs/BENCHMARKS.md records its output with the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _bench_data import resolve_dataset, training_items
from ignite.engine import Events
from monai.bundle import ConfigParser
from monai.data import get_track_meta, set_track_meta
from monai.transforms import Compose

logger = logging.getLogger("keras_vs_monaicxr")

HERE = Path(__file__).resolve().parent
CONFIGS = HERE.parent / "bundles" / "simple_cnn" / "configs"
KERAS_PYTHON = HERE / ".venv-keras" / "bin" / "python"
GOAL = 1.3


def bundle_parser(items: list[dict], output_dir: str, epochs: int, num_workers: int | None) -> ConfigParser:
    """bundles/simple_cnn's train.json + binary_150.json, on ``items``, CPU, without the trainer's handlers."""
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.json"), str(CONFIGS / "binary_150.json")])
    parser["data"] = {"training": items, "validation": [], "test": [], "source": "benchmark", "synthetic": False,
                      "root": "", "classes": list(parser["class_names"])}  # fmt: skip
    parser["output_dir"] = output_dir
    parser["device"] = "$torch.device('cpu')"
    parser["amp"] = False
    parser["show_progress"] = False
    parser["num_epochs"] = 1 + epochs
    if num_workers is not None:
        parser["num_workers"] = num_workers
    parser["train#handlers"] = []  # the ValidationHandler
    parser["train#rank0_handlers"] = []  # stats, TensorBoard, progress bar, run summary
    return parser


def run_monaicxr(mode: str, items: list[dict], preloaded: dict[str, torch.Tensor], args) -> dict[str, Any]:
    """Train the bundle's network for 1 + ``args.epochs`` epochs in ``mode`` ("step" or "epoch"); time epochs 2.."""
    out = tempfile.mkdtemp(prefix="keras_vs_monaicxr_")
    track_meta = get_track_meta()
    set_track_meta(not args.no_meta)  # global: the CacheDataset, the transforms and the forked workers follow it
    try:
        return _run_monaicxr(mode, items, preloaded, args, out)
    finally:
        set_track_meta(track_meta)


def _run_monaicxr(mode: str, items: list[dict], preloaded: dict[str, torch.Tensor], args, out: str) -> dict[str, Any]:
    parser = bundle_parser(items, out, args.epochs, args.num_workers)
    if mode == "step":  # the preloaded tensors, no augmentation, no workers: the training step alone
        data = [{"image": preloaded["image"][i], "label": preloaded["label"][i]} for i in range(len(items))]
        parser["train#trainer#train_data_loader"] = torch.utils.data.DataLoader(
            data, batch_size=parser["batch_size"], shuffle=True, num_workers=0
        )
    if args.contiguous:  # the bundle's default is channels_last (network and batches)
        parser["channels_last"] = False
    if args.act_before_pool:  # the bundle's network pools before the ReLU (same outputs, less work)
        parser["network_def#pool_before_act"] = False
    if args.malloc_default:  # the bundle keeps freed memory in the process (monaicxr.engines.retain_freed_memory)
        parser["cpu_keep_freed_memory"] = False
    if args.compile:
        parser["train#trainer#compile"] = True
    parser.get_parsed_content("initialize")  # the bundle's: seeding, and glibc malloc keeping freed memory (CPU)
    network = parser.get_parsed_content("network")
    trainer = parser.get_parsed_content("train#trainer")
    loader = trainer.data_loader
    times: list[float] = []
    cpu: list[float] = []
    marks: dict[str, float] = {}

    @trainer.on(Events.EPOCH_STARTED)
    def _start(engine):
        marks["t"], marks["c"] = time.perf_counter(), time.process_time()

    @trainer.on(Events.EPOCH_COMPLETED)
    def _stop(engine):
        times.append(time.perf_counter() - marks["t"])
        cpu.append(time.process_time() - marks["c"])

    trainer.run()
    n = len(loader.dataset)
    if mode == "step":
        config = "bundle SupervisedTrainer over a DataLoader of the preloaded tensors (no workers)"
    else:
        config = (f"bundle CacheDataset (deterministic part cached before timing) + RandAffined + RandFlipd "
                  f"(ComposeWithoutMeta), "
                  f"DataLoader num_workers={loader.num_workers}")  # fmt: skip
    config += ", contiguous NCHW" if args.contiguous else ", channels_last (bundle default)"
    config += ", ReLU before max-pool" if args.act_before_pool else ", max-pool before ReLU (bundle default)"
    config += ", glibc malloc default" if args.malloc_default else ", freed memory kept (bundle default)"
    config += ", torch.compile" if args.compile else ""
    config += ", MetaTensor tracking off" if args.no_meta else ""
    return {
        "images_per_s": n * len(times[1:]) / sum(times[1:]),
        "epoch_s": times[1:],
        "warmup_epoch_s": times[0],
        "cpu_s_per_image": sum(cpu[1:]) / (n * len(times[1:])),  # this process only (not DataLoader workers)
        "config": config,
        "params_trainable": sum(p.numel() for p in network.parameters() if p.requires_grad),
        "params_total": sum(p.numel() for p in network.parameters())
        + sum(b.numel() for name, b in network.named_buffers() if not name.endswith("num_batches_tracked")),
    }


def run_keras(npz: Path, args) -> dict[str, Any]:
    """Run benchmarks/_keras_worker.py in the Keras venv and return its JSON."""
    out = npz.with_suffix(".keras.json")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    if args.keras_keep_freed_memory:  # what monaicxr.engines.retain_freed_memory sets, through glibc's variables
        env.update(MALLOC_MMAP_MAX_="0", MALLOC_TRIM_THRESHOLD_=str(2**31 - 1))
    cmd = [str(args.keras_python), str(HERE / "_keras_worker.py"), "--data", str(npz), "--out", str(out),
           "--modes", *args.keras_modes, "--batch_size", str(args.batch_size), "--epochs", str(args.epochs),
           "--threads", str(args.threads), "--interop_threads", str(args.interop_threads)]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the Keras side failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256, help="training images per epoch (a multiple of the batch, 32)")
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs of each side, after one warm-up epoch")
    ap.add_argument("--rounds", type=int, default=1, help="repeat monaicxr then Keras; report the medians")
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads of both frameworks")
    ap.add_argument("--interop_threads", type=int, default=1, help="inter-op threads of both frameworks")
    ap.add_argument("--num_workers", type=int, default=None, help="monaicxr DataLoader workers (default: the bundle's)")
    ap.add_argument("--contiguous", action="store_true", help="monaicxr: NCHW instead of the bundle's channels_last")
    ap.add_argument(
        "--act_before_pool", action="store_true", help="monaicxr: ReLU then max-pool (the bundle pools first)"
    )
    ap.add_argument(
        "--malloc_default", action="store_true", help="monaicxr: glibc's default malloc (the bundle keeps freed memory)"
    )
    ap.add_argument("--compile", action="store_true", help="monaicxr: SupervisedTrainer(compile=True)")
    ap.add_argument("--no_meta", action="store_true", help="monaicxr: monai.data.set_track_meta(False) (plain tensors)")
    ap.add_argument("--keras_modes", nargs="+", default=["step", "idg"], choices=["step", "idg", "layers"])
    ap.add_argument(
        "--keras_keep_freed_memory",
        action="store_true",
        help="Keras: the same glibc malloc settings as the monaicxr side (MALLOC_MMAP_MAX_=0, MALLOC_TRIM_THRESHOLD_)",
    )
    ap.add_argument("--keras_python", default=str(KERAS_PYTHON), help="python of the Keras venv")
    ap.add_argument("--skip_keras", action="store_true", help="measure the monaicxr side only")
    ap.add_argument(
        "--dataset_dir", default=None, help="flat COVID-QU-Ex copy (default ../shared/data/covidqu_infection)"
    )
    ap.add_argument("--synthetic", action="store_true", help="use phantoms even when real data is present")
    ap.add_argument("--json", default=None, help="also write everything measured to this JSON file")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("ignite").setLevel(logging.WARNING)
    if not args.skip_keras and not Path(args.keras_python).is_file():
        ap.error(f"{args.keras_python} not found: run `bash benchmarks/setup_keras_env.sh` first, or --skip_keras")
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.interop_threads)

    dataset = resolve_dataset(args.dataset_dir, args.synthetic)
    items, source = training_items(dataset, args.images)
    # the bundle's deterministic transforms, once: the monaicxr (a) tensors and the Keras arrays
    parser = bundle_parser(items, tempfile.mkdtemp(prefix="keras_vs_monaicxr_"), args.epochs, args.num_workers)
    args.batch_size = parser["batch_size"]  # the bundle's, 32; Keras gets the same
    if args.images % args.batch_size:
        ap.error(f"--images must be a multiple of the bundle's batch size, {args.batch_size}: both train full batches")
    deterministic = Compose(parser.get_parsed_content("train#deterministic_transforms"))
    done = [deterministic(dict(item)) for item in items]
    preloaded = {
        "image": torch.stack([torch.as_tensor(d["image"]).as_subclass(torch.Tensor) for d in done]),
        "label": torch.stack([torch.as_tensor(d["label"]) for d in done]),
    }
    workdir = Path(tempfile.mkdtemp(prefix="keras_vs_monaicxr_"))
    npz = workdir / "data.npz"
    np.savez(npz, x=preloaded["image"].permute(0, 2, 3, 1).numpy(), y=preloaded["label"][:, 0].numpy())

    rounds: list[dict[str, Any]] = []
    for r in range(args.rounds):
        got: dict[str, Any] = {}
        for mode in ("step", "epoch"):
            logger.info("round %d: monaicxr %s ...", r + 1, mode)
            got[f"monaicxr_{mode}"] = run_monaicxr(mode, items, preloaded, args)
        if not args.skip_keras:
            logger.info("round %d: Keras %s ...", r + 1, " ".join(args.keras_modes))
            got["keras"] = run_keras(npz, args)
        rounds.append(got)

    def median(key: str, mode: str | None = None) -> float | None:
        values = [(g["keras"]["results"][mode] if mode else g[key])["images_per_s"] for g in rounds if key in g]
        return statistics.median(values) if values else None

    mx_step, mx_epoch = median("monaicxr_step"), median("monaicxr_epoch")
    keras = {m: median("keras", m) for m in args.keras_modes} if not args.skip_keras else {}
    first = rounds[0]
    mx = first["monaicxr_step"]
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"{args.threads} intra-op / {args.interop_threads} inter-op threads on both sides"
    )
    print(f"data: {source}; {args.images} images at 150x150, batch {args.batch_size}, {args.epochs} timed epochs after 1 warm-up "
          f"epoch; median of {args.rounds} round(s)")  # fmt: skip
    print(
        f"monaicxr: torch {torch.__version__}, params {mx['params_trainable']:,} trainable "
        f"({mx['params_total']:,} with batch-norm running statistics)"
    )
    if "keras" in first:
        k = first["keras"]
        print(
            f"keras: {k['framework']}, oneDNN {k['onednn']}, params {k['params_trainable']:,} trainable "
            f"({k['params_total']:,} total)"
        )
    print()
    print("| mode | monaicxr images/s | Keras images/s | monaicxr / Keras |")
    print("|---|---|---|---|")

    def row(label: str, a: float | None, b: float | None) -> None:
        ratio = f"{a / b:.2f}" if a and b else "n/a"
        print(f"| {label} | {a:.1f} | {f'{b:.1f}' if b else 'n/a'} | {ratio} |")

    row("(a) training step, preloaded tensors", mx_step, keras.get("step"))
    if "idg" in keras or args.skip_keras:
        row("(b) epoch with augmentation (Keras ImageDataGenerator)", mx_epoch, keras.get("idg"))
    if "layers" in keras:
        row("(b) epoch with augmentation (Keras layers + tf.data)", mx_epoch, keras.get("layers"))
    print()
    print(f"goal: monaicxr >= {GOAL}x Keras. CPU s/image in (a), this process only: monaicxr "
          f"{mx['cpu_s_per_image']:.3f}" + (f", Keras {first['keras']['results']['step']['cpu_s_per_image']:.3f}"
                                             if "step" in keras else ""))  # fmt: skip
    print("configurations:")
    print(f"  monaicxr (a): {first['monaicxr_step']['config']}")
    print(f"  monaicxr (b): {first['monaicxr_epoch']['config']}")
    for m in keras:
        print(f"  Keras {m}: {first['keras']['results'][m]['config']}")
    result = {"args": vars(args), "source": source, "rounds": rounds,
              "medians": {"monaicxr_step": mx_step, "monaicxr_epoch": mx_epoch, "keras": keras}}  # fmt: skip
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result


if __name__ == "__main__":
    main()
