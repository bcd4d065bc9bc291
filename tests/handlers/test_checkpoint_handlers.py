"""monaicxr.handlers.checkpoints: atomic savers that keep the last good file, and resuming from a folder."""

from __future__ import annotations

import errno
import io
import logging

import pytest
import torch
from ignite.engine import Engine, Events

from monaicxr.handlers import AtomicCheckpointSaver, ResumeCheckpointLoader, checkpoint_candidates
from monaicxr.io import CheckpointError


def _engine(net: torch.nn.Module) -> Engine:
    def step(engine, batch):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(1.0)

    engine = Engine(step)
    engine.state.metrics = {}
    return engine


def _disk_full(monkeypatch):
    real = torch.save

    def save(obj, f, *args, **kwargs):
        buffer = io.BytesIO()
        real(obj, buffer)
        f.write(buffer.getvalue()[:100])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", save)


def test_full_disk_keeps_the_previous_epoch_checkpoint(tmp_path, monkeypatch):
    """Ignite deletes the file it drops before saving; with n_saved=1 a full disk would leave nothing."""
    net = torch.nn.Linear(2, 2)
    engine = _engine(net)
    save_dict = {"model": net, "optimizer": torch.optim.SGD(net.parameters(), lr=0.1)}
    AtomicCheckpointSaver(str(tmp_path), save_dict, save_interval=1, n_saved=1).attach(engine)

    @engine.on(Events.EPOCH_STARTED(once=2))
    def _fill_disk(_):
        _disk_full(monkeypatch)

    with pytest.raises(OSError, match="disk is full") as info:
        engine.run([0], max_epochs=3)
    assert "checkpoint_epoch=2.pt" in str(info.value)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint_epoch=1.pt"]
    assert torch.load(tmp_path / "checkpoint_epoch=1.pt", weights_only=True)["model"]["bias"].shape == (2,)
    assert "unchanged" in str(info.value)


def test_best_model_is_replaced_atomically_and_never_with_nan(tmp_path, monkeypatch):
    net = torch.nn.Linear(2, 2)
    saver = AtomicCheckpointSaver(str(tmp_path), {"model": net}, save_key_metric=True, key_metric_name="dice",
                                  key_metric_filename="model.pt")  # fmt: skip
    scores = iter([0.5, 0.7, 0.9, 0.95])
    engine = Engine(lambda e, b: None)

    @engine.on(Events.EPOCH_COMPLETED)
    def _metric(e):
        e.state.metrics = {"dice": next(scores)}

    saver.attach(engine)
    engine.run([0], max_epochs=2)
    saved = torch.load(tmp_path / "model.pt", weights_only=True)
    assert saver.state_dict()["_saved"][0][0] == pytest.approx(0.7)

    with torch.no_grad():
        net.weight[0, 0] = float("nan")
    engine2 = Engine(lambda e, b: None)
    engine2.add_event_handler(Events.EPOCH_COMPLETED, _metric)
    saver.attach(engine2)
    with pytest.raises(FloatingPointError, match="refusing to write .*model.pt.*NaN"):
        engine2.run([0], max_epochs=1)
    kept = torch.load(tmp_path / "model.pt", weights_only=True)
    assert all(torch.equal(saved[k], kept[k]) for k in saved)
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_best_model_score_survives_a_resume(tmp_path):
    net = torch.nn.Linear(2, 2)
    kwargs = {"save_key_metric": True, "key_metric_name": "dice", "key_metric_filename": "model.pt"}
    first = AtomicCheckpointSaver(str(tmp_path), {"model": net}, **kwargs)
    engine = Engine(lambda e, b: None)
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: setattr(e.state, "metrics", {"dice": 0.8}))
    first.attach(engine)
    engine.run([0], max_epochs=1)
    before = (tmp_path / "model.pt").read_bytes()

    second = AtomicCheckpointSaver(str(tmp_path), {"model": net}, **kwargs)
    second.load_state_dict(first.state_dict())
    with torch.no_grad():
        net.weight.add_(1.0)
    engine2 = Engine(lambda e, b: None)
    engine2.add_event_handler(Events.EPOCH_COMPLETED, lambda e: setattr(e.state, "metrics", {"dice": 0.6}))
    second.attach(engine2)
    engine2.run([0], max_epochs=1)
    assert (tmp_path / "model.pt").read_bytes() == before  # the worse epoch did not overwrite the best model


def _write_epochs(folder, net, epochs):
    for n in epochs:
        torch.save({"model": net.state_dict(), "trainer": {"epoch_length": 1, "max_epochs": 9, "iteration": n}},
                   folder / f"checkpoint_epoch={n}.pt")  # fmt: skip


def test_resume_skips_a_truncated_newest_checkpoint(tmp_path, caplog):
    net = torch.nn.Linear(2, 2)
    _write_epochs(tmp_path, net, [1, 2, 3])
    newest = tmp_path / "checkpoint_epoch=3.pt"
    newest.write_bytes(newest.read_bytes()[:200])
    (tmp_path / "checkpoint_epoch=4.pt.tmp").write_bytes(b"PK\x03\x04 half")  # what a killed save leaves
    assert [p.name for p in checkpoint_candidates(tmp_path)] == [f"checkpoint_epoch={n}.pt" for n in (3, 2, 1)]

    trainer = Engine(lambda e, b: None)
    ResumeCheckpointLoader(str(tmp_path), {"model": net, "trainer": trainer}).attach(trainer)
    started = []
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: started.append(e.state.epoch))
    # the loader logs through the engine's logger, whose level an earlier test may have raised
    with caplog.at_level(logging.INFO), caplog.at_level(logging.INFO, logger=trainer.logger.name):
        trainer.run([0], max_epochs=4)
    assert started == [3, 4]
    assert "Skipping checkpoint" in caplog.text and "checkpoint_epoch=3.pt is truncated" in caplog.text
    assert "Resuming from" in caplog.text and "checkpoint_epoch=2.pt" in caplog.text


def test_resume_errors_naming_the_folder_when_nothing_loads(tmp_path):
    net = torch.nn.Linear(2, 2)
    (tmp_path / "checkpoint_epoch=1.pt").write_bytes(b"garbage")
    torch.save({"model": torch.nn.Linear(3, 3).state_dict()}, tmp_path / "checkpoint_epoch=2.pt")
    trainer = Engine(lambda e, b: None)
    ResumeCheckpointLoader(str(tmp_path), {"model": net}).attach(trainer)
    with pytest.raises(CheckpointError) as info:
        trainer.run([0], max_epochs=2)
    message = str(info.value)
    assert f"{tmp_path} holds no checkpoint that loads" in message
    assert "checkpoint_epoch=1.pt is not a checkpoint" in message and "another size" in message
    empty = tmp_path / "empty"
    trainer = Engine(lambda e, b: None)
    ResumeCheckpointLoader(str(empty), {"model": net}).attach(trainer)
    with pytest.raises(FileNotFoundError, match="holds no checkpoint"):
        trainer.run([0], max_epochs=1)


def test_checked_loader_names_a_checkpoint_of_another_network(tmp_path):
    from monaicxr.handlers import CheckedCheckpointLoader

    path = tmp_path / "model.pt"
    torch.save(torch.nn.Linear(4, 4).state_dict(), path)
    engine = Engine(lambda e, b: None)
    CheckedCheckpointLoader(str(path), {"model": torch.nn.Linear(2, 2)}).attach(engine)
    with pytest.raises(CheckpointError, match="another size") as info:
        engine.run([0], max_epochs=1)
    assert str(path) in str(info.value)
    net = torch.nn.Linear(4, 4)
    engine = Engine(lambda e, b: None)
    CheckedCheckpointLoader(str(path), {"model": net}).attach(engine)
    engine.run([0], max_epochs=1)
    assert torch.equal(net.weight, torch.load(path, weights_only=True)["weight"])


def test_checked_loader_refuses_a_missing_file_when_built(tmp_path):
    """A bundle's evaluate / inference builds its loader before the engine starts: the error comes then."""
    from monaicxr.handlers import CheckedCheckpointLoader

    missing = tmp_path / "models" / "model.pt"
    with pytest.raises(CheckpointError, match="does not exist; train the bundle first") as info:
        CheckedCheckpointLoader(str(missing), {"model": torch.nn.Linear(2, 2)})
    assert str(missing) in str(info.value)


def test_latest_checkpoint_finds_what_the_interval_saver_writes(tmp_path):
    """The names are Ignite's (MONAI's interval saver): the folder scan must look for exactly those."""
    from monaicxr.handlers import latest_checkpoint

    net = torch.nn.Linear(2, 2)
    save_dict = {"model": net, "optimizer": torch.optim.SGD(net.parameters(), lr=0.1)}
    engine = _engine(net)
    AtomicCheckpointSaver(str(tmp_path), save_dict, save_interval=1, n_saved=None).attach(engine)
    engine.run([0], max_epochs=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"checkpoint_epoch={n}.pt" for n in (1, 2, 3)]
    assert [p.name for p in checkpoint_candidates(tmp_path)] == [f"checkpoint_epoch={n}.pt" for n in (3, 2, 1)]
    assert latest_checkpoint(tmp_path) == str(tmp_path / "checkpoint_epoch=3.pt")
