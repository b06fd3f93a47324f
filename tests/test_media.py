"""Images on updates: uploads are proven to be images, cleaned of metadata, resized and
served; links are http(s) only; the desk forms and the API both attach them."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import httpx
import pytest
from PIL import Image
from starlette.applications import Starlette

from liveblog import auth
from liveblog.app import create_app
from liveblog.media import WIDTHS
from liveblog.models import User
from liveblog.settings import Settings
from tests.factories import new_story, new_update
from tests.htmltree import page
from tests.support import Editor, bearer, csrf_from, login, make_editor

pytestmark = pytest.mark.anyio

GPS_TAG = 0x8825
ORIENTATION_TAG = 0x0112


def jpeg(width: int, height: int, *, exif: bool = False) -> bytes:
    image = Image.new("RGB", (width, height), (10, 120, 200))
    image.paste((250, 250, 0), (0, 0, width // 2, height // 4))  # a mark, to see rotation
    buffer = io.BytesIO()
    if exif:
        tags = Image.Exif()
        tags[ORIENTATION_TAG] = 6  # the camera was turned: rotate 90 degrees to show
        tags[0x010F] = "SourceCam"  # camera make
        tags[GPS_TAG] = {1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)}
        image.save(buffer, "JPEG", exif=tags)
    else:
        image.save(buffer, "JPEG")
    return buffer.getvalue()


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


async def upload(
    client: httpx.AsyncClient, editor: Editor, data: bytes, content_type: str = "image/jpeg"
) -> httpx.Response:
    return await client.post(
        "/api/media",
        content=data,
        headers={**bearer(editor.token), "Content-Type": content_type},
    )


def stored(settings: Settings, url: str) -> Path:
    return settings.media_dir() / url.removeprefix("/media/")


async def test_upload_is_cleaned_turned_upright_resized_and_served(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    original = jpeg(300, 200, exif=True)
    assert b"SourceCam" in original
    response = await upload(client, editor, original)
    assert response.status_code == 201, response.text
    image = response.json()
    assert re.fullmatch(r"/media/[0-9a-f]{24}\.jpg", image["url"])
    # Turned as EXIF said, and nothing of the EXIF kept.
    assert (image["width"], image["height"]) == (200, 300)
    data = stored(settings, image["url"]).read_bytes()
    assert b"SourceCam" not in data and b"Exif" not in data
    with Image.open(io.BytesIO(data)) as kept:
        assert kept.format == "JPEG" and kept.size == (200, 300)
        assert not kept.getexif()
    served = await client.get(image["url"])
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert served.content == data

    # The same upload again is the same file.
    again = await upload(client, editor, original)
    assert again.json() == image

    large = (await upload(client, editor, jpeg(3000, 1500))).json()
    assert (large["width"], large["height"]) == (2400, 1200)  # scaled down to the cap
    for width in WIDTHS:
        variant = stored(settings, large["url"]).with_name(
            stored(settings, large["url"]).stem + f"-{width}w.jpg"
        )
        with Image.open(variant) as smaller:
            assert smaller.size == (width, width // 2)


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        (b"hello, I am text", "image/png", 422),
        (png(64, 64)[:60], "image/png", 422),  # cut short
        (b"", "image/png", 422),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "image/svg+xml",
            415,
        ),
        (png(64, 64), "text/plain", 415),
        (png(8000, 7000, mode="1"), "image/png", 422),  # 56 megapixels: a bomb
    ],
)
async def test_uploads_that_are_not_images_are_refused(
    client: httpx.AsyncClient,
    editor: Editor,
    settings: Settings,
    data: bytes,
    content_type: str,
    status: int,
) -> None:
    response = await upload(client, editor, data, content_type)
    assert response.status_code == status, response.text
    assert response.json()["error"]
    assert not settings.media_dir().exists() or not any(settings.media_dir().iterdir())


async def test_a_bmp_is_refused_and_read_only_tokens_cannot_upload(
    app: Starlette, client: httpx.AsyncClient, editor: Editor
) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "BMP")
    response = await upload(client, editor, buffer.getvalue(), "image/png")
    assert response.status_code == 422
    assert "JPEG, PNG, WebP or GIF" in response.json()["error"]
    async with app.state.liveblog.db.transaction() as session:
        user = await session.get(User, editor.user_id)
        assert user is not None
        token = await auth.create_api_token(session, user, name="ro", read_only=True)
    response = await client.post(
        "/api/media", content=png(8, 8), headers={**bearer(token), "Content-Type": "image/png"}
    )
    assert response.status_code == 403


async def test_upload_size_limit(settings: Settings, editor: Editor) -> None:
    small = settings.model_copy(update={"max_upload_bytes": 4096})
    app = create_app(small)
    async with app.router.lifespan_context(app):
        bob = await make_editor(app, "bob")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await upload(client, bob, jpeg(600, 600) + b"\0" * 5000)
            assert response.status_code == 413


async def test_uploads_may_be_larger_than_other_bodies(
    client: httpx.AsyncClient, editor: Editor, settings: Settings
) -> None:
    noise = Image.frombytes("RGB", (900, 900), os.urandom(900 * 900 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, "PNG")
    big = buffer.getvalue()
    assert len(big) > settings.max_body_bytes
    assert (await upload(client, editor, big, "image/png")).status_code == 201
    too_big_json = b'{"title": "' + b"x" * settings.max_body_bytes + b'"}'
    response = await client.post(
        "/api/stories",
        content=too_big_json,
        headers={**bearer(editor.token), "Content-Type": "application/json"},
    )
    assert response.status_code == 413


async def test_api_updates_carry_images(client: httpx.AsyncClient, editor: Editor) -> None:
    await new_story(client, editor)
    image = (await upload(client, editor, jpeg(1200, 800))).json()
    update = await new_update(
        client,
        editor,
        body="The harbour.",
        image_url=image["url"],
        image_alt="Boats in the harbour",
        image_caption="The harbour at noon",
        image_credit="Photo: Ana Reyes",
    )
    # The size of an upload is filled in.
    assert update["image"] == {
        "url": image["url"],
        "alt": "Boats in the harbour",
        "caption": "The harbour at noon",
        "credit": "Photo: Ana Reyes",
        "width": 1200,
        "height": 800,
    }
    doc = await page(client, "/stories/flood")
    figure = doc.find("figure")
    img = figure.find("img")
    assert img.attrs["src"] == image["url"]
    assert (img.attrs["width"], img.attrs["height"]) == ("1200", "800")
    assert img.attrs["loading"] == "lazy"
    base = image["url"].removesuffix(".jpg")
    assert img.attrs["srcset"] == (
        f"{base}-480w.jpg 480w, {base}-960w.jpg 960w, {image['url']} 1200w"
    )
    assert figure.find("span", class_="update__caption").text() == "The harbour at noon"
    assert figure.find("span", class_="update__credit").text() == "Photo: Ana Reyes"

    url = f"/api/stories/flood/updates/{update['id']}"
    changed = await client.patch(
        url, json={"image_caption": "The harbour, noon"}, headers=bearer(editor.token)
    )
    assert changed.json()["image"]["caption"] == "The harbour, noon"
    assert changed.json()["image"]["width"] == 1200
    linked = await client.patch(
        url, json={"image_url": "https://example.org/b.png"}, headers=bearer(editor.token)
    )
    # Another image: the old size no longer applies, caption and credit stay.
    assert linked.json()["image"]["width"] is None
    assert linked.json()["image"]["credit"] == "Photo: Ana Reyes"
    removed = await client.patch(url, json={"image_url": None}, headers=bearer(editor.token))
    assert removed.json()["image"] is None
    assert not (await page(client, "/stories/flood")).find_all("figure")


@pytest.mark.parametrize(
    "fields",
    [
        {"image_url": "javascript:alert(1)"},
        {"image_url": "data:image/png;base64,AAAA"},
        {"image_url": "//evil.example/x.png"},
        {"image_url": "ftp://example.org/x.png"},
        {"image_caption": "A caption with no image"},
        {"image_url": "https://example.org/a.png", "image_width": 100},
        {"image_url": "https://example.org/a.png", "image_caption": "x" * 301},
        {"image_url": "https://example.org/" + "a" * 2000},
    ],
)
async def test_bad_image_fields_are_422(
    client: httpx.AsyncClient, editor: Editor, fields: dict[str, object]
) -> None:
    await new_story(client, editor)
    response = await client.post(
        "/api/stories/flood/updates",
        json={"body": "x", **fields},
        headers=bearer(editor.token),
    )
    assert response.status_code == 422, response.text


async def test_desk_compose_and_edit_forms_attach_and_remove_images(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await new_story(client, editor)
    token = await login(client, editor)
    posted = await client.post(
        "/desk/stories/flood/updates",
        data={
            "csrf_token": token,
            "body": "The bridge.",
            "image_alt": "The old bridge",
            "image_caption": "The bridge this morning",
            "image_credit": "Photo: Desk",
        },
        files={"image_file": ("bridge.jpg", jpeg(1000, 500, exif=True), "image/jpeg")},
    )
    assert posted.status_code == 303, posted.text
    update_id = int(posted.headers["location"].rsplit("-", 1)[1])
    api = await client.get(f"/api/stories/flood/updates/{update_id}", headers=bearer(editor.token))
    image = api.json()["image"]
    assert (image["width"], image["height"]) == (500, 1000)  # turned upright
    assert image["caption"] == "The bridge this morning"

    form = await client.get(f"/desk/stories/flood/updates/{update_id}/edit")
    assert f'value="{image["url"]}"' in form.text and 'name="image_remove"' in form.text
    token = csrf_from(form.text)
    kept = await client.post(
        f"/desk/stories/flood/updates/{update_id}/edit",
        data={"csrf_token": token, "body": "The bridge, closed.", "image_url": image["url"],
              "image_alt": "The old bridge", "image_caption": "Closed", "image_credit": ""},
    )  # fmt: skip
    assert kept.status_code == 303
    api = await client.get(f"/api/stories/flood/updates/{update_id}", headers=bearer(editor.token))
    assert api.json()["image"]["width"] == 500 and api.json()["image"]["credit"] is None
    removed = await client.post(
        f"/desk/stories/flood/updates/{update_id}/edit",
        data={"csrf_token": token, "body": "No picture.", "image_url": image["url"],
              "image_remove": "on"},
    )  # fmt: skip
    assert removed.status_code == 303
    api = await client.get(f"/api/stories/flood/updates/{update_id}", headers=bearer(editor.token))
    assert api.json()["image"] is None

    refused = await client.post(
        "/desk/stories/flood/updates",
        data={"csrf_token": token, "body": "Kept text.", "image_caption": "Kept caption"},
        files={"image_file": ("notes.png", b"not an image", "image/png")},
    )
    assert refused.status_code == 422
    assert "not a readable image" in refused.text and "Kept text." in refused.text
