"""Idempotent writes keyed by the provider's ids: running any of these twice stores the same rows.

Every function works inside the caller's session and never commits: the caller commits a page
(and moves its sync cursor) in one transaction. Timestamps are naive UTC (``bot.store.utc``).

Signatures (all keyword arguments after ``session`` are optional unless shown)::

    upsert_repository(session, full_name, *, provider_id=None, default_branch=None) -> int
    upsert_pull_requests(session, repository_id, records: Sequence[PullRequestRecord])
        -> dict[int, int]
        # number -> pull_requests.id; also replaces each PR's files, upserts its reviews
        # (keyed by review id) and marks deployments that may now contain it for recompute
    upsert_pull_request(session, repository_id, record: PullRequestRecord) -> int
    upsert_reviews(session, pull_request_id, reviews: Sequence[ReviewRecord]) -> int
    upsert_commits(session, repository_id, commits: Sequence[CommitRecord]) -> int
    upsert_deployments(session, repository_id, records: Sequence[DeploymentRecord])
        -> dict[str, int]
        # provider_id -> deployments.id; records without a commit SHA are skipped
    upsert_deployment(session, repository_id, record: DeploymentRecord) -> int | None
    upsert_incidents(session, team_id, records: Sequence[IncidentRecord]) -> dict[str, int]
        # provider_id -> incidents.id, keyed by (record.source, record.provider_id)
    upsert_incident(session, team_id, record: IncidentRecord) -> int
    invalidate_contents(session, repository_id, since: datetime) -> int
        # deployments finished at or after ``since`` get their contents recomputed by derive
    store_sprint(session, team_id, source, sprint: SprintRecord) -> int
    store_sprint_items(session, sprint_id, items: Iterable[SprintItemRecord]) -> int
    get_cursor(session, source, scope, kind) -> str | None
    get_cursors(session, source, scope) -> dict[str, str | None]
    set_cursor(session, source, scope, kind, cursor, now)  # the one write of sync_cursors

Every table's natural key is :data:`KEYS`, once. The deployment and incident upserts are
statement builders (:func:`deployment_upsert`, :func:`incident_upsert`,
:func:`invalidate_statement`) over rows or bind parameters: the sync's batched writes and the
webhooks' statements compiled once are the same SQL. Which of two deliveries of one deployment
or incident wins (a late or replayed delivery never undoes a newer outcome) is
``bot.ingest.rules.deployment_delivery_wins`` and ``incident_resolution``: SQL over the stored
row and the incoming one, in the ``ON CONFLICT DO UPDATE``. A deployment takes an incoming
outcome only when the delivery wins, from a sync page as from a webhook; an incident read by
the sync is the source's current state (``snapshot``), a delivered one follows the resolution
rule. A pull request keeps the earliest ready-for-review time, its first commit time and
having been a draft whatever a later payload lacks.

The records are those of ``bot.store.records`` (the store imports no source).
``DeploymentRecord.source`` may be a store value (``github-deployments``, ``workflow``,
``releases``, ``webhook``) or the parser's (``deployment``, ``workflow_run``, ``release``),
which map onto the first three.

A deployment that is added or changed, and every deployment finished at or after it or after
a stored merged PR or new commit, is marked for ``bot.store.derive`` to recompute (its
``contents_computed_at`` is cleared), so run ``derive_repository`` after writing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.ingest.rules import (
    deployment_delivery_wins,
    earliest,
    incident_resolution,
    pull_request_delivery_wins,
    review_delivery_wins,
)
from bot.store import pr_summary
from bot.store.models import (
    Commit,
    Deployment,
    Incident,
    PullRequest,
    PullRequestFile,
    Repository,
    Review,
    Sprint,
    SprintItem,
    SyncCursor,
)
from bot.store.records import (
    CommitRecord,
    DeploymentRecord,
    IncidentRecord,
    PullRequestRecord,
    ReviewRecord,
    SprintItemRecord,
    SprintRecord,
)
from bot.store.session import utc

CHUNK = 400

#: every stored table's natural key: what makes two records the same row (its unique index)
KEYS: dict[str, tuple[str, ...]] = {
    "pull_requests": ("repository_id", "number"),
    "reviews": ("pull_request_id", "provider_id"),
    "commits": ("repository_id", "sha"),
    "deployments": ("repository_id", "source", "provider_id"),
    "incidents": ("team_id", "source", "provider_id"),
    "sprints": ("team_id", "source", "provider_id"),
    "sprint_items": ("sprint_id", "key"),
    "sync_cursors": ("source", "scope", "kind"),
}

__all__ = [
    "DEPLOYMENT_VALUES",
    "INCIDENT_VALUES",
    "KEYS",
    "CommitRecord",
    "IncidentRecord",
    "deployment_delivery_wins",
    "deployment_row",
    "deployment_upsert",
    "get_cursor",
    "get_cursors",
    "incident_resolution",
    "incident_row",
    "incident_upsert",
    "insert_for",
    "invalidate_contents",
    "invalidate_statement",
    "set_cursor",
    "store_sprint",
    "store_sprint_items",
    "upsert_commits",
    "upsert_deployment",
    "upsert_deployments",
    "upsert_incident",
    "upsert_incidents",
    "upsert_pull_request",
    "upsert_pull_requests",
    "upsert_repository",
    "upsert_reviews",
]

#: parser record sources -> ``deployments.source`` values
DEPLOYMENT_SOURCES = {
    "deployment": "github-deployments",
    "workflow_run": "workflow",
    "release": "releases",
}


# --------------------------------------------------------------------------- helpers


def insert_for(dialect: str, table: Any) -> Any:
    """``INSERT`` with ``ON CONFLICT`` for the database ``dialect`` (SQLite, PostgreSQL)."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"upserts are not implemented for the {dialect} database")


def _insert(session: Session, table: Table) -> Any:
    return insert_for(session.get_bind().dialect.name, table)


def _chunks(rows: Sequence[dict[str, Any]]) -> Iterable[Sequence[dict[str, Any]]]:
    for i in range(0, len(rows), CHUNK):
        yield rows[i : i + CHUNK]


def _upsert(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    extra_set: dict[str, Any] | None = None,
    wins: Callable[[Any, Any], ColumnElement[bool]] | None = None,
) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE every other given column; with ``wins`` (a
    rule of ``bot.ingest.rules`` over the stored and the incoming row) a stored row takes an
    incoming value only where the rule holds. ``extra_set`` columns follow their own rules."""
    if not rows:
        return
    for chunk in _chunks(rows):
        stmt = _insert(session, table).values(list(chunk))
        cols = [c for c in chunk[0] if c not in keys]
        set_: dict[str, Any] = {c: stmt.excluded[c] for c in cols}
        if wins is not None:
            takes = wins(table.c, stmt.excluded)
            set_ = {c: case((takes, value), else_=table.c[c]) for c, value in set_.items()}
        if extra_set:
            set_.update({k: v(stmt) if callable(v) else v for k, v in extra_set.items()})
        if set_:
            stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=set_)
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
        session.execute(stmt)


def _dedupe(rows: Iterable[dict[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    """The last row per key (one statement may not touch a row twice)."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        out[tuple(r[k] for k in keys)] = r
    return list(out.values())


# --------------------------------------------------------------------------- repositories


def upsert_repository(
    session: Session,
    full_name: str,
    *,
    provider_id: str | None = None,
    default_branch: str | None = None,
) -> int:
    """The repository's id, creating it (matched case-insensitively by ``owner/name``)."""
    repo = session.scalar(
        select(Repository).where(func.lower(Repository.full_name) == full_name.lower())
    )
    if repo is None:
        repo = Repository(full_name=full_name)
        session.add(repo)
    if provider_id is not None:
        repo.provider_id = provider_id
    if default_branch:
        repo.default_branch = default_branch
    session.flush()
    return repo.id


# --------------------------------------------------------------------------- pull requests


def _pr_row(repository_id: int, r: PullRequestRecord) -> dict[str, Any]:
    return {
        "repository_id": repository_id,
        "number": r.number,
        "title": r.title,
        "url": r.url,
        "author_login": r.author_login,
        "author_is_bot": r.author_is_bot,
        "state": r.state,
        "is_draft": r.is_draft,
        "was_draft": r.was_draft,
        "created_at": r.created_at,
        "ready_at": r.ready_at,
        "first_commit_at": r.first_commit_at,
        "merged_at": r.merged_at,
        "closed_at": r.closed_at,
        "updated_at": r.updated_at,
        "merge_commit_sha": r.merge_commit_sha,
        "base_branch": r.base_ref,
        "head_branch": r.head_ref,
        "additions": r.additions,
        "deletions": r.deletions,
        "changed_files": r.changed_files,
        "labels": ",".join(r.labels) if r.labels else None,
    }


def upsert_pull_requests(
    session: Session, repository_id: int, records: Sequence[PullRequestRecord]
) -> dict[int, int]:
    """Store pull requests with their reviews and files; returns number -> pull_requests.id.

    A record with no files (a REST or webhook payload) keeps the files already stored; one
    with files replaces them. Reviews are upserted by their provider id and never removed.
    """
    if not records:
        return {}
    latest: dict[int, PullRequestRecord] = {}
    for r in records:
        latest[r.number] = r
    prs = list(latest.values())
    rows = [_pr_row(repository_id, r) for r in prs]
    before: dict[int, tuple[Any, ...]] = {}
    all_numbers = [r.number for r in prs]
    for i in range(0, len(all_numbers), CHUNK):
        for number, *facts in session.execute(
            select(
                PullRequest.number,
                PullRequest.merged_at,
                PullRequest.merge_commit_sha,
                PullRequest.base_branch,
            ).where(
                PullRequest.repository_id == repository_id,
                PullRequest.number.in_(all_numbers[i : i + CHUNK]),
            )
        ):
            before[number] = tuple(facts)
    table: Table = PullRequest.__table__  # type: ignore[assignment]
    stored = table.c
    _upsert(
        session,
        table,
        rows,
        KEYS["pull_requests"],
        # what one delivery or page may not know (a REST payload has no ready-for-review
        # event nor commit dates) never erases what another told: the earliest
        # ready-for-review time, the first commit, having been a draft
        extra_set={
            "ready_at": lambda stmt: earliest(stored.ready_at, stmt.excluded.ready_at),
            "first_commit_at": lambda stmt: func.coalesce(
                stmt.excluded.first_commit_at, stored.first_commit_at
            ),
            "was_draft": lambda stmt: or_(stored.was_draft, stmt.excluded.was_draft),
            # a merge is never undone: a winning payload without a merge time keeps it
            "merged_at": lambda stmt: case(
                (
                    pull_request_delivery_wins(stored, stmt.excluded),
                    func.coalesce(stmt.excluded.merged_at, stored.merged_at),
                ),
                else_=stored.merged_at,
            ),
        },
        # an older payload (a late or redelivered event, a page read before a newer event
        # was stored) changes nothing else
        wins=pull_request_delivery_wins,
    )
    ids: dict[int, int] = {}
    numbers = [r.number for r in prs]
    for i in range(0, len(numbers), CHUNK):
        ids.update(
            session.execute(
                select(PullRequest.number, PullRequest.id).where(
                    PullRequest.repository_id == repository_id,
                    PullRequest.number.in_(numbers[i : i + CHUNK]),
                )
            )
            .tuples()
            .all()
        )
    with_files = [ids[r.number] for r in prs if r.files]
    for i in range(0, len(with_files), CHUNK):
        session.execute(
            delete(PullRequestFile).where(
                PullRequestFile.pull_request_id.in_(with_files[i : i + CHUNK])
            )
        )
    file_rows = _dedupe(
        (
            {
                "pull_request_id": ids[r.number],
                "path": f.path,
                "additions": f.additions,
                "deletions": f.deletions,
            }
            for r in prs
            for f in r.files
        ),
        ["pull_request_id", "path"],
    )
    for chunk in _chunks(file_rows):
        session.execute(cast(Table, PullRequestFile.__table__).insert(), list(chunk))
    review_rows = [
        _review_row(ids[r.number], rv) for r in prs for rv in r.reviews if rv.provider_id
    ]
    _upsert_review_rows(session, review_rows)
    # their first review and approval, from every review stored (and their authors)
    pr_summary.refresh(session.connection(), ids.values())
    # what a deployment contains depends on these facts: recompute from the earliest change
    changed = [
        r.merged_at
        for r in prs
        if r.merged_at is not None
        and before.get(r.number) != (r.merged_at, r.merge_commit_sha, r.base_ref)
    ]
    if changed:
        invalidate_contents(session, repository_id, min(changed))
    return ids


def upsert_pull_request(session: Session, repository_id: int, record: PullRequestRecord) -> int:
    return upsert_pull_requests(session, repository_id, [record])[record.number]


def _review_row(pull_request_id: int, r: ReviewRecord) -> dict[str, Any]:
    return {
        "pull_request_id": pull_request_id,
        "provider_id": r.provider_id,
        "author_login": r.author_login,
        "author_is_bot": r.author_is_bot,
        "state": r.state,
        "submitted_at": r.submitted_at,
        "dismissed": r.dismissed,
    }


def _upsert_review_rows(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    table: Table = Review.__table__  # type: ignore[assignment]
    _upsert(
        session,
        table,
        _dedupe(rows, KEYS["reviews"]),
        KEYS["reviews"],
        wins=review_delivery_wins,  # a dismissal is final
    )


def upsert_reviews(session: Session, pull_request_id: int, reviews: Sequence[ReviewRecord]) -> int:
    """Store reviews of one pull request (a webhook review event, a REST reviews page)."""
    rows = [_review_row(pull_request_id, r) for r in reviews]
    _upsert_review_rows(session, rows)
    pr_summary.refresh(session.connection(), [pull_request_id])
    return len(rows)


# --------------------------------------------------------------------------- commits


def upsert_commits(session: Session, repository_id: int, commits: Sequence[CommitRecord]) -> int:
    """Store commits with their parents (the graph ``bot.store.derive`` walks)."""
    rows = _dedupe(
        (
            {
                "repository_id": repository_id,
                "sha": c.sha,
                "authored_at": c.authored_at,
                "committed_at": c.committed_at,
                "parents": " ".join(c.parents),
            }
            for c in commits
        ),
        KEYS["commits"],
    )
    table: Table = Commit.__table__  # type: ignore[assignment]
    shas = [r["sha"] for r in rows]
    seen: set[str] = set()
    for i in range(0, len(shas), CHUNK):
        seen.update(
            session.scalars(
                select(Commit.sha).where(
                    Commit.repository_id == repository_id, Commit.sha.in_(shas[i : i + CHUNK])
                )
            )
        )
    _upsert(session, table, rows, KEYS["commits"])
    # a new commit can change what the deployments after it contain
    times = [c.committed_at or c.authored_at for c in commits if c.sha not in seen]
    known = [t for t in times if t is not None]
    if known:
        invalidate_contents(session, repository_id, min(known))
    return len(rows)


# --------------------------------------------------------------------------- deployments


def invalidate_statement(repository_id: Any, since: Any) -> Any:
    """``UPDATE``: deployments of the repository finished at or after ``since`` get their
    contents recomputed by ``derive`` (values or bind parameters)."""
    return (
        update(Deployment)
        .where(
            Deployment.repository_id == repository_id,
            Deployment.finished_at >= since,
            Deployment.contents_computed_at.is_not(None),
        )
        .values(contents_computed_at=None)
    )


def invalidate_contents(session: Session, repository_id: int, since: datetime) -> int:
    """Mark deployments finished at or after ``since`` for ``derive`` to recompute."""
    result = session.execute(invalidate_statement(repository_id, since))
    return int(getattr(result, "rowcount", 0) or 0)


#: what a deployment row holds besides its natural key
DEPLOYMENT_VALUES = ("environment", "commit_sha", "status", "started_at", "finished_at", "url")


def deployment_row(repository_id: int, r: DeploymentRecord) -> dict[str, Any]:
    return {
        "repository_id": repository_id,
        "source": DEPLOYMENT_SOURCES.get(r.source, r.source),
        "provider_id": r.provider_id,
        "environment": r.environment,
        "commit_sha": r.commit_sha,
        "status": r.status,
        "started_at": r.started_at,
        "finished_at": r.finished_at,
        "url": r.url,
    }


def deployment_upsert(insert: Any) -> Any:
    """The ``ON CONFLICT`` of an ``INSERT`` of deployment rows (values or bind parameters):
    a stored deployment takes the incoming values only when the delivery wins
    (``bot.ingest.rules.deployment_delivery_wins``) and something changed; a changed one
    has its contents recomputed. ``RETURNING id, finished_at`` of the rows added or changed:
    a redelivery or a late delivery returns nothing."""
    stored: Any = Deployment.__table__.c
    return insert.on_conflict_do_update(
        index_elements=list(KEYS["deployments"]),
        set_={**{c: insert.excluded[c] for c in DEPLOYMENT_VALUES}, "contents_computed_at": None},
        where=and_(
            deployment_delivery_wins(stored, insert.excluded),
            or_(*(stored[c].is_distinct_from(insert.excluded[c]) for c in DEPLOYMENT_VALUES)),
        ),
    ).returning(Deployment.id, Deployment.finished_at)


def upsert_deployments(
    session: Session, repository_id: int, records: Sequence[DeploymentRecord]
) -> dict[str, int]:
    """Store deployments; returns provider_id -> deployments.id (records with no commit SHA,
    such as a release whose tag is not resolved yet, are skipped)."""
    rows = _dedupe(
        (deployment_row(repository_id, r) for r in records if r.commit_sha),
        KEYS["deployments"],
    )
    if not rows:
        return {}
    table: Table = Deployment.__table__  # type: ignore[assignment]
    finished: list[datetime] = []
    for chunk in _chunks(rows):
        for _id, at in session.execute(deployment_upsert(_insert(session, table).values(chunk))):
            if at is not None:
                finished.append(at)
    if finished:
        # a new or changed deployment changes its own contents and those of the ones after it
        invalidate_contents(session, repository_id, min(finished))
    out: dict[str, int] = {}
    by_source: dict[str, list[str]] = {}
    for r in rows:
        by_source.setdefault(r["source"], []).append(r["provider_id"])
    for source, pids in by_source.items():
        for i in range(0, len(pids), CHUNK):
            out.update(
                session.execute(
                    select(Deployment.provider_id, Deployment.id).where(
                        and_(
                            Deployment.repository_id == repository_id,
                            Deployment.source == source,
                            Deployment.provider_id.in_(pids[i : i + CHUNK]),
                        )
                    )
                )
                .tuples()
                .all()
            )
    return out


def upsert_deployment(session: Session, repository_id: int, record: DeploymentRecord) -> int | None:
    return upsert_deployments(session, repository_id, [record]).get(record.provider_id)


# --------------------------------------------------------------------------- incidents

#: what an incident row holds besides its natural key
INCIDENT_VALUES = (
    "title",
    "url",
    "started_at",
    "resolved_at",
    "reopened_at",
    "deployment_id",
    "commit_sha",
)


def incident_row(team_id: int, r: IncidentRecord) -> dict[str, Any]:
    return {
        "team_id": team_id,
        "source": r.source,
        "provider_id": r.provider_id,
        "title": r.title,
        "url": r.url,
        "started_at": r.started_at,
        "resolved_at": r.resolved_at,
        "reopened_at": r.reopened_at,
        "deployment_id": r.deployment_id,
        "commit_sha": r.commit_sha,
    }


def incident_upsert(insert: Any, *, snapshot: bool) -> Any:
    """The ``ON CONFLICT`` of an ``INSERT`` of incident rows, ``RETURNING id`` of the rows
    added or changed.

    ``snapshot``: the rows are the source's state now (a sync page), which replaces the
    stored one (a reopened issue read by the sync is open; the stored ``reopened_at`` stays).
    Otherwise they are deliveries that may be late or replayed (webhooks), and the
    resolution follows ``bot.ingest.rules.incident_resolution``.
    """
    stored: Any = Incident.__table__.c
    values = [c for c in INCIDENT_VALUES if not (snapshot and c == "reopened_at")]
    new = {c: insert.excluded[c] for c in values}
    if not snapshot:
        new.update(incident_resolution(stored, insert.excluded))
    return insert.on_conflict_do_update(
        index_elements=list(KEYS["incidents"]),
        set_=new,
        where=or_(*(stored[c].is_distinct_from(new[c]) for c in values)),
    ).returning(Incident.id)


def upsert_incidents(
    session: Session, team_id: int, records: Sequence[IncidentRecord], *, snapshot: bool = True
) -> dict[str, int]:
    """Store incidents of one team; returns provider_id -> incidents.id. ``snapshot``: the
    records are the source's current state and replace the stored ones; otherwise (a source
    telling reopens, as GitHub's issues do) the resolution follows
    ``bot.ingest.rules.incident_resolution`` (see :func:`incident_upsert`)."""
    rows = _dedupe((incident_row(team_id, r) for r in records), KEYS["incidents"])
    if not rows:
        return {}
    table: Table = Incident.__table__  # type: ignore[assignment]
    for chunk in _chunks(rows):
        session.execute(incident_upsert(_insert(session, table).values(chunk), snapshot=snapshot))
    out: dict[str, int] = {}
    by_source: dict[str, list[str]] = {}
    for r in rows:
        by_source.setdefault(r["source"], []).append(r["provider_id"])
    for source, pids in by_source.items():
        for i in range(0, len(pids), CHUNK):
            out.update(
                session.execute(
                    select(Incident.provider_id, Incident.id).where(
                        Incident.team_id == team_id,
                        Incident.source == source,
                        Incident.provider_id.in_(pids[i : i + CHUNK]),
                    )
                )
                .tuples()
                .all()
            )
    return out


def upsert_incident(session: Session, team_id: int, record: IncidentRecord) -> int:
    return upsert_incidents(session, team_id, [record])[record.provider_id]


# --------------------------------------------------------------------------- sprints


def store_sprint(session: Session, team_id: int, source: str, sprint: SprintRecord) -> int:
    """Upsert one sprint (keyed by team, source and provider id); returns its store id."""
    table: Table = Sprint.__table__  # type: ignore[assignment]
    _upsert(
        session,
        table,
        [
            {
                "team_id": team_id,
                "source": source,
                "provider_id": sprint.provider_id,
                "name": sprint.name[:255],
                "started_at": utc(sprint.started_at),
                "ended_at": utc(sprint.ended_at) if sprint.ended_at else None,
                "state": sprint.state,
            }
        ],
        KEYS["sprints"],
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
    rows = [
        {
            "sprint_id": sprint_id,
            "key": item.key,
            "title": item.title,
            "committed": item.committed,
            "added": item.added,
            "removed": item.removed,
            "completed": item.completed,
            "points": item.points,
        }
        for item in items
    ]
    table: Table = SprintItem.__table__  # type: ignore[assignment]
    _upsert(session, table, _dedupe(rows, KEYS["sprint_items"]), KEYS["sprint_items"])
    return len(rows)


# --------------------------------------------------------------------------- sync cursors


def get_cursor(session: Session, source: str, scope: str, kind: str) -> str | None:
    return session.scalar(
        select(SyncCursor.cursor).where(
            SyncCursor.source == source, SyncCursor.scope == scope, SyncCursor.kind == kind
        )
    )


def get_cursors(session: Session, source: str, scope: str) -> dict[str, str | None]:
    """Every cursor of one scope (a repository, a board...): kind -> cursor."""
    rows = session.execute(
        select(SyncCursor.kind, SyncCursor.cursor).where(
            SyncCursor.source == source, SyncCursor.scope == scope
        )
    )
    return {kind: cursor for kind, cursor in rows}


def set_cursor(
    session: Session, source: str, scope: str, kind: str, cursor: str | None, now: datetime
) -> None:
    """Move a sync cursor (the one write of ``sync_cursors``); call it in the same
    transaction as the page it follows."""
    table: Table = SyncCursor.__table__  # type: ignore[assignment]
    _upsert(
        session,
        table,
        [
            {
                "source": source,
                "scope": scope,
                "kind": kind,
                "cursor": cursor,
                "updated_at": utc(now),
            }
        ],
        KEYS["sync_cursors"],
    )
