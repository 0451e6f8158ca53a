"""The weekly leading digest and the monthly lagging digest (PRODUCT.md, Digests)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from bot.metrics.engine import TeamEngine, WaitingPR
from bot.metrics.periods import Period
from bot.metrics.registry import DORA, LEADING
from bot.reports.cards import MetricCard, PeriodInfo, SparkPoint, build_card
from bot.reports.freshness import oldest
from bot.store import actions
from bot.store.models import ActionItem

PHASE_NAMES = {"coding": "coding", "pickup": "waiting for first review", "review": "review"}


@dataclass(frozen=True)
class ActionItemView:
    id: int
    opportunity: str
    resolution: str
    owner: str
    due_on: date
    completed_on: date | None
    kpi: str | None
    baseline: float | None  # the KPI when the item was logged
    after: float | None  # the KPI over the digest's period
    overdue: bool


@dataclass(frozen=True)
class WeeklyDigest:
    team: str
    period: PeriodInfo
    cards: tuple[MetricCard, ...]
    biggest_phase: tuple[str, float] | None  # (phase, p50 seconds)
    waiting: tuple[WaitingPR, ...]
    open_items: tuple[ActionItemView, ...]

    @property
    def overdue_items(self) -> tuple[ActionItemView, ...]:
        return tuple(i for i in self.open_items if i.overdue)

    @property
    def data_as_of(self) -> datetime | None:
        """The oldest *data as of* of the sources its KPIs read (METRICS.md, Freshness)."""
        return oldest(c.data_as_of for c in self.cards)


@dataclass(frozen=True)
class MonthlyDigest:
    team: str
    period: PeriodInfo
    edition: int
    dora: tuple[MetricCard, ...]
    predictability: MetricCard
    scope_creep: MetricCard
    three_month: dict[str, tuple[SparkPoint, ...]]
    completed_items: tuple[ActionItemView, ...]
    overdue_items: tuple[ActionItemView, ...]

    @property
    def data_as_of(self) -> datetime | None:
        """The oldest *data as of* of the sources its KPIs read (METRICS.md, Freshness)."""
        return oldest(c.data_as_of for c in (*self.dora, self.predictability, self.scope_creep))


def _item_views(
    engine: TeamEngine, items: list[ActionItem], today: date, period: Period | None
) -> tuple[ActionItemView, ...]:
    out = []
    for it in items:
        after = None
        if period is not None and it.kpi:
            mv = engine.value(it.kpi, period)
            after = mv.value if mv.has_data else None
        out.append(
            ActionItemView(
                it.id,
                it.opportunity,
                it.resolution,
                it.owner,
                it.due_on,
                it.completed_on,
                it.kpi,
                it.baseline_value,
                after,
                it.completed_on is None and it.due_on < today,
            )
        )
    return tuple(out)


def _local_today(engine: TeamEngine, now: datetime) -> date:
    """The team's local date at ``now`` (naive UTC)."""
    return now.replace(tzinfo=UTC).astimezone(engine.team.zone).date()


def _biggest_phase(card: MetricCard) -> tuple[str, float] | None:
    b = card.breakdown or {}
    phases = [(k, b[k]) for k in ("coding", "pickup", "review") if b.get(k) is not None]
    if not phases:
        return None
    return max(phases, key=lambda kv: kv[1])


def build_weekly(engine: TeamEngine, period: Period, now: datetime) -> WeeklyDigest:
    """``now``: naive UTC, for work waiting now and overdue items."""
    cards = tuple(build_card(engine, m, period) for m in LEADING)
    local_today = _local_today(engine, now)
    items = actions.open_items(engine.session, engine.team_id) if engine.team_id is not None else []
    return WeeklyDigest(
        engine.team.name,
        PeriodInfo.of(period),
        cards,
        _biggest_phase(cards[0]),
        tuple(engine.waiting_for_review(now)),
        _item_views(engine, items, local_today, None),
    )


def build_monthly(engine: TeamEngine, period: Period, now: datetime) -> MonthlyDigest:
    dora = tuple(build_card(engine, m, period) for m in DORA)
    pred = build_card(engine, "predictability", period)
    creep = build_card(engine, "scope-creep", period)
    three = {c.metric: c.sparkline[-3:] for c in (*dora, pred)}
    today = _local_today(engine, now)
    completed: list[ActionItem] = []
    overdue: list[ActionItem] = []
    if engine.team_id is not None:
        completed = actions.completed_between(
            engine.session,
            engine.team_id,
            period.start_local.date(),
            period.last_day + timedelta(days=1),
        )
        overdue = [
            i for i in actions.open_items(engine.session, engine.team_id) if i.due_on < today
        ]
    return MonthlyDigest(
        engine.team.name,
        PeriodInfo.of(period),
        engine.team.dora_edition,
        dora,
        pred,
        creep,
        three,
        _item_views(engine, completed, today, period),
        _item_views(engine, overdue, today, None),
    )
