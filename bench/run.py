"""The scenarios, run against liveblog and nginx + nchan in the same process and run.

For each server: warm up, take the baseline (RSS), connect N readers (time), let them
idle (RSS again), publish updates one at a time and wait for every reader to get each
(the idle latency), then, optionally, post 2 updates/s for a minute with the readers
attached (the hectic newsroom). Readers connect in two patterns, a round each: the
bench's own (at most 500 connects in flight) and paced (500 new connects every 50 ms,
whether or not earlier ones completed, as an outside measurement loaded the server).
Then wrk against the story page, in full and as a conditional GET answered 304. Then
("redis") ``liveblog serve --workers 2`` sharing a private Redis against nginx + nchan
with two workers, N readers each; then ("pushpin") Pushpin in front of ``liveblog
serve`` in GRIP mode, N readers on Pushpin, against the one-worker nchan figures.

liveblog runs as ``liveblog serve`` (bench/servers.py), logging to a file.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import servers
from bench.client import Delivery, Publisher, Swarm, deliveries, percentile
from bench.profile import Profiler
from bench.pushpin import PushpinRun, pushpin_available

HOST = "127.0.0.1"
SLUG = "bench-story"
WARMUP_READERS = 50
PRIMER_READERS = 5  # the pushpin scenario's (run_pushpin)
ROUNDS = 2  # of connecting and idle updates, the servers taking turns
DELIVERY_TIMEOUT = 30.0
# How readers connect, one pattern per round (round n uses PATTERNS[n % 2]).
BOUNDED = "bounded"  # at most Options.connect_concurrency connects in flight
PACED = "paced"  # Options.connect_batch new connects every Options.connect_interval s
PATTERNS = (BOUNDED, PACED)
# Through Pushpin: at most Options.pushpin_concurrency requests awaiting their response
# head. Pushpin forwards each new reader's request to liveblog (through zurl), and sent
# all at once (the TCP connects bounded, each request right after), thousands of them
# were answered 502 (zurl: max_open_requests, 2,000 in Debian's config) or 500 ("Accept
# service unavailable", the handler), in a test run of 10,000; with 500 awaiting their
# head, 2,368 of 10,000 still were, with 100, 30 (on 2 busy cores). Refused readers
# are counted (ServerResult.refused) and make the delivery incomplete.
HEADS = "heads"
# An update as an editor writes one: a headline-sized first sentence, a paragraph, a link.
BODY = (
    "**Update {n}:** the river crested at 4.2 m at the old bridge shortly after midnight, "
    "the highest level since records began, and the fire service says the new barriers held. "
    "Residents of the low streets east of the market were moved to the school gym overnight; "
    "the council expects them home by the afternoon if the rain eases as forecast. "
    "[Live river levels](https://example.org/river-levels) are updated every 15 minutes."
)


@dataclass
class Options:
    readers: int = 10_000
    updates: int = 10
    hectic_seconds: float = 60.0
    hectic_rate: float = 2.0
    servers: tuple[str, ...] = ("liveblog", "nchan")
    scenarios: tuple[str, ...] = ("idle", "hectic", "wrk", "redis", "pushpin")
    wrk_seconds: float = 10.0
    connect_concurrency: int = 500
    connect_batch: int = 500
    connect_interval: float = 0.05
    # Through Pushpin: requests awaiting their head at once (HEADS, below).
    pushpin_concurrency: int = 50
    json_path: Path | None = None
    profile_dir: Path | None = None
    pin: bool = False


@dataclass
class Phase:
    """One run of updates against one server (or pair of workers)."""

    updates: list[dict[str, Any]] = field(default_factory=list)
    deliveries: int = 0
    expected: int = 0
    in_order: bool = True
    errors: list[str] = field(default_factory=list)
    first_ms: float = math.nan  # the fastest delivery: mostly the publish itself
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    max_ms: float = math.nan
    cpu_us_per_event: float = math.nan
    cpu_system_share: float = math.nan  # of that CPU, the part spent in the kernel
    block_bytes: int = 0
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return self.deliveries == self.expected and self.in_order and not self.errors


@dataclass
class Connecting:
    """Connecting N readers in one pattern: one entry per round that used it."""

    runs_s: list[float] = field(default_factory=list)
    cpu_us_runs: list[float] = field(default_factory=list)  # server CPU per reader
    overflows: int = 0  # connections the kernel dropped, the accept queue full

    @property
    def seconds(self) -> float:
        return statistics.mean(self.runs_s) if self.runs_s else math.nan

    @property
    def cpu_us(self) -> float:
        return statistics.mean(self.cpu_us_runs) if self.cpu_us_runs else math.nan


@dataclass
class ServerResult:
    name: str
    readers: int
    rss_base_kib: int = 0  # summed over the processes doing the work
    rss_idle_kib: int = 0
    connecting: dict[str, Connecting] = field(default_factory=dict)  # by pattern
    idle: Phase | None = None
    hectic: Phase | None = None
    # Behind a proxy (the pushpin scenario): liveblog's own growth and CPU.
    origin_kib_per_reader: float = math.nan
    origin_cpu_us_per_event: float = math.nan
    refused: int = 0  # readers answered other than 200 while connecting

    @property
    def kib_per_reader(self) -> float:
        return (self.rss_idle_kib - self.rss_base_kib) / self.readers

    def connect(self, pattern: str = BOUNDED) -> Connecting:
        return self.connecting.setdefault(pattern, Connecting())


@dataclass
class Results:
    machine: dict[str, str]
    options: dict[str, Any]
    servers: dict[str, ServerResult] = field(default_factory=dict)
    # Two workers each: liveblog (+ Redis) and nchan, by those names.
    redis: dict[str, ServerResult] = field(default_factory=dict)
    redis_note: str = ""
    pushpin: ServerResult | None = None  # Pushpin's processes, liveblog behind it
    pushpin_note: str = ""
    wrk: dict[str, float] = field(default_factory=dict)
    wrk_note: str = ""


def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    return {
        "nproc": str(len(_cpus())),
        "cpu": cpu,
        "memory": memory,
        "somaxconn": str(servers.somaxconn()),
        "load_before": load_average(),
    }


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _cpus() -> list[str]:
    return [
        line for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("processor")
    ]  # fmt: skip


def summarise(
    found: list[Delivery], swarms: list[Swarm], readers: int, cpu: tuple[float, float]
) -> Phase:
    phase = Phase()
    everything: list[float] = []
    for delivery in found:
        p50, p99, worst = delivery.summary()
        phase.updates.append(
            {
                "seq": delivery.seq,
                "delivered": delivery.delivered,
                "p50_ms": p50 * 1000,
                "p99_ms": p99 * 1000,
                "max_ms": worst * 1000,
            }
        )
        everything.extend(delivery.latencies)
    phase.deliveries = len(everything)
    phase.expected = readers * len(found)
    phase.in_order = all(swarm.disorders == 0 for swarm in swarms)
    phase.errors = [error for swarm in swarms for error in swarm.errors]
    closes = sum(swarm.unexpected_closes for swarm in swarms)
    if closes:
        phase.errors.append(f"{closes} streams closed by the server")
    if everything:
        phase.p50_ms = percentile(everything, 0.5) * 1000
        phase.p99_ms = percentile(everything, 0.99) * 1000
        phase.max_ms = max(everything) * 1000
        phase.first_ms = min(everything) * 1000
    if phase.deliveries:
        phase.cpu_us_per_event = sum(cpu) / phase.deliveries * 1e6
    if sum(cpu):
        phase.cpu_system_share = cpu[1] / sum(cpu)
    sizes = [size for swarm in swarms for size in swarm.block_sizes.values()]
    phase.block_bytes = max(sizes) if sizes else 0
    return phase


class Server:
    """How the scenarios publish to one kind of server and where its readers connect."""

    def __init__(self, proc: servers.Proc, stream_path: str, publisher: Publisher) -> None:
        self.proc = proc
        self.stream_path = stream_path
        self.publisher = publisher
        self.next_seq = 1
        self.block_bytes = 1200  # nchan pads its payloads to the size liveblog's frames had

    async def publish(self) -> tuple[int, float]:
        raise NotImplementedError


class LiveblogServer(Server):
    async def publish(self) -> tuple[int, float]:
        body = json.dumps({"body": BODY.format(n=self.next_seq)}).encode()
        status, answer, sent = await self.publisher.post(f"/api/stories/{SLUG}/updates", body)
        if status != 201:
            raise RuntimeError(f"liveblog answered {status}: {answer[:200]!r}")
        seq = self.next_seq
        self.next_seq += 1
        return seq, sent


class NchanServer(Server):
    async def publish(self) -> tuple[int, float]:
        seq = self.next_seq
        self.next_seq += 1
        # nchan frames the payload as "id: <time>:<n>\ndata: <payload>\n\n": pad it so
        # the whole block is as large as liveblog's update frame.
        head = f'{{"seq":{seq},"pad":"'
        pad = max(0, self.block_bytes - len(head) - 2 - len("id: 1700000000:0\ndata: \n\n"))
        payload = (head + "x" * pad + '"}').encode()
        status, answer, sent = await self.publisher.post("/pub", payload, "text/plain")
        if status not in (201, 202):
            raise RuntimeError(f"nchan answered {status}: {answer[:200]!r}")
        return seq, sent


async def publish_and_wait(server: Server, swarms: list[Swarm], count: int, readers: int) -> Phase:
    """Publish ``count`` events one at a time, each only after every reader has the last."""
    started = time.monotonic()
    found, cpu = await publish_some(server, swarms, count)
    phase = summarise(found, swarms, readers, cpu)
    phase.seconds = time.monotonic() - started
    return phase


async def publish_some(
    server: Server, swarms: list[Swarm], count: int, *, give_up: bool = False
) -> tuple[list[Delivery], tuple[float, float]]:
    """``count`` events, each only after every reader has the last: what each reader got
    when, and the server's CPU (user, system) meanwhile. With ``give_up``, the first
    event not delivered to every reader in DELIVERY_TIMEOUT is the last published."""
    sent: dict[int, float] = {}
    cpu_before = server.proc.cpu_times()
    for _ in range(count):
        seq, at = await server.publish()
        sent[seq] = at
        delivered = True
        for swarm in swarms:
            delivered &= await swarm.wait_for(seq, swarm.live, DELIVERY_TIMEOUT)
        if give_up and not delivered:
            print(f"  seq {seq} not delivered to every reader in {DELIVERY_TIMEOUT:g} s: "
                  "no more updates", flush=True)  # fmt: skip
            break
        await asyncio.sleep(0.2)
    return _merge(swarms, sent), cpu_since(server, cpu_before)


def cpu_since(server: Server, before: tuple[float, float]) -> tuple[float, float]:
    user, system = server.proc.cpu_times()
    return user - before[0], system - before[1]


async def publish_paced(
    server: Server, swarms: list[Swarm], seconds: float, rate: float, readers: int
) -> Phase:
    """Publish at ``rate`` per second for ``seconds``, not waiting for readers."""
    sent: dict[int, float] = {}
    interval = 1 / rate
    count = round(seconds * rate)
    cpu_before = server.proc.cpu_times()
    started = time.monotonic()
    for n in range(count):
        delay = started + n * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        seq, at = await server.publish()
        sent[seq] = at
    last = max(sent)
    for swarm in swarms:
        await swarm.wait_for(last, swarm.live, DELIVERY_TIMEOUT)
    await asyncio.sleep(0.5)  # stragglers of earlier events (a lost one stays lost)
    phase = summarise(_merge(swarms, sent), swarms, readers, cpu_since(server, cpu_before))
    phase.seconds = time.monotonic() - started
    return phase


def _merge(swarms: list[Swarm], sent: dict[int, float]) -> list[Delivery]:
    if len(swarms) == 1:
        return deliveries(swarms[0], sent)
    merged: list[Delivery] = []
    for seq, at in sorted(sent.items()):
        latencies = [arrival - at for swarm in swarms for arrival in swarm.arrivals.get(seq, ())]
        merged.append(Delivery(seq, at, latencies))
    return merged


async def warm_up(server: Server, options: Options) -> Phase:
    """First-request costs (imports, templates, pools) out of the way."""
    warm = Swarm(HOST, server.proc.port, server.stream_path)
    await warm.connect(WARMUP_READERS, concurrency=options.connect_concurrency)
    phase = await publish_and_wait(server, [warm], 1, WARMUP_READERS)
    await warm.close()
    await asyncio.sleep(0.5)
    return phase


async def connect_readers(
    server: Server,
    result: ServerResult,
    options: Options,
    *,
    first: bool,
    pattern: str = BOUNDED,
    label: str = "",
) -> Swarm:
    """Connect the readers in ``pattern``: time, server CPU, accept-queue drops; on the
    ``first`` round, memory per idle reader too (later rounds reuse memory the first
    freed)."""
    name = label or result.name
    proc = server.proc
    profiler = None
    if first and options.profile_dir is not None and isinstance(server, LiveblogServer):
        profiler = Profiler(options.profile_dir)
        profiler.start(proc.worker_pid, "connect")
    swarm = Swarm(HOST, proc.port, server.stream_path)
    rss_base = proc.rss_kib()
    cpu_before = proc.cpu_times()
    overflows_before = servers.listen_overflows()
    if pattern == PACED:
        seconds = await swarm.connect_paced(
            options.readers, batch=options.connect_batch, interval=options.connect_interval
        )
    else:
        seconds = await swarm.connect(
            options.readers,
            concurrency=options.pushpin_concurrency
            if pattern == HEADS
            else options.connect_concurrency,
            until_head=pattern == HEADS,
        )
    cpu_us = sum(cpu_since(server, cpu_before)) / options.readers * 1e6
    # Each one waited for the client's SYN to be sent again, a second later at first.
    overflows = servers.listen_overflows() - overflows_before
    if profiler is not None:
        profiler.stop()
    connecting = result.connect(pattern)
    connecting.runs_s.append(seconds)
    connecting.cpu_us_runs.append(cpu_us)
    connecting.overflows += overflows
    result.refused += swarm.refused
    if first:
        # Time for the servers' allocations to land: 2 s for 10,000 readers, a fraction
        # of that for the few hundred of CI's run (tests/test_perf_guard.py).
        await asyncio.sleep(min(2.0, 0.2 + options.readers / 5000))
        result.rss_base_kib = rss_base
        result.rss_idle_kib = proc.rss_kib()
    how = (
        f"{options.connect_batch} every {options.connect_interval * 1000:g} ms"
        if pattern == PACED
        else f"{options.pushpin_concurrency} awaiting their head"
        if pattern == HEADS
        else f"{options.connect_concurrency} in flight"
    )
    print(
        f"  {name}: {options.readers} readers connected ({how}) in {seconds:.2f} s "
        f"({cpu_us:.0f} us of server CPU each), "
        + (f"{result.kib_per_reader:.1f} KiB RSS each; " if first else "")
        + f"{overflows} connections dropped by a full accept queue"
        + (
            f"; {swarm.refused} readers REFUSED {sorted(set(swarm.errors))}"
            if swarm.refused
            else ""
        ),
        flush=True,
    )
    return swarm


async def run_rounds(chosen: dict[str, Server], options: Options) -> dict[str, ServerResult]:
    """Connecting and the idle updates, in ``ROUNDS`` rounds, the servers' order reversed
    each round (A B, B A): each round connects one server's readers, publishes its share
    of the updates, and hangs up, then the same for the other server. Measured one after
    the other instead (each server's whole run at once), a slow minute of this shared VM
    on one side moved the p99 ratio between 1.2x and 1.5x. (Both servers' readers at
    once would be 20,000 sockets in the client, over this machine's hard limit.)"""
    results = {name: ServerResult(name=name, readers=options.readers) for name in chosen}
    found: dict[str, list[Delivery]] = {name: [] for name in chosen}
    swarms: dict[str, list[Swarm]] = {name: [] for name in chosen}
    cpu: dict[str, list[float]] = {name: [0.0, 0.0] for name in chosen}
    order = list(chosen)
    shares = [options.updates // ROUNDS + (n < options.updates % ROUNDS) for n in range(ROUNDS)]
    for number, share in enumerate(shares):
        for name in order if number % 2 == 0 else reversed(order):
            server = chosen[name]
            # Hung-up readers cost the server they left some CPU after the client has
            # closed them: none of that may land in the next server's connecting.
            await settle([server.proc for server in chosen.values()])
            swarm = await connect_readers(
                server,
                results[name],
                options,
                first=number == 0,
                pattern=PATTERNS[number % len(PATTERNS)],
            )
            swarms[name].append(swarm)
            try:
                if "idle" in options.scenarios and share:
                    profiler = None
                    if number == 0 and options.profile_dir is not None and name == "liveblog":
                        profiler = Profiler(options.profile_dir)
                        profiler.start(server.proc.worker_pid, "updates")
                    got, (user, system) = await publish_some(server, [swarm], share)
                    if profiler is not None:
                        profiler.stop()
                    found[name].extend(got)
                    cpu[name][0] += user
                    cpu[name][1] += system
            finally:
                await swarm.close()
    if "idle" in options.scenarios:
        for name, result in results.items():
            user, system = cpu[name]
            result.idle = summarise(found[name], swarms[name], options.readers, (user, system))
            _print_phase(f"{name} idle", result.idle)
    return results


async def settle(
    running: list[servers.Proc], *, quiet_ms: float = 20.0, within: float = 30.0
) -> None:
    """Wait until none of the servers used more than ``quiet_ms`` of CPU in half a second;
    and collect this process's garbage meanwhile (automatic collection is off: main)."""
    gc.collect()
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        before = [proc.cpu_times() for proc in running]
        await asyncio.sleep(0.5)
        busy = []
        for proc, was in zip(running, before, strict=True):
            user, system = proc.cpu_times()
            busy.append((user - was[0] + system - was[1]) * 1000)
        if max(busy) <= quiet_ms:
            return


async def run_hectic(server: Server, result: ServerResult, options: Options) -> None:
    swarm = Swarm(HOST, server.proc.port, server.stream_path)
    try:
        await swarm.connect(options.readers, concurrency=options.connect_concurrency)
        await asyncio.sleep(1.0)
        result.hectic = await publish_paced(
            server, [swarm], options.hectic_seconds, options.hectic_rate, options.readers
        )
    finally:
        await swarm.close()
    _print_phase(f"{result.name} hectic", result.hectic, per_update=False)


def _print_phase(label: str, phase: Phase, *, per_update: bool = True) -> None:
    if per_update:
        for update in phase.updates:
            print(
                f"    {label} seq {update['seq']:>4}: delivered {update['delivered']:>6}  "
                f"p50 {update['p50_ms']:7.1f} ms  p99 {update['p99_ms']:7.1f} ms  "
                f"max {update['max_ms']:7.1f} ms"
            )
    state = "all delivered in order" if phase.complete else f"INCOMPLETE {phase.errors[:3]}"
    print(
        f"  {label}: {phase.deliveries}/{phase.expected} deliveries, {state}; "
        f"first {phase.first_ms:.1f} ms, p50 {phase.p50_ms:.1f} ms, p99 {phase.p99_ms:.1f} ms, "
        f"max {phase.max_ms:.1f} ms; "
        f"{phase.cpu_us_per_event:.1f} us CPU per delivered event "
        f"({phase.cpu_system_share:.0%} in the kernel); "
        f"{phase.block_bytes} bytes per event block",
        flush=True,
    )


def redis_backend_missing() -> str | None:
    if shutil.which("redis-server") is None:
        return "redis-server is not installed"
    return None


async def idle_scenario(
    server: Server,
    options: Options,
    result: ServerResult,
    label: str,
    pattern: str = BOUNDED,
    *,
    give_up: bool = False,
) -> Swarm:
    """Connect N readers (the bench's own pattern, memory measured), publish the idle
    updates; returns the swarm, still connected (the caller closes it)."""
    swarm = await connect_readers(server, result, options, first=True, label=label, pattern=pattern)
    got, cpu = await publish_some(server, [swarm], options.updates, give_up=give_up)
    result.idle = summarise(got, [swarm], options.readers, cpu)
    _print_phase(label, result.idle)
    return swarm


async def run_workers(
    work: Path, token: str, options: Options, next_seq: int, nchan_block: int
) -> tuple[dict[str, ServerResult], int]:
    """``liveblog serve --workers 2`` sharing a private Redis, against nginx + nchan with
    ``worker_processes 2``: N readers each (the kernel spreads them over the workers),
    the idle updates; memory and CPU summed over each server's two workers. Returns the
    figures and the story's next sequence number."""
    redis = servers.start_redis(work)
    url = f"redis://127.0.0.1:{redis.port}/0"
    started: list[Server] = []
    results: dict[str, ServerResult] = {}
    try:
        ours = servers.start_liveblog(
            work / "liveblog", work / "logs" / "liveblog-2-workers.log", broadcast_url=url,
            workers=2,
        )  # fmt: skip
        liveblog = LiveblogServer(
            ours,
            f"/stories/{SLUG}/events",
            Publisher(HOST, ours.port, {"Authorization": f"Bearer {token}"}),
        )
        liveblog.next_seq = next_seq
        started.append(liveblog)
        chosen: dict[str, Server] = {"liveblog": liveblog}
        if "nchan" in options.servers:
            theirs = servers.start_nchan(work / "nginx-2-workers", workers=2)
            nchan = NchanServer(theirs, "/sub", Publisher(HOST, theirs.port))
            nchan.block_bytes = nchan_block
            started.append(nchan)
            chosen = {"nchan": nchan, "liveblog": liveblog}
        for server in chosen.values():
            await warm_up(server, options)
        for name, server in chosen.items():
            await settle([one.proc for one in started])
            result = results[name] = ServerResult(name=name, readers=options.readers)
            swarm = await idle_scenario(server, options, result, f"{name} 2 workers")
            await swarm.close()
        return results, liveblog.next_seq
    finally:
        for server in started:
            await server.publisher.close()
            server.proc.stop()
        redis.stop()


async def run_pushpin(work: Path, token: str, options: Options, next_seq: int) -> ServerResult:
    """Pushpin (+ its zurl) in front of ``liveblog serve`` with ``LIVEBLOG_GRIP_URL``:
    N readers on Pushpin, the idle updates posted to liveblog. Memory and CPU are
    Pushpin's (all its processes); liveblog's own are kept as the origin's."""
    proxy_run = PushpinRun(work / "pushpin")
    # Every reader's copy of an update is one of Pushpin's rate-limited actions: let one
    # update to all readers leave at once, and two be waiting (bench/pushpin.py).
    proxy_run.message_rate = max(proxy_run.message_rate, options.readers * 10)
    proxy_run.message_hwm = max(proxy_run.message_hwm, options.readers * 2)
    origin = servers.start_liveblog(
        work / "liveblog", work / "logs" / "liveblog-grip.log", grip_url=proxy_run.grip_url
    )
    proxy: servers.Proc | None = None
    publisher = Publisher(HOST, origin.port, {"Authorization": f"Bearer {token}"})
    try:
        proxy = proxy_run.start(origin.port)
        # Readers connect to Pushpin (the server's proc); updates are posted to liveblog.
        server = LiveblogServer(proxy, f"/stories/{SLUG}/events", publisher)
        server.next_seq = next_seq
        # Warm-up readers that stay: Pushpin subscribes to a story's channel when its
        # first reader arrives, and a second later re-asks liveblog about every reader
        # held by then (the hold's next link), 10 readers a second (Pushpin's update
        # limiter batches readers with the same link; each liveblog link names its
        # reader), holding back their events meanwhile. Measured here: a story Pushpin
        # already serves. (The same limiter paces the refresh of every reader's link,
        # every 30 s by default: with thousands of readers, events wait behind it; the
        # updates stop at the first one not delivered in DELIVERY_TIMEOUT.)
        # Few of them: Pushpin re-asks about each (10 a second) before it delivers to it.
        primer = Swarm(HOST, proxy.port, server.stream_path)
        await primer.connect(PRIMER_READERS, concurrency=PRIMER_READERS, until_head=True)
        await publish_and_wait(server, [primer], 1, PRIMER_READERS)
        await asyncio.sleep(1.5)  # past Pushpin's re-asking of the primer's readers
        await settle([proxy, origin])
        result = ServerResult(name="pushpin", readers=options.readers)
        origin_base = origin.rss_kib()
        origin_cpu = origin.cpu_times()
        swarm = await idle_scenario(
            server, options, result, "pushpin + liveblog (GRIP)", pattern=HEADS, give_up=True
        )
        try:
            result.origin_kib_per_reader = (
                origin.rss_kib() - origin_base
            ) / options.readers  # fmt: skip
            user, system = origin.cpu_times()
            if result.idle is not None and result.idle.deliveries:
                result.origin_cpu_us_per_event = (
                    (user - origin_cpu[0] + system - origin_cpu[1]) / result.idle.deliveries * 1e6
                )
            print(
                f"  liveblog behind pushpin: {result.origin_kib_per_reader:.2f} KiB RSS per "
                f"reader; {result.origin_cpu_us_per_event:.2f} us CPU per delivered event "
                f"(connecting and updates)",
                flush=True,
            )
        finally:
            await swarm.close()
            await primer.close()
        return result
    except BaseException:
        print(proxy_run.logs()[-3000:])
        raise
    finally:
        await publisher.close()
        if proxy is not None:
            proxy.stop()
        origin.stop()


def run_wrk(url: str, seconds: float, headers: dict[str, str]) -> float:
    command = ["wrk", "-t1", "-c32", f"-d{seconds:g}s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if match is None or non_2xx is not None:
        raise RuntimeError(f"wrk failed against {url}:\n{output}")
    return float(match.group(1))


async def _get_head(port: int, path: str, headers: dict[str, str]) -> str:
    """The status line and headers of a GET (the connection is closed after)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    # The Host header wrk sends: pages are made with absolute links, so their ETag
    # depends on it.
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n{extra}Connection: close\r\n\r\n"
    writer.write(request.encode())
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    writer.close()
    return head


async def wrk_story_page(port: int, seconds: float) -> dict[str, float]:
    path = f"/stories/{SLUG}"
    etag = re.search(r"(?im)^etag: (.+?)\r$", await _get_head(port, path, {}))
    if etag is None:
        raise RuntimeError("the story page carries no ETag")
    conditional = {"If-None-Match": etag.group(1)}
    status = (await _get_head(port, path, conditional)).split(" ", 2)[1]
    if status != "304":
        raise RuntimeError(f"a conditional GET of the story page answered {status}, not 304")
    page = f"http://{HOST}:{port}{path}"
    full = await asyncio.to_thread(run_wrk, page, seconds, {})
    cached = await asyncio.to_thread(run_wrk, page, seconds, conditional)
    return {"full_page_rps": full, "not_modified_rps": cached}


async def run(options: Options) -> Results:
    results = Results(machine=machine(), options=_jsonable(asdict(options)))
    print(f"  net.core.somaxconn: {results.machine['somaxconn']} (left as it is)", flush=True)
    with tempfile.TemporaryDirectory(prefix="liveblog-bench-") as tmp:
        work = Path(tmp)
        token = await servers.prepare_liveblog(work / "liveblog")
        auth = {"Authorization": f"Bearer {token}"}
        liveblog: LiveblogServer | None = None
        nchan: NchanServer | None = None
        try:
            ours = servers.start_liveblog(work / "liveblog", work / "logs" / "liveblog.log")
            publisher = Publisher(HOST, ours.port, auth)
            liveblog = LiveblogServer(ours, f"/stories/{SLUG}/events", publisher)
            await _create_story(liveblog.publisher)
            # liveblog's update frame sets the size of nchan's messages.
            liveblog.block_bytes = (await warm_up(liveblog, options)).block_bytes or 1200
            chosen: dict[str, Server] = {}
            if "nchan" in options.servers:
                why_not = servers.nchan_available()
                if why_not:
                    raise RuntimeError(why_not)
                proc = servers.start_nchan(work / "nginx")
                nchan = NchanServer(proc, "/sub", Publisher(HOST, proc.port))
                nchan.block_bytes = liveblog.block_bytes
                await warm_up(nchan, options)
                chosen["nchan"] = nchan
            if "liveblog" in options.servers:
                chosen["liveblog"] = liveblog
            if options.pin:
                pin([server.proc for server in chosen.values()])
            results.servers.update(await run_rounds(chosen, options))
            if "hectic" in options.scenarios:
                for name, server in chosen.items():
                    await settle([one.proc for one in chosen.values()])
                    await run_hectic(server, results.servers[name], options)
            nchan_block = nchan.block_bytes if nchan is not None else liveblog.block_bytes
            if nchan is not None:
                await nchan.publisher.close()
                nchan.proc.stop()
                nchan = None
            unpin()
            if "wrk" in options.scenarios:
                if shutil.which("wrk") is None:
                    results.wrk_note = "wrk is not installed (apt-get install wrk)"
                else:
                    results.wrk = await wrk_story_page(ours.port, options.wrk_seconds)
                    print(
                        f"  story page with wrk: {results.wrk['full_page_rps']:.0f} req/s "
                        f"in full, {results.wrk['not_modified_rps']:.0f} req/s as 304",
                        flush=True,
                    )
            unpin()  # wrk, two workers and Pushpin run where the scheduler puts them
            await liveblog.publisher.close()
            next_seq = liveblog.next_seq
            ours.stop()
            liveblog = None
            if "redis" in options.scenarios:
                missing = redis_backend_missing()
                if missing:
                    results.redis_note = missing
                    print(f"  two workers with Redis: skipped: {missing}", flush=True)
                else:
                    results.redis, next_seq = await run_workers(
                        work, token, options, next_seq, nchan_block
                    )
            if "pushpin" in options.scenarios:
                if not pushpin_available():
                    results.pushpin_note = "pushpin, zurl or condure is not installed"
                    print(f"  pushpin: skipped: {results.pushpin_note}", flush=True)
                else:
                    results.pushpin = await run_pushpin(work, token, options, next_seq)
        finally:
            for left in (liveblog, nchan):
                if left is not None:
                    left.proc.stop()
    results.machine["load_after"] = load_average()
    return results


def pin(procs: list[servers.Proc]) -> None:
    """This client on the last CPU, every thread of each server on CPU 0.

    Unpinned, the scheduler often woke the client on the liveblog worker's core while
    the worker fanned out, switching the worker out 1,900-3,200 times per five updates
    (nchan's: 10-30); pinned, about 480 (docs/performance.md)."""
    last = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {last})
    for proc in procs:
        for pid in proc.worker_pids:
            for task in os.listdir(f"/proc/{pid}/task"):
                os.sched_setaffinity(int(task), {0})


def unpin() -> None:
    os.sched_setaffinity(0, range(os.cpu_count() or 1))


async def _create_story(publisher: Publisher) -> None:
    body = json.dumps({"title": "Bench story", "slug": SLUG, "status": "live"}).encode()
    status, answer, _ = await publisher.post("/api/stories", body)
    if status != 201:
        raise RuntimeError(f"could not create the story: {status} {answer[:200]!r}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def results_json(results: Results) -> dict[str, Any]:
    data: dict[str, Any] = _jsonable(asdict(results))

    def add(server: ServerResult, into: dict[str, Any]) -> None:
        into["kib_per_reader"] = server.kib_per_reader
        for pattern, connecting in server.connecting.items():
            into["connecting"][pattern]["seconds"] = connecting.seconds
            into["connecting"][pattern]["cpu_us"] = connecting.cpu_us
        for phase_name in ("idle", "hectic"):
            phase = getattr(server, phase_name)
            if phase is not None:
                into[phase_name]["complete"] = phase.complete

    for name, server in results.servers.items():
        add(server, data["servers"][name])
    for name, server in results.redis.items():
        add(server, data["redis"][name])
    if results.pushpin is not None:
        add(results.pushpin, data["pushpin"])
    return data
