"""monaicxr.io.weights_card.check_input: missing weights, weights without a card, settings other than the card's."""

from __future__ import annotations

import pytest
import torch

from monaicxr.io import CheckpointError
from monaicxr.io.weights_card import CardError, check_input, write_input_card


def test_missing_weights_are_named_before_anything_else(tmp_path):
    with pytest.raises(CheckpointError, match=f"checkpoint {tmp_path / 'model.pt'} does not exist"):
        check_input(tmp_path / "model.pt", spatial_size=[32, 32])


def test_card_settings_are_checked(tmp_path):
    weights = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(1)}, weights)
    assert check_input(weights, spatial_size=[32, 32]) is None  # no card: settings as given
    write_input_card(weights, lung_input="crop_mask", spatial_size=[32, 32])
    assert check_input(weights, spatial_size=(32, 32), other=1)["lung_input"] == "crop_mask"
    with pytest.raises(CardError, match="lung_input='crop_mask'"):
        check_input(weights, lung_input="full")
