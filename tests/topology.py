"""The scale-out deployment, run natively: ``liveblog serve`` worker processes, Debian's
nginx rendered from the very template docker-compose mounts, a private redis-server.

Used by tests/test_topology*.py and tests/test_postgres_processes.py. Every process is
started on a free port, owned by the test that started it, and stopped by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from starlette.applications import Starlette

from liveblog.app import create_app
from liveblog.settings import Settings
from tests import factories
from tests.services import require_tool
from tests.support import Editor, bearer, make_editor

ROOT = Path(__file__).resolve().parent.parent
NGINX_MAIN = ROOT / "deploy" / "nginx" / "nginx.conf"
NGINX_TEMPLATE = ROOT / "deploy" / "nginx" / "liveblog.conf.template"
# The variables the template uses; compose's nginx service renders exactly these too
# (NGINX_ENVSUBST_FILTER), so nginx's own $variables are left alone.
NGINX_VARIABLES = ("NGINX_PORT", "LIVEBLOG_UPSTREAM_SERVERS")
SECRET = "topology-secret-key-not-for-production"
START_TIMEOUT = 30.0
WAIT = 20.0  # seconds a reader may take to receive an expected event


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} in {START_TIMEOUT}s:\n{log.read_text()}")


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@dataclass
class Listener:
    """A process of the test's own, serving HTTP on a local port."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Worker(Listener):
    """One ``liveblog serve`` process (or, with ``--workers N``, one uvicorn master)."""

    name: str
    log: Path

    def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye to its readers."""
        self.process.kill()
        self.process.wait(timeout=15)

    def stop(self) -> None:
        stop_process(self.process)


def worker_environment(settings: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LIVEBLOG_")}
    env.update(
        {
            "LIVEBLOG_DATA_DIR": str(settings.data_dir),
            "LIVEBLOG_DATABASE_URL": settings.database_url or "",
            "LIVEBLOG_BROADCAST_URL": settings.broadcast_url,
            "LIVEBLOG_SECRET_KEY": SECRET,
            "LIVEBLOG_HEARTBEAT_INTERVAL": str(settings.heartbeat_interval),
            # Every test reader comes from 127.0.0.1; the per-client cap is not under test.
            "LIVEBLOG_MAX_STREAMS_PER_CLIENT": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra or {})
    return env


def start_workers(
    settings: Settings,
    names: tuple[str, ...],
    *,
    workers_each: int = 1,
    env: dict[str, str] | None = None,
) -> list[Worker]:
    """Start one serve process per name, all at once, and wait until each listens."""
    started: list[Worker] = []
    for name in names:
        port = free_port()
        log = settings.data_dir / f"worker-{name}.log"
        command = [sys.executable, "-m", "liveblog.cli", "serve", "--port", str(port)]
        if workers_each > 1:
            command += ["--workers", str(workers_each)]
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                cwd=settings.data_dir,
                env=worker_environment(settings, env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(Worker(port, process, name=name, log=log))
    try:
        for worker in started:
            wait_for_port(worker.port, worker.process, f"worker {worker.name}", worker.log)
    except BaseException:
        for worker in started:
            worker.stop()
        raise
    return started


@contextlib.contextmanager
def running_workers(
    settings: Settings, *names: str, workers_each: int = 1, env: dict[str, str] | None = None
) -> Iterator[list[Worker]]:
    """``env``: more variables for the workers (``LIVEBLOG_*`` settings under test)."""
    workers = start_workers(settings, names, workers_each=workers_each, env=env)
    try:
        yield workers
    finally:
        for worker in workers:
            worker.stop()


# --- nginx ------------------------------------------------------------------------------


def render_nginx_template(destination: Path, variables: dict[str, str]) -> Path:
    """Render the compose template with envsubst, as the nginx image does at start."""
    envsubst = require_tool("envsubst")
    names = " ".join(f"${{{name}}}" for name in NGINX_VARIABLES)
    rendered = subprocess.run(
        [envsubst, names],
        input=NGINX_TEMPLATE.read_text(),
        env={**os.environ, **variables},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    destination.write_text(rendered)
    return destination


@dataclass
class Nginx(Listener):
    prefix: Path


def nginx_binary() -> str:
    return require_tool("nginx", path="/usr/sbin:/usr/bin:/sbin:/bin")


def nginx_prefix(prefix: Path, variables: dict[str, str]) -> Path:
    """Lay out a prefix as the nginx image's /etc/nginx: the main configuration (a copy
    of the repository's, byte for byte) and conf.d/ with the template rendered in.
    Returns the main configuration's path."""
    (prefix / "conf.d").mkdir(parents=True, exist_ok=True)
    render_nginx_template(prefix / "conf.d" / "liveblog.conf", variables)
    main = prefix / "nginx.conf"
    main.write_bytes(NGINX_MAIN.read_bytes())
    return main


@contextlib.contextmanager
def running_nginx(prefix: Path, workers: list[Worker]) -> Iterator[Nginx]:
    """Debian's nginx in front of ``workers``, non-daemon (as the image runs it), in a
    prefix of its own."""
    binary = nginx_binary()
    port = free_port()
    upstreams = " ".join(f"server 127.0.0.1:{worker.port};" for worker in workers)
    main = nginx_prefix(
        prefix, {"NGINX_PORT": f"127.0.0.1:{port}", "LIVEBLOG_UPSTREAM_SERVERS": upstreams}
    )
    log = prefix / "error.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "-p", str(prefix), "-c", str(main), "-g", "daemon off;"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port(port, process, "nginx", log)
        yield Nginx(port, process, prefix=prefix)
    finally:
        stop_process(process, signal.SIGQUIT)


# --- redis-server of the test's own -------------------------------------------------------


@dataclass
class RedisServer:
    """A private redis-server (never the shared 6379): this one gets killed."""

    port: int
    work_dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = require_tool("redis-server")
        log = self.work_dir / "redis.log"
        self.process = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.work_dir),
                "--logfile",
                str(log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.port, self.process, "redis-server", log)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=15)
            self.process = None


@contextlib.contextmanager
def running_redis(work_dir: Path) -> Iterator[RedisServer]:
    work_dir.mkdir(parents=True, exist_ok=True)
    server = RedisServer(free_port(), work_dir)
    server.start()
    try:
        yield server
    finally:
        server.kill()


# --- the newsroom's side: an editor and a story (posts: tests/factories.py) -------------


async def prepare(settings: Settings) -> Editor:
    """Set up the (migrated) database through the app itself, with one editor."""
    app: Starlette = create_app(settings.model_copy(update={"broadcast_url": "memory://"}))
    async with app.router.lifespan_context(app):
        return await make_editor(app, "alice", role="editor")


async def create_story(base_url: str, editor: Editor, slug: str) -> None:
    """A live story, made through the worker (or nginx) at ``base_url``."""
    async with httpx.AsyncClient(base_url=base_url, headers=bearer(editor.token)) as api:
        await factories.create_story(api, slug)


# --- a reader that reconnects like a browser ------------------------------------------


@dataclass
class Reader:
    """An EventSource-like client: records every event's seq (and when it arrived),
    reconnects with Last-Event-ID when its connection drops, stops at 204 (story ended)."""

    base_url: str
    slug: str
    name: str = ""
    seqs: list[int] = field(default_factory=list)
    arrivals: dict[int, float] = field(default_factory=dict)
    update_ids: list[int] = field(default_factory=list)
    connections: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def last(self) -> int | None:
        return self.seqs[-1] if self.seqs else None

    async def run(self, retry_delay: float = 0.1) -> None:
        timeout = httpx.Timeout(10.0, read=60.0)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=timeout) as client:
            while True:
                headers = {} if self.last is None else {"Last-Event-ID": str(self.last)}
                try:
                    async with client.stream(
                        "GET", f"/stories/{self.slug}/events", headers=headers
                    ) as response:
                        if response.status_code == 204:
                            return  # the story has ended and we have it all
                        if response.status_code != 200:
                            raise AssertionError(f"{self.name}: HTTP {response.status_code}")
                        self.connections += 1
                        await self._read(response)
                except (httpx.TransportError, httpx.StreamError):
                    pass  # the worker went away: reconnect, as a browser would
                await asyncio.sleep(retry_delay)

    async def _read(self, response: httpx.Response) -> None:
        seq: int | None = None
        async for line in response.aiter_lines():
            if line.startswith("retry:"):
                self.ready.set()
            elif line.startswith("id: "):
                seq = int(line[4:])
            elif line.startswith("data: ") and seq is not None:
                self.seqs.append(seq)
                self.arrivals[seq] = time.monotonic()
                data = json.loads(line[6:])
                if data.get("kind") == "update":
                    self.update_ids.append(data["id"])
                self.changed.set()
            elif line == "":
                seq = None

    async def wait_for(self, seq: int) -> None:
        async with asyncio.timeout(WAIT):
            while seq not in self.arrivals:
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def reading(readers: list[Reader]) -> AsyncIterator[list[asyncio.Task[None]]]:
    """Run ``readers`` until they finish (the story ended) or the block exits."""
    tasks = [asyncio.create_task(reader.run(), name=f"reader-{reader.name}") for reader in readers]
    try:
        async with asyncio.timeout(30):
            await asyncio.gather(*(reader.ready.wait() for reader in readers))
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
