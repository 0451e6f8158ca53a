"""The records every source produces and the store writes: one neutral module.

Parsers (``bot.sources``) turn payloads into these frozen records; ``bot.store.writes`` stores
them. The store imports nothing from ``bot.sources``; sources and surfaces import these from
here. Times are naive UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# --------------------------------------------------------------------------- GitHub


@dataclass(frozen=True)
class ReviewRecord:
    provider_id: str
    author_login: str
    author_is_bot: bool
    state: str  # uppercase: APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED, PENDING
    submitted_at: datetime | None
    dismissed: bool


@dataclass(frozen=True)
class FileRecord:
    path: str
    additions: int
    deletions: int


@dataclass(frozen=True)
class PullRequestRecord:
    number: int
    title: str
    url: str | None
    author_login: str
    author_is_bot: bool
    state: str  # open, closed (not merged) or merged
    is_draft: bool
    was_draft: bool  # known from the ready-for-review event (GraphQL) or the current draft flag
    created_at: datetime
    updated_at: datetime
    ready_at: datetime | None
    merged_at: datetime | None
    closed_at: datetime | None
    merge_commit_sha: str | None  # only for merged PRs
    base_ref: str
    head_ref: str
    additions: int
    deletions: int
    changed_files: int
    labels: tuple[str, ...] = ()
    first_commit_at: datetime | None = None
    reviews: tuple[ReviewRecord, ...] = ()
    files: tuple[FileRecord, ...] = ()


@dataclass(frozen=True)
class DeploymentRecord:
    source: str  # deployment, workflow_run or release
    provider_id: str
    environment: str
    commit_sha: str | None  # None for releases: the tag still has to be resolved to a commit
    ref: str | None
    status: str  # success, failure, error, cancelled, in_progress, queued, pending, ...
    started_at: datetime | None
    finished_at: datetime | None
    url: str | None


@dataclass(frozen=True)
class CommitRecord:
    sha: str
    parents: tuple[str, ...] = ()
    authored_at: datetime | None = None
    committed_at: datetime | None = None


@dataclass(frozen=True)
class IssueRecord:
    number: int
    title: str
    url: str | None
    body: str
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    labels: tuple[str, ...]
    is_pull_request: bool = False
    reopened_at: datetime | None = None  # the last reopen, when the source tells it


# --------------------------------------------------------------------------- incidents


@dataclass(frozen=True)
class IncidentRecord:
    source: str  # github-issues | jira | pagerduty | opsgenie | webhook
    provider_id: str  # unique within the source, e.g. "acme/api#12" for a GitHub issue
    title: str
    started_at: datetime
    resolved_at: datetime | None = None
    url: str | None = None
    deployment_id: int | None = None  # explicit link to deployments.id
    commit_sha: str | None = None  # explicit link by commit (full or at least 7 characters)
    reopened_at: datetime | None = None  # an explicit reopen and its time (webhooks)


# --------------------------------------------------------------------------- sprints


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
