"""Checkpoint glue: atomic saves, resuming from the newest checkpoint that loads, checked loads.

MONAI's ``CheckpointSaver`` and Ignite's ``Checkpoint`` do the bookkeeping (what to save when, which files to
keep, how files are named, ``Checkpoint.load_objects``); what they lack, and these classes add:

- Ignite's ``Checkpoint`` deletes the file it drops *before* writing the new one, and MONAI writes in place
  (``DiskSaver(atomic=False)``), so a kill or a full disk at that moment can leave no good checkpoint, or a
  truncated ``model.pt``. :class:`AtomicDiskSaver` writes through :func:`monaicxr.io.save_atomic` and deletes
  the dropped file only once the new one is complete; it also refuses to write non-finite weights.
- MONAI's ``CheckpointLoader`` reports a bad file in ``torch.load``'s words, and a missing one only once the
  engine runs; :class:`CheckedCheckpointLoader` names the file and the problem, a missing file when it is built.
- MONAI's ``CheckpointLoader`` takes one file, and Ignite finds only the checkpoints its own ``Checkpoint``
  instance saved in this process (``Checkpoint.last_checkpoint``; ``reload_objects`` needs the step or score
  of the file). :class:`ResumeCheckpointLoader` and :func:`latest_checkpoint` take the checkpoint folder and look
  for the files Ignite's naming gives MONAI's interval saver, newest first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ignite.distributed as idist
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint, DiskSaver
from monai.handlers import CheckpointLoader, CheckpointSaver

from monaicxr.io.checkpoints import CheckpointError, load_checkpoint, non_finite_tensor, save_atomic

__all__ = [
    "AtomicCheckpointSaver",
    "AtomicDiskSaver",
    "CheckedCheckpointLoader",
    "ResumeCheckpointLoader",
    "checkpoint_candidates",
    "latest_checkpoint",
]

#: the name Ignite's ``Checkpoint`` gives MONAI's interval checkpoint (several objects, no prefix, score "epoch"):
#: ``checkpoint_epoch=N.pt``
_EPOCH_NAME = Checkpoint.setup_filename_pattern(with_prefix=False, with_global_step=False).format(
    name="checkpoint", score_name="epoch", score="{epoch}", ext="pt"
)
_EPOCH = re.compile(re.escape(_EPOCH_NAME).replace(re.escape("{epoch}"), r"(\d+)"))


def checkpoint_candidates(ckpt_dir: str | Path) -> list[Path]:
    """The ``checkpoint_epoch=N.pt`` files in ``ckpt_dir``, newest (largest N) first.

    The name is Ignite's (``Checkpoint.setup_filename_pattern``, as MONAI's ``CheckpointSaver(save_interval=...)``
    uses it); the folder is scanned here because Ignite lists only what one ``Checkpoint`` saved in this process.
    Temporary files a killed save left behind (``*.pt.tmp``) and other names are not candidates.
    """
    folder = Path(ckpt_dir)
    found = []
    if folder.is_dir():
        for p in folder.iterdir():
            m = _EPOCH.fullmatch(p.name)
            if m and p.is_file():
                found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found, reverse=True)]


def latest_checkpoint(ckpt_dir: str | Path, required: bool = True) -> str | None:
    """Path of the ``checkpoint_epoch=N.pt`` with the largest N in ``ckpt_dir`` (whether or not it loads).

    Kept by hand: Ignite has no folder scan. ``Checkpoint.last_checkpoint`` is the last file that one instance
    saved in this process (nothing after a restart), and ``Checkpoint.reload_objects`` loads a file whose step or
    score the caller already knows. Loading the file is Ignite's ``Checkpoint.load_objects`` (see
    :class:`ResumeCheckpointLoader`).

    Args:
        ckpt_dir: folder given to :class:`monai.handlers.CheckpointSaver` with ``save_interval``.
        required: raise ``FileNotFoundError`` when there is none (a resume that finds nothing to resume from
            is an error, not a silent fresh start); with ``False`` return ``None``.
    """
    found = checkpoint_candidates(ckpt_dir)
    if not found:
        if required:
            raise FileNotFoundError(f"resume was asked for, but {ckpt_dir} holds no checkpoint_epoch=N.pt file")
        return None
    return str(found[0])


class AtomicDiskSaver(DiskSaver):
    """Ignite's ``DiskSaver`` that writes atomically and durably, and deletes old files only after a good save.

    Ignite's ``Checkpoint`` calls :meth:`remove` for the file it drops before it saves the new one; here the
    removal waits until the next save has completed, and a removal of the file being written (a fixed name
    such as ``model.pt``) is dropped, since ``os.replace`` swaps it. Each save goes through
    :func:`monaicxr.io.save_atomic` (temporary file, ``fsync``, ``os.replace``, folder ``fsync``), and a checkpoint
    holding a non-finite floating-point tensor is refused with ``FloatingPointError`` (the previous file stays).

    Args:
        dirname: the folder (created when missing; may hold files already).
        filename: a fixed file name used for every save (MONAI's ``final_filename`` / ``key_metric_filename``).
        kwargs: ``save_on_rank`` and ``torch.save`` arguments, as for ``DiskSaver``.
    """

    def __init__(self, dirname: str | Path, filename: str | None = None, **kwargs: Any) -> None:
        super().__init__(dirname=dirname, atomic=True, create_dir=True, require_empty=False, **kwargs)
        self.filename = filename
        self._to_remove: list[str] = []

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        filename = self.filename or filename
        super().__call__(checkpoint, filename, metadata)
        if idist.get_rank() == self.save_on_rank:
            for old in self._to_remove:
                if old != filename:
                    (self.dirname / old).unlink(missing_ok=True)
        self._to_remove.clear()

    def _save_func(self, checkpoint: Mapping, path: Path, func: Any) -> None:
        bad = non_finite_tensor(checkpoint)
        if bad is not None:
            raise FloatingPointError(
                f"refusing to write {path}: tensor {bad!r} holds NaN or inf (training diverged); "
                f"the previous {path.name}, if any, is unchanged"
            )
        save_atomic(checkpoint, path, save=func, **self.kwargs)

    def remove(self, filename: str) -> None:
        self._to_remove.append(self.filename or filename)


class AtomicCheckpointSaver(CheckpointSaver):
    """MONAI's ``CheckpointSaver`` writing through :class:`AtomicDiskSaver`, resumable with its best score.

    The arguments are MONAI's. MONAI builds its savers inside ``__init__`` and takes no save handler, so this
    subclass swaps each one for an :class:`AtomicDiskSaver` with the same folder and fixed name. It adds:

    - :meth:`state_dict` / :meth:`load_state_dict`: the best-metric saver's record of the score it saved
      (:class:`monaicxr.handlers.TrainingState` puts it in the training checkpoint, so a resumed run does not
      overwrite ``model.pt`` with a worse epoch).
    - on a resumed run, the ``checkpoint_epoch=N.pt`` files of earlier epochs are adopted at the first epoch, so
      ``n_saved`` keeps pruning them.
    - at an exception, a final checkpoint that cannot be written (non-finite weights) is logged, and the
      original exception is raised, not the saving error.
    """

    def __init__(self, save_dir: str, save_dict: dict, **kwargs: Any) -> None:
        super().__init__(save_dir=save_dir, save_dict=save_dict, **kwargs)
        fixed = {
            "_final_checkpoint": self._final_filename,
            "_key_metric_checkpoint": kwargs.get("key_metric_filename"),
            "_interval_checkpoint": None,
        }
        for attr, filename in fixed.items():
            ckpt: Checkpoint | None = getattr(self, attr)
            if ckpt is not None:
                ckpt.save_handler = AtomicDiskSaver(self.save_dir, filename=filename)
        self._file_prefix = kwargs.get("file_prefix", "")
        self._adopted = False

    def state_dict(self) -> dict:
        """The best-metric saver's ``Checkpoint`` state (its saved score), or ``{}`` without one."""
        if self._key_metric_checkpoint is None:
            return {}
        return dict(self._key_metric_checkpoint.state_dict())

    def load_state_dict(self, state_dict: dict) -> None:
        if state_dict and self._key_metric_checkpoint is not None:
            self._key_metric_checkpoint.load_state_dict(state_dict)

    def attach(self, engine: Engine) -> None:
        super().attach(engine)
        if self._interval_checkpoint is not None and self.epoch_level and not self._file_prefix:
            engine.add_event_handler(Events.EPOCH_STARTED, self._adopt_earlier_checkpoints)

    def _adopt_earlier_checkpoints(self, engine: Engine) -> None:
        if self._adopted or self._interval_checkpoint is None:
            return
        self._adopted = True
        ckpt = self._interval_checkpoint
        known = {item.filename for item in ckpt._saved}
        for path in checkpoint_candidates(self.save_dir):
            epoch = int(_EPOCH.fullmatch(path.name).group(1))
            if epoch < engine.state.epoch and path.name not in known:
                ckpt._saved.append(Checkpoint.Item(epoch, path.name))
        ckpt._saved.sort(key=lambda it: it[0])
        if ckpt.n_saved is not None:
            del ckpt._saved[: max(0, len(ckpt._saved) - ckpt.n_saved)]  # older ones stay on disk, untracked

    def exception_raised(self, engine: Engine, e: Exception) -> None:
        try:
            super().exception_raised(engine, e)
        except FloatingPointError as save_error:
            if save_error is e:
                raise
            self.logger.warning(f"No final checkpoint written: {save_error}")
            raise e from None


class ResumeCheckpointLoader(CheckpointLoader):
    """MONAI's ``CheckpointLoader`` that resumes from the newest checkpoint in a folder that loads.

    ``load_path`` is the checkpoint folder (or one file). At ``Events.STARTED`` the ``checkpoint_epoch=N.pt``
    files are tried newest first; one that is truncated, corrupt, not a checkpoint, lacks a ``load_dict`` key,
    holds another network or non-finite weights (:func:`monaicxr.io.load_checkpoint`) is skipped with a
    warning naming it and the reason. The log says which file the run resumes from. MONAI's loader reads one
    given file with ``torch.load`` only, so the reading is done here; the loading into the objects is Ignite's
    ``Checkpoint.load_objects`` with MONAI's ``max_epochs`` rule, as in MONAI. ``strict_shape=False`` is not
    supported.

    Raises:
        FileNotFoundError: the folder holds no ``checkpoint_epoch=N.pt`` (naming the folder).
        CheckpointError: none of them loads (naming the folder and each file's problem).
    """

    def __call__(self, engine: Engine) -> None:
        target = Path(self.load_path)
        candidates = [target] if target.is_file() else checkpoint_candidates(target)
        if not candidates:
            raise FileNotFoundError(f"resume was asked for, but {target} holds no checkpoint_epoch=N.pt file")
        problems = []
        for path in candidates:
            try:
                checkpoint = load_checkpoint(path, map_location=self.map_location, expected=self.load_dict)
            except CheckpointError as e:
                problems.append(str(e))
                if len(candidates) > 1:
                    self.logger.warning(f"Skipping checkpoint {path}: {e}")
                continue
            break
        else:
            raise CheckpointError(
                f"resume was asked for, but {target} holds no checkpoint that loads: " + " | ".join(problems)
            )
        prior_max_epochs = engine.state.max_epochs
        Checkpoint.load_objects(to_load=self.load_dict, checkpoint=checkpoint, strict=self.strict)
        if prior_max_epochs is not None and engine.state.epoch > prior_max_epochs:
            raise ValueError(
                f"{path} was written at epoch {engine.state.epoch}, past num_epochs ({prior_max_epochs}); "
                "resume with a larger --num_epochs"
            )
        engine.state.max_epochs = prior_max_epochs
        self.logger.info(
            f"Resuming from {path} (epoch {engine.state.epoch} done, iteration {engine.state.iteration}); "
            f"training continues to epoch {prior_max_epochs}"
        )


class CheckedCheckpointLoader(CheckpointLoader):
    """MONAI's ``CheckpointLoader`` that first checks the file and names it and the problem when it cannot load.

    A ``load_path`` that is not a file is refused when the handler is built (a :class:`monaicxr.io.CheckpointError`
    naming it), not when the engine starts; MONAI's loader fails only then, in ``torch.load``'s words. At
    ``Events.STARTED``, ``torch.load`` reports a truncated file as a zip-reader error, a foreign pickle with its
    ``weights_only`` advice, and a network mismatch as a list of state_dict keys; here
    :func:`monaicxr.io.load_checkpoint` reads the file first and raises :class:`monaicxr.io.CheckpointError`
    naming it and saying what is wrong (truncated, not a checkpoint, weights of another network or size,
    non-finite weights). A good file is then loaded by MONAI unchanged (so it is read twice; a model file is
    small next to an evaluation). With ``strict=False`` or ``strict_shape=False`` the content check is left out,
    as MONAI then loads partial matches on purpose.

    Raises:
        CheckpointError: ``load_path`` names no file (when built); the file cannot be used (when the engine
            starts).
    """

    def __init__(self, load_path: str, load_dict: dict, *args: Any, **kwargs: Any) -> None:
        if isinstance(load_path, (str, Path)) and not Path(load_path).is_file():
            raise CheckpointError(
                f"checkpoint {load_path} does not exist; train the bundle first (its best model is written to "
                "<output_dir>/models/model.pt), or pass --ckpt_path FILE"
            )
        super().__init__(load_path, load_dict, *args, **kwargs)

    def __call__(self, engine: Engine) -> None:
        if self.strict and self.strict_shape and isinstance(self.load_path, (str, Path)):
            load_checkpoint(self.load_path, map_location=self.map_location, expected=self.load_dict)
        super().__call__(engine)
