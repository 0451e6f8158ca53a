"""The ingestion rules: the one home of every rule deciding what a GitHub event counts as.

``kpibot sync`` (``bot.sources.sync``) and the webhooks (``bot.surfaces.webhooks``) both call
these, so the same event stored through either path ends as the same rows:

- which teams count an issue as an incident (:func:`incident_teams`: the team's incident
  source is ``github-issues``, the issue's repository is one of the team's incident
  repositories, :func:`issue_repositories`, and it carries one of the team's labels,
  case-insensitively);
- which workflow runs are deployments (:func:`is_deployment_run`: the team's configured
  workflow file, on its ``branch`` when one is set) and in which environment
  (:func:`deployment_environment`); which GitHub deployments are (:func:`counts_github_deployment`:
  the team's source is ``github-deployments``, to one of its production environments);
- how an incident links to a deployment (:func:`find_references` in its title and body, then
  :func:`incident_link`: a deployment id the store knows, else the first SHA the store knows;
  unknown hex, such as a trace id, is no link);
- the ready-for-review time of a pull request (:func:`ready_for_review_at`; the store keeps
  the earliest one it was given, :func:`earliest`);
- a pull request's first review and first approval (:func:`first_reviews`) and its size
  from its files (:func:`counted_lines`): the store keeps their answers under the default bot
  rule and ``ignore_paths`` with each PR, the metrics apply them under a team's own;
- which PRs a team defined by people or paths counts (:class:`TeamPopulation`, METRICS.md
  *Which PRs are a team's*: its repositories, its author a member at merge time, or at
  opening for an open PR, and a file outside the ignored paths matching one of its paths);
- which of two deliveries of a deployment or an incident wins, and when a resolution is kept
  (:func:`deployment_delivery_wins`, :func:`incident_resolution`: SQL over the stored row and
  the incoming one, in the ``ON CONFLICT DO UPDATE`` of the store's writes).

Pure functions over the team configuration and plain values: this module sits below the
store (which applies the SQL rules) and imports neither the store nor any source.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, and_, case, not_, or_

from bot.metrics.patterns import PathFilter
from bot.settings import GitHubDeployments, GitHubIssueIncidents, TeamConfig, WorkflowDeployments

# --------------------------------------------------------------------------- team populations

#: a login's memberships of one team: (since, until), None for an open end, naive UTC
Spans = Sequence[tuple[datetime | None, datetime | None]]


def member_at(spans: Spans, at: datetime) -> bool:
    """Whether ``at`` falls in one of the membership spans (``[since, until)``)."""
    return any((a is None or a <= at) and (b is None or at < b) for a, b in spans)


@lru_cache(maxsize=64)
def _ignored_paths(patterns: tuple[str, ...]) -> PathFilter:
    """One matcher (and its cache of answers) for the teams sharing ``ignore_paths``."""
    return PathFilter(patterns)


class TeamPopulation:
    """Which PRs of a team's repositories are the team's (METRICS.md, *Which PRs are a
    team's*), for a team with ``members`` / ``github_team`` or ``paths``: the author was a
    member when the PR was merged (opened, for an open PR), and at least one of its files
    outside the ignored paths (and not generated) matches one of the paths. The base branch
    and bot rules apply to every team alike and stay with the KPIs."""

    def __init__(self, team: TeamConfig, members: dict[str, list[Any]] | None) -> None:
        """``members``: login (lower case) -> its membership spans; None when the team has
        no ``members`` nor ``github_team``."""
        self.members = members if team.has_members else None
        self.paths = PathFilter(team.paths) if team.paths else None
        self.ignored = _ignored_paths(team.path_patterns)

    @property
    def needs_files(self) -> bool:
        return self.paths is not None

    def member(self, author: str | None, created: datetime, merged: datetime | None) -> bool:
        """The author was a member when the PR was merged (opened, for an open PR); always
        true for a team without members."""
        if self.members is None:
            return True
        spans = self.members.get((author or "").lower())
        return spans is not None and member_at(spans, merged or created)

    def touches(self, path: str, generated: bool) -> bool:
        """The file counts for the team's paths: outside the ignored paths, not generated,
        matching one of them (always false for a team without paths)."""
        if self.paths is None or generated:
            return False
        return not self.ignored(path) and self.paths(path)

    def counts(
        self,
        author: str | None,
        created: datetime,
        merged: datetime | None,
        files: Iterable[tuple[str, bool]] = (),
    ) -> bool:
        """``files``: (path, generated) of the PR's changed files."""
        if not self.member(author, created, merged):
            return False
        if self.paths is not None:
            return any(self.touches(p, generated) for p, generated in files)
        return True


class Populations:
    """Several teams' :class:`TeamPopulation` applied to each PR at once (the teams sharing
    a monorepo): each distinct file is matched against every team's paths once."""

    def __init__(self, rules: Sequence[TeamPopulation]) -> None:
        self.rules = list(rules)
        self._with_paths = [i for i, r in enumerate(self.rules) if r.paths is not None]
        self._touched: dict[tuple[str, bool], frozenset[int]] = {}

    @property
    def needs_files(self) -> bool:
        return bool(self._with_paths)

    def _teams_touched(self, path: str, generated: bool) -> frozenset[int]:
        key = (path, generated)
        hit = self._touched.get(key)
        if hit is None:
            hit = frozenset(i for i in self._with_paths if self.rules[i].touches(path, generated))
            self._touched[key] = hit
        return hit

    def teams_of(
        self,
        candidates: Iterable[int],
        author: str | None,
        created: datetime,
        merged: datetime | None,
        files: Sequence[tuple[str, bool]] = (),
    ) -> list[int]:
        """Which of the ``candidates`` (indexes into the rules) count the PR: the same
        answer as each rule's :meth:`TeamPopulation.counts`."""
        touched: set[int] | None = None
        out = []
        for i in candidates:
            rule = self.rules[i]
            if not rule.member(author, created, merged):
                continue
            if rule.paths is not None:
                if touched is None:
                    touched = set()
                    for path, generated in files:
                        touched |= self._teams_touched(path, generated)
                if i not in touched:
                    continue
            out.append(i)
        return out


# --------------------------------------------------------------------------- incidents


def issue_repositories(team: TeamConfig) -> tuple[str, ...]:
    """The repositories whose issues may be ``team``'s incidents: ``incidents.repos``, else
    the team's repos; none when the team's incidents do not come from GitHub issues."""
    inc = team.incidents
    if not isinstance(inc, GitHubIssueIncidents):
        return ()
    return inc.repos or team.repos


def counts_issue(team: TeamConfig, repository: str, labels: Iterable[str]) -> bool:
    """Whether an issue of ``repository`` carrying ``labels`` is one of ``team``'s incidents."""
    inc = team.incidents
    if not isinstance(inc, GitHubIssueIncidents):
        return False
    if repository.lower() not in {r.lower() for r in issue_repositories(team)}:
        return False
    wanted = {label.lower() for label in inc.labels}
    return any(label.lower() in wanted for label in labels)


def incident_teams(
    teams: Iterable[TeamConfig], repository: str, labels: Iterable[str]
) -> list[TeamConfig]:
    """Every team counting the issue (teams sharing a repository each count it)."""
    labels = tuple(labels)
    return [t for t in teams if counts_issue(t, repository, labels)]


def incident_provider_id(repository: str, number: int) -> str:
    """The natural key of an issue's incident: ``owner/name#number``, lower case."""
    return f"{repository.lower()}#{number}"


# --------------------------------------------------------------------------- deployments


def deployment_environment(team: TeamConfig) -> str:
    """The environment of the team's workflow runs and releases: its first production one."""
    return team.production_environments[0] if team.production_environments else "production"


def counts_github_deployment(team: TeamConfig, environment: str) -> bool:
    """Whether a GitHub deployment to ``environment`` is one of ``team``'s: its deployments
    come from GitHub Deployments and the environment is one of its production environments
    (the sync asks GitHub for exactly those)."""
    return isinstance(team.deployments, GitHubDeployments) and (
        environment in team.production_environments
    )


def is_deployment_run(
    team: TeamConfig, *, path: str | None, name: str | None, branch: str | None
) -> bool:
    """Whether a workflow run (its workflow file ``path``, e.g. ``.github/workflows/deploy.yml``
    or ``...@refs/heads/main``, its workflow ``name`` and its ``head_branch``) is one of
    ``team``'s deployments: ``deployments.source`` is ``workflow``, the run's workflow is the
    configured file (or has its name), and when ``branch`` is configured the run is on it."""
    dep = team.deployments
    return isinstance(dep, WorkflowDeployments) and run_matches(
        dep, path=path, name=name, branch=branch
    )


def run_matches(
    dep: WorkflowDeployments, *, path: str | None, name: str | None, branch: str | None
) -> bool:
    """Whether a workflow run is a run of the configured workflow (and branch)."""
    file = (path or "").split("@", 1)[0]
    if not (file == dep.workflow or file.endswith("/" + dep.workflow) or name == dep.workflow):
        return False
    return dep.branch is None or branch == dep.branch


def deployment_teams(
    teams: Iterable[TeamConfig], *, path: str | None, name: str | None, branch: str | None
) -> list[TeamConfig]:
    """The teams (of the run's repository) whose deployments the workflow run is."""
    return [t for t in teams if is_deployment_run(t, path=path, name=name, branch=branch)]


# --------------------------------------------------------------------------- incident links

_SHA = re.compile(r"(?<![0-9A-Za-z])([0-9a-f]{7,40})(?![0-9A-Za-z])", re.IGNORECASE)
_DEPLOYMENT_REF = re.compile(
    r"/deployments/(\d+)|/actions/runs/(\d+)|\bdeploy(?:ment)?\s*(?:id\s*)?[#:]\s*(\d+)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class References:
    shas: tuple[str, ...]  # lower case, 7 to 40 hex digits
    deployment_ids: tuple[str, ...]  # GitHub deployment or workflow run ids


def find_references(text: str) -> References:
    """Commit SHAs and deployment (or workflow run) ids an issue's text names.

    A SHA is 7-40 hex digits standing alone; shorter than 40 it must mix digits and letters
    (so plain numbers and words like ``defaced`` are not taken for commits). Deployments are
    named by URL (``.../deployments/123``, ``.../actions/runs/456``) or as ``deployment #123``.
    """
    shas: list[str] = []
    ids: list[str] = []
    for m in _DEPLOYMENT_REF.finditer(text):
        ident = next(g for g in m.groups() if g)
        if ident not in ids:
            ids.append(ident)
    for m in _SHA.finditer(text):
        s = m.group(1).lower()
        if len(s) < 40 and (s.isdigit() or s.isalpha()):
            continue
        if s not in shas:
            shas.append(s)
    return References(tuple(shas), tuple(ids))


def incident_link(
    text: str,
    *,
    deployment_of: Callable[[Sequence[str]], int | None],
    commit_of: Callable[[str], str | None],
) -> tuple[int | None, str | None]:
    """``(deployment id, commit SHA)`` an incident's text links it to.

    ``deployment_of(ids)``: the store's id of the first of the team's deployments with one of
    these provider ids; ``commit_of(prefix)``: the full SHA of a commit of the team's
    repositories the store knows (a commit, a deployed commit or a merge commit) starting
    with ``prefix``. Only what the store knows links: hex the store does not know (a trace id,
    a hash in a log line) is no link, and the incident is attributed by its time window.
    """
    refs = find_references(text)
    dep_id = deployment_of(refs.deployment_ids) if refs.deployment_ids else None
    for sha in refs.shas:
        known = commit_of(sha)
        if known:
            return dep_id, known
    return dep_id, None


# --------------------------------------------------------------------------- pull requests


def ready_for_review_at(action: str | None, updated_at: datetime) -> datetime | None:
    """The ready-for-review time a ``pull_request`` event tells: its update time for the
    ``ready_for_review`` action, else nothing (the store keeps the earliest one known)."""
    return updated_at if action == "ready_for_review" else None


def earliest(a: Any, b: Any) -> ColumnElement[Any]:
    """SQL: the earlier of two nullable times (NULL only when both are); a pull request's
    ready-for-review time is the earliest one any delivery or page told."""
    return case((a.is_(None), b), (b.is_(None), a), (a < b, a), else_=b)


def _pr_progress(state: Any) -> ColumnElement[int]:
    """How far along a pull request's state is: open, then closed, then merged."""
    return case((state == "merged", 2), (state == "closed", 1), else_=0)


def pull_request_delivery_wins(stored: Any, incoming: Any) -> ColumnElement[bool]:
    """SQL: True when an incoming payload of a stored pull request (a webhook event, a sync
    page, the pull request a review event carries) may replace its state.

    It may when it is newer (``updated_at``), or as new and no further back (open, closed,
    merged: a label added as the PR merges is an event of the same second, and the two arrive
    in either order). GitHub delivers events out of order and redelivers old ones on request:
    an older ``synchronize`` delivered after the merge must not reopen or unmerge the PR, nor
    a sync page read just before a newer event was stored. A row or payload without an update
    time wins (nothing to order it by). What no payload takes away, whichever wins: the
    earliest ready-for-review time, the first commit, having been a draft, and the merge time
    (a winning payload without one keeps the stored one: a merge is never undone).
    """
    return or_(
        stored.updated_at.is_(None),
        incoming.updated_at.is_(None),
        incoming.updated_at > stored.updated_at,
        and_(
            incoming.updated_at == stored.updated_at,
            _pr_progress(incoming.state) >= _pr_progress(stored.state),
        ),
    )


def review_delivery_wins(stored: Any, incoming: Any) -> ColumnElement[bool]:
    """SQL: True when an incoming payload of a stored review may replace it: a dismissal is
    final (GitHub cannot undo one), so a dismissed review takes nothing but another
    dismissal; a ``submitted`` or ``edited`` event delivered after the ``dismissed`` one
    does not bring the approval back."""
    return or_(not_(stored.dismissed), incoming.dismissed)


#: (pull request id, reviewer's login, provider says bot, state, submitted at, dismissed): a
#: stored review as the first-review rule reads it
ReviewRow = tuple[int, str | None, bool, str, datetime | None, bool]


@dataclass(frozen=True, slots=True)
class FirstReviews:
    """A pull request's first review and first approval (time and reviewer's login), each
    None when there is none."""

    review_at: datetime | None = None
    review_by: str | None = None
    approval_at: datetime | None = None
    approval_by: str | None = None


def first_reviews(
    rows: Iterable[ReviewRow],
    authors: dict[int, str],
    is_bot: Callable[[str | None, bool], bool],
) -> dict[int, FirstReviews]:
    """The first review and first approval of each pull request in ``authors`` (id -> its
    author's login in lower case), from its ``rows`` in submission order (METRICS.md, *The
    pull-request timeline*): the earliest submitted, non-pending review by someone other than
    the author who is not a bot (``is_bot(login, provider says bot)``), and the earliest such
    review that approved and was not dismissed. The one home of that rule: the store keeps
    its answer under the default bot rule with each pull request
    (``bot.store.pr_summary``), and the metrics apply it again where a team's own
    ``exclude_authors`` name one of those reviewers."""
    out: dict[int, FirstReviews] = {}
    review: dict[int, tuple[datetime, str]] = {}
    approval: dict[int, tuple[datetime, str]] = {}
    for pr, login, flag, state, submitted, dismissed in rows:
        author = authors.get(pr)
        if author is None or submitted is None or state == "PENDING":
            continue
        who = login or ""
        if who.lower() == author or is_bot(login, bool(flag)):
            continue
        if pr not in review:
            review[pr] = (submitted, who)
        if state == "APPROVED" and not dismissed and pr not in approval:
            approval[pr] = (submitted, who)
    for pr, (at, who) in review.items():
        a = approval.get(pr)
        out[pr] = FirstReviews(at, who, a[0] if a else None, a[1] if a else None)
    return out


#: (pull request id, path, additions, deletions, marked generated): a stored file of a PR
FileRow = tuple[int, str, int, int, bool]


def counted_lines(rows: Iterable[FileRow], ignored: Callable[[str], bool]) -> dict[int, int]:
    """Each PR's size from its file rows (METRICS.md, PR size): additions + deletions of
    its files, leaving out the ignored paths (``ignored(path)``) and the generated files. A
    PR without file rows is absent: its size is the provider's total. The one home of that
    rule: the store keeps its answer under the default ``ignore_paths`` with each pull
    request (``bot.store.pr_summary``), the metrics apply it under a team's own."""
    out: dict[int, int] = {}
    for pr, path, additions, deletions, generated in rows:
        lines = 0 if generated or ignored(path) else additions + deletions
        out[pr] = out.get(pr, 0) + lines
    return out


# --------------------------------------------------------------------------- late deliveries
#
# A webhook delivery may arrive late (a retry) or twice (a replay). The rules below decide, in
# SQL over the stored row (``stored``: the table) and the incoming one (``incoming``: the
# ``excluded`` row of ``INSERT ... ON CONFLICT DO UPDATE``), what the row becomes, so that the
# order of arrival never matters and a late delivery never undoes a newer outcome.


def _progress(status: Any, finished_at: Any) -> ColumnElement[int]:
    """0 waiting (queued, pending...), 1 in progress, 2 finished (it has a finish time:
    success, failure, error, cancelled... every parser sets one exactly for those)."""
    return case((finished_at.is_not(None), 2), (status == "in_progress", 1), else_=0)


def deployment_delivery_wins(stored: Any, incoming: Any) -> ColumnElement[bool]:
    """True when the incoming delivery of a stored deployment may replace it.

    A finished deployment is never replaced by an unfinished state, an in-progress one never
    by a waiting one; between two finished outcomes the later finish time wins, and at the
    same time the outcome stored first stays (only its other fields may change).
    """
    old = _progress(stored.status, stored.finished_at)
    new = _progress(incoming.status, incoming.finished_at)
    return or_(
        new > old,
        and_(
            new == old,
            or_(
                stored.finished_at.is_(None),
                incoming.finished_at > stored.finished_at,
                and_(
                    incoming.finished_at == stored.finished_at,
                    incoming.status == stored.status,
                ),
            ),
        ),
    )


def _later(a: Any, b: Any) -> ColumnElement[Any]:
    """The later of two nullable times (NULL only when both are)."""
    return case((a.is_(None), b), (b.is_(None), a), (a > b, a), else_=b)


def incident_resolution(stored: Any, incoming: Any) -> dict[str, ColumnElement[Any]]:
    """``resolved_at`` and ``reopened_at`` of a stored incident after an incoming delivery.

    Only an explicit reopen (``reopened_at`` set) takes a resolution away, and only when it is
    later than that resolution; a delivery without a resolution (an older "open", an edit)
    keeps the stored one; between two resolutions the later one wins; a resolution earlier
    than the latest reopen does not close the incident again.
    """
    reopened = _later(stored.reopened_at, incoming.reopened_at)
    resolved = _later(stored.resolved_at, incoming.resolved_at)
    closed = and_(resolved.is_not(None), or_(reopened.is_(None), resolved > reopened))
    return {
        "reopened_at": reopened,
        "resolved_at": case((closed, resolved), else_=None),
    }
