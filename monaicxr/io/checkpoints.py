"""Checkpoint files: atomic writes and loads that say what is wrong.

:func:`save_atomic` writes a checkpoint so that a kill or a full disk never leaves a damaged file under the final
name, and :func:`load_checkpoint` reads one and names the file and the problem (truncated, not a checkpoint,
keys of another network, non-finite weights) where ``torch.load`` would give a zip-reader or ``weights_only``
message. torch writes files in place; Ignite's ``DiskSaver(atomic=True)`` writes a temporary file and renames it,
but neither flushes it to the disk (``fsync``) nor syncs the folder, so after a power loss the new name can point
at an empty file; these two functions add that.

Bundles commit only weights that fit the repository's ~50 MB per file in half precision (``monaicxr
shrink-weights``); a larger network's weights are not committed, so every committed checkpoint is one file.
"""

from __future__ import annotations

import errno
import os
import pickle
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = ["CheckpointError", "TMP_SUFFIX", "load_checkpoint", "non_finite_tensor", "save_atomic"]

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
