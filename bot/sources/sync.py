"""``kpibot sync``: fill the store from GitHub (and the other configured sources) for every team.

Per repository, one GraphQL query (:data:`bot.sources.github.REPOSITORY_SYNC_QUERY`) fetches the
next page of every connection the repository still needs: pull requests (newest update
first, with reviews, files, labels, the ready-for-review event and commit dates), the default
branch's history with parents, deployments or releases, and issues with the incident labels.
Runs of a deployment workflow come from the REST API. A connection that is done drops out of
the query, so a repository costs as many requests as its longest connection has pages, and an
incremental sync with little new costs one request per repository (two with a workflow).

Resumable: each page is written with idempotent upserts and its cursor (``sync_cursors``: where
the traversal is, and the high-water mark of the last complete one) in one transaction, so a
sync killed at any point and started again ends with the same store as an uninterrupted one.

Then the history of deployed commits the default branch's history does not reach (release
branches, hotfixes) is read, several commits per request, so that ``bot.store.derive`` can tell
every deployment's contents exactly or mark them unknown.

After the repositories, ``bot.store.derive`` recomputes deployment contents and rollbacks, and
the teams' non-GitHub sources (Jira, PagerDuty, Opsgenie, GitHub milestones) are synced by
their modules' ``sync_team`` when those modules are installed.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import IO, Any, Protocol, runtime_checkable

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import KpibotError
from bot.ingest import rules
from bot.settings import (
    Config,
    GitHubDeployments,
    GitHubIssueIncidents,
    MilestoneSprints,
    ReleaseDeployments,
    Settings,
    TeamConfig,
    WorkflowDeployments,
    load_team_config,
    secret_values,
)
from bot.sources.github import (
    COMMIT_HISTORIES_BATCH,
    PULL_REQUEST_DETAILS_QUERY,
    REPOSITORY_SYNC_QUERY,
    TEAM_MEMBERS_QUERY,
    CommitRecord,
    DeploymentRecord,
    GitHubPayloadError,
    IssueRecord,
    PullRequestRecord,
    RepositoryPage,
    commit_histories_query,
    parse_commit_histories_response,
    parse_pull_request_details_response,
    parse_repository_sync_response,
    parse_team_members_response,
    parse_workflow_run,
)
from bot.sources.github_client import GitHubClient, GitHubError, GitHubUnavailable
from bot.store import derive, links, population, source_health, writes
from bot.store.derive import derive_repository
from bot.store.models import Deployment, Repository
from bot.store.session import unit_of_work, utc
from bot.store.teams import sync_teams

log = logging.getLogger(__name__)

SOURCE = "github"
HISTORY_DAYS = 400  # how far back a first (or --full) sync reads
DEPLOYMENT_SETTLE = timedelta(days=2)  # deployments re-read after their creation
HISTORY_OVERLAP = timedelta(days=1)  # commits re-read before the last one seen
UPDATE_OVERLAP = timedelta(minutes=10)  # pull requests and issues re-read before the last
PARTIAL_RETRIES = 2
UNAVAILABLE_STOP = 3  # repositories in a row GitHub does not answer for before stopping
MIN_PULLS_PAGE = 5  # smallest page of pull requests asked for when big ones fail
#: requests per repository and sync for the history of deployed commits the default branch's
#: history does not cover (each carries up to COMMIT_HISTORIES_BATCH commits' next pages)
CONTENTS_REQUESTS = 4
MISSING_COMMITS = "missing-commits"  # cursor kind: deployed commits GitHub does not have
MISSING_KEPT = 1000
_FULL_SHA = re.compile(r"[0-9a-f]{40}")

#: teams' non-GitHub sources -> the module syncing them (``sync_team``)
OTHER_SOURCES = {
    "jira": "bot.sources.jira",
    "pagerduty": "bot.sources.pagerduty",
    "opsgenie": "bot.sources.opsgenie",
    "github-milestones": "bot.sources.milestones",
}


# --------------------------------------------------------------------------- progress


@runtime_checkable
class Progress(Protocol):
    def line(self, text: str) -> None:
        """A line that stays (a repository's summary, a warning)."""

    def status(self, text: str) -> None:
        """A transient line (counts while a repository syncs); may be ignored."""


class LineProgress:
    """Only lasting lines, to a callable (logs, the scheduler, a pipe)."""

    def __init__(self, out: Callable[[str], None]) -> None:
        self.out = out

    def line(self, text: str) -> None:
        self.out(text)

    def status(self, text: str) -> None:
        pass


class TerminalProgress:
    """A live status line per repository and phase, overwritten in place."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self._shown = False

    def line(self, text: str) -> None:
        self._clear()
        self.stream.write(text + "\n")
        self.stream.flush()

    def status(self, text: str) -> None:
        self._clear()
        self.stream.write(text[:150])
        self.stream.flush()
        self._shown = True

    def _clear(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self._shown = False


def as_progress(out: Callable[[str], None] | Progress | None) -> Progress:
    if out is None:
        return LineProgress(lambda _text: None)
    if isinstance(out, Progress):
        return out
    return LineProgress(out)


# --------------------------------------------------------------------------- summary


@dataclass
class RepoSummary:
    repo: str
    pulls: int = 0
    commits: int = 0
    deployments: int = 0
    incidents: int = 0
    requests: int = 0
    seconds: float = 0.0
    error: str | None = None
    unavailable: bool = False  # GitHub did not answer (as opposed to refusing this repository)
    warnings: list[str] = field(default_factory=list)

    def line(self) -> str:
        if self.error:
            return f"{self.repo}: failed: {self.error}"
        text = (
            f"{self.repo}: {self.pulls} pull requests, {self.commits} commits, "
            f"{self.deployments} deployments, {self.incidents} incidents "
            f"({self.requests} requests, {self.seconds:.1f}s)"
        )
        if self.warnings:
            text += f"; {len(self.warnings)} warning{'s' if len(self.warnings) > 1 else ''}"
        return text


@dataclass
class SyncSummary:
    repos: list[RepoSummary] = field(default_factory=list)
    sources: dict[str, int] = field(default_factory=dict)  # "team: source" -> records stored
    problems: list[str] = field(default_factory=list)  # sources that could not be synced
    requests: int = 0
    derived: int = 0
    seconds: float = 0.0
    # set when GitHub was not read because GITHUB_TOKEN is missing (the message says what to do)
    github_token_missing: GitHubTokenMissing | None = None

    @property
    def ok(self) -> bool:
        return (
            not self.problems
            and self.github_token_missing is None
            and all(r.error is None for r in self.repos)
        )

    @property
    def failed(self) -> list[RepoSummary]:
        return [r for r in self.repos if r.error is not None]

    def line(self) -> str:
        pulls = sum(r.pulls for r in self.repos)
        deps = sum(r.deployments for r in self.repos)
        incs = sum(r.incidents for r in self.repos)
        text = (
            f"synced {len(self.repos) - len(self.failed)} of {len(self.repos)} repositories: "
            f"{pulls} pull requests, {deps} deployments, {incs} incidents in "
            f"{self.requests} GitHub requests, {self.seconds:.1f}s"
        )
        if self.failed:
            text += f"; {len(self.failed)} failed (see above), run 'kpibot sync' again to resume"
        return text


# --------------------------------------------------------------------------- the token


class GitHubTokenMissing(KpibotError):
    """Teams read GitHub and ``GITHUB_TOKEN`` is not set (GitHub's GraphQL API, which the sync
    uses, answers nothing without a token)."""


def reads_github(team: TeamConfig) -> bool:
    """Whether syncing ``team`` reads the GitHub API: its repositories (pull requests,
    commits, deployments, issues) or its milestones."""
    return bool(team.repos) or isinstance(team.sprints, MilestoneSprints)


def token_page(api_url: str) -> str:
    """Where a token for ``GITHUB_API_URL`` is created (github.com or the Enterprise Server)."""
    base = api_url.rstrip("/")
    if base in ("https://api.github.com", "http://api.github.com"):
        return "https://github.com/settings/tokens"
    if base.endswith("/api/v3"):
        base = base[: -len("/api/v3")]
    return base + "/settings/tokens"


def github_token_missing(
    settings: Settings, teams: Iterable[TeamConfig]
) -> GitHubTokenMissing | None:
    """The error to stop on when ``teams`` read GitHub without ``GITHUB_TOKEN``, else None."""
    if settings.github_token:
        return None
    names = [t.name for t in teams if reads_github(t)]
    if not names:
        return None
    who = f"team {names[0]} reads" if len(names) == 1 else f"teams {', '.join(names)} read"
    return GitHubTokenMissing(
        f"GITHUB_TOKEN is not set and {who} GitHub: create a token at "
        f"{token_page(settings.github_api_url)} (classic with the 'repo' scope, or "
        "fine-grained with read access to contents, pull requests, deployments, actions and "
        "issues) and set GITHUB_TOKEN in the environment or .env"
    )


# --------------------------------------------------------------------------- plans and cursors


@dataclass
class IssueTeam:
    team_id: int
    team: TeamConfig

    @property
    def labels(self) -> tuple[str, ...]:
        inc = self.team.incidents
        return inc.labels if isinstance(inc, GitHubIssueIncidents) else ()


@dataclass
class RepoPlan:
    full_name: str
    pulls: bool = False
    deployments: bool = False
    environments: set[str] = field(default_factory=set)
    releases: bool = False
    release_env: str = "production"
    workflows: list[tuple[WorkflowDeployments, str]] = field(default_factory=list)  # and env
    issue_teams: list[IssueTeam] = field(default_factory=list)
    production_envs: set[str] = field(default_factory=set)  # of every team listing it
    #: the teams defined by people or paths that list it: their PRs are selected when written
    selecting: tuple[TeamConfig, ...] = ()

    @property
    def owner(self) -> str:
        return self.full_name.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.full_name.split("/", 1)[1]

    @property
    def issue_labels(self) -> list[str]:
        out: list[str] = []
        for t in self.issue_teams:
            out.extend(lbl for lbl in t.labels if lbl.lower() not in {o.lower() for o in out})
        return out


def build_plans(
    config: Config, team_ids: dict[str, int], teams: Iterable[TeamConfig]
) -> list[RepoPlan]:
    plans: dict[str, RepoPlan] = {}

    def plan(name: str) -> RepoPlan:
        key = name.lower()
        if key not in plans:
            plans[key] = RepoPlan(name, selecting=population.teams_of_repository(config, name))
        return plans[key]

    for team in teams:
        env = rules.deployment_environment(team)
        dep = team.deployments
        for repo in team.repos:
            p = plan(repo)
            p.pulls = True
            p.production_envs.update(team.production_environments)
            if isinstance(dep, GitHubDeployments):
                p.deployments = True
                p.environments.update(team.production_environments)
            elif isinstance(dep, ReleaseDeployments):
                p.releases = True
                p.release_env = env
            elif isinstance(dep, WorkflowDeployments):
                wf = (dep, env)
                if wf not in p.workflows:
                    p.workflows.append(wf)
        for repo in rules.issue_repositories(team):
            plan(repo).issue_teams.append(IssueTeam(team_ids[team.name], team))
    return list(plans.values())


@dataclass
class Traversal:
    """A sync cursor: the current traversal (its lower bound, position and high-water mark)
    and the high-water mark of the last complete one."""

    done: str | None = None
    since: str | None = None
    after: str | None = None
    hwm: str | None = None
    active: bool = False

    def dump(self) -> str:
        return json.dumps(
            {
                "done": self.done,
                "since": self.since,
                "after": self.after,
                "hwm": self.hwm,
                "active": self.active,
            }
        )

    @classmethod
    def load(cls, raw: str | None) -> Traversal:
        if not raw:
            return cls()
        try:
            d = json.loads(raw)
        except ValueError:
            return cls()
        if not isinstance(d, dict):
            return cls()
        return cls(
            d.get("done"), d.get("since"), d.get("after"), d.get("hwm"), bool(d.get("active"))
        )

    def see(self, value: datetime | None) -> None:
        if value is None:
            return
        text = _iso(value)
        if self.hwm is None or text > self.hwm:
            self.hwm = text

    def finish(self) -> None:
        self.done = self.hwm or self.done
        self.since = self.after = self.hwm = None
        self.active = False


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _dt(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)


def _load_cursors(session: Session, scope: str) -> dict[str, Traversal]:
    cursors = writes.get_cursors(session, SOURCE, scope)
    return {kind: Traversal.load(raw) for kind, raw in cursors.items()}


def _save_cursor(session: Session, scope: str, kind: str, t: Traversal, now: datetime) -> None:
    writes.set_cursor(session, SOURCE, scope, kind, t.dump(), now)


@dataclass
class _Head:
    """A deployed commit whose history is being read: where its history is, how far back it
    may go, and the deployments (indexes) waiting for it."""

    sha: str
    bound: datetime
    after: str | None = None
    open: bool = True
    deployments: set[int] = field(default_factory=set)


def _load_missing(session: Session, scope: str) -> list[str]:
    raw = writes.get_cursor(session, SOURCE, scope, MISSING_COMMITS)
    try:
        shas = json.loads(raw) if raw else []
    except ValueError:
        return []
    return [s for s in shas if isinstance(s, str)] if isinstance(shas, list) else []


def _save_missing(session: Session, scope: str, shas: list[str], now: datetime) -> None:
    known = _load_missing(session, scope)
    merged = [*[s for s in known if s not in shas], *shas][-MISSING_KEPT:]
    writes.set_cursor(session, SOURCE, scope, MISSING_COMMITS, json.dumps(merged), now)


# --------------------------------------------------------------------------- the sync


class _RepoSync:
    """Syncs one repository: GraphQL connections in lockstep, then workflow runs."""

    def __init__(
        self,
        client: GitHubClient,
        sessions: sessionmaker[Session],
        plan: RepoPlan,
        progress: Progress,
        *,
        full: bool,
        now: datetime,
        history_days: int,
        page_sizes: dict[str, int],
    ) -> None:
        self.client = client
        self.sessions = sessions
        self.plan = plan
        self.progress = progress
        self.full = full
        self.now = now
        self.horizon = now - timedelta(days=history_days)
        self.sizes = dict(page_sizes)
        self.summary = RepoSummary(plan.full_name)
        self.scope = plan.full_name.lower()
        self.repo_id: int | None = None
        self.default_branch: str | None = None

    # ------------------------------------------------------------------ setup

    def _start(
        self, t: Traversal, kind: str, session: Session, dep_source: str | None = None
    ) -> Traversal:
        """Begin a traversal unless one is under way (a resumed sync goes on from it)."""
        if t.active and not self.full:
            return t
        since = None if self.full else _dt(t.done)
        if kind == "history" and since is not None:
            since -= HISTORY_OVERLAP
        if kind in ("pulls", "issues") and since is not None:
            since -= UPDATE_OVERLAP  # GitHub's update times may land a little late
        if dep_source is None and kind in ("deployments", "releases"):
            dep_source = "github-deployments" if kind == "deployments" else "releases"
        if dep_source is not None and since is not None:
            since -= DEPLOYMENT_SETTLE
            if self.repo_id is not None:
                source = dep_source
                pending = session.scalar(
                    select(func.min(Deployment.started_at)).where(
                        Deployment.repository_id == self.repo_id,
                        Deployment.source == source,
                        Deployment.finished_at.is_(None),
                        Deployment.started_at >= self.horizon,
                    )
                )
                if pending is not None:
                    since = min(since, pending)
        if since is None or since < self.horizon:
            since = self.horizon
        return Traversal(done=t.done, since=_iso(since), active=True)

    def run(self) -> RepoSummary:
        started = time.monotonic()
        before = self.client.requests_made
        try:
            # workflow runs first: an issue stored by the GraphQL phase may name one
            with unit_of_work(self.sessions) as session:
                self.repo_id = session.scalar(
                    select(Repository.id).where(func.lower(Repository.full_name) == self.scope)
                )
            for workflow, env in self.plan.workflows:
                self._workflow_phase(workflow, env)
            self._graphql_phase()
            self._contents_phase()
        except GitHubError as exc:
            self.summary.error = str(exc)
            self.summary.unavailable = isinstance(exc, GitHubUnavailable)
        except GitHubPayloadError as exc:
            self.summary.error = (
                f"GitHub sent data kpibot cannot read ({exc}); run the sync again, and report "
                "it if it persists"
            )
        self.summary.requests = self.client.requests_made - before
        self.summary.seconds = time.monotonic() - started
        return self.summary

    def _status(self, phase: str) -> None:
        s = self.summary
        self.progress.status(
            f"{self.plan.full_name}: {phase} · {s.pulls} pull requests · {s.commits} commits · "
            f"{s.deployments} deployments · {s.incidents} incidents"
        )

    # ------------------------------------------------------------------ GraphQL phase

    def _graphql_phase(self) -> None:
        plan = self.plan
        with unit_of_work(self.sessions) as session:
            self.repo_id = session.scalar(
                select(Repository.id).where(func.lower(Repository.full_name) == self.scope)
            )
            cursors = _load_cursors(session, self.scope)
            kinds = {
                "pulls": plan.pulls,
                # the commit graph serves every deployment source, webhooks included
                "history": plan.pulls,
                "deployments": plan.deployments,
                "releases": plan.releases,
                "issues": bool(plan.issue_teams),
            }
            state = {
                k: self._start(cursors.get(k, Traversal()), k, session)
                for k, wanted in kinds.items()
                if wanted
            }
        if not plan.pulls and self.repo_id is None and not plan.issue_teams:
            return
        # issues wait for deployments so that an incident can name one stored in this sync
        while any(t.active for t in state.values()):
            variables = self._variables(state)
            reading = [k for k in state if variables.get(_FLAG[k])]
            self._status("reading " + ", ".join(reading))
            page = self._fetch(variables)
            self._store(page, state)

    def _variables(self, state: dict[str, Traversal]) -> dict[str, Any]:
        plan = self.plan
        v: dict[str, Any] = {
            "owner": plan.owner,
            "name": plan.name,
            "pullsPageSize": self.sizes["pulls"],
            "historyPageSize": self.sizes["history"],
            "deploymentsPageSize": self.sizes["deployments"],
            "releasesPageSize": self.sizes["releases"],
            "issuesPageSize": self.sizes["issues"],
            "environments": sorted(plan.environments) or None,
            "issueLabels": plan.issue_labels or None,
        }
        for kind, flag in _FLAG.items():
            t = state.get(kind)
            v[flag] = bool(t and t.active)
            v[f"{kind}Cursor"] = t.after if t else None
        # in a first (or full) sync, issues wait until the deployments they may name are stored
        first_deps = [
            state[k] for k in ("deployments", "releases") if k in state and state[k].active
        ]
        if v["withIssues"] and any(t.done is None or self.full for t in first_deps):
            v["withIssues"] = False
        v["historySince"] = state["history"].since if "history" in state else None
        v["issuesSince"] = state["issues"].since if "issues" in state else None
        return v

    def _fetch(self, variables: dict[str, Any]) -> RepositoryPage:
        attempt = 0
        while True:
            try:
                result = self.client.graphql(
                    REPOSITORY_SYNC_QUERY, variables, repo=self.plan.full_name
                )
            except GitHubUnavailable as exc:
                # a heavy page can time out on GitHub's side (502/504): ask for smaller ones
                if (
                    exc.kind not in ("server", "timeout")
                    or not variables["withPulls"]
                    or self.sizes["pulls"] <= MIN_PULLS_PAGE
                ):
                    raise
                self.sizes["pulls"] = max(MIN_PULLS_PAGE, self.sizes["pulls"] // 2)
                variables = dict(variables, pullsPageSize=self.sizes["pulls"])
                self.progress.line(
                    f"{self.plan.full_name}: GitHub keeps failing on pages of pull requests; "
                    f"asking for {self.sizes['pulls']} at a time"
                )
                continue
            if result.errors and attempt < PARTIAL_RETRIES:
                attempt += 1
                self.client.pause(min(2.0, self.client.backoff * attempt))
                continue
            if result.errors:
                self.summary.warnings.append(result.error_text())
                self.progress.line(
                    f"{self.plan.full_name}: GitHub returned part of a page with errors "
                    f"({result.error_text()}); kept what came"
                )
            return parse_repository_sync_response(result.data, self.plan.release_env)

    def _complete_pulls(self, page: RepositoryPage) -> list[PullRequestRecord]:
        """The page's pull requests, with the reviews and files that did not fit on it."""
        assert page.pulls is not None
        records = {p.number: p for p in page.pulls.items}
        for inc in page.incomplete_pulls:
            pr = records.get(inc.number)
            if pr is None:
                continue
            reviews, files = list(pr.reviews), list(pr.files)
            r_cursor, f_cursor = inc.reviews_cursor, inc.files_cursor
            while r_cursor or f_cursor:
                result = self.client.graphql(
                    PULL_REQUEST_DETAILS_QUERY,
                    {
                        "owner": self.plan.owner,
                        "name": self.plan.name,
                        "number": inc.number,
                        "withReviews": r_cursor is not None,
                        "reviewsCursor": r_cursor,
                        "withFiles": f_cursor is not None,
                        "filesCursor": f_cursor,
                    },
                    repo=self.plan.full_name,
                )
                details = parse_pull_request_details_response(result.data)
                r_cursor = f_cursor = None
                if details.reviews is not None:
                    reviews.extend(details.reviews.items)
                    if details.reviews.has_next_page:
                        r_cursor = details.reviews.end_cursor
                if details.files is not None:
                    files.extend(details.files.items)
                    if details.files.has_next_page:
                        f_cursor = details.files.end_cursor
            records[inc.number] = replace(pr, reviews=tuple(reviews), files=tuple(files))
        return list(records.values())

    def _store(self, page: RepositoryPage, state: dict[str, Traversal]) -> None:
        pulls = self._complete_pulls(page) if page.pulls is not None else []
        s = self.summary
        with unit_of_work(self.sessions) as session:
            if self.plan.pulls or self.repo_id is not None:
                self.repo_id = writes.upsert_repository(
                    session,
                    page.full_name or self.plan.full_name,
                    provider_id=str(page.database_id) if page.database_id is not None else None,
                    default_branch=page.default_branch,
                )
            rid = self.repo_id
            if page.pulls is not None and "pulls" in state:
                t = state["pulls"]
                assert rid is not None
                ids = writes.upsert_pull_requests(session, rid, pulls)
                if self.plan.selecting:
                    population.refresh(session, self.plan.selecting, pr_ids=list(ids.values()))
                since = _dt(t.since)
                s.pulls += sum(1 for p in pulls if since is None or p.updated_at >= since)
                for p in pulls:
                    t.see(p.updated_at)
                older = since is not None and any(p.updated_at < since for p in pulls)
                self._advance(t, page.pulls.has_next_page and not older, page.pulls.end_cursor)
            if page.history is not None and "history" in state:
                t = state["history"]
                assert rid is not None
                writes.upsert_commits(session, rid, page.history.items)
                s.commits += len(page.history.items)
                for c in page.history.items:
                    t.see(c.committed_at)
                self._advance(t, page.history.has_next_page, page.history.end_cursor)
            for kind, conn in (("deployments", page.deployments), ("releases", page.releases)):
                if conn is None or kind not in state:
                    continue
                t = state[kind]
                assert rid is not None
                writes.upsert_deployments(session, rid, conn.items)
                since = _dt(t.since)
                s.deployments += sum(
                    1
                    for d in conn.items
                    if d.commit_sha and (since is None or (d.started_at or since) >= since)
                )
                skipped = [d for d in conn.items if not d.commit_sha]
                for d in skipped:
                    s.warnings.append(f"release {d.ref} has no commit; skipped")
                for d in conn.items:
                    t.see(d.started_at)
                older = since is not None and any(
                    d.started_at is not None and d.started_at < since for d in conn.items
                )
                self._advance(t, conn.has_next_page and not older, conn.end_cursor)
            if page.issues is not None and "issues" in state:
                t = state["issues"]
                s.incidents += self._store_incidents(session, page.issues.items)
                for i in page.issues.items:
                    t.see(i.updated_at)
                self._advance(t, page.issues.has_next_page, page.issues.end_cursor)
            for kind, t in state.items():
                _save_cursor(session, self.scope, kind, t, self.now)
        self._status("stored")

    @staticmethod
    def _advance(t: Traversal, more: bool, cursor: str | None) -> None:
        if more and cursor:
            t.after = cursor
        else:
            t.finish()

    # ------------------------------------------------------------------ deployed commits

    def _contents_phase(self) -> None:
        """Fetch the history of deployed commits the stored graph does not cover.

        The default branch's history does not reach commits deployed from release branches
        (or hotfixes on them). For every successful production deployment whose contents the
        graph cannot tell yet (``bot.store.derive.contents_at`` is None), this reads its
        commit's history, a page at a time and several commits per request (GraphQL aliases),
        until the graph knows the path back to the previous deployment (the walk has reached
        commits the store has), the history ends or passes the bound (the first deployment's
        7-day lookback, else the sync's horizon), or the request budget is spent. What is
        still unknown then stays unknown (no PR credited) until a later sync gets it; a commit
        GitHub does not have is remembered and asked for again only by ``--full``.
        """
        envs = sorted(self.plan.production_envs)
        if self.repo_id is None or not envs:
            return
        rid = self.repo_id
        with unit_of_work(self.sessions) as session:
            deps = derive.successful_deployments(session, rid, envs)
            todo = [
                i
                for i, d in enumerate(deps)
                if d.contents_computed_at is None or d.contents_unknown
            ]
            if not todo:
                return
            graph = derive.load_graph(session, rid)
            missing = set() if self.full else set(_load_missing(session, self.scope))
        waiting = {i for i in todo if derive.contents_at(graph, deps, i) is None}
        heads: dict[str, _Head] = {}
        for i in sorted(waiting, reverse=True):  # the newest deployments first
            d, prev = deps[i], deps[i - 1] if i else None
            sha = d.commit_sha
            if sha in graph and prev is not None and prev.commit_sha not in graph:
                sha = prev.commit_sha  # the path back is missing at the other end
            if not _FULL_SHA.fullmatch(sha) or sha in missing:
                continue
            # how far back this deployment may need: its lookback when it is the first one
            bound = (
                d.finished_at - derive.FIRST_DEPLOYMENT_LOOKBACK if prev is None else self.horizon
            )
            h = heads.setdefault(sha, _Head(sha, bound))
            h.bound = min(h.bound, bound)
            h.deployments.add(i)
        requests = 0
        newly_missing: list[str] = []
        try:
            while requests < CONTENTS_REQUESTS:
                batch = [h for h in heads.values() if h.open][:COMMIT_HISTORIES_BATCH]
                if not batch:
                    break
                self._status(f"reading the history of {len(batch)} deployed commits")
                variables: dict[str, Any] = {
                    "owner": self.plan.owner,
                    "name": self.plan.name,
                    "pageSize": self.sizes["history"],
                }
                for n, h in enumerate(batch):
                    variables[f"oid{n}"] = h.sha
                    variables[f"after{n}"] = h.after
                result = self.client.graphql(
                    commit_histories_query(len(batch)), variables, repo=self.plan.full_name
                )
                requests += 1
                pages = parse_commit_histories_response(result.data, len(batch))
                failed = {
                    str(e["path"][1])
                    for e in result.errors
                    if isinstance(e.get("path"), list) and len(e["path"]) >= 2
                }
                fetched: list[CommitRecord] = []
                for n, (h, page) in enumerate(zip(batch, pages, strict=True)):
                    if page is None:
                        h.open = False
                        if f"c{n}" not in failed:  # answered: GitHub has no such commit
                            newly_missing.append(h.sha)
                        continue
                    fetched.extend(page.items)
                    h.after = page.end_cursor
                    dates = [c.committed_at or c.authored_at for c in page.items]
                    oldest = min((t for t in dates if t is not None), default=None)
                    past_bound = oldest is not None and oldest < h.bound
                    if not page.has_next_page or not page.end_cursor or past_bound:
                        h.open = False
                fresh = [c for c in fetched if c.sha not in graph]
                with unit_of_work(self.sessions) as session:
                    writes.upsert_commits(session, rid, fresh)
                    if newly_missing:
                        _save_missing(session, self.scope, newly_missing, self.now)
                        newly_missing = []
                self.summary.commits += len({c.sha for c in fresh})
                graph.add((c.sha, c.parents, c.committed_at or c.authored_at) for c in fresh)
                waiting = {i for i in waiting if derive.contents_at(graph, deps, i) is None}
                for h in heads.values():
                    h.deployments &= waiting
                    if not h.deployments:
                        h.open = False
        except (GitHubError, GitHubPayloadError) as exc:
            # the deployments stay unknown for now; the next sync asks again
            msg = f"could not read the history of deployed commits ({exc})"
            self.summary.warnings.append(msg)
            self.progress.line(f"{self.plan.full_name}: {msg}; their contents stay unknown")
        self._status("read deployed commits")

    # ------------------------------------------------------------------ incidents

    def _store_incidents(self, session: Session, issues: Iterable[IssueRecord]) -> int:
        by_team: dict[int, list[writes.IncidentRecord]] = {}
        repo = self.plan.full_name
        for issue in issues:
            if issue.is_pull_request:
                continue
            # every team counting it: teams sharing a repository each count it
            for t in self.plan.issue_teams:
                if rules.counts_issue(t.team, repo, issue.labels):
                    record = links.issue_incident(
                        session, t.team, repo, issue, reopened_at=issue.reopened_at
                    )
                    by_team.setdefault(t.team_id, []).append(record)
        stored = 0
        for team_id, records in by_team.items():
            # GitHub tells the last reopen: the resolution rule of the webhooks applies
            stored += len(writes.upsert_incidents(session, team_id, records, snapshot=False))
        return stored

    # ------------------------------------------------------------------ workflow runs

    def _workflow_phase(self, dep: WorkflowDeployments, env: str) -> None:
        workflow, branch = dep.workflow, dep.branch
        kind = f"workflow:{workflow}"[:32]
        with unit_of_work(self.sessions) as session:
            t = self._start(
                _load_cursors(session, self.scope).get(kind, Traversal()),
                kind,
                session,
                dep_source="workflow",
            )
        since = _dt(t.since)
        url = t.after or f"/repos/{self.plan.full_name}/actions/workflows/{workflow}/runs"
        params: dict[str, Any] | None = None if t.after else {"per_page": 100}
        if params is not None and branch:
            params["branch"] = branch
        while True:
            self._status(f"reading runs of {workflow}")
            page = self.client.rest(url, params, repo=self.plan.full_name)
            body = page.body if isinstance(page.body, dict) else {}
            runs_raw = body.get("workflow_runs")
            if not isinstance(runs_raw, list):
                raise GitHubPayloadError("workflow runs: expected a 'workflow_runs' list")
            every: list[DeploymentRecord] = [parse_workflow_run(r, env) for r in runs_raw]
            older = since is not None and any(
                r.started_at is not None and r.started_at < since for r in every
            )
            # the rule the webhooks apply too (GitHub's branch filter is only a narrowing)
            runs = [
                run
                for run, raw in zip(every, runs_raw, strict=True)
                if rules.run_matches(
                    dep, path=raw.get("path"), name=raw.get("name"), branch=run.ref
                )
            ]
            with unit_of_work(self.sessions) as session:
                if self.repo_id is None:
                    self.repo_id = writes.upsert_repository(session, self.plan.full_name)
                stored = writes.upsert_deployments(session, self.repo_id, runs)
                self.summary.deployments += len(stored)
                for r in every:
                    t.see(r.started_at)
                self._advance(t, bool(page.next_url) and not older, page.next_url)
                _save_cursor(session, self.scope, kind, t, self.now)
            if not t.active:
                return
            url, params = t.after or url, None


_FLAG = {
    "pulls": "withPulls",
    "history": "withHistory",
    "deployments": "withDeployments",
    "releases": "withReleases",
    "issues": "withIssues",
}


def _other_source_kinds(team: TeamConfig, skip: Iterable[str] = ()) -> dict[str, list[str]]:
    """The team's non-GitHub-repository sources -> what it takes from each (one call per
    source: a module's sync_team syncs everything the team takes from it, e.g. Jira gives both
    sprints and incidents)."""
    wanted: dict[str, list[str]] = {}
    for kind, conf in (("incidents", team.incidents), ("sprints", team.sprints)):
        source = conf.source if conf is not None else None
        if source in OTHER_SOURCES and source not in skip:
            wanted.setdefault(str(source), []).append(kind)
    return wanted


def _other_sources(
    settings: Settings,
    sessions: sessionmaker[Session],
    team: TeamConfig,
    *,
    full: bool,
    progress: Progress,
    summary: SyncSummary,
    now: datetime | None = None,
    skip: Iterable[str] = (),
) -> None:
    wanted = _other_source_kinds(team, skip)
    for source, kinds in wanted.items():
        what = " and ".join(kinds)
        label = f"{team.name}: {what} from {source}"
        module_name = OTHER_SOURCES[source]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            msg = f"{label}: not synced, this installation has no {module_name}"
            summary.problems.append(msg)
            progress.line(msg)
            continue
        sync_team = getattr(module, "sync_team", None)
        if not callable(sync_team):
            msg = f"{label}: not synced, {module_name} has no sync_team()"
            summary.problems.append(msg)
            progress.line(msg)
            continue
        try:
            kwargs: dict[str, Any] = {"full": full, "report": progress.line}
            if now is not None and "now" in inspect.signature(sync_team).parameters:
                kwargs["now"] = now
            n = int(sync_team(settings, sessions, team, **kwargs))
        except KpibotError as exc:
            msg = f"{label}: failed: {exc}"
            summary.problems.append(msg)
            progress.line(msg)
            _health(sessions, settings, source, team.name, now, str(exc))
            continue
        except Exception as exc:  # one broken source must not stop the others
            log.exception("sync of %s failed", label)
            msg = f"{label}: failed ({type(exc).__name__}); see the log for details"
            summary.problems.append(msg)
            progress.line(msg)
            _health(sessions, settings, source, team.name, now, msg)
            continue
        _health(sessions, settings, source, team.name, now, None)
        summary.sources[f"{team.name}: {what} from {source}"] = n
        progress.line(f"{label}: {n} records")


def _health(
    sessions: sessionmaker[Session],
    settings: Settings,
    source: str,
    scope: str,
    now: datetime | None,
    error: str | None,
) -> None:
    """Record a source's run (``error``: it failed) for freshness and ``/kpi status``; a run
    kpibot cannot record is logged and never stops the sync."""
    at = utc(now or datetime.now(UTC))
    try:
        source_health.record(sessions, source, scope, at, error, secret_values(settings))
    except Exception:
        log.exception("could not record the health of %s %s", source, scope)


def sync_all(
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    team: str | None = None,
    full: bool = False,
    out: Callable[[str], None] | Progress | None = None,
    config: Config | None = None,
    client: GitHubClient | None = None,
    now: datetime | None = None,
    history_days: int = HISTORY_DAYS,
    page_sizes: dict[str, int] | None = None,
) -> SyncSummary:
    """Sync every configured team (or just ``team``); returns what was stored.

    A repository that fails (bad token, not found, GitHub down after retries) is reported and
    the others go on; its cursor stays, so the next sync resumes it. ``full`` re-reads
    everything within ``history_days`` instead of only what changed since the last sync.
    """
    progress = as_progress(out)
    started = time.monotonic()
    config = config or load_team_config(settings)
    teams = [config.team(team)] if team else list(config.teams)
    now = utc(now or datetime.now(UTC))
    sizes = {"pulls": 50, "history": 100, "deployments": 100, "releases": 50, "issues": 100}
    sizes.update(page_sizes or {})
    summary = SyncSummary()
    own_client = client is None
    # Without a token nothing is read from GitHub; the teams' Jira, PagerDuty and Opsgenie
    # sources still sync, and the summary carries the error (a caller's own client is trusted)
    no_token = github_token_missing(settings, teams) if own_client else None
    skip = ("github-milestones",) if no_token is not None else ()
    if no_token is not None and not any(_other_source_kinds(t, skip) for t in teams):
        repos = {r.lower() for t in teams for r in [*t.repos, *rules.issue_repositories(t)]}
        for repo in sorted(repos):  # the failed run is recorded all the same
            _health(sessions, settings, "github", repo, now, str(no_token))
        raise no_token  # nothing else to sync: stop before touching the store
    with unit_of_work(sessions) as session:
        team_ids = sync_teams(session, config, now=now)
    plans = build_plans(config, team_ids, teams) if no_token is None else []
    gh = client or GitHubClient.from_settings(settings, on_wait=progress.line)
    before = gh.requests_made
    down = 0  # repositories in a row GitHub did not answer for
    try:
        if no_token is None:
            sync_github_teams(gh, sessions, teams, team_ids, now, progress, summary)
        for n, plan in enumerate(plans):
            if down >= UNAVAILABLE_STOP:
                skipped = [p.full_name for p in plans[n:]]
                names = ", ".join(skipped[:5]) + ("..." if len(skipped) > 5 else "")
                msg = (
                    f"GitHub did not answer for {down} repositories in a row; skipped "
                    f"{len(skipped)} more ({names}); run 'kpibot sync' again when GitHub is back"
                )
                summary.problems.append(msg)
                progress.line(msg)
                for skipped_plan in plans[n:]:
                    _health(sessions, settings, "github", skipped_plan.full_name, now, msg)
                break
            rs = _RepoSync(
                gh,
                sessions,
                plan,
                progress,
                full=full,
                now=now,
                history_days=history_days,
                page_sizes=sizes,
            ).run()
            summary.repos.append(rs)
            progress.line(rs.line())
            _health(sessions, settings, "github", plan.full_name, now, rs.error)
            down = down + 1 if rs.unavailable else 0
    finally:
        summary.requests = gh.requests_made - before
        if own_client:
            gh.close()
    summary.derived = derive_teams(sessions, config, [p.full_name for p in plans])
    for tc in teams:
        _other_sources(
            settings,
            sessions,
            tc,
            full=full,
            progress=progress,
            summary=summary,
            now=now,
            skip=skip,
        )
    summary.seconds = time.monotonic() - started
    if no_token is not None:
        for plan in build_plans(config, team_ids, teams):
            _health(sessions, settings, "github", plan.full_name, now, str(no_token))
        for tc in teams:
            if isinstance(tc.sprints, MilestoneSprints):
                _health(sessions, settings, "github-milestones", tc.name, now, str(no_token))
        summary.github_token_missing = no_token  # the caller says it, once
        return summary
    progress.line(summary.line())
    return summary


def sync_github_teams(
    gh: GitHubClient,
    sessions: sessionmaker[Session],
    teams: Iterable[TeamConfig],
    team_ids: dict[str, int],
    now: datetime,
    progress: Progress,
    summary: SyncSummary,
    page_size: int = 100,
) -> None:
    """Read the members of every ``github_team`` and record who joined or left since the
    last sync (with ``now``), so a PR counts for the team its author was on when merged. A
    team GitHub does not show keeps the membership it had, and the summary says why."""
    for team in teams:
        if team.github_team is None:
            continue
        org, slug = team.github_team.split("/", 1)
        logins: list[str] = []
        after: str | None = None
        problem: str | None = None
        while True:
            try:
                result = gh.graphql(
                    TEAM_MEMBERS_QUERY,
                    {"org": org, "slug": slug, "first": page_size, "after": after},
                )
                page = parse_team_members_response(result.data)
            except (GitHubError, GitHubPayloadError) as exc:
                problem = f"{exc}"
                break
            if page is None:
                problem = "GitHub shows no such team (check the slug and the token's read:org)"
                break
            logins.extend(page.items)
            if not page.has_next_page or page.end_cursor is None:
                break
            after = page.end_cursor
        if problem is not None:
            msg = (
                f"github_team {team.github_team} of team {team.name}: {problem}; its "
                "membership stays as last synced"
            )
            summary.problems.append(msg)
            progress.line(msg)
            continue
        with unit_of_work(sessions) as session:
            changed = population.apply_github_members(
                session, team, team_ids[team.name], logins, now
            )
        if changed:
            progress.line(
                f"{team.name}: {len(logins)} members in {team.github_team}, "
                f"{len(changed)} joined or left"
            )


def derive_teams(sessions: sessionmaker[Session], config: Config, repos: Iterable[str]) -> int:
    """Recompute deployment contents and rollbacks of ``repos`` (production environments of
    every team that lists them)."""
    wanted = {r.lower() for r in repos}
    envs: dict[str, set[str]] = {}
    for tc in config.teams:
        for r in tc.repos:
            if r.lower() in wanted:
                envs.setdefault(r.lower(), set()).update(tc.production_environments)
    total = 0
    for name, repo_envs in envs.items():
        with unit_of_work(sessions) as session:
            rid = session.scalar(
                select(Repository.id).where(func.lower(Repository.full_name) == name)
            )
            if rid is not None:
                total += derive_repository(session, rid, sorted(repo_envs))
    return total


__all__ = [
    "GitHubTokenMissing",
    "LineProgress",
    "Progress",
    "RepoSummary",
    "SyncSummary",
    "TerminalProgress",
    "derive_teams",
    "github_token_missing",
    "reads_github",
    "sync_all",
    "sync_github_teams",
]
