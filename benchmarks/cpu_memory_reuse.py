"""CPU training step time with glibc's default malloc and with ``monaicxr.engines.retain_freed_memory``.

The bundles call ``retain_freed_memory`` when they train on a CPU (``cpu_keep_freed_memory``, default true): glibc
then keeps freed memory in the process instead of unmapping every block over 32 MB at ``free`` and
page-faulting it back at the next step. This script measures what that brings, per network: each setting runs
in its own subprocess (the setting is process-wide and cannot be undone), on random inputs of the bundles'
training sizes, with warm-up steps not timed. It also counts the minor page faults per step.

Usage::

    python benchmarks/cpu_memory_reuse.py                       # BasicUNet 256², DenseNet121 224², binary CNN 150²
    python benchmarks/cpu_memory_reuse.py --networks unet --steps 3

Not a test: it measures; docs/BENCHMARKS.md records its output with the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import torch

# name: (builder expression, input shape, description); the bundles' training sizes and batch sizes
NETWORKS = {
    "unet": ("monai.networks.nets.BasicUNet(spatial_dims=2, in_channels=1, out_channels=1)", (8, 1, 256, 256),
             "bundles/unet BasicUNet, 256², batch 8"),
    "densenet121": ("monai.networks.nets.DenseNet121(spatial_dims=2, in_channels=1, out_channels=3)",
                    (8, 1, 224, 224), "bundles/densenet121, 224², batch 8"),
    "simple_cnn_binary": ("monaicxr.networks.nets.SimpleCNN(in_channels=1, num_classes=1, "
                          "conv_channels=(32, 64, 64, 128, 256), batch_norm=True, dense=(128,), "
                          "spatial_size=(150, 150))", (32, 1, 150, 150),
                          "bundles/simple_cnn binary_150, 150², batch 32"),
}  # fmt: skip


def worker(name: str, keep: bool, steps: int, warmup: int, threads: int) -> dict:
    """One setting, one network: seconds per Adam step and minor page faults per step."""
    import monai.networks.nets  # noqa: F401  (used by the builder expressions)

    import monaicxr.networks.nets  # noqa: F401
    from monaicxr.engines import retain_freed_memory

    torch.set_num_threads(threads)
    applied = retain_freed_memory() if keep else False
    expr, shape, _ = NETWORKS[name]
    torch.manual_seed(0)
    net = eval(expr)  # noqa: S307  (the fixed expressions above)
    x = torch.rand(*shape)
    opt = torch.optim.Adam(net.parameters(), 1e-3)

    def step():
        opt.zero_grad()
        net(x).float().mean().backward()
        opt.step()

    for _ in range(warmup):
        step()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - t) / steps
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / steps
    return {"network": name, "keep": keep, "applied": applied, "s_per_step": seconds, "faults_per_step": faults}


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    ap.add_argument("--steps", type=int, default=4, help="timed steps per setting")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    ap.add_argument("--_worker", nargs=2, metavar=("NAME", "KEEP"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._worker:
        name, keep = args._worker
        print(json.dumps(worker(name, keep == "1", args.steps, args.warmup, args.threads)))
        return []
    results = []
    for name in args.networks:
        for keep in (False, True):
            cmd = [sys.executable, __file__, "--_worker", name, str(int(keep)), "--steps", str(args.steps),
                   "--warmup", str(args.warmup), "--threads", str(args.threads)]  # fmt: skip
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; torch {torch.__version__}, "
          f"{args.threads} threads; {args.warmup} warm-up + {args.steps} timed Adam steps per setting")  # fmt: skip
    print()
    print(
        "| network | glibc default: s/step | freed memory kept: s/step | speed-up | page faults/step (default / kept) |"
    )
    print("|---|---|---|---|---|")
    for name in args.networks:
        off, on = (next(r for r in results if r["network"] == name and r["keep"] is k) for k in (False, True))
        print(f"| {NETWORKS[name][2]} | {off['s_per_step']:.3f} | {on['s_per_step']:.3f} | "
              f"{off['s_per_step'] / on['s_per_step']:.2f}x | {off['faults_per_step']:,.0f} / {on['faults_per_step']:,.0f} |")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
