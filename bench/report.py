"""The results table: liveblog's figure, nchan's, the ratio, the target, and whether it is met."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.run import Phase, Results


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


def _delivery(phase: Phase | None) -> str:
    if phase is None:
        return "-"
    share = 100 * phase.deliveries / phase.expected if phase.expected else 0.0
    order = "in order" if phase.in_order else "OUT OF ORDER"
    return f"{share:.2f}% {order}"


def rows(results: Results) -> list[Row]:
    ours = results.servers.get("liveblog")
    ref = results.servers.get("nchan")
    table: list[Row] = []
    readers = ours.readers if ours else ref.readers if ref else 0

    def compare(what: str, a: float, b: float, unit: str, limit: float) -> None:
        ratio = _ratio(a, b)
        table.append(
            Row(
                what,
                "-" if math.isnan(a) else f"{a:.2f}{unit}",
                "-" if math.isnan(b) else f"{b:.2f}{unit}",
                "-" if math.isnan(ratio) else f"{ratio:.2f}x",
                f"<= {limit:g}x",
                _verdict(None if math.isnan(ratio) else ratio <= limit),
            )
        )

    ours_idle = ours.idle if ours else None
    ref_idle = ref.idle if ref else None
    table.append(
        Row(
            f"idle: every reader gets every update ({readers} readers)",
            _delivery(ours_idle),
            _delivery(ref_idle),
            "",
            "100%, in order",
            _verdict(ours_idle.complete if ours_idle else None),
        )
    )
    nan = math.nan
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
    compare(
        f"time to connect {readers} readers",
        ours.connect_s if ours else nan,
        ref.connect_s if ref else nan,
        " s",
        1.5,
    )
    table.append(
        Row("connections dropped by a full accept queue while connecting",
            str(ours.connect_overflows) if ours else "-",
            str(ref.connect_overflows) if ref else "-", "", "(information)", "-")
    )  # fmt: skip
    hectic = ours.hectic if ours else None
    if hectic is not None:
        options = results.options
        label = f"hectic: {options['hectic_rate']:g}/s for {options['hectic_seconds']:g} s"
        table.append(
            Row(f"{label}, delivery", _delivery(hectic), _delivery(ref.hectic if ref else None),
                "", "100%, in order", _verdict(hectic.complete))
        )  # fmt: skip
        compare(f"{label}, p99 vs nchan's idle p99", hectic.p99_ms, ref_p99, " ms", 2.0)
    if results.redis is not None:
        redis = results.redis
        table.append(
            Row("2 workers + Redis, delivery", _delivery(redis), "", "", "100%, in order",
                _verdict(redis.complete))
        )  # fmt: skip
        compare("2 workers + Redis, p99 vs nchan's idle p99", redis.p99_ms, ref_p99, " ms", 1.5)
    elif results.redis_note:
        table.append(Row("2 workers + Redis", "not run", "", "", results.redis_note, "-"))
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
        ratio = _ratio(a, b)
        table.append(
            Row(what, "-" if math.isnan(a) else f"{a:.2f}{unit}",
                "-" if math.isnan(b) else f"{b:.2f}{unit}",
                "-" if math.isnan(ratio) else f"{ratio:.2f}x", "(information)", "-")
        )  # fmt: skip
    if results.wrk:
        full, cached = results.wrk["full_page_rps"], results.wrk["not_modified_rps"]
        table.append(Row("story page, full render (wrk)", f"{full:.0f} req/s", "", "", "", "-"))
        table.append(
            Row("story page, 304 Not Modified (wrk)", f"{cached:.0f} req/s", "",
                f"{cached / full:.1f}x the full page", "", "-")
        )  # fmt: skip
    elif results.wrk_note:
        table.append(Row("story page (wrk)", "not run", "", "", results.wrk_note, "-"))
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
