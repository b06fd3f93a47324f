"""Test helpers: users and tokens, logging in through the real form, a real server."""

from __future__ import annotations

import asyncio
import atexit
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette

from liveblog import auth, schema, store
from liveblog.db import Database
from liveblog.models import Role, User
from liveblog.server import uvicorn_options
from liveblog.settings import Settings
from liveblog.state import Liveblog

PASSWORD = "correct horse battery staple"
SECRET_KEY = SecretStr("test-secret-key-not-for-production")


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    """The tests' settings: data under ``data_dir``, a fixed secret key, and ``overrides``."""
    return Settings(data_dir=data_dir, secret_key=SECRET_KEY, **overrides)


DATABASE = "liveblog.db"  # the SQLite file in a data directory (Settings.sqlalchemy_url)
_template: Path | None = None
_template_lock = threading.Lock()


def _migrated_template() -> Path:
    """A data directory holding a SQLite database at the newest schema revision, made
    once per test session the way the app sets up a new database on its first start
    (``schema.upgrade`` on the app's own ``Database``, with its pragmas)."""
    global _template
    with _template_lock:
        if _template is None:
            directory = Path(tempfile.mkdtemp(prefix="liveblog-template-"))
            atexit.register(shutil.rmtree, directory, ignore_errors=True)

            async def migrate() -> None:
                db = Database(f"sqlite+aiosqlite:///{directory / DATABASE}")
                try:
                    await schema.upgrade(db.engine)
                    assert await schema.schema_state(db.engine) == schema.SchemaState.current
                finally:
                    await db.close()

            # In a thread of its own: callers may be inside a running event loop.
            done: list[BaseException | None] = []

            def run() -> None:
                try:
                    asyncio.run(migrate())
                    done.append(None)
                except BaseException as exc:  # re-raised below, in the caller
                    done.append(exc)

            thread = threading.Thread(target=run, name="migrate-template")
            thread.start()
            thread.join()
            if done[0] is not None:
                raise done[0]
            _template = directory
        return _template


def migrated_settings_for(data_dir: Path, **overrides: Any) -> Settings:
    """``settings_for``, with a SQLite database at the newest schema revision already in
    ``data_dir`` (a copy of one migrated once per session): a test's app then starts
    without running every migration again (about 0.3 s a start). Tests of setting up a
    new or outdated database (tests/test_schema.py) use ``settings_for``."""
    settings = settings_for(data_dir, **overrides)
    if settings.database_url is not None:  # not the SQLite file in data_dir
        return settings
    assert not (data_dir / DATABASE).exists(), f"{data_dir} has a database already"
    data_dir.mkdir(parents=True, exist_ok=True)
    for path in _migrated_template().glob(DATABASE + "*"):  # (and a WAL, if one was left)
        shutil.copyfile(path, data_dir / path.name)
    return settings


@dataclass
class Editor:
    username: str
    password: str
    token: str
    user_id: int


@lru_cache(maxsize=1)
def password_hash() -> str:
    """One argon2 hash of ``PASSWORD`` (the production hasher's), made once per session:
    hashing is the slow part of making users (0.2 s each on a busy 2-core machine), and
    it is a real hash, which logins verify as they would any other."""
    return auth.hash_password(PASSWORD)


async def make_editor(app: Starlette, username: str, *, role: str = "editor") -> Editor:
    """A user (``PASSWORD``, display name ``username.title()``) with an API token.

    The user is added as ``auth.create_user`` would add it, but with ``password_hash()``
    (tests/test_auth_accounts.py and tests/test_cli.py create users through the app)."""
    liveblog: Liveblog = app.state.liveblog
    name = username.strip().lower()
    assert re.fullmatch(auth.USERNAME_RE, name), f"not a valid username: {username!r}"
    async with liveblog.db.transaction() as session:
        assert await store.get_user_by_username(session, name) is None, f"{name} exists"
        user = User(
            username=name,
            display_name=auth.clean_display_name(username.title(), fallback=name),
            password_hash=password_hash(),
            role=Role(role),
        )
        session.add(user)
        await session.flush()
        token = await auth.create_api_token(session, user, name="tests")
    assert user.id is not None
    return Editor(username=username, password=PASSWORD, token=token, user_id=user.id)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match is not None, "page has no CSRF field"
    return match.group(1)


async def login(client: httpx.AsyncClient, editor: Editor) -> str:
    """Log in through the real form; returns a CSRF token for later forms."""
    page = await client.get("/login")
    token = csrf_from(page.text)
    response = await client.post(
        "/login",
        data={"username": editor.username, "password": editor.password, "csrf_token": token},
    )
    assert response.status_code == 303, response.text
    desk = await client.get("/desk")
    assert desk.status_code == 200
    return csrf_from(desk.text)


@dataclass
class LiveServer:
    url: str
    app: Starlette

    @property
    def liveblog(self) -> Liveblog:
        liveblog: Liveblog = self.app.state.liveblog
        return liveblog

    def run(self, coro: Any) -> Any:
        """Run a coroutine on the server's own event loop (for set-up needing the app)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def story_id(self, slug: str) -> int:
        """The id of the story at ``slug``, read from the server's database."""

        async def read() -> int:
            async with self.liveblog.db.session() as session:
                story = await store.get_story(session, slug)
            assert story is not None and story.id is not None
            return story.id

        return int(self.run(read()))

    loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]


@contextmanager
def run_server(
    app: Starlette, *, port: int = 0, settings: Settings | None = None
) -> Iterator[LiveServer]:
    """Serve ``app`` with a real uvicorn on a free port, in a thread with its own loop.

    The server is the one ``liveblog serve`` runs (``liveblog.server``), limited by
    ``settings`` (by default, the defaults and the environment).

    ``port`` picks the port instead: a restart on the same port (and the same data dir)
    is how the tests cut a stream and bring it back for clients that keep the address.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    options = uvicorn_options(
        settings or Settings(),
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=2,
        loop="asyncio",
    )
    config = uvicorn.Config(app, **options)
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()
    live = LiveServer(url=f"http://127.0.0.1:{port}", app=app)
    live.loop = loop

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.serve(sockets=[sock]))
        # Background tasks of libraries (sse-starlette's shutdown watcher) end with the loop.
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))

    thread = threading.Thread(target=serve, name="uvicorn-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield live
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        if thread.is_alive():  # say what holds it, rather than fail closing a running loop
            running = ", ".join(repr(task) for task in asyncio.all_tasks(loop))
            raise RuntimeError(f"the test server did not stop within 15 s; running: {running}")
        loop.close()


def server_send_buffer(server_port: int, client_port: int) -> int:
    """The kernel's send buffer (``tb`` in ``ss -m``) of the server's socket to a client."""
    out = subprocess.run(
        ["ss", "-tmnH", "state", "established", f"( sport = :{server_port} )"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    lines = out.splitlines()
    for number, line in enumerate(lines):
        if line.split()[-1].endswith(f":{client_port}"):
            memory = " ".join(lines[number : number + 2])
            return int(memory.split(",tb", 1)[1].split(",", 1)[0])
    raise AssertionError(f"no server socket to port {client_port}: {out}")


def open_stuck_reader(url: str, path: str, *, last_event_id: int | None = None) -> socket.socket:
    """A reader that asks for the stream and then never reads a byte."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    resume = "" if last_event_id is None else f"Last-Event-ID: {last_event_id}\r\n"
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{resume}\r\n".encode())
    return sock
