"""monaicxr.transforms.LoadCXRImage(d): CXRImageReader only, so a damaged file's error names it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from monai.transforms import Compose
from PIL import Image

from monaicxr.data.records import DatasetError
from monaicxr.transforms import LoadCXRImage, LoadCXRImaged


def _png(path, truncate: bool = False):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 20), dtype=np.uint8)).save(buf, "PNG")
    data = buf.getvalue()
    path.write_bytes(data[: len(data) // 2] if truncate else data)
    return path


def test_loads_channel_first_with_bit_depth(tmp_path):
    image = LoadCXRImaged("image")({"image": str(_png(tmp_path / "a.png"))})["image"]
    assert tuple(image.shape) == (1, 24, 20) and image.meta["bit_depth"] == 8
    assert image.meta["filename_or_obj"].endswith("a.png")
    assert tuple(LoadCXRImage()(str(tmp_path / "a.png")).shape) == (1, 24, 20)


@pytest.mark.parametrize("kind", ["truncated", "empty", "text"])
def test_a_damaged_file_is_named(tmp_path, kind):
    """MONAI's LoadImaged(reader=CXRImageReader()) falls back to PILReader here, whose error names no file."""
    path = tmp_path / f"{kind}.png"
    if kind == "truncated":
        _png(path, truncate=True)
    else:
        path.write_bytes(b"" if kind == "empty" else b"not an image")
    with pytest.raises(Exception) as info:
        Compose([LoadCXRImaged("image")])({"image": str(path)})
    chain, e = [], info.value
    while e is not None:
        chain.append(e)
        e = e.__cause__
    assert any(isinstance(x, DatasetError) and str(path) in str(x) for x in chain), [str(x) for x in chain]
