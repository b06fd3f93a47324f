"""``python -m bench``: run the fan-out benchmark and print the results table."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
from pathlib import Path

import uvloop

from bench.client import raise_open_files_limit
from bench.report import render_table
from bench.run import Options, results_json, run

SERVERS = ("liveblog", "nchan")
# redis: `liveblog serve --workers 2` + Redis against nginx + nchan with two workers;
# pushpin: Pushpin in front of liveblog in GRIP mode, against the one-worker nchan.
SCENARIOS = ("idle", "hectic", "wrk", "redis", "pushpin")


def parse(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--readers", type=int, default=10_000, help="readers of the story")
    parser.add_argument("--updates", type=int, default=10, help="updates in the idle run")
    parser.add_argument("--hectic-seconds", type=float, default=60.0)
    parser.add_argument("--hectic-rate", type=float, default=2.0, help="updates per second")
    parser.add_argument("--wrk-seconds", type=float, default=10.0)
    parser.add_argument(
        "--connect-concurrency",
        type=int,
        default=500,
        help="the bench's own pattern: at most this many connects in flight",
    )
    parser.add_argument(
        "--connect-batch",
        type=int,
        default=500,
        help="the paced pattern: this many new "
        "connects every --connect-interval seconds, whether or not earlier ones completed",
    )
    parser.add_argument("--connect-interval", type=float, default=0.05)
    parser.add_argument(
        "--pushpin-concurrency",
        type=int,
        default=50,
        help="the pushpin scenario: at most this many requests awaiting their head",
    )
    parser.add_argument(
        "--servers", default=",".join(SERVERS), help=f"comma-separated, of {SERVERS}"
    )
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"comma-separated, of {SCENARIOS}"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="sample liveblog with py-spy while readers connect and updates go out "
        "(a profiled run's figures are not the ones to report)",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="keep this client off the servers' core: the client on the last CPU, each "
        "one-worker server on CPU 0 (wrk, two workers + Redis and Pushpin run unpinned)",
    )
    args = parser.parse_args(argv)
    servers = tuple(name for name in args.servers.split(",") if name)
    scenarios = tuple(name for name in args.scenarios.split(",") if name)
    for name in servers:
        if name not in SERVERS:
            parser.error(f"unknown server {name!r}")
    for name in scenarios:
        if name not in SCENARIOS:
            parser.error(f"unknown scenario {name!r}")
    return Options(
        readers=args.readers,
        updates=args.updates,
        hectic_seconds=args.hectic_seconds,
        hectic_rate=args.hectic_rate,
        servers=servers,
        scenarios=scenarios,
        wrk_seconds=args.wrk_seconds,
        connect_concurrency=args.connect_concurrency,
        connect_batch=args.connect_batch,
        connect_interval=args.connect_interval,
        pushpin_concurrency=args.pushpin_concurrency,
        json_path=args.json,
        profile_dir=args.profile,
        pin=args.pin,
    )


def main(argv: list[str] | None = None) -> int:
    options = parse(sys.argv[1:] if argv is None else argv)
    # Each reader is a socket in this process; the servers raise their own limit.
    limit = raise_open_files_limit(options.readers + 1024)
    if limit < options.readers + 64:
        print(f"open files limit is {limit}: too low for {options.readers} readers")
        return 2
    # Holding 10,000 readers, this process's full garbage collections took 56-160 ms
    # each (measured with gc.callbacks), and one landing during a fan-out delayed every
    # arrival behind it, adding that to whichever server was being measured. The bench
    # collects between phases instead (bench.run.settle), when nothing is timed.
    gc.disable()
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            results = runner.run(run(options))
    finally:
        gc.enable()
    print()
    print(render_table(results))
    if options.json_path is not None:
        options.json_path.write_text(json.dumps(results_json(results), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
