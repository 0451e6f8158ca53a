"""How each source of data fares (``source_health``): every sync run and accepted webhook
delivery is recorded here; cards read their *data as of* from it, ``/kpi status`` lists it and
the scheduler's freshness notices follow its ``failing`` state.

Times are naive UTC. Error texts are stored without the configured secrets.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.store.models import SourceHealth
from bot.store.session import unit_of_work, utc

MAX_ERROR = 2000
REDACTED = "***"
#: sources whose scope is a repository (compared without case, as GitHub does)
REPO_SCOPED = frozenset({"github", "github-webhooks", "deployments-webhook"})


def scope_of(source: str, scope: str) -> str:
    """The stored scope of a source: repositories in lower case."""
    return scope.lower() if source in REPO_SCOPED else scope


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret (token, password, key) replaced by ``***``."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text[:MAX_ERROR]


def _row(session: Session, source: str, scope: str) -> SourceHealth:
    row = session.get(SourceHealth, (source, scope))
    if row is None:
        row = SourceHealth(source=source, scope=scope, failures=0, failing=False, episode=0)
        session.add(row)
    return row


def record(
    factory: sessionmaker[Session],
    source: str,
    scope: str,
    now: datetime,
    error: str | None = None,
    secrets: Iterable[str | None] = (),
) -> None:
    """Record one run of a source in its own transaction: a success, or with ``error`` a
    failure. Two processes adding the same source's first row at once: the loser retries."""
    scope = scope_of(source, scope)
    for attempt in (1, 2):
        try:
            with unit_of_work(factory) as s:
                if error is None:
                    record_success(s, source, scope, now)
                else:
                    record_failure(s, source, scope, now, error, secrets)
            return
        except IntegrityError:
            if attempt == 2:
                raise


def record_success(session: Session, source: str, scope: str, now: datetime) -> None:
    """A successful run (or an accepted webhook delivery) at ``now``; an older report than
    what is stored never moves the data back."""
    now = utc(now)
    row = _row(session, source, scope)
    if row.last_success_at is None or now >= row.last_success_at:
        row.last_success_at = now
    if row.last_attempt_at is None or now >= row.last_attempt_at:
        row.last_attempt_at = now
        row.failures = 0


def record_failure(
    session: Session,
    source: str,
    scope: str,
    now: datetime,
    error: str,
    secrets: Iterable[str | None] = (),
) -> None:
    """A failed run at ``now``; ``error`` is what went wrong and what to check."""
    now = utc(now)
    row = _row(session, source, scope)
    if row.last_attempt_at is not None and now < row.last_attempt_at:
        return  # a late report: a newer run is recorded already
    row.last_attempt_at = now
    row.last_error = redact(error, secrets)
    row.last_error_at = now
    row.failures = (row.failures or 0) + 1


def set_next_run(session: Session, sources: Iterable[str], next_run: datetime | None) -> None:
    """When the sources of these kinds are read next (the periodic sync)."""
    wanted = list(sources)
    if not wanted:
        return
    for row in session.scalars(select(SourceHealth).where(SourceHealth.source.in_(wanted))):
        row.next_run_at = utc(next_run) if next_run is not None else None


def rows(session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], SourceHealth]:
    """The stored rows of these (source, scope) pairs (missing ones: never run)."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    found = session.scalars(
        select(SourceHealth).where(tuple_(SourceHealth.source, SourceHealth.scope).in_(wanted))
    )
    return {(r.source, r.scope): r for r in found}


def as_of(session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], datetime]:
    """The *data as of* (naive UTC) of the sources that have had a success."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    stmt = select(SourceHealth.source, SourceHealth.scope, SourceHealth.last_success_at).where(
        tuple_(SourceHealth.source, SourceHealth.scope).in_(wanted),
        SourceHealth.last_success_at.is_not(None),
    )
    return {(s, sc): t for s, sc, t in session.execute(stmt).tuples() if t is not None}


def all_rows(session: Session) -> list[SourceHealth]:
    return list(
        session.scalars(select(SourceHealth).order_by(SourceHealth.source, SourceHealth.scope))
    )


def set_failing(session: Session, row: SourceHealth, failing: bool) -> None:
    """Record the announced state; a source that starts failing opens a new episode."""
    if failing and not row.failing:
        row.episode = (row.episode or 0) + 1
    row.failing = failing
