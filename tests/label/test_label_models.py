"""Tests for monaicxr.label.models: the served-model registry, label names from metadata, label encodings.

These need neither MONAI Label nor a server.
"""

from __future__ import annotations

import numpy as np
import pytest

from monaicxr.data.records import DatasetError
from monaicxr.label.models import SERVED_MODELS, bundle_labels, default_bundles_dir, served_models, split_label

BUNDLES = default_bundles_dir()


def test_registry_serves_the_unet_and_classifier_bundles():
    names = {m.name for m in served_models(BUNDLES)}
    assert {"segmentation_lung", "segmentation_lung_infection", "classification_covid"} <= names
    assert len({m.name for m in SERVED_MODELS}) == len(SERVED_MODELS)


def test_unknown_model_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="segmentation_lung"):
        served_models(BUNDLES, "segmentation_lung,nope")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("segmentation_lung", {"lung": 1}),
        ("segmentation_lung_infection", {"lung": 1, "infection": 2}),
        ("classification_covid", ["COVID-19", "Non-COVID", "Normal"]),
    ],
)
def test_label_names_come_from_the_bundle(name, expected):
    model = next(m for m in SERVED_MODELS if m.name == name)
    assert bundle_labels(model, BUNDLES / model.bundle) == expected


@pytest.mark.parametrize(
    "values, lung, infection",
    [
        ([0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]),
        ([0, 255, 255, 0], [0, 1, 1, 0], [0, 0, 0, 0]),
        ([0, 1, 2, 0], [0, 1, 1, 0], [0, 0, 1, 0]),
        ([0, 125, 255, 0], [0, 1, 1, 0], [0, 0, 1, 0]),
    ],
)
def test_split_label_encodings(values, lung, infection):
    got_lung, got_infection = split_label(np.array(values, dtype=np.float32))
    assert got_lung.astype(int).tolist() == lung
    assert got_infection.astype(int).tolist() == infection


def test_split_label_refuses_other_values_naming_the_file():
    with pytest.raises(DatasetError, match="mask.png"):
        split_label(np.array([0, 3, 7]), "mask.png")
