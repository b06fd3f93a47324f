"""Image uploads: ``POST /api/media`` for scripts, and the image fields of the desk forms.

Both end in ``MediaStore.save``, which decodes the bytes to prove they are an image and
keeps only a metadata-free re-encoding (see ``liveblog.media``).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from liveblog.media import CONTENT_TYPES, DecodersBusy, ImageRejected, ImageTooLarge
from liveblog.models import User
from liveblog.state import get_liveblog
from liveblog.views.api import ApiError, api_view
from liveblog.views.common import form_bool, form_str

# Requests that may carry an image: their body may be LIVEBLOG_MAX_UPLOAD_BYTES larger.
# (And a story's document, on the desk's import: liveblog/views/desk_transfer.py.)
UPLOAD_PATHS = re.compile(
    r"/api/media|/desk/profile|/desk/stories/[^/]+/updates(?:/[0-9]+/edit)?|/desk/import"
)


class UploadOut(BaseModel):
    """``upload_image``: the image's address (for ``image_url``) and its size."""

    model_config = ConfigDict(extra="forbid")
    url: str
    width: int
    height: int


@api_view
async def upload_image(request: Request, user: User) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in CONTENT_TYPES:
        raise ApiError(
            415,
            "send the image itself as the body, with Content-Type image/jpeg, image/png, "
            "image/webp or image/gif",
        )
    try:
        stored = await get_liveblog(request).media.save(await request.body())
    except ImageTooLarge as exc:
        raise ApiError(413, str(exc)) from None
    except DecodersBusy as exc:
        raise ApiError(503, str(exc), {"Retry-After": str(exc.retry_after)}) from None
    except ImageRejected as exc:
        raise ApiError(422, str(exc)) from None
    body = {"url": stored.url, "width": stored.width, "height": stored.height}
    return JSONResponse(body, status_code=201, headers={"Location": stored.url})


async def image_form_values(
    request: Request, form: FormData, *, current: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The image fields of a desk compose/edit form, the file (if any) stored.

    ``current`` is the update's image as it is (edit form): its size is kept when the
    image stays the same. Raises ``ImageRejected`` for an upload that is not an image,
    ``DecodersBusy`` when too many uploads are already waiting to be decoded.
    """
    media = get_liveblog(request).media
    url = form_str(form, "image_url").strip() or None
    width = height = None
    data = b""
    upload = form.get("image_file")
    if isinstance(upload, UploadFile):  # (browsers send an empty one when none is chosen)
        try:
            data = await upload.read()
        finally:
            await upload.close()
    if data:
        stored = await media.save(data)
        url, width, height = stored.url, stored.width, stored.height
    elif form_bool(form, "image_remove"):
        url = None
    elif url is not None:
        size = media.dimensions(url)
        if size is None and current is not None and current.get("image_url") == url:
            size = (current["image_width"], current["image_height"])
        if size is not None:
            width, height = size
    values: dict[str, Any] = {"image_url": url, "image_width": width, "image_height": height}
    for name in ("image_alt", "image_caption", "image_credit"):
        values[name] = (form_str(form, name).strip() or None) if url else None
    return values


routes = [Route("/api/media", upload_image, methods=["POST"], name="api.upload_image")]
