"""monaicxr.handlers.training: TrainingState (exact resumption), TimeBudget and NonFiniteGuard."""

from __future__ import annotations

import io
import logging
import random

import numpy as np
import pytest
import torch
from ignite.engine import Engine, Events
from monai.data import DataLoader, Dataset, MetaTensor
from monai.transforms import Compose, RandAffined, RandGaussianNoised

from monaicxr.handlers import NonFiniteGuard, TimeBudget, TrainingState


def _loader() -> DataLoader:
    data = [{"image": torch.full((1, 8, 8), float(i))} for i in range(6)]
    transform = Compose([RandAffined("image", prob=1.0, rotate_range=0.3), RandGaussianNoised("image", prob=1.0)])
    return DataLoader(Dataset(data, transform), batch_size=2, shuffle=True, num_workers=0)


def _draws(loader: DataLoader) -> list:
    return [torch.rand(1).item(), np.random.rand(), random.random(), [b["image"].sum().item() for b in loader]]


def test_training_state_replays_every_random_stream():
    trainer = Engine(lambda e, b: None)
    trainer.data_loader = _loader()
    state = TrainingState(trainer)
    buffer = io.BytesIO()
    torch.save(state.state_dict(), buffer)
    expected = _draws(trainer.data_loader)  # shuffling, transform generators and the global generators advance
    assert _draws(trainer.data_loader) != expected
    buffer.seek(0)
    state.load_state_dict(torch.load(buffer, weights_only=True))  # only tensors and plain containers
    assert _draws(trainer.data_loader) == expected


def test_training_state_keeps_best_metric_and_early_stopping():
    from monai.handlers import EarlyStopHandler

    trainer = Engine(lambda e, b: None)
    trainer.data_loader = _loader()
    validator = Engine(lambda e, b: None)
    validator.state.best_metric, validator.state.best_metric_epoch = 0.7, 3
    early = EarlyStopHandler(patience=5, score_function=lambda e: 0.0, trainer=trainer)
    early._handler.counter, early._handler.best_score = 2, np.float32(0.7)
    saved = TrainingState(trainer, validator, early).state_dict()

    validator.state.best_metric, validator.state.best_metric_epoch = -1, -1
    early._handler.counter, early._handler.best_score = 0, None
    TrainingState(trainer, validator, early).load_state_dict(saved)
    assert (validator.state.best_metric, validator.state.best_metric_epoch) == (0.7, 3)
    assert early._handler.counter == 2 and early._handler.best_score == pytest.approx(0.7)


class _Clock:
    def __init__(self, epoch_seconds: float) -> None:
        self.now, self.step = 0.0, epoch_seconds

    def __call__(self) -> float:
        return self.now


def _timed_run(minutes: float, epoch_seconds: float, max_epochs: int = 10, start_epoch: int = 0) -> Engine:
    clock = _Clock(epoch_seconds)
    engine = Engine(lambda e, b: setattr(clock, "now", clock.now + clock.step))
    if start_epoch:
        engine.add_event_handler(Events.STARTED, lambda e: setattr(e.state, "epoch", start_epoch))
        engine.add_event_handler(Events.STARTED, lambda e: setattr(e.state, "iteration", start_epoch))
    budget = TimeBudget(minutes, clock=clock)
    budget.attach(engine)
    engine.run([0], max_epochs=max_epochs)
    engine.budget = budget
    return engine


def test_time_budget_stops_before_an_epoch_that_would_not_fit(caplog):
    # the budget logs through the engine's logger, whose level an earlier test may have raised
    with caplog.at_level(logging.INFO), caplog.at_level(logging.INFO, logger="ignite.engine.engine.Engine"):
        engine = _timed_run(minutes=1.0, epoch_seconds=25.0)  # 25 s an epoch: 2 fit, a third would end at 75 s
    assert engine.state.epoch == 2 and engine.budget.stopped
    assert "time budget" in caplog.text and "--resume True" in caplog.text
    assert _timed_run(minutes=1.0, epoch_seconds=19.0, max_epochs=3).state.epoch == 3  # 57 s: all fit
    assert _timed_run(minutes=1.0, epoch_seconds=25.0, start_epoch=2).state.epoch == 4  # a resumed run: new clock
    assert _timed_run(minutes=1e-6, epoch_seconds=1.0).state.epoch == 1  # past the budget after one epoch
    with pytest.raises(ValueError, match="positive"):
        TimeBudget(0)


def _guarded(batch: dict, loss: float = 1.0) -> Engine:
    engine = Engine(lambda e, b: {"loss": torch.tensor(loss)})
    NonFiniteGuard().attach(engine)
    engine.run([batch], max_epochs=1)
    return engine


def _batch(values: list[float]) -> dict:
    image = MetaTensor(torch.stack([torch.full((1, 4, 4), v) for v in values]))
    image.meta["filename_or_obj"] = [f"/data/img_{i}.tif" for i in range(len(values))]
    return {"image": image}


def test_non_finite_guard_names_the_files():
    _guarded(_batch([0.0, 1.0]))
    with pytest.raises(FloatingPointError, match="non-finite input") as info:
        _guarded(_batch([0.0, float("nan"), 2.0]))
    assert "/data/img_1.tif" in str(info.value) and "img_0" not in str(info.value)
    with pytest.raises(FloatingPointError, match="non-finite loss") as info:
        _guarded(_batch([0.0, 1.0]), loss=float("inf"))
    assert "/data/img_0.tif, /data/img_1.tif" in str(info.value)
