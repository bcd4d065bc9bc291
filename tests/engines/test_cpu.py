"""monaicxr.engines.retain_freed_memory: big freed blocks are reused, not page-faulted afresh."""

from __future__ import annotations

import subprocess
import sys

import pytest

from monaicxr.engines import retain_freed_memory

SCRIPT = """
import resource, sys, torch
from monaicxr.engines import retain_freed_memory
applied = retain_freed_memory() if sys.argv[1] == "on" else False
def touch():
    t = torch.empty(100_000_000, dtype=torch.uint8)  # 100 MB, over glibc's largest mmap threshold
    t.fill_(1)
    return int(t[::4096].sum())
touch()  # the first time, every page faults in either setting
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(6):
    touch()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(setting: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, setting], capture_output=True, text=True, check=True)
    applied, faults = out.stdout.split()
    return applied, int(faults)


def test_disabled_is_a_no_op():
    assert retain_freed_memory(False) is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt: Linux only")
def test_freed_blocks_are_reused():
    applied, tuned = _faults("on")
    _, default = _faults("off")
    assert applied == "True"
    block = 100_000_000 // 4096  # pages per block
    assert default > 5 * block  # glibc's default maps each of the 6 blocks afresh: ~24,000 faults each
    assert tuned < 2 * block  # kept in the process: the blocks reuse the same pages (at most one re-faults)
