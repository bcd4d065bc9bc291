"""Glue for resumable training: find the newest epoch checkpoint that MONAI's CheckpointSaver wrote."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["latest_checkpoint"]

_EPOCH = re.compile(r"checkpoint_epoch=(\d+)\.pt$")


def latest_checkpoint(ckpt_dir: str | Path, required: bool = True) -> str | None:
    """Path of the ``checkpoint_epoch=N.pt`` with the largest N in ``ckpt_dir``.

    Args:
        ckpt_dir: folder given to :class:`monai.handlers.CheckpointSaver` with ``save_interval``.
        required: raise ``FileNotFoundError`` when there is none (a resume that finds nothing to resume from
            is an error, not a silent fresh start); with ``False`` return ``None``.
    """
    folder = Path(ckpt_dir)
    found = []
    if folder.is_dir():
        for p in folder.iterdir():
            m = _EPOCH.search(p.name)
            if m:
                found.append((int(m.group(1)), p))
    if not found:
        if required:
            raise FileNotFoundError(f"resume was asked for, but {folder} holds no checkpoint_epoch=N.pt file")
        return None
    return str(max(found)[1])
