"""monaicxr.engines.precision: which path runs on which CPU, and that autocast changes speed, not the result."""

from __future__ import annotations

import logging

import pytest
import torch
from monai.networks.nets import BasicUNet

from monaicxr.engines import AutocastInferer, resolve_precision
from monaicxr.engines import precision as prec

AMD_FLAGS = "processor\t: 0\nflags\t\t: fpu sse sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
AMX_FLAGS = "processor\t: 0\nflags\t\t: fpu avx2 avx512f amx_tile amx_bf16 amx_int8\n"
OLD_FLAGS = "processor\t: 0\nflags\t\t: fpu sse sse2 avx avx2 fma\n"


def _fake_cpu(monkeypatch, tmp_path, text: str) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    prec.cpu_has_bf16.cache_clear()
    real = prec.cpu_has_bf16.__wrapped__
    monkeypatch.setattr(prec, "cpu_has_bf16", lambda: real(str(path)))
    monkeypatch.setattr(prec.platform, "machine", lambda: "x86_64")


CASES = [
    ("avx512_bf16", AMD_FLAGS, "auto", torch.bfloat16),
    ("amx", AMX_FLAGS, "auto", torch.bfloat16),
    ("no_bf16", OLD_FLAGS, "auto", torch.float32),
    ("forced_fp32", AMD_FLAGS, "fp32", torch.float32),
    ("forced_bf16_emulated", OLD_FLAGS, "bf16", torch.bfloat16),
]


@pytest.mark.parametrize("cpuinfo, setting, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_resolve_precision_on_cpu(monkeypatch, tmp_path, cpuinfo, setting, expected):
    _fake_cpu(monkeypatch, tmp_path, cpuinfo)
    assert resolve_precision(setting, "cpu") == expected


def test_log_says_which_path_runs(monkeypatch, tmp_path, caplog):
    _fake_cpu(monkeypatch, tmp_path, OLD_FLAGS)
    with caplog.at_level(logging.INFO, logger="monaicxr.engines.precision"):
        resolve_precision("auto", "cpu")
    assert "float32" in caplog.text and "no bfloat16 instructions" in caplog.text


def test_cuda_auto_is_left_to_amp():
    assert resolve_precision("auto", "cuda", log=False) == torch.float32


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp16", "cpu")


def test_missing_cpuinfo_means_no_bf16(tmp_path):
    assert prec.cpu_has_bf16.__wrapped__(str(tmp_path / "absent")) is False


def test_fp32_inferer_is_the_plain_forward():
    net = torch.nn.Conv2d(1, 2, 3)
    x = torch.rand(2, 1, 8, 8)
    out = AutocastInferer(torch.float32)(x, net)
    assert out.dtype == torch.float32
    assert torch.equal(out, net(x))


def test_bf16_inferer_runs_in_bf16_and_returns_float32():
    seen = {}

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3)

        def forward(self, x):
            y = self.conv(x)
            seen["dtype"] = y.dtype
            return [y, {"cls": y.mean((2, 3))}]

    out = AutocastInferer(torch.bfloat16)(torch.rand(2, 1, 8, 8), Probe())
    assert seen["dtype"] == torch.bfloat16  # the convolution ran in bfloat16
    assert out[0].dtype == torch.float32 and out[1]["cls"].dtype == torch.float32


def test_bf16_training_keeps_fp32_weights_and_matches_fp32_closely():
    """One U-Net step in each precision from the same start: weights stay float32, loss and update agree."""
    torch.manual_seed(0)
    x = torch.rand(2, 1, 64, 64)
    y = (x > 0.5).float()
    results = {}
    for dtype in (torch.float32, torch.bfloat16):
        torch.manual_seed(1)
        net = BasicUNet(2, 1, 1, features=(4, 4, 8, 8, 16, 4), norm="batch")
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(AutocastInferer(dtype)(x, net), y)
        loss.backward()
        opt.step()
        assert all(p.dtype == torch.float32 for p in net.parameters())
        results[dtype] = (loss.item(), torch.cat([p.detach().flatten() for p in net.parameters()]))
    (l32, w32), (l16, w16) = results[torch.float32], results[torch.bfloat16]
    assert abs(l32 - l16) < 0.02
    assert not torch.equal(w32, w16)  # bfloat16 really ran: the arithmetic differs
    assert (w32 - w16).abs().max() < 0.05
