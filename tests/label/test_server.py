"""Tests for monaicxr.label against a real MONAI Label server (``python -m monaicxr.label``) on 127.0.0.1.

One server is started per module on a free port, on a studies folder built in a temporary directory from
../shared/data (six COVID-QU-Ex radiographs with 0/1/2 lung / infection labels and their classes, one unlabelled
radiograph and the two MONOCHROME1 DICOM files), and stopped by its PID at teardown. Fine-tuned checkpoints go to
a temporary ``model_dir``; the bundles' own weights are only read.

Skipped when MONAI Label is not installed (see docs/monailabel.md) and, test by test, when ../shared/data is
absent.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip(
    "monailabel",
    reason="MONAI Label is not installed; see docs/monailabel.md: "
    'pip install -e ".[label]" && pip install --no-deps -r requirements-label.txt',
)
requests = pytest.importorskip("requests", reason="requests comes with the MONAI Label install")
pydicom = pytest.importorskip("pydicom")

pytestmark = pytest.mark.label

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
COVIDQU = DATA / "covidqu_infection"
DICOM_DIR = DATA / "dicom"
HAVE_DATA = (COVIDQU / "manifest.csv").is_file() and DICOM_DIR.is_dir()
needs_data = pytest.mark.skipif(not HAVE_DATA, reason=f"real images not found at {DATA}")

MONOCHROME1 = ["CR-MONO1-10-chest.dcm", "RG1_J2KI.dcm"]
STARTUP_S = 180
TRAIN_S = 420


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _build_studies(root: Path) -> dict:
    """Labelled COVID-QU-Ex images (2 per class), one unlabelled image, the MONOCHROME1 DICOM files."""
    root.mkdir(parents=True)
    if not HAVE_DATA:
        return {"labelled": [], "unlabelled": []}
    final = root / "labels" / "final"
    final.mkdir(parents=True)
    with (COVIDQU / "manifest.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "Train"]
    picked = [r for c in ("COVID-19", "Non-COVID", "Normal") for r in [r for r in rows if r["class"] == c][:2]]
    classes = ["image,class"]
    for r in picked:
        name = r["file"]
        shutil.copyfile(COVIDQU / "images" / name, root / name)
        lung = np.asarray(Image.open(COVIDQU / "lung_masks" / name)) > 0
        infection = (np.asarray(Image.open(COVIDQU / "infection_masks" / name)) > 0) & lung
        Image.fromarray(lung.astype(np.uint8) + infection.astype(np.uint8)).save(final / name)
        classes.append(f"{Path(name).stem},{r['class']}")
    (root / "classes.csv").write_text("\n".join(classes) + "\n")
    unlabelled = next(r["file"] for r in rows if r["class"] == "Normal" and r not in picked)
    shutil.copyfile(COVIDQU / "images" / unlabelled, root / unlabelled)
    for name in MONOCHROME1:
        shutil.copyfile(DICOM_DIR / name, root / name)
    return {
        "labelled": [Path(r["file"]).stem for r in picked],
        "unlabelled": sorted([Path(unlabelled).stem] + [Path(n).stem for n in MONOCHROME1]),
        "first_image": picked[0]["file"],
    }


class Server:
    def __init__(self, url: str, proc: subprocess.Popen, log: Path, model_dir: Path, studies: dict) -> None:
        self.url, self.proc, self.log, self.model_dir, self.studies = url, proc, log, model_dir, studies

    def get(self, path: str, **kw):
        return requests.get(self.url + path, timeout=120, **kw)

    def post(self, path: str, **kw):
        return requests.post(self.url + path, timeout=300, **kw)

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("label")
    studies = _build_studies(tmp / "studies")
    model_dir = tmp / "models"
    port = _free_port()
    log = tmp / "server.log"
    cmd = [sys.executable, "-m", "monaicxr.label", str(tmp / "studies"), "--port", str(port)]
    cmd += ["--conf", "model_dir", str(model_dir), "--log-level", "warning", "--allow-writes"]
    env = {**os.environ, "MONAI_LABEL_SESSION_PATH": str(tmp / "sessions")}
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    srv = Server(f"http://127.0.0.1:{port}", proc, log, model_dir, studies)
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode} before it was ready:\n{srv.log_tail()}")
            try:
                if requests.get(srv.url + "/info/", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready after {STARTUP_S} s:\n{srv.log_tail()}")
            time.sleep(0.5)
        yield srv
    finally:
        # stop the server by its PID; its session also holds any training subprocess it started
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def _mask(response) -> np.ndarray:
    assert response.status_code == 200, response.text[:500]
    return np.asarray(Image.open(io.BytesIO(response.content)))


def _train(server: Server, model: str, params: dict) -> dict:
    r = server.post(f"/train/{model}", json=params)
    assert r.status_code == 200, r.text
    task_id = r.json()["id"]
    deadline = time.monotonic() + TRAIN_S
    while time.monotonic() < deadline:
        status = server.get("/train/").json()
        if status["id"] == task_id and status["status"] in ("DONE", "ERROR"):
            details = "\n".join(status.get("details", []))
            assert status["status"] == "DONE", f"training failed:\n{details}\n{server.log_tail()}"
            return status
        time.sleep(1)
    pytest.fail(f"training {model} did not finish in {TRAIN_S} s:\n{server.log_tail()}")


def test_info_lists_models_and_labels(server):
    info = server.get("/info/").json()
    models = info["models"]
    assert models["segmentation_lung"]["labels"] == {"lung": 1}
    assert models["segmentation_lung"]["type"] == "segmentation"
    assert models["segmentation_lung_infection"]["labels"] == {"lung": 1, "infection": 2}
    assert models["classification_covid"]["labels"] == ["COVID-19", "Non-COVID", "Normal"]
    assert models["classification_covid"]["type"] == "classification"
    assert {"segmentation_lung", "segmentation_lung_infection", "classification_covid"} <= set(info["trainers"])
    assert {"random", "first"} <= set(info["strategies"])
    assert info["labels"] == {"lung": 1, "infection": 2}


@needs_data
def test_infer_lung_on_png_matches_the_reference_mask(server):
    name = server.studies["first_image"]
    mask = _mask(server.post(f"/infer/segmentation_lung?image={Path(name).stem}&output=image"))
    image = np.asarray(Image.open(COVIDQU / "images" / name))
    assert mask.shape == image.shape
    assert set(np.unique(mask)) <= {0, 1}
    reference = np.asarray(Image.open(COVIDQU / "lung_masks" / name)) > 0
    assert 0.1 < mask.mean() < 0.6, f"lung fraction {mask.mean():.3f}"
    dice = 2 * np.logical_and(mask > 0, reference).sum() / ((mask > 0).sum() + reference.sum())
    assert dice > 0.85, f"Dice {dice:.3f} against the reference lung mask"


@needs_data
def test_infer_classifier_returns_class_scores(server):
    image_id = Path(server.studies["first_image"]).stem
    r = server.post(f"/infer/classification_covid?image={image_id}")
    assert r.status_code == 200, r.text
    prediction = r.json()["prediction"]
    assert [p["label"] for p in prediction] == ["COVID-19", "Non-COVID", "Normal"]
    scores = np.array([p["score"] for p in prediction])
    assert np.all(scores >= 0) and abs(scores.sum() - 1) < 1e-4


@needs_data
@pytest.mark.skipif(
    not (REPO / "bundles/efficientnet_lite0/models/model.pt").is_file(), reason="the Lite0 weights are not shipped"
)
def test_infer_lung_cropped_classifier_uses_its_card(server):
    """The lung-cropped classifier cuts the lungs itself and applies the temperature of its weights card."""
    from monaicxr.io.weights_card import card_temperature

    image_id = Path(server.studies["first_image"]).stem
    r = server.post(f"/infer/classification_covid_lungs?image={image_id}")
    assert r.status_code == 200, r.text
    prediction = r.json()["prediction"]
    assert [p["label"] for p in prediction] == ["COVID-19", "Non-COVID", "Normal"]
    scores = np.array([p["score"] for p in prediction])
    assert np.all(scores >= 0) and abs(scores.sum() - 1) < 1e-4
    assert card_temperature(REPO / "bundles/efficientnet_lite0/models/model.pt") is not None


def _render_monochrome1(stored: np.ndarray) -> bytes:
    """A PNG of a MONOCHROME1 image made here with numpy alone (inverted, 1-99 % window): the reference."""
    shown = stored.max() - stored
    lo, hi = np.percentile(shown, [1, 99])
    buf = io.BytesIO()
    Image.fromarray((np.clip((shown - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@needs_data
@pytest.mark.parametrize("name", MONOCHROME1)
def test_dicom_is_served_right_side_up_and_not_inverted(server, name):
    path = DICOM_DIR / name
    with path.open("rb") as f:
        mask = _mask(server.post("/infer/segmentation_lung?output=image", files={"file": (name, f)}))
    ds = pydicom.dcmread(path, force=True)
    if "TransferSyntaxUID" not in ds.file_meta:  # the file without a meta header (see ../shared/data/README.md)
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    stored = ds.pixel_array.astype(np.float64)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    assert mask.shape == stored.shape, "the mask must have the DICOM's rows and columns"
    lung = mask > 0
    assert 0.1 < lung.mean() < 0.6, f"lung fraction {lung.mean():.3f}: lungs not found"
    # MONOCHROME1: a high stored value is displayed dark, and lungs are dark, so a mask found on the
    # correctly inverted picture covers high stored values
    assert stored[lung].mean() > stored[~lung].mean()
    width = lung.shape[1]
    assert lung[:, : width // 2].sum() > 0.25 * lung.sum() and lung[:, width // 2 :].sum() > 0.25 * lung.sum()
    # orientation and photometry: the same mask as for a PNG rendered here from the stored values (a flipped
    # or mirrored answer scores 0.54 to 0.89 on these files, a negative fails the checks above)
    reference = (
        _mask(
            server.post(
                "/infer/segmentation_lung?output=image", files={"file": ("ref.png", _render_monochrome1(stored))}
            )
        )
        > 0
    )
    dice = 2 * np.logical_and(lung, reference).sum() / (lung.sum() + reference.sum())
    assert dice > 0.95, f"Dice {dice:.3f} against the mask of a reference rendering"


@needs_data
def test_train_one_epoch_then_infer_uses_the_new_checkpoint(server):
    model = "segmentation_lung_infection"
    checkpoint = server.model_dir / model / "models" / "model.pt"
    image_id = Path(server.studies["first_image"]).stem
    before = server.post(f"/infer/{model}?image={image_id}&output=image")
    assert before.status_code == 409 and "train it first" in before.json()["detail"]
    assert not checkpoint.exists()

    _train(server, model, {"max_epochs": 1, "val_split": 0.34})

    assert checkpoint.is_file()
    assert server.get("/info/").json()["models"][model]["weights"] == str(checkpoint)
    mask = _mask(server.post(f"/infer/{model}?image={image_id}&output=image"))
    assert mask.shape == (256, 256) and set(np.unique(mask)) <= {0, 1, 2}
    result = server.post(f"/infer/{model}?image={image_id}&output=json").json()
    assert result["label_names"] == {"lung": 1, "infection": 2} and "total_fraction" in result["severity"]


@needs_data
def test_fifty_concurrent_infer_requests_all_succeed(server):
    ids = server.studies["labelled"]

    def one(i: int) -> str:
        image_id = ids[i % len(ids)]
        if i % 5 == 0:  # every fifth a lung mask, the others class scores (the CPU is shared: keep it short)
            r = requests.post(f"{server.url}/infer/segmentation_lung?image={image_id}&output=image", timeout=600)
            return "ok" if r.status_code == 200 and _mask(r).shape == (256, 256) else f"{r.status_code} {r.text[:200]}"
        r = requests.post(f"{server.url}/infer/classification_covid?image={image_id}", timeout=600)
        return "ok" if r.status_code == 200 and len(r.json()["prediction"]) == 3 else f"{r.status_code} {r.text[:200]}"

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(one, range(50)))
    assert results == ["ok"] * 50
    assert server.proc.poll() is None
    assert server.get("/info/").status_code == 200


def test_bad_requests_get_a_4xx_with_a_message_and_the_server_goes_on(server, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    fake_png = tmp_path / "fake.png"
    fake_png.write_bytes(b"\x89PNG but not really")
    cases = [
        ("/infer/segmentation_lung", {"files": {"file": ("notes.txt", text.read_bytes())}}, 415, "image"),
        ("/infer/segmentation_lung", {"files": {"file": ("fake.png", fake_png.read_bytes())}}, 415, "image"),
        ("/infer/segmentation_lung?image=x", {"data": {"params": "{not json"}}, 422, "JSON"),
        ("/infer/no_such_model?image=x", {}, 404, "no_such_model"),
    ]
    for path, kw, status, word in cases:
        r = server.post(path, **kw)
        assert r.status_code == status, (path, r.status_code, r.text[:300])
        assert word.lower() in r.json()["detail"].lower(), r.text
    # the next request still works
    assert server.get("/info/").status_code == 200
    if HAVE_DATA:
        with (DICOM_DIR / MONOCHROME1[0]).open("rb") as f:
            assert server.post("/infer/segmentation_lung?output=json", files={"file": (MONOCHROME1[0], f)}).ok


@needs_data
def test_active_learning_first_returns_an_unlabelled_image(server):
    r = server.post("/activelearning/first", json={})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == server.studies["unlabelled"][0]
    r = server.post("/activelearning/random", json={})
    assert r.json()["id"] in server.studies["unlabelled"]


def test_datastore_lists_png_and_dicom(server):
    objects = server.get("/datastore/?output=all").json()["objects"]
    assert set(server.studies["labelled"]) | set(server.studies["unlabelled"]) <= set(objects)


@needs_data
def test_a_label_saved_through_the_api_lands_in_labels_final(server, tmp_path):
    image_id = next(i for i in server.studies["unlabelled"] if not i.startswith(("CR-", "RG1")))
    mask = tmp_path / "mask.png"
    Image.fromarray(np.pad(np.ones((100, 60), np.uint8), ((50, 106), (40, 156)))).save(mask)
    with mask.open("rb") as f:
        r = requests.put(f"{server.url}/datastore/label?image={image_id}&tag=final", files={"label": f}, timeout=60)
    assert r.status_code == 200, r.text
    info = server.get("/datastore/?output=all").json()["objects"][image_id]
    assert "final" in info["labels"]
