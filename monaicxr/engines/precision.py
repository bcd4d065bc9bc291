"""Mixed precision on the CPU: bfloat16 autocast for MONAI's trainer and evaluator, chosen by what the CPU can do.

MONAI's ``SupervisedTrainer`` and ``SupervisedEvaluator`` autocast only on CUDA (``amp=True`` means
``torch.autocast("cuda")`` with a ``GradScaler``). On a CPU with bfloat16 instructions (x86 ``avx512_bf16`` or
``amx_bf16``, Arm ``bf16``) oneDNN runs convolutions in bfloat16 about twice as fast as in float32
(docs/BENCHMARKS.md). bfloat16 has float32's exponent range, so no loss scaling is needed; the weights, the
optimizer state and the gradients stay float32 (autocast casts per operation, "fp32 master weights").

:class:`AutocastInferer` wraps the forward pass, the only place MONAI lets a config change how the network is
called, for both engines: the network runs under ``torch.autocast``, its outputs are cast back to float32, and so the
loss, the post-processing and the metrics are computed in float32 exactly as before. Neither MONAI nor torch
picks the precision from the CPU's instruction set, hence :func:`resolve_precision`.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import torch
from monai.inferers import Inferer, SimpleInferer

__all__ = ["PRECISIONS", "AutocastInferer", "cpu_has_bf16", "resolve_precision"]

logger = logging.getLogger(__name__)

#: accepted values of a bundle's ``precision`` setting
PRECISIONS = ("auto", "fp32", "bf16")

_X86_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}
_ARM_BF16_FLAGS = {"bf16"}


def _cpu_flags(cpuinfo: str) -> set[str]:
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return flags


@lru_cache(maxsize=1)
def cpu_has_bf16(cpuinfo_path: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU has bfloat16 arithmetic instructions (read from ``/proc/cpuinfo``; False where absent).

    Without them torch still runs bfloat16, emulated, and slower than float32, so ``precision="auto"`` only
    chooses bfloat16 where this is True.
    """
    try:
        with open(cpuinfo_path) as f:
            flags = _cpu_flags(f.read())
    except OSError:
        return False
    machine = platform.machine().lower()
    wanted = _ARM_BF16_FLAGS if machine.startswith(("arm", "aarch")) else _X86_BF16_FLAGS
    return bool(flags & wanted)


def resolve_precision(precision: str, device: str | torch.device, log: bool = True) -> torch.dtype:
    """The autocast dtype a bundle's ``precision`` setting means on ``device``.

    Args:
        precision: ``"auto"`` (bfloat16 on a CPU with bfloat16 instructions, float32 on any other CPU; on CUDA
            float32 here, because CUDA mixed precision is MONAI's own ``amp`` switch), ``"fp32"``, or ``"bf16"``
            (bfloat16 even where the CPU lacks the instructions: correct, but emulated and slow, with a warning).
        device: the device the network runs on.
        log: log which path runs (once per call).

    Returns:
        ``torch.bfloat16`` or ``torch.float32``.

    Raises:
        ValueError: for a value outside :data:`PRECISIONS`.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    device = torch.device(device)
    if precision == "fp32":
        dtype, why = torch.float32, "precision 'fp32'"
    elif device.type != "cpu":
        if precision == "bf16":
            dtype, why = torch.bfloat16, f"precision 'bf16' on {device.type}"
        else:
            dtype, why = torch.float32, f"{device.type}: mixed precision is the bundle's 'amp' setting"
    elif cpu_has_bf16():
        dtype, why = torch.bfloat16, f"precision {precision!r}, the CPU has bfloat16 instructions"
    elif precision == "bf16":
        dtype, why = torch.bfloat16, "precision 'bf16' forced on a CPU without bfloat16 instructions (emulated: slow)"
        logger.warning("bfloat16 asked for, but this CPU has no bfloat16 instructions: it will be slower than fp32")
    else:
        dtype, why = torch.float32, "precision 'auto', the CPU has no bfloat16 instructions"
    if log:
        path = "bfloat16 autocast, float32 weights" if dtype == torch.bfloat16 else "float32"
        logger.info(f"compute precision on {device}: {path} ({why})")
    return dtype


def _to_float32(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() and out.dtype != torch.float32 else out
    if isinstance(out, Mapping):
        return type(out)({k: _to_float32(v) for k, v in out.items()}) if isinstance(out, dict) else out
    if isinstance(out, Sequence) and not isinstance(out, str):
        return type(out)(_to_float32(v) for v in out)
    return out


class AutocastInferer(Inferer):
    """Run another inferer under ``torch.autocast`` and return its outputs in float32.

    With ``dtype=torch.float32`` it is the wrapped inferer unchanged (no autocast context at all), so a bundle can
    always name this inferer and let :func:`resolve_precision` decide.

    Args:
        dtype: the autocast dtype (``torch.bfloat16``) or ``torch.float32`` for none.
        inferer: the inferer to wrap; default ``SimpleInferer()``.
        device_type: ``"cpu"`` or ``"cuda"``; default: the device of the inputs.

    Example::

        inferer = AutocastInferer(resolve_precision("auto", "cpu"))
        logits = inferer(images, network)  # float32 logits, computed in bfloat16 where the CPU has it
    """

    def __init__(
        self, dtype: torch.dtype = torch.bfloat16, inferer: Inferer | None = None, device_type: str | None = None
    ):
        super().__init__()
        self.dtype = dtype
        self.inferer = inferer if inferer is not None else SimpleInferer()
        self.device_type = device_type

    def __call__(self, inputs: torch.Tensor, network: Any, *args: Any, **kwargs: Any) -> Any:
        if self.dtype == torch.float32:
            return self.inferer(inputs, network, *args, **kwargs)
        device_type = self.device_type or (inputs.device.type if isinstance(inputs, torch.Tensor) else "cpu")
        with torch.autocast(device_type=device_type, dtype=self.dtype):
            out = self.inferer(inputs, network, *args, **kwargs)
        return _to_float32(out)
