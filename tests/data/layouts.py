"""Small fake dataset layouts for the indexer tests: tiny PNG / JPEG files written with Pillow under tmp_path.

Imported by the tests of this folder as ``from layouts import ...`` (pytest puts the folder on ``sys.path``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = (16, 16)


def write_image(path: Path, size: tuple[int, int] = SIZE, value: int = 128, mode: str = "L") -> Path:
    """A small image (format from the suffix); ``size`` is (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((size[1], size[0]) + ((3,) if mode == "RGB" else ()), value, dtype=np.uint8)
    arr[: size[1] // 2] = 255 - value  # not constant, so a JPEG has some data to compress
    Image.fromarray(arr, mode=mode).save(path)
    return path


def write_mask(path: Path, size: tuple[int, int] = SIZE) -> Path:
    """A 0/255 mask with a filled rectangle."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.zeros((size[1], size[0]), dtype=np.uint8)
    arr[size[1] // 4 : 3 * size[1] // 4, size[0] // 4 : 3 * size[0] // 4] = 255
    Image.fromarray(arr).save(path)
    return path


def write_zero_byte(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def write_truncated(path: Path, size: tuple[int, int] = SIZE) -> Path:
    """A valid image of the suffix's format, cut to half its bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    rng = np.random.default_rng(0)  # noise, so the compressed data is long enough to cut mid-stream
    Image.fromarray(rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8)).save(
        buf, Image.registered_extensions()[path.suffix.lower()]
    )
    data = buf.getvalue()
    path.write_bytes(data[: len(data) // 2])
    return path


def write_text(path: Path, text: str = "this is not an image\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- COVID-QU-Ex ----------------------------------------------------------------------------------------------

COVIDQU_CLASSES = ("COVID-19", "Non-COVID", "Normal")


def make_covidqu_part(
    part: Path, *, infection: bool = True, splits: Sequence[str] = ("Train", "Val"), per_class: int = 2
) -> Path:
    """``part/{splits}/{classes}/{images, lung masks[, infection masks]}/<class>_<i>.png``; returns ``part``."""
    for split in splits:
        for cls in COVIDQU_CLASSES:
            for i in range(per_class):
                name = f"{cls.lower()}_{split.lower()}_{i}.png"
                write_image(part / split / cls / "images" / name)
                write_mask(part / split / cls / "lung masks" / name)
                if infection:
                    write_mask(part / split / cls / "infection masks" / name)
    return part


def make_covidqu(root: Path, *, per_class: int = 2) -> Path:
    """Both parts as on Kaggle under ``root``; returns ``root``."""
    make_covidqu_part(root / "Infection Segmentation Data", infection=True, per_class=per_class)
    make_covidqu_part(
        root / "Lung Segmentation Data", infection=False, splits=("Train", "Val", "Test"), per_class=per_class
    )
    return root


def make_covidqu_flat(
    root: Path,
    rows: Iterable[tuple[str, str, str]],
    *,
    near_duplicates: Iterable[tuple[str, str]] = (),
    synthetic: bool = False,
    infection: bool = True,
) -> Path:
    """``images/``, ``lung_masks/``, ``infection_masks/``, ``manifest.csv`` (and near_duplicates.csv)."""
    rows = list(rows)
    for name, _, _ in rows:
        write_image(root / "images" / name)
        write_mask(root / "lung_masks" / name)
        if infection:
            write_mask(root / "infection_masks" / name)
    with (root / "manifest.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "class", "split"])
        writer.writerows(rows)
    near_duplicates = list(near_duplicates)
    if near_duplicates:
        with (root / "near_duplicates.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["file_a", "split_a", "class_a", "file_b", "split_b", "class_b", "corr32"])
            writer.writerows([a, "", "", b, "", "", "0.995"] for a, b in near_duplicates)
    if synthetic:
        (root / "SYNTHETIC").write_text("written by the phantom generator\n")
    return root


# --- other layouts --------------------------------------------------------------------------------------------


def make_radiography(
    root: Path,
    *,
    classes: Sequence[str] = ("COVID", "Lung_Opacity", "Normal", "Viral Pneumonia"),
    per_class: int = 2,
    masks: bool = True,
    image_size: tuple[int, int] = (299, 299),
    mask_size: tuple[int, int] = (256, 256),
) -> Path:
    """The current release (``<class>/images``, ``<class>/masks``) or, with ``masks=False``, the older one."""
    for cls in classes:
        for i in range(1, per_class + 1):
            name = f"{cls}-{i}.png"
            if masks:
                write_image(root / cls / "images" / name, image_size)
                write_mask(root / cls / "masks" / name, mask_size)
            else:
                write_image(root / cls / name, image_size)
        write_text(root / f"{cls}.metadata.xlsx", "not really a spreadsheet")
    return root


KERMANY_FILES = {
    "train/NORMAL": ["IM-0115-0001.jpeg", "IM-0115-0002.jpeg", "NORMAL2-IM-1427-0001.jpeg"],
    "train/PNEUMONIA": ["person1_bacteria_1.jpeg", "person1_bacteria_2.jpeg", "person2_virus_3.jpeg"],
    "val/NORMAL": ["NORMAL2-IM-1430-0001.jpeg"],
    "val/PNEUMONIA": ["person3_virus_4.jpeg"],
    "test/NORMAL": ["IM-0001-0001.jpeg"],
    "test/PNEUMONIA": ["person100_bacteria_475.jpeg"],
}


def make_kermany(base: Path, files: dict[str, list[str]] | None = None) -> Path:
    """``base/{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg``; returns ``base``."""
    for folder, names in (files or KERMANY_FILES).items():
        for name in names:
            write_image(base / folder / name)
    return base


def make_class_folders(root: Path, counts: dict[str, int], *, split: str | None = None) -> Path:
    """``root/[split/]<class>/<class>_<i>.png``; a count of 0 makes an empty class folder."""
    base = root / split if split else root
    for cls, n in counts.items():
        (base / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            write_image(base / cls / f"{cls}_{i}.png")
    return root


def make_pairs(root: Path, names: Sequence[str], *, infection: bool = False) -> Path:
    """``root/images/<name>`` with ``root/masks/<stem>.png`` (and ``infection_masks``)."""
    for name in names:
        write_image(root / "images" / name)
        write_mask(root / "masks" / (Path(name).stem + ".png"))
        if infection:
            write_mask(root / "infection_masks" / (Path(name).stem + ".png"))
    return root
