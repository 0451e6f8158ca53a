"""The store: SQLAlchemy 2 typed models.

Every timestamp is a naive ``datetime`` in UTC with second precision (see ``bot.store.utc``).
Provider ids are kept so that ingestion can upsert idempotently.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# --- teams and repositories -------------------------------------------------------------


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    #: fingerprint of the definition whose PR selection ``team_pull_requests`` holds (repos,
    #: members, paths, ignored paths); NULL for a team that counts all its repositories' PRs
    population: Mapped[str | None] = mapped_column(String(64))

    repositories: Mapped[list[Repository]] = relationship(
        secondary="team_repositories", back_populates="teams", lazy="selectin"
    )


class Repository(Base):
    __tablename__ = "repositories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    full_name: Mapped[str] = mapped_column(String(255), unique=True)
    provider: Mapped[str] = mapped_column(String(32), default="github")
    provider_id: Mapped[str | None] = mapped_column(String(100))
    default_branch: Mapped[str] = mapped_column(String(255), default="main")

    teams: Mapped[list[Team]] = relationship(
        secondary="team_repositories", back_populates="repositories", lazy="selectin"
    )


class TeamRepository(Base):
    __tablename__ = "team_repositories"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True
    )


class TeamMember(Base):
    """A GitHub login's membership of a team over time (``since``/``until`` NULL: from the
    first time kpibot saw it / still a member). ``source``: ``config`` (``members:``) or
    ``github`` (``github_team:``, synced)."""

    __tablename__ = "team_members"
    __table_args__ = (
        Index("ix_team_members_team_login", "team_id", "login"),
        Index("ix_team_members_login", "login"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    login: Mapped[str] = mapped_column(String(255))  # lower case
    source: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime | None] = mapped_column(DateTime)
    until: Mapped[datetime | None] = mapped_column(DateTime)


class Person(Base):
    """Who a GitHub login is in chat: the identity mapping of kpibot.yml, with the Slack id
    looked up by e-mail once (``slack_lookup_at``) where only the address is known."""

    __tablename__ = "people"
    __table_args__ = (
        Index("ix_people_slack_user", "slack_user"),
        Index("ix_people_teams_user", "teams_user"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    github: Mapped[str] = mapped_column(String(255), unique=True)  # lower case
    slack_user: Mapped[str | None] = mapped_column(String(255))
    teams_user: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    #: the Slack id came from the configuration (False: from ``users.lookupByEmail``)
    slack_configured: Mapped[bool] = mapped_column(Boolean, default=False)
    slack_lookup_at: Mapped[datetime | None] = mapped_column(DateTime)


class TeamPullRequest(Base):
    """The PRs a team defined by people or paths counts (METRICS.md, Which PRs are a team's),
    kept when PRs are written and when the definition or the membership changes, so a report
    reads its population along ``(team_id, merged_at)``. Teams counting all their
    repositories' PRs have no rows here."""

    __tablename__ = "team_pull_requests"
    __table_args__ = (
        # covering: a period's PR ids come from the index alone
        Index("ix_team_pull_requests_team_merged", "team_id", "merged_at", "pull_request_id"),
        Index("ix_team_pull_requests_pr", "pull_request_id"),
    )

    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    pull_request_id: Mapped[int] = mapped_column(
        ForeignKey("pull_requests.id", ondelete="CASCADE"), primary_key=True
    )
    merged_at: Mapped[datetime | None] = mapped_column(DateTime)  # the PR's, copied


# --- pull requests ------------------------------------------------------------------------

#: the PRs that may be reverts (METRICS.md, rollbacks): the partial index below holds only
#: them, and ``bot.store.queries.revert_rows`` asks with this very text so that both SQLite
#: and PostgreSQL use it (a monorepo's reverts are read without walking all its PRs)
REVERT_CANDIDATE = "title LIKE 'Revert \"%' OR head_branch LIKE 'revert-%'"


class PullRequest(Base):
    __tablename__ = "pull_requests"
    __table_args__ = (
        UniqueConstraint("repository_id", "number", name="uq_pull_requests_repo_number"),
        Index("ix_pull_requests_repo_merged", "repository_id", "merged_at"),
        Index("ix_pull_requests_repo_state_created", "repository_id", "state", "created_at"),
        Index("ix_pull_requests_repo_merge_sha", "repository_id", "merge_commit_sha"),
        Index(
            "ix_pull_requests_reverts",
            "repository_id",
            "merged_at",
            sqlite_where=text(REVERT_CANDIDATE),
            postgresql_where=text(REVERT_CANDIDATE),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    provider_id: Mapped[str | None] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str | None] = mapped_column(Text)
    author_login: Mapped[str] = mapped_column(String(255), default="")
    author_is_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    # open | closed | merged
    state: Mapped[str] = mapped_column(String(16), default="open")
    is_draft: Mapped[bool] = mapped_column(Boolean, default=False)
    was_draft: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # first ready_for_review event; NULL when the PR was never a draft
    ready_at: Mapped[datetime | None] = mapped_column(DateTime)
    # earliest author date among the PR's commits, as the provider reports it
    first_commit_at: Mapped[datetime | None] = mapped_column(DateTime)
    merged_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime)
    merge_commit_sha: Mapped[str | None] = mapped_column(String(64))
    base_branch: Mapped[str] = mapped_column(String(255), default="main")
    head_branch: Mapped[str | None] = mapped_column(String(255))
    additions: Mapped[int] = mapped_column(Integer, default=0)
    deletions: Mapped[int] = mapped_column(Integer, default=0)
    changed_files: Mapped[int | None] = mapped_column(Integer)
    labels: Mapped[str | None] = mapped_column(Text)  # comma-separated
    # first review and first approval under the default bot rule (``bot.store.pr_summary``
    # keeps them, and the counted lines, with every write of the PR's reviews and files)
    first_review_at: Mapped[datetime | None] = mapped_column(DateTime)
    first_review_by: Mapped[str | None] = mapped_column(String(255))
    first_approval_at: Mapped[datetime | None] = mapped_column(DateTime)
    first_approval_by: Mapped[str | None] = mapped_column(String(255))
    # additions + deletions outside the default ignored paths and generated files; NULL
    # without file rows (``bot.store.pr_summary``)
    counted_lines: Mapped[int | None] = mapped_column(Integer)


class PullRequestFile(Base):
    __tablename__ = "pull_request_files"
    __table_args__ = (UniqueConstraint("pull_request_id", "path", name="uq_pr_files_pr_path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pull_request_id: Mapped[int] = mapped_column(ForeignKey("pull_requests.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(Text)
    additions: Mapped[int] = mapped_column(Integer, default=0)
    deletions: Mapped[int] = mapped_column(Integer, default=0)
    # marked linguist-generated in .gitattributes (ignored for PR size)
    generated: Mapped[bool] = mapped_column(Boolean, default=False)


class Review(Base):
    __tablename__ = "reviews"
    __table_args__ = (
        UniqueConstraint("pull_request_id", "provider_id", name="uq_reviews_pr_provider"),
        Index("ix_reviews_pr_submitted", "pull_request_id", "submitted_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pull_request_id: Mapped[int] = mapped_column(ForeignKey("pull_requests.id", ondelete="CASCADE"))
    provider_id: Mapped[str] = mapped_column(String(100))
    author_login: Mapped[str] = mapped_column(String(255), default="")
    author_is_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    # APPROVED | CHANGES_REQUESTED | COMMENTED | DISMISSED | PENDING (upper case)
    state: Mapped[str] = mapped_column(String(32))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime)
    dismissed: Mapped[bool] = mapped_column(Boolean, default=False)
    dismissed_at: Mapped[datetime | None] = mapped_column(DateTime)


class Commit(Base):
    """Commits of a repository's deployed history, for deployment contents and rollbacks."""

    __tablename__ = "commits"
    __table_args__ = (UniqueConstraint("repository_id", "sha", name="uq_commits_repo_sha"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    sha: Mapped[str] = mapped_column(String(64))
    authored_at: Mapped[datetime | None] = mapped_column(DateTime)
    committed_at: Mapped[datetime | None] = mapped_column(DateTime)
    # space-separated parent SHAs
    parents: Mapped[str] = mapped_column(Text, default="")


# --- deployments and incidents ------------------------------------------------------------


class Deployment(Base):
    __tablename__ = "deployments"
    __table_args__ = (
        UniqueConstraint("repository_id", "source", "provider_id", name="uq_deployments_provider"),
        Index("ix_deployments_repo_finished", "repository_id", "finished_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    # github-deployments | workflow | releases | webhook | demo
    source: Mapped[str] = mapped_column(String(32))
    provider_id: Mapped[str] = mapped_column(String(100))
    environment: Mapped[str] = mapped_column(String(100))
    commit_sha: Mapped[str] = mapped_column(String(64))
    # final outcome: success | failure | error | cancelled | in_progress | queued | pending
    status: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    url: Mapped[str | None] = mapped_column(Text)
    # derived (bot.store.derive): when contents were last computed, and the finish time of the
    # earliest later successful deployment of the same repository that deploys a strict
    # ancestor of this one's commit (a rollback)
    contents_computed_at: Mapped[datetime | None] = mapped_column(DateTime)
    rolled_back_at: Mapped[datetime | None] = mapped_column(DateTime)
    # derived: the commit graph does not know its commit or its path back to the previous
    # deployment, so its contents are unknown (no PR credited, never judged a rollback)
    # (a server default only: inserts that name their columns, like the webhooks', leave it out)
    contents_unknown: Mapped[bool] = mapped_column(Boolean, server_default=false())


class DeploymentPullRequest(Base):
    """The merged PRs a deployment contains (METRICS.md, Deployments)."""

    __tablename__ = "deployment_pull_requests"
    __table_args__ = (Index("ix_deployment_prs_pr", "pull_request_id"),)

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    pull_request_id: Mapped[int] = mapped_column(
        ForeignKey("pull_requests.id", ondelete="CASCADE"), primary_key=True
    )


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        # per team: an issue labelled for two teams sharing a repository is an incident of both
        UniqueConstraint("team_id", "source", "provider_id", name="uq_incidents_team_provider"),
        Index("ix_incidents_team_started", "team_id", "started_at"),
        Index("ix_incidents_team_resolved", "team_id", "resolved_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    # github-issues | jira | pagerduty | opsgenie | webhook | demo
    source: Mapped[str] = mapped_column(String(32))
    provider_id: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime)
    # the latest explicit reopen a delivery named: an older resolution does not close it again
    reopened_at: Mapped[datetime | None] = mapped_column(DateTime)
    # explicit link named by the incident's data
    deployment_id: Mapped[int | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="SET NULL")
    )
    commit_sha: Mapped[str | None] = mapped_column(String(64))


# --- sprints ------------------------------------------------------------------------------


class Sprint(Base):
    __tablename__ = "sprints"
    __table_args__ = (
        UniqueConstraint("team_id", "source", "provider_id", name="uq_sprints_provider"),
        Index("ix_sprints_team_ended", "team_id", "ended_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(32))  # jira | github-milestones | demo
    provider_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    state: Mapped[str] = mapped_column(String(16), default="closed")


class SprintItem(Base):
    __tablename__ = "sprint_items"
    __table_args__ = (UniqueConstraint("sprint_id", "key", name="uq_sprint_items_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sprint_id: Mapped[int] = mapped_column(ForeignKey("sprints.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(Text, default="")
    # in the sprint when it started
    committed: Mapped[bool] = mapped_column(Boolean, default=True)
    # added after the sprint started
    added: Mapped[bool] = mapped_column(Boolean, default=False)
    # removed before the sprint ended
    removed: Mapped[bool] = mapped_column(Boolean, default=False)
    # done by the sprint's end
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    points: Mapped[float | None] = mapped_column(Float)


# --- Slack-side state ---------------------------------------------------------------------


class ActionItem(Base):
    __tablename__ = "action_items"
    __table_args__ = (
        Index("ix_action_items_team_due", "team_id", "due_on"),
        Index("ix_action_items_owner", "owner"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    opportunity: Mapped[str] = mapped_column(Text)
    resolution: Mapped[str] = mapped_column(Text)
    # the chat platform of the people and conversation below ("slack", "teams")
    platform: Mapped[str] = mapped_column(String(16), default="slack", server_default="slack")
    owner: Mapped[str] = mapped_column(String(255))  # the platform's user id
    due_on: Mapped[date] = mapped_column(Date)
    completed_on: Mapped[date | None] = mapped_column(Date)
    kpi: Mapped[str | None] = mapped_column(String(64))
    baseline_value: Mapped[float | None] = mapped_column(Float)
    baseline_n: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    channel_id: Mapped[str | None] = mapped_column(String(255))  # the conversation


class FormSubmission(Base):
    """A chat form (the action-item modal) submitted and stored once: its key is the
    platform's id of that exact form state (Slack: view id and view hash), so a replayed
    delivery of the same submission finds its row and stores nothing new."""

    __tablename__ = "form_submissions"
    __table_args__ = (UniqueConstraint("submission_key", name="uq_form_submissions_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_key: Mapped[str] = mapped_column(String(200))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("action_items.id", ondelete="SET NULL"))
    submitted_by: Mapped[str] = mapped_column(String(32))
    submitted_at: Mapped[datetime] = mapped_column(DateTime)


class ChannelTeam(Base):
    """A conversation's team, keyed by (platform, conversation id)."""

    __tablename__ = "channel_teams"

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)  # slack | teams
    channel_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    set_by: Mapped[str | None] = mapped_column(String(255))
    set_at: Mapped[datetime | None] = mapped_column(DateTime)


class DigestSubscription(Base):
    __tablename__ = "digest_subscriptions"
    __table_args__ = (
        UniqueConstraint(
            "platform", "channel_id", "team_id", "kind", name="uq_digest_subscriptions_key"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # the conversation: (platform, channel_id); platform is slack | teams
    platform: Mapped[str] = mapped_column(String(16), default="slack", server_default="slack")
    channel_id: Mapped[str] = mapped_column(String(255))
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # weekly | monthly
    schedule: Mapped[str | None] = mapped_column(String(32))  # "mon 09:00", "1 09:00"
    created_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    broken_reason: Mapped[str | None] = mapped_column(Text)
    # Teams: where the scheduler posts proactively (the connector's service URL, the tenant)
    service_url: Mapped[str | None] = mapped_column(String(512))
    tenant_id: Mapped[str | None] = mapped_column(String(64))


class DigestRun(Base):
    """One digest for one subscription and period: claimed once, posted at most once."""

    __tablename__ = "digest_runs"
    __table_args__ = (UniqueConstraint("subscription_id", "period_key", name="uq_digest_runs_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("digest_subscriptions.id", ondelete="CASCADE")
    )
    period_key: Mapped[str] = mapped_column(String(16))  # 2026-W46 | 2026-10
    status: Mapped[str] = mapped_column(String(16))  # claimed | posted | skipped | failed
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[datetime] = mapped_column(DateTime)
    posted_at: Mapped[datetime | None] = mapped_column(DateTime)
    message_ts: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[str | None] = mapped_column(Text)
    # posting attempts so far; a re-claim after a failed or abandoned attempt first looks in
    # the channel for the message (bot.scheduler.posting)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ReminderRun(Base):
    """One action-item reminder DM for one owner, team and local day: sent at most once."""

    __tablename__ = "reminder_runs"
    __table_args__ = (
        UniqueConstraint("platform", "team_id", "owner", "day", name="uq_reminder_runs_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # the chat platform of the owner ("slack", "teams")
    platform: Mapped[str] = mapped_column(String(16), default="slack", server_default="slack")
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    owner: Mapped[str] = mapped_column(String(255))  # the platform's user id
    day: Mapped[date] = mapped_column(Date)  # the team's local date
    status: Mapped[str] = mapped_column(String(16))  # claimed | posted | failed
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[datetime] = mapped_column(DateTime)
    posted_at: Mapped[datetime | None] = mapped_column(DateTime)
    message_ts: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class SchedulerLease(Base):
    """Which scheduler process is active: held until ``expires_at``, renewed while alive."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    acquired_at: Mapped[datetime] = mapped_column(DateTime)
    renewed_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    # incremented on every change of holder
    generation: Mapped[int] = mapped_column(Integer, default=1)


class SyncCursor(Base):
    """Where an incremental sync of (source, scope, kind) got to; moved after a page commits."""

    __tablename__ = "sync_cursors"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    scope: Mapped[str] = mapped_column(String(255), primary_key=True)  # e.g. acme/payments-api
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)  # pulls | deployments | ...
    cursor: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class AlertSetting(Base):
    """A threshold alert switched on or off in chat (``/kpi alert on|off``): wins over the
    team's ``alerts:`` in kpibot.yml."""

    __tablename__ = "alert_settings"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    kpi: Mapped[str] = mapped_column(String(32), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    set_by: Mapped[str | None] = mapped_column(String(255))
    set_at: Mapped[datetime] = mapped_column(DateTime)


class AlertState(Base):
    """Where the crossing rule (bot.metrics.alerts) stands for a team's KPI."""

    __tablename__ = "alert_states"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    kpi: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str | None] = mapped_column(String(16))  # on target | off target
    crossed_at: Mapped[datetime | None] = mapped_column(DateTime)  # the last crossing
    evaluated_at: Mapped[datetime] = mapped_column(DateTime)  # the last evaluation


class AlertEvent(Base):
    """A crossing to announce, stored with the evaluation that found it (the same
    transaction), so it is announced once whatever happens after."""

    __tablename__ = "alert_events"
    __table_args__ = (
        UniqueConstraint("team_id", "kpi", "evaluated_at", name="uq_alert_events_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    kpi: Mapped[str] = mapped_column(String(32))
    evaluated_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    crossing: Mapped[str] = mapped_column(String(16))  # off target | recovered
    value: Mapped[float | None] = mapped_column(Float)
    n: Mapped[int] = mapped_column(Integer)
    target_op: Mapped[str] = mapped_column(String(2))
    target_value: Mapped[float] = mapped_column(Float)


class AlertDelivery(Base):
    """One alert posted to one conversation: claimed once, posted at most once."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "platform", "channel_id", name="uq_alert_deliveries_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("alert_events.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(16))
    channel_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))  # claimed | posted | skipped | failed
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[datetime] = mapped_column(DateTime)
    posted_at: Mapped[datetime | None] = mapped_column(DateTime)
    message_ts: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class SourceHealth(Base):
    """How a source of data fares: one row per (source, scope), e.g. ``github`` and a
    repository, ``jira`` and a team, ``github-webhooks`` and a repository.

    ``last_success_at`` is the source's *data as of* (METRICS.md, Freshness): its last
    successful sync, or for a webhook its last accepted delivery. ``failing`` is the state
    last announced to the team's channels; ``episode`` counts the times it started failing
    (each episode gets one notice, and one recovery notice)."""

    __tablename__ = "source_health"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    scope: Mapped[str] = mapped_column(String(255), primary_key=True)
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)  # secrets taken out
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime)
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime)
    failing: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    episode: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class SourceNoticeRun(Base):
    """One freshness notice (``failing`` or ``recovered``) of one episode of a source, to one
    conversation: claimed once, posted at most once (as digest runs)."""

    __tablename__ = "source_notice_runs"
    __table_args__ = (
        UniqueConstraint(
            "source",
            "scope",
            "episode",
            "kind",
            "platform",
            "channel_id",
            name="uq_source_notice_runs_key",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(255))
    episode: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # failing | recovered
    platform: Mapped[str] = mapped_column(String(16))
    channel_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))  # claimed | posted | failed | skipped
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[datetime] = mapped_column(DateTime)
    posted_at: Mapped[datetime | None] = mapped_column(DateTime)
    message_ts: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


# --- working agreements, exclusions and the noise budget ----------------------------------


class PullRequestExclusion(Base):
    """A PR a lead left out of a team's KPIs (METRICS.md, Which PRs are a team's), with who
    did it and why."""

    __tablename__ = "pull_request_exclusions"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    pull_request_id: Mapped[int] = mapped_column(
        ForeignKey("pull_requests.id", ondelete="CASCADE"), primary_key=True
    )
    platform: Mapped[str] = mapped_column(String(16))
    excluded_by: Mapped[str] = mapped_column(String(255))  # the platform's user id
    reason: Mapped[str] = mapped_column(Text)
    excluded_at: Mapped[datetime] = mapped_column(DateTime)


class AgreementBreach(Base):
    """One PR in breach of one of a team's working agreements: announced at most once
    (claim, post, record), snoozed until a time, and when it left the breach."""

    __tablename__ = "agreement_breaches"
    __table_args__ = (
        UniqueConstraint(
            "team_id", "pull_request_id", "agreement", name="uq_agreement_breaches_key"
        ),
        Index("ix_agreement_breaches_team_resolved", "team_id", "resolved_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    pull_request_id: Mapped[int] = mapped_column(ForeignKey("pull_requests.id", ondelete="CASCADE"))
    # first_review_within | pr_size_under | open_pr_idle_for
    agreement: Mapped[str] = mapped_column(String(32))
    # the start of the span the agreement measures (ready for review, last activity, opened)
    since: Mapped[datetime] = mapped_column(DateTime)
    seen_at: Mapped[datetime] = mapped_column(DateTime)  # when a check first found it
    # pending | announced | folded (over the noise budget: only in the roll-up)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    announced_at: Mapped[datetime | None] = mapped_column(DateTime)
    # the notice (``bot.scheduler.budget``) that announces it, set when a pass claims it
    notice_key: Mapped[str | None] = mapped_column(String(200))
    snoozed_until: Mapped[datetime | None] = mapped_column(DateTime)
    snoozed_by: Mapped[str | None] = mapped_column(String(255))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime)


class NoticeRun(Base):
    """One proactive message (an agreement nudge, a threshold alert, a roll-up) to one
    conversation: claimed once, then posted, folded into the next roll-up, or failed. The rows
    of a week are that conversation's noise budget (``bot.scheduler.budget``)."""

    __tablename__ = "notice_runs"
    __table_args__ = (
        UniqueConstraint("platform", "channel_id", "kind", "key", name="uq_notice_runs_key"),
        Index("ix_notice_runs_channel_week", "platform", "channel_id", "week"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    channel_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))  # agreement | alert | rollup | ...
    key: Mapped[str] = mapped_column(String(200))  # what the message is about, unique per kind
    week: Mapped[str] = mapped_column(String(10))  # the ISO week (team time) it counts in
    # admitted | folded | posted | failed
    status: Mapped[str] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text)  # a folded notice's line for the roll-up
    rolled_up_at: Mapped[datetime | None] = mapped_column(DateTime)
    claimed_at: Mapped[datetime] = mapped_column(DateTime)
    posted_at: Mapped[datetime | None] = mapped_column(DateTime)
    message_ts: Mapped[str | None] = mapped_column(String(64))


# every flush of a session keeps the pull requests' first review and approval
# (``bot.store.pr_summary`` registers its listeners when imported; it needs the models above)
from bot.store import pr_summary as _pr_summary  # noqa: E402,F401
