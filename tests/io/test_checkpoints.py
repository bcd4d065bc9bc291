"""Sharded checkpoints (monaicxr.io.checkpoints) and their loader (monaicxr.handlers.ShardedCheckpointLoader)."""

from __future__ import annotations

import json

import pytest
import torch
from ignite.engine import Engine

from monaicxr.cli.main import main
from monaicxr.cli.weights import half_precision
from monaicxr.handlers import ShardedCheckpointLoader
from monaicxr.io import is_sharded, load_sharded, save_sharded
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
    assert main(["shrink-weights", str(src), str(tmp_path / "out" / "u2.index.json"), "--max_shard_mb", "0.5"]) == 0
    out = capsys.readouterr().out
    shards = sorted((tmp_path / "out").glob("u2-*.pt"))
    assert len(shards) >= 3 and f"{len(shards)} shard(s)" in out
    back = load_sharded(tmp_path / "out" / "u2.index.json")
    assert all(v.dtype == torch.float16 for v in back.values() if v.is_floating_point())
