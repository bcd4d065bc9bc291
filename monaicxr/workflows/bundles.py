"""Run, evaluate and export a bundle by name: the plain functions behind ``monaicxr train / evaluate / export``.

MONAI's bundle runner takes a list of config files as a Python literal
(``--config_file "['bundles/unet/configs/train.json','bundles/unet/configs/task_3level.json']"``) plus the
metadata and logging files. Here a bundle is named (``unet``) or given as a folder, overlays are named by their
short name (``task_3level`` is ``configs/task_3level.json``), and the metadata and logging files are found
beside the configs. The work itself is MONAI's :class:`monai.bundle.ConfigWorkflow` (train, evaluate) and
``torch.onnx.export`` / :func:`monai.bundle.ckpt_export` (export).

Example::

    run_bundle("unet", "train", overlays=["task_3level"], overrides={"num_epochs": 2})
    run_bundle("simple_cnn", "evaluate", overrides={"dataset_dir": "data/test_films"})
    export_bundle("simple_cnn", onnx=True, out_dir="exported")
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "BUNDLES_DIR",
    "ExportParityError",
    "bundle_config_files",
    "export_bundle",
    "list_bundles",
    "list_overlays",
    "resolve_bundle",
    "run_bundle",
]

logger = logging.getLogger(__name__)

#: the repository's bundles, found from the package (an installed checkout)
BUNDLES_DIR = Path(__file__).resolve().parents[2] / "bundles"
#: configs that are not overlays of train.json
_NOT_OVERLAYS = {"train.json", "evaluate.json", "inference.json", "metadata.json"}
WORKFLOWS = ("train", "evaluate")


class ExportParityError(ValueError):
    """The exported ONNX model's outputs differ from the PyTorch network's by more than the tolerance.

    A ``ValueError`` so that the ``monaicxr`` script reports it in one line with exit status 2.
    """


def list_bundles(root: str | Path = BUNDLES_DIR) -> list[str]:
    """Names of the bundles under ``root`` (folders with ``configs/train.json``)."""
    root = Path(root)
    return sorted(p.parent.parent.name for p in root.glob("*/configs/train.json")) if root.is_dir() else []


def resolve_bundle(bundle: str | Path) -> Path:
    """The folder of ``bundle``: a bundle name (``unet``) or a path to a bundle folder.

    Raises:
        FileNotFoundError: naming what was looked for and listing the known bundles.
    """
    path = Path(bundle).expanduser()
    for candidate in (path, BUNDLES_DIR / str(bundle)):
        if (candidate / "configs" / "train.json").is_file():
            return candidate.resolve()
    if path.is_dir():
        raise FileNotFoundError(f"{path} is not a bundle folder: it has no configs/train.json")
    raise FileNotFoundError(
        f"unknown bundle {str(bundle)!r}: not a folder with configs/train.json, nor a bundle name; "
        f"known bundles: {', '.join(list_bundles()) or '(none found in ' + str(BUNDLES_DIR) + ')'}"
    )


def list_overlays(bundle_dir: Path) -> list[str]:
    """Short names of a bundle's overlays (``configs/*.json`` other than train / evaluate / inference / metadata)."""
    return sorted(p.stem for p in (bundle_dir / "configs").glob("*.json") if p.name not in _NOT_OVERLAYS)


def _overlay_file(bundle_dir: Path, name: str) -> Path:
    path = Path(name).expanduser()
    if path.suffix == ".json" and path.is_file():
        return path.resolve()
    candidate = bundle_dir / "configs" / (path.name if path.suffix == ".json" else f"{name}.json")
    if candidate.is_file() and candidate.name not in _NOT_OVERLAYS:
        return candidate
    raise FileNotFoundError(
        f"unknown overlay {name!r} for bundle {bundle_dir.name} (no {candidate}); "
        f"its overlays: {', '.join(list_overlays(bundle_dir)) or '(none)'}"
    )


def bundle_config_files(bundle_dir: Path, workflow: str, overlays: Sequence[str] = ()) -> list[str]:
    """``train.json``, the overlays in the order given, then ``evaluate.json`` for ``workflow="evaluate"``."""
    if workflow not in WORKFLOWS:
        raise ValueError(f"unknown workflow {workflow!r}; expected one of {WORKFLOWS}")
    files = [bundle_dir / "configs" / "train.json"] + [_overlay_file(bundle_dir, o) for o in overlays]
    if workflow == "evaluate":
        files.append(bundle_dir / "configs" / "evaluate.json")
    return [str(f) for f in files]


def _meta_and_logging(bundle_dir: Path) -> tuple[str | None, str | bool]:
    configs = bundle_dir / "configs"
    meta = configs / "metadata.json"
    logging_conf = next((p for p in (configs / "logging.conf", bundle_dir / "logging.conf") if p.is_file()), None)
    return (str(meta) if meta.is_file() else None), (str(logging_conf) if logging_conf else False)


def _configured_checkpoint(bundle_dir: Path, files: Sequence[str], overrides: Mapping[str, Any]) -> Path:
    """The checkpoint the configs name: their ``ckpt_path``, else ``models/<model_file>``, else ``models/model.pt``.

    An overlay can choose the weights (``configs/task_infection.json`` sets ``model_file``), so the configs are
    read rather than assuming ``models/model.pt``; a ``ckpt_path`` expression that cannot be evaluated on its own
    falls back to ``model_file``.
    """
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(list(files))
    parser.update(dict(overrides))
    if "ckpt_path" in parser:
        try:
            return Path(str(parser.get_parsed_content("ckpt_path"))).expanduser()
        except Exception:  # an expression needing more than bundle_root (imports, built objects)
            logger.debug("ckpt_path of %s not evaluated on its own", files, exc_info=True)
    name = parser.get_parsed_content("model_file") if "model_file" in parser else "model.pt"
    return bundle_dir / "models" / str(name)


def _checkpoint(bundle_dir: Path, overrides: Mapping[str, Any], files: Sequence[str] = ()) -> Path:
    """The checkpoint a workflow will load: ``ckpt_path`` if overridden, else the configs' own
    (:func:`_configured_checkpoint`; ``models/model.pt`` without ``files``); it must exist."""
    given = overrides.get("ckpt_path")
    if given is not None:
        path = Path(str(given)).expanduser()
    elif files:
        path = _configured_checkpoint(bundle_dir, files, overrides)
    else:
        path = bundle_dir / "models" / "model.pt"
    if not path.is_file():
        hint = "" if given is not None else "; train the bundle first, or pass --ckpt_path FILE"
        raise FileNotFoundError(f"checkpoint {path} does not exist{hint}")
    return path


def run_bundle(
    bundle: str | Path,
    workflow: str = "train",
    overlays: Sequence[str] = (),
    overrides: Mapping[str, Any] | None = None,
    logging_file: str | bool | None = None,
):
    """Run a bundle's ``train`` or ``evaluate`` workflow in this process and return the finished workflow.

    Args:
        bundle: a bundle name or folder (see :func:`resolve_bundle`).
        workflow: ``"train"`` (``train.json`` + overlays) or ``"evaluate"`` (+ ``evaluate.json`` last).
        overlays: overlay short names or JSON paths, applied in order after ``train.json``.
        overrides: config id -> value, as ``--id value`` on MONAI's command line; ``bundle_root`` defaults to
            the bundle's folder so that the run does not depend on the working directory.
        logging_file: the logging config; by default the bundle's ``logging.conf`` (``False``: leave logging
            as it is).

    Raises:
        FileNotFoundError: unknown bundle or overlay; for ``evaluate``, a missing checkpoint (before any data
            is read).
    """
    bundle_dir = resolve_bundle(bundle)
    files = bundle_config_files(bundle_dir, workflow, overlays)
    overrides = {"bundle_root": str(bundle_dir), **(overrides or {})}
    if workflow == "evaluate":
        _checkpoint(bundle_dir, overrides, files)
    meta, default_logging = _meta_and_logging(bundle_dir)
    from monai.bundle import ConfigWorkflow

    logger.info("%s %s with %s", workflow, bundle_dir, ", ".join(Path(f).name for f in files))
    wf = ConfigWorkflow(
        config_file=files,
        meta_file=meta,
        logging_file=default_logging if logging_file is None else logging_file,
        workflow_type="eval" if workflow == "evaluate" else "train",
        **overrides,
    )
    wf.initialize()
    wf.run()
    wf.finalize()
    return wf


def _outputs(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, Mapping):
        return [t for v in out.values() for t in _outputs(v)]
    if isinstance(out, (list, tuple)):
        return [t for v in out for t in _outputs(v)]
    raise TypeError(f"cannot compare a network output of type {type(out).__name__}")


def _onnx_outputs(path: Path, x: torch.Tensor) -> tuple[list, str]:
    """Run the ONNX file on ``x`` with onnxruntime, or onnx's reference evaluator where onnxruntime is absent."""
    import numpy as np

    try:
        import onnxruntime
    except ImportError:
        onnxruntime = None
    if onnxruntime is not None:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return [np.asarray(o) for o in session.run(None, {name: x.numpy()})], "onnxruntime"
    try:
        import onnx
        from onnx.reference import ReferenceEvaluator
    except ImportError as e:
        raise ImportError("the ONNX parity check needs onnxruntime or onnx (pip install monaicxr[export])") from e
    evaluator = ReferenceEvaluator(onnx.load(str(path)))
    name = evaluator.input_names[0]
    return [np.asarray(o) for o in evaluator.run(None, {name: x.numpy()})], "onnx reference evaluator"


def _input_shape(parser, meta: Mapping[str, Any]) -> list[int]:
    image = meta.get("network_data_format", {}).get("inputs", {}).get("image", {})
    channels = int(image.get("num_channels", 1))
    spatial = parser.get("spatial_size") if "spatial_size" in parser else image.get("spatial_shape")
    if spatial is None:
        raise ValueError("cannot tell the network's input size: no spatial_size in the config or metadata")
    spatial = parser.get_parsed_content("spatial_size") if isinstance(spatial, str) else spatial
    return [1, channels, *[int(s) for s in spatial]]


def export_bundle(
    bundle: str | Path,
    onnx: bool = True,
    torchscript: bool = False,
    overlays: Sequence[str] = (),
    overrides: Mapping[str, Any] | None = None,
    out_dir: str | Path | None = None,
    atol: float = 1e-4,
    rtol: float = 1e-3,
) -> dict[str, Any]:
    """Export a bundle's trained network to ONNX (``model.onnx``) and / or TorchScript (``model.ts``).

    The network is ``network_def`` of ``train.json`` + ``overlays`` + ``overrides``, with the weights of
    ``ckpt_path`` (default ``models/model.pt``), in eval mode, on a ``(1, C, H, W)`` input (C from the
    metadata, H x W from ``spatial_size``) with a dynamic batch axis. The ONNX file is checked against the
    PyTorch network on a seeded random batch of three with onnxruntime (onnx's reference evaluator where
    onnxruntime is not installed): the largest absolute difference is logged and returned, and one over
    ``atol + rtol * max|torch output|`` is an error. TorchScript goes through :func:`monai.bundle.ckpt_export`,
    which stores the config and metadata in the file.

    Args:
        out_dir: where the files go; the bundle's ``models/`` by default.

    Returns:
        ``{"onnx": path, "max_abs_diff": float, "checked_with": str, "torchscript": path}`` (the keys of what
        was written).

    Raises:
        FileNotFoundError: unknown bundle or overlay, missing checkpoint (before anything is built).
        ExportParityError: ONNX outputs differ from the network's beyond the tolerance.
    """
    if not (onnx or torchscript):
        raise ValueError("nothing to export: ask for --onnx and / or --torchscript")
    bundle_dir = resolve_bundle(bundle)
    files = bundle_config_files(bundle_dir, "train", overlays)
    overrides = {"bundle_root": str(bundle_dir), **(overrides or {})}
    ckpt = _checkpoint(bundle_dir, overrides, files)
    meta_file, _ = _meta_and_logging(bundle_dir)
    out = Path(out_dir) if out_dir is not None else bundle_dir / "models"
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Any] = {}

    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(files)
    if meta_file:
        parser.read_meta(meta_file)
    parser.update({k: v for k, v in overrides.items() if k != "ckpt_path"})
    shape = _input_shape(parser, parser.get("_meta_", {}))

    if onnx:
        from monaicxr.io.checkpoints import load_checkpoint

        net = parser.get_parsed_content("network_def", instantiate=True).cpu().eval()
        state = load_checkpoint(ckpt, map_location="cpu", expected={"model": net})["model"]
        net.load_state_dict(state)
        path = out / "model.onnx"
        # a batch of two: torch.export would fix a batch axis of size one
        x = torch.rand(2, *shape[1:], generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            n_out = len(_outputs(net(x)))
            output_names = ["pred"] if n_out == 1 else [f"pred_{i}" for i in range(n_out)]
            torch.onnx.export(
                net,
                (x,),
                str(path),
                input_names=["image"],
                output_names=output_names,
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                dynamo=True,
            )
        batch = torch.rand(3, *shape[1:], generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            expected = [t.detach().float().numpy() for t in _outputs(net(batch))]
        got, engine = _onnx_outputs(path, batch)
        diff = max(float(abs(g - e).max()) for g, e in zip(got, expected, strict=True))
        tolerance = atol + rtol * max(float(abs(e).max()) for e in expected)
        logger.info("ONNX %s: max abs diff %.3g vs PyTorch on %s (%s)", path, diff, list(batch.shape), engine)
        written.update(onnx=path, max_abs_diff=diff, checked_with=engine)
        if not diff <= tolerance:
            raise ExportParityError(
                f"{path}: ONNX outputs differ from the PyTorch network's by up to {diff:.3g} "
                f"(tolerance {tolerance:.3g}, checked with {engine})"
            )
    if torchscript:
        from monai.bundle import ckpt_export

        path = out / "model.ts"
        ckpt_export(
            net_id="network_def",
            filepath=str(path),
            ckpt_file=str(ckpt),
            meta_file=meta_file,
            config_file=files,
            input_shape=shape,
            **{k: v for k, v in overrides.items() if k != "ckpt_path"},
        )
        written["torchscript"] = path
    return written
