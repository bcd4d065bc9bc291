"""monaicxr.data.checks.check_classification_data: bad classification datalists stop with the item named."""

from __future__ import annotations

import pytest

from monaicxr.data.checks import check_classification_data
from monaicxr.data.records import DatasetError

CLASSES = ["COVID-19", "Non-COVID", "Normal"]


def _items(section: str, labels: list[int]) -> list[dict]:
    return [{"image": f"/data/{section}_{i}_{c}.png", "class_index": c} for i, c in enumerate(labels)]


def _data(train=(0, 1, 2, 0, 1, 2), val=(0, 1, 2), classes=CLASSES) -> dict:
    return {"classes": classes, "training": _items("train", list(train)), "validation": _items("val", list(val))}


def test_good_data_is_returned_unchanged():
    data = _data()
    assert check_classification_data(data, CLASSES) is data


def test_label_outside_the_classes_names_the_item():
    data = _data(train=(0, 1, 2, 3))
    with pytest.raises(DatasetError, match=r"outside the bundle.s 3 classes.*0\.\.2.*train_3_3\.png has class 3"):
        check_classification_data(data, CLASSES)
    data = _data()
    del data["validation"][1]["class_index"]
    with pytest.raises(DatasetError, match=r"val_1_1\.png has no class_index"):
        check_classification_data(data, CLASSES)


def test_datalist_classes_the_bundle_does_not_know():
    data = _data(classes=["COVID", "Lung_Opacity", "Normal"])
    with pytest.raises(DatasetError, match=r"\['COVID', 'Lung_Opacity'\] are not among.*train_0_0\.png is 'COVID'"):
        check_classification_data(data, CLASSES)
    with pytest.raises(DatasetError, match="same order"):
        check_classification_data(_data(classes=["Normal", "COVID-19", "Non-COVID"]), CLASSES)


def test_single_class_training_split():
    with pytest.raises(DatasetError, match=r"single class, 'Normal' \(4 images\)"):
        check_classification_data(_data(train=(2, 2, 2, 2)), CLASSES)


def test_class_without_training_images():
    with pytest.raises(DatasetError, match=r"\['Non-COVID'\] have no training images"):
        check_classification_data(_data(train=(0, 2, 0, 2)), CLASSES)


def test_class_without_validation_images():
    with pytest.raises(
        DatasetError, match=r"\['Normal'\] have no validation images \(COVID-19: 1, Non-COVID: 1, Normal: 0\)"
    ):
        check_classification_data(_data(val=(0, 1)), CLASSES)
    with pytest.raises(DatasetError, match="validation split is empty"):
        check_classification_data(_data(val=()), CLASSES)


def test_derived_classes_with_class_of():
    """A binary bundle on 3-class data: data_classes are the data's, class_of maps to the bundle's two."""
    data = _data()
    binary = ["not COVID-19", "COVID-19"]
    check_classification_data(data, binary, class_of=lambda d: int(d["class_index"] == 0), data_classes=CLASSES)
    with pytest.raises(DatasetError, match="validation images"):
        data = _data(val=(1, 2))
        check_classification_data(data, binary, class_of=lambda d: int(d["class_index"] == 0), data_classes=CLASSES)
