"""monaicxr.networks.blocks.Dropout: nn.Dropout's distribution and scaling, with a torch.rand mask on the CPU."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from monaicxr.networks.blocks import Dropout


@pytest.mark.parametrize("p", [0.25, 0.5])
def test_keep_rate_scaling_and_gradient(p):
    torch.manual_seed(0)
    x = torch.rand(64, 8, 50, 50).add_(0.5).requires_grad_()  # strictly positive: a zero output means dropped
    y = Dropout(p).train()(x)
    kept = y != 0
    n = kept.numel()
    # Bernoulli(1 - p): the kept fraction is within 5 standard deviations of 1 - p
    assert abs(kept.float().mean().item() - (1 - p)) < 5 * ((p * (1 - p) / n) ** 0.5)
    torch.testing.assert_close(y[kept], x[kept] / (1 - p))
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / (1 - p))


def test_memory_format_preserved():
    x = torch.rand(4, 6, 5, 5).contiguous(memory_format=torch.channels_last)
    assert Dropout(0.3).train()(x).is_contiguous(memory_format=torch.channels_last)


def test_same_as_nn_dropout_where_it_defers():
    x = torch.rand(3, 4, 5)
    assert torch.equal(Dropout(0.5).eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)
    assert torch.equal(Dropout(1.0).train()(x), torch.zeros_like(x))
    torch.manual_seed(1)
    expected = nn.Dropout(0.5, inplace=True).train()(x.clone())
    torch.manual_seed(1)
    assert torch.equal(Dropout(0.5, inplace=True).train()(x.clone()), expected)


def test_no_parameters_and_state_dict():
    assert list(Dropout(0.5).state_dict()) == [] and isinstance(Dropout(0.5), nn.Dropout)
