"""Training images/s of the EfficientNet-Lite0 classifier and FlexibleUNet, fp32 vs bfloat16 autocast.

A plain loop (forward, loss, backward, Adam step) on random grey images held in memory, so only the network is
measured: the classifier at 224 x 224 with 3 classes and cross-entropy, the FlexibleUNet at 256 x 256 with one
output channel and BCE-with-logits. "fp32" is contiguous float32; "bf16+cl" is
``torch.autocast("cpu", dtype=torch.bfloat16)`` with the network and the batches in channels-last. The first
``--warmup`` steps are not timed; images/s is the timed images over their wall time.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/efficientnet_lite_speed.py --threads 1
    python benchmarks/efficientnet_lite_speed.py --batch_size 8 --iterations 5 --modes fp32

Not a test: it measures.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import platform
import time

import torch
from torch import nn

from monaicxr.networks.nets import EfficientNetLite0, efficientnet_lite0_unet

logger = logging.getLogger(__name__)


def measure(kind: str, mode: str, batch: int, warmup: int, iterations: int) -> float:
    """Images/s of ``warmup + iterations`` training steps of one network in one mode."""
    torch.manual_seed(0)
    if kind == "classifier":
        net: nn.Module = EfficientNetLite0(in_channels=1, num_classes=3, pretrained=True)
        x, y = torch.randn(batch, 1, 224, 224), torch.randint(0, 3, (batch,))
        loss_fn: nn.Module = nn.CrossEntropyLoss()
    else:
        net = efficientnet_lite0_unet(in_channels=1, out_channels=1, pretrained=True)
        x, y = torch.randn(batch, 1, 256, 256), (torch.rand(batch, 1, 256, 256) > 0.5).float()
        loss_fn = nn.BCEWithLogitsLoss()
    fast = mode == "bf16+cl"
    if fast:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    start = 0.0
    for step in range(warmup + iterations):
        if step == warmup:
            start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if fast else contextlib.nullcontext()
        with ctx:
            out = net(x)
        loss = loss_fn(out.float(), y)
        loss.backward()
        opt.step()
    return batch * iterations / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch_size", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    ap.add_argument("--networks", nargs="+", default=["classifier", "unet"], choices=["classifier", "unet"])
    ap.add_argument("--modes", nargs="+", default=["fp32", "bf16+cl"], choices=["fp32", "bf16+cl"])
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("monaicxr").setLevel(logging.WARNING)  # not the weight-loading lines
    if args.threads:
        torch.set_num_threads(args.threads)
    logger.info(
        "%s, torch %s, %d thread(s)",
        platform.processor() or platform.machine(),
        torch.__version__,
        torch.get_num_threads(),
    )
    for kind in args.networks:
        for mode in args.modes:
            rate = measure(kind, mode, args.batch_size, args.warmup, args.iterations)
            logger.info("%-10s %-8s batch %d: %.2f images/s", kind, mode, args.batch_size, rate)


if __name__ == "__main__":
    main()
