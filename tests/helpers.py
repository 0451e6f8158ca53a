"""Shared helpers for the KPI tests (periods, engines, rows the factories do not cover)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.metrics.engine import TeamEngine
from bot.metrics.periods import Period, parse_period
from bot.settings import TeamConfig
from bot.store.models import (
    Deployment,
    DeploymentPullRequest,
    PullRequest,
    PullRequestFile,
    Review,
    Team,
)
from tests.factories import now_utc

HOUR = 3600.0
DAY = 86400.0
NOW = "2027-06-01T00:00:00"


def period(word: str, tz: str = "UTC", now: str = NOW) -> Period:
    return parse_period(word, ZoneInfo(tz), now_utc(now))


def engine(session: Session, team: TeamConfig) -> TeamEngine:
    session.commit()
    return TeamEngine(session, team)


def team_id(session: Session, name: str = "payments") -> int:
    tid = session.scalar(select(Team.id).where(Team.name == name))
    assert tid is not None
    return tid


def review(
    session: Session,
    pr: PullRequest,
    login: str,
    state: str,
    at: datetime | None,
    *,
    dismissed: bool = False,
    is_bot: bool = False,
) -> Review:
    """A review row with full control over the provider's bot flag and dismissal."""
    n = session.query(Review).filter(Review.pull_request_id == pr.id).count()
    r = Review(
        pull_request_id=pr.id,
        provider_id=f"x{pr.id}-{n}",
        author_login=login,
        author_is_bot=is_bot,
        state=state,
        submitted_at=at,
        dismissed=dismissed,
    )
    session.add(r)
    session.flush()
    return r


def pr_file(
    session: Session,
    pr: PullRequest,
    path: str,
    additions: int,
    deletions: int,
    generated: bool = False,
) -> None:
    session.add(
        PullRequestFile(
            pull_request_id=pr.id,
            path=path,
            additions=additions,
            deletions=deletions,
            generated=generated,
        )
    )
    session.flush()


def contain(session: Session, dep: Deployment, *prs: PullRequest) -> None:
    """Link a deployment to the PRs it contains (what bot.store.derive computes)."""
    for p in prs:
        session.add(DeploymentPullRequest(deployment_id=dep.id, pull_request_id=p.id))
    session.flush()
