"""The ASGI app: MONAI Label's FastAPI server, importable beside pydicom 3, guarded, with clear 4xx answers.

Guarded by :mod:`monaicxr.label.guard` (policy from the environment, set by ``python -m monaicxr.label``):
:class:`~monaicxr.label.guard.GuardMiddleware` in front of every route (access token, write routes, names in
the query string), a request body limit (413), this app's upload routes (:mod:`monaicxr.label.routes`) in place
of MONAI Label's, and no cross-origin (CORS) access unless ``MONAI_LABEL_CORS_ORIGINS`` names origins (MONAI
Label allows every origin, so any web page open in a browser on this machine could use a loopback server).

MONAI Label answers most bad requests with a bare HTTP 500. Added here:

=========================================================== ======= =============================================
exception                                                   status  when
=========================================================== ======= =============================================
``json.JSONDecodeError``                                    422     the ``params`` form field is not JSON
:class:`monaicxr.label.infer.InferInputError`               415     the image is not a readable image file
:class:`monaicxr.data.records.DatasetError`                 422     bad labels or a datalist training refuses
:class:`monaicxr.label.infer.ModelNotReadyError`            409     the model has no weights yet
``MONAILabelException`` (``INVALID_INPUT``, not found)      404     unknown model, strategy, image or label
:class:`monaicxr.label.guard.InvalidNameError`              422     an image id or tag that is not a plain name
:class:`monaicxr.label.guard.UploadTooLargeError`           413     an upload past the byte or pixel limit
:class:`monaicxr.label.guard.WritesDisabledError`           403     a write on a server started read-only
=========================================================== ======= =============================================

Each answer is JSON ``{"detail": message}``, as FastAPI's own errors. Run it with
``python -m monaicxr.label`` (which sets MONAI Label's settings first), or give
``--uvicorn_app monaicxr.label.server:app`` to ``monailabel start_server``.
"""

from __future__ import annotations

import json
import logging

from monaicxr.label.compat import prepare_monailabel_imports

prepare_monailabel_imports()

from fastapi import Request  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from monailabel.app import app  # noqa: E402
from monailabel.config import settings  # noqa: E402
from monailabel.interfaces.exception import (  # noqa: E402
    ImageNotFoundException,
    LabelNotFoundException,
    MONAILabelError,
    MONAILabelException,
)

from monaicxr.data.errors import DatasetError  # noqa: E402
from monaicxr.label import routes  # noqa: E402
from monaicxr.label.guard import (  # noqa: E402
    GuardMiddleware,
    InvalidNameError,
    ServerPolicy,
    UploadTooLargeError,
    WritesDisabledError,
)
from monaicxr.label.infer import InferInputError, ModelNotReadyError  # noqa: E402

__all__ = ["app", "policy"]

logger = logging.getLogger(__name__)


def _answer(status: int, message: str) -> JSONResponse:
    logger.warning("HTTP %d: %s", status, message)
    return JSONResponse(status_code=status, content={"detail": message})


async def _bad_json(request: Request, exc: json.JSONDecodeError) -> JSONResponse:
    return _answer(422, f"'params' is not valid JSON: {exc}")


async def _bad_image(request: Request, exc: InferInputError) -> JSONResponse:
    return _answer(415, f"not a readable chest X-ray image: {exc}")


async def _bad_data(request: Request, exc: DatasetError) -> JSONResponse:
    return _answer(422, str(exc))


async def _not_ready(request: Request, exc: ModelNotReadyError) -> JSONResponse:
    return _answer(409, str(exc))


async def _monailabel_error(request: Request, exc: MONAILabelException) -> JSONResponse:
    missing = isinstance(exc, (ImageNotFoundException, LabelNotFoundException))
    status = 404 if missing or exc.error == MONAILabelError.INVALID_INPUT else 500
    return _answer(status, exc.msg)


app.add_exception_handler(json.JSONDecodeError, _bad_json)
app.add_exception_handler(InferInputError, _bad_image)
app.add_exception_handler(DatasetError, _bad_data)
app.add_exception_handler(ModelNotReadyError, _not_ready)
app.add_exception_handler(MONAILabelException, _monailabel_error)


async def _bad_name(request: Request, exc: InvalidNameError) -> JSONResponse:
    return _answer(422, str(exc))


async def _too_large(request: Request, exc: UploadTooLargeError) -> JSONResponse:
    return _answer(413, str(exc))


async def _read_only(request: Request, exc: WritesDisabledError) -> JSONResponse:
    return _answer(403, str(exc))


app.add_exception_handler(InvalidNameError, _bad_name)
app.add_exception_handler(UploadTooLargeError, _too_large)
app.add_exception_handler(WritesDisabledError, _read_only)

policy = ServerPolicy.from_env()
routes.install(app, policy)
app.max_body_size = policy.max_upload_bytes + 64 * 1024  # room for the multipart headers and the other fields
if not settings.MONAI_LABEL_CORS_ORIGINS:
    app.user_middleware = [m for m in app.user_middleware if m.cls.__name__ != "CORSMiddleware"]
app.add_middleware(GuardMiddleware, policy=policy)
logger.info("monaicxr label server: %s", policy.summary())
