"""Small builders for store rows, so tests read as the data they describe."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot.settings import Config, TeamConfig
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
)
from bot.store.teams import sync_teams

_ids = itertools.count(1)


def T(s: str) -> datetime:
    """'2026-11-02 10:00' (UTC) -> naive UTC datetime."""
    return datetime.fromisoformat(s).replace(tzinfo=None)


def H(hours: float) -> timedelta:
    return timedelta(hours=hours)


def now_utc(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def setup_team(session: Session, team: TeamConfig | None = None, **kw: Any) -> TeamConfig:
    team = team or TeamConfig(name=kw.pop("name", "payments"), repos=("acme/api",), **kw)
    sync_teams(session, Config((team,)))
    session.commit()
    return team


def repo(session: Session, full_name: str = "acme/api") -> Repository:
    from sqlalchemy import select

    r = session.scalar(select(Repository).where(Repository.full_name == full_name))
    assert r is not None, f"run setup_team first ({full_name})"
    return r


def pr(
    session: Session,
    *,
    created: datetime,
    merged: datetime | None,
    number: int | None = None,
    author: str = "alice",
    author_is_bot: bool = False,
    ready: datetime | None = None,
    first_commit: datetime | None = None,
    additions: int = 10,
    deletions: int = 5,
    base: str = "main",
    title: str | None = None,
    merge_sha: str | None = None,
    repository: str = "acme/api",
    files: list[tuple[str, int, int]] | None = None,
    reviews: list[tuple[str, str, datetime] | tuple[str, str, datetime, bool]] | None = None,
    state: str | None = None,
    draft: bool = False,
    head_branch: str | None = None,
) -> PullRequest:
    """``reviews``: (author, STATE, submitted[, dismissed])."""
    n = number if number is not None else next(_ids)
    p = PullRequest(
        repository_id=repo(session, repository).id,
        number=n,
        title=title if title is not None else f"PR {n}",
        author_login=author,
        author_is_bot=author_is_bot,
        state=state or ("merged" if merged else "open"),
        is_draft=draft,
        was_draft=ready is not None,
        created_at=created,
        ready_at=ready,
        first_commit_at=first_commit,
        merged_at=merged,
        merge_commit_sha=merge_sha,
        base_branch=base,
        head_branch=head_branch,
        additions=additions,
        deletions=deletions,
    )
    session.add(p)
    session.flush()
    for path, a, d in files or []:
        session.add(PullRequestFile(pull_request_id=p.id, path=path, additions=a, deletions=d))
    for i, rv in enumerate(reviews or []):
        who, st, at = rv[0], rv[1], rv[2]
        dismissed = bool(rv[3]) if len(rv) > 3 else False  # type: ignore[misc]
        session.add(
            Review(
                pull_request_id=p.id,
                provider_id=f"r{p.id}-{i}",
                author_login=who,
                author_is_bot=who.endswith("[bot]"),
                state=st,
                submitted_at=at,
                dismissed=dismissed,
            )
        )
    session.flush()
    return p


def deployment(
    session: Session,
    *,
    sha: str,
    finished: datetime,
    status: str = "success",
    env: str = "production",
    repository: str = "acme/api",
    started: datetime | None = None,
    provider_id: str | None = None,
) -> Deployment:
    d = Deployment(
        repository_id=repo(session, repository).id,
        source="test",
        provider_id=provider_id or f"d{next(_ids)}",
        environment=env,
        commit_sha=sha,
        status=status,
        started_at=started or finished - timedelta(minutes=5),
        finished_at=finished,
    )
    session.add(d)
    session.flush()
    return d


def commit(
    session: Session, sha: str, parents: list[str], at: datetime, repository: str = "acme/api"
) -> None:
    session.add(
        Commit(
            repository_id=repo(session, repository).id,
            sha=sha,
            parents=" ".join(parents),
            authored_at=at,
            committed_at=at,
        )
    )
    session.flush()


def incident(
    session: Session,
    team_id: int,
    *,
    started: datetime,
    resolved: datetime | None,
    deployment_id: int | None = None,
    sha: str | None = None,
) -> Incident:
    i = Incident(
        team_id=team_id,
        source="test",
        provider_id=f"i{next(_ids)}",
        started_at=started,
        resolved_at=resolved,
        deployment_id=deployment_id,
        commit_sha=sha,
    )
    session.add(i)
    session.flush()
    return i


def sprint(
    session: Session,
    team_id: int,
    *,
    started: datetime,
    ended: datetime,
    items: list[dict[str, Any]],
) -> Sprint:
    s = Sprint(
        team_id=team_id,
        source="test",
        provider_id=f"s{next(_ids)}",
        name=f"Sprint {next(_ids)}",
        started_at=started,
        ended_at=ended,
    )
    session.add(s)
    session.flush()
    for i, it in enumerate(items):
        session.add(SprintItem(sprint_id=s.id, key=f"K-{s.id}-{i}", **it))
    session.flush()
    return s
