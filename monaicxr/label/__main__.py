"""Start the monaicxr MONAI Label server on a folder of chest X-rays.

Usage::

    python -m monaicxr.label STUDIES [--host 127.0.0.1] [--port 8000] [--token-file FILE] [--allow-writes]
        [--max-upload-mb 64] [--max-pixels 25000000] [--conf KEY VALUE ...]

``STUDIES`` is a folder of PNG / JPEG / DICOM files (MONAI Label keeps its labels in ``STUDIES/labels/`` and
this app its fine-tuned models in ``STUDIES/.monaicxr_label/``), or a DICOMweb URL. ``--conf`` keys are listed
in :mod:`monaicxr.label.cxr_app`. This does what ``monailabel start_server`` does (MONAI Label's settings as
environment variables, then uvicorn), with this package's app folder and ASGI app, and without creating
folders inside the installed package.

It listens on 127.0.0.1 unless told otherwise, and refuses to listen on any other address without an access
token (``--token-file`` or ``$MONAICXR_LABEL_TOKEN``); see :mod:`monaicxr.label.guard` for what the token,
``--allow-writes`` and the limits do.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from .guard import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_UPLOAD_MB,
    ENV_ALLOW_WRITES,
    ENV_HOST,
    ENV_MAX_PIXELS,
    ENV_MAX_UPLOAD_MB,
    ENV_TOKEN,
    ENV_TOKEN_FILE,
    is_loopback,
    read_token,
)

__all__ = ["main", "APP_DIR"]

APP_DIR = Path(__file__).resolve().parent / "app"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m monaicxr.label", description=__doc__.split("\n\n")[0])
    p.add_argument("studies", help="folder of PNG / JPEG / DICOM chest X-rays, or a DICOMweb URL")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1); any non-loopback address needs an access token",
    )
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--token-file",
        help=f"file whose first line is the access token every request must send as 'Authorization: Bearer "
        f"<token>' (or set ${ENV_TOKEN})",
    )
    p.add_argument(
        "--allow-writes",
        action="store_true",
        help="allow image uploads, label saving (also /infer save_label), deletes and training (default: read-only)",
    )
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULT_MAX_UPLOAD_MB,
        help=f"largest request body in MB (default {DEFAULT_MAX_UPLOAD_MB:g})",
    )
    p.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help=f"largest uploaded image in pixels (default {DEFAULT_MAX_PIXELS})",
    )
    p.add_argument(
        "--conf", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"), help="app setting, repeatable"
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    studies = args.studies
    if not studies.startswith(("http://", "https://")):
        path = Path(studies).expanduser().resolve()
        if not path.is_dir():
            raise SystemExit(f"STUDIES folder {path} does not exist; expected a folder of chest X-ray images")
        studies = str(path)
    try:
        token = read_token(args.token_file)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    if not token and not is_loopback(args.host):
        raise SystemExit(
            f"refusing to listen on {args.host} without an access token: anyone who can reach this address could "
            f"read the studies and run inference. Give --token-file FILE (or set ${ENV_TOKEN}), and send "
            "'Authorization: Bearer <token>' with every request; or listen on 127.0.0.1"
        )
    policy_env = {
        ENV_HOST: args.host,
        ENV_ALLOW_WRITES: "1" if args.allow_writes else "0",
        ENV_MAX_UPLOAD_MB: str(args.max_upload_mb),
        ENV_MAX_PIXELS: str(args.max_pixels),
    }
    if args.token_file:
        policy_env[ENV_TOKEN_FILE] = str(Path(args.token_file).expanduser().resolve())
    # MONAI Label reads its settings from the environment when monailabel.config is first imported; the
    # training subprocesses it starts inherit them.
    os.environ.update(
        {
            "MONAI_LABEL_APP_DIR": str(APP_DIR),
            "MONAI_LABEL_STUDIES": studies,
            "MONAI_LABEL_APP_CONF": json.dumps(dict(args.conf)),
            "MONAI_LABEL_SERVER_PORT": str(args.port),
            "PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(APP_DIR)) if p),
            **policy_env,
        }
    )
    if "monailabel.config" in sys.modules:
        raise RuntimeError("monailabel was imported before its settings were set; start through main() only")
    logging.basicConfig(level=args.log_level.upper(), format="[%(asctime)s] [%(levelname)s] (%(name)s) %(message)s")

    import uvicorn

    uvicorn.run("monaicxr.label.server:app", host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
