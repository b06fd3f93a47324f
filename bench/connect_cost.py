"""What a connecting reader costs the server: ``python -m bench.connect_cost``.

Starts ``liveblog serve`` as a user would (its default logging: INFO, an access line
per request) and, for reference, nginx + nchan, then opens N raw-socket readers of one
story's event stream, paced like a crowd after a push alert (``--batch`` connections
every ``--every`` seconds), and reports for each server:

* the time until every reader had its response head,
* the server's CPU time (utime + stime from ``/proc``) per connection, over that time,
* its resident memory growth per reader once they have been idle ``--settle`` seconds,
* the connections the kernel dropped because the accept queue was full
  (``ListenOverflows``; machine-wide, so other loads on the machine count too).

The client is one epoll loop in this process: it costs far less than either server, and
measuring it apart would need a second process anyway.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import servers
from bench.client import raise_open_files_limit

HOST = "127.0.0.1"
SLUG = "connect-cost"


@dataclass
class Result:
    server: str
    readers: int
    connected: int
    seconds: float  # until the last head
    cpu_us_per_connection: float
    user_us: float
    system_us: float
    kib_per_reader: float
    overflows: int
    rss_before_kib: int
    rss_after_kib: int


def _cpu(proc: servers.Proc) -> tuple[float, float]:
    return proc.cpu_times()


def connect_readers(
    port: int, path: str, count: int, batch: int, every: float, within: float = 60.0
) -> tuple[list[socket.socket], int, float]:
    """Open ``count`` readers of ``path``; returns them, how many got a head, and when
    the last did (seconds from the first connect)."""
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAccept: text/event-stream\r\n\r\n"
    payload = request.encode()
    ep = select.epoll()
    socks: dict[int, socket.socket] = {}
    heads: dict[int, bytes] = {}
    done: set[int] = set()
    opened = 0
    start = time.monotonic()
    next_batch = start
    last_head = start
    deadline = start + within
    while len(done) < count and time.monotonic() < deadline:
        now = time.monotonic()
        while opened < count and now >= next_batch:
            for _ in range(min(batch, count - opened)):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                err = sock.connect_ex((HOST, port))
                if err not in (0, errno.EINPROGRESS):
                    raise OSError(err, os.strerror(err))
                fd = sock.fileno()
                socks[fd] = sock
                heads[fd] = b""
                ep.register(fd, select.EPOLLOUT)
                opened += 1
            next_batch += every
        timeout = max(0.0, min(next_batch - time.monotonic(), 0.05)) if opened < count else 0.05
        for fd, events in ep.poll(timeout):
            sock = socks[fd]
            if events & select.EPOLLOUT:
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    raise OSError("connect failed")
                sock.send(payload)
                ep.modify(fd, select.EPOLLIN)
                continue
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            if not data:
                ep.unregister(fd)
                done.add(fd)  # closed: counted, but not as connected
                heads[fd] = b"closed"
                continue
            if fd in done:
                continue
            seen = heads[fd] + data
            if b"\r\n\r\n" in seen:
                done.add(fd)
                last_head = time.monotonic()
                heads[fd] = seen[:12]
            else:
                heads[fd] = seen
    # Keep draining the sockets' data from here on is not needed: they go idle.
    for fd in socks:
        with contextlib.suppress(OSError, KeyError):
            ep.unregister(fd)
    ep.close()
    good = sum(1 for fd in done if heads[fd].startswith(b"HTTP/1.1 200"))
    return list(socks.values()), good, last_head - start


def measure(
    proc: servers.Proc, path: str, count: int, batch: int, every: float, settle: float
) -> Result:
    time.sleep(1.0)
    rss0 = proc.rss_kib()
    cpu0 = _cpu(proc)
    over0 = servers.listen_overflows()
    socks, good, seconds = connect_readers(proc.port, path, count, batch, every)
    cpu1 = _cpu(proc)
    over1 = servers.listen_overflows()
    time.sleep(settle)
    rss1 = proc.rss_kib()
    for sock in socks:
        sock.close()
    user = (cpu1[0] - cpu0[0]) * 1e6 / count
    system = (cpu1[1] - cpu0[1]) * 1e6 / count
    return Result(
        server=proc.name,
        readers=count,
        connected=good,
        seconds=round(seconds, 3),
        cpu_us_per_connection=round(user + system, 1),
        user_us=round(user, 1),
        system_us=round(system, 1),
        kib_per_reader=round((rss1 - rss0) / count, 2),
        overflows=over1 - over0,
        rss_before_kib=rss0,
        rss_after_kib=rss1,
    )


def start_liveblog_serve(data: Path, log: Path, extra_env: dict[str, str]) -> servers.Proc:
    """``liveblog serve`` as a user starts it, on a fresh database with one live story."""
    token = asyncio.run(servers.prepare_liveblog(data))
    port = servers.free_port()
    env = {
        **os.environ,
        "LIVEBLOG_DATA_DIR": str(data),
        "LIVEBLOG_SECRET_KEY": servers.SECRET,
        "LIVEBLOG_MAX_STREAMS_PER_CLIENT": "0",
        **extra_env,
    }
    liveblog = str(Path(sys.executable).parent / "liveblog")
    command = [liveblog, "serve", "--host", HOST, "--port", str(port)]
    out = log.open("ab")
    popen = subprocess.Popen(
        command,
        cwd=servers.ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: raise_open_files_limit(servers.OPEN_FILES),
    )
    servers._wait_for_port(popen, port, "liveblog serve")
    body = json.dumps({"title": "Connect cost", "slug": SLUG, "status": "live"}).encode()
    req = urllib.request.Request(
        f"http://{HOST}:{port}/api/stories",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req) as answer:
        if answer.status != 201:
            raise RuntimeError(f"could not create the story: {answer.status}")
    return servers.Proc("liveblog", popen, port, popen.pid)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.connect_cost")
    parser.add_argument("--readers", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--every", type=float, default=0.05)
    parser.add_argument("--settle", type=float, default=2.0)
    parser.add_argument("--servers", default="liveblog,nchan")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--log", type=Path, default=None, help="liveblog's output (default: temp)")
    parser.add_argument("--pid-file", type=Path, default=None, help="write liveblog's pid here")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for liveblog")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    raise_open_files_limit(options.readers + 4096)
    extra_env = dict(item.split("=", 1) for item in options.env)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="connect-cost-") as tmp:
        work = Path(tmp)
        for name in options.servers.split(","):
            for round_ in range(options.rounds):
                if name == "liveblog":
                    log = options.log or work / "liveblog.log"
                    proc = start_liveblog_serve(work / f"data{round_}", log, extra_env)
                    path = f"/stories/{SLUG}/events"
                else:
                    proc = servers.start_nchan(work / f"nginx{round_}")
                    path = "/sub"
                if options.pid_file:
                    options.pid_file.write_text(str(proc.worker_pid))
                try:
                    result = measure(
                        proc, path, options.readers, options.batch, options.every, options.settle
                    )
                finally:
                    proc.stop()
                results.append(result)
                if options.json:
                    print(json.dumps(asdict(result)), flush=True)
                else:
                    print(
                        f"{result.server:8} {result.connected}/{result.readers} heads in "
                        f"{result.seconds:.2f} s, {result.cpu_us_per_connection:.0f} us CPU per "
                        f"connection ({result.user_us:.0f} user + {result.system_us:.0f} sys), "
                        f"{result.kib_per_reader:.2f} KiB per reader, "
                        f"{result.overflows} overflows",
                        flush=True,
                    )
                time.sleep(1.0)


if __name__ == "__main__":
    main()
