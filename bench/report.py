"""The results table: liveblog's figure, nchan's, the ratio, the target, and whether it is met.

The two-worker rows compare two liveblog workers (+ Redis) with two nchan workers; the
Pushpin rows put Pushpin's figures (liveblog behind it) in liveblog's column, against
the one-worker nchan of the same run."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.run import BOUNDED, HEADS, PACED, Phase, Results, ServerResult


@dataclass
class Row:
    what: str
    ours: str
    reference: str
    ratio: str
    target: str
    met: str


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f} ms"


def _ratio(ours: float, reference: float) -> float:
    return ours / reference if reference and not math.isnan(ours) else math.nan


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("yes" if ok else "NO")


def _delivery(phase: Phase | None, updates: int | None = None) -> str:
    if phase is None:
        return "-"
    share = 100 * phase.deliveries / phase.expected if phase.expected else 0.0
    order = "in order" if phase.in_order else "OUT OF ORDER"
    # Fewer updates than asked for: the run gave up on one not delivered in time.
    published = len(phase.updates)
    cut = f" ({published} of {updates} updates)" if updates and published < updates else ""
    return f"{share:.2f}% {order}{cut}"


def rows(results: Results) -> list[Row]:
    ours = results.servers.get("liveblog")
    ref = results.servers.get("nchan")
    table: list[Row] = []
    readers = ours.readers if ours else ref.readers if ref else 0
    options = results.options
    nan = math.nan

    def compare(what: str, a: float, b: float, unit: str, limit: float | None) -> None:
        ratio = _ratio(a, b)
        table.append(
            Row(
                what,
                "-" if math.isnan(a) else f"{a:.2f}{unit}",
                "-" if math.isnan(b) else f"{b:.2f}{unit}",
                "-" if math.isnan(ratio) else f"{ratio:.2f}x",
                "(information)" if limit is None else f"<= {limit:g}x",
                _verdict(None if limit is None or math.isnan(ratio) else ratio <= limit),
            )
        )

    def delivery(what: str, a: Phase | None, b: Phase | None) -> None:
        table.append(
            Row(what, _delivery(a), _delivery(b), "", "100%, in order",
                _verdict(a.complete if a else None))
        )  # fmt: skip

    def connecting(label: str, a: ServerResult | None, b: ServerResult | None, limit: float | None,
                   pattern: str = BOUNDED) -> None:  # fmt: skip
        ca = a.connecting.get(pattern) if a else None
        cb = b.connecting.get(pattern) if b else None
        if ca is None and cb is None:
            return
        n = a.readers if a else b.readers if b else 0
        compare(f"{label}time to connect {n} readers", ca.seconds if ca else nan,
                cb.seconds if cb else nan, " s", limit)  # fmt: skip
        compare(f"{label}server CPU per connection", ca.cpu_us if ca else nan,
                cb.cpu_us if cb else nan, " us", None)  # fmt: skip
        table.append(
            Row(f"{label}connections dropped by a full accept queue",
                str(ca.overflows) if ca else "-", str(cb.overflows) if cb else "-", "",
                "(information)", "-")
        )  # fmt: skip

    ours_idle = ours.idle if ours else None
    ref_idle = ref.idle if ref else None
    delivery(f"idle: every reader gets every update ({readers} readers)", ours_idle, ref_idle)
    ref_p99 = ref_idle.p99_ms if ref_idle else nan
    ours_p99 = ours_idle.p99_ms if ours_idle else nan
    compare("idle: p99 post-to-delivery", ours_p99, ref_p99, " ms", 1.25)
    compare(
        "memory per idle reader (RSS growth)",
        ours.kib_per_reader if ours else nan,
        ref.kib_per_reader if ref else nan,
        " KiB",
        1.0,
    )
    in_flight = options.get("connect_concurrency", 500)
    batch = options.get("connect_batch", 500)
    every = options.get("connect_interval", 0.05) * 1000
    connecting(f"connect, {in_flight} in flight: ", ours, ref, 1.5)
    connecting(f"connect, {batch} every {every:g} ms: ", ours, ref, 1.5, PACED)
    hectic = ours.hectic if ours else None
    if hectic is not None:
        label = f"hectic: {options['hectic_rate']:g}/s for {options['hectic_seconds']:g} s"
        delivery(f"{label}, delivery", hectic, ref.hectic if ref else None)
        compare(f"{label}, p99 vs nchan's idle p99", hectic.p99_ms, ref_p99, " ms", 2.0)
    # For information: no target.
    compare_info = [
        ("idle: p50 post-to-delivery", "p50_ms"),
        ("idle: max post-to-delivery", "max_ms"),
        ("idle: CPU per delivered event", "cpu_us_per_event"),
    ]
    for what, attribute in compare_info:
        a = getattr(ours_idle, attribute) if ours_idle else nan
        b = getattr(ref_idle, attribute) if ref_idle else nan
        unit = " us" if attribute == "cpu_us_per_event" else " ms"
        compare(what, a, b, unit, None)
    if results.wrk:
        full, cached = results.wrk["full_page_rps"], results.wrk["not_modified_rps"]
        table.append(Row("story page, full render (wrk)", f"{full:.0f} req/s", "", "", "", "-"))
        table.append(
            Row("story page, 304 Not Modified (wrk)", f"{cached:.0f} req/s", "",
                f"{cached / full:.1f}x the full page", "", "-")
        )  # fmt: skip
    elif results.wrk_note:
        table.append(Row("story page (wrk)", "not run", "", "", results.wrk_note, "-"))
    if results.redis:
        two, two_ref = results.redis.get("liveblog"), results.redis.get("nchan")
        w = "2 workers (liveblog + Redis; nchan): "
        a, b = (two.idle if two else None), (two_ref.idle if two_ref else None)
        delivery(f"{w}delivery", a, b)
        compare(f"{w}p50 post-to-delivery", a.p50_ms if a else nan, b.p50_ms if b else nan,
                " ms", None)  # fmt: skip
        compare(f"{w}p99 post-to-delivery", a.p99_ms if a else nan, b.p99_ms if b else nan,
                " ms", 1.5)  # fmt: skip
        compare(f"{w}memory per reader (both workers)", two.kib_per_reader if two else nan,
                two_ref.kib_per_reader if two_ref else nan, " KiB", 1.0)  # fmt: skip
        connecting(w, two, two_ref, 1.5)
    elif results.redis_note:
        table.append(Row("2 workers + Redis", "not run", "", "", results.redis_note, "-"))
    if results.pushpin is not None:
        pp = results.pushpin
        v = "via Pushpin (GRIP) vs nchan, 1 worker: "
        table.append(
            Row(f"{v}delivery", _delivery(pp.idle, options.get("updates")), _delivery(ref_idle),
                "", "100%, in order", _verdict(pp.idle.complete if pp.idle else None))
        )  # fmt: skip
        compare(f"{v}p50 post-to-delivery", pp.idle.p50_ms if pp.idle else nan,
                ref_idle.p50_ms if ref_idle else nan, " ms", None)  # fmt: skip
        compare(f"{v}p99 post-to-delivery", pp.idle.p99_ms if pp.idle else nan, ref_p99,
                " ms", None)  # fmt: skip
        compare(f"{v}memory per reader (Pushpin's processes)", pp.kib_per_reader,
                ref.kib_per_reader if ref else nan, " KiB", None)  # fmt: skip
        table.append(
            Row(f"{v}liveblog's own memory per reader", f"{pp.origin_kib_per_reader:.2f} KiB",
                "", "", "(information)", "-")
        )  # fmt: skip
        compare(f"{v}CPU per delivered event (Pushpin's)",
                pp.idle.cpu_us_per_event if pp.idle else nan,
                ref_idle.cpu_us_per_event if ref_idle else nan, " us", None)  # fmt: skip
        table.append(
            Row(f"{v}readers refused while connecting ({options.get('pushpin_concurrency')} "
                "awaiting their head)", str(pp.refused), "", "", "0", _verdict(pp.refused == 0))
        )  # fmt: skip
        connecting(v, pp, ref, None, HEADS)
    elif results.pushpin_note:
        table.append(Row("via Pushpin (GRIP)", "not run", "", "", results.pushpin_note, "-"))
    return table


def render_table(results: Results) -> str:
    header = Row("figure", "liveblog", "nchan", "ratio", "target", "met?")
    table = [header, *rows(results)]
    widths = [max(len(getattr(row, name)) for row in table) for name in Row.__annotations__]
    lines = []
    names = list(Row.__annotations__)
    for n, row in enumerate(table):
        cells = [getattr(row, name).ljust(width) for name, width in zip(names, widths, strict=True)]
        lines.append("| " + " | ".join(cells) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    machine = results.machine
    lines.append("")
    lines.append(
        f"Machine: {machine['nproc']} cores, {machine['cpu']}, {machine['memory']} memory, "
        f"net.core.somaxconn {machine.get('somaxconn', '?')}; "
        f"load average {machine['load_before']} before the run, "
        f"{machine.get('load_after', '?')} after."
        + (
            " Client and one-worker servers pinned to separate cores (--pin)."
            if results.options.get("pin")
            else ""
        )
    )
    return "\n".join(lines)
