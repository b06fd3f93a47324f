"""The servers under test, each a child process the bench starts and stops itself.

* liveblog: ``liveblog serve`` as a user runs it (its own guarded httptools protocol,
  log level info with an access line per request, backlog 65535), one worker or
  ``--workers N``, on a fresh SQLite file (set up in-process through the app itself:
  schema, one editor with an API token); what it logs goes to a file.
* nginx + nchan: Debian's nginx with the nchan module, one worker (or N), not
  daemonised, with a temporary prefix and ``bench/nchan.conf`` rendered into it.
* redis-server on a free port, for the two-worker scenario (never the shared 6379,
  where other test runs publish on the same channel names).

``Proc`` reads the resident memory and CPU time of the processes doing a server's work
from ``/proc`` (summed over them: liveblog's or nginx's workers, Pushpin's processes).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
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


class Proc:
    """A started server: the process to stop, and the ones doing the work (to measure,
    summed: each worker of ``--workers N``, each of Pushpin's processes). ``workers`` is
    one pid or a list of them."""

    def __init__(
        self,
        name: str,
        popen: subprocess.Popen[bytes],
        port: int,
        workers: int | list[int],
        also: list[subprocess.Popen[bytes]] | None = None,  # stopped after ``popen``
    ) -> None:
        self.name = name
        self.popen = popen
        self.port = port
        self.worker_pids = [workers] if isinstance(workers, int) else list(workers)
        self.also = also or []

    @property
    def worker_pid(self) -> int:
        return self.worker_pids[0]

    def rss_kib(self) -> int:
        return sum(rss_kib(pid) for pid in self.worker_pids)

    def cpu_times(self) -> tuple[float, float]:
        """Seconds of CPU the processes used so far: (user, system)."""
        user = system = 0.0
        for pid in self.worker_pids:
            one = cpu_times(pid)
            user += one[0]
            system += one[1]
        return user, system

    def stop(self) -> None:
        for popen in (self.popen, *self.also):
            if popen.poll() is None:
                popen.send_signal(signal.SIGTERM)
                try:
                    popen.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    popen.kill()
                    popen.wait()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_times(pid: int) -> tuple[float, float]:
    stat = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the command name (which may hold spaces) start at field 3.
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


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


def liveblog_command() -> list[str]:
    """``liveblog``, the console script installed next to this Python."""
    script = Path(sys.executable).with_name("liveblog")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "liveblog.cli"]


def start_liveblog(
    data_dir: Path,
    log: Path,
    *,
    port: int | None = None,
    broadcast_url: str = "memory://",
    workers: int = 1,
    grip_url: str | None = None,
) -> Proc:
    """``liveblog serve`` as a user starts it, settings in the environment; what it logs
    (an access line per request at the default level) goes to ``log``: a terminal would
    be written to as well, and a file is the fair stand-in."""
    port = port or free_port()
    env = {
        **os.environ,
        "LIVEBLOG_DATA_DIR": str(data_dir),
        "LIVEBLOG_SECRET_KEY": SECRET,
        "LIVEBLOG_BROADCAST_URL": broadcast_url,
        # Every bench reader comes from 127.0.0.1, where a deployment's readers come
        # from many addresses: lift the per-address cap on open streams.
        "LIVEBLOG_MAX_STREAMS_PER_CLIENT": "0",
    }
    if grip_url is not None:
        env["LIVEBLOG_GRIP_URL"] = grip_url
    command = [*liveblog_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        popen = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_raise_limit_in_child,
        )
    try:
        _wait_for_port(popen, port, f"liveblog (log: {log})")
        if workers == 1:
            return Proc("liveblog", popen, port, [popen.pid])
        # uvicorn's supervisor starts the workers (multiprocessing's spawn): its children
        # that run Python code, not multiprocessing's resource tracker.
        found = wait_for_children(lambda: _workers(popen.pid), workers, "liveblog", within=30)
        return Proc("liveblog", popen, port, found)
    except BaseException:
        popen.kill()
        popen.wait()
        raise


def _workers(pid: int) -> list[int]:
    found = []
    for child in _children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"resource_tracker" not in cmdline:
            found.append(child)
    return found


def nchan_available() -> str | None:
    """Why nginx + nchan cannot run here, or None when they can."""
    if shutil.which("nginx") is None:
        return "nginx is not installed (apt-get install nginx-light)"
    if not NCHAN_MODULE.exists():
        return "the nchan module is not installed (apt-get install libnginx-mod-nchan)"
    return None


def wait_for_children(
    find: Callable[[], list[int]], count: int, what: str, *, within: float = 10
) -> list[int]:
    """The processes ``find`` returns, once there are ``count`` of them (a server's
    workers, started after it listens)."""
    deadline = time.monotonic() + within
    while len(found := find()) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} started {len(found)} of its {count} processes")
        time.sleep(0.05)
    return found


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def start_nchan(prefix: Path, *, port: int | None = None, workers: int = 1) -> Proc:
    port = port or free_port()
    prefix.mkdir(parents=True, exist_ok=True)
    # Where the hard limit cannot be raised (no CAP_SYS_RESOURCE), nginx gets what we have.
    open_files = raise_open_files_limit(OPEN_FILES)
    conf = Template(NCHAN_CONF.read_text()).substitute(
        module=NCHAN_MODULE,
        prefix=prefix,
        port=port,
        open_files=open_files,
        backlog=BACKLOG,
        workers=workers,
    )
    (prefix / "nginx.conf").write_text(conf)
    command = ["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", "stderr"]
    popen = subprocess.Popen(command, env=os.environ, preexec_fn=_raise_limit_in_child)
    _wait_for_port(popen, port, "nginx")
    found = wait_for_children(lambda: _children(popen.pid), workers, "nginx")
    return Proc("nchan", popen, port, found)


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
    return Proc("redis", popen, port, [popen.pid])
