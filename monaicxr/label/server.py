"""The ASGI app: MONAI Label's FastAPI server, importable beside pydicom 3, with clear 4xx answers for bad input.

MONAI Label answers most bad requests with a bare HTTP 500. Added here:

=========================================================== ======= =============================================
exception                                                   status  when
=========================================================== ======= =============================================
``json.JSONDecodeError``                                    422     the ``params`` form field is not JSON
:class:`monaicxr.label.infer.InferInputError`               415     the image is not a readable image file
:class:`monaicxr.data.records.DatasetError`                 422     bad labels or a datalist training refuses
:class:`monaicxr.label.infer.ModelNotReadyError`            409     the model has no weights yet
``MONAILabelException`` (``INVALID_INPUT``, not found)      404     unknown model, strategy, image or label
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
from monailabel.interfaces.exception import (  # noqa: E402
    ImageNotFoundException,
    LabelNotFoundException,
    MONAILabelError,
    MONAILabelException,
)

from monaicxr.data.records import DatasetError  # noqa: E402
from monaicxr.label.infer import InferInputError, ModelNotReadyError  # noqa: E402

__all__ = ["app"]

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
