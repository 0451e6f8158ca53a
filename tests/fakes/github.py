"""A fake GitHub (GraphQL + REST) on loopback, serving a data set the test builds.

GraphQL queries are executed by graphql-core against GitHub's published schema
(``../shared/fixtures/github-graphql-schema``), so a query the fake answers is a query GitHub
accepts. REST answers follow the recorded shapes: workflow runs are built on the OpenAPI
``workflow-run`` example. Both github.com paths (``/graphql``, ``/repos/...``) and GitHub
Enterprise Server paths (``/api/graphql``, ``/api/v3/repos/...``) are served. Every answer
carries ``x-ratelimit-*`` headers; REST lists paginate with ``Link`` headers; cursors are keyed
to the sort order like GitHub's, so data changing between pages never shifts a page.

Faults come from :class:`tests.fakes.server.FakeServer` (``fail``); :meth:`FakeGitHub.rate_limit`
queues the primary rate limit answer GitHub gives. ``python -m tests.fakes.github`` serves a
generated organisation for the benchmark.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import random
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import graphql
from graphql.execution import execute

from tests.fakes.server import FakeRequest, FakeResponse, FakeServer

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None)


@cache
def github_schema() -> graphql.GraphQLSchema:
    sdl = (FIXTURES / "github-graphql-schema" / "schema.graphql").read_text(encoding="utf-8")
    return graphql.build_schema(sdl, assume_valid_sdl=True, assume_valid=True)


@cache
def _workflow_run_template() -> dict[str, Any]:
    path = FIXTURES / "github-openapi-examples" / "components" / "examples" / "workflow-run.json"
    return json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- the data set


@dataclass
class Review:
    id: int
    login: str
    state: str  # APPROVED | CHANGES_REQUESTED | COMMENTED | DISMISSED
    submitted_at: datetime
    type: str = "User"


@dataclass
class Pull:
    number: int
    title: str
    author: str
    created_at: datetime
    updated_at: datetime
    state: str = "OPEN"  # OPEN | CLOSED | MERGED
    merged_at: datetime | None = None
    closed_at: datetime | None = None
    merge_sha: str | None = None
    base: str = "main"
    head: str = "feature"
    is_draft: bool = False
    ready_at: datetime | None = None
    author_type: str = "User"
    commit_dates: list[datetime] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    files: list[tuple[str, int, int]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


@dataclass
class Commit:
    sha: str
    parents: list[str]
    authored_at: datetime
    committed_at: datetime


@dataclass
class Deployment:
    id: int
    sha: str
    created_at: datetime
    statuses: list[tuple[str, datetime]]  # (SUCCESS | FAILURE | IN_PROGRESS | INACTIVE..., at)
    environment: str = "production"
    ref: str = "main"


@dataclass
class Release:
    id: int
    tag: str
    sha: str
    created_at: datetime
    published_at: datetime | None
    draft: bool = False


@dataclass
class Run:
    id: int
    workflow: str  # file name, e.g. deploy.yml
    head_sha: str
    created_at: datetime
    updated_at: datetime
    status: str = "completed"
    conclusion: str | None = "success"
    head_branch: str = "main"


@dataclass
class Issue:
    number: int
    title: str
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    labels: list[str] = field(default_factory=list)
    body: str = ""
    reopened: bool = False  # open again; GitHub still reports the last closedAt
    reopened_at: datetime | None = None  # the last reopen (default: the update time)


@dataclass
class Repo:
    owner: str
    name: str
    database_id: int = 1
    default_branch: str = "main"
    pulls: dict[int, Pull] = field(default_factory=dict)
    commits: list[Commit] = field(default_factory=list)  # default branch, newest first
    # commits only on other branches (release branches, hotfixes), any order: reachable
    # through ``object(oid:)`` and their history, not through the default branch's
    branch_commits: list[Commit] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


# --------------------------------------------------------------------------- cursors


def _cursor(key: Any) -> str:
    return base64.b64encode(json.dumps(key).encode()).decode()


def _uncursor(cursor: str | None) -> Any:
    return None if not cursor else json.loads(base64.b64decode(cursor))


def _page(
    items: list[Any],
    key: Callable[[Any], Any],
    first: int,
    after: str | None,
    view: Callable[[Any], Any],
) -> dict[str, Any]:
    """``items`` already in order; the page after the item whose key is ``after``."""
    start = 0
    if after is not None:
        mark = _uncursor(after)
        keys = [key(i) for i in items]
        # first item strictly after the cursor's position in this order
        start = next((n for n, k in enumerate(keys) if _after(k, mark, keys)), len(items))
    chunk = items[start : start + max(0, min(first, 100))]
    has_next = start + len(chunk) < len(items)
    return {
        "pageInfo": {
            "hasNextPage": has_next,
            "endCursor": _cursor(key(chunk[-1])) if chunk else after,
        },
        "totalCount": len(items),
        "nodes": [view(i) for i in chunk],
    }


def _after(k: Any, mark: Any, keys: list[Any]) -> bool:
    if isinstance(mark, dict) and "rank" in mark:  # position-ordered lists (history)
        return k["rank"] > mark["rank"]
    return k[0] > mark[0] or (k[0] == mark[0] and k[1] > mark[1])


# --------------------------------------------------------------------------- the server


class FakeGitHub(FakeServer):
    """GitHub on loopback. ``repos`` is the data; mutate it between syncs."""

    def __init__(self, repos: Iterable[Repo] = (), token: str | None = None) -> None:
        super().__init__()
        self.repos: dict[str, Repo] = {r.full_name.lower(): r for r in repos}
        #: "org/team-slug" (lower case) -> its members' logins, in GitHub's order
        self.teams: dict[str, list[str]] = {}
        self.token = token
        self.rate_limit_remaining = 5000
        self.data_lock = threading.RLock()
        self._degraded = 0
        self.object_errors = 0  # the next N ``object(oid:)`` fields fail (a GitHub timeout)
        for prefix in ("", "/api/v3"):
            self.route(
                "GET",
                prefix + r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)/actions/workflows/"
                r"(?P<workflow>[^/]+)/runs",
                self.workflow_runs,
            )
            self.route("GET", prefix + r"/rate_limit", self.rate_limit_status)
        for path in (r"/graphql", r"/api/graphql"):
            self.route("POST", path, self.graphql)
        self.route("POST", r"/_fake/touch", self.touch_route)

    @property
    def ghes_url(self) -> str:
        return self.url + "/api/v3"

    def add(self, repo: Repo) -> Repo:
        self.repos[repo.full_name.lower()] = repo
        return repo

    # ------------------------------------------------------------------ faults

    def rate_limit(self, method: str = "POST", pattern: str = r"(/api)?/graphql", in_s: int = 1):
        """Answer the next matching request as GitHub does when the primary limit is spent."""
        reset = int(time.time()) + in_s
        self.fail(
            method,
            pattern,
            FakeResponse.json(
                {
                    "message": "API rate limit exceeded for user ID 1.",
                    "documentation_url": "https://docs.github.com/rest/rate-limit",
                },
                status=403,
                headers={
                    "x-ratelimit-limit": "5000",
                    "x-ratelimit-remaining": "0",
                    "x-ratelimit-reset": str(reset),
                },
            ),
        )

    def degrade(self, times: int = 1) -> None:
        """The next ``times`` GraphQL answers with pull requests lose their first node to an
        error, as GitHub answers when part of a query times out (partial data + errors)."""
        with self._lock:
            self._degraded += times

    def _maybe_degrade(self, out: dict[str, Any]) -> None:
        repo = (out.get("data") or {}).get("repository") or {}
        nodes = (repo.get("pullRequests") or {}).get("nodes") or []
        with self._lock:
            if not self._degraded or not nodes:
                return
            self._degraded -= 1
        nodes[0] = None
        out.setdefault("errors", []).append(
            {
                "message": "Something went wrong while executing your query. This may be the "
                "result of a timeout, or it could be a GitHub bug.",
                "path": ["repository", "pullRequests", "nodes", 0],
            }
        )

    # ------------------------------------------------------------------ plumbing

    def _headers(self) -> dict[str, str]:
        self.rate_limit_remaining = max(0, self.rate_limit_remaining - 1)
        return {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": str(max(1, self.rate_limit_remaining)),
            "x-ratelimit-reset": str(int(time.time()) + 3600),
            "x-ratelimit-used": str(5000 - self.rate_limit_remaining),
            "x-github-api-version-selected": "2022-11-28",
        }

    def _authorised(self, req: FakeRequest) -> FakeResponse | None:
        if self.token is None:
            return None
        if req.headers.get("authorization") != f"Bearer {self.token}":
            return FakeResponse.json(
                {
                    "message": "Bad credentials",
                    "documentation_url": "https://docs.github.com/rest",
                    "status": "401",
                },
                status=401,
            )
        return None

    def _repo(self, owner: str, name: str) -> Repo | None:
        return self.repos.get(f"{owner}/{name}".lower())

    # ------------------------------------------------------------------ REST

    def rate_limit_status(self, req: FakeRequest) -> FakeResponse:
        return FakeResponse.json({"resources": {}, "rate": {}}, headers=self._headers())

    def workflow_runs(self, req: FakeRequest) -> FakeResponse:
        denied = self._authorised(req)
        if denied:
            return denied
        repo = self._repo(req.params["owner"], req.params["name"])
        workflow = req.params["workflow"]
        with self.data_lock:
            if repo is None or not any(r.workflow == workflow for r in repo.runs):
                return FakeResponse.json(
                    {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"},
                    status=404,
                    headers=self._headers(),
                )
            runs = sorted(
                (r for r in repo.runs if r.workflow == workflow),
                key=lambda r: (r.created_at, r.id),
                reverse=True,
            )
            branch = req.arg("branch")
            if branch:
                runs = [r for r in runs if r.head_branch == branch]
            per_page = min(100, int(req.arg("per_page", "30") or 30))
            page = int(req.arg("page", "1") or 1)
            chunk = runs[(page - 1) * per_page : page * per_page]
            body = {
                "total_count": len(runs),
                "workflow_runs": [self._run_json(repo, r) for r in chunk],
            }
        headers = self._headers()
        last = max(1, -(-len(runs) // per_page))
        links = []
        base = f"{self.url}{req.path}?per_page={per_page}" + (f"&branch={branch}" if branch else "")
        if page < last:
            links.append(f'<{base}&page={page + 1}>; rel="next"')
            links.append(f'<{base}&page={last}>; rel="last"')
        if page > 1:
            links.append(f'<{base}&page=1>; rel="first"')
            links.append(f'<{base}&page={page - 1}>; rel="prev"')
        if links:
            headers["Link"] = ", ".join(links)
        return FakeResponse.json(body, headers=headers)

    @staticmethod
    def _run_json(repo: Repo, r: Run) -> dict[str, Any]:
        run = copy.deepcopy(_workflow_run_template())
        run.update(
            id=r.id,
            name="Deploy",
            head_branch=r.head_branch,
            head_sha=r.head_sha,
            path=f".github/workflows/{r.workflow}",
            status=r.status,
            conclusion=r.conclusion if r.status == "completed" else None,
            created_at=iso(r.created_at),
            updated_at=iso(r.updated_at),
            run_started_at=iso(r.created_at),
            html_url=f"https://github.com/{repo.full_name}/actions/runs/{r.id}",
            url=f"https://api.github.com/repos/{repo.full_name}/actions/runs/{r.id}",
        )
        return run

    # ------------------------------------------------------------------ GraphQL

    def graphql(self, req: FakeRequest) -> FakeResponse:
        denied = self._authorised(req)
        if denied:
            return denied
        body = req.json()
        document = graphql.parse(body["query"])
        errors = graphql.validate(github_schema(), document)
        if errors:
            return FakeResponse.json(
                {"errors": [{"message": e.message} for e in errors]}, headers=self._headers()
            )
        with self.data_lock:
            result = execute(
                github_schema(),
                document,
                root_value=self._root(),
                variable_values=body.get("variables") or {},
                field_resolver=_resolve,
            )
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            out["errors"] = [self._error(e) for e in result.errors]
        self._maybe_degrade(out)
        return FakeResponse.json(out, headers=self._headers())

    @staticmethod
    def _error(e: graphql.GraphQLError) -> dict[str, Any]:
        original = e.original_error
        kind = getattr(original, "kind", None)
        err: dict[str, Any] = {"message": e.message, "path": e.path}
        if kind:
            err["type"] = kind
        return err

    def _root(self) -> dict[str, Any]:
        def repository(owner: str, name: str, **_: Any) -> dict[str, Any]:
            repo = self._repo(owner, name)
            if repo is None:
                raise _NotFound(
                    f"Could not resolve to a Repository with the name '{owner}/{name}'."
                )
            return self._repo_view(repo)

        def organization(login: str, **_: Any) -> dict[str, Any] | None:
            slugs = {
                k.split("/", 1)[1]: v
                for k, v in self.teams.items()
                if k.startswith(f"{login.lower()}/")
            }
            if not slugs and not any(r.startswith(f"{login.lower()}/") for r in self.repos):
                raise _NotFound(
                    f"Could not resolve to an Organization with the login of '{login}'."
                )

            def team(slug: str, **_: Any) -> dict[str, Any] | None:
                logins = slugs.get(slug.lower())
                if logins is None:
                    return None  # GitHub answers null for a team it does not have

                def members(first: int = 100, after: str | None = None, **_: Any) -> dict[str, Any]:
                    return _connection(list(logins), first, after, lambda m: {"login": m})

                return {"members": members}

            return {"team": team}

        return {
            "rateLimit": {
                "cost": 1,
                "remaining": self.rate_limit_remaining,
                "resetAt": iso(datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)),
            },
            "repository": repository,
            "organization": organization,
        }

    def _repo_view(self, repo: Repo) -> dict[str, Any]:
        def history(first: int = 100, after: str | None = None, since: Any = None, **_: Any):
            since_dt = _parse(since) if isinstance(since, str) else None
            commits = [c for c in repo.commits if since_dt is None or c.committed_at >= since_dt]
            ranks = {c.sha: n for n, c in enumerate(repo.commits)}
            return _page(commits, lambda c: {"rank": ranks[c.sha]}, first, after, _commit_view)

        def pulls(first: int = 100, after: str | None = None, **kw: Any) -> dict[str, Any]:
            order = kw.get("orderBy") or {"field": "CREATED_AT", "direction": "ASC"}
            assert order["field"] == "UPDATED_AT" and order["direction"] == "DESC", order
            items = sorted(repo.pulls.values(), key=lambda p: (p.updated_at, p.number))
            items.reverse()
            return _page(
                items,
                lambda p: (-p.updated_at.timestamp(), -p.number),
                first,
                after,
                lambda p: _pull_view(repo, p),
            )

        def deployments(first: int = 100, after: str | None = None, **kw: Any) -> dict[str, Any]:
            envs = kw.get("environments")
            items = [d for d in repo.deployments if not envs or d.environment in envs]
            items.sort(key=lambda d: (d.created_at, d.id), reverse=True)
            return _page(
                items, lambda d: (-d.created_at.timestamp(), -d.id), first, after, _deployment_view
            )

        def releases(first: int = 100, after: str | None = None, **_: Any) -> dict[str, Any]:
            items = sorted(repo.releases, key=lambda r: (r.created_at, r.id), reverse=True)
            return _page(
                items,
                lambda r: (-r.created_at.timestamp(), -r.id),
                first,
                after,
                lambda r: _release_view(repo, r),
            )

        def issues(first: int = 100, after: str | None = None, **kw: Any) -> dict[str, Any]:
            labels = {x.lower() for x in kw.get("labels") or []}
            since = _parse((kw.get("filterBy") or {}).get("since"))
            items = [
                i
                for i in repo.issues
                if (not labels or labels & {x.lower() for x in i.labels})
                and (since is None or i.updated_at >= since)
            ]
            items.sort(key=lambda i: (i.updated_at, i.number))
            return _page(
                items,
                lambda i: (i.updated_at.timestamp(), i.number),
                first,
                after,
                lambda i: _issue_view(repo, i),
            )

        def git_object(oid: str | None = None, **_: Any) -> dict[str, Any] | None:
            with self._lock:
                failing, self.object_errors = self.object_errors > 0, max(0, self.object_errors - 1)
            if failing:
                raise _Timeout("Something went wrong while executing your query.")
            by_sha = {c.sha: c for c in (*repo.commits, *repo.branch_commits)}
            if oid not in by_sha:
                return None
            return {"__typename": "Commit", "oid": oid, "history": _history_of(by_sha, oid)}

        def pull_request(number: int, **_: Any) -> dict[str, Any] | None:
            p = repo.pulls.get(number)
            return None if p is None else _pull_view(repo, p)

        return {
            "databaseId": repo.database_id,
            "nameWithOwner": repo.full_name,
            "defaultBranchRef": {
                "name": repo.default_branch,
                "target": {
                    "__typename": "Commit",
                    "oid": repo.commits[0].sha if repo.commits else "0" * 40,
                    "history": history,
                },
            },
            "pullRequests": pulls,
            "pullRequest": pull_request,
            "object": git_object,
            "deployments": deployments,
            "releases": releases,
            "issues": issues,
        }

    # ------------------------------------------------------------------ changes

    def touch(self, fraction: float, at: datetime, seed: int = 7) -> int:
        """Update ``fraction`` of the PRs (a new review each, updated at ``at``)."""
        rng = random.Random(seed)
        with self.data_lock:
            pulls = [p for r in self.repos.values() for p in r.pulls.values()]
            chosen = rng.sample(pulls, max(1, round(len(pulls) * fraction)))
            for n, p in enumerate(chosen):
                p.reviews.append(Review(10_000_000 + n, "late-reviewer", "COMMENTED", at))
                p.updated_at = at
        return len(chosen)

    def touch_route(self, req: FakeRequest) -> FakeResponse:
        body = req.json()
        n = self.touch(float(body["fraction"]), _parse(body["at"]) or datetime(2026, 1, 1))
        return FakeResponse.json({"touched": n})


class _NotFound(Exception):
    kind = "NOT_FOUND"


class _Timeout(Exception):
    pass


def _resolve(source: Any, info: graphql.GraphQLResolveInfo, **args: Any) -> Any:
    value = source.get(info.field_name) if isinstance(source, dict) else None
    if callable(value):
        return value(**args)
    return value


def _actor(login: str, kind: str) -> dict[str, Any]:
    return {"__typename": kind, "login": login}


def _commit_view(c: Commit) -> dict[str, Any]:
    return {
        "__typename": "Commit",
        "oid": c.sha,
        "authoredDate": iso(c.authored_at),
        "committedDate": iso(c.committed_at),
        "parents": lambda **_: {"nodes": [{"oid": p} for p in c.parents]},
    }


def _history_of(by_sha: dict[str, Commit], oid: str) -> Callable[..., dict[str, Any]]:
    """A commit's ``history``: every commit reachable from it, newest commit date first (git
    log's order), paged by position like GitHub's cursors."""

    def history(first: int = 100, after: str | None = None, **_: Any) -> dict[str, Any]:
        seen: set[str] = set()
        stack = [oid]
        while stack:
            sha = stack.pop()
            if sha in seen or sha not in by_sha:
                continue
            seen.add(sha)
            stack.extend(by_sha[sha].parents)
        items = sorted((by_sha[s] for s in seen), key=lambda c: (c.committed_at, c.sha))
        items.reverse()
        ranks = {c.sha: n for n, c in enumerate(items)}
        return _page(items, lambda c: {"rank": ranks[c.sha]}, first, after, _commit_view)

    return history


def _connection(items: list[Any], first: int, after: str | None, view: Callable) -> dict:
    return _page(items, lambda i: {"rank": items.index(i)}, first, after, view)


def _pull_view(repo: Repo, p: Pull) -> dict[str, Any]:
    ready = [{"__typename": "ReadyForReviewEvent", "createdAt": iso(p.ready_at)}]
    reviews = sorted(p.reviews, key=lambda r: (r.submitted_at, r.id))
    files = list(p.files)
    return {
        "number": p.number,
        "title": p.title,
        "url": f"https://github.com/{repo.full_name}/pull/{p.number}",
        "author": _actor(p.author, p.author_type),
        "createdAt": iso(p.created_at),
        "updatedAt": iso(p.updated_at),
        "isDraft": p.is_draft,
        "state": p.state,
        "mergedAt": iso(p.merged_at),
        "closedAt": iso(p.closed_at),
        "mergeCommit": {"oid": p.merge_sha} if p.merge_sha and p.state == "MERGED" else None,
        "baseRefName": p.base,
        "headRefName": p.head,
        "additions": sum(f[1] for f in p.files),
        "deletions": sum(f[2] for f in p.files),
        "changedFiles": len(p.files),
        "labels": lambda **_: {"nodes": [{"name": n} for n in p.labels]},
        "timelineItems": lambda **_: {"nodes": ready if p.ready_at else []},
        "commits": lambda first=100, **_: {
            "nodes": [{"commit": {"authoredDate": iso(d)}} for d in p.commit_dates[:first]]
        },
        "reviews": lambda first=100, after=None, **_: _connection(
            reviews,
            first,
            after,
            lambda r: {
                "databaseId": r.id,
                "author": _actor(r.login, r.type),
                "state": r.state,
                "submittedAt": iso(r.submitted_at),
            },
        ),
        "files": lambda first=100, after=None, **_: _connection(
            files,
            first,
            after,
            lambda f: {"path": f[0], "additions": f[1], "deletions": f[2]},
        ),
    }


def _deployment_view(d: Deployment) -> dict[str, Any]:
    statuses = [{"state": s, "createdAt": iso(at)} for s, at in d.statuses]
    return {
        "databaseId": d.id,
        "environment": d.environment,
        "commitOid": d.sha,
        "createdAt": iso(d.created_at),
        "ref": {"name": d.ref},
        "latestStatus": statuses[-1] if statuses else None,
        "statuses": lambda first=100, **_: {"nodes": statuses[:first]},
    }


def _release_view(repo: Repo, r: Release) -> dict[str, Any]:
    return {
        "databaseId": r.id,
        "tagName": r.tag,
        "tagCommit": {"oid": r.sha},
        "createdAt": iso(r.created_at),
        "publishedAt": iso(r.published_at),
        "isDraft": r.draft,
        "url": f"https://github.com/{repo.full_name}/releases/tag/{r.tag}",
    }


def _issue_view(repo: Repo, i: Issue) -> dict[str, Any]:
    return {
        "number": i.number,
        "title": i.title,
        "url": f"https://github.com/{repo.full_name}/issues/{i.number}",
        "body": i.body,
        "createdAt": iso(i.created_at),
        "updatedAt": iso(i.updated_at),
        "state": "CLOSED" if i.closed_at is not None and not i.reopened else "OPEN",
        "closedAt": iso(i.closed_at),
        "labels": lambda **_: {"nodes": [{"name": n} for n in i.labels]},
        "timelineItems": lambda **_: {
            "nodes": [{"__typename": "ReopenedEvent", "createdAt": iso(_reopen_of(i))}]
            if _reopen_of(i)
            else []
        },
    }


def _reopen_of(i: Issue) -> datetime | None:
    return i.reopened_at or (i.updated_at if i.reopened else None)


# --------------------------------------------------------------------------- webhook deliveries


@cache
def _octokit(path: str) -> dict[str, Any]:
    base = FIXTURES / "octokit-webhooks" / "payload-examples" / "api.github.com"
    return json.loads((base / path).read_text(encoding="utf-8"))


def _user(login: str, kind: str) -> dict[str, Any]:
    return {**_octokit("issues/opened.payload.json")["issue"]["user"], "login": login, "type": kind}


def _repository(repo: Repo) -> dict[str, Any]:
    payload = copy.deepcopy(_octokit("issues/opened.payload.json")["repository"])
    payload.update(full_name=repo.full_name, name=repo.name, id=repo.database_id)
    return payload


def _pull_json(repo: Repo, p: Pull) -> dict[str, Any]:
    pr = copy.deepcopy(_octokit("pull_request/closed.payload.json")["pull_request"])
    merged = p.state == "MERGED"
    pr.update(
        number=p.number,
        title=p.title,
        html_url=f"https://github.com/{repo.full_name}/pull/{p.number}",
        user=_user(p.author, p.author_type),
        state="open" if p.state == "OPEN" else "closed",
        draft=p.is_draft,
        created_at=iso(p.created_at),
        updated_at=iso(p.updated_at),
        closed_at=iso(p.closed_at),
        merged_at=iso(p.merged_at),
        merged=merged,
        merge_commit_sha=p.merge_sha,
        additions=sum(f[1] for f in p.files),
        deletions=sum(f[2] for f in p.files),
        changed_files=len(p.files),
        labels=[{"name": n} for n in p.labels],
    )
    pr["base"] = {**pr["base"], "ref": p.base}
    pr["head"] = {**pr["head"], "ref": p.head}
    return pr


def webhook_deliveries(repo: Repo) -> list[tuple[str, dict[str, Any]]]:
    """What GitHub's webhooks deliver for ``repo``'s data, as ``(X-GitHub-Event, payload)``
    in the order GitHub sends them (by event time): the same facts the fake answers the sync
    with, in the recorded octokit payload shapes. ``pull_request`` events: opened, then
    ``ready_for_review`` at the ready time, then the latest state; every review; every
    deployment status (``deployment_status``); every workflow run (``completed`` or
    ``requested``); every issue (``opened``, then ``closed``)."""
    repository = _repository(repo)
    out: list[tuple[datetime, int, str, dict[str, Any]]] = []

    def add(at: datetime, event: str, payload: dict[str, Any]) -> None:
        out.append((at, len(out), event, {**payload, "repository": repository}))

    for p in repo.pulls.values():
        pr = _pull_json(repo, p)
        opened = {**pr, "state": "open", "merged": False, "merged_at": None, "closed_at": None}
        add(p.created_at, "pull_request", {"action": "opened", "pull_request": opened})
        if p.ready_at is not None:
            ready = {**opened, "updated_at": iso(p.ready_at)}
            add(p.ready_at, "pull_request", {"action": "ready_for_review", "pull_request": ready})
        action = "closed" if p.state != "OPEN" else "edited"
        add(p.updated_at, "pull_request", {"action": action, "pull_request": pr})
        for r in p.reviews:
            review = {
                **_octokit("pull_request_review/submitted.payload.json")["review"],
                "id": r.id,
                "user": _user(r.login, r.type),
                "state": r.state.lower(),
                "submitted_at": iso(r.submitted_at),
            }
            add(
                r.submitted_at,
                "pull_request_review",
                {"action": "submitted", "review": review, "pull_request": pr},
            )
    template = _octokit("deployment_status/payload.json")
    for dep in repo.deployments:
        deployment = {
            **template["deployment"],
            "id": dep.id,
            "sha": dep.sha,
            "ref": dep.ref,
            "environment": dep.environment,
            "created_at": iso(dep.created_at),
        }
        for n, (state, at) in enumerate(dep.statuses):
            status = {
                **template["deployment_status"],
                "id": dep.id * 100 + n,
                "state": state.lower(),
                "environment": dep.environment,
                "created_at": iso(at),
                "updated_at": iso(at),
            }
            add(
                at,
                "deployment_status",
                {"action": "created", "deployment": deployment, "deployment_status": status},
            )
    for r in repo.runs:
        action = "completed" if r.status == "completed" else "requested"
        run = FakeGitHub._run_json(repo, r)
        add(r.updated_at, "workflow_run", {"action": action, "workflow_run": run})
    for i in repo.issues:
        issue = copy.deepcopy(_octokit("issues/opened.payload.json")["issue"])
        issue.update(
            number=i.number,
            title=i.title,
            body=i.body,
            html_url=f"https://github.com/{repo.full_name}/issues/{i.number}",
            created_at=iso(i.created_at),
            updated_at=iso(i.created_at),
            closed_at=None,
            state="open",
            labels=[{"name": n} for n in i.labels],
        )
        add(i.created_at, "issues", {"action": "opened", "issue": issue})
        if i.closed_at is not None:
            closed = {
                **issue,
                "state": "closed",
                "closed_at": iso(i.closed_at),
                "updated_at": iso(i.updated_at),
            }
            add(i.closed_at, "issues", {"action": "closed", "issue": closed})
        reopen = _reopen_of(i)
        if reopen is not None:
            again = {
                **issue,
                "state": "open",
                "closed_at": iso(i.closed_at),
                "updated_at": iso(reopen),
            }
            add(reopen, "issues", {"action": "reopened", "issue": again})
    out.sort(key=lambda e: (e[0], e[1]))
    return [(event, payload) for _, _, event, payload in out]


# --------------------------------------------------------------------------- a generated org


def sha_of(*parts: object) -> str:
    import hashlib

    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


def generate_org(
    repos: int = 20,
    pulls: int = 10_000,
    *,
    owner: str = "acme",
    end: datetime = datetime(2026, 11, 20),
    days: int = 180,
    seed: int = 1,
    release_branches: int = 0,
) -> list[Repo]:
    """A deterministic organisation: squash-merged PRs with reviews, files and commits, a
    linear default-branch history, and a production deployment after every few merges.

    ``release_branches``: per repository, that many release branches cut from the default
    branch, each deployed (its cut commit), hotfixed (a commit on the branch, deployed) and
    rolled back (the cut commit deployed again): commits only the deployed commits' history
    reaches."""
    rng = random.Random(seed)
    out: list[Repo] = []
    per_repo = [pulls // repos + (1 if i < pulls % repos else 0) for i in range(repos)]
    start = end - timedelta(days=days)
    review_id = 1
    for ri in range(repos):
        repo = Repo(owner, f"service-{ri:02d}", database_id=1000 + ri)
        n = per_repo[ri]
        times = sorted(start + timedelta(seconds=rng.uniform(0, days * 86400)) for _ in range(n))
        parent: str | None = None
        history: list[Commit] = []
        merges: list[tuple[datetime, str]] = []
        for number, created in enumerate(times, start=1):
            author = f"dev{rng.randrange(12)}" if rng.random() > 0.05 else "dependabot[bot]"
            kind = "Bot" if author.endswith("[bot]") else "User"
            p = Pull(
                number=number,
                title=f"Change {number} of {repo.name}",
                author=author,
                author_type=kind,
                created_at=created.replace(microsecond=0),
                updated_at=created.replace(microsecond=0),
                head=f"{author}/change-{number}",
                commit_dates=[
                    (created - timedelta(hours=rng.uniform(1, 30))).replace(microsecond=0)
                    for _ in range(rng.randint(1, 4))
                ],
                files=[
                    (
                        f"src/module_{rng.randrange(40)}/file_{k}.py",
                        rng.randint(1, 80),
                        rng.randint(0, 30),
                    )
                    for k in range(rng.randint(1, 6))
                ]
                + ([("package-lock.json", 300, 200)] if rng.random() < 0.1 else []),
                labels=["backend"] if rng.random() < 0.3 else [],
            )
            t = p.created_at
            for _ in range(rng.randint(0, 3)):
                t = t + timedelta(hours=rng.uniform(0.2, 20))
                p.reviews.append(
                    Review(
                        review_id,
                        f"dev{rng.randrange(12)}",
                        rng.choice(["APPROVED", "COMMENTED", "CHANGES_REQUESTED"]),
                        t,
                    )
                )
                review_id += 1
            roll = rng.random()
            if roll < 0.85:
                merged = (t + timedelta(hours=rng.uniform(0.5, 30))).replace(microsecond=0)
                if merged > end:
                    merged = end - timedelta(minutes=number % 50 + 1)
                p.state, p.merged_at, p.closed_at = "MERGED", merged, merged
                p.updated_at = merged
                merges.append((merged, f"{number}"))
                p.merge_sha = sha_of(repo.name, number)
            elif roll < 0.92:
                p.state, p.closed_at = "CLOSED", (t + timedelta(hours=3)).replace(microsecond=0)
                p.updated_at = p.closed_at
            repo.pulls[number] = p
        merges.sort()
        for merged, number in merges:
            sha = sha_of(repo.name, number)
            history.append(Commit(sha, [parent] if parent else [], merged, merged))
            parent = sha
        history.reverse()
        repo.commits = history
        # a production deployment after every 4th merge, finished 20 minutes later
        dep_id = 50_000 * (ri + 1)
        for k in range(3, len(merges), 4):
            merged, number = merges[k]
            at = merged + timedelta(minutes=5)
            sha = sha_of(repo.name, number)
            state = "SUCCESS" if rng.random() > 0.1 else "FAILURE"
            repo.deployments.append(
                Deployment(
                    dep_id,
                    sha,
                    at,
                    [
                        ("IN_PROGRESS", at + timedelta(minutes=1)),
                        (state, at + timedelta(minutes=20)),
                    ],
                )
            )
            dep_id += 1
        for b in range(release_branches):
            at, base = merges[(b + 1) * len(merges) // (release_branches + 1)]
            cut = Commit(sha_of(repo.name, "release", b), [sha_of(repo.name, base)], at, at)
            fix_at = at + timedelta(hours=20)
            fix = Commit(sha_of(repo.name, "hotfix", b), [cut.sha], fix_at, fix_at)
            repo.branch_commits += [fix, cut]
            for n, (what, when) in enumerate(
                [
                    (cut.sha, at + timedelta(hours=1)),
                    (fix.sha, fix_at + timedelta(hours=1)),
                    (cut.sha, fix_at + timedelta(hours=2)),  # the hotfix rolled back
                ]
            ):
                repo.deployments.append(
                    Deployment(
                        40_000 * (ri + 1) + 10 * b + n,
                        what,
                        when,
                        [("SUCCESS", when + timedelta(minutes=10))],
                        ref=f"release/{b + 1}.0",
                    )
                )
        for k in range(rng.randint(2, 6)):
            opened = start + timedelta(days=rng.uniform(0, days))
            repo.issues.append(
                Issue(
                    k + 1,
                    f"Outage {k + 1}",
                    opened.replace(microsecond=0),
                    (opened + timedelta(hours=2)).replace(microsecond=0),
                    (opened + timedelta(hours=2)).replace(microsecond=0),
                    ["incident"],
                )
            )
        out.append(repo)
    return out


def main(argv: list[str]) -> None:
    """Serve a generated organisation until stdin closes; prints the base URL first."""
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--repos", type=int, default=20)
    p.add_argument("--pulls", type=int, default=10_000)
    p.add_argument("--release-branches", type=int, default=0, help="per repository")
    args = p.parse_args(argv)
    fake = FakeGitHub(generate_org(args.repos, args.pulls, release_branches=args.release_branches))
    # the teams of bench/bench_sync.py's configuration, six of the generated developers each
    fake.teams = {
        f"acme/team-{t}": [f"dev{(3 * t + k) % 12}" for k in range(6)]
        for t in range(math.ceil(args.repos / 5))
    }
    github_schema()
    fake.start()
    sys.stdout.write(fake.url + "\n")
    sys.stdout.flush()
    sys.stdin.read()
    fake.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
