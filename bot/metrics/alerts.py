"""Threshold alerts: the crossing rule (METRICS.md, Agreements and alerts), the one home of it.

Pure: evaluations in, statuses and crossings out. The scheduler's daily evaluation and the
calibration preview (``/kpi alert preview``) both step through :func:`step`, so the preview
counts exactly the alerts the live evaluation sends for the same data and target.

- A KPI is evaluated once a day at :data:`EVALUATION_TIME` team time over the rolling window
  ending then (:func:`window_days`: 7 days for first review time and PR size, else 28).
- An evaluation with data and ``n >= 5`` observes *on target* or *off target*; one without
  data or with ``n < 5`` observes nothing and keeps the previous status.
- A crossing is a change of status between two evaluations: on -> off sends "off target",
  off -> on sends "recovered". The first status observed is no crossing.
- Every crossing starts a cool-down of 7 days: the opposite crossing within it is not sent,
  and the status it sets is applied silently (it starts a cool-down of its own).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from bot.metrics.registry import Target
from bot.metrics.values import MetricValue

ON, OFF = "on target", "off target"
OFF_TARGET, RECOVERED = "off target", "recovered"
MIN_N = 5
COOL_DOWN = timedelta(days=7)
EVALUATION_TIME = time(9, 0)  # team time
PREVIEW_DAYS = 90
SHORT_WINDOW = ("first-review", "pr-size")


def window_days(kpi: str) -> int:
    """The rolling window a KPI is evaluated over."""
    return 7 if kpi in SHORT_WINDOW else 28


def observed(mv: MetricValue, target: Target) -> str | None:
    """The status one evaluation observes; None (no data, or ``n < 5``): keep the previous."""
    if not mv.has_data or mv.value is None or mv.n < MIN_N:
        return None
    return ON if target.met_by(mv.value) else OFF


@dataclass(frozen=True)
class State:
    """What the rule remembers between evaluations."""

    status: str | None = None  # on target | off target | None (nothing observed yet)
    crossed_at: datetime | None = None  # the last crossing, sent or silent


@dataclass(frozen=True)
class Crossing:
    at: datetime
    kind: str  # off target | recovered
    sent: bool  # False: within the cool-down of the previous crossing, applied silently


def step(state: State, seen: str | None, at: datetime) -> tuple[State, Crossing | None]:
    """One evaluation at ``at`` observing ``seen`` (:func:`observed`)."""
    if seen is None or seen == state.status:
        return state, None
    if state.status is None:  # the first status observed: where the rule starts from
        return State(seen, state.crossed_at), None
    kind = OFF_TARGET if seen == OFF else RECOVERED
    cooling = state.crossed_at is not None and at - state.crossed_at < COOL_DOWN
    return State(seen, at), Crossing(at, kind, sent=not cooling)


def replay(
    evaluations: Iterable[tuple[datetime, str | None]], state: State | None = None
) -> tuple[State, list[Crossing]]:
    """Step through ``(at, observed)`` evaluations in time order; every crossing, sent or not."""
    current = state or State()
    crossings: list[Crossing] = []
    for at, seen in evaluations:
        current, crossing = step(current, seen, at)
        if crossing is not None:
            crossings.append(crossing)
    return current, crossings
