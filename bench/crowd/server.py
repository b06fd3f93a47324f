"""The server as a user starts it, ``liveblog serve --data-dir DIR --port PORT``, and what
the bench reads from the outside: its memory, its sockets, its log.

Nothing but the data directory and the port is chosen for it: no ``LIVEBLOG_*``
variable from the bench's environment reaches it, its logging is the default one, and
its stderr goes to a file the bench reads after it stops.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.servers import free_port

HOST = "127.0.0.1"
TCP_STATES = {
    "01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
    "05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
    "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING",
}  # fmt: skip
POOL_TROUBLE = ("QueuePool limit", "TimeoutError")


def liveblog_command() -> str:
    """The venv's ``liveblog`` script, next to the interpreter running the bench."""
    script = Path(sys.executable).parent / "liveblog"
    if not script.exists():
        raise RuntimeError(f"no {script}: install the project (pip install -e .) first")
    return str(script)


@dataclass
class Socket:
    peer: int  # the client's port
    state: str
    unsent: int  # bytes in the server's send queue (tx_queue)


def server_sockets(port: int) -> list[Socket]:
    """The server's side of each TCP connection to ``port`` (a client's port may appear
    twice: a connection in TIME_WAIT and a newer one)."""
    return tcp_table(port)[0]


def tcp_table(port: int) -> tuple[list[Socket], dict[int, int]]:
    """The server's sockets, as ``server_sockets``, and the bytes received but not read
    yet by each client's ESTABLISHED socket to ``port``, by the client's port."""
    found: list[Socket] = []
    unread: dict[int, int] = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, queues = fields[1], fields[2], fields[3], fields[4]
        local_port = int(local.rsplit(":", 1)[1], 16)
        remote_port = int(remote.rsplit(":", 1)[1], 16)
        tx_queue, rx_queue = (int(value, 16) for value in queues.split(":"))
        if local_port == port and state != "0A":
            found.append(Socket(remote_port, TCP_STATES.get(state, state), tx_queue))
        elif remote_port == port and state == "01":
            unread[local_port] = rx_queue
    return found, unread


@dataclass
class LogScan:
    """What the server's stderr says, read once it has stopped."""

    lines: int = 0
    pool_waits: int = 0  # "QueuePool limit" or "TimeoutError"
    errors: int = 0  # lines at ERROR level, and tracebacks
    replay_lines: list[str] = field(default_factory=list)  # liveblog's own, at shutdown
    first_errors: list[str] = field(default_factory=list)


def scan_log(path: Path) -> LogScan:
    scan = LogScan()
    with path.open(errors="replace") as log:
        for line in log:
            scan.lines += 1
            line = line.rstrip("\n")
            if any(mark in line for mark in POOL_TROUBLE):
                scan.pool_waits += 1
            if line.startswith("ERROR") or line.startswith("Traceback"):
                scan.errors += 1
                if len(scan.first_errors) < 3:
                    scan.first_errors.append(line[:200])
            # An access-log line names a path; liveblog's own lines say what they count.
            if "replay" in line.lower() and '"GET ' not in line and len(scan.replay_lines) < 10:
                scan.replay_lines.append(line[:300])
    return scan


class Server:
    """One ``liveblog serve`` process, started and stopped by the bench."""

    def __init__(
        self, data_dir: Path, log_path: Path, *, env: dict[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.env = env or {}  # set on top of the bench's environment (none by default)
        self.port = free_port()
        self.popen: subprocess.Popen[bytes] | None = None
        self.exit_status: int | None = None
        self.stop_seconds = 0.0
        self.started = 0.0

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> None:
        env = {
            name: value for name, value in os.environ.items() if not name.startswith("LIVEBLOG_")
        } | self.env
        command = [
            liveblog_command(), "serve", "--data-dir", str(self.data_dir), "--port", str(self.port)
        ]  # fmt: skip
        self.started = time.monotonic()
        with self.log_path.open("ab") as log:
            # The open-files limit is the bench's own, raised before this (inherited).
            self.popen = subprocess.Popen(
                command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )

    async def answering(self, *, within: float = 60.0) -> float:
        """Wait until ``/healthz`` answers 200; returns the seconds since ``start``."""
        assert self.popen is not None
        for _ in range(int(within / 0.1)):
            if self.popen.poll() is not None:
                raise RuntimeError(
                    f"liveblog serve exited with status {self.popen.returncode}:\n{self.tail()}"
                )
            if await self.healthy():
                return time.monotonic() - self.started
            await asyncio.sleep(0.1)
        self.kill()
        raise RuntimeError(f"liveblog serve did not answer within {within:.0f} s:\n{self.tail()}")

    async def healthy(self) -> bool:
        try:
            async with asyncio.timeout(2):
                status, _ = await request(self.port, "GET", "/healthz", {})
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
            return False
        return status == 200

    def rss_kib(self) -> int:
        """Resident memory now (0 once it has exited)."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return 0
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def cpu_seconds(self) -> float:
        """User plus system CPU used so far."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return 0.0
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, *, within: float = 30.0) -> int:
        """Ctrl+C, as a user stops it, and wait for it to exit (kill it after ``within``)."""
        if self.popen is None:
            return 0
        started = time.monotonic()
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout=within)
            except subprocess.TimeoutExpired:
                self.kill()
        self.stop_seconds = time.monotonic() - started
        self.exit_status = self.popen.returncode
        return self.exit_status

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


async def request(
    port: int, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, bytes]:
    """One request on its own connection; the answer's status and body (not chunked)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        length = f"Content-Length: {len(body)}\r\n" if body else ""
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n{extra}{length}"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        head = await reader.readuntil(b"\r\n\r\n")
        answer = await reader.read()
        return int(head.split(b" ", 2)[1]), answer
    finally:
        writer.close()


class RssSampler:
    """The server's resident memory every ``period`` seconds, in a task, until stopped
    (or for ``limit`` seconds at most)."""

    def __init__(self, server: Server, period: float = 0.15, limit: float = 600.0) -> None:
        self.server = server
        self.period = period
        self.limit = limit
        self.peak_kib = 0
        self.samples = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        for _ in range(round(self.limit / self.period)):
            self.peak_kib = max(self.peak_kib, self.server.rss_kib())
            self.samples += 1
            await asyncio.sleep(self.period)

    async def stop(self) -> int:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.peak_kib = max(self.peak_kib, self.server.rss_kib())
        return self.peak_kib
