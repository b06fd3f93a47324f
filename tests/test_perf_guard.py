"""A small run of the fan-out benchmark (``python -m bench``), as CI's guard.

A few hundred readers on one story, a handful of updates, against our server
(``liveblog serve``, one worker), nginx + nchan (the reference), ``liveblog serve
--workers 2`` sharing a Redis against nchan with two workers, Pushpin in front of
liveblog in GRIP mode, and wrk on the story page. It checks that every reader got every
update, exactly once and in order, in both connect patterns, and that the page answers
304 under wrk; it prints the timings and asserts none of them (speed is for ``python -m
bench`` and docs/performance.md, on a quiet machine).

nginx + nchan, redis-server, pushpin (+ zurl, condure) and wrk are Debian packages
(``.ci/run`` installs them): where one is missing its part is skipped, except under CI,
where that fails.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest

from bench.__main__ import main as bench_command
from bench.pushpin import pushpin_available
from bench.servers import nchan_available
from tests.services import skip_unless_ci, under_ci

READERS = 300
UPDATES = 5


def missing(why: str | None) -> bool:
    """True (skip that part) when ``why`` says a tool is missing, unless under CI."""
    if why is None:
        return False
    if under_ci():
        pytest.fail(f"CI must provide it: {why}")
    return True


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    servers = ["liveblog"]
    if not missing(nchan_available()):
        servers.append("nchan")
    scenarios = ["idle"]
    if not missing(None if shutil.which("redis-server") else "redis-server is not installed"):
        scenarios.append("redis")
    if not missing(None if shutil.which("wrk") else "wrk is not installed"):
        scenarios.append("wrk")
    if not missing(None if pushpin_available() else "pushpin, zurl or condure is missing"):
        scenarios.append("pushpin")
    out = tmp_path_factory.mktemp("bench") / "results.json"
    # The one bench command, run in this process: what it prints shows with ``-s``.
    arguments = [
        "--readers", str(READERS), "--updates", str(UPDATES),
        "--servers", ",".join(servers), "--scenarios", ",".join(scenarios),
        "--wrk-seconds", "1", "--json", str(out),
    ]  # fmt: skip
    assert bench_command(arguments) == 0
    results: dict[str, Any] = json.loads(out.read_text())
    return results


def check_phase(phase: dict[str, Any] | None, readers: int, what: str) -> None:
    assert phase is not None, f"{what}: no figures"
    assert phase["errors"] == [], f"{what}: {phase['errors']}"
    assert phase["in_order"], f"{what}: a reader saw events out of order"
    assert phase["expected"] == readers * UPDATES
    assert phase["deliveries"] == phase["expected"], f"{what}: {phase['updates']}"
    assert [update["delivered"] for update in phase["updates"]] == [readers] * UPDATES
    assert phase["complete"]


def test_every_reader_gets_every_update_in_order(run: dict[str, Any]) -> None:
    ours = run["servers"]["liveblog"]
    assert ours["readers"] == READERS
    check_phase(ours["idle"], READERS, "liveblog")


def test_the_reference_gets_the_same_load(run: dict[str, Any]) -> None:
    if "nchan" not in run["servers"]:
        skip_unless_ci(nchan_available() or "nchan did not run")
    check_phase(run["servers"]["nchan"]["idle"], READERS, "nginx + nchan")
    ours, nchan = run["servers"]["liveblog"]["idle"], run["servers"]["nchan"]["idle"]
    # The same client sent both the same-sized events.
    assert abs(ours["block_bytes"] - nchan["block_bytes"]) <= 16, (ours, nchan)


def test_both_connect_patterns_ran(run: dict[str, Any]) -> None:
    for name, server in run["servers"].items():
        # Round one connects the bench's way, round two paced; each got its readers.
        assert set(server["connecting"]) == {"bounded", "paced"}, name
        for pattern, connecting in server["connecting"].items():
            assert len(connecting["runs_s"]) == 1, (name, pattern)
            assert connecting["seconds"] > 0, (name, pattern)


def test_two_workers_with_redis_get_every_update_in_order(run: dict[str, Any]) -> None:
    if not run["redis"]:
        skip_unless_ci(run["redis_note"] or "the Redis scenario did not run")
    check_phase(run["redis"]["liveblog"]["idle"], READERS, "liveblog, two workers + Redis")
    assert run["redis"]["liveblog"]["rss_idle_kib"] > 0
    if "nchan" in run["servers"]:
        check_phase(run["redis"]["nchan"]["idle"], READERS, "nginx + nchan, two workers")


def test_readers_on_pushpin_get_every_update_in_order(run: dict[str, Any]) -> None:
    if run["pushpin"] is None:
        skip_unless_ci(run["pushpin_note"] or "the Pushpin scenario did not run")
    check_phase(run["pushpin"]["idle"], READERS, "Pushpin in front of liveblog (GRIP)")


def test_story_page_answers_304_under_wrk(run: dict[str, Any]) -> None:
    if not run["wrk"]:
        skip_unless_ci(run["wrk_note"] or "wrk did not run")
    # wrk itself fails the bench on any non-2xx/3xx answer; both runs served requests.
    assert run["wrk"]["full_page_rps"] > 0
    assert run["wrk"]["not_modified_rps"] > 0
