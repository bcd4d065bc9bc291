"""Keep freed memory in the process during CPU training (glibc's ``mallopt``), so big activations are not
page-faulted afresh at every step.

glibc's ``malloc`` serves every allocation over its mmap threshold (at most 32 MB) with a fresh ``mmap`` and
returns it to the operating system on ``free``. A CNN's largest activations and their gradients are far larger
(the binary recipe's first stage: 32 x 32 x 148 x 148 float32 = 90 MB per tensor at batch 32), so every training
step maps them again and the kernel zero-fills each 4 KB page on first touch: a third of the binary recipe's
step, and more than half of a BasicUNet step at 256², went there on this project's CPU machine
(docs/BENCHMARKS.md, ``benchmarks/cpu_memory_reuse.py``). PyTorch's CPU performance guide answers this
by preloading jemalloc or tcmalloc, which pip cannot install; :func:`retain_freed_memory` gets the same reuse
from glibc itself (``M_MMAP_MAX = 0``: large blocks come from the heap; ``M_TRIM_THRESHOLD`` at its maximum: freed
heap memory is kept for the next step). Neither MONAI nor torch offers this, hence this module.

The cost: the process keeps its peak memory until it exits instead of handing freed blocks back, which suits a
training process and not a long-lived server. It changes how memory is obtained, never what is computed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

__all__ = ["retain_freed_memory"]

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1
_applied = False


def retain_freed_memory(enabled: bool = True) -> bool:
    """Make glibc's ``malloc`` keep freed memory in this process (and the DataLoader workers it forks later).

    Args:
        enabled: when False, do nothing (a bundle passes ``@cpu_malloc_tuning and device is CPU``).

    Returns:
        True when the settings are in effect (now or from an earlier call); False when disabled, or where there is
        no glibc ``mallopt`` (macOS, Windows, musl), in which case nothing changes.
    """
    global _applied
    if not enabled:
        return False
    if _applied:
        return True
    if not sys.platform.startswith("linux"):
        logger.info("retain_freed_memory: not Linux, malloc left as it is")
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018  (glibc only: musl has mallopt as a no-op stub)
    except (OSError, AttributeError):
        logger.info("retain_freed_memory: no glibc mallopt, malloc left as it is")
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if mallopt(_M_MMAP_MAX, 0) != 1 or mallopt(_M_TRIM_THRESHOLD, _INT_MAX) != 1:
        logger.warning("retain_freed_memory: glibc refused the mallopt settings, malloc left as it is")
        return False
    _applied = True
    logger.info("CPU training: glibc malloc keeps freed memory for reuse (M_MMAP_MAX=0, M_TRIM_THRESHOLD=max)")
    return True
