"""Sprint records of the sprint sources, their idempotent store writes, and sync cursors.

Incidents and deployments are written through ``bot.store.writes``.

Every write is an ``INSERT ... ON CONFLICT DO UPDATE`` keyed by the provider's ids (SQLite and
PostgreSQL), so a page stored twice, or two deliveries of one event racing each other, leave
exactly one row. Writing the same record again changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.store.models import Sprint, SprintItem, SyncCursor
from bot.store.session import utc


@dataclass(frozen=True)
class SprintItemRecord:
    key: str
    title: str
    committed: bool  # in the sprint when it started
    added: bool  # added after the sprint started
    removed: bool  # left the sprint before it ended
    completed: bool  # done (and still in the sprint) when it ended
    points: float | None


@dataclass(frozen=True)
class SprintRecord:
    provider_id: str
    name: str
    state: str  # active | closed
    started_at: datetime
    ended_at: datetime | None  # None while the sprint runs


def _insert(session: Session, model: type[Any]) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise NotImplementedError(f"upserts are not implemented for {dialect}")


def upsert(session: Session, model: type[Any], keys: Sequence[str], values: dict[str, Any]) -> None:
    """Insert ``values`` or update the row with the same ``keys`` columns."""
    stmt = _insert(session, model).values(**values)
    update = {k: stmt.excluded[k] for k in values if k not in keys}
    if update:
        stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=update)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    session.execute(stmt)


def store_sprint(session: Session, team_id: int, source: str, sprint: SprintRecord) -> int:
    """Upsert one sprint; returns its store id."""
    upsert(
        session,
        Sprint,
        ("team_id", "source", "provider_id"),
        {
            "team_id": team_id,
            "source": source,
            "provider_id": sprint.provider_id,
            "name": sprint.name[:255],
            "started_at": utc(sprint.started_at),
            "ended_at": utc(sprint.ended_at) if sprint.ended_at else None,
            "state": sprint.state,
        },
    )
    sid = session.scalar(
        select(Sprint.id).where(
            Sprint.team_id == team_id,
            Sprint.source == source,
            Sprint.provider_id == sprint.provider_id,
        )
    )
    assert sid is not None
    return sid


def store_sprint_items(session: Session, sprint_id: int, items: Iterable[SprintItemRecord]) -> int:
    """Upsert the items of one sprint (keyed by issue key); returns how many were written."""
    n = 0
    for item in items:
        upsert(
            session,
            SprintItem,
            ("sprint_id", "key"),
            {
                "sprint_id": sprint_id,
                "key": item.key,
                "title": item.title,
                "committed": item.committed,
                "added": item.added,
                "removed": item.removed,
                "completed": item.completed,
                "points": item.points,
            },
        )
        n += 1
    return n


def get_cursor(session: Session, source: str, scope: str, kind: str) -> str | None:
    row = session.get(SyncCursor, (source, scope, kind))
    return row.cursor if row is not None else None


def set_cursor(
    session: Session, source: str, scope: str, kind: str, cursor: str | None, now: datetime
) -> None:
    """Move a cursor; call it in the same transaction as the page it follows."""
    upsert(
        session,
        SyncCursor,
        ("source", "scope", "kind"),
        {"source": source, "scope": scope, "kind": kind, "cursor": cursor, "updated_at": utc(now)},
    )
