"""monaicxr.io.checkpoints: atomic writes and checked loads."""

from __future__ import annotations

import pytest
import torch

from monaicxr.io import CheckpointError, load_checkpoint, save_atomic

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
