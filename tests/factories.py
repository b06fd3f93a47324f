"""Stories and updates made through the JSON API, as an editor's client would make them.

Each call must succeed (201/200/204). The first kind takes any client and the editor
whose token to send, returns the JSON the API answered with, and sends keyword arguments
as fields of the body, over the defaults; the second kind takes a client that sends the
token itself, as the stream and topology tests hold one.
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from tests.support import bearer


class Author(Protocol):
    """Whoever holds an API token: tests/support.py's Editor, security_support's Account."""

    @property
    def token(self) -> str: ...


async def new_story(
    client: httpx.AsyncClient, editor: Author, slug: str = "flood", **fields: Any
) -> dict[str, Any]:
    body = {"title": f"Story {slug}", "slug": slug, "status": "live", **fields}
    response = await client.post("/api/stories", json=body, headers=bearer(editor.token))
    assert response.status_code == 201, response.text
    story: dict[str, Any] = response.json()
    return story


async def new_update(
    client: httpx.AsyncClient, editor: Author, slug: str = "flood", **fields: Any
) -> dict[str, Any]:
    body = {"body": "Water is rising.", **fields}
    response = await client.post(
        f"/api/stories/{slug}/updates", json=body, headers=bearer(editor.token)
    )
    assert response.status_code == 201, response.text
    update: dict[str, Any] = response.json()
    return update


async def api_story(client: httpx.AsyncClient, editor: Author, slug: str) -> dict[str, Any]:
    response = await client.get(f"/api/stories/{slug}", headers=bearer(editor.token))
    assert response.status_code == 200
    story: dict[str, Any] = response.json()
    return story


async def delete_update(
    client: httpx.AsyncClient, editor: Author, update_id: int, slug: str = "flood"
) -> None:
    response = await client.delete(
        f"/api/stories/{slug}/updates/{update_id}", headers=bearer(editor.token)
    )
    assert response.status_code == 204, response.text


# --- through a client that sends an editor's token itself (``headers=bearer(token)``) ---


async def create_story(api: httpx.AsyncClient, slug: str, *, status: str = "live") -> str:
    response = await api.post(
        "/api/stories", json={"title": f"Story {slug}", "slug": slug, "status": status}
    )
    assert response.status_code == 201, response.text
    return slug


async def post_update(api: httpx.AsyncClient, slug: str, body: str) -> dict[str, Any]:
    response = await api.post(f"/api/stories/{slug}/updates", json={"body": body})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def last_seq(api: httpx.AsyncClient, slug: str) -> int:
    response = await api.get(f"/api/stories/{slug}")
    assert response.status_code == 200, response.text
    seq: int = response.json()["last_seq"]
    return seq


async def end_story(api: httpx.AsyncClient, slug: str) -> None:
    response = await api.patch(f"/api/stories/{slug}", json={"status": "ended"})
    assert response.status_code == 200, response.text
