"""Tests for monaicxr.data.imagecheck: image and mask checks with Pillow, and record verification."""

from __future__ import annotations

import pytest
from layouts import write_image, write_mask, write_text, write_truncated, write_zero_byte

from monaicxr.data.imagecheck import (
    BadFileError,
    check_image,
    check_mask,
    dataset_root,
    mask_values,
    record_id,
    verify_records,
)
from monaicxr.data.records import CXRRecord, DatasetError

# (writer, file name, expected start of the reason); pytest's parametrize, since the tests use tmp_path
BAD_FILES = [
    pytest.param(write_zero_byte, "a.png", "zero-byte file", id="zero_byte"),
    pytest.param(write_truncated, "a.png", "truncated image", id="truncated_png"),
    pytest.param(write_truncated, "a.jpeg", "truncated image", id="truncated_jpeg"),
    pytest.param(write_text, "a.png", "not a decodable image", id="text_as_png"),
    pytest.param(None, "a.png", "file does not exist", id="missing"),
]
GOOD_FILES = [("a.png", "L"), ("a.jpeg", "L"), ("a.png", "RGB")]


@pytest.mark.parametrize("name, mode", GOOD_FILES)
def test_check_image_size_and_mode(tmp_path, name, mode):
    info = check_image(write_image(tmp_path / name, (20, 12), mode=mode))
    assert info.size == (20, 12)
    assert info.mode == mode


@pytest.mark.parametrize("writer, name, reason", BAD_FILES)
def test_check_image_bad_files(tmp_path, writer, name, reason):
    path = tmp_path / name
    if writer is not None:
        writer(path)
    with pytest.raises(BadFileError) as err:
        check_image(path)
    assert err.value.reason.startswith(reason), err.value.reason
    assert str(path) in str(err.value)
    assert isinstance(err.value, DatasetError)


def test_check_image_without_verify_only_stats(tmp_path):
    info = check_image(write_text(tmp_path / "a.png"), verify=False)
    assert info.size is None
    with pytest.raises(BadFileError, match="zero-byte file"):
        check_image(write_zero_byte(tmp_path / "b.png"), verify=False)


def test_check_mask(tmp_path):
    mask = write_mask(tmp_path / "m.png", (8, 8))
    assert check_mask(mask, (8, 8)).size == (8, 8)
    assert check_mask(mask).size == (8, 8)
    assert check_mask(mask, (16, 16), allowed_sizes=[(8, 8)]).size == (8, 8)
    with pytest.raises(BadFileError) as err:
        check_mask(mask, (16, 16), kind="lung mask")
    assert err.value.reason == "lung mask 8x8 does not match image 16x16"
    with pytest.raises(BadFileError) as err:
        check_mask(write_zero_byte(tmp_path / "z.png"), (8, 8), kind="lung mask")
    assert err.value.reason.startswith("lung mask") and err.value.reason.endswith("zero-byte file")


def test_mask_values(tmp_path):
    assert mask_values(write_mask(tmp_path / "m.png")) == {0, 255}
    with pytest.raises(BadFileError, match="not a decodable image"):
        mask_values(write_text(tmp_path / "t.png"))


def test_verify_records(tmp_path):
    good = CXRRecord("good", str(write_image(tmp_path / "good.png")), lung_mask=str(write_mask(tmp_path / "gm.png")))
    small = CXRRecord(
        "small", str(write_image(tmp_path / "s.png", (16, 16))), lung_mask=str(write_mask(tmp_path / "sm.png", (8, 8)))
    )
    broken = CXRRecord("broken", str(write_truncated(tmp_path / "b.png")))
    bad_mask = CXRRecord(
        "bm", str(write_image(tmp_path / "bm.png")), infection_mask=str(write_zero_byte(tmp_path / "z.png"))
    )
    kept, skipped = verify_records([good, small, broken, bad_mask])
    assert kept == [good]
    reasons = {s.path: s.reason for s in skipped}
    assert reasons[small.image] == "lung mask 8x8 does not match image 16x16"
    assert reasons[broken.image].startswith("truncated image")
    assert reasons[bad_mask.image].startswith("infection mask") and "zero-byte" in reasons[bad_mask.image]
    # without verify, only existence and size are checked
    kept, skipped = verify_records([good, small, broken, bad_mask], verify=False)
    assert [r.id for r in kept] == ["good", "small", "broken"]
    # an allowed size pair
    kept, _ = verify_records([small], mask_size_exceptions={(16, 16): [(8, 8)]})
    assert kept == [small]


def test_dataset_root(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        dataset_root(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".DS_Store").write_text("")
    with pytest.raises(DatasetError, match="is empty"):
        dataset_root(tmp_path / "empty")
    with pytest.raises(DatasetError, match="is not a folder"):
        dataset_root(write_text(tmp_path / "f.txt"))
    write_text(tmp_path / "d" / "x.txt")
    assert dataset_root(tmp_path / "d" / ".." / "d") == tmp_path / "d"


def test_record_id(tmp_path):
    assert record_id(tmp_path / "Train" / "COVID-19" / "images" / "x.png", tmp_path) == "Train/COVID-19/images/x"
