"""Read queries the metrics use. Each returns plain rows filtered and sorted in the database,
along the indexes declared in ``bot.store.models``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, DateTime, Select, and_, func, null, or_, select, text
from sqlalchemy.orm import Session, aliased

from bot.store.models import (
    REVERT_CANDIDATE,
    Deployment,
    DeploymentPullRequest,
    Incident,
    PullRequest,
    PullRequestExclusion,
    PullRequestFile,
    Repository,
    Review,
    Sprint,
    SprintItem,
    Team,
    TeamPullRequest,
)

#: a query of PR ids the row queries below read the rows of
Selection = Select[Any]


def _rows(session: Session, q: Select[Any]) -> list[Any]:
    """The rows of a column select, run on the session's connection: the same tuples as
    ``session.execute`` (pending changes are flushed first, as autoflush would), without the
    ORM's per-row loading overhead, which was about 40 % of a metric card's time."""
    session.flush()
    return list(session.connection().execute(q).all())


def _tuples(session: Session, q: Select[Any]) -> list[Any]:
    """The rows of a column select as plain sequences, for the queries that read a span's
    thousands of PR, review and file rows and are only unpacked by position.

    A deliberate exception to reading through SQLAlchemy's result: its Row objects and
    per-column result processing were a fifth of a metric card's time at 800,000 PRs, and
    the only processing these columns need is SQLite's, which stores datetimes as ISO text
    (``DateTime`` columns are parsed here with ``datetime.fromisoformat``, as SQLAlchemy's
    SQLite dialect does; booleans stay 0 and 1, which the callers read as truth values).
    PostgreSQL's driver returns the Python values itself. The statement is still compiled and
    executed by SQLAlchemy (cached, with its parameters)."""
    session.flush()
    result = session.connection().execute(q)
    try:
        rows = cast(list[Any], result.cursor.fetchall())
    finally:
        result.close()
    if not rows or result.dialect.name != "sqlite":
        return rows
    stamps = [i for i, c in enumerate(q.selected_columns) if isinstance(c.type, DateTime)]
    if not stamps:
        return rows
    parse = datetime.fromisoformat
    out = []
    for row in rows:
        values = list(row)
        for i in stamps:
            v = values[i]
            if v is not None:
                values[i] = parse(v)
        out.append(values)
    return out


def repositories(session: Session, full_names: Sequence[str]) -> dict[int, tuple[str, str]]:
    """id -> (full name, default branch) for the named repositories that exist in the store."""
    if not full_names:
        return {}
    lowered = [n.lower() for n in full_names]
    rows = session.execute(
        select(Repository.id, Repository.full_name, Repository.default_branch).where(
            func.lower(Repository.full_name).in_(lowered)
        )
    )
    return {r.id: (r.full_name, r.default_branch) for r in rows}


def team_id(session: Session, name: str) -> int | None:
    return session.scalar(select(Team.id).where(Team.name == name))


def merged_pr_ids(repo_ids: Sequence[int], start: datetime, end: datetime) -> Select[Any]:
    """Selection: PRs of these repositories merged in ``[start, end)``."""
    return select(PullRequest.id).where(
        PullRequest.repository_id.in_(repo_ids),
        PullRequest.merged_at >= start,
        PullRequest.merged_at < end,
    )


def team_merged_pr_ids(team: int, start: datetime, end: datetime) -> Select[Any]:
    """Selection: PRs merged in ``[start, end)`` that a team defined by people or paths
    counts (kept in ``team_pull_requests``, read along ``(team_id, merged_at)``)."""
    return select(TeamPullRequest.pull_request_id).where(
        TeamPullRequest.team_id == team,
        TeamPullRequest.merged_at >= start,
        TeamPullRequest.merged_at < end,
    )


def deployed_pr_ids(
    repo_ids: Sequence[int],
    envs: Sequence[str],
    start: datetime,
    end: datetime,
    team: int | None = None,
) -> Select[Any]:
    """Selection: the PRs contained in a successful production deployment of these
    repositories finished in ``[start, end)`` (a superset of the PRs whose *first* one
    finished then: ``first_deployment_rows`` tells them apart).

    Read from the period's deployments only (``ix_deployments_repo_finished``), through their
    links (whose primary key starts with the deployment). A deployment contains merged PRs of
    its own repository (``bot.store.derive`` is the only writer of the links), so the team's
    deployments are the ones to read and the PRs need no look-up here (one per link was a
    third of the query on PostgreSQL); the rows read from the selection are merged PRs
    (``pr_rows``) of the team's repositories (``TeamEngine._pr_facts``). With ``team`` (a team
    defined by people or paths), only the PRs kept for it.
    """
    if team is not None:
        # the team's kept PRs: one primary-key look-up per link (joining pull_requests on
        # the repository, or filtering on the kept merge time, would let a planner walk a
        # monorepo's or the team's PRs for every deployment instead); a deployment contains
        # merged PRs only, and the rows read from the selection are merged PRs
        # (``pr_rows``)
        return (
            select(DeploymentPullRequest.pull_request_id)
            .join(Deployment, Deployment.id == DeploymentPullRequest.deployment_id)
            .join(
                TeamPullRequest,
                and_(
                    TeamPullRequest.team_id == team,
                    TeamPullRequest.pull_request_id == DeploymentPullRequest.pull_request_id,
                ),
            )
            .where(
                Deployment.repository_id.in_(repo_ids),
                Deployment.finished_at >= start,
                Deployment.finished_at < end,
                Deployment.status == "success",
                Deployment.environment.in_(envs),
            )
        )
    return (
        select(DeploymentPullRequest.pull_request_id)
        .join(Deployment, Deployment.id == DeploymentPullRequest.deployment_id)
        .where(
            Deployment.repository_id.in_(repo_ids),
            Deployment.finished_at >= start,
            Deployment.finished_at < end,
            Deployment.status == "success",
            Deployment.environment.in_(envs),
        )
    )


def pr_ids(ids: Sequence[int]) -> Select[Any]:
    """Selection: these PRs (at most a few thousand ids: the caller chunks)."""
    return select(PullRequest.id).where(PullRequest.id.in_(list(ids)))


def first_deployment_rows(
    session: Session,
    repo_ids: Sequence[int],
    envs: Sequence[str],
    start: datetime,
    end: datetime,
    team: int | None = None,
) -> list[Any]:
    """(PR id, finish of its first successful production deployment) for the PRs whose first
    one finished in ``[start, end)``: the PRs of ``deployed_pr_ids`` with the earliest of the
    span's deployments that contain them, less those a deployment finished before ``start``
    contained already (one look-up along ``ix_deployment_prs_pr`` per PR; a correlated minimum
    over each PR's deployments, filtered afterwards, took twice as long on PostgreSQL)."""
    earlier = aliased(DeploymentPullRequest)
    earlier_run = aliased(Deployment)
    deployed_before = (
        select(earlier.pull_request_id)
        .join(earlier_run, earlier_run.id == earlier.deployment_id)
        .where(
            earlier.pull_request_id == DeploymentPullRequest.pull_request_id,
            earlier_run.status == "success",
            earlier_run.environment.in_(envs),
            earlier_run.finished_at < start,
        )
        # OFFSET 0 keeps the check one index look-up per PR: without it PostgreSQL may turn
        # it into a hashed subplan over every link of the history before the span (3x slower
        # at 675,000 links, and growing with the history) when it expects many PRs
        .offset(0)
        .exists()
    )
    q = (
        deployed_pr_ids(repo_ids, envs, start, end, team)
        .add_columns(func.min(Deployment.finished_at))
        .group_by(DeploymentPullRequest.pull_request_id)
        .having(~deployed_before)
    )
    return _tuples(session, q)


def _own_criteria(selection: Selection) -> ColumnElement[bool] | None:
    """The WHERE clause of a selection of ``pull_requests.id`` from ``pull_requests`` alone
    (``merged_pr_ids``), which reads the same rows applied to the PRs themselves: PostgreSQL
    then follows the index once instead of looking up each selected id by primary key
    (14 ms against 28 ms for a busy team's 13,000 PRs, without parallel workers). None for
    any other selection (joins, other tables, limits)."""
    columns = list(selection.selected_columns)
    table = PullRequest.__table__
    if (
        len(columns) == 1
        and getattr(columns[0], "table", None) is table
        and getattr(columns[0], "name", None) == "id"
        and selection.get_final_froms() == [table]
        and selection.whereclause is not None
        and selection._limit_clause is None
        and selection._offset_clause is None
        and not selection._group_by_clauses
        and not selection._distinct
    ):
        return selection.whereclause
    return None


def pr_rows(session: Session, selection: Selection, reviewers: bool = True) -> list[Any]:
    """Merged PRs of the selection, by merge time, with the first review, approval and
    counted lines the store keeps with them (``bot.store.pr_summary``; their first production
    deployments come from ``first_deployment_rows``). Without ``reviewers`` the first
    reviewer's and approver's logins are NULL (only a team with bot patterns of its own reads
    them). The engine unpacks the rows by position: keep the column order."""
    own = _own_criteria(selection)
    if own is None:
        own = PullRequest.id.in_(selection)
    q = (
        select(
            PullRequest.id,
            PullRequest.repository_id,
            PullRequest.number,
            PullRequest.title,
            PullRequest.author_login,
            PullRequest.author_is_bot,
            PullRequest.created_at,
            PullRequest.ready_at,
            PullRequest.first_commit_at,
            PullRequest.merged_at,
            PullRequest.base_branch,
            PullRequest.additions,
            PullRequest.deletions,
            PullRequest.labels,
            PullRequest.first_review_at,
            PullRequest.first_review_by if reviewers else null(),
            PullRequest.first_approval_at,
            PullRequest.first_approval_by if reviewers else null(),
            PullRequest.counted_lines,
        )
        .where(own, PullRequest.merged_at.is_not(None))
        .order_by(PullRequest.merged_at, PullRequest.id)
    )
    return _tuples(session, q)


def reviews_of(selection: Selection | Sequence[int]) -> Select[Any]:
    """The submitted reviews of these PRs as ``bot.ingest.rules.first_reviews`` reads them
    (``ReviewRow``), by PR and submission time: keep the order and the columns."""
    return (
        select(
            Review.pull_request_id,
            Review.author_login,
            Review.author_is_bot,
            Review.state,
            Review.submitted_at,
            Review.dismissed,
        )
        .where(
            Review.pull_request_id.in_(selection),
            Review.submitted_at.is_not(None),
            Review.state != "PENDING",
        )
        .order_by(Review.pull_request_id, Review.submitted_at, Review.id)
    )


def review_rows(session: Session, selection: Selection) -> list[Any]:
    """``reviews_of`` the selection (the engine takes a PR's first qualifying review as its
    earliest)."""
    return _tuples(session, reviews_of(selection))


def files_of(selection: Selection | Sequence[int]) -> Select[Any]:
    """The file rows of these PRs as ``bot.ingest.rules.counted_lines`` reads them
    (``FileRow``): keep the columns."""
    return select(
        PullRequestFile.pull_request_id,
        PullRequestFile.path,
        PullRequestFile.additions,
        PullRequestFile.deletions,
        PullRequestFile.generated,
    ).where(PullRequestFile.pull_request_id.in_(selection))


def file_rows(session: Session, selection: Selection) -> list[Any]:
    return _tuples(session, files_of(selection))


def deployment_rows(
    session: Session, repo_ids: Sequence[int], envs: Sequence[str], start: datetime, end: datetime
) -> list[Any]:
    """Production deployments of these repositories finished in ``[start, end)``."""
    q = (
        select(
            Deployment.id,
            Deployment.repository_id,
            Deployment.commit_sha,
            Deployment.status,
            Deployment.finished_at,
            Deployment.rolled_back_at,
            Deployment.contents_unknown,
        )
        .where(
            Deployment.repository_id.in_(repo_ids),
            Deployment.environment.in_(envs),
            Deployment.finished_at >= start,
            Deployment.finished_at < end,
        )
        .order_by(Deployment.finished_at, Deployment.id)
    )
    return _rows(session, q)


def contained_rows(
    session: Session,
    deployment_ids: Sequence[int],
    *,
    titles: Collection[str],
    numbers: Collection[int],
    shas: Collection[str],
    min_sha: int,
) -> list[Any]:
    """(deployment id, PR title, merge SHA, PR number) for the PRs the deployments contain
    that the failure rules may look for (``bot.metrics.lagging.Named``): with one of
    ``titles`` or ``numbers``, or whose merge SHA may begin one of ``shas`` (lower case, of
    ``min_sha`` characters at least) or begin with one: its first ``min_sha`` characters in
    lower case are one's, or it is shorter. The rules themselves match the rows read; the
    others change no failure attribution: filtering them in the database spares reading
    every deployed PR's title (one prefix per row, not a comparison per SHA)."""
    out: list[Any] = []
    ids = list(deployment_ids)
    named: list[ColumnElement[bool]] = []
    if titles:
        named.append(PullRequest.title.in_(sorted(titles)))
    if numbers:
        named.append(PullRequest.number.in_(sorted(numbers)))
    if shas:
        stored = PullRequest.merge_commit_sha
        named.append(
            func.substr(func.lower(stored), 1, min_sha).in_(sorted({s[:min_sha] for s in shas}))
        )
        named.append(func.length(stored) < min_sha)
    if not named:
        return []
    for i in range(0, len(ids), 900):
        chunk = ids[i : i + 900]
        q = (
            select(
                DeploymentPullRequest.deployment_id,
                PullRequest.title,
                PullRequest.merge_commit_sha,
                PullRequest.number,
            )
            .join(PullRequest, PullRequest.id == DeploymentPullRequest.pull_request_id)
            .where(DeploymentPullRequest.deployment_id.in_(chunk), or_(*named))
        )
        out.extend(_rows(session, q))
    return out


def incident_rows(session: Session, team: int, start: datetime) -> list[Any]:
    """The team's incidents that started or were resolved at or after ``start``."""
    q = (
        select(
            Incident.id,
            Incident.started_at,
            Incident.resolved_at,
            Incident.deployment_id,
            Incident.commit_sha,
        )
        .where(
            Incident.team_id == team,
            or_(Incident.started_at >= start, Incident.resolved_at >= start),
        )
        .order_by(Incident.started_at, Incident.id)
    )
    return _rows(session, q)


def revert_rows(
    session: Session, repo_ids: Sequence[int], start: datetime, end: datetime
) -> list[Any]:
    """Merged PRs that may be reverts: titled ``Revert "...`` or from a ``revert-...`` branch."""
    q = select(
        PullRequest.repository_id,
        PullRequest.title,
        PullRequest.merged_at,
        PullRequest.head_branch,
    ).where(
        PullRequest.repository_id.in_(repo_ids),
        PullRequest.merged_at >= start,
        PullRequest.merged_at < end,
        text(f"({REVERT_CANDIDATE})"),  # as written in ix_pull_requests_reverts
    )
    return _rows(session, q)


def sprint_item_rows(session: Session, team: int, start: datetime, end: datetime) -> list[Any]:
    """Items of the team's sprints that ended in ``[start, end)``, with the sprint's end."""
    q = (
        select(
            SprintItem.sprint_id,
            Sprint.ended_at,
            SprintItem.committed,
            SprintItem.added,
            SprintItem.completed,
            SprintItem.points,
        )
        .join(Sprint, Sprint.id == SprintItem.sprint_id)
        .where(and_(Sprint.team_id == team, Sprint.ended_at >= start, Sprint.ended_at < end))
    )
    return _rows(session, q)


def _kept_for(selection: Select[Any], team: int | None) -> Select[Any]:
    """``selection`` of PRs narrowed, for a team defined by people or paths (``team``), to
    the PRs kept for it in ``team_pull_requests``; unchanged for ``None``."""
    if team is None:
        return selection
    return selection.join(
        TeamPullRequest,
        and_(TeamPullRequest.team_id == team, TeamPullRequest.pull_request_id == PullRequest.id),
    )


def open_pr_ids(
    repo_ids: Sequence[int], created_before: datetime, team: int | None = None
) -> Select[Any]:
    """Selection: open, non-draft PRs of these repositories created before the cut-off
    (with ``team``, a team defined by people or paths: only the PRs kept for it)."""
    waiting: Select[Any] = select(PullRequest.id).where(
        PullRequest.repository_id.in_(repo_ids),
        PullRequest.state == "open",
        PullRequest.is_draft.is_(False),
        PullRequest.created_at < created_before,
    )
    return _kept_for(waiting, team)


def open_pr_rows(session: Session, selection: Select[Any]) -> list[Any]:
    q = (
        select(
            PullRequest.id,
            PullRequest.repository_id,
            PullRequest.number,
            PullRequest.title,
            PullRequest.url,
            PullRequest.author_login,
            PullRequest.author_is_bot,
            PullRequest.created_at,
            PullRequest.ready_at,
            PullRequest.labels,
        )
        .where(PullRequest.id.in_(selection))
        .order_by(PullRequest.created_at, PullRequest.id)
    )
    return _rows(session, q)


def excluded_pr_ids(session: Session, team: int) -> set[int]:
    """The PRs a lead left out of the team's KPIs (a handful: read whole)."""
    q = select(PullRequestExclusion.pull_request_id).where(PullRequestExclusion.team_id == team)
    return {r[0] for r in _rows(session, q)}


def open_prs(repo_ids: Sequence[int], team: int | None = None) -> Select[Any]:
    """Selection: every open PR of these repositories (``ix_pull_requests_repo_state_created``;
    with ``team``, a team defined by people or paths: only the PRs kept for it)."""
    selection: Select[Any] = select(PullRequest.id).where(
        PullRequest.repository_id.in_(repo_ids), PullRequest.state == "open"
    )
    return _kept_for(selection, team)


def open_pr_detail_rows(session: Session, selection: Select[Any]) -> list[Any]:
    """What the working agreements read of open PRs (by opening time)."""
    q = (
        select(
            PullRequest.id,
            PullRequest.repository_id,
            PullRequest.number,
            PullRequest.title,
            PullRequest.url,
            PullRequest.author_login,
            PullRequest.author_is_bot,
            PullRequest.is_draft,
            PullRequest.created_at,
            PullRequest.ready_at,
            PullRequest.updated_at,
            PullRequest.additions,
            PullRequest.deletions,
            PullRequest.labels,
            PullRequest.base_branch,
        )
        .where(PullRequest.id.in_(selection))
        .order_by(PullRequest.created_at, PullRequest.id)
    )
    return _rows(session, q)
