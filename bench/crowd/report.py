"""What a run prints: each phase as it ends, and one table of every run at the end."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from bench.crowd.crowd import CrowdOptions, CrowdResult, Readers
from bench.crowd.seed import Seeded
from bench.crowd.server import LogScan
from bench.crowd.storm import StormResult


@dataclass
class Run:
    number: int
    seeded: Seeded | None = None
    crowd: CrowdResult | None = None
    crowd_log: LogScan | None = None
    crowd_exit: tuple[int | None, float] = (None, 0.0)  # exit status, seconds to stop
    storms: list[StormResult] = field(default_factory=list)
    storm_logs: list[LogScan] = field(default_factory=list)
    failed: str = ""

    @property
    def storm_ratio(self) -> float:
        if len(self.storms) == 2 and self.storms[0].seconds > 0:
            return self.storms[1].seconds / self.storms[0].seconds
        return math.nan


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def say(line: str = "") -> None:
    print(line, flush=True)


def print_seeded(seeded: Seeded) -> None:
    low, mid, high = seeded.event_bytes
    say(
        f"  seeded: story {seeded.slug!r}, {seeded.last_seq} events, in {seeded.seconds:.1f} s "
        f"(event data {low}/{mid}/{high} bytes min/median/max)"
    )


def _readers(label: str, readers: Readers) -> None:
    say(f"  {label}: {readers.complete}/{readers.wanted} got every event, once, in order")
    if readers.incomplete:
        say(f"    {readers.incomplete} did not; first problem: {readers.first_problem}")
        for kind, count in sorted(readers.problems.items(), key=lambda item: -item[1])[:5]:
            say(f"      {count:>5} x {kind}")


def print_crowd(result: CrowdResult, options: CrowdOptions) -> None:
    posts = len(result.posts)
    say(
        f"  editor POST latency: p50 {result.post_p50_ms:.0f} ms, p99 {result.post_p99_ms:.0f} "
        f"ms, max {result.post_max_ms:.0f} ms ({posts} posts; non-2xx {result.post_non_2xx}, "
        f"5xx {result.post_5xx}, no answer within 30 s {result.post_no_answer})"
    )
    for post in result.posts:
        if not 200 <= post.status < 300:
            say(f"    first failed post, at {post.at:.1f} s: {post.status} {post.error}")
            break
    say(f"  story after the editor: last event id N = {result.last_seq}")
    _readers(f"replay readers (Last-Event-ID: 0, must get 1..{result.last_seq})", result.replay)
    _readers("live readers (no Last-Event-ID, must get every post after joining)", result.live)
    done = (
        f"the last one had its last event {result.readers_done_s:.1f} s after the crowd came"
        if not math.isnan(result.readers_done_s)
        else f"not all within the {options.grace:.0f} s grace after the editor"
    )
    say(f"  readers finished: {done}; every connection opened {result.opened_s:.1f} s in")
    say(
        f"  server RSS: {mib(result.rss_start_kib)} at the start, peak {mib(result.rss_peak_kib)}"
        f" during the crowd, {mib(result.rss_after_kib)} {2 * options.send_timeout:.0f} s after"
        " the crowd left"
    )
    first, second = result.held_at_s
    say(
        f"  server sockets still ESTABLISHED to clients that hold them open, "
        f"at {first:.0f} s / {second:.0f} s (send timeout {options.send_timeout:.0f} s):"
    )
    sizes = {
        "replay readers": options.replay_readers,
        "replay holders": options.replay_holders,
        "slowloris": options.slowloris,
        "live holders": options.live_holders,
        "live readers": options.live_readers,
    }
    for name, (at_first, at_second) in result.held.items():
        say(
            f"    {name:<15} {at_first.count:>5} / {at_second.count:>5} of {sizes[name]:>5}"
            f"   (at the 2nd: {at_second.unsent_kib / 1024:.1f} MiB queued in the server's "
            f"kernel buffers, {at_second.unread_kib / 1024:.1f} MiB unread in the clients')"
        )
    say("  held over time (s after the crowd came: replay holders / slowloris / live holders):")
    marks = [
        f"{at:.0f}s {held.get('replay holders', 0)}/{held.get('slowloris', 0)}/"
        f"{held.get('live holders', 0)}"
        for at, held in result.held_timeline[::3]
    ]
    for start in range(0, len(marks), 8):
        say("    " + ", ".join(marks[start : start + 8]))
    unsent = _unsent_peak(result)
    say(f"  peak of the server's kernel send queues to the crowd: {unsent / 1024:.0f} MiB")
    closed = result.slowloris_closed
    after = "" if not closed else f", median {result.slowloris_closed_after_s:.0f} s after opening"
    answers = ", ".join(f"{count} x {line!r}" for line, count in result.slowloris_answers.items())
    say(f"  slowloris closed by the server: {closed}/{options.slowloris}{after}")
    if answers:
        say(f"    answers they got: {answers}")
    left = ", ".join(
        f"{state} {count}" for state, count in sorted(result.server_sockets_after.items())
    )
    say(
        f"  server sockets on the port {2 * options.send_timeout:.0f} s after the crowd hung up: "
        f"{left or 'none'}"
    )
    errors = {name: count for name, count in result.connect_errors.items() if count}
    if errors:
        say(f"  connections that failed to open: {errors}")
    for name, lines in result.error_answers.items():
        say(f"  {name} answered with an error: {lines}")
    say(f"  accept-queue overflows during the crowd: {result.overflows}")


def print_log(label: str, scan: LogScan, exit_status: int | None, seconds: float) -> None:
    say(
        f"  {label} stopped with SIGINT: exit status {exit_status} after {seconds:.1f} s; "
        f"stderr {scan.lines} lines, database pool waits ('QueuePool limit' or 'TimeoutError') "
        f"{scan.pool_waits}, errors {scan.errors}"
    )
    for line in scan.first_errors:
        say(f"    {line}")
    if scan.replay_lines:
        for line in scan.replay_lines:
            say(f"    replay log: {line}")
    else:
        say("    replay log: no line about replays")


def print_storm(result: StormResult) -> None:
    what = (
        "no Last-Event-ID, served = got the retry line"
        if result.variant == "fresh"
        else "Last-Event-ID head-0..50, served = got every event to the head"
    )
    say(
        f"  storm {result.variant} ({what}): {result.served}/{result.readers} served in "
        f"{result.seconds:.2f} s; per reader p50 {result.served_p50_ms:.0f} ms, p99 "
        f"{result.served_p99_ms:.0f} ms; {result.replayed_events} events replayed; "
        f"server CPU {result.server_cpu_s:.1f} s; RSS {mib(result.rss_before_kib)} -> peak "
        f"{mib(result.rss_peak_kib)}; accept-queue overflows {result.overflows}"
    )
    if result.note:
        say(f"    {result.note}")
    if result.problems:
        say(f"    {result.problems} readers with a problem; first: {result.first_problem}")
    if result.connect_errors:
        say(f"    {result.connect_errors} connections failed to open")
    if result.error_answers:
        say(f"    error answers: {result.error_answers}")


def _row(label: str, runs: list[Run], cell: Any) -> str:
    values = []
    for run in runs:
        try:
            values.append(str(cell(run)))
        except (AttributeError, IndexError, TypeError):
            values.append("-")
    return f"| {label} | " + " | ".join(values) + " |"


def _unsent_peak(result: CrowdResult) -> int:
    return max((held.get("unsent KiB", 0) for _, held in result.held_timeline), default=0)


def _held(result: CrowdResult, name: str) -> str:
    first, second = result.held[name]
    return f"{first.count} / {second.count}"


def summary_table(runs: list[Run], options: CrowdOptions) -> str:
    def crowd(run: Run) -> CrowdResult:
        if run.crowd is None:
            raise AttributeError
        return run.crowd

    def storm(run: Run, index: int) -> StormResult:
        return run.storms[index]

    holders = options.replay_holders
    rows = [
        "| figure | " + " | ".join(f"run {run.number}" for run in runs) + " |",
        "| --- |" + " --- |" * len(runs),
        _row(
            "editor POST p50 / p99 / max",
            runs,
            lambda r: (
                f"{crowd(r).post_p50_ms:.0f} / {crowd(r).post_p99_ms:.0f} / "
                f"{crowd(r).post_max_ms:.0f} ms"
            ),
        ),
        _row(
            "editor POST non-2xx / 5xx (of posts)",
            runs,
            lambda r: f"{crowd(r).post_non_2xx} / {crowd(r).post_5xx} ({len(crowd(r).posts)})",
        ),
        _row(
            "replay readers with every event",
            runs,
            lambda r: f"{crowd(r).replay.complete}/{crowd(r).replay.wanted}",
        ),
        _row(
            "live readers with every update",
            runs,
            lambda r: f"{crowd(r).live.complete}/{crowd(r).live.wanted}",
        ),
        _row(
            "server RSS start / peak / after",
            runs,
            lambda r: (
                f"{mib(crowd(r).rss_start_kib)} / {mib(crowd(r).rss_peak_kib)} / "
                f"{mib(crowd(r).rss_after_kib)}"
            ),
        ),
        _row(
            f"replay holders still held by the server (of {holders}), 1st / 2nd count",
            runs,
            lambda r: _held(crowd(r), "replay holders"),
        ),
        _row(
            f"live holders still held (of {options.live_holders})",
            runs,
            lambda r: _held(crowd(r), "live holders"),
        ),
        _row(
            f"slowloris still held (of {options.slowloris})",
            runs,
            lambda r: _held(crowd(r), "slowloris"),
        ),
        _row(
            "server kernel send queues to the crowd, peak",
            runs,
            lambda r: f"{_unsent_peak(crowd(r)) / 1024:.0f} MiB",
        ),
        _row(
            "slowloris closed by the server after (median)",
            runs,
            lambda r: f"{crowd(r).slowloris_closed_after_s:.1f} s",
        ),
        _row(
            "database pool waits in the log",
            runs,
            lambda r: str(r.crowd_log.pool_waits) if r.crowd_log else "-",
        ),
        _row(
            "storm fresh: all served in",
            runs,
            lambda r: f"{storm(r, 0).seconds:.2f} s ({storm(r, 0).served}/{storm(r, 0).readers})",
        ),
        _row(
            "storm resume: all served in",
            runs,
            lambda r: f"{storm(r, 1).seconds:.2f} s ({storm(r, 1).served}/{storm(r, 1).readers})",
        ),
        _row(
            "storm resume / fresh",
            runs,
            lambda r: "-" if math.isnan(r.storm_ratio) else f"{r.storm_ratio:.2f}x",
        ),
        _row(
            "storm accept-queue overflows fresh / resume",
            runs,
            lambda r: f"{storm(r, 0).overflows} / {storm(r, 1).overflows}",
        ),
    ]
    return "\n".join(rows)
