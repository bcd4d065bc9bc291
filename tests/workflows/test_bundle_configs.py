"""The bundles' flat configs are generated from configs/ (monaicxr.workflows.bundle_configs): drift fails here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from monaicxr.cli.main import main
from monaicxr.workflows.bundle_configs import BUNDLE_FILES, BundleConfigError, build_bundle, generate, merge_override

REPO = Path(__file__).resolve().parents[2]


def test_committed_bundle_configs_match_configs_folder():
    drift = generate(REPO, check=True)
    assert drift == [], f"edit configs/ and run `monaicxr generate-bundles`; these differ: {drift}"


def test_every_bundle_has_an_overlay_and_every_file_is_generated():
    overlays = {
        p.stem for family in ("classification", "segmentation") for p in (REPO / "configs" / family).glob("*.json")
    }
    bundles = {p.name for p in (REPO / "bundles").iterdir() if p.is_dir()}
    assert overlays == bundles


def test_generated_equals_what_monai_merges(tmp_path):
    """For a key-by-key overlay, the generated file is MONAI's own merge of base + overlay (no literal # ids)."""
    from monai.bundle import ConfigParser

    overlay_path = REPO / "configs" / "classification" / "densenet121.json"
    overlay = json.loads(overlay_path.read_text())
    base = REPO / "configs" / "classification" / "base" / "inference.json"
    merged = {**overlay.get("common", {}), **overlay.get("inference", {})}
    (tmp_path / "o.json").write_text(json.dumps(merged))
    monai_merge = ConfigParser.load_config_files([str(base), str(tmp_path / "o.json")])
    assert build_bundle(overlay_path)["inference.json"] == monai_merge


def _copy_repo_configs(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(REPO / "configs", root / "configs")
    for bundle in (REPO / "bundles").iterdir():
        if bundle.is_dir():
            shutil.copytree(bundle / "configs", root / "bundles" / bundle.name / "configs")
    return root


def test_an_edit_to_a_family_base_is_drift_in_every_bundle_of_the_family(tmp_path, capsys):
    root = _copy_repo_configs(tmp_path)
    base = root / "configs" / "classification" / "base" / "train.json"
    config = json.loads(base.read_text())
    config["num_epochs"] = 99
    base.write_text(json.dumps(config, indent=4))
    drift = generate(root, check=True)
    classifiers = {p.stem for p in (root / "configs" / "classification").glob("*.json")}
    own_epochs = {
        n for n in classifiers if '"num_epochs"' in (root / "configs" / "classification" / f"{n}.json").read_text()
    }
    assert own_epochs and own_epochs < classifiers  # the check below sees both kinds
    assert {p.parent.parent.name for p in drift} == classifiers - own_epochs
    assert all(p.name == "train.json" for p in drift)
    assert main(["generate-bundles", "--root", str(root), "--check"]) == 1
    assert "differ from configs/" in capsys.readouterr().out
    # writing brings them back in line, and a bundle that overrides the value keeps its own
    assert main(["generate-bundles", "--root", str(root)]) == 0
    assert generate(root, check=True) == []
    for name in classifiers:
        built = json.loads((root / "bundles" / name / "configs" / "train.json").read_text())
        own = json.loads((root / "configs" / "classification" / f"{name}.json").read_text())
        expected = own.get("train", {}).get("num_epochs", own.get("common", {}).get("num_epochs", 99))
        assert built["num_epochs"] == expected


def test_a_hand_edited_bundle_file_is_drift(tmp_path):
    root = _copy_repo_configs(tmp_path)
    target = root / "bundles" / "unet" / "configs" / "evaluate.json"
    target.write_text(target.read_text().replace('"postprocess": false', '"postprocess": true'))
    assert generate(root, check=True) == [target]


def test_a_bundle_without_an_overlay_is_an_error(tmp_path):
    root = _copy_repo_configs(tmp_path)
    (root / "bundles" / "mynet" / "configs").mkdir(parents=True)
    with pytest.raises(BundleConfigError, match="mynet"):
        generate(root, check=True)


def test_a_new_network_is_one_short_file(tmp_path):
    root = _copy_repo_configs(tmp_path)
    overlay = {
        "common": {
            "bundle_root": "bundles/resnet18",
            "network_def": {
                "_target_": "monai.networks.nets.resnet18",
                "spatial_dims": 2,
                "n_input_channels": "@in_channels",
                "num_classes": "@num_classes",
            },
        },
        "train": {"output_dir": "runs/resnet18"},
        "inference": {"output_dir": "runs/resnet18/predictions"},
    }
    (root / "configs" / "classification" / "resnet18.json").write_text(json.dumps(overlay))
    (root / "bundles" / "resnet18").mkdir()
    written = generate(root)
    names = {p.name for p in written if p.parent.parent.name == "resnet18"}
    assert names == {*BUNDLE_FILES, "logging.conf"}
    train = json.loads((root / "bundles" / "resnet18" / "configs" / "train.json").read_text())
    assert train["network_def"]["_target_"] == "monai.networks.nets.resnet18"
    assert train["bundle_root"] == "bundles/resnet18"


def test_merge_override_literal_ids_nesting_and_lists():
    config = {"validate#handlers": [{"_target_": "A", "x": 1}, {"_target_": "B"}], "net": {"ch": [1, 2]}}
    merge_override(config, "validate#handlers#0#x", 5)  # the literal key first, then into the list
    merge_override(config, "net#ch#1", 7)
    merge_override(config, "train#epochs", 3)  # no prefix present: a new override id for MONAI at run time
    assert config["validate#handlers"][0]["x"] == 5
    assert config["net"] == {"ch": [1, 7]}
    assert config["train#epochs"] == 3
    with pytest.raises(BundleConfigError, match="list item '9'"):
        merge_override(config, "net#ch#9", 1, source="x.json")
    with pytest.raises(BundleConfigError, match="not a dict or list"):
        merge_override(config, "net#ch#0#deeper", 1)


def test_an_overlay_with_an_unknown_section_names_it(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "bad.json").write_text(json.dumps({"trian": {}}))
    with pytest.raises(BundleConfigError, match="trian"):
        build_bundle(tmp_path / "bad.json")


def test_an_overlay_section_that_is_not_an_object_names_it(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "bad.json").write_text(json.dumps({"train": ["num_epochs", 3]}))
    with pytest.raises(BundleConfigError, match="section 'train' must be an object"):
        build_bundle(tmp_path / "bad.json")
