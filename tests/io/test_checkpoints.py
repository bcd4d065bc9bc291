"""monaicxr.io.checkpoints: atomic writes, checked loads, sharded checkpoints and their loader
(monaicxr.handlers.ShardedCheckpointLoader)."""

from __future__ import annotations

import json

import pytest
import torch
from ignite.engine import Engine

from monaicxr.cli.main import main
from monaicxr.cli.weights import half_precision
from monaicxr.handlers import ShardedCheckpointLoader
from monaicxr.io import CheckpointError, is_sharded, load_checkpoint, load_sharded, save_atomic, save_sharded
from monaicxr.networks.nets import U2Net


def _state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return U2Net(spatial_dims=2, in_channels=1, out_channels=1, config="small").state_dict()


def test_round_trip_within_the_limit(tmp_path):
    state = half_precision(_state())
    limit = 300_000
    written = save_sharded(state, tmp_path / "m.index.json", limit)
    shards, index = written[:-1], written[-1]
    assert len(shards) > 3 and index.name == "m.index.json"
    assert [p.name for p in shards] == [f"m-{i:05d}-of-{len(shards):05d}.pt" for i in range(1, len(shards) + 1)]
    for p in shards:
        part = torch.load(p, weights_only=True)
        assert 0 < sum(t.numel() * t.element_size() for t in part.values()) <= limit
    back = load_sharded(index)
    assert list(back) == list(state)  # the state_dict order is kept
    for k, v in state.items():
        assert back[k].dtype == v.dtype and torch.equal(back[k], v), k
    meta = json.loads(index.read_text())["metadata"]
    assert meta["shards"] == len(shards)
    assert meta["total_size"] == sum(v.numel() * v.element_size() for v in state.values())


def test_resave_removes_stale_shards(tmp_path):
    state = _state()
    save_sharded(state, tmp_path / "m.index.json", 400_000)
    written = save_sharded(state, tmp_path / "m.index.json", 10_000_000)
    assert len(written) == 2
    assert sorted(p.name for p in tmp_path.glob("m-*.pt")) == ["m-00001-of-00001.pt"]


def test_errors_name_the_file_or_tensor(tmp_path):
    state = _state()
    with pytest.raises(ValueError, match="named by its index"):
        save_sharded(state, tmp_path / "m.pt", 10**6)
    with pytest.raises(ValueError, match="alone is .* over the shard limit"):
        save_sharded(state, tmp_path / "m.index.json", 100)
    with pytest.raises(ValueError, match="flat state_dict of tensors"):
        save_sharded({"model": state}, tmp_path / "m.index.json", 10**6)
    with pytest.raises(FileNotFoundError, match="no such sharded-checkpoint index"):
        load_sharded(tmp_path / "none.index.json")
    (tmp_path / "junk.index.json").write_text('{"weights": 1}')
    with pytest.raises(ValueError, match="junk.index.json: not a sharded-checkpoint index"):
        load_sharded(tmp_path / "junk.index.json")
    shards = save_sharded(state, tmp_path / "m.index.json", 400_000)[:-1]
    torch.save({"other": torch.zeros(1)}, shards[1])
    with pytest.raises(ValueError, match=f"{shards[1].name}: holds other tensors"):
        load_sharded(tmp_path / "m.index.json")
    shards[0].unlink()
    with pytest.raises(FileNotFoundError, match=f"{shards[0].name}: shard named by .*m.index.json is missing"):
        load_sharded(tmp_path / "m.index.json")


def test_is_sharded():
    assert is_sharded("models/full.index.json") and not is_sharded("models/model.pt") and not is_sharded(None)


def test_loader_handler_reads_shards_and_single_files(tmp_path):
    state = _state()
    save_sharded(half_precision(state), tmp_path / "m.index.json", 300_000)
    torch.save(state, tmp_path / "single.pt")
    for path, atol in ((tmp_path / "m.index.json", 1e-3), (tmp_path / "single.pt", 0.0)):
        net = U2Net(spatial_dims=2, in_channels=1, out_channels=1, config="small")
        engine = Engine(lambda e, b: None)
        ShardedCheckpointLoader(load_path=str(path), load_dict={"model": net}).attach(engine)
        engine.run([0], max_epochs=1)
        for k, v in net.state_dict().items():
            assert v.dtype == state[k].dtype  # half-precision shards load into the float32 network
            torch.testing.assert_close(v, state[k], atol=atol, rtol=1e-3)


def test_shrink_weights_cli_writes_shards(tmp_path, capsys):
    src = tmp_path / "model.pt"
    torch.save(_state(), src)
    assert main(["shrink-weights", str(src), str(tmp_path / "out" / "u2.index.json"), "--max-shard-mb", "0.5"]) == 0
    out = capsys.readouterr().out
    shards = sorted((tmp_path / "out").glob("u2-*.pt"))
    assert len(shards) >= 3 and f"{len(shards)} shard(s)" in out
    back = load_sharded(tmp_path / "out" / "u2.index.json")
    assert all(v.dtype == torch.float16 for v in back.values() if v.is_floating_point())


# --- atomic writes and checked loads (save_atomic, load_checkpoint) ---


def _half_then_enospc(real_save):
    """A ``torch.save`` that writes half of the file and then finds the disk full."""

    def save(obj, f, *args, **kwargs):
        import errno
        import io

        buffer = io.BytesIO()
        real_save(obj, buffer)
        f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    return save


def test_full_disk_leaves_the_previous_file_and_names_it(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    save_atomic({"w": torch.ones(3)}, path)
    monkeypatch.setattr(torch, "save", _half_then_enospc(torch.save))
    with pytest.raises(OSError, match="disk is full") as info:
        save_atomic({"w": torch.zeros(300)}, path, save=torch.save)
    assert str(path) in str(info.value) and "model.pt is unchanged" in str(info.value)
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]  # the partial temporary file is gone


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "is empty"),
        (b"not a checkpoint at all", "not a checkpoint"),
        ("half", "is truncated"),
    ],
)
def test_load_checkpoint_says_what_is_wrong(tmp_path, content, expected):
    path = tmp_path / "checkpoint_epoch=3.pt"
    if content == "half":
        torch.save({"model": torch.nn.Linear(2, 2).state_dict()}, path)
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=expected) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and "weights_only" not in str(info.value)


def test_load_checkpoint_refuses_pickled_objects(tmp_path):
    import numpy as np

    path = tmp_path / "c.pt"
    torch.save({"model": np.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="not a checkpoint of tensors") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_load_checkpoint_names_another_network_and_non_finite_weights(tmp_path):
    net = torch.nn.Linear(2, 3)
    path = tmp_path / "c.pt"
    torch.save({"model": torch.nn.Sequential(torch.nn.Linear(2, 3)).state_dict()}, path)
    with pytest.raises(CheckpointError, match="weights of another network") as info:
        load_checkpoint(path, expected={"model": net})
    assert str(path) in str(info.value)
    torch.save({"model": torch.nn.Linear(3, 3).state_dict()}, path)
    with pytest.raises(CheckpointError, match="another size"):
        load_checkpoint(path, expected={"model": net})
    torch.save({"model": net.state_dict()}, path)
    with pytest.raises(CheckpointError, match=r"lacks \['optimizer'\]"):
        load_checkpoint(path, expected={"model": net, "optimizer": torch.optim.SGD(net.parameters(), lr=1)})
    state = net.state_dict()
    state["bias"][0] = float("nan")
    torch.save(state, path)  # a bare state_dict, as model.pt holds
    with pytest.raises(CheckpointError, match="non-finite weights") as info:
        load_checkpoint(path, expected={"model": net})
    assert "'bias'" in str(info.value)
