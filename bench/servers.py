"""The servers under test, each a child process the bench starts and stops itself.

* liveblog: ``uvicorn`` with one worker, uvloop and httptools, on a fresh SQLite file
  (set up in-process through the app itself: schema, one editor with an API token).
* nginx + nchan: Debian's nginx with the nchan module, one worker, not daemonised, with
  a temporary prefix and ``bench/nchan.conf`` rendered into it.
* redis-server on a free port, for the two-worker scenario (never the shared 6379,
  where other test runs publish on the same channel names).

``Proc`` reads a process's resident memory and CPU time from ``/proc``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from string import Template

from pydantic import SecretStr

from bench.client import raise_open_files_limit
from liveblog import auth
from liveblog.app import create_app
from liveblog.models import Role
from liveblog.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
NCHAN_CONF = Path(__file__).resolve().parent / "nchan.conf"
NCHAN_MODULE = Path("/usr/lib/nginx/modules/ngx_nchan_module.so")
SECRET = "bench-secret-key-not-for-production"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
OPEN_FILES = 65536
# Both servers ask for the same accept queue, as long as `liveblog serve` asks for; the
# kernel caps it at net.core.somaxconn (bench/run.py reports that and the overflows).
BACKLOG = 65535


def somaxconn() -> int:
    return int(Path("/proc/sys/net/core/somaxconn").read_text())


def listen_overflows() -> int:
    """Connections this machine's kernel dropped because an accept queue was full."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=True):
        if names.startswith("TcpExt:"):
            counters = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return int(counters["ListenOverflows"])
    raise RuntimeError("no TcpExt counters in /proc/net/netstat")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Proc:
    """A started server: the process to stop, and the one doing the work (to measure)."""

    name: str
    popen: subprocess.Popen[bytes]
    port: int
    worker_pid: int

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.worker_pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError(f"no VmRSS for {self.name}")

    def cpu_times(self) -> tuple[float, float]:
        """Seconds of CPU the process used so far: (user, system)."""
        stat = Path(f"/proc/{self.worker_pid}/stat").read_text()
        # Fields after the command name (which may hold spaces) start at field 3.
        fields = stat.rsplit(")", 1)[1].split()
        return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def _raise_limit_in_child() -> None:
    raise_open_files_limit(OPEN_FILES)


def _wait_for_port(proc: subprocess.Popen[bytes], port: int, what: str) -> None:
    """Block until ``proc`` accepts connections (the bench has nothing else to do yet)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            time.sleep(0.05)
            continue
        return
    raise RuntimeError(f"{what} did not listen on port {port}")


def liveblog_settings(data_dir: Path, broadcast_url: str = "memory://") -> Settings:
    return Settings(data_dir=data_dir, secret_key=SecretStr(SECRET), broadcast_url=broadcast_url)


async def prepare_liveblog(data_dir: Path) -> str:
    """Create the database and an editor; returns the editor's API token."""
    app = create_app(liveblog_settings(data_dir))
    async with app.router.lifespan_context(app):
        liveblog = app.state.liveblog
        async with liveblog.db.transaction() as session:
            user = await auth.create_user(
                session,
                username="bench",
                password="bench password, never used",
                role=Role.editor,
                display_name="Bench Editor",
            )
            token: str = await auth.create_api_token(session, user, name="bench")
    return token


def start_liveblog(
    data_dir: Path, *, port: int | None = None, broadcast_url: str = "memory://"
) -> Proc:
    port = port or free_port()
    env = {
        **os.environ,
        "LIVEBLOG_DATA_DIR": str(data_dir),
        "LIVEBLOG_SECRET_KEY": SECRET,
        "LIVEBLOG_BROADCAST_URL": broadcast_url,
        # Every bench reader comes from 127.0.0.1: lift the per-address stream cap.
        "LIVEBLOG_MAX_STREAMS_PER_CLIENT": "0",
    }
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "liveblog.app:app_from_environment",
        "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--log-level", "warning", "--backlog", str(BACKLOG),
        "--timeout-graceful-shutdown", "3",
    ]  # fmt: skip
    popen = subprocess.Popen(command, cwd=ROOT, env=env, preexec_fn=_raise_limit_in_child)
    _wait_for_port(popen, port, "liveblog")
    return Proc("liveblog", popen, port, popen.pid)


def nchan_available() -> str | None:
    """Why nginx + nchan cannot run here, or None when they can."""
    if shutil.which("nginx") is None:
        return "nginx is not installed (apt-get install nginx-light)"
    if not NCHAN_MODULE.exists():
        return "the nchan module is not installed (apt-get install libnginx-mod-nchan)"
    return None


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def start_nchan(prefix: Path, *, port: int | None = None) -> Proc:
    port = port or free_port()
    prefix.mkdir(parents=True, exist_ok=True)
    # Where the hard limit cannot be raised (no CAP_SYS_RESOURCE), nginx gets what we have.
    open_files = raise_open_files_limit(OPEN_FILES)
    conf = Template(NCHAN_CONF.read_text()).substitute(
        module=NCHAN_MODULE, prefix=prefix, port=port, open_files=open_files, backlog=BACKLOG
    )
    (prefix / "nginx.conf").write_text(conf)
    command = ["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", "stderr"]
    popen = subprocess.Popen(command, env=os.environ, preexec_fn=_raise_limit_in_child)
    _wait_for_port(popen, port, "nginx")
    deadline = time.monotonic() + 10
    while not (workers := _children(popen.pid)):
        if time.monotonic() > deadline:
            raise RuntimeError("nginx started no worker")
        time.sleep(0.05)
    return Proc("nchan", popen, port, workers[0])


def start_redis(work_dir: Path) -> Proc:
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    command = [
        "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", "--dir", str(work_dir), "--loglevel", "warning",
    ]  # fmt: skip
    popen = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _wait_for_port(popen, port, "redis-server")
    return Proc("redis", popen, port, popen.pid)
