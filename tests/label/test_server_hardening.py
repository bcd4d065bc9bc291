"""The monaicxr MONAI Label server against hostile requests, on 127.0.0.1 (see docs/monailabel.md, "Access").

Two real servers are started side by side on free loopback ports, on a studies folder of small synthetic
images with a sentinel folder ``outside/`` beside it, each with its own temporary folder (``TMPDIR``) so that
left-over upload files can be counted: ``writable`` (an access token from a file, ``--allow-writes``, small
upload limits) and ``read_only`` (no token, the defaults). Needs MONAI Label, not ../shared/data.

``CONCURRENT_REQUESTS`` (default 200) sets the size of the load test.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from label_server import STARTUP_S, Server, free_port, phantom, png, png_bomb
from PIL import Image

pytest.importorskip(
    "monailabel",
    reason="MONAI Label is not installed; see docs/monailabel.md: "
    'pip install -e ".[label]" && pip install --no-deps -r requirements-label.txt',
)
requests = pytest.importorskip("requests", reason="requests comes with the MONAI Label install")
psutil = pytest.importorskip("psutil")

pytestmark = pytest.mark.label

CONCURRENT_REQUESTS = int(os.environ.get("MONAICXR_TEST_CONCURRENT_REQUESTS", "200"))
WORKERS = 8
TOKEN = "test-token-0123456789abcdef"
MAX_UPLOAD_MB = 4
MAX_PIXELS = 16_000_000
IMAGES = ("img0", "img1", "img2")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hardening")
    studies = root / "studies"
    studies.mkdir()
    for i, name in enumerate(IMAGES):
        (studies / f"{name}.png").write_bytes(png(np.roll(phantom(64), i, axis=1)))
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(png(phantom(64)))
    return root


@pytest.fixture(scope="module")
def servers(root):
    token_file = root / "token.txt"
    token_file.write_text(TOKEN + "\n")
    limits = ["--max-upload-mb", str(MAX_UPLOAD_MB), "--max-pixels", str(MAX_PIXELS)]
    started = []
    try:
        started.append(
            Server("writable", root, ["--token-file", str(token_file), "--allow-writes", *limits], {}, TOKEN)
        )
        started.append(Server("read_only", root, [], {}, None))
        deadline = time.monotonic() + STARTUP_S
        for s in started:
            s.wait_ready(deadline)
        yield {s.name: s for s in started}
    finally:
        for s in started:
            s.stop()


@pytest.fixture(scope="module")
def writable(servers) -> Server:
    return servers["writable"]


@pytest.fixture(scope="module")
def read_only(servers) -> Server:
    return servers["read_only"]


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _infer(server: Server, query: str, token="default", **kw):
    return server.request("POST", f"/infer/segmentation_lung?{query}", token=token, **kw)


def test_token_is_required_on_every_route_when_set(writable):
    for path in ("/info/", "/datastore/?output=all", "/datastore/image?image=img0", "/docs", "/openapi.json", "/logs/"):
        assert writable.request("GET", path, token=None).status_code == 401, path
        assert writable.request("GET", path, token="wrong-token-0123456789abcdef").status_code == 401, path
    r = writable.request("GET", "/info/", token=None)
    assert "Bearer" in r.json()["detail"] and r.headers["www-authenticate"].startswith("Bearer")
    assert _infer(writable, "image=img0&output=json", token=None).status_code == 401
    assert writable.request("DELETE", "/datastore/?id=img0", token=None).status_code == 401
    assert (writable.root / "studies" / "img0.png").is_file()
    assert writable.request("GET", "/info/").status_code == 200
    assert writable.request("GET", "/datastore/image?image=img0").status_code == 200


def test_a_read_only_server_refuses_every_write(read_only):
    studies = read_only.root / "studies"
    before = _tree(studies)
    picture = png(phantom(64))
    cases = [
        ("PUT", "/datastore/?image=new", {"files": {"file": ("new.png", picture)}}),
        ("PUT", "/datastore/image?image=new", {"files": {"file": ("new.png", picture)}}),
        ("PUT", "/datastore/label?image=img0&tag=final", {"files": {"label": ("img0.png", picture)}}),
        ("DELETE", "/datastore/?id=img0", {}),
        ("DELETE", "/datastore/image?id=img0", {}),
        ("DELETE", "/datastore/label?id=img0&tag=final", {}),
        ("PUT", "/datastore/image/info?image=img0", {"data": {"info": "{}"}}),
        ("POST", "/train/segmentation_lung", {"json": {"max_epochs": 1}}),
        ("POST", "/batch/infer/segmentation_lung", {"json": {}}),
        ("POST", "/infer/segmentation_lung?image=img0", {"data": {"params": json.dumps({"save_label": True})}}),
    ]
    for method, path, kw in cases:
        r = read_only.request(method, path, **kw)
        assert r.status_code == 403, (method, path, r.status_code, r.text[:300])
        assert "--allow-writes" in r.json()["detail"]
    assert _tree(studies) == before
    # reading still works, without a token on loopback
    assert read_only.request("GET", "/info/").status_code == 200
    assert _infer(read_only, "image=img0&output=json").status_code == 200
    assert read_only.temp_files(expected=[]) == []


def test_names_never_reach_outside_the_studies_folder(writable, root):
    outside = root / "outside"
    secret = outside / "secret.png"
    before_outside, before_root = _tree(outside), sorted(os.listdir(root))
    picture = png(phantom(64))
    with_params = lambda p: {"data": {"params": json.dumps(p)}}  # noqa: E731
    cases = [
        ("PUT", "/datastore/?image=../outside/x", {"files": {"file": ("x.png", picture)}}, 422),
        ("PUT", "/datastore/image?image=/tmp/x", {"files": {"file": ("x.png", picture)}}, 422),
        ("PUT", "/datastore/image?image=..", {"files": {"file": ("x.png", picture)}}, 422),
        ("PUT", "/datastore/label?image=img0&tag=../../outside", {"files": {"label": ("img0.png", picture)}}, 422),
        ("PUT", "/datastore/label?image=img0&tag=..", {"files": {"label": ("img0.png", picture)}}, 422),
        ("PUT", "/datastore/label?image=../outside/secret&tag=final", {"files": {"label": ("s.png", picture)}}, 404),
        ("POST", "/infer/segmentation_lung?image=img0", with_params({"save_label": True, "label_tag": "../x"}), 422),
        ("POST", "/infer/segmentation_lung?image=img0&label_tag=../../outside", {}, 422),
        ("POST", "/infer/segmentation_lung", with_params({"image": str(secret), "save_label": True}), 404),
        ("POST", f"/infer/segmentation_lung?image={secret}", {}, 404),
        ("POST", "/infer/segmentation_lung?image=../outside/secret", {}, 404),
        ("GET", "/datastore/image?image=../outside/secret", {}, 404),
        ("GET", f"/datastore/image?image={secret}", {}, 404),
        ("GET", "/datastore/label?label=../outside/secret&tag=final", {}, 404),
        ("DELETE", "/datastore/?id=../outside/secret", {}, 404),
        ("DELETE", f"/datastore/image?id={secret}", {}, 404),
        ("DELETE", "/datastore/label?id=img0&tag=../../outside", {}, 422),
    ]
    for method, path, kw, status in cases:
        r = writable.request(method, path, **kw)
        assert r.status_code == status, (method, path, r.status_code, r.text[:300])
    assert _tree(outside) == before_outside and sorted(os.listdir(root)) == before_root
    # the same answer for a path outside that exists and one that does not
    answers = [_infer(writable, f"image={p}").json()["detail"].replace(p, "P") for p in (str(secret), "/no/such.png")]
    assert answers[0] == answers[1], answers
    assert _infer(writable, "image=/etc/shadow").json()["detail"] == _infer(writable, "image=/etc/no_such").json()[
        "detail"
    ].replace("no_such", "shadow")
    # what is allowed still works, inside the studies folder
    r = writable.request("POST", "/infer/segmentation_lung?image=img1", **with_params({"save_label": True}))
    assert r.status_code == 200, r.text[:300]
    assert (root / "studies" / "labels" / "original" / "img1.png").is_file()
    r = writable.request("PUT", "/datastore/label?image=img1&tag=final", files={"label": ("m.png", picture)})
    assert r.status_code == 200, r.text[:300]
    assert (root / "studies" / "labels" / "final" / "img1.png").is_file()


def test_upstream_model_and_session_writes_are_disabled(servers, root):
    """PUT / DELETE /model and /session (upstream routes without name checks or upload limits) answer 405 even
    with --allow-writes and the token; the other writes of a writes-allowed server keep the guard's rules."""
    weights = sorted(p.stat().st_mtime_ns for p in Path(__file__).resolve().parents[2].glob("bundles/*/models/*.pt"))
    cases = [
        ("PUT", "/model/segmentation_lung", {"files": {"file": ("model.pt", b"x" * 1000)}}),
        ("PUT", "/model/no_such_model", {"files": {"file": ("model.pt", b"x")}}),
        ("DELETE", "/model/segmentation_lung", {}),
        ("PUT", "/session/", {"files": {"files": ("s.png", png(phantom(64)))}}),
        ("PUT", "/session/?uncompress=true", {"files": {"files": ("s.zip", b"PK\x03\x04")}}),
        ("DELETE", "/session/abc", {}),
    ]
    for server in servers.values():
        before = server.temp_files()
        for method, path, kw in cases:
            r = server.request(method, path, **kw)
            assert r.status_code == 405, (server.name, method, path, r.status_code, r.text[:300])
            assert "disabled" in r.json()["detail"], r.text[:300]
        assert server.temp_files(expected=before) == before
        assert not (root / f"models_{server.name}").exists() or not any((root / f"models_{server.name}").rglob("*.pt"))
    assert (
        sorted(p.stat().st_mtime_ns for p in Path(__file__).resolve().parents[2].glob("bundles/*/models/*.pt"))
        == weights
    )
    writable = servers["writable"]
    # without the token: 401 before anything else
    assert (
        writable.request("PUT", "/model/segmentation_lung", token=None, files={"file": ("m.pt", b"x")}).status_code
        == 401
    )
    # the info updates that stay open with --allow-writes: token, names and the datastore's ids apply
    info = {"data": {"info": json.dumps({"note": "checked"})}}
    assert writable.request("PUT", "/datastore/image/info?image=img2", token=None, **info).status_code == 401
    assert writable.request("PUT", "/datastore/image/info?image=../outside/secret", **info).status_code == 404
    assert writable.request("PUT", "/datastore/image/info?image=no_such", **info).status_code == 404
    assert writable.request("PUT", "/datastore/label/info?label=img2&tag=../x", **info).status_code == 422
    r = writable.request("PUT", "/datastore/image/info?image=img2", **info)
    assert r.status_code == 200, r.text[:300]
    assert writable.request("GET", "/datastore/image/info?image=img2").json().get("note") == "checked"
    assert sorted(os.listdir(root / "outside")) == ["secret.png"]


def test_failed_uploads_leave_no_temporary_file(writable):
    before = writable.temp_files()
    big = np.random.default_rng(0).integers(0, 255, (MAX_UPLOAD_MB + 1) * 2**20, dtype=np.uint8).tobytes()
    bomb = png_bomb(10_000)
    cases = [
        ("POST", "/infer/segmentation_lung", {"files": {"file": ("notes.txt", b"not an image")}}, 415),
        ("POST", "/infer/segmentation_lung", {"files": {"file": ("fake.png", b"\x89PNG but not really")}}, 415),
        ("POST", "/infer/segmentation_lung", {"files": {"file": ("bomb.png", bomb)}}, 413),
        ("POST", "/infer/segmentation_lung", {"files": {"file": ("big.png", big)}}, 413),
        ("POST", "/infer/no_such_model", {"files": {"file": ("ok.png", png(phantom(64)))}}, 404),
        ("POST", "/infer/segmentation_lung", {"files": {"file": ("ok.png", b"x")}, "data": {"params": "{no"}}, 422),
        ("PUT", "/datastore/label?image=img0&tag=final", {"files": {"label": ("bomb.png", bomb)}}, 413),
        ("PUT", "/datastore/label?image=no_such&tag=final", {"files": {"label": ("m.png", b"x")}}, 404),
        ("PUT", "/datastore/image?image=bomb", {"files": {"file": ("bomb.png", bomb)}}, 413),
        ("PUT", "/datastore/image?image=x", {"files": {"file": ("x.exe", b"MZ")}}, 415),
    ]
    started = time.monotonic()
    for method, path, kw, status in cases:
        r = writable.request(method, path, **kw)
        assert r.status_code == status, (method, path, r.status_code, r.text[:300])
        assert "/tmp" not in r.text and str(writable.tmp) not in r.text, r.text[:300]
    assert time.monotonic() - started < 30, "the refused uploads must be refused early, not decoded"
    ok = writable.request("POST", "/infer/segmentation_lung?output=image", files={"file": ("ok.png", png(phantom(64)))})
    assert ok.status_code == 200, ok.text[:300]
    assert (writable.root / "outside").is_dir() and not (writable.root / "studies" / "bomb.png").exists()
    assert writable.temp_files(expected=before) == before


def test_status_codes_for_missing_and_unknown(writable):
    assert _infer(writable, "").status_code == 422
    assert _infer(writable, "image=no_such_image").status_code == 404
    assert writable.request("PUT", "/datastore/label?tag=final", files={"label": ("m.png", b"x")}).status_code == 422
    assert writable.request("GET", "/datastore/image").status_code == 422
    assert writable.request("GET", "/datastore/image?image=no_such_image").status_code == 404


def test_non_loopback_host_without_token_is_refused_at_start(root, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONAICXR_LABEL_")}
    short = tmp_path / "short.txt"
    short.write_text("abc\n")
    for extra, word in ((["--host", "0.0.0.0"], "access token"), (["--host", "::", "--token-file", str(short)], "16")):
        cmd = [sys.executable, "-m", "monaicxr.label", str(root / "studies"), "--port", str(free_port()), *extra]
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode != 0 and word in r.stderr, (extra, r.returncode, r.stderr[-500:])


def test_many_concurrent_requests_succeed_without_memory_growth(writable):
    process = psutil.Process(writable.proc.pid)
    tiny = png(phantom(64))

    def one(i: int) -> str:
        if i % 2:
            r = _infer(writable, "output=image", files={"file": ("tiny.png", tiny)}, timeout=300)
        else:
            r = _infer(writable, f"image={IMAGES[i % len(IMAGES)]}&output=image", timeout=300)
        return "ok" if r.status_code == 200 and r.content.startswith(b"\x89PNG") else f"{r.status_code} {r.text[:200]}"

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:  # warm up: weights loaded, buffers allocated
        assert list(pool.map(one, range(2 * WORKERS))) == ["ok"] * (2 * WORKERS)
    rss_before = process.memory_info().rss
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(one, range(CONCURRENT_REQUESTS)))
    elapsed = time.monotonic() - started
    growth = (process.memory_info().rss - rss_before) / 2**20
    print(f"{CONCURRENT_REQUESTS} requests, {WORKERS} at a time: {elapsed:.1f} s, RSS growth {growth:.1f} MB")
    assert [r for r in results if r != "ok"] == []
    assert growth < 50, f"server RSS grew by {growth:.1f} MB over {CONCURRENT_REQUESTS} requests"


def test_info_answers_within_a_second_while_a_large_inference_runs(writable):
    large = png(phantom(3800))  # 14.4 MP, under the pixel limit
    result = {}

    def run() -> None:
        result["r"] = _infer(writable, "output=image", files={"file": ("large.png", large)}, timeout=300)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.3)
    latencies = []
    while thread.is_alive():
        t = time.monotonic()
        assert writable.request("GET", "/info/", timeout=30).status_code == 200
        latencies.append(time.monotonic() - t)
        time.sleep(0.1)
    thread.join()
    assert result["r"].status_code == 200, result["r"].text[:300]
    assert Image.open(io.BytesIO(result["r"].content)).size == (3800, 3800)
    print(f"/info/ answered {len(latencies)} times during the inference, slowest {max(latencies, default=0):.2f} s")
    assert len(latencies) >= 3, "the inference finished too soon to tell"
    assert max(latencies) < 1.0, latencies
