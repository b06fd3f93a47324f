"""Images attached to updates: uploads checked, cleaned and resized; links checked.

An upload is trusted for nothing it says about itself: Pillow decodes the bytes, and only
a JPEG, PNG, WebP or GIF that decodes completely is kept. It is then re-encoded from its
pixels alone, so no metadata survives (EXIF with a camera's GPS position can reveal where
a source lives), turned upright first if EXIF said so. Files are named by a hash of the
upload, which makes them immutable (cache forever) and de-duplicated, and each gets
smaller widths for ``srcset``. They live in the media directory under the data
directory and are linked as ``LIVEBLOG_MEDIA_URL`` + name, so a CDN or an object store
can serve them later by changing that one setting.

Decoding is what an upload costs: up to a few hundred MB and a second of CPU for a 50M
pixel image. A store decodes ``decoders`` images at a time; more uploads wait in line,
and past ``queue`` waiting it refuses at once (``DecodersBusy``: 503 with Retry-After).
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
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel

# What we accept (Pillow's format name) -> what we store it as. GIF keeps its first frame.
FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "png"}
CONTENT_TYPES = {"image/jpeg", "image/png", "image/webp", "image/gif"}
WIDTHS = (480, 960, 1600)  # the smaller copies made for srcset
MAX_WIDTH = 2400  # wider uploads are scaled down: nobody reads a live blog on a wall
MAX_PIXELS = 50_000_000  # decoded size cap, against decompression bombs
BUSY_RETRY_AFTER = 5  # seconds: about what the decodes ahead in line take
InputT = TypeVar("InputT", bound=BaseModel)
ORIENTATION_TAG = 0x0112  # EXIF: how the camera was held
# Orientation -> the turn that makes the image upright, as ImageOps.exif_transpose does it.
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_QUARTER_TURNS = {
    Image.Transpose.TRANSPOSE,
    Image.Transpose.ROTATE_270,
    Image.Transpose.TRANSVERSE,
    Image.Transpose.ROTATE_90,
}
_SCALED_AS_IS = {"L", "LA", "RGB", "RGBA", "CMYK"}  # modes LANCZOS resamples as they are
_PREMULTIPLIED = {"LA": "La", "RGBA": "RGBa"}
_STORED_NAME = re.compile(r"(?P<key>[0-9a-f]{24})\.(?P<ext>jpg|png|webp)")


class ImageRejected(ValueError):
    """The upload is not an image we keep; the message says why, for the editor."""


class ImageTooLarge(ImageRejected):
    pass


class DecodersBusy(Exception):
    """Every image decoder is busy and the line for them is full: try again later.

    Not an ``ImageRejected``: the image may be fine, and the answer is 503, not 422.
    """

    retry_after = BUSY_RETRY_AFTER


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
    def __init__(
        self, directory: Path, url: str, *, max_bytes: int, decoders: int, queue: int
    ) -> None:
        self.directory = directory
        self.url = url
        self.max_bytes = max_bytes
        # A decode holds up to a few hundred MB for a 50M pixel image: without a cap of
        # its own, each upload would get one of anyio's 40 worker threads.
        self.decoders = anyio.CapacityLimiter(decoders)
        self.queue = queue

    async def save(self, data: bytes) -> StoredImage:
        if len(data) > self.max_bytes:
            raise ImageTooLarge(f"the image is larger than {self.max_bytes} bytes")
        if not data:
            raise ImageRejected("the image file is empty")
        if (
            self.decoders.available_tokens < 1
            and self.decoders.statistics().tasks_waiting >= self.queue
        ):
            raise DecodersBusy("the server is busy with other images; try again shortly")
        # Nothing awaits between that count and taking a decoder or a place in line, so
        # a burst of uploads cannot all pass the count at once.
        async with self.decoders:
            # Decoding and resizing are CPU work: off the event loop. A decode runs to
            # its end even if the upload is cancelled, and keeps its decoder till then.
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
        name = f"{key}.{ext}"
        _write(self.directory / name, image, ext)
        for width in WIDTHS:
            if width < image.width:
                _write(self.directory / f"{key}-{width}w.{ext}", _scaled(image, width), ext)
        return StoredImage(url=self.url + name, width=image.width, height=image.height)


def _decode(data: bytes) -> tuple[Image.Image, str]:
    """The upload's first frame, upright, at most MAX_WIDTH wide, in RGB or RGBA.

    Peak memory is what a 50M pixel upload costs, so the order matters: a JPEG is
    decoded already scaled down (``draft``), and an image is scaled down in its own mode
    (one byte a pixel for greyscale) before it is turned upright or widened to RGB.
    """
    try:
        # Not closed: closing frees the pixels, which may be what we return.
        image: Image.Image = Image.open(io.BytesIO(data))
        if image.format not in FORMATS:
            raise ImageRejected("upload a JPEG, PNG, WebP or GIF image")
        if image.width * image.height > MAX_PIXELS:
            raise ImageRejected("the image has too many pixels")
        ext = FORMATS[image.format]
        image.seek(0)  # the first frame of an animation
        turn = _UPRIGHT.get(image.getexif().get(ORIENTATION_TAG, 1))
        target = _target_size(image.size, turned=turn in _QUARTER_TURNS)
        if target is not None:
            image.draft(image.mode, target)  # JPEG only: decode at 1/2, 1/4 or 1/8
        image.load()
        has_alpha = image.mode in ("RGBA", "LA", "PA", "P") and ext != "jpg"
        mode = "RGBA" if has_alpha else "RGB"
        if image.mode not in _SCALED_AS_IS:  # palettes and odd modes: convert first
            image = image.convert(mode)
        if target is not None:
            straight = image.mode
            if straight in _PREMULTIPLIED:
                # Alpha is resampled premultiplied. Image.resize would make that copy
                # itself and hold the original meanwhile; here the original goes first.
                image = image.convert(_PREMULTIPLIED[straight])
            image = image.resize(target, Image.Resampling.LANCZOS)
            if image.mode != straight:
                image = image.convert(straight)
        if turn is not None:
            image = image.transpose(turn)
        if image.mode != mode:
            image = image.convert(mode)
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
    image.info = {}
    return image, ext


def _target_size(size: tuple[int, int], *, turned: bool) -> tuple[int, int] | None:
    """The size to scale to (before turning) so the upright width is MAX_WIDTH, if wider."""
    width, height = (size[1], size[0]) if turned else size
    if width <= MAX_WIDTH:
        return None
    scaled = max(1, round(height * MAX_WIDTH / width))
    return (scaled, MAX_WIDTH) if turned else (MAX_WIDTH, scaled)


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
