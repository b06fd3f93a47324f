"""``python -m bench.crowd``: the hostile-crowd benchmark of ``liveblog serve``."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import shutil
import sys
import tempfile
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import uvloop

from bench.client import raise_open_files_limit
from bench.crowd.crowd import CrowdOptions, run_crowd, story_last_seq
from bench.crowd.report import (
    Run,
    print_crowd,
    print_log,
    print_seeded,
    print_storm,
    say,
    summary_table,
)
from bench.crowd.seed import seed
from bench.crowd.server import Server, scan_log
from bench.crowd.storm import storm
from bench.servers import somaxconn
from liveblog.settings import Settings

READER_KINDS = {
    "replay": "replay_readers",
    "replay-holders": "replay_holders",
    "slowloris": "slowloris",
    "live-holders": "live_holders",
    "live": "live_readers",
}


def _crowd_spec(text: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for part in filter(None, text.split(",")):
        name, _, count = part.partition("=")
        if name not in READER_KINDS or not count.isdigit():
            raise argparse.ArgumentTypeError(
                f"{part!r}: expected KIND=N with KIND one of {', '.join(READER_KINDS)}"
            )
        found[READER_KINDS[name]] = int(count)
    return found


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.crowd",
        description="A hostile crowd against `liveblog serve`, started as a user starts it: "
        "replaying, never-reading, slowloris and live readers while an editor posts; then a "
        "reconnect storm. See docs/performance.md.",
    )
    parser.add_argument("--runs", type=int, default=1, help="how many times (default 1)")
    parser.add_argument(
        "--duration", type=float, default=30.0, help="seconds the editor posts, one a second (30)"
    )
    parser.add_argument(
        "--readers",
        type=_crowd_spec,
        default={},
        metavar="KIND=N,...",
        help="the crowd, any of: replay=500,replay-holders=500,slowloris=300,"
        "live-holders=100,live=50 (the defaults)",
    )
    parser.add_argument("--updates", type=int, default=5000, help="updates seeded (5000)")
    parser.add_argument(
        "--grace", type=float, default=60.0, help="seconds readers may take to finish (60)"
    )
    parser.add_argument("--storm-readers", type=int, default=10_000, help="(10000)")
    parser.add_argument("--skip-storm", action="store_true", help="the crowd only")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    parser.add_argument(
        "--keep-logs", type=Path, metavar="DIR", help="copy the servers' stderr logs here"
    )
    return parser.parse_args(argv)


async def one_run(number: int, args: argparse.Namespace, options: CrowdOptions) -> Run:
    run = Run(number)
    rng = random.Random(number)
    with tempfile.TemporaryDirectory(prefix="liveblog-crowd-") as tmp:
        work = Path(tmp)
        data = work / "data"
        try:
            say("  seeding a fresh data directory...")
            run.seeded = seeded = await seed(data, updates=args.updates, rng=rng)
            print_seeded(seeded)
            server = Server(data, work / "crowd.log")
            server.start()
            try:
                up = await server.answering()
                where = f"pid {server.pid}, port {server.port}"
                say(f"  liveblog serve ({where}) answered in {up:.1f} s")
                say(
                    f"  the crowd: {options.total} connections at once, "
                    f"editor posting for {options.duration:.0f} s..."
                )
                run.crowd = await run_crowd(server, seeded, options, rng)
            finally:
                run.crowd_exit = (server.stop(), server.stop_seconds)
            run.crowd_log = scan_log(server.log_path)
            print_crowd(run.crowd, options)
            print_log("crowd server", run.crowd_log, *run.crowd_exit)
            if not args.skip_storm:
                for resume in (False, True):
                    server = Server(data, work / f"storm-{'resume' if resume else 'fresh'}.log")
                    server.start()
                    try:
                        await server.answering()
                        head = await story_last_seq(server, seeded)
                        result = await storm(
                            server, seeded.slug, head, readers=args.storm_readers,
                            resume=resume, rng=rng,
                        )  # fmt: skip
                    finally:
                        status = server.stop()
                    run.storms.append(result)
                    scan = scan_log(server.log_path)
                    run.storm_logs.append(scan)
                    print_storm(result)
                    print_log(f"storm {result.variant} server", scan, status, server.stop_seconds)
                say(f"  storm resume / fresh: {run.storm_ratio:.2f}x (a fresh server for each)")
        except Exception as exc:
            run.failed = f"{type(exc).__name__}: {exc}"
            say(f"  run {number} FAILED: {run.failed}")
        finally:
            if args.keep_logs is not None:
                keep_logs(work, args.keep_logs / f"run-{number}")
    return run


def keep_logs(work: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for log in work.glob("*.log"):
        shutil.copy(log, target / log.name)


async def run_all(args: argparse.Namespace, options: CrowdOptions) -> list[Run]:
    runs = []
    for number in range(1, args.runs + 1):
        say(f"== run {number} of {args.runs}")
        runs.append(await one_run(number, args, options))
    return runs


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    send_timeout = Settings.model_fields["stream_send_timeout"].default
    options = CrowdOptions(duration=args.duration, grace=args.grace, send_timeout=send_timeout)
    for name, count in args.readers.items():
        setattr(options, name, count)
    wanted = max(options.total, 0 if args.skip_storm else args.storm_readers) + 1024
    # Before any server starts: `liveblog serve` inherits it.
    limit = raise_open_files_limit(wanted)
    if limit < wanted - 512:
        say(f"open files limit is {limit}: too low for {wanted - 1024} connections")
        return 2
    say(
        f"open files limit {limit} (bench and server); net.core.somaxconn {somaxconn()} "
        f"(caps `liveblog serve`'s backlog of 65535); send timeout {send_timeout:.0f} s"
    )
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runs = runner.run(run_all(args, options))
    say()
    say(summary_table(runs, options))
    if args.json is not None:
        figures = [{**_jsonable(run), "storm_ratio": _jsonable(run.storm_ratio)} for run in runs]
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if any(run.failed for run in runs) else 0


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


if __name__ == "__main__":
    sys.exit(main())
