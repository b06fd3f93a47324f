"""Images attached to updates: uploads checked, cleaned and resized; links checked.

An upload is trusted for nothing it says about itself: Pillow decodes the bytes, and only
a JPEG, PNG, WebP or GIF that decodes completely is kept. It is then re-encoded from its
pixels alone, so no metadata survives (EXIF with a camera's GPS position can reveal where
a source lives), turned upright first if EXIF said so. Files are named by a hash of the
upload, which makes them immutable (cache forever) and de-duplicated, and each gets
smaller widths for ``srcset``. They live in the media directory under the data
directory and are linked as ``LIVEBLOG_MEDIA_URL`` + name, so a CDN or an object store
can serve them later by changing that one setting.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import anyio.to_thread
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import BaseModel

# What we accept (Pillow's format name) -> what we store it as. GIF keeps its first frame.
FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "png"}
CONTENT_TYPES = {"image/jpeg", "image/png", "image/webp", "image/gif"}
WIDTHS = (480, 960, 1600)  # the smaller copies made for srcset
MAX_WIDTH = 2400  # wider uploads are scaled down: nobody reads a live blog on a wall
MAX_PIXELS = 50_000_000  # decoded size cap, against decompression bombs
InputT = TypeVar("InputT", bound=BaseModel)
_STORED_NAME = re.compile(r"(?P<key>[0-9a-f]{24})\.(?P<ext>jpg|png|webp)")


class ImageRejected(ValueError):
    """The upload is not an image we keep; the message says why, for the editor."""


class ImageTooLarge(ImageRejected):
    pass


@dataclass(frozen=True)
class StoredImage:
    url: str
    width: int
    height: int


def check_image_url(value: str) -> str:
    """An image link must be http(s), or a path on this site (an upload)."""
    if value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or "\\" in value:
        raise ValueError("image_url must be an http(s) URL or a path on this site")
    return value


def srcset(url: str | None, width: int | None) -> str:
    """The ``srcset`` of an uploaded image (its smaller copies), or "" for any other."""
    if not url or not width:
        return ""
    base, _, name = url.rpartition("/")
    match = _STORED_NAME.fullmatch(name)
    if match is None:
        return ""
    key, ext = match["key"], match["ext"]
    smaller = [f"{base}/{key}-{w}w.{ext} {w}w" for w in WIDTHS if w < width]
    return ", ".join([*smaller, f"{url} {width}w"]) if smaller else ""


class MediaStore:
    def __init__(self, directory: Path, url: str, *, max_bytes: int) -> None:
        self.directory = directory
        self.url = url
        self.max_bytes = max_bytes

    async def save(self, data: bytes) -> StoredImage:
        if len(data) > self.max_bytes:
            raise ImageTooLarge(f"the image is larger than {self.max_bytes} bytes")
        if not data:
            raise ImageRejected("the image file is empty")
        # Decoding and resizing are CPU work: off the event loop.
        return await anyio.to_thread.run_sync(self._save, data)

    def dimensions(self, url: str) -> tuple[int, int] | None:
        """Width and height of one of our uploads (None for anything else)."""
        if not url.startswith(self.url):
            return None
        name = url[len(self.url) :]
        if _STORED_NAME.fullmatch(name) is None:
            return None
        try:
            with Image.open(self.directory / name) as image:
                return image.size
        except (OSError, UnidentifiedImageError):
            return None

    def with_size(self, data: InputT) -> InputT:
        """An update's input with its uploaded image's size filled in, if not given."""
        url = getattr(data, "image_url", None)
        if url is None or getattr(data, "image_width", None) is not None:
            return data
        size = self.dimensions(url)
        if size is None:
            return data
        return data.model_copy(update={"image_width": size[0], "image_height": size[1]})

    def _save(self, data: bytes) -> StoredImage:
        image, ext = _decode(data)
        key = hashlib.sha256(data).hexdigest()[:24]
        self.directory.mkdir(parents=True, exist_ok=True)
        if image.width > MAX_WIDTH:
            image = _scaled(image, MAX_WIDTH)
        name = f"{key}.{ext}"
        _write(self.directory / name, image, ext)
        for width in WIDTHS:
            if width < image.width:
                _write(self.directory / f"{key}-{width}w.{ext}", _scaled(image, width), ext)
        return StoredImage(url=self.url + name, width=image.width, height=image.height)


def _decode(data: bytes) -> tuple[Image.Image, str]:
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.format not in FORMATS:
                raise ImageRejected("upload a JPEG, PNG, WebP or GIF image")
            if opened.width * opened.height > MAX_PIXELS:
                raise ImageRejected("the image has too many pixels")
            ext = FORMATS[opened.format]
            opened.seek(0)  # the first frame of an animation
            opened.load()
            upright = ImageOps.exif_transpose(opened)
    except ImageRejected:
        raise
    except (
        OSError,
        ValueError,
        SyntaxError,  # Pillow's plugins raise it for malformed headers
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ):
        raise ImageRejected("the file is not a readable image") from None
    # Re-encode from the pixels only: whatever metadata came in stays behind.
    has_alpha = upright.mode in ("RGBA", "LA", "PA", "P") and ext != "jpg"
    mode = "RGBA" if has_alpha else "RGB"
    clean = upright.convert(mode)
    clean.info = {}
    return clean, ext


def _scaled(image: Image.Image, width: int) -> Image.Image:
    height = max(1, round(image.height * width / image.width))
    return image.resize((width, height), Image.Resampling.LANCZOS)


def _write(path: Path, image: Image.Image, ext: str) -> None:
    if path.exists():  # same upload again: the name is its content hash
        return
    buffer = io.BytesIO()
    if ext == "jpg":
        image.save(buffer, "JPEG", quality=85, optimize=True, progressive=True)
    elif ext == "png":
        image.save(buffer, "PNG", optimize=True)
    else:
        image.save(buffer, "WEBP", quality=85)
    # Write then rename, so a reader never gets half a file.
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    temporary.write_bytes(buffer.getvalue())
    os.replace(temporary, path)
