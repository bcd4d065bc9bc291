"""Polygon annotations (V7 Darwin JSON, COCO JSON) rasterised to lung masks and ignore masks.

The v7labs COVID-19 chest X-ray dataset (github.com/v7labs/covid-19-xray-dataset) draws the lungs as polygons
("Lungs", or "Left Lung" and "Right Lung") and covers devices over the lungs (pacemakers, markup) with polygons
of the class "Ignore". Each indexer here rasterises, per image:

- the lung polygons into one lung mask PNG (0/255), the record's ``lung_mask``;
- the ignore polygons into an ignore mask PNG (0/255), the record's ``ignore_mask``, written only when the image
  has ignore polygons. Losses and metrics exclude the pixels of the ignore mask: they are neither lung nor
  background for training or scoring.

Masks go under ``out_dir`` (default ``<root>/.monaicxr_masks``; pass another folder where the dataset is
read-only) as ``lung/<id>.png`` and ``ignore/<id>.png``.

Names are matched without regard to case or surrounding spaces. Class labels are not guessed from the many tags
these files carry: ``class_name`` is ``None`` unless a ``class_names`` mapping (annotation or tag name -> class
name) is passed; then the image takes the class its names map to (an image whose names map to two different
classes is skipped as ambiguous).

Example::

    result = index_darwin("covid-19-xray-dataset", out_dir="/tmp/v7_masks",
                          class_names={"COVID-19": "COVID-19", "No Pneumonia (healthy)": "Normal"})
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.draw import polygon as draw_polygon
from tqdm import tqdm

from monaicxr.data.records import CXRRecord, DatasetError, IndexResult, SkippedItem

__all__ = ["rasterize_polygons", "index_darwin", "index_coco", "LUNG_NAMES", "IGNORE_NAMES"]

logger = logging.getLogger(__name__)

LUNG_NAMES = ("Lungs", "Left Lung", "Right Lung", "lung", "lungs")
IGNORE_NAMES = ("Ignore",)
DEFAULT_MASK_DIR = ".monaicxr_masks"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

Polygon = Sequence[Sequence[float]]  # [(x, y), ...] or an (N, 2) array


def rasterize_polygons(polygons: Iterable[Polygon], height: int, width: int, *, even_odd: bool = False) -> np.ndarray:
    """Fill polygons given in pixel coordinates into a binary mask.

    Uses :func:`skimage.draw.polygon`, which takes rows (y) then columns (x); vertices are ``(x, y)`` with pixel
    centres at integer coordinates, and pixels outside the image are clipped. A square with corners (2, 2) and
    (6, 6) fills the 5 x 5 pixels whose centres lie inside or on its edges.

    Args:
        polygons: each a sequence of ``(x, y)`` vertices; fewer than 3 vertices fill nothing.
        height: mask rows.
        width: mask columns.
        even_odd: combine the polygons by the even-odd rule (a ring inside another is a hole), as one Darwin
            complex polygon is drawn; by default the polygons are united.

    Returns:
        A ``uint8`` array of shape ``(height, width)`` with values in {0, 1}.
    """
    mask = np.zeros((height, width), dtype=np.uint8)
    for poly in polygons:
        pts = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
        if len(pts) < 3:
            continue
        rr, cc = draw_polygon(pts[:, 1], pts[:, 0], shape=(height, width))
        if even_odd:
            mask[rr, cc] ^= 1
        else:
            mask[rr, cc] = 1
    return mask


@dataclass
class _Item:
    """One annotated image as read from JSON: where its polygons came from and what they are."""

    where: str  # the annotation file (and image id for COCO), for messages
    filename: str
    width: int | None
    height: int | None
    lung_polys: list[tuple[list[Polygon], bool]] = field(default_factory=list)  # (rings, even_odd)
    ignore_polys: list[tuple[list[Polygon], bool]] = field(default_factory=list)
    rle: list[tuple[str, dict]] = field(default_factory=list)  # (target, uncompressed RLE)
    names: list[str] = field(default_factory=list)


def _norm(names: Iterable[str]) -> set[str]:
    return {n.strip().casefold() for n in names}


def _need(obj: object, key: str, where: str, what: str) -> object:
    if not isinstance(obj, Mapping) or key not in obj:
        raise DatasetError(f"{where}: not {what}: missing key {key!r}")
    return obj[key]


def _mask_root(root: Path, out_dir: str | Path | None) -> Path:
    out = Path(out_dir) if out_dir is not None else root / DEFAULT_MASK_DIR
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DatasetError(f"cannot create the mask folder {out} ({e}); pass out_dir= a writable folder") from e
    return out


def _record_id(image: Path, root: Path) -> str:
    try:
        rel = image.resolve().relative_to(root.resolve())
    except ValueError:
        rel = Path(image.name)
    return rel.with_suffix("").as_posix()


def _write_mask(mask: np.ndarray, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((mask > 0).astype(np.uint8) * 255, mode="L").save(path)
    return str(path)


def _decode_rle(rle: Mapping, height: int, width: int, where: str) -> np.ndarray:
    """Uncompressed COCO RLE: run lengths alternating 0 and 1 (zeros first), column-major."""
    counts = rle.get("counts")
    if not isinstance(counts, list):
        raise DatasetError(
            f"{where}: compressed RLE segmentation is not supported; convert it to polygons or uncompressed RLE"
        )
    size = rle.get("size", [height, width])
    if list(size) != [height, width]:
        raise DatasetError(f"{where}: RLE size {list(size)} differs from the image size {[height, width]}")
    values = np.arange(len(counts)) % 2
    flat = np.repeat(values.astype(np.uint8), np.asarray(counts, dtype=np.int64))
    if flat.size != height * width:
        raise DatasetError(f"{where}: RLE counts sum to {flat.size}, expected {height * width}")
    return flat.reshape((height, width), order="F")


def _build(
    items: list[_Item],
    root: Path,
    image_dir: Path,
    out: Path,
    source: str,
    class_names: Mapping[str, str] | None,
    seen_images: set[Path],
) -> IndexResult:
    """Check each item against its image, rasterise and write its masks, and make the records."""
    classes = tuple(dict.fromkeys(class_names.values())) if class_names else ()
    class_lookup = {k.strip().casefold(): v for k, v in (class_names or {}).items()}
    result = IndexResult(source=source, root=str(root), classes=classes)
    for item in tqdm(items, desc=f"rasterising {source} polygons"):
        image = image_dir / item.filename
        seen_images.add(image.resolve())
        if not image.is_file():
            result.skipped.append(SkippedItem(item.where, f"image file {image} not found"))
            continue
        if not item.lung_polys and not any(t == "lung" for t, _ in item.rle):
            result.skipped.append(SkippedItem(str(image), f"no lung polygon in {item.where}"))
            continue
        try:
            with Image.open(image) as img:
                width, height = img.size
        except Exception as e:  # any decoder error
            result.skipped.append(SkippedItem(str(image), f"unreadable image: {type(e).__name__}: {e}"))
            continue
        if (item.width, item.height) != (width, height) and (item.width, item.height) != (None, None):
            result.skipped.append(
                SkippedItem(
                    str(image),
                    f"annotation size {item.width}x{item.height} in {item.where} differs from image size "
                    f"{width}x{height}",
                )
            )
            continue
        mapped = {class_lookup[n.strip().casefold()] for n in item.names if n.strip().casefold() in class_lookup}
        if len(mapped) > 1:
            result.skipped.append(SkippedItem(str(image), f"ambiguous class: names map to {sorted(mapped)}"))
            continue
        masks = {"lung": np.zeros((height, width), np.uint8), "ignore": np.zeros((height, width), np.uint8)}
        for target, polys in (("lung", item.lung_polys), ("ignore", item.ignore_polys)):
            for rings, even_odd in polys:
                masks[target] |= rasterize_polygons(rings, height, width, even_odd=even_odd)
        for target, rle in item.rle:
            masks[target] |= _decode_rle(rle, height, width, item.where)
        if not masks["lung"].any():
            result.skipped.append(SkippedItem(str(image), f"lung polygons in {item.where} cover no pixel"))
            continue
        rid = _record_id(image, root)
        lung_path = _write_mask(masks["lung"], out / "lung" / f"{rid}.png")
        ignore_path = None
        if item.ignore_polys or any(t == "ignore" for t, _ in item.rle):
            ignore_path = _write_mask(masks["ignore"], out / "ignore" / f"{rid}.png")
        result.records.append(
            CXRRecord(
                id=rid,
                image=str(image.resolve()),
                class_name=next(iter(mapped)) if mapped else None,
                lung_mask=str(Path(lung_path).resolve()),
                ignore_mask=str(Path(ignore_path).resolve()) if ignore_path else None,
                source=source,
            )
        )
    ids = [r.id for r in result.records]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise DatasetError(f"{root}: several annotations describe the same image: {dup[:5]}")
    return result


def _unannotated(image_dir: Path, seen: set[Path]) -> list[SkippedItem]:
    if not image_dir.is_dir():
        return []
    return [
        SkippedItem(str(p), "image has no annotation")
        for p in sorted(image_dir.rglob("*"))
        if p.is_file()
        and p.suffix.lower() in IMAGE_SUFFIXES
        and p.resolve() not in seen
        and DEFAULT_MASK_DIR not in p.parts
    ]


# ----------------------------------------------------------------------------------------------- Darwin JSON


def _darwin_points(path: object, where: str) -> list[tuple[float, float]]:
    if not isinstance(path, list):
        raise DatasetError(f"{where}: a polygon path must be a list of {{'x', 'y'}} points")
    try:
        points = [(float(p["x"]), float(p["y"])) for p in path]
    except (KeyError, TypeError, ValueError) as e:
        raise DatasetError(f"{where}: polygon point without numeric 'x' and 'y' ({e!r})") from e
    bad = [k for k, (x, y) in enumerate(points) if not (math.isfinite(x) and math.isfinite(y))]
    if bad:
        raise DatasetError(f"{where}: polygon point {bad[0]} has a NaN or infinite coordinate {points[bad[0]]}")
    return points


def _darwin_rings(ann: Mapping, where: str) -> tuple[list[Polygon], bool] | None:
    """The rings of one Darwin annotation and whether they combine even-odd; None when it is no polygon."""
    if "complex_polygon" in ann:
        data = ann["complex_polygon"]
        paths = data.get("path", data.get("paths")) if isinstance(data, Mapping) else None
        if not isinstance(paths, list):
            raise DatasetError(f"{where}: complex_polygon without a 'path' list of rings")
        return [_darwin_points(p, where) for p in paths], True
    if "polygon" in ann:
        data = ann["polygon"]
        if not isinstance(data, Mapping):
            raise DatasetError(f"{where}: polygon must be an object with a 'path'")
        if "paths" in data:  # Darwin JSON 2.0
            return [_darwin_points(p, where) for p in data["paths"]], True
        rings = [_darwin_points(_need(data, "path", where, "a Darwin polygon"), where)]
        rings += [_darwin_points(p, where) for p in data.get("additional_paths", [])]
        return rings, True
    return None


def _read_darwin(path: Path, lung: set[str], ignore: set[str]) -> _Item:
    where = str(path)
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{where}: not valid JSON: {e}") from e
    anns = _need(data, "annotations", where, "a Darwin JSON file")
    if "item" in data:  # Darwin JSON 2.0
        item = data["item"]
        filename = str(_need(item, "name", where, "a Darwin JSON 2.0 file"))
        slots = item.get("slots") or [{}]
        width, height = slots[0].get("width"), slots[0].get("height")
    else:
        image = _need(data, "image", where, "a Darwin JSON file")
        filename = str(image.get("filename") or _need(image, "original_filename", where, "a Darwin JSON file"))
        width, height = image.get("width"), image.get("height")
    out = _Item(where, filename, int(width) if width is not None else None, int(height) if height is not None else None)
    if not isinstance(anns, list):
        raise DatasetError(f"{where}: 'annotations' must be a list")
    for k, ann in enumerate(anns):
        name = str(_need(ann, "name", f"{where} annotation {k}", "a Darwin annotation"))
        key = name.strip().casefold()
        if key in lung or key in ignore:
            rings = _darwin_rings(ann, f"{where} annotation {k} ({name})")
            if rings is not None:
                (out.lung_polys if key in lung else out.ignore_polys).append(rings)
        else:
            out.names.append(name)
    return out


def index_darwin(
    root: str | Path,
    *,
    out_dir: str | Path | None = None,
    lung_names: Sequence[str] = LUNG_NAMES,
    ignore_names: Sequence[str] = IGNORE_NAMES,
    class_names: Mapping[str, str] | None = None,
) -> IndexResult:
    """Index a V7 Darwin export: ``<root>/annotations/*.json`` beside ``<root>/images/``.

    Each JSON file describes one image (``"image": {"filename", "width", "height"}``; Darwin JSON 2.0's
    ``"item": {"name", "slots"}`` is read too) and its ``annotations``. ``polygon`` (with optional
    ``additional_paths``) and ``complex_polygon`` (several rings, even-odd: inner rings are holes) annotations
    named in ``lung_names`` are united into the lung mask, those named in ``ignore_names`` into the ignore mask
    (pixels that losses and metrics must exclude, such as pacemakers over a lung); other annotations and tags
    only serve ``class_names``.

    Args:
        root: the dataset folder.
        out_dir: where to write ``lung/<id>.png`` and ``ignore/<id>.png``; default ``<root>/.monaicxr_masks``.
        lung_names: annotation names that are lung (case-insensitive).
        ignore_names: annotation names whose pixels are excluded from losses and metrics (case-insensitive).
        class_names: annotation or tag name -> class name; without it every ``class_name`` is ``None``.

    Returns:
        An :class:`IndexResult` with source ``"darwin"``. Skipped with a reason: annotations whose image is
        missing, images without a lung polygon, images whose size differs from the JSON's, images with
        ambiguous classes, and images in ``images/`` that no annotation names.

    Raises:
        DatasetError: for a missing ``annotations`` folder, or a JSON file that is not Darwin JSON (naming the
            file and the missing key).
    """
    root = Path(root)
    ann_dir, image_dir = root / "annotations", root / "images"
    if not ann_dir.is_dir():
        raise DatasetError(f"{root}: expected a Darwin export with an 'annotations' folder of JSON files")
    files = sorted(ann_dir.glob("*.json"))
    if not files:
        raise DatasetError(f"{ann_dir}: no JSON annotation files")
    lung, ignore = _norm(lung_names), _norm(ignore_names)
    items = [_read_darwin(f, lung, ignore) for f in files]
    seen: set[Path] = set()
    result = _build(items, root, image_dir, _mask_root(root, out_dir), "darwin", class_names, seen)
    result.skipped.extend(_unannotated(image_dir, seen))
    logger.info("darwin %s: %d records, %d skipped", root, len(result.records), len(result.skipped))
    return result


# ------------------------------------------------------------------------------------------------- COCO JSON


def _find_coco_json(root: Path) -> Path:
    candidates = [root / "annotations.json"] if (root / "annotations.json").is_file() else sorted(root.glob("*.json"))
    if not candidates:
        candidates = sorted((root / "annotations").glob("*.json"))
    if len(candidates) != 1:
        raise DatasetError(
            f"{root}: expected one COCO JSON file (annotations.json), found {[c.name for c in candidates]}; "
            "pass the file itself"
        )
    return candidates[0]


def _read_coco(path: Path, lung: set[str], ignore: set[str]) -> list[_Item]:
    where = str(path)
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{where}: not valid JSON: {e}") from e
    images = _need(data, "images", where, "a COCO JSON file")
    anns = _need(data, "annotations", where, "a COCO JSON file")
    cats = _need(data, "categories", where, "a COCO JSON file")
    names = {
        c_id: str(_need(c, "name", f"{where} category", "a COCO category"))
        for c in cats
        for c_id in [_need(c, "id", f"{where} category", "a COCO category")]
    }
    items: dict[object, _Item] = {}
    for img in images:
        img_id = _need(img, "id", f"{where} image", "a COCO image")
        fname = str(_need(img, "file_name", f"{where} image {img_id}", "a COCO image"))
        w, h = img.get("width"), img.get("height")
        items[img_id] = _Item(
            f"{where} image {img_id}", fname, int(w) if w is not None else None, int(h) if h is not None else None
        )
    for k, ann in enumerate(anns):
        ann_where = f"{where} annotation {ann.get('id', k) if isinstance(ann, Mapping) else k}"
        img_id = _need(ann, "image_id", ann_where, "a COCO annotation")
        cat = _need(ann, "category_id", ann_where, "a COCO annotation")
        if img_id not in items:
            raise DatasetError(f"{ann_where}: image_id {img_id!r} is not among the images")
        if cat not in names:
            raise DatasetError(f"{ann_where}: category_id {cat!r} is not among the categories")
        name = names[cat]
        key = name.strip().casefold()
        item = items[img_id]
        if key not in lung and key not in ignore:
            item.names.append(name)
            continue
        target = "lung" if key in lung else "ignore"
        seg = _need(ann, "segmentation", ann_where, "a COCO annotation")
        if isinstance(seg, Mapping):
            if not isinstance(seg.get("counts"), list):
                raise DatasetError(
                    f"{ann_where}: compressed RLE segmentation is not supported; "
                    "convert it to polygons or uncompressed RLE"
                )
            item.rle.append((target, seg))
            continue
        if not isinstance(seg, list):
            raise DatasetError(f"{ann_where}: segmentation must be a list of polygons or an RLE object")
        rings = []
        for flat in seg:
            if not isinstance(flat, list) or any(isinstance(v, (str, bool)) or v is None for v in flat):
                raise DatasetError(f"{ann_where}: a polygon must be a flat list of numbers [x1, y1, x2, y2, ...]")
            try:
                coords = np.asarray(flat, dtype=np.float64)
            except (TypeError, ValueError) as e:
                raise DatasetError(f"{ann_where}: a polygon must be a flat list of numbers ({e})") from e
            if coords.ndim != 1 or coords.size % 2:
                raise DatasetError(f"{ann_where}: a polygon must be a flat list [x1, y1, x2, y2, ...]")
            if not np.isfinite(coords).all():
                raise DatasetError(
                    f"{ann_where}: polygon has {int((~np.isfinite(coords)).sum())} NaN or infinite coordinate(s)"
                )
            rings.append(coords.reshape(-1, 2))
        # COCO unites the polygons of one object
        (item.lung_polys if target == "lung" else item.ignore_polys).append((rings, False))
    return list(items.values())


def index_coco(
    root_or_json: str | Path,
    *,
    image_dir: str | Path | None = None,
    out_dir: str | Path | None = None,
    lung_names: Sequence[str] = LUNG_NAMES,
    ignore_names: Sequence[str] = IGNORE_NAMES,
    class_names: Mapping[str, str] | None = None,
) -> IndexResult:
    """Index a COCO JSON export with polygon segmentations of the lungs.

    The JSON needs ``images`` (``id``, ``file_name``, ``width``, ``height``), ``categories`` (``id``, ``name``)
    and ``annotations`` (``image_id``, ``category_id``, ``segmentation``). Segmentations of categories named in
    ``lung_names`` are united into the lung mask, those in ``ignore_names`` into the ignore mask (pixels that
    losses and metrics must exclude). A segmentation is a list of flat ``[x1, y1, x2, y2, ...]`` polygons or an
    uncompressed RLE ``{"counts": [...], "size": [h, w]}``; compressed (string) RLE is refused.

    Args:
        root_or_json: the COCO JSON file, or a folder holding ``annotations.json`` (or a single ``*.json``).
        image_dir: folder that ``file_name`` is relative to; default ``<root>/images`` if it exists, else the
            folder of the JSON file.
        out_dir: where to write ``lung/<id>.png`` and ``ignore/<id>.png``; default ``<root>/.monaicxr_masks``.
        lung_names: category names that are lung (case-insensitive).
        ignore_names: category names whose pixels are excluded from losses and metrics (case-insensitive).
        class_names: category name -> class name; without it every ``class_name`` is ``None``.

    Returns:
        An :class:`IndexResult` with source ``"coco"``, skipping (with a reason) images that are missing, have no
        lung polygon, differ in size from the JSON, or have ambiguous classes.

    Raises:
        DatasetError: for JSON that is not COCO (naming the file and the missing key), an annotation naming an
            unknown image or category, or a compressed RLE segmentation (naming the annotation id).
    """
    given = Path(root_or_json)
    if given.is_dir():
        root, json_path = given, _find_coco_json(given)
    elif given.is_file():
        root, json_path = given.parent, given
    else:
        raise DatasetError(f"{given}: no such COCO JSON file or folder")
    if image_dir is None:
        image_dir = root / "images" if (root / "images").is_dir() else json_path.parent
    image_dir = Path(image_dir)
    items = _read_coco(json_path, _norm(lung_names), _norm(ignore_names))
    seen: set[Path] = set()
    result = _build(items, root, image_dir, _mask_root(root, out_dir), "coco", class_names, seen)
    logger.info("coco %s: %d records, %d skipped", json_path, len(result.records), len(result.skipped))
    return result


def is_darwin(root: Path) -> bool:
    """A V7 Darwin export: ``annotations/*.json`` beside ``images/``."""
    root = Path(root)
    return (root / "images").is_dir() and (root / "annotations").is_dir() and any((root / "annotations").glob("*.json"))


def is_coco(root: Path) -> bool:
    """A COCO export: a JSON file at the top with ``images``, ``annotations`` and ``categories``.

    Raises:
        DatasetError: the one JSON file there is not valid JSON (a truncated export), rather than letting the
            folder be taken for another layout.
    """
    try:
        path = _find_coco_json(Path(root))
        text = path.read_text()
    except (DatasetError, OSError, UnicodeDecodeError):
        return False
    try:
        content = json.loads(text)
    except ValueError as e:
        raise DatasetError(
            f"{path}: not valid JSON ({e}); a truncated COCO export? Fix the file or pass layout=<name>"
        ) from e
    return isinstance(content, dict) and {"images", "annotations", "categories"} <= set(content)
