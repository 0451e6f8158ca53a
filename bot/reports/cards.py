"""Platform-neutral report objects: metric cards, the DORA card and the health view.

Numbers stay in base units (seconds, fractions, lines); renderers do all formatting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from bot.metrics.engine import TeamEngine
from bot.metrics.periods import Period
from bot.metrics.registry import BY_ID, DORA, METRICS, Kind, MetricSpec, Target
from bot.metrics.stats import trend
from bot.metrics.values import MetricValue
from bot.reports.freshness import oldest, team_data_as_of
from bot.settings import TeamConfig

SPARK_PERIODS = 8


@dataclass(frozen=True)
class PeriodInfo:
    label: str
    description: str
    start: datetime  # aware UTC
    end: datetime  # for a period in progress: the moment its numbers were computed
    timezone: str
    in_progress: bool = False  # "so far": the period had not ended

    @classmethod
    def of(cls, p: Period) -> PeriodInfo:
        return cls(
            p.label,
            p.describe(),
            p.start.replace(tzinfo=UTC),
            p.end.replace(tzinfo=UTC),
            p.zone.key,
            p.in_progress,
        )


@dataclass(frozen=True)
class SparkPoint:
    """One past period of a card's history (oldest first): what its charts draw."""

    label: str
    value: float | None
    n: int
    first_day: date | None = None  # the period's first and last local days
    last_day: date | None = None
    band: str | None = None  # DORA keys: the period's band
    phases: tuple[tuple[str, float | None], ...] = ()  # cycle and lead time: p50 per phase


@dataclass(frozen=True)
class MetricCard:
    metric: str
    name: str
    team: str
    period: PeriodInfo
    kind: Kind
    unit: str
    lower_is_better: bool
    n: int
    value: float | None
    p50: float | None
    p75: float | None
    p90: float | None
    target: Target
    status: str  # on target | off target | no data
    previous_n: int
    previous_value: float | None
    trend: str  # better | worse | flat | not enough data
    change: float | None  # relative, or for a rate KPI the difference in fractions (points)
    band: str | None
    edition: int | None
    breakdown: dict[str, Any] | None
    sparkline: tuple[SparkPoint, ...]
    definition: str
    #: ``business_hours`` or ``calendar`` for a team with working hours (METRICS.md, Time),
    #: None for a team without them
    time_basis: str | None = None
    #: the oldest *data as of* (aware UTC) of the sources the KPI reads (METRICS.md,
    #: Freshness); None when one of them has never delivered data
    data_as_of: datetime | None = None
    #: PRs the period's population left out: a label in ``exclude_labels`` or a lead's exclusion
    excluded: int = 0


def status_of(mv: MetricValue, target: Target) -> str:
    if not mv.has_data or mv.value is None:
        return "no data"
    return "on target" if target.met_by(mv.value) else "off target"


#: the phases of the KPIs that have them (METRICS.md, the pull-request timeline)
PHASE_KEYS: dict[str, tuple[str, ...]] = {
    "cycle-time": ("coding", "pickup", "review"),
    "lead-time": ("coding", "pickup", "review", "deploy"),
}


def _spark_point(engine: TeamEngine, spec: MetricSpec, p: Period, v: MetricValue) -> SparkPoint:
    b = v.breakdown or {}
    phases = tuple((k, b.get(k) if v.has_data else None) for k in PHASE_KEYS.get(spec.id, ()))
    return SparkPoint(
        p.label,
        v.value if v.has_data else None,
        v.n,
        p.start_local.date(),
        p.last_day,
        engine.band(spec.id, v) if spec.dora else None,
        phases,
    )


def build_card(
    engine: TeamEngine, metric_id: str, period: Period, spark: int = SPARK_PERIODS
) -> MetricCard:
    """The card of ``period``; for a period in progress the trend compares with the same
    elapsed span of the previous period, while the sparkline shows whole past periods."""
    spec: MetricSpec = BY_ID[metric_id]
    periods = [period.previous(k) for k in range(spark - 1, 0, -1)] + [period]
    if spark < 2:
        periods = [period.previous(), period]
    base = period.comparison()
    engine.prefetch([*periods, base])
    values = engine.values(metric_id, periods)
    current = values[-1]
    prev = values[-2] if base == periods[-2] else engine.value(metric_id, base)
    tr = trend(
        current.value, current.n, prev.value, prev.n, spec.lower_is_better, spec.trend_in_points
    )
    target = engine.team.target_for(metric_id)
    band = engine.band(metric_id, current)
    return MetricCard(
        metric=spec.id,
        name=spec.name,
        team=engine.team.name,
        period=PeriodInfo.of(period),
        kind=spec.kind,
        unit=spec.unit,
        lower_is_better=spec.lower_is_better,
        n=current.n,
        value=current.value if current.has_data else None,
        p50=current.p50,
        p75=current.p75,
        p90=current.p90,
        target=target,
        status=status_of(current, target),
        previous_n=prev.n,
        previous_value=prev.value if prev.has_data else None,
        trend=tr.direction,
        change=tr.change,
        band=band,
        edition=engine.team.dora_edition if spec.dora else None,
        breakdown=current.breakdown,
        sparkline=tuple(
            _spark_point(engine, spec, p, v)
            for p, v in zip(periods[-spark:], values[-spark:], strict=True)
        )
        if spark >= 2
        else (),
        definition=spec.definition,
        time_basis=engine.time_basis(metric_id),
        data_as_of=team_data_as_of(engine.session, engine.team, spec.sources),
        excluded=engine.excluded(metric_id, period),
    )


@dataclass(frozen=True)
class DoraCard:
    team: str
    period: PeriodInfo
    edition: int
    cards: tuple[MetricCard, ...]

    @property
    def data_as_of(self) -> datetime | None:
        return oldest(c.data_as_of for c in self.cards)


def build_dora(engine: TeamEngine, period: Period) -> DoraCard:
    return DoraCard(
        engine.team.name,
        PeriodInfo.of(period),
        engine.team.dora_edition,
        tuple(build_card(engine, m, period) for m in DORA),
    )


@dataclass(frozen=True)
class NoSource:
    """A KPI the health view leaves out: the team has none of ``missing`` configured."""

    metric: str
    name: str
    missing: tuple[str, ...]  # deployments | incidents | sprints | repos


@dataclass(frozen=True)
class Health:
    team: str
    period: PeriodInfo
    cards: tuple[MetricCard, ...]
    no_source: tuple[NoSource, ...] = ()
    #: PRs merged in the period that the PR KPIs left out (excluded by label or by a lead)
    excluded: int = 0

    @property
    def with_data(self) -> int:
        return sum(1 for c in self.cards if c.status != "no data")

    @property
    def on_target(self) -> int:
        return sum(1 for c in self.cards if c.status == "on target")

    @property
    def data_as_of(self) -> datetime | None:
        return oldest(c.data_as_of for c in self.cards)


def configured_sources(team: TeamConfig) -> frozenset[str]:
    """The kinds of source a team has configured (``MetricSpec.sources`` names them)."""
    have = set()
    if team.repos:
        have.add("repos")
    have.add("deployments")  # every team has a deployment source (default: GitHub's)
    have.add("incidents")  # ... and an incident source (default: GitHub issues)
    if team.sprints is not None:
        have.add("sprints")
    return frozenset(have)


def build_health(engine: TeamEngine, period: Period) -> Health:
    """Every KPI of the registry the team has the sources for, against its target; the
    others are named with the source they need."""
    have = configured_sources(engine.team)
    cards, missing = [], []
    for spec in METRICS:
        lacking = tuple(s for s in spec.sources if s not in have)
        if lacking:
            missing.append(NoSource(spec.id, spec.name, lacking))
        else:
            cards.append(build_card(engine, spec.id, period, spark=2))
    return Health(
        engine.team.name,
        PeriodInfo.of(period),
        tuple(cards),
        tuple(missing),
        engine.excluded("cycle-time", period),
    )
