"""What the store keeps with each pull request from its reviews and its files.

A metric card over a large organisation's span reads thousands of merged PRs; reading their
reviews (about 1.6 per PR) and files (about 2.5 per PR) too was about half of its time. So the
store keeps, in columns of ``pull_requests``, what the ingestion rules answer for each PR under
the **default** settings:

- ``first_review_at``/``_by``, ``first_approval_at``/``_by``:
  :func:`bot.ingest.rules.first_reviews` under the default bot rule (the provider's flag and
  the default ``exclude_authors`` patterns, ``DEFAULT_BOTS``);
- ``counted_lines``: :func:`bot.ingest.rules.counted_lines` under the default
  ``ignore_paths`` (``DEFAULT_PATHS``); NULL when the PR has no file rows (its size is then the
  provider's total).

A team with ``exclude_authors`` of its own has the PRs whose stored reviewer it calls a bot
read again from their reviews, and a team with ``ignore_paths`` of its own reads its PRs'
files (``TeamEngine``), so every number is the rule's under the team's configuration.

The summary follows every write of the reviews, the files and a PR's author:

- the store's upserts (``bot.store.writes``: ``kpibot sync``, the webhooks) call
  :func:`refresh` for the PRs they wrote;
- writes through the ORM (a ``Review``, a ``PullRequestFile`` or a ``PullRequest`` added,
  changed or deleted in a session) are caught at each flush by the listeners below, which
  refresh the PRs concerned;
- migration 0013 computed it for the PRs stored before it (:func:`refresh_all`).

Changing ``DEFAULT_EXCLUDE_AUTHORS`` or ``DEFAULT_IGNORE_PATHS`` needs a migration that calls
:func:`refresh_all` again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, event, inspect, or_, select, update
from sqlalchemy.orm import Session

from bot.ingest.rules import FirstReviews, counted_lines, first_reviews
from bot.metrics.patterns import BotFilter, PathFilter
from bot.settings import DEFAULT_EXCLUDE_AUTHORS, DEFAULT_IGNORE_PATHS
from bot.store import queries as q
from bot.store.models import PullRequest, PullRequestFile, Review

#: the bot rule of the stored first reviews: the provider's flag and the default patterns
DEFAULT_BOTS = BotFilter(DEFAULT_EXCLUDE_AUTHORS)
#: the ignored paths of the stored sizes (a matcher per refresh: it caches every path it saw)
DEFAULT_PATHS = DEFAULT_IGNORE_PATHS

#: the columns of ``pull_requests`` that hold the summary
COLUMNS = (
    "first_review_at",
    "first_review_by",
    "first_approval_at",
    "first_approval_by",
    "counted_lines",
)

_CHUNK = 900  # ids per statement (SQLite's default limit of bound parameters is 999)
_PENDING = "kpibot.pr_summary"  # Session.info key: PR ids whose summary a flush changes


@dataclass(frozen=True, slots=True)
class Summary:
    reviews: FirstReviews
    lines: int | None


def summaries(conn: Connection, pr_ids: Iterable[int]) -> dict[int, Summary]:
    """The summary of each of these PRs, computed from its stored reviews and files."""
    out: dict[int, Summary] = {}
    ignored = PathFilter(DEFAULT_PATHS)
    ids = sorted(set(pr_ids))
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        authors = {
            pr: (author or "").lower()
            for pr, author in conn.execute(
                select(PullRequest.id, PullRequest.author_login).where(PullRequest.id.in_(chunk))
            )
        }
        first = first_reviews(
            (tuple(r) for r in conn.execute(q.reviews_of(chunk))), authors, DEFAULT_BOTS
        )
        lines = counted_lines((tuple(r) for r in conn.execute(q.files_of(chunk))), ignored)
        none = FirstReviews()
        for pr in authors:
            out[pr] = Summary(first.get(pr, none), lines.get(pr))
    return out


def refresh(conn: Connection, pr_ids: Iterable[int]) -> int:
    """Compute and store the summary of these PRs again; returns how many were written."""
    found = summaries(conn, pr_ids)
    if not found:
        return 0
    params = [{"pr": pr, **_values(s)} for pr, s in found.items()]
    table = cast(Table, PullRequest.__table__)
    stmt = (
        update(table)
        .where(table.c.id == bindparam("pr"))
        .values({c: bindparam(c) for c in COLUMNS})
    )
    for i in range(0, len(params), 5000):
        conn.execute(stmt, params[i : i + 5000])
    return len(params)


def refresh_all(conn: Connection, progress: Callable[[int], Any] | None = None) -> int:
    """Compute the summary of every stored PR that has a review or a file (migration 0013);
    the others keep NULLs, which is their summary."""
    done = 0
    last = 0
    has_review = select(Review.id).where(Review.pull_request_id == PullRequest.id).exists()
    has_file = (
        select(PullRequestFile.id).where(PullRequestFile.pull_request_id == PullRequest.id).exists()
    )
    while True:
        ids = list(
            conn.scalars(
                select(PullRequest.id)
                .where(PullRequest.id > last, or_(has_review, has_file))
                .order_by(PullRequest.id)
                .limit(20_000)
            )
        )
        if not ids:
            return done
        done += refresh(conn, ids)
        last = ids[-1]
        if progress is not None:
            progress(done)


def _values(s: Summary) -> dict[str, Any]:
    r = s.reviews
    return {
        "first_review_at": r.review_at,
        "first_review_by": r.review_by,
        "first_approval_at": r.approval_at,
        "first_approval_by": r.approval_by,
        "counted_lines": s.lines,
    }


# --- writes through the ORM ---------------------------------------------------------------


@event.listens_for(Session, "before_flush")
def _note_writes(session: Session, _context: Any, _instances: Any) -> None:
    """Note the PRs whose reviews, files or author this flush changes."""
    pending: set[int] = session.info.setdefault(_PENDING, set())
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Review | PullRequestFile):
            if obj.pull_request_id is not None:
                pending.add(obj.pull_request_id)
            history = inspect(cast(Any, obj)).attrs.pull_request_id.history
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


__all__ = ["COLUMNS", "DEFAULT_BOTS", "DEFAULT_PATHS", "Summary", "refresh", "refresh_all"]
