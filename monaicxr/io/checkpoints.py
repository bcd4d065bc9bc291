"""Checkpoint files: atomic writes, loads that say what is wrong, and sharded checkpoints.

:func:`save_atomic` writes a checkpoint so that a kill or a full disk never leaves a damaged file under the final
name, and :func:`load_checkpoint` reads one and names the file and the problem (truncated, not a checkpoint,
keys of another network, non-finite weights) where ``torch.load`` would give a zip-reader or ``weights_only``
message. torch writes files in place; Ignite's ``DiskSaver(atomic=True)`` writes a temporary file and renames it,
but neither flushes it to the disk (``fsync``) nor syncs the folder, so after a power loss the new name can point
at an empty file; these two functions add that.

Sharded checkpoints: one state_dict stored as several files, each under a size limit, plus an index.

Bundles commit the weights behind a reported result in ``models/``, each file under ~50 MB. U²-Net full has 44.0 M
parameters: 88 MB even in half precision. Neither MONAI nor torch can split a checkpoint, so this module does,
in the layout Hugging Face uses for large models (``model.index.json`` with a ``weight_map`` from each tensor's
name to the shard file holding it, next to ``model-00001-of-00002.pt`` ...). Shards are ordinary
``torch.save`` files of tensors, so ``torch.load(..., weights_only=True)`` reads each; :func:`load_sharded`
joins them back into one state_dict and :class:`monaicxr.handlers.ShardedCheckpointLoader` loads the result
into a bundle's network.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "CheckpointError",
    "INDEX_SUFFIX",
    "TMP_SUFFIX",
    "is_sharded",
    "load_checkpoint",
    "load_sharded",
    "non_finite_tensor",
    "save_atomic",
    "save_sharded",
]

#: suffix of the temporary file :func:`save_atomic` writes beside the final one (left behind only by a kill)
TMP_SUFFIX = ".tmp"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and what is wrong with it."""


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_atomic(obj: Any, path: str | Path, save: Callable[..., None] = torch.save, **kwargs: Any) -> Path:
    """Write ``obj`` to ``path`` so that ``path`` is always either the previous file or the complete new one.

    The object is written to ``<path>.tmp`` in the same folder, flushed and ``fsync``-ed, renamed over ``path``
    with ``os.replace`` (atomic on POSIX and Windows) and the folder is ``fsync``-ed. A failure removes the
    temporary file; a kill can leave it behind, and the next save of the same name overwrites it. The file gets
    the usual permissions (umask), unlike ``tempfile``'s owner-only ones, which is why MONAI turns Ignite's
    atomic mode off.

    Args:
        obj: what to save (a checkpoint dict).
        path: the final file.
        save: the serialiser, called as ``save(obj, file_object, **kwargs)`` (``torch.save``).
        kwargs: passed to ``save``.

    Raises:
        OSError: writing failed (a full disk: ``errno.ENOSPC``); the message names ``path`` and says the previous
            file is unchanged.
    """
    path = Path(path)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        with open(tmp, "wb") as f:
            save(obj, f, **kwargs)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            reason = e.strerror or str(e)
            if e.errno == errno.ENOSPC:
                reason = "the disk is full (no space left on device)"
            raise OSError(
                e.errno,
                f"could not write checkpoint {path}: {reason}; no file was replaced (an existing {path.name} is "
                f"unchanged) and the partial {tmp.name} was removed",
            ) from e
        raise
    _fsync_dir(path.parent)
    return path


def _tensors(obj: Any, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from _tensors(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _tensors(v, f"{prefix}.{i}" if prefix else str(i))


def non_finite_tensor(obj: Any) -> str | None:
    """The name (dotted path) of the first floating-point tensor in ``obj`` holding NaN or inf, else ``None``."""
    for name, t in _tensors(obj):
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            return name
    return None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def load_checkpoint(
    path: str | Path,
    map_location: Any = None,
    expected: Mapping[str, Any] | None = None,
) -> dict:
    """Load a checkpoint written by ``torch.save`` (``weights_only=True``) and check it against ``expected``.

    Args:
        path: the checkpoint file.
        map_location: passed to ``torch.load``.
        expected: the objects a ``CheckpointLoader`` would load into (its ``load_dict``); each key must be in the
            checkpoint, a ``torch.nn.Module``'s entry must have the module's tensor names and shapes, and every
            floating-point tensor of a module's entry must be finite. A single-key ``expected`` also accepts a
            file holding that object's state_dict alone (as MONAI's loader does).

    Returns:
        the checkpoint dict, keyed like ``expected``.

    Raises:
        CheckpointError: naming ``path``: missing, truncated or corrupt, not a checkpoint (another pickle or
            another object), missing keys, keys or shapes of another network, non-finite weights.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): its write was cut off")
    is_zip = head == b"PK\x03\x04"  # torch.save writes a zip archive
    if is_zip and not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"checkpoint {path} is truncated: it starts as a torch.save archive but its end (the zip directory) "
            "is missing, so its write was cut off"
        )
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if "Unsupported" in ln or "Unsupported global" in ln]
        why = f" ({lines[0].split(' was not an allowed')[0][:160]})" if lines else ""
        raise CheckpointError(
            f"{path} is not a checkpoint of tensors and plain containers{why}; torch refuses to unpickle arbitrary "
            "objects, and the bundles' CheckpointSaver never writes them"
        ) from e
    except Exception as e:
        if not is_zip:
            raise CheckpointError(f"{path} is not a checkpoint (not a torch.save archive)") from e
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt: {_first_line(e)[:200]}") from e
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"{path} is not a checkpoint: it holds a {type(checkpoint).__name__}, not a dict")
    checkpoint = dict(checkpoint)
    if not expected:
        return checkpoint
    if len(expected) == 1:
        (key,) = expected
        if key not in checkpoint:
            checkpoint = {key: checkpoint}
    missing = [k for k in expected if k not in checkpoint]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} lacks {missing} (it holds {sorted(checkpoint)}); it was written by another "
            "configuration or an older version"
        )
    for key, obj in expected.items():
        if isinstance(obj, torch.nn.parallel.DistributedDataParallel | torch.nn.DataParallel):
            obj = obj.module
        if not isinstance(obj, torch.nn.Module):
            continue
        state = checkpoint[key]
        if not isinstance(state, Mapping):
            raise CheckpointError(f"checkpoint {path}: {key!r} is a {type(state).__name__}, not a state_dict")
        own = obj.state_dict()
        lacking = [k for k in own if k not in state]
        extra = [k for k in state if k not in own]
        if lacking or extra:
            raise CheckpointError(
                f"checkpoint {path}: {key!r} holds the weights of another network: {len(lacking)} of the "
                f"{type(obj).__name__}'s tensors are missing (e.g. {lacking[:3]}) and {len(extra)} are unknown "
                f"(e.g. {extra[:3]})"
            )
        shapes = [k for k in own if isinstance(state[k], torch.Tensor) and state[k].shape != own[k].shape]
        if shapes:
            k = shapes[0]
            raise CheckpointError(
                f"checkpoint {path}: {key!r} holds the weights of a network of another size: {len(shapes)} tensors "
                f"differ in shape, e.g. {k!r} is {tuple(state[k].shape)} where the {type(obj).__name__} has "
                f"{tuple(own[k].shape)}"
            )
        bad = non_finite_tensor(state)
        if bad is not None:
            raise CheckpointError(
                f"checkpoint {path}: {key!r} holds non-finite weights (NaN or inf in {bad!r}); training had "
                "diverged when it was written, so it is refused"
            )
    return checkpoint


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
