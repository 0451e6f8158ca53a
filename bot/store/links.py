"""The store's side of linking an incident to a deployment: what it knows of a team's
repositories (deployments by provider id, commits by SHA prefix), for the rule of
``bot.ingest.rules.incident_link`` that the sync and the webhooks both apply."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.ingest import rules
from bot.settings import TeamConfig
from bot.store.models import Commit, Deployment, PullRequest, Repository
from bot.store.records import IncidentRecord, IssueRecord


def repository_ids(session: Session, names: Iterable[str]) -> list[int]:
    """Ids of the stored repositories among ``names`` (owner/name, any case); none created."""
    lowered = sorted({n.lower() for n in names})
    if not lowered:
        return []
    return list(
        session.scalars(select(Repository.id).where(func.lower(Repository.full_name).in_(lowered)))
    )


def link_incident(
    session: Session, repositories: Iterable[str], text: str
) -> tuple[int | None, str | None]:
    """``(deployments.id, commit SHA)`` an incident's ``text`` links it to, among what the
    store knows of ``repositories`` (the team's): see ``bot.ingest.rules.incident_link``."""
    repo_ids = repository_ids(session, repositories)

    def deployment_of(ids: Sequence[str]) -> int | None:
        if not repo_ids:
            return None
        return session.scalar(
            select(Deployment.id)
            .where(Deployment.repository_id.in_(repo_ids), Deployment.provider_id.in_(list(ids)))
            .order_by(Deployment.id)
            .limit(1)
        )

    def commit_of(prefix: str) -> str | None:
        if not repo_ids:
            return None
        pattern = prefix + "%"
        return (
            session.scalar(
                select(Commit.sha)
                .where(Commit.repository_id.in_(repo_ids), Commit.sha.like(pattern))
                .limit(1)
            )
            or session.scalar(
                select(Deployment.commit_sha)
                .where(Deployment.repository_id.in_(repo_ids), Deployment.commit_sha.like(pattern))
                .limit(1)
            )
            or session.scalar(
                select(PullRequest.merge_commit_sha)
                .where(
                    PullRequest.repository_id.in_(repo_ids),
                    PullRequest.merge_commit_sha.like(pattern),
                )
                .limit(1)
            )
        )

    return rules.incident_link(text, deployment_of=deployment_of, commit_of=commit_of)


def issue_incident(
    session: Session,
    team: TeamConfig,
    repository: str,
    issue: IssueRecord,
    *,
    reopened_at: datetime | None = None,
) -> IncidentRecord:
    """The incident a GitHub issue is for ``team`` (which counts it, see
    ``bot.ingest.rules.incident_teams``): started when opened, resolved when closed, linked
    to what its text names among the team's repositories; ``reopened_at`` for an explicit
    reopen (a webhook's ``reopened`` action)."""
    dep_id, sha = link_incident(session, team.repos, f"{issue.title}\n{issue.body}")
    return IncidentRecord(
        source="github-issues",
        provider_id=rules.incident_provider_id(repository, issue.number),
        title=issue.title,
        started_at=issue.created_at,
        resolved_at=issue.closed_at,
        url=issue.url,
        deployment_id=dep_id,
        commit_sha=sha,
        reopened_at=reopened_at,
    )
