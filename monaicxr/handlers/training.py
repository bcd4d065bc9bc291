"""What a long training run needs beyond MONAI's and Ignite's handlers: exact resumption, a time budget and a
guard that names the files of a batch that made training non-finite.

- :class:`TrainingState`: the state no ``state_dict`` in the bundle covers: the random-number generators
  (torch, NumPy, Python, the DataLoader's and the random transforms'), the validator's best metric, the
  early-stopping counter, the best-model saver's score and the AMP ``GradScaler``. Put it in the checkpoint's
  ``save_dict`` and ``load_dict`` next to the network, optimizer, scheduler and trainer.
- :class:`TimeBudget`: stops the trainer cleanly at an epoch end when the next epoch would not fit.
- :class:`NonFiniteGuard`: Ignite's ``TerminateOnNan`` stops quietly and names nothing; this raises, naming
  the batch's files.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import ignite.distributed as idist
import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.engines.utils import IterationEvents
from monai.utils import CommonKeys

__all__ = ["LearningRateWriter", "NonFiniteGuard", "TimeBudget", "TrainingState"]

logger = logging.getLogger(__name__)


def _random_states(obj: Any, seen: set[int], depth: int = 0) -> Iterator[np.random.RandomState]:
    """Every ``numpy.random.RandomState`` reachable from a transform (MONAI's ``Randomizable.R``), in a fixed
    order: attributes in definition order, list items in order. Each generator is yielded once."""
    if depth > 12 or id(obj) in seen:
        return
    if isinstance(obj, np.random.RandomState):
        seen.add(id(obj))
        yield obj
        return
    if isinstance(obj, (str, bytes, int, float, bool, type(None), torch.Tensor, np.ndarray, torch.nn.Module)):
        return
    seen.add(id(obj))
    if isinstance(obj, Mapping):
        children: Sequence[Any] = list(obj.values())
    elif isinstance(obj, (list, tuple)):
        children = obj
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        children = [v for k, v in vars(obj).items() if not k.startswith("__")]
    else:
        return
    for child in children:
        yield from _random_states(child, seen, depth + 1)


def _numpy_state(state: tuple) -> dict:
    name, keys, pos, has_gauss, gauss = state
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "gauss": float(gauss)}  # fmt: skip


def _numpy_tuple(d: Mapping) -> tuple:
    return d["name"], d["keys"].numpy().astype(np.uint32), d["pos"], d["has_gauss"], d["gauss"]


def _plain(value: Any) -> Any:
    """A NumPy scalar as a Python number (``weights_only`` loading refuses NumPy objects); others unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def _loader_generators(loader: Any) -> dict[str, torch.Generator]:
    """The ``torch.Generator`` objects a DataLoader shuffles or seeds its workers with (when it has any; without
    one, both draw from torch's global generator, which is saved anyway)."""
    found: dict[str, torch.Generator] = {}
    if isinstance(getattr(loader, "generator", None), torch.Generator):
        found["loader"] = loader.generator
    batch_sampler = getattr(loader, "batch_sampler", None)
    for name, sampler in (("sampler", getattr(loader, "sampler", None)),
                          ("batch_sampler", getattr(batch_sampler, "sampler", None))):  # fmt: skip
        gen = getattr(sampler, "generator", None)
        if isinstance(gen, torch.Generator) and all(gen is not g for g in found.values()):
            found[name] = gen
    return found


class TrainingState:
    """Everything a resumed run needs that the network, optimizer, scheduler and trainer ``state_dict`` lack.

    Saved at an epoch end (the bundles' ``CheckpointSaver`` runs after validation), and restored at
    ``Events.STARTED`` by the resume loader, so the next epoch draws the same numbers as in an uninterrupted run:

    - torch's global generator (CUDA's too when present): the DataLoader's shuffling and the base seed of its
      workers are drawn from it each epoch (unless the loader or sampler has its own generator, also saved);
      MONAI's ``DataLoader`` seeds each worker's transforms from that base seed, so worker streams reproduce;
    - NumPy's and Python's global generators;
    - the ``R`` generator of every random transform of the training dataset (used as is when
      ``num_workers`` is 0);
    - the validator's ``best_metric`` and ``best_metric_epoch``; the early-stopping counter and best score
      (Ignite's ``EarlyStopping.state_dict``); the best-model saver's saved score
      (:meth:`AtomicCheckpointSaver.state_dict`); the trainer's AMP ``GradScaler``.

    Workers that persist across epochs (``persistent_workers=True``) keep their transforms' generators from the
    first epoch of the process; a resumed run reseeds them, so its random augmentation differs from an
    uninterrupted run's from the resumed epoch on (the run is still valid, not identical).

    Everything is stored as tensors and plain containers, so ``torch.load(weights_only=True)`` reads it.

    Args:
        trainer: the bundle's ``SupervisedTrainer`` (its ``data_loader`` and ``scaler`` are used).
        validator: the ``SupervisedEvaluator`` whose best metric is kept.
        early_stop: MONAI's ``EarlyStopHandler`` (after ``set_trainer``).
        best_model_saver: the ``CheckpointSaver`` that writes ``model.pt`` (a
            :class:`monaicxr.handlers.AtomicCheckpointSaver`).

    Example::

        "training_state": {"_target_": "monaicxr.handlers.TrainingState", "trainer": "@train#trainer",
                           "validator": "@validate#evaluator", "early_stop": "@validate#early_stop",
                           "best_model_saver": "@validate#best_model_saver"}
    """

    def __init__(self, trainer: Engine, validator: Engine | None = None, early_stop: Any = None,
                 best_model_saver: Any = None) -> None:  # fmt: skip
        self.trainer = trainer
        self.validator = validator
        self.early_stop = early_stop
        self.best_model_saver = best_model_saver

    def _transform_states(self) -> list[np.random.RandomState]:
        dataset = getattr(getattr(self.trainer, "data_loader", None), "dataset", None)
        transform = getattr(dataset, "transform", None)
        return list(_random_states(transform, set())) if transform is not None else []

    def _early_stopping(self) -> Any:
        return getattr(self.early_stop, "_handler", None) if self.early_stop is not None else None

    def state_dict(self) -> dict:
        state: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy": _numpy_state(np.random.get_state()),
            "random": list(random.getstate()),
            "transforms": [_numpy_state(r.get_state()) for r in self._transform_states()],
            "generators": {k: g.get_state() for k, g in _loader_generators(self.trainer.data_loader).items()},
        }
        state["random"][1] = torch.tensor(state["random"][1], dtype=torch.int64)
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        scaler = getattr(self.trainer, "scaler", None)
        if scaler is not None:
            state["grad_scaler"] = scaler.state_dict()
        if self.validator is not None:
            vstate = self.validator.state
            state["validator"] = {
                "best_metric": _plain(vstate.best_metric),
                "best_metric_epoch": _plain(vstate.best_metric_epoch),
            }
        stopping = self._early_stopping()
        if stopping is not None:
            state["early_stop"] = {k: _plain(v) for k, v in stopping.state_dict().items()}
        if self.best_model_saver is not None:
            state["best_model"] = self.best_model_saver.state_dict()
        return state

    def load_state_dict(self, state: Mapping) -> None:
        torch.set_rng_state(state["torch"])
        np.random.set_state(_numpy_tuple(state["numpy"]))
        version, internal, gauss = state["random"]
        random.setstate((version, tuple(int(v) for v in internal.tolist()), gauss))
        transforms = self._transform_states()
        if len(transforms) != len(state["transforms"]):
            raise ValueError(
                f"the checkpoint holds the state of {len(state['transforms'])} random transforms, the training "
                f"transforms have {len(transforms)}: the bundle's transforms changed since it was written"
            )
        for r, s in zip(transforms, state["transforms"], strict=True):
            r.set_state(_numpy_tuple(s))
        generators = _loader_generators(self.trainer.data_loader)
        for key, gen_state in state["generators"].items():
            if key in generators:
                generators[key].set_state(gen_state)
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        scaler = getattr(self.trainer, "scaler", None)
        if scaler is not None and "grad_scaler" in state:
            scaler.load_state_dict(state["grad_scaler"])
        if self.validator is not None and "validator" in state:
            self.validator.state.best_metric = state["validator"]["best_metric"]
            self.validator.state.best_metric_epoch = state["validator"]["best_metric_epoch"]
        stopping = self._early_stopping()
        if stopping is not None and "early_stop" in state:
            stopping.load_state_dict(dict(state["early_stop"]))
        if self.best_model_saver is not None and state.get("best_model"):
            self.best_model_saver.load_state_dict(state["best_model"])


def _batch_files(batch: Any, key: str) -> list[str]:
    """The ``filename_or_obj`` of each item of a collated batch (MetaTensor meta or ``<key>_meta_dict``)."""
    names: Any = None
    if isinstance(batch, Mapping):
        value = batch.get(key)
        meta = getattr(value, "meta", None) or batch.get(f"{key}_meta_dict") or {}
        names = meta.get("filename_or_obj") if isinstance(meta, Mapping) else None
    if names is None:
        return []
    if isinstance(names, (str, bytes)):
        return [str(names)]
    return [str(n) for n in names]


class NonFiniteGuard:
    """Stop training at once, naming the files, when a batch's input or the loss is not finite.

    At ``ITERATION_STARTED`` the batch's ``image_key`` tensor is checked (the error names the items holding NaN
    or inf); at MONAI's ``IterationEvents.LOSS_COMPLETED``, before the backward pass, the loss is (naming every
    file of the batch, since the loss is one number). Ignite's ``TerminateOnNan`` checks only the output and
    ends the run without an error or a file name, so this is written here. With AMP, a non-finite loss is an
    error too (the ``GradScaler`` would only skip the step).

    Args:
        image_key: the batch key of the network input.
        loss_key: the key of the loss in the trainer's output.

    Raises:
        FloatingPointError: naming the epoch, iteration and files.
    """

    def __init__(self, image_key: str = CommonKeys.IMAGE, loss_key: str = CommonKeys.LOSS) -> None:
        self.image_key = image_key
        self.loss_key = loss_key

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_STARTED, self.check_batch)
        if engine.has_registered_events(IterationEvents.LOSS_COMPLETED):
            engine.add_event_handler(IterationEvents.LOSS_COMPLETED, self.check_loss)
        else:
            engine.add_event_handler(Events.ITERATION_COMPLETED, self.check_loss)

    def _where(self, engine: Engine) -> str:
        return f"epoch {engine.state.epoch}, iteration {engine.state.iteration}"

    def check_batch(self, engine: Engine) -> None:
        batch = engine.state.batch
        image = batch.get(self.image_key) if isinstance(batch, Mapping) else None
        if not isinstance(image, torch.Tensor) or not image.is_floating_point():
            return
        finite = torch.isfinite(image.reshape(image.shape[0], -1)).all(dim=1) if image.ndim else torch.isfinite(image)
        if bool(finite.all()):
            return
        files = _batch_files(batch, self.image_key)
        bad = [files[i] for i in torch.nonzero(~finite).flatten().tolist() if i < len(files)] or files
        raise FloatingPointError(
            f"non-finite input (NaN or inf in {self.image_key!r}) at {self._where(engine)}, in "
            f"{', '.join(bad) or 'a batch without file names'}; check or remove these images"
        )

    def check_loss(self, engine: Engine) -> None:
        output = engine.state.output
        loss = output.get(self.loss_key) if isinstance(output, Mapping) else None
        if loss is None:
            return
        value = loss.detach() if isinstance(loss, torch.Tensor) else torch.as_tensor(loss)
        if bool(torch.isfinite(value).all()):
            return
        files = _batch_files(engine.state.batch, self.image_key)
        raise FloatingPointError(
            f"non-finite loss ({value.flatten()[0].item()}) at {self._where(engine)}, on the batch of "
            f"{', '.join(files) or 'unnamed items'}; training diverged (lower the learning rate) or these "
            "images or labels hold bad values"
        )


class TimeBudget:
    """End training cleanly at an epoch end when the next epoch would not fit in ``minutes``.

    The clock starts when the trainer starts (after the data is cached). At each ``EPOCH_COMPLETED`` (attach it
    after the validation handler and the checkpoint saver, so the epoch is validated and saved) the mean epoch
    time of this run is compared with what is left; when the budget has passed or the next epoch would overrun
    it, the trainer terminates (its ``COMPLETED`` handlers run: final checkpoint, summary) and the log says how
    to continue (``--resume True``, which trains to the same ``num_epochs``). Under DDP rank 0 decides for all.

    Args:
        minutes: the budget; ``None`` (the bundles' default) means no limit and attaches nothing.
        clock: seconds, monotonic (for tests).
    """

    def __init__(self, minutes: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if minutes is not None and not (minutes > 0 and math.isfinite(minutes)):
            raise ValueError(f"time_budget_minutes must be a positive number of minutes or null, got {minutes}")
        self.minutes = minutes
        self.clock = clock
        self._start: float | None = None
        self._start_epoch = 0
        self.stopped = False

    def attach(self, engine: Engine) -> None:
        if self.minutes is None:
            return
        engine.add_event_handler(Events.STARTED, self.started)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.epoch_completed)

    def started(self, engine: Engine) -> None:
        self._start = self.clock()
        self._start_epoch = engine.state.epoch

    def epoch_completed(self, engine: Engine) -> None:
        if self._start is None or self.minutes is None:
            return
        done = engine.state.epoch - self._start_epoch
        if done <= 0 or engine.state.max_epochs is None or engine.state.epoch >= engine.state.max_epochs:
            return
        elapsed = self.clock() - self._start
        mean = elapsed / done
        budget = 60.0 * self.minutes
        stop = elapsed + mean > budget
        if idist.get_world_size() > 1:
            stop = bool(idist.broadcast(torch.tensor(int(stop)), src=0).item())
        if not stop:
            return
        self.stopped = True
        engine.logger.info(
            f"Stopped on the time budget ({self.minutes:g} min) after epoch {engine.state.epoch} of "
            f"{engine.state.max_epochs}: {elapsed / 60:.1f} min used, {mean / 60:.1f} min per epoch, so the next "
            "epoch would not fit. The last epoch is saved; run the same command with --resume True to continue "
            f"to epoch {engine.state.max_epochs}."
        )
        engine.terminate()


class LearningRateWriter:
    """Write the optimizer's learning rate (each parameter group) to TensorBoard after every epoch.

    MONAI's ``TensorBoardStatsHandler`` writes the loss and the metrics, not the learning rate that
    ``ReduceLROnPlateau`` lowers; a run whose validation curve flattens is read next to this one.

    Args:
        summary_writer: the run's ``torch.utils.tensorboard.SummaryWriter`` (one writer per run).
        optimizer: the trainer's optimizer.
        tag: the scalar's name; ``<tag>/group<i>`` when there are several parameter groups.
    """

    def __init__(self, summary_writer, optimizer, tag: str = "learning_rate") -> None:
        self.summary_writer, self.optimizer, self.tag = summary_writer, optimizer, tag

    def attach(self, engine) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine) -> None:
        groups = self.optimizer.param_groups
        for i, group in enumerate(groups):
            tag = self.tag if len(groups) == 1 else f"{self.tag}/group{i}"
            self.summary_writer.add_scalar(tag, float(group["lr"]), engine.state.epoch)
        self.summary_writer.flush()
