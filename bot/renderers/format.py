"""How every number reads, for every renderer (terminal text, Block Kit, JSON, charts).

The one home of the display rules: durations in the largest unit that keeps 2–3 significant
figures and one unit per line, line counts as whole lines, singular and plural, percentages,
trends (percentage points for rate KPIs, an arrow for the direction of the change and a word
for better or worse, never ``-0%``), period names ("so far" for a period in progress), and the
rounding of JSON numbers at the source (seconds to integers, fractions to 4 decimals).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.metrics import registry
from bot.metrics.freshness import FAILURES_TO_NOTICE
from bot.metrics.registry import Kind, Target
from bot.metrics.stats import TREND_MIN_CHANGE, TREND_MIN_POINTS
from bot.reports.alerts import Alert
from bot.reports.cards import MetricCard, NoSource, PeriodInfo
from bot.reports.freshness import SourceNotice, SourceState
from bot.settings import WEEKDAYS, WorkingHours

SPARK = "▁▂▃▄▅▆▇█"
NO_DATA = "no data"

# duration units, largest first: (seconds, suffix)
UNITS: tuple[tuple[int, str], ...] = ((86400, "d"), (3600, "h"), (60, "m"), (1, "s"))
UNIT_NAMES = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}

#: breakdown keys holding durations in seconds (the PR-timeline phases)
PHASES = ("coding", "pickup", "review", "deploy")

UP, DOWN, SAME = "▲", "▼", "→"


def half_up(v: float) -> int:
    """Round half away from zero (``174.5`` lines is 175, never banker's 174)."""
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def plural(n: float, word: str, many: str | None = None) -> str:
    """``1 day``, ``2 days``, ``1.5 days`` (``many`` for irregular plurals)."""
    return word if n == 1 else (many or word + "s")


# --- durations --------------------------------------------------------------------------------


def duration_unit(seconds: float) -> tuple[int, str]:
    """The largest unit in which ``seconds`` is at least 1 (seconds below a minute)."""
    s = abs(seconds)
    for size, unit in UNITS:
        if s >= size:
            return size, unit
    return 1, "s"


def _in_unit(seconds: float, size: int, unit: str) -> str:
    v = seconds / size
    text = f"{v:.1f}" if abs(v) < 10 and unit != "s" else f"{half_up(v)}"
    if text in ("-0", "-0.0"):
        text = text[1:]
    return text + unit


def duration(seconds: float | None) -> str:
    """The largest unit that keeps 2–3 significant figures: ``45m``, ``6.2h``, ``3.1d``."""
    if seconds is None:
        return NO_DATA
    return _in_unit(seconds, *duration_unit(seconds))


def durations(values: Sequence[float | None]) -> list[str]:
    """Several durations shown together, all in one unit: the unit of the first (the
    headline), or the next larger one while another would need 100 or more of it
    (``24h``, ``24h``, ``34h``; ``0.8h``, ``72h`` rather than ``45m``, ``4320m``)."""
    known = [abs(v) for v in values if v is not None]
    if not known:
        return [NO_DATA for _ in values]
    first = next(v for v in values if v is not None)
    size, unit = duration_unit(first)
    i = [u for _, u in UNITS].index(unit)
    while i > 0 and max(known) / size >= 100:
        i -= 1
        size, unit = UNITS[i]
    return [NO_DATA if v is None else _in_unit(v, size, unit) for v in values]


# --- numbers and values -----------------------------------------------------------------------


def number(v: float) -> str:
    if abs(v - round(v)) < 1e-9:
        return f"{round(v):,}"
    return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.2f}".rstrip("0").rstrip(".")


def lines(v: float) -> str:
    n = half_up(v)
    return f"{n:,} {plural(n, 'line')}"


def percent(v: float | None) -> str:
    if v is None:
        return NO_DATA
    pct = v * 100
    text = f"{pct:.0f}" if abs(pct - round(pct)) < 0.05 or abs(pct) >= 10 else f"{pct:.1f}"
    return ("0" if text in ("-0", "-0.0") else text) + "%"


def value(kind: Kind, v: float | None) -> str:
    """One value with its unit: ``1.9d``, ``88%``, ``168 lines``, ``1 day/week``."""
    if v is None:
        return NO_DATA
    match kind:
        case Kind.DURATION:
            return duration(v)
        case Kind.RATIO:
            return percent(v)
        case Kind.LINES:
            return lines(v)
        case Kind.RATE:
            return f"{v:.2f}/dev/week"
        case Kind.DAYS_PER_WEEK:
            return f"{number(v)} {plural(v, 'day')}/week"
    return number(v)


def detail(kind: Kind, p50: float | None, p75: float | None, p90: float | None) -> tuple[str, str]:
    """p75 and p90 in the headline's unit (``24h``, ``34h`` beside a ``24h`` median)."""
    if kind is Kind.DURATION:
        _, b, c = durations([p50, p75, p90])
        return b, c
    return value(kind, p75), value(kind, p90)


def spread(kind: Kind, p50: float | None, p75: float | None, p90: float | None) -> str:
    """The headline with its detail, one unit for the line: ``24h (p75 24h, p90 34h)``,
    ``168 lines (p75 316, p90 486)``; just the value where there are no percentiles."""
    if p50 is None:
        return NO_DATA
    if p75 is None or p90 is None or kind is Kind.RATIO:
        return value(kind, p50)
    if kind is Kind.DURATION:
        a, b, c = durations([p50, p75, p90])
        return f"{a} (p75 {b}, p90 {c})"
    if kind is Kind.LINES:
        return f"{lines(p50)} (p75 {half_up(p75):,}, p90 {half_up(p90):,})"
    return f"{value(kind, p50)} (p75 {value(kind, p75)}, p90 {value(kind, p90)})"


def target(kind: Kind, t: Target) -> str:
    return f"{t.op} {value(kind, t.value)}"


def axis_unit(kind: Kind, values: Sequence[float | None] = ()) -> tuple[float, str]:
    """A chart's scale and axis name: durations in the unit of their largest value."""
    if kind is Kind.DURATION:
        known = [abs(v) for v in values if v is not None]
        size, unit = duration_unit(max(known)) if known else (3600, "h")
        if unit == "s":
            size, unit = 60, "m"
        return float(size), UNIT_NAMES[unit]
    if kind is Kind.RATIO:
        return 0.01, "percent"
    return 1.0, {
        Kind.LINES: "lines changed",
        Kind.RATE: "merges per developer-week",
        Kind.DAYS_PER_WEEK: "deployment days per week",
    }[kind]


def scaled(kind: Kind, v: float, scale: float) -> str:
    """A value already divided by ``scale`` (a chart label), in the axis unit."""
    x = v / scale
    if kind is Kind.LINES:
        return f"{half_up(x):,}"
    if kind is Kind.RATIO:
        return percent(v)
    if kind is Kind.DURATION:
        return f"{x:.1f}" if abs(x) < 10 else f"{half_up(x)}"
    return number(round(x, 2))


# --- trends -----------------------------------------------------------------------------------


def change(kind: Kind, c: float | None, direction: str = "") -> str:
    """The size of a change, without sign (the arrow carries the direction): ``29%`` or,
    for rate KPIs, ``7 pp``; ``0%`` for a change that rounds to nothing. A *flat* change
    that would round up to the threshold of a real one (10 %, 5 pp) keeps a decimal
    (``9.6% flat``, never ``10% flat``)."""
    if c is None:
        return ""
    size = abs(c) * 100
    unit = " pp" if kind is Kind.RATIO else "%"
    threshold = (TREND_MIN_POINTS if kind is Kind.RATIO else TREND_MIN_CHANGE) * 100
    if direction == "flat" and half_up(size) >= threshold:
        return f"{math.floor(size * 10) / 10:.1f}{unit}"
    return f"{half_up(size):,}{unit}"


def arrow(kind: Kind, c: float | None, direction: str = "") -> str:
    """▲ for a rise, ▼ for a fall, → for no change (whatever is better)."""
    if c is None:
        return {"better": "", "worse": ""}.get(direction, "")
    if half_up(abs(c) * 100) == 0:
        return SAME
    return UP if c > 0 else DOWN


def trend(kind: Kind, direction: str, c: float | None, lower_is_better: bool | None = None) -> str:
    """``▲ 29% worse``, ``▼ 7 pp better``, ``▲ 3% flat``, ``→ 0% flat``,
    ``▲ 12% · not enough data``; ``▲ from 0 · worse`` when the previous value was 0."""
    size = change(kind, c, direction)
    if c is None:
        if direction in ("better", "worse") and lower_is_better is not None:
            rose = (direction == "worse") == lower_is_better
            return f"{UP if rose else DOWN} from 0 · {direction}"
        return direction
    head = f"{arrow(kind, c)} {size}"
    if direction == "not enough data":
        return f"{head} · not enough data"
    return f"{head} {direction}"


def card_trend(c: MetricCard) -> str:
    return trend(c.kind, c.trend, c.change, c.lower_is_better)


def previous(c: MetricCard) -> str:
    return f"previous {value(c.kind, c.previous_value)} (n = {c.previous_n})"


# --- periods and sparklines ------------------------------------------------------------------


def period(p: PeriodInfo) -> str:
    """The period's name as messages show it ("December 2026 so far (Dec 1 – Dec 3)")."""
    return p.description


def period_label(p: PeriodInfo) -> str:
    """The short name: ``2026-12 so far``, ``2026-W46``."""
    return f"{p.label} so far" if p.in_progress else p.label


def axis_period(label: str, first: date | None, last: date | None) -> str:
    """A period's name under a chart's bar: ``W46``, ``Nov 2026``, ``2026-Q3``, and for a
    rolling window its days (``Nov 6–Dec 3``)."""
    if re.fullmatch(r"\d{4}-W\d{2}", label):
        return label[5:]
    if re.fullmatch(r"\d{4}-\d{2}", label) and first is not None:
        return f"{first:%b %Y}"
    if re.fullmatch(r"\d+d", label) and first is not None and last is not None:
        return f"{first:%b} {first.day}–\n{last:%b} {last.day}"
    return label


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


#: how each time basis reads beside a number (METRICS.md, Time)
TIME_BASIS = {"business_hours": "business hours", "calendar": "calendar time"}


def time_basis(c: MetricCard) -> str | None:
    """``business hours`` for a card counting working time only; ``calendar time`` for a
    team with working hours whose card counts calendar time (incident times, or asked
    for); None for a team without working hours."""
    return TIME_BASIS.get(c.time_basis or "")


def with_basis(c: MetricCard, text: str, sep: str = " · ") -> str:
    """``text`` followed by the card's time basis (``Cycle time · payments · business
    hours``); ``text`` alone for a team without working hours."""
    basis = time_basis(c)
    return f"{text}{sep}{basis}" if basis else text


def agreement(key: str, limit: float, business_hours: bool = False) -> str:
    """How a working agreement reads: ``first review within 4h (business hours)``,
    ``PRs under 400 lines``, ``no open PR idle for 3d``."""
    if key == "pr_size_under":
        return f"PRs under {lines(limit)}"
    basis = " (business hours)" if business_hours else ""
    if key == "first_review_within":
        return f"first review within {duration(limit)}{basis}"
    return f"no open PR idle for {duration(limit)}{basis}"


def breach_measure(
    key: str,
    measured: float,
    business_hours: bool = False,
    snoozed_until: datetime | None = None,
) -> str:
    """How long (or how big) a PR in breach is, and its snooze: ``waiting 6.2h (business
    hours)``, ``612 lines``, ``idle 4.1d · snoozed until 2026-11-04 12:00 UTC``."""
    if key == "pr_size_under":
        out = lines(measured)
    else:
        word = "waiting" if key == "first_review_within" else "idle"
        out = f"{word} {duration(measured)}" + (" (business hours)" if business_hours else "")
    if snoozed_until is not None:
        out += f" · snoozed until {snoozed_until.strftime('%Y-%m-%d %H:%M')} UTC"
    return out


#: the titles of the agreement messages (nudge, roll-up, the ``agreements`` answer)
AGREEMENT_TITLES = {
    "nudge": "Working agreement missed",
    "rollup": "Still open against your working agreements",
    "list": "Working agreements",
}


def snoozed_note(n: int) -> str:
    return f"{n} snoozed PR{'s' if n != 1 else ''} not listed"


def excluded(n: int) -> str | None:
    """``2 PRs excluded (kpi-exclude label or a lead)`` when a population left PRs out."""
    if n <= 0:
        return None
    return f"{n} PR{'s' if n != 1 else ''} excluded (exclude label or by a lead)"


def business_hours(c: MetricCard) -> str:
    """`` (business hours)`` after a value that counts working time only, else nothing:
    for the lines of digests, where most KPIs count no time at all."""
    return " (business hours)" if c.time_basis == "business_hours" else ""


def working_hours(wh: WorkingHours, timezone: str) -> str:
    """A team's working time as a sentence's end: ``mon-fri 09:00-17:00 (Europe/Berlin),
    holidays DE-BE and 2 more days``."""
    names = WEEKDAYS
    runs: list[list[int]] = []
    for d in sorted(wh.days):
        if runs and runs[-1][-1] == d - 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    days = ", ".join(names[r[0]] if len(r) == 1 else f"{names[r[0]]}-{names[r[-1]]}" for r in runs)

    def clock(seconds: int) -> str:
        return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"

    text = f"{days} {clock(wh.start)}-{clock(wh.end)} ({timezone})"
    off = list(wh.calendars)
    if wh.holidays:
        n = len(wh.holidays)
        off.append(f"{n} more {plural(n, 'day')}" if off else f"{n} {plural(n, 'day')}")
    return text + (f", holidays {and_list(off)}" if off else "")


def unknown_contents(card_metric: str, breakdown: Mapping[str, object] | None) -> str | None:
    """The lead-time card's note on deployments whose contents are unknown, or None."""
    n = (breakdown or {}).get("unknown_contents")
    if card_metric != "lead-time" or not isinstance(n, int) or n <= 0:
        return None
    if n == 1:
        return "1 deployment with unknown contents is not counted"
    return f"{n} deployments with unknown contents are not counted"


def team_definition(
    repos: int,
    members: int | None,
    github_team: str | None,
    paths: Sequence[str],
    path: Callable[[str], str] = str,
) -> str:
    """How a team's PRs are chosen, in a few words: ``2 repos · 5 members (acme/payments) ·
    paths services/payments/**``; ``all PRs of 2 repos`` without members nor paths.
    ``path`` sets a path apart where the markup would read its ``*`` (Slack: as code)."""
    words = [f"{repos} {plural(repos, 'repo')}"]
    if members is None and not paths:
        return f"all PRs of {words[0]}"
    if members is not None:
        team = f" ({github_team})" if github_team else ""
        words.append(f"{members} {plural(members, 'member')}{team}")
    if paths:
        shown = ", ".join(path(p) for p in paths[:3])
        shown += f" and {len(paths) - 3} more" if len(paths) > 3 else ""
        words.append(f"{'path' if len(paths) == 1 else 'paths'} {shown}")
    return " · ".join(words)


def and_list(words: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def no_source(items: Sequence[NoSource]) -> list[str]:
    """The health view's lines on KPIs without a source, one per missing kind of source:
    ``Delivery predictability and Scope creep: no source configured (add sprints to the
    team in kpibot.yml)``."""
    by_missing: dict[tuple[str, ...], list[str]] = {}
    for ns in items:
        by_missing.setdefault(ns.missing, []).append(ns.name)
    return [
        f"{and_list(names)}: no source configured, add {and_list(list(missing))} to the team "
        "in kpibot.yml"
        for missing, names in by_missing.items()
    ]


# --- JSON: rounded at the source, still in base units ----------------------------------------


def json_number(kind: Kind | None, v: float | None) -> float | int | None:
    """Durations in whole seconds, every other number to 4 decimals (``73299.30000000002``
    is ``73299``, ``0.8783783783783784`` is ``0.8784``)."""
    if v is None:
        return None
    if kind is Kind.DURATION:
        return half_up(v)
    r = round(float(v), 4)
    return int(r) if isinstance(v, int) else r


def json_breakdown(b: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A card's breakdown with its phases in whole seconds and its fractions to 4 decimals."""
    if b is None:
        return None
    out: dict[str, Any] = {}
    for k, v in b.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            out[k] = v
        elif k in PHASES:
            out[k] = json_number(Kind.DURATION, v)
        else:
            out[k] = json_number(None, v)
    return out


def baseline(kpi: str | None, amount: float | None, n: int | None = None) -> str:
    """An action item's baseline: the related KPI's value when it was logged."""
    if not kpi or kpi not in registry.BY_ID:
        return "no KPI"
    spec = registry.BY_ID[kpi]
    return f"{spec.name}: {value(spec.kind, amount)}" + (f" (n = {n})" if n is not None else "")


# --- threshold alerts -----------------------------------------------------------------------


def alert_headline(a: Alert) -> str:
    """``First review time of payments is off target`` / ``... recovered: back on target``
    (team names unescaped: each renderer escapes them)."""
    if a.crossing == "recovered":
        return f"{a.name} of {a.team} recovered: back on target"
    return f"{a.name} of {a.team} is off target"


def alert_detail(a: Alert) -> str:
    """``6.2h (n = 14) over the last 7 days, target < 4h, business hours``."""
    basis = TIME_BASIS.get(a.time_basis or "")
    days = f"{a.window_days} {plural(a.window_days, 'day')}"
    text = f"{value(a.kind, a.value)} (n = {a.n}) over the last {days}, "
    text += f"target {target(a.kind, a.target)}"
    return f"{text}, {basis}" if basis else text


def alert_when(a: Alert) -> str:
    """When the evaluation ran, in the team's zone: ``Checked Dec 3 09:00 (Europe/Berlin)``."""
    local = a.at.astimezone(ZoneInfo(a.timezone))
    return f"Checked {local:%b} {local.day} {local:%H:%M} ({a.timezone}), daily at {local:%H:%M}"


def day_list(moments: Sequence[datetime], timezone: str) -> str:
    """``Oct 2, Oct 20, Nov 14`` in the team's zone."""
    zone = ZoneInfo(timezone)
    return ", ".join(f"{m.astimezone(zone):%b} {m.astimezone(zone).day}" for m in moments)


def as_of(t: datetime | None) -> str:
    """A report's freshness: "data as of 2026-11-20 09:00 UTC" (METRICS.md, Freshness)."""
    if t is None:
        return "data as of: not synced yet"
    return f"data as of {moment(t)}"


def moment(t: datetime | None, never: str = "never") -> str:
    """A stored time as every message shows it: "2026-11-20 09:00 UTC"."""
    if t is None:
        return never
    if t.tzinfo is not None:
        t = t.astimezone(UTC)
    return f"{t:%Y-%m-%d %H:%M} UTC"


def notice(n: SourceNotice) -> tuple[str, list[str]]:
    """A freshness notice as a title and sentences of plain text (renderers escape them)."""
    st = n.state
    if n.kind == "recovered":
        return f"{st.label} works again", [
            f"KPIs of {n.team} that read it: {as_of(st.last_success)}."
        ]
    lines = []
    if st.failures >= FAILURES_TO_NOTICE:
        why = f"{st.label} failed {st.failures} {plural(st.failures, 'time')} in a row"
    else:
        why = f"{st.label} has delivered no new data since {moment(st.last_success)}"
        lines.append("Check that kpibot's scheduler runs and that 'kpibot sync' works.")
    if st.last_error:
        error = st.last_error.rstrip()
        lines.insert(0, f"Last error: {error}" + ("" if error.endswith(".") else "."))
    lines.append(
        f"KPIs of {n.team} that read it show {as_of(st.last_success)} until it works again."
    )
    return why, lines


def source_line(st: SourceState) -> str:
    """One source in ``/kpi status`` (plain text)."""
    mark = "failing" if st.failing else "ok"
    parts = [f"{st.label}: {mark}", f"last success {moment(st.last_success)}"]
    if st.failures:
        failed = f"{st.failures} {plural(st.failures, 'failure')} in a row"
        parts.append(f"{failed}, last at {moment(st.last_error_at)}")
    if st.polled:
        parts.append(f"next run {moment(st.next_run, 'not scheduled')}")
    else:
        parts.append("sent to kpibot (webhook)")
    return " · ".join(parts)
