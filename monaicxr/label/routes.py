"""This app's versions of MONAI Label's upload routes: ``POST /infer/{model}``, ``PUT /datastore/image`` (and its
old name ``PUT /datastore/``), ``PUT /datastore/label``.

Same parameters and answers as MONAI Label's, and in addition:

- uploads are copied to a temporary file in ``tempfile.gettempdir()`` with a suffix from the list the app
  reads (415 otherwise), at most the policy's bytes (413) and pixels (413, from the image header, before
  anything is decoded); the file is removed on every path, failures included (MONAI Label removes it in a
  background task that a failed request never runs);
- inference runs in a worker thread, one request at a time as before, so the event loop (``/info/``, other
  requests) keeps answering while an image is processed (MONAI Label's ``async`` route runs the whole
  inference on the event loop);
- an image id must be a datastore id (404 otherwise, the same answer whether or not a path of that name
  exists); a request with neither an image nor a file gets 422; ``output=dicom_seg`` (needs DICOM SEG, not
  installed) gets 422.

:func:`install` puts them in place of MONAI Label's on the FastAPI app.
"""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any

from fastapi import BackgroundTasks, File, Form, HTTPException, UploadFile
from fastapi.routing import APIRoute
from monailabel.endpoints.infer import ResultType, send_response
from monailabel.interfaces.datastore import DefaultLabelTag
from monailabel.interfaces.utils.app import app_instance
from starlette.concurrency import run_in_threadpool

from .datastore import CXR_EXTENSIONS
from .guard import (
    InvalidNameError,
    ServerPolicy,
    UploadTooLargeError,
    check_pixels,
    new_temp_path,
    remove_quietly,
    trusted_path,
    valid_image_id,
)
from .infer import InferInputError

__all__ = ["install", "save_upload"]

logger = logging.getLogger(__name__)

_SUFFIXES = tuple(e.lstrip("*") for e in CXR_EXTENSIONS)
_CHUNK = 1 << 20

# one inference at a time, off the event loop (CPU inference is not faster in parallel, and memory stays bounded)
_INFER_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="monaicxr-infer")


def _suffix(filename: str | None) -> str:
    suffix = Path(filename or "").suffix.lower()
    if suffix not in _SUFFIXES:
        raise InferInputError(
            f"uploaded file {Path(filename or '').name[:200]!r}: expected a file name ending in one of {list(_SUFFIXES)}"
        )
    return suffix


async def save_upload(upload: UploadFile, policy: ServerPolicy) -> str:
    """Copy ``upload`` to a new temporary file within the policy's limits; the caller removes it.

    Raises:
        InferInputError: the file name's suffix is not one the app reads (415).
        UploadTooLargeError: past the byte or pixel limit (413); nothing is left behind.
    """
    path = new_temp_path(_suffix(upload.filename))
    try:
        total = 0
        with open(path, "wb") as out:
            while chunk := await upload.read(_CHUNK):
                total += len(chunk)
                if total > policy.max_upload_bytes:
                    raise UploadTooLargeError(
                        f"the upload is larger than this server's limit of {policy.max_upload_bytes / 2**20:g} MB"
                    )
                out.write(chunk)
        await run_in_threadpool(check_pixels, path, policy.max_pixels)
    except BaseException:
        remove_quietly(path)
        raise
    return path


def _params(params: str | None) -> dict[str, Any]:
    p = json.loads(params) if params else {}  # a JSONDecodeError answers 422 (monaicxr.label.server)
    if not isinstance(p, dict):
        raise HTTPException(status_code=422, detail="'params' must be a JSON object")
    return p


def _infer_and_clean(instance, request: dict[str, Any], image_file: str | None, upload: str | None):
    try:
        if image_file is None:
            return instance.infer(request)
        with trusted_path(image_file):
            return instance.infer(request)
    except InferInputError as e:
        if upload is not None:  # do not tell the temporary path
            raise InferInputError(str(e).replace(upload, "the uploaded file")) from None
        raise
    finally:
        remove_quietly(upload)


def make_routes(policy: ServerPolicy):
    async def run_inference(
        background_tasks: BackgroundTasks,
        model: str,
        image: str = "",
        session_id: str = "",
        params: str = Form("{}"),
        file: Annotated[UploadFile | None, File()] = None,
        output: ResultType | None = None,
    ):
        if output == ResultType.dicom_seg:
            raise HTTPException(status_code=422, detail="output=dicom_seg is not offered by this server")
        instance = app_instance()
        request: dict[str, Any] = {"model": model, **instance.info().get("config", {}).get("infer", {})}
        request.update(_params(params))
        request["model"] = model
        image_file = upload = None
        if file is not None:
            image_file = upload = await save_upload(file, policy)
            request["image"] = upload
        elif session_id:
            session = instance.sessions().get_session(session_id) if instance.sessions() else None
            if not session:
                raise HTTPException(status_code=404, detail=f"session {session_id[:100]!r} not found")
            image_file = request["image"] = session.image
            request["session"] = session.to_json()
        elif image:
            request["image"] = image
        elif not request.get("image"):
            raise HTTPException(
                status_code=422, detail="give an image id (?image=<id>) or an image file (form field 'file')"
            )
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(_INFER_POOL, _infer_and_clean, instance, request, image_file, upload)
        if result is None:
            raise HTTPException(status_code=500, detail="inference gave no result")
        return send_response(instance.datastore(), result, output, background_tasks)

    async def add_image(file: Annotated[UploadFile, File()], image: str | None = None, params: str = Form("{}")):
        image_id = image or Path(Path(file.filename or "").name).stem
        if not valid_image_id(image_id):
            raise InvalidNameError(f"image id {image_id[:300]!r}: expected a plain file name")
        save_params = _params(params)
        path = await save_upload(file, policy)
        try:
            return {"image": await run_in_threadpool(app_instance().datastore().add_image, image_id, path, save_params)}
        finally:
            remove_quietly(path)

    async def save_label(
        image: str,
        label: Annotated[UploadFile, File()],
        params: str = Form("{}"),
        tag: str = DefaultLabelTag.FINAL.value,
    ):
        instance = app_instance()
        save_params = _params(params)
        tag = tag or DefaultLabelTag.FINAL.value
        path = await save_upload(label, policy)
        try:
            label_id = await run_in_threadpool(instance.datastore().save_label, image, path, tag, save_params)
        finally:
            remove_quietly(path)
        res = instance.on_save_label(image, label_id) or {}
        res.update({"image": image, "label": label_id})
        return res

    return {
        ("POST", "/infer/{model}"): run_inference,
        ("PUT", "/datastore/"): add_image,
        ("PUT", "/datastore/image"): add_image,
        ("PUT", "/datastore/label"): save_label,
    }


def _routers(router, seen=None):
    """``router`` and every router included in it (FastAPI keeps included routers, not copies of their routes)."""
    seen = set() if seen is None else seen
    if id(router) in seen:
        return
    seen.add(id(router))
    yield router
    for route in router.routes:
        child = getattr(route, "original_router", None)
        if child is not None:
            yield from _routers(child, seen)


def install(app, policy: ServerPolicy) -> None:
    """Put this module's routes in place of MONAI Label's (same paths, methods, summaries and tags)."""
    replacements = make_routes(policy)
    for router in _routers(app.router):
        for route in list(router.routes):
            if not isinstance(route, APIRoute) or len(route.methods) != 1:
                continue
            endpoint = replacements.pop((next(iter(route.methods)), route.path), None)
            if endpoint is None:
                continue
            index = router.routes.index(route)
            router.routes.remove(route)
            prefix = getattr(router, "prefix", "")
            router.add_api_route(
                route.path[len(prefix) :] if prefix and route.path.startswith(prefix) else route.path,
                endpoint,
                methods=list(route.methods),
                summary=route.summary,
                include_in_schema=route.include_in_schema,
                deprecated=route.deprecated,
            )
            router.routes.insert(index, router.routes.pop())
    if replacements:
        raise RuntimeError(f"MONAI Label routes not found to replace: {sorted(replacements)}")
    app.openapi_schema = None
