"""monaicxr shrink-weights: half-precision copies that load back into the float32 network."""

from __future__ import annotations

import torch
from monai.networks.nets import DenseNet121

from monaicxr.cli.main import main


def test_half_copy_loads_into_the_float32_network(tmp_path, capsys):
    net = DenseNet121(
        spatial_dims=2, in_channels=1, out_channels=3, init_features=8, growth_rate=4, block_config=(2, 2)
    )
    net.eval()
    src, dst = tmp_path / "model.pt", tmp_path / "half" / "model.pt"
    torch.save(net.state_dict(), src)
    assert main(["shrink-weights", str(src), str(dst)]) == 0
    assert "MB" in capsys.readouterr().out
    half = torch.load(dst, weights_only=True)
    assert all(v.dtype == torch.float16 for v in half.values() if v.is_floating_point())
    assert any(v.dtype == torch.int64 for v in half.values())  # num_batches_tracked kept
    floats = [k for k, v in net.state_dict().items() if v.is_floating_point()]
    assert sum(half[k].nbytes for k in floats) * 2 == sum(net.state_dict()[k].nbytes for k in floats)
    other = DenseNet121(
        spatial_dims=2, in_channels=1, out_channels=3, init_features=8, growth_rate=4, block_config=(2, 2)
    )
    other.load_state_dict(half)
    other.eval()
    assert next(other.parameters()).dtype == torch.float32
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(other(x), net(x), atol=1e-2)


def test_missing_or_bad_file_is_a_one_line_error(tmp_path, capsys):
    assert main(["shrink-weights", str(tmp_path / "nope.pt"), str(tmp_path / "out.pt")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    assert main(["shrink-weights", str(bad), str(tmp_path / "out.pt")]) == 2
    assert "not a PyTorch checkpoint" in capsys.readouterr().err


def test_a_copy_over_the_per_file_limit_is_flagged(tmp_path, capsys, monkeypatch):
    import monaicxr.cli.weights as weights

    src = tmp_path / "model.pt"
    torch.save(torch.nn.Linear(64, 64).state_dict(), src)  # 16.6 kB, 8.5 kB in half precision
    assert main(["shrink-weights", str(src), str(tmp_path / "small.pt")]) == 0
    assert "do not commit" not in capsys.readouterr().out
    monkeypatch.setattr(weights, "MAX_COMMITTED_BYTES", 4_000)
    assert main(["shrink-weights", str(src), str(tmp_path / "big.pt")]) == 0
    out = capsys.readouterr().out
    assert "big.pt is over the 0.004 MB" in out and "do not commit it" in out
