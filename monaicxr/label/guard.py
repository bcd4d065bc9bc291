"""What the monaicxr MONAI Label server lets a client do: access token, writes, upload limits, names.

MONAI Label 0.8.5 serves its REST API without authentication (unless its own bcrypt / JWT login is installed),
takes image ids, label tags and upload file names as paths (``image=../x``, ``tag=../..`` and an absolute
``image=/any/file`` all reach the disk outside the studies folder), lets any client upload, overwrite and
delete studies, and reads every upload whole. This module holds the policy that closes these, read from the
environment (so that ``monailabel start_server --uvicorn_app monaicxr.label.server:app`` gets it too; the
launcher ``python -m monaicxr.label`` sets these variables from its options):

=================================== ================================================================ ============
variable                            meaning                                                          default
=================================== ================================================================ ============
``MONAICXR_LABEL_TOKEN``            access token: every request needs ``Authorization: Bearer <t>``  none
``MONAICXR_LABEL_TOKEN_FILE``       file holding the token (first line), instead of the above        none
``MONAICXR_LABEL_ALLOW_WRITES``     ``1``: allow uploads, label saving, deletes and training         off
``MONAICXR_LABEL_MAX_UPLOAD_MB``    largest request body, in MB (HTTP 413 past it)                   64
``MONAICXR_LABEL_MAX_PIXELS``       largest uploaded image, in pixels (HTTP 413 past it)             25000000
``MONAICXR_LABEL_HOST``             the address the server listens on (set by the launcher)          127.0.0.1
=================================== ================================================================ ============

:class:`GuardMiddleware` applies the policy to every request before MONAI Label sees it (token, writes, the
names in the query string); :mod:`monaicxr.label.routes`, the app's ``infer`` and
:class:`monaicxr.label.datastore.CXRLocalDatastore` check names again where they are used.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import re
import tempfile
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

__all__ = [
    "DISABLED_ROUTES",
    "ENV_TOKEN",
    "ENV_TOKEN_FILE",
    "ENV_ALLOW_WRITES",
    "ENV_MAX_UPLOAD_MB",
    "ENV_MAX_PIXELS",
    "ENV_HOST",
    "MIN_TOKEN_LENGTH",
    "ServerPolicy",
    "GuardMiddleware",
    "InvalidNameError",
    "UploadTooLargeError",
    "WritesDisabledError",
    "check_pixels",
    "image_not_found",
    "is_loopback",
    "is_trusted_path",
    "read_token",
    "remove_quietly",
    "trusted_path",
    "valid_image_id",
    "valid_tag",
]

logger = logging.getLogger(__name__)

ENV_TOKEN = "MONAICXR_LABEL_TOKEN"
ENV_TOKEN_FILE = "MONAICXR_LABEL_TOKEN_FILE"
ENV_ALLOW_WRITES = "MONAICXR_LABEL_ALLOW_WRITES"
ENV_MAX_UPLOAD_MB = "MONAICXR_LABEL_MAX_UPLOAD_MB"
ENV_MAX_PIXELS = "MONAICXR_LABEL_MAX_PIXELS"
ENV_HOST = "MONAICXR_LABEL_HOST"

MIN_TOKEN_LENGTH = 16
DEFAULT_MAX_UPLOAD_MB = 64.0
DEFAULT_MAX_PIXELS = 25_000_000  # 5000 x 5000; the largest detector plates are about 4300 x 4300

# a label tag is a folder name under labels/: letters, digits, '_' and '-'
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# (method, path prefix) pairs that change what is stored on the server; refused unless writes are allowed.
# /infer with save_label is refused in the app's infer (the flag is in the request body). PUT / DELETE /model and
# /session are never served (DISABLED_ROUTES).
WRITE_ROUTES: tuple[tuple[str, str], ...] = (
    ("PUT", "/datastore"),
    ("DELETE", "/datastore"),
    ("POST", "/train"),
    ("DELETE", "/train"),
    ("POST", "/batch"),
    ("DELETE", "/batch"),
    ("POST", "/scoring"),
    ("DELETE", "/scoring"),
    ("POST", "/proxy"),
)

# Upstream write routes that no name check or upload limit covers: never served, writes allowed or not (HTTP 405).
DISABLED_ROUTES: tuple[tuple[str, str, str], ...] = (
    (
        "PUT",
        "/model",
        "it replaces the served model's weights file with any uploaded bytes (a checkpoint is a pickle), "
        "without the upload limits; train with POST /train/<model>, or copy weights into model_dir",
    ),
    ("DELETE", "/model", "it renames the served model's weights file away"),
    (
        "PUT",
        "/session",
        "it stores uploads (archives unpacked with uncompress=true) in the session folder without the upload "
        "limits; send the image to POST /infer/<model> as the form field 'file' instead",
    ),
    ("DELETE", "/session", "sessions cannot be created on this server"),
)

# query parameters naming an image (or its label, which has the image's id) and a label tag
ID_PARAMS = ("image", "id", "label", "session_id")
TAG_PARAMS = ("tag", "label_tag")


class InvalidNameError(ValueError):
    """An image id, tag or file name that is not a single plain name (HTTP 422)."""


class UploadTooLargeError(ValueError):
    """An upload past the byte or pixel limit (HTTP 413)."""


class WritesDisabledError(PermissionError):
    """A write request on a server started without ``--allow-writes`` (HTTP 403)."""

    def __init__(self, what: str = "this request") -> None:
        super().__init__(
            f"{what} changes the datastore, and this server was started read-only; restart it with "
            f"--allow-writes (or {ENV_ALLOW_WRITES}=1) to allow uploads, label saving, deletes and training"
        )


def _truthy(value: object) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only accepts connections from this machine."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_token(token_file: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> str | None:
    """The access token: the first line of ``token_file``, else ``$MONAICXR_LABEL_TOKEN_FILE``'s, else
    ``$MONAICXR_LABEL_TOKEN``; ``None`` when none is set.

    Raises:
        ValueError: the file is missing or empty, or the token is shorter than :data:`MIN_TOKEN_LENGTH`.
    """
    env = os.environ if environ is None else environ
    token_file = token_file or env.get(ENV_TOKEN_FILE) or None
    if token_file:
        path = Path(token_file).expanduser()
        if not path.is_file():
            raise ValueError(f"token file {path} does not exist; expected a file holding the access token")
        lines = path.read_text().strip().splitlines()
        token = lines[0].strip() if lines else ""
        source = f"token file {path}"
    else:
        token = (env.get(ENV_TOKEN) or "").strip()
        source = f"${ENV_TOKEN}"
        if not token:
            return None
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(
            f"{source}: the access token must have at least {MIN_TOKEN_LENGTH} characters, e.g. "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return token


@dataclass(frozen=True)
class ServerPolicy:
    """What clients may do (see the module docstring). Build it with :meth:`from_env`."""

    token: str | None = None
    allow_writes: bool = False
    max_upload_bytes: int = int(DEFAULT_MAX_UPLOAD_MB * 1024 * 1024)
    max_pixels: int = DEFAULT_MAX_PIXELS
    host: str = "127.0.0.1"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerPolicy:
        env = os.environ if environ is None else environ
        return cls(
            token=read_token(environ=env),
            allow_writes=_truthy(env.get(ENV_ALLOW_WRITES, "")),
            max_upload_bytes=int(float(env.get(ENV_MAX_UPLOAD_MB) or DEFAULT_MAX_UPLOAD_MB) * 1024 * 1024),
            max_pixels=int(env.get(ENV_MAX_PIXELS) or DEFAULT_MAX_PIXELS),
            host=env.get(ENV_HOST) or "127.0.0.1",
        )

    def summary(self) -> str:
        return (
            f"access token {'required' if self.token else 'not set'}, writes "
            f"{'allowed' if self.allow_writes else 'off'}, uploads up to {self.max_upload_bytes / 2**20:g} MB and "
            f"{self.max_pixels} pixels"
        )


def valid_image_id(value: object) -> bool:
    """An image id is one plain file name without its suffix: no ``/`` or ``\\``, no leading ``.`` (so neither
    ``.`` nor ``..``), no control characters, at most 255 bytes."""
    return (
        isinstance(value, str)
        and 0 < len(value.encode("utf-8", "surrogateescape")) <= 255
        and not value.startswith(".")
        and "/" not in value
        and "\\" not in value
        and not _CONTROL.search(value)
    )


def valid_tag(value: object) -> bool:
    """A label tag: letters, digits, ``_`` and ``-``, at most 64 characters (``final``, ``original``)."""
    return isinstance(value, str) and _TAG.fullmatch(value) is not None


def image_not_found(image_id: object) -> str:
    """The one answer for an image id that is unknown, invalid, or a path (existing or not) outside the store."""
    return f"image {str(image_id)[:300]!r} not found in the datastore"


def check_pixels(path: str, max_pixels: int) -> None:
    """Refuse an image with more than ``max_pixels`` pixels, reading its header only.

    PNG / JPEG / TIFF headers through PIL (``Image.open`` decodes nothing), DICOM through pydicom up to the
    pixel data (rows x columns x frames). A file neither reads is left to the image reader, which refuses it.

    Raises:
        UploadTooLargeError: the image has more pixels than allowed.
    """
    pixels = None
    try:
        from PIL import Image

        with Image.open(path) as im:
            pixels = im.width * im.height * max(1, getattr(im, "n_frames", 1))
    except Exception:  # not a PIL image: try DICOM
        try:
            import pydicom

            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
            rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
            pixels = rows * cols * max(1, int(ds.get("NumberOfFrames", 1) or 1))
        except Exception:
            pixels = None
    if pixels is not None and pixels > max_pixels:
        raise UploadTooLargeError(f"the uploaded image has {pixels} pixels; this server takes at most {max_pixels}")


def remove_quietly(path: str | None) -> None:
    if path:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            logger.warning("could not remove the temporary file %s: %s", path, e)


# Paths the server itself made (uploads in the temp folder, session images): the only paths, besides the
# datastore's ids, that the app's infer accepts as an image. A client cannot add to this.
_trusted: Counter[str] = Counter()
_trusted_lock = threading.Lock()


class trusted_path:
    """Context manager: ``path`` may be given to the app's infer as an image while inside it."""

    def __init__(self, path: str) -> None:
        self.path = os.path.realpath(path)

    def __enter__(self) -> str:
        with _trusted_lock:
            _trusted[self.path] += 1
        return self.path

    def __exit__(self, *exc) -> None:
        with _trusted_lock:
            _trusted[self.path] -= 1
            if _trusted[self.path] <= 0:
                del _trusted[self.path]


def is_trusted_path(path: str) -> bool:
    with _trusted_lock:
        return _trusted.get(os.path.realpath(path), 0) > 0


def new_temp_path(suffix: str) -> str:
    """A new, empty temporary file (in ``tempfile.gettempdir()``, as MONAI Label's own) for an upload."""
    fd, path = tempfile.mkstemp(prefix="monaicxr-upload-", suffix=suffix)
    os.close(fd)
    return path


async def _json(send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            + (headers or []),
        }
    )
    await send({"type": "http.response.body", "body": body})


_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}


class GuardMiddleware:
    """ASGI middleware applying a :class:`ServerPolicy` to every HTTP request before the routes see it.

    Without a token, a connection to a non-loopback address of this machine is refused (403), however the server
    was started. Then, in this order: the ``Host`` header, when the server listens on a loopback address without
    a token, must name a loopback address (DNS rebinding: a web page whose name resolves to 127.0.0.1); the
    access token (401 without a valid ``Authorization: Bearer``, compared in constant time); no ``..`` path
    segment (404); the upstream routes of :data:`DISABLED_ROUTES` (405, always); the write routes (403 unless
    writes are allowed); the query string's image ids (404, the same answer as for an unknown id) and tags (422).
    """

    def __init__(self, app, policy: ServerPolicy) -> None:
        self.app = app
        self.policy = policy
        self._token = policy.token.encode() if policy.token else None
        self._check_host = not policy.token and is_loopback(policy.host)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        method = scope.get("method", "GET").upper()
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        problem = self._problem(method, path, headers, scope.get("query_string", b"").decode("latin-1"))
        local = (scope.get("server") or ("127.0.0.1", 0))[0]
        if problem is None and self._token is None and not is_loopback(str(local)):
            # started some other way (monailabel start_server --host 0.0.0.0) on a non-loopback address
            problem = 403, "this server has no access token: it answers connections to a loopback address only"
        if problem is None:
            return await self.app(scope, receive, send)
        status, detail = problem
        logger.warning("HTTP %d for %s %s: %s", status, method, path, detail)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        extra = [(b"www-authenticate", b'Bearer realm="monaicxr"')] if status == 401 else None
        await _json(send, status, detail, extra)

    def _problem(self, method: str, path: str, headers: dict[str, str], query: str) -> tuple[int, str] | None:
        if self._check_host:
            host = headers.get("host", "")
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name.lower() not in _LOOPBACK_NAMES and not is_loopback(name):
                return 421, f"this server answers requests for 127.0.0.1 / localhost only, not for {host!r}"
        if self._token is not None and not (method == "OPTIONS" and "access-control-request-method" in headers):
            given = headers.get("authorization", "")
            scheme, _, credentials = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(credentials.strip().encode(), self._token):
                return 401, "missing or wrong access token: send the header 'Authorization: Bearer <token>'"
        if ".." in path.split("/") or "\\" in path or "\x00" in path:
            return 404, "Not Found"
        for m, p, why in DISABLED_ROUTES:
            if method == m and (path == p or path.startswith(p + "/")):
                return 405, f"{method} {p}/ is disabled on the monaicxr MONAI Label server: {why}"
        if not self.policy.allow_writes and any(
            method == m and (path == p or path.startswith(p + "/")) for m, p in WRITE_ROUTES
        ):
            raise_what = f"{method} {path}"
            return 403, str(WritesDisabledError(raise_what))
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key in ID_PARAMS and value and not valid_image_id(value):
                if method == "PUT" and key == "image" and path in ("/datastore/", "/datastore/image"):  # a new id
                    return (
                        422,
                        f"image id {value[:300]!r}: expected a plain file name without '/', '\\' or a leading '.'",
                    )
                return 404, image_not_found(value)
            if key in TAG_PARAMS and value and not valid_tag(value):
                return 422, f"label tag {value[:100]!r}: expected letters, digits, '_' or '-' (e.g. final)"
        return None
