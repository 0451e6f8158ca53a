"""Threshold alerts as reports: one daily evaluation of a KPI, the alert a crossing sends and
the calibration preview. The crossing rule itself is :mod:`bot.metrics.alerts`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.metrics import alerts as rule
from bot.metrics.engine import TeamEngine
from bot.metrics.periods import Period, rolling
from bot.metrics.registry import BY_ID, Kind, Target
from bot.metrics.values import MetricValue


@dataclass(frozen=True)
class Evaluation:
    at: datetime  # aware UTC: 09:00 team time of its day
    value: MetricValue
    seen: str | None  # what the rule observes (None: keeps the previous status)


@dataclass(frozen=True)
class Alert:
    """The message of one sent crossing, as every platform renders it."""

    team: str
    kpi: str
    name: str
    kind: Kind
    crossing: str  # off target | recovered
    value: float | None
    n: int
    target: Target
    window_days: int
    at: datetime  # the evaluation, aware UTC
    timezone: str
    time_basis: str | None = None  # business_hours | calendar | None (no working hours)


@dataclass(frozen=True)
class Preview:
    """``/kpi alert preview``: the crossings the last 90 days would have sent."""

    team: str
    kpi: str
    name: str
    kind: Kind
    target: Target
    days: int
    first: datetime | None  # the first and last evaluation replayed (aware UTC)
    last: datetime | None
    sent: tuple[rule.Crossing, ...]
    silent: int  # crossings within a cool-down, applied silently
    timezone: str


def evaluation_times(now: datetime, zone: ZoneInfo, days: int) -> list[datetime]:
    """The daily evaluation moments (09:00 team time) of the ``days`` local days ending with
    ``now``'s, those at or before ``now``; aware UTC, oldest first."""
    today = now.astimezone(zone).date()
    out = []
    for k in range(days - 1, -1, -1):
        at = datetime.combine(today - timedelta(days=k), rule.EVALUATION_TIME, tzinfo=zone)
        if at <= now:
            out.append(at.astimezone(UTC))
    return out


def window(kpi: str, at: datetime, zone: ZoneInfo) -> Period:
    return rolling(rule.window_days(kpi), at, zone)


def evaluate(
    engine: TeamEngine, kpi: str, times: Sequence[datetime], target: Target
) -> list[Evaluation]:
    """The KPI over the rolling window ending at each of ``times`` (one pass over the store)."""
    zone = engine.team.zone
    values = engine.values(kpi, [window(kpi, at, zone) for at in times])
    return [
        Evaluation(at, mv, rule.observed(mv, target)) for at, mv in zip(times, values, strict=True)
    ]


def preview(
    engine: TeamEngine,
    kpi: str,
    target: Target,
    now: datetime,
    days: int = rule.PREVIEW_DAYS,
) -> Preview:
    """Replay the daily evaluations of the ``days`` days ending today with ``target``,
    starting from the status of the first one (METRICS.md, Calibration preview)."""
    times = evaluation_times(now, engine.team.zone, days)
    evaluations = evaluate(engine, kpi, times, target)
    _, crossings = rule.replay((e.at, e.seen) for e in evaluations)
    spec = BY_ID[kpi]
    return Preview(
        engine.team.name,
        kpi,
        spec.name,
        spec.kind,
        target,
        days,
        times[0] if times else None,
        times[-1] if times else None,
        tuple(c for c in crossings if c.sent),
        sum(1 for c in crossings if not c.sent),
        engine.team.timezone,
    )
