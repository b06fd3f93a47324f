"""Helpers for the security and auth tests: users of every kind, browsers, DB snapshots."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette

from liveblog import auth
from liveblog.models import Role, User
from liveblog.settings import Settings
from liveblog.state import Liveblog
from tests.support import PASSWORD, csrf_from, password_hash

SESSION_COOKIE = auth.SESSION_COOKIE
# Tables whose rows a failed request must leave exactly as they were. (api_token's
# last_used_at moves on reads by design, so it is compared without that column.)
STATE_TABLES = ("user", "update", "update_revision", "story_event", "login_session")
# A story's content; its reader statistics (page views, peak readers) move on reads.
STORY_COLUMNS = "id, slug, title, summary, status, breaking, last_seq, started_at, ended_at"


@dataclass
class Account:
    username: str
    user_id: int
    token: str
    password: str = PASSWORD


async def add_account(
    app: Starlette,
    username: str,
    *,
    role: str = "editor",
    display_name: str | None = None,
    read_only: bool = False,
) -> Account:
    liveblog: Liveblog = app.state.liveblog
    async with liveblog.db.transaction() as session:
        # One argon2 hash of PASSWORD for every account: hashing is the slow part of
        # set-up, and the hash is a real one that logins verify.
        user = User(
            username=username,
            display_name=display_name or username.title(),
            password_hash=password_hash(),
            role=Role(role),
        )
        session.add(user)
        await session.flush()
        token = await auth.create_api_token(session, user, name="tests", read_only=read_only)
    assert user.id is not None
    return Account(username=username, user_id=user.id, token=token)


async def set_active(app: Starlette, user_id: int, active: bool) -> None:
    liveblog: Liveblog = app.state.liveblog
    async with liveblog.db.transaction() as session:
        user = await session.get(User, user_id)
        assert user is not None
        await auth.set_active(session, user, active)


@asynccontextmanager
async def browser(
    app: Starlette,
    *,
    address: str = "127.0.0.1",
    cookies: dict[str, str] | None = None,
    base_url: str = "http://testserver",
) -> AsyncIterator[httpx.AsyncClient]:
    """A separate browser (its own cookie jar) from the given client address."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url=base_url, cookies=cookies) as client:
        yield client


async def log_in(client: httpx.AsyncClient, account: Account) -> str:
    """Log in through the form; returns the CSRF token for later forms."""
    token = csrf_from((await client.get("/login", follow_redirects=True)).text)
    response = await client.post(
        "/login",
        data={"username": account.username, "password": account.password, "csrf_token": token},
    )
    assert response.status_code == 303, response.text
    return csrf_from((await client.get("/desk")).text)


@asynccontextmanager
async def logged_in(
    app: Starlette, account: Account
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A browser of its own, logged in as ``account``, and the CSRF token for its forms."""
    async with browser(app) as client:
        yield client, await log_in(client, account)


async def post_form(app: Starlette, account: Account, path: str, **fields: str) -> httpx.Response:
    """``account`` logs in on a browser of its own and posts one desk form there."""
    async with logged_in(app, account) as (client, csrf):
        return await client.post(path, data={"csrf_token": csrf, **fields})


async def login_attempt(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    token = csrf_from((await client.get("/login", follow_redirects=True)).text)
    return await client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )


def db_state(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every row that matters, read straight from the SQLite file."""
    with closing(sqlite3.connect(settings.data_dir / "liveblog.db")) as conn:
        state = {
            table: conn.execute(f'SELECT * FROM "{table}" ORDER BY id').fetchall()
            for table in STATE_TABLES
        }
        state["story"] = conn.execute(f"SELECT {STORY_COLUMNS} FROM story ORDER BY id").fetchall()
        state["api_token"] = conn.execute(
            "SELECT id, user_id, name, token_hash, read_only, created_at, revoked_at"
            " FROM api_token ORDER BY id"
        ).fetchall()
    return state


def event_log_is_gap_free(settings: Settings) -> bool:
    """Every story's events are numbered 1..last_seq with no gap and no duplicate."""
    with closing(sqlite3.connect(settings.data_dir / "liveblog.db")) as conn:
        stories = conn.execute("SELECT id, last_seq FROM story").fetchall()
        for story_id, last_seq in stories:
            seqs = [
                row[0]
                for row in conn.execute(
                    "SELECT seq FROM story_event WHERE story_id = ? ORDER BY seq", (story_id,)
                )
            ]
            if seqs != list(range(1, last_seq + 1)):
                return False
    return True
