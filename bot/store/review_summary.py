"""Each pull request's first review and first approval, kept with the pull request.

A metric card over a large organisation's span reads thousands of merged PRs; reading their
reviews too (about 1.6 per PR) was about 40 % of its time. So the store keeps, in four columns
of ``pull_requests``, what :func:`bot.ingest.rules.first_reviews` answers for the PR under
the **default bot rule** (the provider's flag and the default ``exclude_authors`` patterns,
``DEFAULT_BOTS``): the first review's and first approval's time and reviewer. A team whose own
``exclude_authors`` name a stored reviewer has that PR's reviews read again with its rule
(``TeamEngine``), so every number is the rule's, whatever the team's configuration.

The summary follows every write of the reviews and of a PR's author:

- the store's upserts (``bot.store.writes``: ``kpibot sync``, the webhooks) call
  :func:`refresh` for the PRs they wrote;
- writes through the ORM (a ``Review`` or a ``PullRequest`` added, changed or deleted in a
  session) are caught at each flush by the listeners below, which refresh the PRs concerned;
- migration 0013 computed it for the PRs stored before it (:func:`refresh_all`).

Changing ``DEFAULT_BOTS`` needs a migration that calls :func:`refresh_all` again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, event, inspect, select, update
from sqlalchemy.orm import Session

from bot.ingest.rules import FirstReviews, first_reviews
from bot.metrics.patterns import BotFilter
from bot.settings import DEFAULT_EXCLUDE_AUTHORS
from bot.store.models import PullRequest, Review

#: the bot rule of the stored summary: the provider's flag and the default patterns
DEFAULT_BOTS = BotFilter(DEFAULT_EXCLUDE_AUTHORS)

#: the columns of ``pull_requests`` that hold the summary, in ``FirstReviews`` order
COLUMNS = ("first_review_at", "first_review_by", "first_approval_at", "first_approval_by")

_CHUNK = 900  # ids per statement (SQLite's default limit of bound parameters is 999)
_PENDING = "kpibot.review_summary"  # Session.info key: PR ids whose summary a flush changes


def summaries(conn: Connection, pr_ids: Iterable[int]) -> dict[int, FirstReviews]:
    """The summary of each of these PRs, computed from its stored reviews (a PR without a
    qualifying review is absent)."""
    out: dict[int, FirstReviews] = {}
    ids = sorted(set(pr_ids))
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        authors = {
            pr: (author or "").lower()
            for pr, author in conn.execute(
                select(PullRequest.id, PullRequest.author_login).where(PullRequest.id.in_(chunk))
            )
        }
        rows = conn.execute(
            select(
                Review.pull_request_id,
                Review.author_login,
                Review.author_is_bot,
                Review.state,
                Review.submitted_at,
                Review.dismissed,
            )
            .where(Review.pull_request_id.in_(chunk))
            .order_by(Review.pull_request_id, Review.submitted_at, Review.id)
        )
        out.update(first_reviews((tuple(r) for r in rows), authors, DEFAULT_BOTS))
    return out


def refresh(conn: Connection, pr_ids: Iterable[int]) -> int:
    """Compute and store the summary of these PRs again; returns how many were written."""
    ids = sorted(set(pr_ids))
    if not ids:
        return 0
    found = summaries(conn, ids)
    none = FirstReviews()
    params = [
        {"pr": pr, **dict(zip(COLUMNS, _values(found.get(pr, none)), strict=True))} for pr in ids
    ]
    table = cast(Table, PullRequest.__table__)
    stmt = (
        update(table)
        .where(table.c.id == bindparam("pr"))
        .values({c: bindparam(c) for c in COLUMNS})
    )
    for i in range(0, len(params), 5000):
        conn.execute(stmt, params[i : i + 5000])
    return len(params)


def refresh_all(conn: Connection, progress: Any = None) -> int:
    """Compute the summary of every stored PR that has a review (migration 0013); PRs without
    reviews keep NULLs, which is their summary."""
    done = 0
    last = 0
    while True:
        ids = list(
            conn.scalars(
                select(Review.pull_request_id)
                .where(Review.pull_request_id > last)
                .group_by(Review.pull_request_id)
                .order_by(Review.pull_request_id)
                .limit(20_000)
            )
        )
        if not ids:
            return done
        done += refresh(conn, ids)
        last = ids[-1]
        if progress is not None:
            progress(done)


def _values(s: FirstReviews) -> tuple[Any, ...]:
    return (s.review_at, s.review_by, s.approval_at, s.approval_by)


# --- writes through the ORM ---------------------------------------------------------------


@event.listens_for(Session, "before_flush")
def _note_review_writes(session: Session, _context: Any, _instances: Any) -> None:
    """Note the PRs whose reviews (or author) this flush changes."""
    pending: set[int] = session.info.setdefault(_PENDING, set())
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Review):
            if obj.pull_request_id is not None:
                pending.add(obj.pull_request_id)
            history = inspect(obj).attrs.pull_request_id.history
            pending.update(i for i in history.deleted or () if i is not None)
        elif (
            isinstance(obj, PullRequest)
            and obj.id is not None
            and obj not in session.new
            and inspect(obj).attrs.author_login.history.has_changes()
        ):
            pending.add(obj.id)


@event.listens_for(Session, "after_flush_postexec")
def _refresh_after_flush(session: Session, _context: Any) -> None:
    """Refresh the noted PRs' summaries in the same transaction, and expire the loaded PR
    objects' copies of them."""
    pending: set[int] | None = session.info.pop(_PENDING, None)
    if not pending:
        return
    refresh(session.connection(), pending)
    for pr in pending:
        obj = session.identity_map.get(session.identity_key(PullRequest, (pr,)))
        if obj is not None:
            session.expire(obj, list(COLUMNS))


__all__ = ["COLUMNS", "DEFAULT_BOTS", "refresh", "refresh_all", "summaries"]
