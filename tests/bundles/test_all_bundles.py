"""The checks every bundle under bundles/ must pass, parameterized over the bundles found there.

As segmentation_models.pytorch runs one base test over every network, each bundle (a folder with
``configs/train.json``; a new one is covered without editing this file) is checked for:

- layout and metadata: the root links, a README, the offline schema subset, class names and sizes as in the configs;
- ``configs/multi_gpu_train.json`` merging onto ``train.json`` and resolving;
- MONAI's ``verify_net_in_out`` on ``metadata.json`` + ``inference.json``;
- the metadata against the network ``inference.json`` builds: input and output shapes and channels, and the
  output's ``type`` / ``value_range`` saying ``logits`` where the network returns raw logits;
- ``models/model.pt``, where shipped, loading strictly into that network (``monaicxr.io.load_checkpoint``, the
  bundles' own check), and inference without it stopping with an error naming it before any image is read;
- one epoch of training at 32 x 32 on 12 phantoms, then evaluate and inference from that run;
- TorchScript (``monai.bundle.ckpt_export``) and ONNX (``monaicxr export --onnx``'s function) exports of the
  trained network, with their outputs compared to the eager network's.

Bundle-specific behaviour stays in the per-bundle files.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_helpers import REPO, copy_images, error_messages, make_workflow, run_workflow, tiny_overrides
from monai.bundle import ConfigParser, ConfigWorkflow

from monaicxr.io import load_checkpoint
from monaicxr.workflows.bundles import list_bundles

BUNDLES_DIR = REPO / "bundles"
BUNDLES = list_bundles(BUNDLES_DIR)
SCHEMA = Path(__file__).with_name("meta_schema_subset.json")
#: phantoms of each kind (COVID-19, Non-COVID, Normal), and their split: 2 / 1 / 1 of each kind
PER_KIND = 4
SPLIT = {"split_mode": "ratios", "split_ratios": [0.5, 0.25, 0.25]}

#: TorchScript by tracing where ``torch.jit.script`` cannot compile the network (the reason is the value)
TRACE = {
    # MONAI's MBConvBlock deletes its squeeze-and-excitation layers when has_se is False (Lite0 has no SE), but
    # the scripted forward still compiles the `if self.has_se:` branch, which names them: "Module 'MBConvBlock'
    # has no attribute '_se_adaptpool'"
    "efficientnet_lite0": "MBConvBlock without squeeze-and-excitation does not script",
}


def _configs(name: str) -> Path:
    return BUNDLES_DIR / name / "configs"


def _meta(name: str) -> dict:
    return json.loads((_configs(name) / "metadata.json").read_text())


def _parser(name: str, *files: str, **override) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str(_configs(name) / f) for f in files])
    parser.read_meta(str(_configs(name) / "metadata.json"))
    parser.update({"bundle_root": str(BUNDLES_DIR / name), **override})
    return parser


def _network(name: str, config: str = "inference.json", weights: Path | None = None, **override) -> torch.nn.Module:
    """``network_def`` of ``config`` in eval mode on the CPU, with ``weights`` loaded strictly when given."""
    net = _parser(name, config, **override).get_parsed_content("network_def").cpu().eval()
    if weights is not None:
        state = load_checkpoint(weights, map_location="cpu", expected={"model": net})["model"]
        net.load_state_dict(state, strict=True)
    return net


def _forward(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = net(x)
    assert isinstance(out, torch.Tensor), f"the network returns a {type(out).__name__} in eval mode, not a tensor"
    return out


def _random_input(meta: dict, spatial: list[int], batch: int = 2) -> torch.Tensor:
    channels = meta["network_data_format"]["inputs"]["image"]["num_channels"]
    return torch.rand(batch, channels, *spatial, generator=torch.Generator().manual_seed(0))


def _is_classifier(meta: dict) -> bool:
    return meta["network_data_format"]["outputs"]["pred"]["format"] == "classes"


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> Path:
    """``PER_KIND`` phantoms of each kind at 64 x 64, with lung and infection masks, shared by every bundle."""
    from monaicxr.data.synthetic import write_phantom_dataset

    return write_phantom_dataset(tmp_path_factory.mktemp("phantoms") / "set", n_per_class=PER_KIND, size=64, seed=0)


# --- layout, metadata, multi-GPU overlay ------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUNDLES)
def test_layout_and_metadata_agree_with_the_configs(name):
    """The root links and README, the offline schema subset, and the class names and input size of the configs."""
    import jsonschema

    bundle = BUNDLES_DIR / name
    for link in ("train.json", "metadata.json", "logging.conf"):
        assert (bundle / link).is_symlink() and (bundle / link).resolve() == (_configs(name) / link).resolve(), link
    assert (bundle / "docs" / "README.md").is_file()
    meta = _meta(name)
    jsonschema.validate(meta, json.loads(SCHEMA.read_text()))  # the subset repeats MONAI's required fields
    fmt = meta["network_data_format"]
    shape = fmt["inputs"]["image"]["spatial_shape"]
    for tensor in (*fmt["inputs"].values(), *fmt["outputs"].values()):
        assert sorted(tensor["channel_def"], key=int) == [str(i) for i in range(tensor["num_channels"])]
    for config in ("train.json", "inference.json"):
        parser = _parser(name, config)
        assert parser["spatial_size"] == shape, config
        if _is_classifier(meta):
            assert list(fmt["outputs"]["pred"]["channel_def"].values()) == meta["class_names"]
            assert parser.get_parsed_content("class_names") == meta["class_names"], config


@pytest.mark.parametrize("name", BUNDLES)
def test_multi_gpu_overlay_resolves(name):
    """multi_gpu_train.json merges onto train.json and its pieces resolve (the DDP network is built only in a
    process group, so the plain parts are parsed and the DDP wiring is checked by id)."""
    configs = _configs(name)
    parser = ConfigParser()
    parser.read_config([str(configs / "train.json"), str(configs / "multi_gpu_train.json")])
    assert parser["network"]["_target_"] == "torch.nn.parallel.DistributedDataParallel"
    assert parser["train#dataloader#sampler"] == "@train#sampler"
    assert parser["train#sampler"]["_target_"] == "DistributedSampler"
    assert any("init_process_group" in s for s in parser["initialize"])
    assert any("checkpointer.attach" in s and "@rank == 0" in s for s in parser["run"])
    assert any("trainer.run()" in s for s in parser["run"])
    plain = ConfigParser()
    plain.read_config(str(configs / "train.json"))
    # everything train.json runs, the overlay runs too (rank-0 guards aside)
    assert len(parser["run"]) == len(plain["run"])
    assert all(s in parser["initialize"] for s in plain["initialize"])
    # every reference of the merged config names an id that exists
    from monai.bundle.reference_resolver import ReferenceResolver

    def strings(node):
        if isinstance(node, dict):
            return [s for v in node.values() for s in strings(v)]
        if isinstance(node, list):
            return [s for v in node for s in strings(v)]
        return [node] if isinstance(node, str) else []

    parser.resolve_macro_and_relative_ids()  # "%" copies and "@#" relative ids, as parsing would
    refs = {r for s in strings(parser.get()) for r in ReferenceResolver.match_refs_pattern(s)}
    assert refs and not [r for r in sorted(refs) if r not in parser]


# --- the deployed network against its metadata -------------------------------------------------------------------


@pytest.mark.parametrize("name", BUNDLES)
def test_verify_net_in_out(name):
    """MONAI's own check (in-process, faster than ``python -m monai.bundle verify_net_in_out``) at the declared size."""
    from monai.bundle import verify_net_in_out

    configs = _configs(name)
    verify_net_in_out(
        net_id="network_def", meta_file=str(configs / "metadata.json"), config_file=str(configs / "inference.json"),
        device="cpu", bundle_root=str(BUNDLES_DIR / name),
    )  # fmt: skip


def _shipped(name: str) -> Path | None:
    path = BUNDLES_DIR / name / "models" / "model.pt"
    return path if path.is_file() else None


_DEPLOYED: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}


def _deployed_output(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(input, output) of inference.json's network at the declared size, with the shipped weights if any."""
    if name not in _DEPLOYED:
        meta = _meta(name)
        x = _random_input(meta, meta["network_data_format"]["inputs"]["image"]["spatial_shape"], batch=1)
        _DEPLOYED[name] = x, _forward(_network(name, weights=_shipped(name)), x)
    return _DEPLOYED[name]


@pytest.mark.parametrize("name", BUNDLES)
def test_metadata_shapes_match_the_network(name, phantoms):
    """Output shape and channels as declared (classes: ``(B, n)`` with ``spatial_shape [n]``; a map: the input's
    size), and inference's preprocessing makes the declared input from a film."""
    meta = _meta(name)
    inputs, outputs = meta["network_data_format"]["inputs"]["image"], meta["network_data_format"]["outputs"]["pred"]
    x, out = _deployed_output(name)
    if _is_classifier(meta):
        assert outputs["spatial_shape"] == [outputs["num_channels"]]
        assert tuple(out.shape) == (x.shape[0], outputs["num_channels"])
    else:
        assert tuple(out.shape) == (x.shape[0], outputs["num_channels"], *outputs["spatial_shape"])
        assert outputs["spatial_shape"] == inputs["spatial_shape"]
    assert str(out.dtype) == f"torch.{outputs['dtype']}"

    film = sorted((phantoms / "images").glob("*.png"))[0]
    image = _parser(name, "inference.json").get_parsed_content("preprocessing")({"image": str(film)})["image"]
    assert tuple(image.shape) == (inputs["num_channels"], *inputs["spatial_shape"])
    assert str(image.dtype) == f"torch.{inputs['dtype']}"
    if inputs["value_range"]:
        lo, hi = inputs["value_range"]
        assert lo <= float(image.min()) and float(image.max()) <= hi


def _is_probability(out: torch.Tensor) -> bool:
    """Values in [0, 1] that (over several channels) sum to one: what a sigmoid or softmax returns."""
    in_unit = bool(((out >= 0) & (out <= 1)).all())
    return in_unit and (out.shape[1] == 1 or torch.allclose(out.sum(1), torch.ones(()), atol=1e-4))


@pytest.mark.parametrize("name", BUNDLES)
def test_metadata_value_range_says_what_the_network_returns(name):
    """A network returning raw logits is declared ``type: logits`` with an unbounded ``value_range`` (``[]``); one
    returning probabilities is not called logits, and its values lie in the declared range."""
    outputs = _meta(name)["network_data_format"]["outputs"]["pred"]
    x, out = _deployed_output(name)
    if out.shape[1] == 1 and _is_probability(out):
        # one untrained channel can land in [0, 1] by chance (u2net's did): a sigmoid stays there for any input
        out = torch.cat([out, _forward(_network(name, weights=_shipped(name)), x * 50.0 - 25.0)])
    if _is_probability(out):
        assert outputs["type"] != "logits", "the network returns probabilities, the metadata says logits"
    else:
        assert outputs["type"] == "logits", (
            f"the network returns logits (e.g. {float(out.min()):.3g}), declared {outputs['type']!r}"
        )
    if outputs["value_range"]:
        lo, hi = outputs["value_range"]
        assert lo <= float(out.min()) and float(out.max()) <= hi, f"outputs outside the declared {[lo, hi]}"
    else:
        assert not _is_probability(out), "probabilities with no value_range: declare [0, 1]"


@pytest.mark.parametrize("name", [n for n in BUNDLES if _shipped(n)])
def test_shipped_weights_load_strictly_into_the_inference_network(name):
    """models/model.pt holds exactly inference.json's network (names, shapes, finite), and its card, if any,
    belongs to it (sha256) and records the input settings inference.json uses."""
    from monaicxr.io.weights_card import card_path, check_input, read_card

    weights = _shipped(name)
    net = _network(name)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    state = load_checkpoint(weights, map_location="cpu", expected={"model": net})["model"]
    assert net.load_state_dict(state, strict=True).missing_keys == []
    assert any(not torch.equal(before[k], v) for k, v in net.state_dict().items())  # the weights did change it
    if card_path(weights).is_file():
        card = read_card(weights)
        parser = _parser(name, "inference.json")
        settings = {k: parser.get_parsed_content(k) for k in card["input"] if k in parser}
        assert "spatial_size" in settings
        check_input(weights, **settings)


@pytest.mark.parametrize("name", BUNDLES)
def test_inference_without_the_checkpoint_stops_before_any_image_is_read(name, phantoms, tmp_path, monkeypatch):
    """No models/model.pt (or a ckpt_path naming no file): an error naming the file, before the input folder is
    listed and decoded and before anything is written."""
    import monaicxr.data.prepare

    shipped = BUNDLES_DIR / name / "models" / "model.pt"
    # the config's own ckpt_path where the bundle ships no weights, else one naming a file that does not exist
    ckpt, given = (tmp_path / "absent" / "model.pt", True) if shipped.is_file() else (shipped, False)
    folder = copy_images(sorted((phantoms / "images").glob("*.png"))[:1], tmp_path / "in")
    listed = []
    real = monaicxr.data.prepare.list_images
    monkeypatch.setattr(monaicxr.data.prepare, "list_images", lambda *a, **k: listed.append(a) or real(*a, **k))
    wf = ConfigWorkflow(
        config_file=str(_configs(name) / "inference.json"), meta_file=str(_configs(name) / "metadata.json"),
        logging_file=False, workflow_type="infer", bundle_root=str(BUNDLES_DIR / name), input_dir=str(folder),
        output_dir=str(tmp_path / "pred"), **({"ckpt_path": str(ckpt)} if given else {}), **tiny_overrides(name),
    )  # fmt: skip
    with pytest.raises(Exception) as info:
        wf.initialize()
        wf.run()
    assert f"{ckpt} does not exist" in error_messages(info.value)
    assert not listed, "the input folder was listed and every image decoded before the missing file was noticed"
    assert not (tmp_path / "pred").exists() or not any((tmp_path / "pred").iterdir())


# --- one tiny training run per bundle, then evaluate, inference and the exports ---------------------------------


@pytest.fixture(scope="module")
def trained(phantoms, tmp_path_factory):
    """``trained(name)``: the output folder of one epoch of bundle ``name`` on the phantoms, trained once."""
    runs: dict[str, Path | BaseException] = {}

    def get(name: str) -> Path:
        if name not in runs:
            out = tmp_path_factory.mktemp(f"{name}_run")
            try:
                run_workflow(
                    make_workflow(_configs(name), tiny_overrides(name), out, dataset_dir=str(phantoms), **SPLIT)
                )
                runs[name] = out
            except Exception as e:  # every test of this bundle reports the failure, without training again
                runs[name] = e
        if isinstance(runs[name], BaseException):
            raise runs[name]
        return runs[name]

    return get


@pytest.mark.parametrize("name", BUNDLES)
def test_one_epoch_of_training(name, trained):
    out = trained(name)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_completed"] == 1
    assert summary["key_metric"] in summary["last_validation"]
    assert math.isfinite(summary["best_metric"])
    datalist = json.loads((out / "datalist.json").read_text())
    n_kinds = len(datalist["classes"])
    expected = [round(PER_KIND * r) * n_kinds for r in SPLIT["split_ratios"]]
    assert [len(datalist[s]) for s in ("training", "validation", "test")] == expected
    assert (out / "checkpoints" / "checkpoint_epoch=1.pt").is_file() and (out / "metrics" / "metrics.csv").is_file()
    # model.pt is the network train.json builds at these sizes, through the loader the bundles use
    load_checkpoint(
        out / "models" / "model.pt", expected={"model": _network(name, "train.json", **tiny_overrides(name))}
    )
    meta = _meta(name)
    if _is_classifier(meta):
        report = json.loads((out / "eval_report" / "classification_report.json").read_text())
        assert list(report["per_class"]) == meta["class_names"]
        for written in ("predictions.csv", "confusion_matrix.csv", "classification_report.txt"):
            assert (out / "eval_report" / written).is_file(), written
        assert report["accuracy"] == pytest.approx(summary["last_validation"]["val_accuracy"])


@pytest.mark.parametrize("name", BUNDLES)
def test_evaluate_the_trained_run(name, trained):
    """evaluate.json on the run's own datalist: its summary counts the section's images; a classifier's report
    equals scikit-learn's on its own predictions.csv, a segmentation's per-image CSV lists each image."""
    out = trained(name)
    ckpt = out / "models" / "model.pt"
    wf = make_workflow(
        _configs(name), tiny_overrides(name), out, "evaluate.json", workflow_type="eval",
        datalist_file=str(out / "datalist.json"), ckpt_path=str(ckpt),
    )  # fmt: skip
    run_workflow(wf)
    section = wf.parser.get_parsed_content("eval_section")
    items = json.loads((out / "datalist.json").read_text())[section]
    summary = json.loads((out / "eval" / "summary.json").read_text())
    assert summary["eval_section"] == section and summary["checkpoint"] == str(ckpt)
    assert summary["n_images"] == len(items) > 0
    assert any(isinstance(v, float) and math.isfinite(v) for v in summary["metrics"].values()), summary["metrics"]
    meta = _meta(name)
    if _is_classifier(meta):
        _check_classification_report(out / "eval", items, meta["class_names"])
    else:
        rows = list(csv.reader((out / "eval" / "val_dice_raw.csv").open()))
        names = [Path(r[0]).stem for r in rows[1:] if r[0] not in ("mean", "median", "std")]
        assert sorted(names) == sorted(Path(item["image"]).stem for item in items)


def _check_classification_report(folder: Path, items: list[dict], classes: list[str]) -> None:
    from sklearn import metrics as skm

    report = json.loads((folder / "classification_report.json").read_text())
    rows = list(csv.DictReader((folder / "predictions.csv").open()))
    assert sorted(r["image"] for r in rows) == sorted(item["image"] for item in items)
    truth = {item["image"]: classes[item["class_index"]] for item in items}
    assert all(r["true"] == truth[r["image"]] for r in rows)
    y = np.array([classes.index(r["true"]) for r in rows])
    probs = np.array([[float(r[f"p_{c}"]) for c in classes] for r in rows])
    pred = np.array([classes.index(r["pred"]) for r in rows])
    assert np.array_equal(pred, probs.argmax(1)) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    labels = list(range(len(classes)))
    assert report["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    for k, c in enumerate(classes):
        got = report["per_class"][c]
        assert (got["precision"], got["recall"], got["f1"], got["support"]) == pytest.approx((p[k], r[k], f[k], s[k]))
        if 0 < s[k] < len(y):
            assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y == k, probs[:, k]), abs=1e-6)
    assert report["macro_avg"]["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro", zero_division=0))
    assert report["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=labels).tolist()


@pytest.mark.parametrize("name", BUNDLES)
def test_inference_with_the_trained_run(name, trained, phantoms, tmp_path):
    """inference.json on a folder of two films and a text file: one prediction per film (classes: probabilities
    summing to one; a map: a 0 / 255 mask at the film's size and an overlay), the text file left out and listed."""
    from PIL import Image

    films = sorted((phantoms / "images").glob("*.png"))[::5][:2]
    folder = copy_images(films, tmp_path / "in")
    (folder / "notes.txt").write_text("not an image")
    wf = ConfigWorkflow(
        config_file=str(_configs(name) / "inference.json"), meta_file=str(_configs(name) / "metadata.json"),
        logging_file=False, workflow_type="infer", bundle_root=str(BUNDLES_DIR / name), input_dir=str(folder),
        output_dir=str(tmp_path / "pred"), ckpt_path=str(trained(name) / "models" / "model.pt"),
        **tiny_overrides(name),
    )  # fmt: skip
    wf.initialize()
    run_workflow(wf)
    issues = list(csv.DictReader((tmp_path / "pred" / "input_issues.csv").open()))
    assert [Path(r["file"]).name for r in issues] == ["notes.txt"]
    meta = _meta(name)
    if _is_classifier(meta):
        rows = list(csv.reader((tmp_path / "pred" / "predictions.csv").open()))
        assert sorted(Path(r[0]).name for r in rows) == [p.name for p in films]
        for r in rows:
            probs = [float(v) for v in r[1:]]
            assert len(probs) == len(meta["class_names"]) and sum(probs) == pytest.approx(1.0, abs=1e-4)
    else:
        assert sorted(p.name for p in (tmp_path / "pred").glob("*_mask.png")) == [f"{p.stem}_mask.png" for p in films]
        for p in films:
            mask = np.asarray(Image.open(tmp_path / "pred" / f"{p.stem}_mask.png"))
            assert mask.shape == np.asarray(Image.open(p)).shape
            assert set(np.unique(mask)) <= {0, 255}
            assert (tmp_path / "pred" / f"{p.stem}_overlay.png").is_file()


def _trained_network(name: str, run: Path) -> torch.nn.Module:
    return _network(name, weights=run / "models" / "model.pt", **tiny_overrides(name))


@pytest.mark.parametrize("name", BUNDLES)
def test_torchscript_export_matches_the_network(name, trained, tmp_path):
    """``monai.bundle.ckpt_export`` of the trained weights: the TorchScript module computes what the eager one does."""
    from monai.bundle import ckpt_export

    run = trained(name)
    meta = _meta(name)
    size = tiny_overrides(name)["spatial_size"]
    out = tmp_path / "model.ts"
    ckpt_export(
        net_id="network_def", filepath=str(out), ckpt_file=str(run / "models" / "model.pt"),
        meta_file=str(_configs(name) / "metadata.json"), config_file=str(_configs(name) / "inference.json"),
        use_trace=name in TRACE, input_shape=list(_random_input(meta, size, batch=1).shape),
        bundle_root=str(BUNDLES_DIR / name), **tiny_overrides(name),
    )  # fmt: skip
    x = _random_input(meta, size, batch=3)
    expected = _forward(_trained_network(name, run), x)
    got = _forward(torch.jit.load(str(out)).eval(), x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", BUNDLES)
def test_onnx_export_matches_the_network(name, trained, tmp_path):
    """``monaicxr export --onnx`` (export_bundle) of the trained weights, run here with onnxruntime on a batch size
    other than the exported one, against the eager inference network."""
    ort = pytest.importorskip("onnxruntime")
    from monaicxr.workflows.bundles import export_bundle

    run = trained(name)
    written = export_bundle(
        BUNDLES_DIR / name, onnx=True, out_dir=tmp_path,
        overrides={**tiny_overrides(name), "ckpt_path": str(run / "models" / "model.pt")},
    )  # fmt: skip
    meta = _meta(name)
    x = _random_input(meta, tiny_overrides(name)["spatial_size"], batch=3)
    expected = _forward(_trained_network(name, run), x).numpy()
    session = ort.InferenceSession(str(written["onnx"]), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)
