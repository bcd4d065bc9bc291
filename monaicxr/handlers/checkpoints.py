"""Checkpoint glue: the newest epoch checkpoint MONAI's CheckpointSaver wrote (resumable training), and loading
sharded checkpoints."""

from __future__ import annotations

import io
import re
from pathlib import Path

import torch
from ignite.engine import Engine
from monai.handlers import CheckpointLoader

from monaicxr.io.checkpoints import is_sharded, load_sharded

__all__ = ["ShardedCheckpointLoader", "latest_checkpoint"]

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


class ShardedCheckpointLoader(CheckpointLoader):
    """MONAI's ``CheckpointLoader`` that also reads a sharded checkpoint (``<name>.index.json``).

    A ``load_path`` ending in ``.index.json`` is joined from its shards (:func:`monaicxr.io.load_sharded`) and
    handed to MONAI's loading as one checkpoint, so ``strict``, ``strict_shape`` and the ``load_dict`` work as
    they do for a single file; any other path is MONAI's ``CheckpointLoader`` unchanged. MONAI reads one file
    only; this subclass exists for the weights over the repository's per-file limit (U²-Net full).
    """

    def __call__(self, engine: Engine) -> None:
        path = self.load_path
        if not is_sharded(path):
            return super().__call__(engine)
        buffer = io.BytesIO()
        torch.save(load_sharded(path, map_location="cpu"), buffer)
        buffer.seek(0)
        self.logger.info(f"Joined the shards of {path}")
        self.load_path = buffer  # MONAI passes it to torch.load, which reads file objects too
        try:
            super().__call__(engine)
        finally:
            self.load_path = path
