"""bundles/unet on real chest X-rays from ../shared/data: a few iterations must lower the training loss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ignite.engine import Events
from monai.bundle import ConfigWorkflow

from monaicxr.data.records import write_datalist
from monaicxr.data.registry import index_dataset

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "bundles" / "unet" / "configs"
SHARED = REPO.parent / "shared" / "data" / "covidqu_infection"

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.skipif(not SHARED.is_dir(), reason=f"real data not found at {SHARED} (../shared/data beside the repo)"),
]


def test_loss_falls_on_real_lungs(tmp_path):
    result = index_dataset(SHARED, layout="covidqu_flat", verify=False)
    train = [r for r in result.records if r.source_split == "train"][:24]
    val = [r for r in result.records if r.source_split == "val"][:8]
    extra = {"source": result.source, "synthetic": False, "root": result.root}
    datalist = write_datalist(tmp_path / "datalist.json", {"train": train, "val": val}, result.classes, extra=extra)
    wf = ConfigWorkflow(
        config_file=str(CONFIGS / "train.json"),
        meta_file=str(CONFIGS / "metadata.json"),
        logging_file=False,
        output_dir=str(tmp_path / "run"),
        datalist_file=str(datalist),
        spatial_size=[64, 64],
        features=[8, 8, 16, 32, 64, 8],
        batch_size=8,
        num_epochs=5,
        num_workers=0,
        show_progress=False,
        learning_rate=0.003,
    )
    wf.initialize()
    trainer = wf.parser.get_parsed_content("train#trainer")
    losses: list[float] = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: losses.append(float(e.state.output["loss"])))
    wf.run()
    assert len(losses) == 15
    assert sum(losses[-3:]) / 3 < 0.9 * sum(losses[:3]) / 3, losses
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["data"]["source"] == "covidqu_flat" and summary["data"]["synthetic"] is False


def test_shipped_weights_segment_real_lungs():
    """The committed models/model.pt, through the bundle's own inference config, finds the lungs of Val images."""
    import numpy as np
    import torch
    from PIL import Image

    wf = ConfigWorkflow(
        config_file=str(CONFIGS / "inference.json"),
        meta_file=str(CONFIGS / "metadata.json"),
        logging_file=False,
        workflow_type="infer",
        input_dir=str(SHARED / "images"),
    )
    wf.initialize()
    net = wf.parser.get_parsed_content("network")
    net.load_state_dict(torch.load(REPO / "bundles" / "unet" / "models" / "model.pt", map_location="cpu"))
    net.eval()
    pre = wf.parser.get_parsed_content("preprocessing")
    result = index_dataset(SHARED, layout="covidqu_flat", verify=False)
    val = [r for r in result.records if r.source_split == "val"][::60][:16]
    dices = []
    for r in val:
        d = pre({"image": r.image})
        with torch.no_grad():
            prob = torch.sigmoid(net(d["image"][None]))[0, 0]
        pred = torch.nn.functional.interpolate(prob[None, None], size=(256, 256), mode="bilinear")[0, 0] > 0.5
        truth = torch.from_numpy(np.asarray(Image.open(r.lung_mask)) > 0)
        dices.append(2 * float((pred & truth).sum()) / float(pred.sum() + truth.sum()))
    assert np.mean(dices) > 0.9, dices
