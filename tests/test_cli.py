"""The ``liveblog`` command, run in-process against a real SQLite file in tmp_path.

``main`` runs its own event loop (``asyncio.run``), so async tests call it in a worker
thread, then check the result through the real app.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.applications import Starlette

from liveblog import __version__, auth, cli, store
from liveblog.app import create_app
from liveblog.cli import main
from liveblog.demo import DEMO_SLUG
from liveblog.models import Role
from liveblog.settings import Settings
from liveblog.state import Liveblog
from tests.support import bearer

PASSWORD = "a long enough password"
SETTINGS_ENV = ("LIVEBLOG_DATA_DIR", "LIVEBLOG_DATABASE_URL", "LIVEBLOG_BROADCAST_URL")


@pytest.fixture(autouse=True)
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # setenv first so monkeypatch restores (or removes) each variable afterwards, even
    # when `serve` writes it into os.environ itself.
    for name in SETTINGS_ENV:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("LIVEBLOG_DATA_DIR", str(tmp_path))


def feed_stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


async def run_cli(*argv: str) -> int:
    return await anyio.to_thread.run_sync(main, list(argv))


@asynccontextmanager
async def running_app(tmp_path: Path) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    app = create_app(Settings(data_dir=tmp_path))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield app, client


@asynccontextmanager
async def app_session(tmp_path: Path) -> AsyncIterator[AsyncSession]:
    """A transaction on the database the commands used, through the app itself."""
    async with running_app(tmp_path) as (app, _client):
        liveblog: Liveblog = app.state.liveblog
        async with liveblog.db.transaction() as session:
            yield session


async def create_alice(monkeypatch: pytest.MonkeyPatch) -> None:
    """``createuser`` makes alice, an editor, with the password piped in."""
    feed_stdin(monkeypatch, PASSWORD + "\n")
    assert await run_cli("createuser", "alice", "--role", "editor") == 0


# --- createuser ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_createuser_reads_password_from_piped_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_stdin(monkeypatch, PASSWORD + "\nignored second line\n")
    assert await run_cli("createuser", "Alice", "--role", "admin", "--display-name", "Alice A") == 0
    assert "alice" in capsys.readouterr().out

    async with app_session(tmp_path) as session:
        user = await auth.authenticate(session, "alice", PASSWORD)
        wrong = await auth.authenticate(session, "alice", PASSWORD + "\n")
    assert user is not None
    assert user.role == Role.admin
    assert user.display_name == "Alice A"
    assert wrong is None


@pytest.mark.anyio
async def test_createuser_makes_a_contributor_whose_token_submits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    await create_alice(monkeypatch)
    feed_stdin(monkeypatch, PASSWORD + "\n")
    assert await run_cli("createuser", "carl", "--role", "contributor") == 0
    assert "created contributor 'carl'" in capsys.readouterr().out
    assert await run_cli("token", "alice") == 0
    alice = capsys.readouterr().out.strip()
    assert await run_cli("token", "carl") == 0
    carl = capsys.readouterr().out.strip()

    async with running_app(tmp_path) as (_app, client):
        story = {"title": "Flood", "slug": "flood", "status": "live"}
        assert (await client.post("/api/stories", json=story, headers=bearer(alice))).is_success
        team = await client.put("/api/stories/flood/team/carl", headers=bearer(alice))
        wrote = await client.post(
            "/api/stories/flood/updates", json={"body": "Here."}, headers=bearer(carl)
        )
    assert team.status_code == 201
    assert (wrote.status_code, wrote.json()["state"]) == (201, "submitted")


def test_createuser_rejects_short_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_stdin(monkeypatch, "short\n")
    assert main(["createuser", "alice", "--role", "editor"]) == 1
    err = capsys.readouterr().err
    assert f"at least {auth.MIN_PASSWORD} characters" in err


def test_createuser_rejects_duplicate(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_stdin(monkeypatch, PASSWORD + "\n")
    assert main(["createuser", "alice", "--role", "editor"]) == 0
    feed_stdin(monkeypatch, PASSWORD + "\n")
    assert main(["createuser", "alice", "--role", "editor"]) == 1
    assert "already exists" in capsys.readouterr().err


def test_createuser_needs_a_role() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["createuser", "alice"])
    assert exc.value.code == 2


# --- token ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_token_prints_only_a_working_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    await create_alice(monkeypatch)
    capsys.readouterr()

    assert await run_cli("token", "alice", "--name", "automation") == 0
    out = capsys.readouterr().out
    token = out.strip()
    assert out == token + "\n"
    assert token.startswith(auth.TOKEN_PREFIX)

    async with running_app(tmp_path) as (_app, client):
        ok = await client.get("/api/stories", headers=bearer(token))
        wrong = await client.get("/api/stories", headers=bearer(token + "x"))
    assert ok.status_code == 200
    assert ok.json() == {"stories": []}
    assert wrong.status_code == 401


@pytest.mark.anyio
async def test_read_only_token_cannot_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    await create_alice(monkeypatch)
    assert await run_cli("token", "alice", "--read-only") == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]

    async with running_app(tmp_path) as (_app, client):
        read = await client.get("/api/stories", headers=bearer(token))
        write = await client.post("/api/stories", headers=bearer(token), json={"title": "No"})
    assert read.status_code == 200
    assert write.status_code == 403


def test_token_for_unknown_user_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "nobody"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no such user 'nobody'" in captured.err


@pytest.mark.anyio
async def test_token_for_inactive_user_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    await create_alice(monkeypatch)
    async with app_session(tmp_path) as session:
        user = await auth.authenticate(session, "alice", PASSWORD)
        assert user is not None
        user.active = False
        session.add(user)
    capsys.readouterr()

    assert await run_cli("token", "alice") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "inactive" in captured.err


# --- demo ----------------------------------------------------------------------------


async def demo_state(tmp_path: Path, token: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    async with running_app(tmp_path) as (_app, client):
        story = await client.get(f"/api/stories/{DEMO_SLUG}", headers=bearer(token))
        updates = await client.get(
            f"/api/stories/{DEMO_SLUG}/updates", params={"limit": 100}, headers=bearer(token)
        )
    assert story.status_code == 200, story.text
    assert updates.status_code == 200, updates.text
    return story.json(), updates.json()["updates"]


def login_from(out: str) -> tuple[str, str]:
    line = next(line for line in out.splitlines() if line.startswith("Login:"))
    _, _, rest = line.partition("username ")
    username, _, password = rest.partition(", password ")
    return username, password.strip()


@pytest.mark.anyio
async def test_demo_seeds_a_live_story_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_cli("demo", "--no-serve", "--port", "8123") == 0
    out = capsys.readouterr().out
    assert f"http://127.0.0.1:8123/stories/{DEMO_SLUG}" in out
    assert f"http://127.0.0.1:8123/desk/stories/{DEMO_SLUG}" in out
    username, first_password = login_from(out)
    assert username == "demo"

    assert await run_cli("token", "demo") == 0
    token = capsys.readouterr().out.strip()
    story, updates = await demo_state(tmp_path, token)
    assert story["status"] == "live"
    assert story["breaking"] is True
    assert story["summary"]
    assert len(updates) >= 10
    assert sum(update["pinned"] for update in updates) == 1
    assert any(update["key_event"] for update in updates)
    assert any("<blockquote>" in update["body_html"] for update in updates)
    assert any('href="https://example.org' in update["body_html"] for update in updates)

    # Again: same story, no duplicate updates, and a new password that works.
    assert await run_cli("demo", "--no-serve") == 0
    _, second_password = login_from(capsys.readouterr().out)
    assert second_password != first_password
    story_again, updates_again = await demo_state(tmp_path, token)
    assert [update["id"] for update in updates_again] == [update["id"] for update in updates]
    assert story_again["last_seq"] == story["last_seq"]

    async with app_session(tmp_path) as session:
        assert await auth.authenticate(session, "demo", second_password) is not None
        assert await auth.authenticate(session, "demo", first_password) is None
        found = await store.get_story(session, DEMO_SLUG)
        assert found is not None
        assert await store.count_updates(session, found) == len(updates)


# --- serve ---------------------------------------------------------------------------


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, dict[str, Any]]]:
    calls: list[tuple[Any, dict[str, Any]]] = []

    def fake_run(app: Any, **kwargs: Any) -> None:
        calls.append((app, kwargs))

    monkeypatch.setattr("liveblog.cli.uvicorn.run", fake_run)
    return calls


def test_serve_refuses_several_workers_with_memory_broadcast(
    capsys: pytest.CaptureFixture[str], uvicorn_calls: list[tuple[Any, dict[str, Any]]]
) -> None:
    assert main(["serve", "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert "memory://" in err
    assert "LIVEBLOG_BROADCAST_URL" in err
    assert "redis://" in err and "postgres://" in err
    assert uvicorn_calls == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve_until_healthy(
    args: list[str], data_dir: Path, check: Callable[[int], None] | None = None
) -> None:
    """Run the real console command, wait for /healthz, ``check(port)``, then stop it
    with SIGTERM."""
    port = _free_port()
    env = {**os.environ, "LIVEBLOG_SECRET_KEY": "x" * 40}
    env.pop("LIVEBLOG_DATA_DIR", None)
    command = [sys.executable, "-m", "liveblog.cli", "serve", "--port", str(port), *args]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError("liveblog serve did not come up") from None
                time.sleep(0.2)
        assert response.status_code == 200
        assert response.json()["database"] == "ok"
        assert (data_dir / "liveblog.db").exists()
        if check is not None:
            check(port)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal it caught (so -SIGTERM).
    text = output.decode(errors="replace")
    assert process.returncode in (0, -signal.SIGTERM), text
    assert "Finished server process" in text or "Stopping reloader process" in text, text


def test_serve_runs_the_app_on_the_given_port(tmp_path: Path) -> None:
    data_dir = tmp_path / "served"
    _serve_until_healthy(["--data-dir", str(data_dir)], data_dir)


def listen_backlog(port: int) -> int:
    """The accept queue's length of the socket listening on ``port`` (``ss`` shows it
    as Send-Q for a listening socket)."""
    shown = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(shown[2])


def test_serve_asks_for_a_long_accept_queue(tmp_path: Path) -> None:
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    data_dir = tmp_path / "served"
    # By default as long as the kernel allows: a crowd arriving at once waits, not retries.
    _serve_until_healthy(
        ["--data-dir", str(data_dir)],
        data_dir,
        lambda port: assert_equal(listen_backlog(port), min(cli.BACKLOG, somaxconn)),
    )
    _serve_until_healthy(
        ["--data-dir", str(data_dir), "--backlog", "123"],
        data_dir,
        lambda port: assert_equal(listen_backlog(port), min(123, somaxconn)),
    )


def assert_equal(found: int, wanted: int) -> None:
    assert found == wanted


def test_serve_reload_passes_settings_to_the_reloaded_process(tmp_path: Path) -> None:
    data_dir = tmp_path / "elsewhere"
    _serve_until_healthy(["--reload", "--data-dir", str(data_dir)], data_dir)


def test_serve_rejects_an_unknown_broadcast_backend(
    capsys: pytest.CaptureFixture[str], uvicorn_calls: list[tuple[Any, dict[str, Any]]]
) -> None:
    assert main(["serve", "--broadcast-url", "carrier-pigeon://loft"]) == 2
    assert "LIVEBLOG_BROADCAST_URL" in capsys.readouterr().err
    assert uvicorn_calls == []


# --- the parser ----------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


@pytest.mark.parametrize("argv", [[], ["frobnicate"]])
def test_unknown_or_missing_command_is_a_usage_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage: liveblog" in capsys.readouterr().err
