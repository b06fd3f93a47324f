"""Roles and accounts on the desk: /desk/users for admins, /desk/tokens for everyone."""

from __future__ import annotations

import re

import httpx
import pytest
from starlette.applications import Starlette

from liveblog import auth
from liveblog.settings import Settings
from tests.htmlcheck import text_of
from tests.security_support import (
    Account,
    add_account,
    browser,
    db_state,
    logged_in,
    login_attempt,
    post_form,
)
from tests.support import PASSWORD, bearer

pytestmark = pytest.mark.anyio


@pytest.fixture
async def admin(app: Starlette) -> Account:
    return await add_account(app, "ada", role="admin", display_name="Ada Admin")


@pytest.fixture
async def alice(app: Starlette) -> Account:
    return await add_account(app, "alice")


def user_row(settings: Settings, username: str) -> tuple[object, ...]:
    rows = [row for row in db_state(settings)["user"] if row[1] == username]
    assert len(rows) == 1
    return rows[0]


# --- users ---------------------------------------------------------------------------


async def test_admin_creates_a_user_who_can_then_log_in(
    app: Starlette, settings: Settings, admin: Account
) -> None:
    async with logged_in(app, admin) as (client, csrf):
        response = await client.post(
            "/desk/users",
            data={
                "csrf_token": csrf,
                "username": "Carol",
                "display_name": "Carol Correspondent",
                "role": "editor",
                "password": "a long enough password",
            },
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/desk/users"
        page = await client.get("/desk/users")
        assert "Carol Correspondent" in text_of(page.text)
    assert user_row(settings, "carol")[4] == "editor"
    async with browser(app) as carol:
        assert (await login_attempt(carol, "carol", "a long enough password")).status_code == 303


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"username": "alice"}, 409),
        ({"username": "bad name!"}, 422),
        ({"password": "short"}, 422),
        ({"role": "superuser"}, 422),
        ({"display_name": "x" * 101}, 422),
        ({"display_name": "tab\x1bescape"}, 422),
    ],
)
async def test_invalid_new_users_are_refused_and_nothing_is_stored(
    app: Starlette,
    settings: Settings,
    admin: Account,
    alice: Account,
    fields: dict[str, str],
    status: int,
) -> None:
    async with logged_in(app, admin) as (client, csrf):
        before = db_state(settings)
        form = {
            "csrf_token": csrf,
            "username": "dave",
            "display_name": "Dave",
            "role": "editor",
            "password": "a long enough password",
            **fields,
        }
        response = await client.post("/desk/users", data=form)
    assert response.status_code == status
    assert 'role="alert"' in response.text
    after = db_state(settings)
    assert after["user"] == before["user"]


async def test_editors_get_403_on_every_user_page(
    app: Starlette, settings: Settings, admin: Account, alice: Account
) -> None:
    async with logged_in(app, alice) as (client, csrf):
        before = db_state(settings)
        assert (await client.get("/desk/users")).status_code == 403
        for path, form in [
            ("/desk/users", {"username": "mallory", "password": "password123"}),
            (f"/desk/users/{alice.user_id}/role", {"role": "admin"}),
            (f"/desk/users/{admin.user_id}/active", {"active": "off"}),
            (f"/desk/users/{admin.user_id}/password", {"password": "pwned-password"}),
        ]:
            response = await client.post(path, data={"csrf_token": csrf, **form})
            assert response.status_code == 403, path
        assert db_state(settings) == before
        # The desk shows editors no link to the users page.
        assert "/desk/users" not in (await client.get("/desk")).text


async def test_changing_a_role_takes_effect_at_once(
    app: Starlette, settings: Settings, admin: Account, alice: Account
) -> None:
    async with logged_in(app, alice) as (alices, _csrf):
        assert (await alices.get("/desk/users")).status_code == 403
        response = await post_form(app, admin, f"/desk/users/{alice.user_id}/role", role="admin")
        assert response.status_code == 303
        assert (await alices.get("/desk/users")).status_code == 200
    assert user_row(settings, "alice")[4] == "admin"


async def test_the_last_admin_cannot_be_demoted_or_deactivated(
    app: Starlette, settings: Settings, admin: Account, alice: Account
) -> None:
    async with logged_in(app, admin) as (client, csrf):
        before = db_state(settings)
        demote = await client.post(
            f"/desk/users/{admin.user_id}/role", data={"csrf_token": csrf, "role": "editor"}
        )
        assert demote.status_code == 409
        assert "no active admin" in demote.text
        yourself = await client.post(
            f"/desk/users/{admin.user_id}/active", data={"csrf_token": csrf, "active": "off"}
        )
        assert yourself.status_code == 409
        assert db_state(settings) == before
        missing = await client.post(
            "/desk/users/999/role", data={"csrf_token": csrf, "role": "editor"}
        )
        assert missing.status_code == 404


async def test_deactivating_a_user_ends_their_sessions_and_tokens(
    app: Starlette, settings: Settings, admin: Account, alice: Account
) -> None:
    active = f"/desk/users/{alice.user_id}/active"
    async with logged_in(app, alice) as (alices, _csrf):
        async with logged_in(app, admin) as (admins, csrf):
            response = await admins.post(active, data={"csrf_token": csrf, "active": "off"})
            assert response.status_code == 303
            page = await admins.get("/desk/users")
            row = re.search(r'<tr data-user="alice".*?</tr>', page.text, re.S)
            assert row is not None and "deactivated" in row.group()
        assert (await alices.get("/desk")).status_code == 303
        assert (await alices.get("/api/stories", headers=bearer(alice.token))).status_code == 401
        assert (await login_attempt(alices, "alice", PASSWORD)).status_code == 400
        # Reactivated, the old token works again and the user can log in.
        assert (await post_form(app, admin, active, active="on")).status_code == 303
        assert (await alices.get("/api/stories", headers=bearer(alice.token))).status_code == 200
        assert (await login_attempt(alices, "alice", PASSWORD)).status_code == 303


async def test_a_password_reset_ends_every_login_of_the_user(
    app: Starlette, settings: Settings, admin: Account, alice: Account
) -> None:
    password = f"/desk/users/{alice.user_id}/password"
    async with logged_in(app, alice) as (alices, _csrf):
        short = await post_form(app, admin, password, password="x")
        assert short.status_code == 422
        response = await post_form(app, admin, password, password="a brand new password")
        assert response.status_code == 303
        assert (await alices.get("/desk")).status_code == 303
        assert (await login_attempt(alices, "alice", PASSWORD)).status_code == 400
        assert (await login_attempt(alices, "alice", "a brand new password")).status_code == 303


# --- API tokens ----------------------------------------------------------------------


def token_rows(page: httpx.Response) -> dict[str, str]:
    return {
        match.group(1): match.group(2)
        for match in re.finditer(r'<tr data-token-id="(\d+)".*?>(.*?)</tr>', page.text, re.S)
    }


async def test_a_token_is_shown_once_works_and_shows_its_last_use(
    app: Starlette, settings: Settings, alice: Account
) -> None:
    async with logged_in(app, alice) as (client, csrf):
        created = await client.post(
            "/desk/tokens", data={"csrf_token": csrf, "name": "results feed"}
        )
        assert created.status_code == 201
        assert created.headers["cache-control"] == "no-store"
        match = re.search(r"<code data-new-token>([^<]+)</code>", created.text)
        assert match is not None
        token = match.group(1)
        assert token.startswith(auth.TOKEN_PREFIX)
        listing = await client.get("/desk/tokens")
        assert token not in listing.text  # shown once, never again
        rows = token_rows(listing)
        assert len(rows) == 2  # the fixture's and the new one
        new_id = max(rows, key=int)
        assert "results feed" in rows[new_id] and "never" in rows[new_id]
        response = await client.get("/api/stories", headers=bearer(token))
        assert response.status_code == 200
        used = token_rows(await client.get("/desk/tokens"))[new_id]
        assert "never" not in used and "<time" in used
    stored = [row for row in db_state(settings)["api_token"] if row[0] == int(new_id)]
    assert stored[0][3] == auth.digest(token)


async def test_a_read_only_token_made_on_the_desk_cannot_write(
    app: Starlette, alice: Account
) -> None:
    async with logged_in(app, alice) as (client, csrf):
        created = await client.post(
            "/desk/tokens", data={"csrf_token": csrf, "name": "ro", "read_only": "on"}
        )
        match = re.search(r"<code data-new-token>([^<]+)</code>", created.text)
        assert match is not None
        headers = bearer(match.group(1))
        assert (await client.get("/api/stories", headers=headers)).status_code == 200
        write = await client.post("/api/stories", json={"title": "No"}, headers=headers)
        assert write.status_code == 403


async def test_revoking_a_token_stops_it_at_once(app: Starlette, alice: Account) -> None:
    async with logged_in(app, alice) as (client, csrf):
        rows = token_rows(await client.get("/desk/tokens"))
        (token_id,) = rows
        assert (await client.get("/api/stories", headers=bearer(alice.token))).status_code == 200
        response = await client.post(f"/desk/tokens/{token_id}/revoke", data={"csrf_token": csrf})
        assert response.status_code == 303
        assert (await client.get("/api/stories", headers=bearer(alice.token))).status_code == 401
        assert "revoked" in token_rows(await client.get("/desk/tokens"))[token_id]


async def test_editors_see_only_their_tokens_and_admins_see_everyones(
    app: Starlette, settings: Settings, admin: Account, alice: Account
) -> None:
    bob = await add_account(app, "bob")
    async with logged_in(app, alice) as (alices, csrf):
        mine = token_rows(await alices.get("/desk/tokens"))
        assert len(mine) == 1
        before = db_state(settings)
        for other in (bob, admin):
            other_id = next(
                row[0] for row in db_state(settings)["api_token"] if row[1] == other.user_id
            )
            assert str(other_id) not in mine
            response = await alices.post(
                f"/desk/tokens/{other_id}/revoke", data={"csrf_token": csrf}
            )
            assert response.status_code == 404
        assert db_state(settings) == before
    async with logged_in(app, admin) as (admins, csrf):
        everyone = token_rows(await admins.get("/desk/tokens"))
        assert len(everyone) == 3
        bobs = next(row[0] for row in db_state(settings)["api_token"] if row[1] == bob.user_id)
        assert "bob" in everyone[str(bobs)]
        response = await admins.post(f"/desk/tokens/{bobs}/revoke", data={"csrf_token": csrf})
        assert response.status_code == 303
        assert (await admins.get("/api/stories", headers=bearer(bob.token))).status_code == 401
