"""Threshold alerts in the store: which are on (chat settings over kpibot.yml), where the
crossing rule stands for each team's KPI, and the crossings to announce.

An evaluation writes the rule's new state and, when it sends a crossing, the crossing's
:class:`~bot.store.models.AlertEvent` in one transaction, guarded by the previous evaluation
time: two processes (or a restart) evaluating the same day store it once. Each event is then
posted to each of the team's conversations through the exactly-once claim of
:func:`bot.store.digest_runs.claim_alert`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.metrics import alerts as rule
from bot.metrics.registry import Target
from bot.store.digest_runs import DONE
from bot.store.models import AlertDelivery, AlertEvent, AlertSetting, AlertState
from bot.store.session import aware, utc


def chat_settings(session: Session, team_id: int) -> dict[str, bool]:
    """KPI id -> on/off, as set in chat for a team."""
    rows = session.execute(
        select(AlertSetting.kpi, AlertSetting.enabled).where(AlertSetting.team_id == team_id)
    )
    return {kpi: bool(on) for kpi, on in rows}


def enabled(configured: Mapping[str, bool], chat: Mapping[str, bool]) -> list[str]:
    """The KPIs alerting for a team: kpibot.yml's ``alerts:``, each overridden by chat."""
    merged = {**configured, **chat}
    return sorted(k for k, on in merged.items() if on)


def set_enabled(
    session: Session, team_id: int, kpi: str, on: bool, *, by: str | None, now: datetime
) -> None:
    """Switch a team's alert on or off. Switching it on starts the rule afresh: the next
    evaluation sets the status it starts from."""
    row = session.get(AlertSetting, (team_id, kpi))
    if row is None:
        session.add(AlertSetting(team_id=team_id, kpi=kpi, enabled=on, set_by=by, set_at=utc(now)))
    else:
        row.enabled, row.set_by, row.set_at = on, by, utc(now)
    if on:
        session.execute(
            delete(AlertState).where(AlertState.team_id == team_id, AlertState.kpi == kpi)
        )
    session.flush()


@dataclass(frozen=True)
class Stored:
    state: rule.State
    evaluated_at: datetime | None  # aware UTC; None: never evaluated


def state(session: Session, team_id: int, kpi: str) -> Stored:
    row = session.get(AlertState, (team_id, kpi))
    if row is None:
        return Stored(rule.State(), None)
    crossed = aware(row.crossed_at) if row.crossed_at else None
    return Stored(rule.State(row.status, crossed), aware(row.evaluated_at))


def record(
    factory: sessionmaker[Session],
    team_id: int,
    kpi: str,
    before: Stored,
    after: rule.State,
    at: datetime,
    sent: tuple[str, float | None, int, Target] | None,
) -> int | None:
    """Store an evaluation at ``at``: the rule's new state and, for a sent crossing
    (``sent``: crossing, value, n, target), its event, in one transaction. Returns the
    event's id; None when nothing is to be sent or another process stored this evaluation
    first (the state it read, ``before``, has changed since)."""
    values = {
        "status": after.status,
        "crossed_at": utc(after.crossed_at) if after.crossed_at else None,
        "evaluated_at": utc(at),
    }
    with factory() as s:
        try:
            if before.evaluated_at is None:
                s.add(AlertState(team_id=team_id, kpi=kpi, **values))
                s.flush()
            else:
                res = s.execute(
                    update(AlertState)
                    .where(
                        AlertState.team_id == team_id,
                        AlertState.kpi == kpi,
                        AlertState.evaluated_at == utc(before.evaluated_at),
                    )
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
                if res.rowcount != 1:  # type: ignore[attr-defined]
                    s.rollback()
                    return None
            event_id = None
            if sent is not None:
                crossing, value, n, target = sent
                event = AlertEvent(
                    team_id=team_id,
                    kpi=kpi,
                    evaluated_at=utc(at),
                    crossing=crossing,
                    value=value,
                    n=n,
                    target_op=target.op,
                    target_value=target.value,
                )
                s.add(event)
                s.flush()
                event_id = event.id
            s.commit()
        except IntegrityError:
            s.rollback()
            return None
    return event_id


def events_since(session: Session, since: datetime) -> list[AlertEvent]:
    """Crossings found at or after ``since``, oldest first."""
    return list(
        session.scalars(
            select(AlertEvent)
            .where(AlertEvent.evaluated_at >= utc(since))
            .order_by(AlertEvent.evaluated_at, AlertEvent.id)
        )
    )


def settled(session: Session, event_ids: list[int]) -> set[tuple[int, str, str]]:
    """(event, platform, conversation) deliveries posted or given up."""
    if not event_ids:
        return set()
    rows = session.execute(
        select(AlertDelivery.event_id, AlertDelivery.platform, AlertDelivery.channel_id).where(
            AlertDelivery.event_id.in_(event_ids), AlertDelivery.status.in_(DONE)
        )
    )
    return {(e, p, c) for e, p, c in rows}
