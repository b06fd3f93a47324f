"""Logins: session rotation, rate limits with Retry-After, no user enumeration, rehash.

Everything goes through the real login form of a real app on a real SQLite file.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from pydantic import SecretStr
from starlette.applications import Starlette

from liveblog import auth
from liveblog.app import create_app
from liveblog.models import User
from liveblog.ratelimit import LoginThrottle, MemoryLimiter, RetryAfter
from liveblog.settings import Settings
from tests.security_support import (
    SESSION_COOKIE,
    Account,
    add_account,
    browser,
    db_state,
    log_in,
    login_attempt,
    set_active,
)
from tests.support import bearer, csrf_from, migrated_settings_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Small limits, so the tests reach them in a few attempts.
    return migrated_settings_for(
        tmp_path,
        login_attempts_per_account=3,
        login_attempts_per_address=8,
        login_window_seconds=600,
    )


@pytest.fixture
async def alice(app: Starlette) -> Account:
    return await add_account(app, "alice")


@pytest.fixture
async def bob(app: Starlette) -> Account:
    return await add_account(app, "bob")


def login_rows(settings: Settings, user_id: int) -> int:
    return sum(1 for row in db_state(settings)["login_session"] if row[2] == user_id)


# --- session rotation ----------------------------------------------------------------


async def test_each_login_gets_a_new_session_id_and_the_old_row_is_dropped(
    app: Starlette, settings: Settings, alice: Account, bob: Account
) -> None:
    async with browser(app) as client:
        await log_in(client, alice)
        first = client.cookies[SESSION_COOKIE]
        await log_in(client, alice)
        second = client.cookies[SESSION_COOKIE]
        assert second != first
        assert login_rows(settings, alice.user_id) == 1
        # The first id is dead even when replayed from another browser.
        async with browser(app, cookies={SESSION_COOKIE: first}) as replay:
            assert (await replay.get("/desk")).status_code == 303
        # Logging in as someone else in the same browser ends alice's login there.
        await log_in(client, bob)
        assert login_rows(settings, alice.user_id) == 0
        assert login_rows(settings, bob.user_id) == 1
        async with browser(app, cookies={SESSION_COOKIE: second}) as replay:
            assert (await replay.get("/desk")).status_code == 303


async def test_a_planted_session_cookie_is_not_adopted(app: Starlette, alice: Account) -> None:
    # Session fixation: the attacker sets a cookie value of his choosing before the login.
    planted = "attacker-chosen-value-attacker-chosen-value"
    async with browser(app, cookies={SESSION_COOKIE: planted}) as victim:
        token = csrf_from((await victim.get("/login")).text)
        response = await victim.post(
            "/login", data={"username": "alice", "password": alice.password, "csrf_token": token}
        )
        assert response.status_code == 303
        issued = response.cookies[SESSION_COOKIE]
        assert issued != planted and len(issued) >= 32
    async with browser(app, cookies={SESSION_COOKIE: planted}) as attacker:
        assert (await attacker.get("/desk")).status_code == 303


async def test_login_rotates_the_csrf_secret(app: Starlette, alice: Account) -> None:
    async with browser(app) as client:
        before_token = csrf_from((await client.get("/login")).text)
        before_cookie = client.cookies[auth.CSRF_COOKIE]
        response = await client.post(
            "/login",
            data={"username": "alice", "password": alice.password, "csrf_token": before_token},
        )
        assert response.status_code == 303
        assert client.cookies[auth.CSRF_COOKIE] != before_cookie
        # A form token minted before the login no longer passes ...
        stale = await client.post("/desk/stories", data={"csrf_token": before_token, "title": "x"})
        assert stale.status_code == 403
        # ... the one on the page after it does.
        fresh = csrf_from((await client.get("/desk")).text)
        ok = await client.post("/desk/stories", data={"csrf_token": fresh, "title": "Fresh"})
        assert ok.status_code == 303


async def test_cookies_are_secure_when_served_over_https(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key=SecretStr("k" * 32), https=True)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        account = await add_account(app, "alice")
        async with browser(app, base_url="https://testserver") as client:
            page = await client.get("/login")
            token = csrf_from(page.text)
            response = await client.post(
                "/login",
                data={"username": "alice", "password": account.password, "csrf_token": token},
            )
    assert response.status_code == 303
    cookies = response.headers.get_list("set-cookie") + page.headers.get_list("set-cookie")
    names = {header.split("=", 1)[0] for header in cookies}
    assert {SESSION_COOKIE, auth.CSRF_COOKIE} <= names
    for header in cookies:
        attributes = {part.strip().lower() for part in header.split(";")}
        assert {"secure", "httponly", "samesite=lax"} <= attributes, header


# --- rate limits ---------------------------------------------------------------------


async def test_failed_logins_per_account_get_429_with_retry_after(
    app: Starlette, settings: Settings, alice: Account
) -> None:
    async with browser(app) as client:
        for _ in range(3):
            assert (await login_attempt(client, "alice", "wrong password")).status_code == 400
        before = db_state(settings)
        blocked = await login_attempt(client, "alice", "wrong password")
        assert blocked.status_code == 429
        retry = int(blocked.headers["retry-after"])
        assert 0 < retry <= settings.login_window_seconds
        assert "Too many login attempts" in blocked.text
        # While blocked even the right password gets 429: no oracle for a guesser.
        right = await login_attempt(client, "alice", alice.password)
        assert right.status_code == 429
        assert SESSION_COOKIE not in client.cookies
        assert db_state(settings) == before
    # Another account from another address is unaffected.
    async with browser(app, address="10.9.8.7") as other:
        assert (await login_attempt(other, "bob", "wrong password")).status_code == 400


async def test_unknown_usernames_are_limited_exactly_like_real_ones(
    app: Starlette, alice: Account
) -> None:
    async def statuses(username: str, address: str) -> list[int]:
        async with browser(app, address=address) as client:
            return [
                (await login_attempt(client, username, "wrong password")).status_code
                for _ in range(4)
            ]

    assert await statuses("alice", "10.0.0.1") == await statuses("nobody", "10.0.0.2")
    assert await statuses("nobody-else", "10.0.0.3") == [400, 400, 400, 429]


async def test_failed_logins_per_address_get_429_whatever_the_username(
    app: Starlette, alice: Account
) -> None:
    async with browser(app, address="192.0.2.10") as sprayer:
        for n in range(8):
            assert (await login_attempt(sprayer, f"user{n}", "password1")).status_code == 400
        blocked = await login_attempt(sprayer, "alice", alice.password)
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) > 0
    # The account itself was not locked by the blocked address: alice logs in elsewhere.
    async with browser(app, address="192.0.2.11") as elsewhere:
        assert (await login_attempt(elsewhere, "alice", alice.password)).status_code == 303


async def test_a_successful_login_clears_the_accounts_count(app: Starlette, alice: Account) -> None:
    async with browser(app) as client:
        for _ in range(2):
            assert (await login_attempt(client, "Alice ", "typo")).status_code == 400
        assert (await login_attempt(client, "alice", alice.password)).status_code == 303
        for _ in range(3):
            assert (await login_attempt(client, "alice", "typo")).status_code == 400
        assert (await login_attempt(client, "ALICE", "typo")).status_code == 429


async def test_a_successful_login_does_not_clear_the_addresss_count(
    app: Starlette, settings: Settings, alice: Account
) -> None:
    """One valid account must not wipe the count of its holder's guesses at others
    (docs/security.md: a success clears the account's count, never the address's)."""
    budget = settings.login_attempts_per_address
    async with browser(app, address="192.0.2.20") as sprayer:
        for n in range(budget - 2):  # one guess per username: no account reaches its limit
            assert (await login_attempt(sprayer, f"user{n}", "password1")).status_code == 400
        assert (await login_attempt(sprayer, "alice", alice.password)).status_code == 303
        # The success was the address's attempt budget-1: one is left, then 429.
        assert (await login_attempt(sprayer, "someone", "password1")).status_code == 400
        assert (await login_attempt(sprayer, "someone-else", "password1")).status_code == 429
        assert (await login_attempt(sprayer, "alice", alice.password)).status_code == 429
    # The account is not what is blocked: alice still logs in from elsewhere.
    async with browser(app, address="192.0.2.21") as elsewhere:
        assert (await login_attempt(elsewhere, "alice", alice.password)).status_code == 303


async def test_memory_limiter_is_a_sliding_window() -> None:
    now = [1000.0]
    limiter = MemoryLimiter(limit=2, window=60, clock=lambda: now[0])
    assert await limiter.hit("k") is None
    now[0] += 10
    assert await limiter.hit("k") is None
    now[0] += 5
    assert await limiter.hit("k") == RetryAfter(45)  # the first hit leaves at t+60
    assert await limiter.hit("other") is None
    now[0] += 45
    assert await limiter.hit("k") is None  # one slot freed; refused hits never counted
    assert await limiter.hit("k") == RetryAfter(10)
    await limiter.reset("k")
    assert await limiter.hit("k") is None


async def test_memory_limiter_memory_is_bounded() -> None:
    now = [0.0]
    limiter = MemoryLimiter(limit=1, window=10, clock=lambda: now[0], max_keys=100)
    for n in range(1000):
        await limiter.hit(f"key{n}")
        now[0] += 0.001
    assert len(limiter) <= 100
    now[0] += 20  # all expired: the next new key sweeps them
    await limiter.hit("fresh")
    assert len(limiter) == 1


async def test_a_blocked_address_does_not_lock_the_account() -> None:
    throttle = LoginThrottle(
        per_account=MemoryLimiter(limit=2, window=60),
        per_address=MemoryLimiter(limit=1, window=60),
    )
    assert await throttle.attempt("alice", "198.51.100.1") is None
    for _ in range(5):
        assert await throttle.attempt("alice", "198.51.100.1") is not None
    assert await throttle.attempt("alice", "198.51.100.2") is None


# --- no user enumeration -------------------------------------------------------------


@pytest.fixture
async def roomy_app(tmp_path: Path) -> AsyncIterator[Starlette]:
    settings = Settings(
        data_dir=tmp_path,
        secret_key=SecretStr("k" * 32),
        login_attempts_per_account=1000,
        login_attempts_per_address=1000,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


async def test_login_failures_take_the_same_time_for_real_unknown_and_inactive_users(
    roomy_app: Starlette,
) -> None:
    """A failed login costs one argon2 verification whether or not the user exists.

    Without the dummy verification an unknown name answered in 5.5 ms against 308 ms
    for a wrong password (measured once, on a busy machine); the bound below (medians
    within a factor of 2) catches that while tolerating a busy 2-core machine.
    """
    await add_account(roomy_app, "alice")
    inactive = await add_account(roomy_app, "ivan")
    await set_active(roomy_app, inactive.user_id, False)
    samples: dict[str, list[float]] = {"alice": [], "nobody": [], "ivan": []}
    bodies: dict[str, set[str]] = {name: set() for name in samples}
    async with browser(roomy_app) as client:
        token = csrf_from((await client.get("/login")).text)
        for _ in range(5):
            for name in samples:
                started = time.perf_counter()
                response = await client.post(
                    "/login",
                    data={"username": name, "password": "wrong horse", "csrf_token": token},
                )
                samples[name].append(time.perf_counter() - started)
                assert response.status_code == 400
                bodies[name].add(response.text.replace(name, "NAME"))
    medians = {name: statistics.median(times) for name, times in samples.items()}
    print("login failure medians (ms):", {k: round(v * 1000, 1) for k, v in medians.items()})
    assert max(medians.values()) < 2 * min(medians.values()), medians
    # And the page says the same thing, apart from echoing the typed name.
    assert len(set().union(*bodies.values())) == 1


async def test_a_deactivated_users_right_password_gets_the_same_answer(
    app: Starlette, alice: Account
) -> None:
    await set_active(app, alice.user_id, False)
    async with browser(app) as client:
        inactive = await login_attempt(client, "alice", alice.password)
        unknown = await login_attempt(client, "nobody", alice.password)
    assert inactive.status_code == unknown.status_code == 400
    assert inactive.text.replace("alice", "X") == unknown.text.replace("nobody", "X")


# --- hashes --------------------------------------------------------------------------


async def test_login_rehashes_a_password_hashed_with_old_parameters(
    app: Starlette, alice: Account
) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    liveblog = app.state.liveblog
    async with liveblog.db.transaction() as session:
        user = await session.get(User, alice.user_id)
        assert user is not None
        user.password_hash = weak.hash(alice.password)
        session.add(user)
    async with browser(app) as client:
        await log_in(client, alice)
    async with liveblog.db.session() as session:
        user = await session.get(User, alice.user_id)
        assert user is not None
        stored = user.password_hash
    default = PasswordHasher()
    assert "m=8192" not in stored and f"m={default.memory_cost}" in stored
    assert not default.check_needs_rehash(stored)
    assert default.verify(stored, alice.password)


async def test_only_hashes_are_stored(app: Starlette, settings: Settings, alice: Account) -> None:
    async with browser(app) as client:
        await log_in(client, alice)
        session_token = client.cookies[SESSION_COOKIE]
    # The database file and its write-ahead log: everything SQLite has written.
    raw = b"".join(path.read_bytes() for path in settings.data_dir.glob("liveblog.db*"))
    for secret in (alice.password, alice.token, session_token):
        assert secret.encode() not in raw
    assert auth.digest(alice.token).encode() in raw


async def test_deactivation_stops_sessions_and_tokens_at_once(
    app: Starlette, settings: Settings, alice: Account
) -> None:
    async with browser(app) as client:
        await log_in(client, alice)
        assert (await client.get("/desk")).status_code == 200
        assert (await client.get("/api/stories", headers=bearer(alice.token))).status_code == 200
        await set_active(app, alice.user_id, False)
        assert (await client.get("/desk")).status_code == 303
        assert (await client.get("/api/stories", headers=bearer(alice.token))).status_code == 401
    assert login_rows(settings, alice.user_id) == 0
