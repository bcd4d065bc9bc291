"""A real monaicxr MONAI Label server for tests: ``python -m monaicxr.label`` on a free loopback port.

Used by tests/label/test_server_hardening.py and, loaded by path, by tests/data/test_bad_input_corpus.py. Each
server gets its own temporary folder (``TMPDIR``), so that left-over upload files can be counted, and is stopped
by its process group at teardown.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

requests = pytest.importorskip("requests", reason="requests comes with the MONAI Label install")

STARTUP_S = 240


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def phantom(size: int) -> np.ndarray:
    """A smooth radiograph-like picture (two dark lungs in a bright body): small as PNG at any size."""
    y, x = np.mgrid[0:size, 0:size] / size
    lungs = np.exp(-(((x - 0.32) / 0.12) ** 2 + ((y - 0.5) / 0.25) ** 2))
    lungs += np.exp(-(((x - 0.68) / 0.12) ** 2 + ((y - 0.5) / 0.25) ** 2))
    return (200 - 150 * np.clip(lungs, 0, 1)).astype(np.uint8)


def png_bomb(side: int) -> bytes:
    """A valid grayscale PNG of side x side zero pixels: about 100 kB for 10000 x 10000, 100 MB decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = zlib.compressobj(9)
    row = b"\x00" * (side + 1)
    data = b"".join(raw.compress(row) for _ in range(side)) + raw.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


class Server:
    def __init__(self, name: str, root: Path, args: list[str], env: dict[str, str], token: str | None) -> None:
        self.name, self.root, self.token = name, root, token
        self.tmp = root / f"tmp_{name}"
        self.tmp.mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / f"{name}.log"
        cmd = [sys.executable, "-m", "monaicxr.label", str(root / "studies"), "--port", str(self.port)]
        cmd += ["--conf", "model_dir", str(root / f"models_{name}"), "--log-level", "warning", *args]
        env = {**os.environ, **env, "TMPDIR": str(self.tmp), "MONAI_LABEL_SESSION_PATH": str(root / f"s_{name}")}
        env.pop("MONAICXR_LABEL_TOKEN", None)
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def headers(self, token: str | None = "default") -> dict[str, str]:
        token = self.token if token == "default" else token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def request(self, method: str, path: str, token: str | None = "default", timeout: float = 120, **kw):
        return requests.request(method, self.url + path, headers=self.headers(token), timeout=timeout, **kw)

    def temp_files(self, expected: list[str] | None = None) -> list[str]:
        """The server's temporary folder; with ``expected``, wait up to 5 s for it (result files are removed in a
        background task after the answer)."""
        deadline = time.monotonic() + 5
        while expected is not None and sorted(os.listdir(self.tmp)) != expected and time.monotonic() < deadline:
            time.sleep(0.2)
        return sorted(os.listdir(self.tmp))

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def wait_ready(self, deadline: float) -> None:
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"{self.name} server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if self.request("GET", "/info/", timeout=5).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name} server not ready after {STARTUP_S} s:\n{self.log_tail()}")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
