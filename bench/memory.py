"""Where an idle reader's memory goes: ``python -m bench.memory [--readers N]``.

Serves the app in this process (uvicorn, one worker, uvloop + liveblog's guarded
httptools protocol, as ``liveblog serve`` runs it) under ``tracemalloc``, connects N
readers to one story from a child process running the bench's client, and prints the
memory they added per reader, by the source file that allocated it (uvicorn, asyncio,
Starlette, the middleware, liveblog).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import linecache
import os
import subprocess
import sys
import tempfile
import tracemalloc
from collections import Counter
from pathlib import Path

import uvicorn
import uvloop

from bench import servers
from bench.client import Publisher, Swarm, raise_open_files_limit
from bench.run import HOST, SLUG, _create_story
from liveblog.server import uvicorn_options
from liveblog.settings import Settings

SETTLE = 2.0  # seconds for the readers to go idle before the second snapshot


async def _readers(port: int, count: int) -> None:
    """The child process: connect ``count`` readers, say so, then hold them."""
    raise_open_files_limit(count + 1024)
    swarm = Swarm(HOST, port, f"/stories/{SLUG}/events")
    seconds = await swarm.connect(count)
    print(f"connected {count} in {seconds:.2f} s", flush=True)
    await asyncio.sleep(3600)


def _connect(port: int, count: int) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "bench.memory", "--child", str(port), "--readers", str(count)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line.startswith("connected"):
        child.kill()
        raise RuntimeError(f"the readers did not connect: {line!r}")
    print(f"  {line.strip()}")
    return child


def _short(filename: str) -> str:
    """liveblog/..., starlette/..., asyncio/...: the file, without where it is installed."""
    if filename.startswith(str(servers.ROOT)):
        return filename[len(str(servers.ROOT)) + 1 :]
    for marker in ("site-packages/", "/lib/python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


async def measure(readers: int, top: int) -> None:
    raise_open_files_limit(readers + 1024)
    with tempfile.TemporaryDirectory(prefix="liveblog-memory-") as tmp:
        data = Path(tmp)
        token = await servers.prepare_liveblog(data)
        os.environ.update(
            LIVEBLOG_DATA_DIR=str(data),
            LIVEBLOG_SECRET_KEY=servers.SECRET,
            LIVEBLOG_MAX_STREAMS_PER_CLIENT="0",
        )
        port = servers.free_port()
        # As `liveblog serve` runs it: liveblog's guarded protocol.
        options = uvicorn_options(
            Settings(),
            host=HOST,
            port=port,
            loop="none",  # this process already runs uvloop
            log_level="warning",
            backlog=4096,
        )
        config = uvicorn.Config("liveblog.app:app_from_environment", factory=True, **options)
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        for _ in range(600):  # up to 30 s
            if server.started:
                break
            await asyncio.sleep(0.05)
        publisher = Publisher(HOST, port, {"Authorization": f"Bearer {token}"})
        await _create_story(publisher)
        await publisher.close()
        warm = await asyncio.to_thread(_connect, port, 20)  # first-request costs out of the way
        tracemalloc.start(1)
        gc.collect()
        before = tracemalloc.take_snapshot()
        child = await asyncio.to_thread(_connect, port, readers)
        await asyncio.sleep(SETTLE)
        gc.collect()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        for process in (child, warm):
            process.kill()
            process.wait()
        server.should_exit = True
        await serving
    report(after.compare_to(before, "lineno"), readers, top)


def report(stats: list[tracemalloc.StatisticDiff], readers: int, top: int) -> None:
    total = sum(stat.size_diff for stat in stats)
    print(f"\n{total / readers / 1024:.2f} KiB allocated per idle reader (tracemalloc)\n")
    by_file: Counter[str] = Counter()
    for stat in stats:
        by_file[_short(stat.traceback[0].filename)] += stat.size_diff
    print("bytes/reader  file")
    for name, size in by_file.most_common(top):
        if size / readers >= 1:
            print(f"{size / readers:12.0f}  {name}")
    print("\nbytes/reader  objects  line")
    for stat in stats[:top]:
        frame = stat.traceback[0]
        code = linecache.getline(frame.filename, frame.lineno).strip()[:60]
        print(
            f"{stat.size_diff / readers:12.0f}  {stat.count_diff / readers:7.1f}  "
            f"{_short(frame.filename)}:{frame.lineno}  {code}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--readers", type=int, default=2000)
    parser.add_argument("--top", type=int, default=25, help="lines of each table")
    parser.add_argument("--child", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        uvloop.run(_readers(args.child, args.readers))
    else:
        uvloop.run(measure(args.readers, args.top))


if __name__ == "__main__":
    main()
