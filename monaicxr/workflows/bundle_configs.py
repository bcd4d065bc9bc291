"""Generate the bundles' flat configs from the family bases in the top-level ``configs/`` folder.

Each family (``configs/classification``, ``configs/segmentation``) holds one base per bundle file in ``base/``
(``train.json``, ``evaluate.json``, ``inference.json``, ``multi_gpu_train.json``) and one short overlay per
bundle, ``configs/<family>/<bundle>.json``::

    {
        "common": {"bundle_root": "bundles/densenet121", "network_def": {...}},   # train.json and inference.json
        "train": {"network_def#dropout_prob": "@dropout"},                         # train.json only
        "inference": {}, "evaluate": {}, "multi_gpu_train": {}
    }

``monaicxr generate-bundles`` writes ``bundles/<bundle>/configs/<file>`` = base, then ``common`` (for the two
stand-alone configs), then the file's own section; ``configs/logging.conf`` is copied into every bundle. The
flat files keep every bundle self-contained: ``python -m monai.bundle`` and MONAI Label read them from any working
directory, which MONAI's ``%file#id`` references (resolved from the working directory) cannot promise.
``--check`` writes nothing and fails when a committed file differs from what the sources give (the drift test).

Other files in a bundle's ``configs/`` (task overlays such as ``task_infection.json``, ``metadata.json``) are
written by hand and left alone.

An overlay key follows MONAI's override ids (``a#b#0`` goes into ``a``, then ``b``, then list item 0), with one
difference that is why the merge is written here rather than taken from ``monai.bundle.ConfigParser``: a base
may itself hold literal ids such as ``validate#handlers`` (an ``evaluate.json`` is an override of ``train.json``),
so an overlay key first matches the longest literal key present and only then descends.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

__all__ = ["BUNDLE_FILES", "FAMILIES", "build_bundle", "generate", "merge_override", "render"]

FAMILIES = ("classification", "segmentation")
BUNDLE_FILES = ("train.json", "evaluate.json", "inference.json", "multi_gpu_train.json")
STANDALONE = ("train.json", "inference.json")
SECTIONS = {"common", *(f.removesuffix(".json") for f in BUNDLE_FILES)}


class BundleConfigError(ValueError):
    """A family base or bundle overlay in ``configs/`` that cannot be merged."""


def merge_override(config: Any, key: str, value: Any, source: str = "") -> None:
    """Set ``key`` in ``config`` in place: a literal key when present, else the longest literal prefix, descending."""
    if isinstance(config, dict):
        if key in config or "#" not in key:
            config[key] = copy.deepcopy(value)
            return
        parts = key.split("#")
        for cut in range(len(parts) - 1, 0, -1):
            head = "#".join(parts[:cut])
            if head in config:
                merge_override(config[head], "#".join(parts[cut:]), value, source)
                return
        config[key] = copy.deepcopy(value)  # a new override id for MONAI to apply at run time
        return
    if isinstance(config, list):
        head, _, rest = key.partition("#")
        try:
            index = int(head)
            config[index]  # noqa: B018 - raises IndexError when out of range
        except (ValueError, IndexError):
            raise BundleConfigError(
                f"{source}: override {key!r} names list item {head!r} of a {len(config)}-item list"
            ) from None
        if rest:
            merge_override(config[index], rest, value, source)
        else:
            config[index] = copy.deepcopy(value)
        return
    raise BundleConfigError(f"{source}: override {key!r} goes into a {type(config).__name__}, not a dict or list")


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise BundleConfigError(f"{path} does not exist") from None
    except json.JSONDecodeError as err:
        raise BundleConfigError(f"{path} is not valid JSON: {err}") from None


def build_bundle(overlay_path: str | Path) -> dict[str, dict]:
    """The flat configs of the bundle that ``configs/<family>/<bundle>.json`` describes: file name -> config."""
    overlay_path = Path(overlay_path)
    base_dir = overlay_path.parent / "base"
    overlay = _load_json(overlay_path)
    if not isinstance(overlay, dict) or not set(overlay) <= SECTIONS:
        extra = sorted(set(overlay) - SECTIONS) if isinstance(overlay, dict) else type(overlay).__name__
        raise BundleConfigError(f"{overlay_path}: expected an object with sections {sorted(SECTIONS)}, found {extra}")
    for section, content in overlay.items():
        if not isinstance(content, dict):
            raise BundleConfigError(
                f"{overlay_path}: section {section!r} must be an object of override ids, not {type(content).__name__}"
            )
    out = {}
    for name in BUNDLE_FILES:
        config = _load_json(base_dir / name)
        sections = ["common", name.removesuffix(".json")] if name in STANDALONE else [name.removesuffix(".json")]
        for section in sections:
            for key, value in overlay.get(section, {}).items():
                merge_override(config, key, value, source=f"{overlay_path} [{section}]")
        out[name] = config
    return out


def render(config: dict) -> str:
    """The text of a generated file (4-space JSON, as MONAI's model zoo writes its configs)."""
    return json.dumps(config, indent=4) + "\n"


def _targets(root: Path) -> dict[Path, str]:
    configs = root / "configs"
    logging_conf = (configs / "logging.conf").read_text()
    targets: dict[Path, str] = {}
    for family in FAMILIES:
        for overlay_path in sorted((configs / family).glob("*.json")):
            bundle = root / "bundles" / overlay_path.stem / "configs"
            for name, config in build_bundle(overlay_path).items():
                targets[bundle / name] = render(config)
            targets[bundle / "logging.conf"] = logging_conf
    return targets


def generate(root: str | Path = ".", check: bool = False) -> list[Path]:
    """Write (or with ``check``, compare) every generated bundle file; returns the files that changed (or differ).

    A bundle folder under ``bundles/`` without an overlay in ``configs/`` is an error: every bundle is generated.
    """
    root = Path(root).resolve()
    if not (root / "configs").is_dir() or not (root / "bundles").is_dir():
        raise BundleConfigError(
            f"{root} has no configs/ and bundles/ folders: run from the repository root or pass --root"
        )
    targets = _targets(root)
    generated = {path.parent.parent.name for path in targets}
    orphans = sorted(p.name for p in (root / "bundles").iterdir() if p.is_dir() and p.name not in generated)
    if orphans:
        raise BundleConfigError(f"bundles without an overlay in configs/<family>/: {orphans}")
    changed = []
    for path, text in targets.items():
        current = path.read_text() if path.is_file() else None
        if current != text:
            changed.append(path)
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    return changed
