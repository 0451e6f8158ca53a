"""Formatting shared by every renderer: durations, rates, trends, sparklines."""

from __future__ import annotations

from collections.abc import Sequence

from bot.metrics.registry import Kind, Target

SPARK = "▁▂▃▄▅▆▇█"


def duration(seconds: float | None) -> str:
    """The largest unit that keeps 2–3 significant figures: ``45m``, ``6.2h``, ``3.1d``."""
    if seconds is None:
        return "no data"
    s = abs(seconds)
    sign = "-" if seconds < 0 else ""
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if s >= size:
            v = s / size
            return f"{sign}{v:.1f}{unit}" if v < 10 else f"{sign}{v:.0f}{unit}"
    return f"{sign}{s:.0f}s"


def number(v: float) -> str:
    if abs(v - round(v)) < 1e-9:
        return f"{round(v):,}"
    return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.2f}".rstrip("0").rstrip(".")


def value(kind: Kind, v: float | None) -> str:
    if v is None:
        return "no data"
    match kind:
        case Kind.DURATION:
            return duration(v)
        case Kind.RATIO:
            return percent(v)
        case Kind.LINES:
            return f"{number(v)} lines"
        case Kind.RATE:
            return f"{v:.2f}/dev/week"
        case Kind.DAYS_PER_WEEK:
            return f"{number(v)} days/week"
    return number(v)


def percent(v: float | None) -> str:
    if v is None:
        return "no data"
    pct = v * 100
    return f"{pct:.0f}%" if abs(pct - round(pct)) < 0.05 or pct >= 10 else f"{pct:.1f}%"


def target(kind: Kind, t: Target) -> str:
    return f"{t.op} {value(kind, t.value)}"


def change(c: float | None) -> str:
    if c is None:
        return ""
    return f"{c * 100:+.0f}%"


def trend(direction: str, c: float | None) -> str:
    if direction == "not enough data":
        return "trend: not enough data"
    arrow = {"better": "↑ better", "worse": "↓ worse", "flat": "→ flat"}.get(direction, direction)
    ch = change(c)
    return f"{ch} vs previous ({arrow})" if ch else f"vs previous: {arrow}"


def sparkline(values: Sequence[float | None]) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "·" * len(values)
    lo, hi = min(known), max(known)
    out = []
    for v in values:
        if v is None:
            out.append("·")
        elif hi == lo:
            out.append(SPARK[3])
        else:
            out.append(SPARK[round((v - lo) / (hi - lo) * (len(SPARK) - 1))])
    return "".join(out)


PHASES = {"coding": "coding", "pickup": "pickup", "review": "review", "deploy": "deploy"}


def unknown_contents(card_metric: str, breakdown: dict[str, object] | None) -> str | None:
    """The lead-time card's note on deployments whose contents are unknown, or None."""
    n = (breakdown or {}).get("unknown_contents")
    if card_metric != "lead-time" or not isinstance(n, int) or n <= 0:
        return None
    if n == 1:
        return "1 deployment with unknown contents is not counted"
    return f"{n} deployments with unknown contents are not counted"
