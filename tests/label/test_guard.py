"""Tests for monaicxr.label.guard without a server: names, tokens, pixel limits, the middleware's decisions."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from PIL import Image

from monaicxr.label.guard import (
    GuardMiddleware,
    ServerPolicy,
    UploadTooLargeError,
    check_pixels,
    is_loopback,
    read_token,
    valid_image_id,
    valid_tag,
)

TOKEN = "0123456789abcdef-token"


@pytest.mark.parametrize("name", ["covid_1", "Normal (1)", "CR-MONO1-10-chest", "1.2.840.10008.1", "a..b"])
def test_plain_image_ids_are_valid(name):
    assert valid_image_id(name)


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "/etc/shadow", "a/b", "a\\b", ".hidden", "a\x00b", "x" * 300])
def test_paths_are_not_image_ids(name):
    assert not valid_image_id(name)


@pytest.mark.parametrize(
    "tag, ok",
    [
        ("final", True),
        ("original", True),
        ("my_tag-2", True),
        ("..", False),
        ("../x", False),
        ("a/b", False),
        ("", False),
    ],
)
def test_tags(tag, ok):
    assert valid_tag(tag) is ok


@pytest.mark.parametrize(
    "host, ok",
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("example.org", False),
    ],
)
def test_is_loopback(host, ok):
    assert is_loopback(host) is ok


def test_read_token_from_file_env_and_too_short(tmp_path):
    f = tmp_path / "token"
    f.write_text(TOKEN + "\n")
    assert read_token(f, environ={}) == TOKEN
    assert read_token(environ={"MONAICXR_LABEL_TOKEN": TOKEN}) == TOKEN
    assert read_token(environ={}) is None
    with pytest.raises(ValueError, match="16"):
        read_token(environ={"MONAICXR_LABEL_TOKEN": "short"})
    with pytest.raises(ValueError, match="does not exist"):
        read_token(tmp_path / "missing", environ={})


def test_check_pixels_reads_the_header_only(tmp_path):
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((300, 200), np.uint8)).save(path)
    check_pixels(str(path), 60_000)
    with pytest.raises(UploadTooLargeError, match="60000 pixels"):
        check_pixels(str(path), 59_999)
    (tmp_path / "x.png").write_bytes(b"not an image")
    check_pixels(str(tmp_path / "x.png"), 1)  # left to the reader, which refuses it


def _call(policy: ServerPolicy, method: str, path: str, query: str = "", headers=(), server=("127.0.0.1", 8000)):
    reached = []

    async def app(scope, receive, send):
        reached.append(path)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b""}

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode(),
        "headers": [(b"host", b"127.0.0.1:8000"), *((k.encode(), v.encode()) for k, v in headers)],
        "server": server,
    }
    asyncio.run(GuardMiddleware(app, policy)(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], (json.loads(body) if body else {}), bool(reached)


@pytest.mark.parametrize(
    "method, path, query, status",
    [
        ("GET", "/info/", "", 200),
        ("POST", "/infer/segmentation_lung", "image=covid_1", 200),
        ("POST", "/infer/segmentation_lung", "image=/etc/shadow", 404),
        ("POST", "/infer/segmentation_lung", "image=../outside/x", 404),
        ("GET", "/datastore/image", "image=..", 404),
        ("PUT", "/datastore/label", "image=covid_1&tag=../../x", 403),
        ("DELETE", "/datastore/", "id=covid_1", 403),
        ("POST", "/train/segmentation_lung", "", 403),
        ("GET", "/ohif/../../etc/passwd", "", 404),
    ],
)
def test_middleware_without_token_read_only(method, path, query, status):
    got, body, reached = _call(ServerPolicy(), method, path, query)
    assert got == status, body
    assert reached is (status == 200)


def test_middleware_with_writes_checks_names():
    policy = ServerPolicy(allow_writes=True)
    assert _call(policy, "PUT", "/datastore/label", "image=covid_1&tag=../../x")[0] == 422
    assert _call(policy, "PUT", "/datastore/", "image=../outside/x")[0] == 422
    assert _call(policy, "PUT", "/datastore/label", "image=../x&tag=final")[0] == 404
    assert _call(policy, "PUT", "/datastore/label", "image=covid_1&tag=final")[0] == 200


def test_middleware_token_and_addresses():
    policy = ServerPolicy(token=TOKEN, host="0.0.0.0")
    assert _call(policy, "GET", "/info/")[0] == 401
    assert _call(policy, "GET", "/info/", headers=[("authorization", "Bearer wrong")])[0] == 401
    assert (
        _call(policy, "GET", "/info/", headers=[("authorization", f"Bearer {TOKEN}")], server=("10.0.0.5", 80))[0]
        == 200
    )
    # no token: a connection to a non-loopback address is refused, and so is a foreign Host name
    assert _call(ServerPolicy(host="0.0.0.0"), "GET", "/info/", server=("10.0.0.5", 80))[0] == 403
    assert _call(ServerPolicy(), "GET", "/info/", headers=[("host", "evil.example")])[0] == 421
