"""How fresh a team's data is: the *data as of* of a card or digest, the ``/kpi status``
report (every source of a team) and the notice posted when a source fails or recovers.

Times are aware UTC; renderers format them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from bot.ingest.sources import Group, SourceKey, source_groups
from bot.ingest.sources import team_sources as sources_of_team
from bot.metrics.freshness import data_as_of, is_failing
from bot.settings import TeamConfig
from bot.store import source_health
from bot.store.models import SourceHealth


def _aware(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def team_data_as_of(session: Session, team: TeamConfig, kinds: Iterable[str]) -> datetime | None:
    """The oldest *data as of* (aware UTC) of the sources the KPIs reading ``kinds`` use;
    None when one of them has never delivered data."""
    groups: list[Group] = source_groups(team, kinds)
    keys = [(k.source, k.scope) for g in groups for k in g]
    found = source_health.as_of(session, keys)
    times = {SourceKey(s, sc): t for (s, sc), t in found.items()}
    return _aware(data_as_of(groups, times))


def oldest(times: Iterable[datetime | None]) -> datetime | None:
    """The oldest of several cards' *data as of*: a card without one reads a source that
    has delivered nothing (or none at all), so it shows no number and is left out."""
    known = [t for t in times if t is not None]
    return min(known) if known else None


@dataclass(frozen=True)
class SourceState:
    """One source of a team as ``/kpi status`` and the notices show it."""

    source: str
    scope: str
    label: str  # "GitHub sync (acme/payments-api)"
    last_success: datetime | None  # its data as of
    last_error: str | None
    last_error_at: datetime | None
    failures: int  # consecutive failed runs
    next_run: datetime | None
    failing: bool
    polled: bool  # read on a schedule (a webhook is sent to kpibot instead)

    @property
    def key(self) -> SourceKey:
        return SourceKey(self.source, self.scope)


def source_state(
    key: SourceKey, row: SourceHealth | None, now: datetime, interval: timedelta | None = None
) -> SourceState:
    """``interval``: the periodic sync's, to judge staleness now; without it, a source is
    failing as the scheduler last judged it (or after too many failures in a row)."""
    failures = row.failures if row is not None else 0
    last = _aware(row.last_success_at) if row is not None else None
    judged = bool(row is not None and row.failing)
    return SourceState(
        key.source,
        key.scope,
        key.label,
        last,
        row.last_error if row is not None and failures else None,
        _aware(row.last_error_at) if row is not None and failures else None,
        failures,
        _aware(row.next_run_at) if row is not None and key.polled else None,
        (judged and interval is None)
        or is_failing(key, failures=failures, last_success=last, now=now, interval=interval),
        key.polled,
    )


@dataclass(frozen=True)
class SourceStatus:
    """``/kpi status``: every source of a team, with its data as of, last error, next run."""

    team: str
    now: datetime
    sources: tuple[SourceState, ...]
    data_as_of: datetime | None  # the oldest of them

    @property
    def failing(self) -> tuple[SourceState, ...]:
        return tuple(s for s in self.sources if s.failing)


def build_status(
    session: Session, team: TeamConfig, now: datetime, interval: timedelta | None = None
) -> SourceStatus:
    """``now``: aware; ``interval``: the periodic sync's, when known (see
    :func:`source_state`)."""
    keys = sources_of_team(team)
    found = source_health.rows(session, [(k.source, k.scope) for k in keys])
    # GitHub's webhooks are optional beside the sync: listed once they have delivered
    keys = [k for k in keys if k.source != "github-webhooks" or (k.source, k.scope) in found]
    states = tuple(source_state(k, found.get((k.source, k.scope)), now, interval) for k in keys)
    return SourceStatus(
        team.name,
        now,
        states,
        team_data_as_of(session, team, ["repos", "deployments", "incidents", "sprints"]),
    )


@dataclass(frozen=True)
class SourceNotice:
    """Posted once to each of a team's conversations when a source starts failing
    (``failing``) and once when it recovers (``recovered``)."""

    team: str
    kind: str  # failing | recovered
    state: SourceState
    stale_for: timedelta | None = None  # failing because its data is this old
