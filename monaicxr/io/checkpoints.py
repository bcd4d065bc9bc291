"""Sharded checkpoints: one state_dict stored as several files, each under a size limit, plus an index.

Bundles commit the weights behind a reported result in ``models/``, each file under ~50 MB. U²-Net full has 44.0 M
parameters: 88 MB even in half precision. Neither MONAI nor torch can split a checkpoint, so this module does,
in the layout Hugging Face uses for large models (``model.index.json`` with a ``weight_map`` from each tensor's
name to the shard file holding it, next to ``model-00001-of-00002.pt`` ...). Shards are ordinary
``torch.save`` files of tensors, so ``torch.load(..., weights_only=True)`` reads each; :func:`load_sharded`
joins them back into one state_dict and :class:`monaicxr.handlers.ShardedCheckpointLoader` loads the result
into a bundle's network.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch

__all__ = ["INDEX_SUFFIX", "is_sharded", "load_sharded", "save_sharded"]

#: a sharded checkpoint is named by its index file, ``<stem>.index.json``
INDEX_SUFFIX = ".index.json"
_FORMAT = "monaicxr sharded state_dict v1"


def is_sharded(path: str | Path | object) -> bool:
    """Whether ``path`` names a sharded checkpoint's index (a path ending in ``.index.json``)."""
    return isinstance(path, (str, Path)) and str(path).endswith(INDEX_SUFFIX)


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def save_sharded(state_dict: Mapping[str, torch.Tensor], index_path: str | Path, max_shard_bytes: int) -> list[Path]:
    """Write ``state_dict`` as shards of at most ``max_shard_bytes`` of tensor data each, and its index.

    Tensors are kept whole and in their order; a new shard starts when the next tensor would overflow the
    current one. Files: ``<stem>-00001-of-0000N.pt`` beside ``index_path`` (``<stem>.index.json``). Stale
    shards of an earlier save with the same stem are removed, so the folder holds exactly what the index names.

    Returns:
        the shard paths, then the index path.

    Raises:
        ValueError: ``index_path`` does not end in ``.index.json``, ``state_dict`` holds something other than
            tensors, or one tensor alone is larger than ``max_shard_bytes`` (naming it).
    """
    index_path = Path(index_path)
    if not is_sharded(index_path):
        raise ValueError(f"{index_path}: a sharded checkpoint is named by its index, '<name>{INDEX_SUFFIX}'")
    bad = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(
            f"{index_path}: only a flat state_dict of tensors can be sharded; {bad[:3]} are "
            f"{[type(state_dict[k]).__name__ for k in bad[:3]]} (save the network's state_dict alone)"
        )
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, tensor in state_dict.items():
        n = _nbytes(tensor)
        if n > max_shard_bytes:
            raise ValueError(
                f"{index_path}: tensor {key!r} alone is {n / 1e6:.1f} MB, over the shard limit of "
                f"{max_shard_bytes / 1e6:.1f} MB"
            )
        if size + n > max_shard_bytes and shards[-1]:
            shards.append({})
            size = 0
        shards[-1][key] = tensor.detach().cpu().contiguous()
        size += n
    stem = index_path.name[: -len(INDEX_SUFFIX)]
    folder = index_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{stem}-*-of-*.pt"):
        old.unlink()
    names = [f"{stem}-{i + 1:05d}-of-{len(shards):05d}.pt" for i in range(len(shards))]
    paths = []
    for name, shard in zip(names, shards, strict=True):
        torch.save(shard, folder / name)
        paths.append(folder / name)
    index = {
        "format": _FORMAT,
        "metadata": {"total_size": sum(_nbytes(t) for t in state_dict.values()), "shards": len(shards)},
        "weight_map": {key: name for name, shard in zip(names, shards, strict=True) for key in shard},
    }
    index_path.write_text(json.dumps(index, indent=1) + "\n")
    return [*paths, index_path]


def load_sharded(index_path: str | Path, map_location: str | torch.device | None = "cpu") -> dict[str, torch.Tensor]:
    """The state_dict a sharded checkpoint holds, in the index's order.

    Raises:
        FileNotFoundError: the index, or a shard it names, is missing (naming the file).
        ValueError: the index is not one :func:`save_sharded` writes, or a shard holds other tensors than the
            index says (naming the shard and the first differing names).
    """
    index_path = Path(index_path)
    if not index_path.is_file():
        raise FileNotFoundError(f"{index_path}: no such sharded-checkpoint index")
    try:
        index = json.loads(index_path.read_text())
        weight_map: dict[str, str] = index["weight_map"]
        if index.get("format") != _FORMAT or not isinstance(weight_map, dict):
            raise KeyError("format")
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{index_path}: not a sharded-checkpoint index written by monaicxr ({e})") from e
    expected: dict[str, list[str]] = {}
    for key, name in weight_map.items():
        expected.setdefault(name, []).append(key)
    merged: dict[str, torch.Tensor] = {}
    for name, keys in expected.items():
        if Path(name).name != name:
            raise ValueError(f"{index_path}: shard name {name!r} is not a file name beside the index")
        shard_path = index_path.parent / name
        if not shard_path.is_file():
            raise FileNotFoundError(f"{shard_path}: shard named by {index_path} is missing")
        shard = torch.load(shard_path, map_location=map_location, weights_only=True)
        if not isinstance(shard, dict) or set(shard) != set(keys):
            got = set(shard) if isinstance(shard, dict) else set()
            diff = sorted(got ^ set(keys))[:3]
            raise ValueError(f"{shard_path}: holds other tensors than {index_path} lists (e.g. {diff})")
        merged.update(shard)
    return {key: merged[key] for key in weight_map}
