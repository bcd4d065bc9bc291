"""Images for the benchmarks: real COVID-QU-Ex radiographs from ../shared/data when present, else phantoms.

Shared by ``classifier_throughput.py`` and ``keras_vs_monaicxr.py``; not part of the package. Images are read
and preprocessed once, before anything is timed, so the benchmarks measure training, not the disk.
"""

from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path

import torch
from monai.transforms import Compose, EnsureTyped, LoadImaged, Resized

from monaicxr.data.covidqu import COVIDQU_CLASSES, index_covidqu_flat
from monaicxr.data.synthetic import write_phantom_dataset
from monaicxr.io import CXRImageReader
from monaicxr.transforms import ScaleByBitDepthd

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = REPO.parent / "shared" / "data" / "covidqu_infection"
MAX_PHANTOMS = 48  # phantoms are drawn (about 60 ms each), then cycled: their pixels do not change the timing


def resolve_dataset(dataset_dir: str | None, synthetic: bool = False) -> Path | None:
    """The dataset folder to read: ``dataset_dir``, else ../shared/data/covidqu_infection if present, else None.

    Raises:
        FileNotFoundError: when ``dataset_dir`` is given and is not a folder.
    """
    if synthetic:
        return None
    if dataset_dir:
        path = Path(dataset_dir)
        if not path.is_dir():
            raise FileNotFoundError(f"--dataset_dir {path} is not a folder (expected a flat COVID-QU-Ex copy).")
        return path
    return DEFAULT_DATASET if DEFAULT_DATASET.is_dir() else None


def training_items(dataset_dir: Path | None, n: int) -> tuple[list[dict], str]:
    """``n`` training items ``{"image": path, "class_index": int}``, classes interleaved, and a description.

    Real data: the first ``n`` images of the upstream Train split, taken round-robin over the three classes
    (COVID-19, Non-COVID, Normal), sorted by id so that every run reads the same images. Without data: at most
    :data:`MAX_PHANTOMS` synthetic phantoms written to a temporary folder, cycled to ``n`` items.
    """
    if dataset_dir is None:
        per_class = max(1, math.ceil(min(n, MAX_PHANTOMS) / len(COVIDQU_CLASSES)))
        folder = Path(tempfile.mkdtemp(prefix="monaicxr_bench_phantoms_")) / "phantoms"
        dataset_dir = write_phantom_dataset(folder, n_per_class=per_class, val_fraction=0.0)
        source = f"synthetic phantoms ({per_class * len(COVIDQU_CLASSES)} distinct, cycled)"
    else:
        source = f"COVID-QU-Ex Train split, {dataset_dir}"
    records = sorted(index_covidqu_flat(dataset_dir, verify=False).records, key=lambda r: r.id)
    by_class = [[r for r in records if r.class_name == c and r.source_split == "train"] for c in COVIDQU_CLASSES]
    longest = max(len(b) for b in by_class)
    pool = [
        {"image": b[i].image, "class_index": k} for i in range(longest) for k, b in enumerate(by_class) if i < len(b)
    ]
    if not pool:
        raise FileNotFoundError(f"{dataset_dir} has no Train images (expected manifest.csv rows with split Train).")
    items = [dict(pool[i % len(pool)]) for i in range(n)]
    return items, source


def preprocess(items: list[dict], spatial_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Load and preprocess ``items`` as bundles/simple_cnn's deterministic transforms do.

    CXRImageReader, channel first, ScaleByBitDepthd (to [0, 1]), area resize to ``spatial_size``, float32.
    A file listed more than once is read once.

    Returns:
        ``(images, class_indices)``: a ``(n, 1, H, W)`` float32 tensor (plain, no metadata) and a long tensor.
    """
    load = Compose(
        [
            LoadImaged("image", reader=CXRImageReader(), image_only=True, ensure_channel_first=True),
            ScaleByBitDepthd("image"),
            Resized("image", spatial_size=spatial_size, mode="area"),
            EnsureTyped("image", dtype=torch.float32, track_meta=False),
        ]
    )
    done: dict[str, torch.Tensor] = {}
    images = []
    for item in items:
        if item["image"] not in done:
            done[item["image"]] = load({"image": item["image"]})["image"]
        images.append(done[item["image"]])
    return torch.stack(images), torch.tensor([item["class_index"] for item in items], dtype=torch.long)
