"""GitHub ingestion, first step: the GraphQL queries and pure parsers from GitHub payloads
(GraphQL nodes, REST responses, webhook bodies) to frozen domain records.

Nothing here talks to the network. Every parser raises :class:`GitHubPayloadError` (a
``ValueError``) with a message naming the bad field when the payload is malformed; they never
leak ``KeyError``/``TypeError``. Timestamps become naive UTC datetimes at second precision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from bot.errors import KpibotError
from bot.sources.timestamps import iso_utc
from bot.store.records import (
    CommitRecord,
    DeploymentRecord,
    FileRecord,
    IssueRecord,
    PullRequestRecord,
    ReviewRecord,
)

T = TypeVar("T")

#: Every field the store keeps of a pull request; shared by the queries below.
PULL_REQUEST_FIELDS = """
fragment PullRequestFields on PullRequest {
  number
  title
  url
  author { login __typename }
  createdAt
  updatedAt
  isDraft
  state
  mergedAt
  closedAt
  mergeCommit { oid }
  baseRefName
  headRefName
  additions
  deletions
  changedFiles
  labels(first: 20) { nodes { name } }
  timelineItems(first: 10, itemTypes: [READY_FOR_REVIEW_EVENT]) {
    nodes { ... on ReadyForReviewEvent { createdAt } }
  }
  commits(first: 30) { nodes { commit { authoredDate } } }
  reviews(first: 50) {
    pageInfo { hasNextPage endCursor }
    nodes { databaseId author { login __typename } state submittedAt }
  }
  files(first: 100) {
    pageInfo { hasNextPage endCursor }
    nodes { path additions deletions }
  }
}
"""

PULL_REQUESTS_QUERY = (
    """
query PullRequests($owner: String!, $name: String!, $pageSize: Int!, $cursor: String) {
  rateLimit { cost remaining resetAt }
  repository(owner: $owner, name: $name) {
    pullRequests(
      first: $pageSize
      after: $cursor
      orderBy: { field: UPDATED_AT, direction: DESC }
    ) {
      pageInfo { hasNextPage endCursor }
      nodes { ...PullRequestFields }
    }
  }
}
"""
    + PULL_REQUEST_FIELDS
)

#: One request fetches the next page of every connection a repository still needs: pull
#: requests (newest update first), the default branch's history (with parents, for the commit
#: graph), deployments (newest first), releases and labelled issues (oldest update first).
#: ``@include`` drops the connections that are done, so the requests per repository are the
#: pages of its longest connection, not the sum.
REPOSITORY_SYNC_QUERY = (
    """
query RepositorySync(
  $owner: String!
  $name: String!
  $withPulls: Boolean!
  $pullsPageSize: Int!
  $pullsCursor: String
  $withHistory: Boolean!
  $historyPageSize: Int!
  $historyCursor: String
  $historySince: GitTimestamp
  $withDeployments: Boolean!
  $deploymentsPageSize: Int!
  $deploymentsCursor: String
  $environments: [String!]
  $withReleases: Boolean!
  $releasesPageSize: Int!
  $releasesCursor: String
  $withIssues: Boolean!
  $issuesPageSize: Int!
  $issuesCursor: String
  $issueLabels: [String!]
  $issuesSince: DateTime
) {
  rateLimit { cost remaining resetAt }
  repository(owner: $owner, name: $name) {
    databaseId
    nameWithOwner
    defaultBranchRef {
      name
      target @include(if: $withHistory) {
        ... on Commit {
          history(first: $historyPageSize, after: $historyCursor, since: $historySince) {
            pageInfo { hasNextPage endCursor }
            nodes {
              oid
              authoredDate
              committedDate
              parents(first: 5) { nodes { oid } }
            }
          }
        }
      }
    }
    pullRequests(
      first: $pullsPageSize
      after: $pullsCursor
      orderBy: { field: UPDATED_AT, direction: DESC }
    ) @include(if: $withPulls) {
      pageInfo { hasNextPage endCursor }
      nodes { ...PullRequestFields }
    }
    deployments(
      first: $deploymentsPageSize
      after: $deploymentsCursor
      environments: $environments
      orderBy: { field: CREATED_AT, direction: DESC }
    ) @include(if: $withDeployments) {
      pageInfo { hasNextPage endCursor }
      nodes {
        databaseId
        environment
        commitOid
        createdAt
        ref { name }
        latestStatus { state createdAt }
        statuses(first: 50) { nodes { state createdAt } }
      }
    }
    releases(
      first: $releasesPageSize
      after: $releasesCursor
      orderBy: { field: CREATED_AT, direction: DESC }
    ) @include(if: $withReleases) {
      pageInfo { hasNextPage endCursor }
      nodes {
        databaseId
        tagName
        tagCommit { oid }
        createdAt
        publishedAt
        isDraft
        url
      }
    }
    issues(
      first: $issuesPageSize
      after: $issuesCursor
      labels: $issueLabels
      filterBy: { since: $issuesSince }
      orderBy: { field: UPDATED_AT, direction: ASC }
    ) @include(if: $withIssues) {
      pageInfo { hasNextPage endCursor }
      nodes {
        number
        title
        url
        body
        createdAt
        updatedAt
        state
        closedAt
        labels(first: 20) { nodes { name } }
        timelineItems(last: 1, itemTypes: [REOPENED_EVENT]) {
          nodes { ... on ReopenedEvent { createdAt } }
        }
      }
    }
  }
}
"""
    + PULL_REQUEST_FIELDS
)

#: The rest of one pull request's reviews and files, when a page had more than it carried.
PULL_REQUEST_DETAILS_QUERY = """
query PullRequestDetails(
  $owner: String!
  $name: String!
  $number: Int!
  $withReviews: Boolean!
  $reviewsCursor: String
  $withFiles: Boolean!
  $filesCursor: String
) {
  rateLimit { cost remaining resetAt }
  repository(owner: $owner, name: $name) {
    pullRequest(number: $number) {
      reviews(first: 100, after: $reviewsCursor) @include(if: $withReviews) {
        pageInfo { hasNextPage endCursor }
        nodes { databaseId author { login __typename } state submittedAt }
      }
      files(first: 100, after: $filesCursor) @include(if: $withFiles) {
        pageInfo { hasNextPage endCursor }
        nodes { path additions deletions }
      }
    }
  }
}
"""

#: Commit fields of every history page (the commit graph: parents and dates).
_HISTORY_NODE = "oid authoredDate committedDate parents(first: 5) { nodes { oid } }"

#: How many deployed commits' histories one :func:`commit_histories_query` request carries.
COMMIT_HISTORIES_BATCH = 10


def commit_histories_query(count: int) -> str:
    """One request for the next history page of ``count`` commits (GraphQL aliases ``c0``,
    ``c1``...; variables ``$oid0``/``$after0``...): the history of deployed commits outside
    the default branch (release branches), back to what the store already has."""
    if not 1 <= count <= COMMIT_HISTORIES_BATCH:
        raise ValueError(f"count must be 1 to {COMMIT_HISTORIES_BATCH}, got {count}")
    params = "".join(f"\n  $oid{i}: GitObjectID!\n  $after{i}: String" for i in range(count))
    fields = "".join(
        f"""
    c{i}: object(oid: $oid{i}) {{
      ... on Commit {{
        history(first: $pageSize, after: $after{i}) {{
          pageInfo {{ hasNextPage endCursor }}
          nodes {{ {_HISTORY_NODE} }}
        }}
      }}
    }}"""
        for i in range(count)
    )
    return f"""
query CommitHistories(
  $owner: String!
  $name: String!
  $pageSize: Int!{params}
) {{
  rateLimit {{ cost remaining resetAt }}
  repository(owner: $owner, name: $name) {{{fields}
  }}
}}
"""


DEFAULT_BRANCH_QUERY = """
query DefaultBranch($owner: String!, $name: String!) {
  rateLimit { cost remaining resetAt }
  repository(owner: $owner, name: $name) {
    defaultBranchRef { name }
  }
}
"""

TEAM_MEMBERS_QUERY = """
query TeamMembers($org: String!, $slug: String!, $first: Int!, $after: String) {
  rateLimit { cost remaining resetAt }
  organization(login: $org) {
    team(slug: $slug) {
      members(first: $first, after: $after) {
        nodes { login }
        pageInfo { hasNextPage endCursor }
      }
    }
  }
}
"""

#: Deployment states after which nothing more happens (GitHub deployment status states).
TERMINAL_DEPLOYMENT_STATES = frozenset({"success", "failure", "error"})


class GitHubPayloadError(KpibotError, ValueError):
    """A GitHub payload is not shaped as expected (missing field, wrong type, bad timestamp)."""


@dataclass(frozen=True)
class RateLimit:
    cost: int
    remaining: int
    reset_at: datetime


@dataclass(frozen=True)
class PullRequestPage:
    pull_requests: tuple[PullRequestRecord, ...]
    has_next_page: bool
    end_cursor: str | None
    rate_limit: RateLimit | None


# --------------------------------------------------------------------------- field helpers


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise GitHubPayloadError(f"{what}: expected an object, got {type(value).__name__}")
    return value


def _field(obj: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in obj:
        raise GitHubPayloadError(f"{what}: missing field '{key}'")
    return obj[key]


def _str(obj: Mapping[str, Any], key: str, what: str) -> str:
    value = _field(obj, key, what)
    if not isinstance(value, str):
        raise GitHubPayloadError(f"{what}.{key}: expected a string, got {value!r}")
    return value


def _opt_str(obj: Mapping[str, Any], key: str, what: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise GitHubPayloadError(f"{what}.{key}: expected a string or null, got {value!r}")
    return value


def _int(obj: Mapping[str, Any], key: str, what: str, default: int | None = None) -> int:
    value = obj.get(key, default) if default is not None else _field(obj, key, what)
    if value is None and default is not None:
        value = default
    if isinstance(value, bool) or not isinstance(value, int):
        raise GitHubPayloadError(f"{what}.{key}: expected an integer, got {value!r}")
    return value


def _bool(obj: Mapping[str, Any], key: str, what: str, default: bool = False) -> bool:
    value = obj.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise GitHubPayloadError(f"{what}.{key}: expected true/false, got {value!r}")
    return value


def parse_timestamp(value: Any, what: str = "timestamp") -> datetime:
    """An ISO 8601 timestamp (``2019-05-15T15:20:33Z`` or with an offset) as naive UTC."""
    return iso_utc(value, what, GitHubPayloadError)


def _ts(obj: Mapping[str, Any], key: str, what: str) -> datetime:
    return parse_timestamp(_field(obj, key, what), f"{what}.{key}")


def _opt_ts(obj: Mapping[str, Any], key: str, what: str) -> datetime | None:
    value = obj.get(key)
    return None if value is None else parse_timestamp(value, f"{what}.{key}")


def _nodes(obj: Mapping[str, Any], key: str, what: str) -> list[Mapping[str, Any]]:
    """``obj[key].nodes`` of a GraphQL connection; a null connection or null node is skipped."""
    conn = obj.get(key)
    if conn is None:
        return []
    nodes = _mapping(conn, f"{what}.{key}").get("nodes") or []
    if not isinstance(nodes, list):
        raise GitHubPayloadError(f"{what}.{key}.nodes: expected a list, got {nodes!r}")
    return [_mapping(n, f"{what}.{key}.nodes[{i}]") for i, n in enumerate(nodes) if n is not None]


def _actor(value: Any, what: str, type_key: str) -> tuple[str, bool]:
    """(login, is_bot) of a GraphQL actor (``__typename``) or REST user (``type``).

    A deleted account comes back as null; it is reported as login ``ghost`` like GitHub does.
    """
    if value is None:
        return "ghost", False
    actor = _mapping(value, what)
    login = _str(actor, "login", what)
    kind = actor.get(type_key)
    return login, kind == "Bot" or login.lower().endswith("[bot]")


def _pr_state(state: str, merged: bool, what: str) -> str:
    lowered = state.lower()
    if lowered not in {"open", "closed", "merged"}:
        raise GitHubPayloadError(f"{what}.state: unknown pull request state {state!r}")
    if lowered == "closed" and merged:
        return "merged"
    return lowered


# --------------------------------------------------------------------------- pull requests


def parse_review_node(node: Any) -> ReviewRecord:
    """A review from the GraphQL ``reviews`` connection."""
    what = "review"
    n = _mapping(node, what)
    login, is_bot = _actor(n.get("author"), f"{what}.author", "__typename")
    state = _str(n, "state", what).upper()
    return ReviewRecord(
        provider_id=str(_int(n, "databaseId", what)),
        author_login=login,
        author_is_bot=is_bot,
        state=state,
        submitted_at=_opt_ts(n, "submittedAt", what),
        dismissed=state == "DISMISSED",
    )


def parse_pr_node(node: Any) -> PullRequestRecord:
    """A pull request node as returned by :data:`PULL_REQUESTS_QUERY`."""
    n = _mapping(node, "pull request node")
    what = f"pull request #{n.get('number', '?')}"
    login, is_bot = _actor(n.get("author"), f"{what}.author", "__typename")
    merged_at = _opt_ts(n, "mergedAt", what)
    state = _pr_state(_str(n, "state", what), merged_at is not None, what)
    merge_commit = n.get("mergeCommit")
    merge_sha = None
    if merge_commit is not None and state == "merged":
        mc_what = f"{what}.mergeCommit"
        merge_sha = _str(_mapping(merge_commit, mc_what), "oid", mc_what)
    # the earliest ready-for-review event, whatever order the payload lists them in
    ready_times = [
        _ts(e, "createdAt", f"{what}.timelineItems")
        for e in _nodes(n, "timelineItems", what)
        if e.get("createdAt") is not None
    ]
    ready_at = min(ready_times) if ready_times else None
    authored = []
    for c in _nodes(n, "commits", what):
        commit = _mapping(_field(c, "commit", f"{what}.commits"), f"{what}.commits.commit")
        at = _opt_ts(commit, "authoredDate", f"{what}.commits.commit")
        if at is not None:
            authored.append(at)
    first_commit_at = min(authored) if authored else None
    is_draft = _bool(n, "isDraft", what)
    return PullRequestRecord(
        number=_int(n, "number", what),
        title=_str(n, "title", what),
        url=_opt_str(n, "url", what),
        author_login=login,
        author_is_bot=is_bot,
        state=state,
        is_draft=is_draft,
        was_draft=is_draft or ready_at is not None,
        created_at=_ts(n, "createdAt", what),
        updated_at=_ts(n, "updatedAt", what),
        ready_at=ready_at,
        merged_at=merged_at,
        closed_at=_opt_ts(n, "closedAt", what),
        merge_commit_sha=merge_sha,
        base_ref=_str(n, "baseRefName", what),
        head_ref=_str(n, "headRefName", what),
        additions=_int(n, "additions", what, 0),
        deletions=_int(n, "deletions", what, 0),
        changed_files=_int(n, "changedFiles", what, 0),
        labels=tuple(_str(lbl, "name", f"{what}.labels") for lbl in _nodes(n, "labels", what)),
        first_commit_at=first_commit_at,
        reviews=tuple(parse_review_node(r) for r in _nodes(n, "reviews", what)),
        files=tuple(
            FileRecord(
                path=_str(f, "path", f"{what}.files"),
                additions=_int(f, "additions", f"{what}.files", 0),
                deletions=_int(f, "deletions", f"{what}.files", 0),
            )
            for f in _nodes(n, "files", what)
        ),
    )


def parse_pull_requests_response(response: Any) -> PullRequestPage:
    """One page of :data:`PULL_REQUESTS_QUERY` (the whole body, or just its ``data``)."""
    body = _mapping(response, "GraphQL response")
    errors = body.get("errors")
    if errors:
        raise GitHubPayloadError(f"GraphQL response has errors: {errors!r}")
    data = _mapping(body["data"], "GraphQL data") if "data" in body else body
    repo = data.get("repository")
    if repo is None:
        raise GitHubPayloadError("GraphQL data: repository is null (not found or no access)")
    conn = _mapping(
        _field(_mapping(repo, "repository"), "pullRequests", "repository"),
        "repository.pullRequests",
    )
    page_info = _mapping(_field(conn, "pageInfo", "pullRequests"), "pullRequests.pageInfo")
    rate = data.get("rateLimit")
    rate_limit = None
    if rate is not None:
        r = _mapping(rate, "rateLimit")
        rate_limit = RateLimit(
            cost=_int(r, "cost", "rateLimit"),
            remaining=_int(r, "remaining", "rateLimit"),
            reset_at=_ts(r, "resetAt", "rateLimit"),
        )
    return PullRequestPage(
        pull_requests=tuple(
            parse_pr_node(p) for p in _nodes(data["repository"], "pullRequests", "repository")
        ),
        has_next_page=_bool(page_info, "hasNextPage", "pageInfo"),
        end_cursor=_opt_str(page_info, "endCursor", "pageInfo"),
        rate_limit=rate_limit,
    )


def parse_rest_pull(payload: Any) -> PullRequestRecord:
    """A REST ``pull request`` object (also the webhook ``pull_request``).

    REST has no ready-for-review time, so ``ready_at`` is None and ``was_draft`` is the current
    draft flag. ``merge_commit_sha`` is kept only for merged PRs (REST fills it with a test merge
    for open ones). A PR is merged when it is closed and ``merged`` or ``merged_at`` says so.
    """
    p = _mapping(payload, "pull request")
    what = f"pull request #{p.get('number', '?')}"
    login, is_bot = _actor(p.get("user"), f"{what}.user", "type")
    merged_at = _opt_ts(p, "merged_at", what)
    merged = _bool(p, "merged", what) or merged_at is not None
    state = _pr_state(_str(p, "state", what), merged, what)
    base = _mapping(_field(p, "base", what), f"{what}.base")
    head = _mapping(_field(p, "head", what), f"{what}.head")
    labels = _field(p, "labels", what) if "labels" in p else []
    if not isinstance(labels, list):
        raise GitHubPayloadError(f"{what}.labels: expected a list, got {labels!r}")
    is_draft = _bool(p, "draft", what)
    return PullRequestRecord(
        number=_int(p, "number", what),
        title=_str(p, "title", what),
        url=_opt_str(p, "html_url", what),
        author_login=login,
        author_is_bot=is_bot,
        state=state,
        is_draft=is_draft,
        was_draft=is_draft,
        created_at=_ts(p, "created_at", what),
        updated_at=_ts(p, "updated_at", what),
        ready_at=None,
        merged_at=merged_at,
        closed_at=_opt_ts(p, "closed_at", what),
        merge_commit_sha=_opt_str(p, "merge_commit_sha", what) if state == "merged" else None,
        base_ref=_str(base, "ref", f"{what}.base"),
        head_ref=_str(head, "ref", f"{what}.head"),
        additions=_int(p, "additions", what, 0),
        deletions=_int(p, "deletions", what, 0),
        changed_files=_int(p, "changed_files", what, 0),
        labels=tuple(
            _str(_mapping(lbl, f"{what}.labels"), "name", f"{what}.labels") for lbl in labels
        ),
    )


def parse_rest_review(payload: Any) -> ReviewRecord:
    """A REST review, or the webhook ``review`` (whose states are lowercase)."""
    what = "review"
    r = _mapping(payload, what)
    login, is_bot = _actor(r.get("user"), f"{what}.user", "type")
    state = _str(r, "state", what).upper()
    return ReviewRecord(
        provider_id=str(_int(r, "id", what)),
        author_login=login,
        author_is_bot=is_bot,
        state=state,
        submitted_at=_opt_ts(r, "submitted_at", what),
        dismissed=state == "DISMISSED",
    )


# --------------------------------------------------------------------------- deployments


def deployment_outcome(statuses: Iterable[Any]) -> tuple[str, datetime | None]:
    """(state, finished_at) of a deployment from its statuses, in any order.

    METRICS.md: the outcome is the latest status other than ``inactive``; it finished at that
    status's time. A latest status that is not terminal (``queued``, ``in_progress``...) gives
    that state and no finish time; no status at all gives ``("pending", None)``. Ties in time
    are broken by status id, then by position (later wins).
    """
    best: tuple[datetime, int, int] | None = None
    best_state = "pending"
    for pos, raw in enumerate(statuses):
        s = _mapping(raw, "deployment status")
        state = _str(s, "state", "deployment status").lower()
        if state == "inactive":
            continue
        at = _ts(s, "created_at", "deployment status")
        sid = s.get("id")
        key = (at, sid if isinstance(sid, int) and not isinstance(sid, bool) else 0, pos)
        if best is None or key > best:
            best, best_state = key, state
    if best is None:
        return "pending", None
    return best_state, best[0] if best_state in TERMINAL_DEPLOYMENT_STATES else None


def parse_deployment(payload: Any, statuses: Sequence[Any] = ()) -> DeploymentRecord:
    """A REST/webhook ``deployment`` with its statuses (see :func:`deployment_outcome`)."""
    what = "deployment"
    d = _mapping(payload, what)
    status, finished_at = deployment_outcome(statuses)
    return DeploymentRecord(
        source="deployment",
        provider_id=str(_int(d, "id", what)),
        environment=_str(d, "environment", what),
        commit_sha=_str(d, "sha", what),
        ref=_opt_str(d, "ref", what),
        status=status,
        started_at=_opt_ts(d, "created_at", what),
        finished_at=finished_at,
        # the payload's url is the API's; GitHub gives a deployment no page of its own (nor
        # does the sync's GraphQL), so both paths store none
        url=None,
    )


def parse_workflow_run(payload: Any, environment: str = "production") -> DeploymentRecord:
    """A workflow run (REST or webhook ``workflow_run``) used as a deployment.

    A completed run's status is its conclusion and it finished at ``updated_at``; a run still
    going keeps its status (``queued``, ``in_progress``) and has no finish time.
    """
    w = _mapping(payload, "workflow run")
    what = f"workflow run {w.get('id', '?')}"
    run_status = _str(w, "status", what)
    finished_at = None
    if run_status == "completed":
        conclusion = _opt_str(w, "conclusion", what)
        if conclusion is None:
            raise GitHubPayloadError(f"{what}: completed run without a conclusion")
        status = conclusion
        finished_at = _ts(w, "updated_at", what)
    else:
        status = run_status
    started_at = _opt_ts(w, "run_started_at", what) or _opt_ts(w, "created_at", what)
    return DeploymentRecord(
        source="workflow_run",
        provider_id=str(_int(w, "id", what)),
        environment=environment,
        commit_sha=_str(w, "head_sha", what),
        ref=_opt_str(w, "head_branch", what),
        status=status,
        started_at=started_at,
        finished_at=finished_at,
        url=_opt_str(w, "html_url", what),
    )


def parse_release(payload: Any, environment: str = "production") -> DeploymentRecord:
    """A release (REST or webhook ``release``) used as a deployment.

    A published, non-draft release succeeded at ``published_at``; a draft is ``pending``. The
    commit is unknown until the tag is resolved, so ``commit_sha`` is None and ``ref`` is the tag.
    """
    r = _mapping(payload, "release")
    what = f"release {r.get('id', '?')}"
    published_at = _opt_ts(r, "published_at", what)
    done = not _bool(r, "draft", what) and published_at is not None
    return DeploymentRecord(
        source="release",
        provider_id=str(_int(r, "id", what)),
        environment=environment,
        commit_sha=None,
        ref=_str(r, "tag_name", what),
        status="success" if done else "pending",
        started_at=_opt_ts(r, "created_at", what),
        finished_at=published_at if done else None,
        url=_opt_str(r, "html_url", what),
    )


# --------------------------------------------------------------------------- repository sync


@dataclass(frozen=True)
class Connection(Generic[T]):
    """One page of a GraphQL connection (or REST list)."""

    items: tuple[T, ...]
    has_next_page: bool
    end_cursor: str | None


@dataclass(frozen=True)
class IncompletePull:
    """A pull request whose reviews or files did not fit on its page: where to go on."""

    number: int
    reviews_cursor: str | None
    files_cursor: str | None


@dataclass(frozen=True)
class RepositoryPage:
    """One answer to :data:`REPOSITORY_SYNC_QUERY`; a connection not asked for is None."""

    database_id: int | None
    full_name: str | None
    default_branch: str | None
    pulls: Connection[PullRequestRecord] | None
    incomplete_pulls: tuple[IncompletePull, ...]
    history: Connection[CommitRecord] | None
    deployments: Connection[DeploymentRecord] | None
    releases: Connection[DeploymentRecord] | None
    issues: Connection[IssueRecord] | None
    rate_limit: RateLimit | None


@dataclass(frozen=True)
class PullRequestDetails:
    reviews: Connection[ReviewRecord] | None
    files: Connection[FileRecord] | None


def _page_info(conn: Mapping[str, Any], what: str) -> tuple[bool, str | None]:
    info = conn.get("pageInfo")
    if info is None:
        return False, None
    pi = _mapping(info, f"{what}.pageInfo")
    return _bool(pi, "hasNextPage", f"{what}.pageInfo"), _opt_str(
        pi, "endCursor", f"{what}.pageInfo"
    )


def _connection(
    parent: Mapping[str, Any], key: str, what: str, parse: Callable[[Any], T]
) -> Connection[T] | None:
    if key not in parent:
        return None
    raw = parent[key]
    if raw is None:
        return Connection((), False, None)
    conn = _mapping(raw, f"{what}.{key}")
    has_next, cursor = _page_info(conn, f"{what}.{key}")
    return Connection(tuple(parse(n) for n in _nodes(parent, key, what)), has_next, cursor)


def _rate_limit(data: Mapping[str, Any]) -> RateLimit | None:
    rate = data.get("rateLimit")
    if rate is None:
        return None
    r = _mapping(rate, "rateLimit")
    return RateLimit(
        cost=_int(r, "cost", "rateLimit"),
        remaining=_int(r, "remaining", "rateLimit"),
        reset_at=_ts(r, "resetAt", "rateLimit"),
    )


def parse_commit_node(node: Any) -> CommitRecord:
    """A commit of the default branch's ``history`` (GraphQL), with its parents."""
    n = _mapping(node, "commit")
    what = f"commit {n.get('oid', '?')}"
    return CommitRecord(
        sha=_str(n, "oid", what),
        parents=tuple(_str(p, "oid", f"{what}.parents") for p in _nodes(n, "parents", what)),
        authored_at=_opt_ts(n, "authoredDate", what),
        committed_at=_opt_ts(n, "committedDate", what),
    )


def parse_rest_commit(payload: Any) -> CommitRecord:
    """A REST commit (list commits, compare ``commits``), with its parents."""
    c = _mapping(payload, "commit")
    what = f"commit {c.get('sha', '?')}"
    inner = _mapping(_field(c, "commit", what), f"{what}.commit")
    author = inner.get("author")
    committer = inner.get("committer")
    parents = _field(c, "parents", what)
    if not isinstance(parents, list):
        raise GitHubPayloadError(f"{what}.parents: expected a list, got {parents!r}")
    return CommitRecord(
        sha=_str(c, "sha", what),
        parents=tuple(
            _str(_mapping(p, f"{what}.parents"), "sha", f"{what}.parents") for p in parents
        ),
        authored_at=_opt_ts(_mapping(author, f"{what}.author"), "date", f"{what}.author")
        if author is not None
        else None,
        committed_at=_opt_ts(_mapping(committer, f"{what}.committer"), "date", f"{what}.committer")
        if committer is not None
        else None,
    )


def parse_deployment_node(node: Any) -> DeploymentRecord:
    """A GraphQL ``Deployment`` with its statuses (outcome as :func:`deployment_outcome`)."""
    n = _mapping(node, "deployment")
    what = f"deployment {n.get('databaseId', '?')}"
    statuses: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    raw = list(_nodes(n, "statuses", what))
    latest = n.get("latestStatus")
    if latest is not None:
        raw.append(_mapping(latest, f"{what}.latestStatus"))
    for s in raw:
        key = (_str(s, "state", f"{what}.statuses"), _str(s, "createdAt", f"{what}.statuses"))
        if key in seen:
            continue
        seen.add(key)
        statuses.append({"state": key[0].lower(), "created_at": key[1]})
    status, finished_at = deployment_outcome(statuses)
    ref = n.get("ref")
    return DeploymentRecord(
        source="deployment",
        provider_id=str(_int(n, "databaseId", what)),
        environment=_opt_str(n, "environment", what) or "",
        commit_sha=_str(n, "commitOid", what),
        ref=_opt_str(_mapping(ref, f"{what}.ref"), "name", f"{what}.ref") if ref else None,
        status=status,
        started_at=_opt_ts(n, "createdAt", what),
        finished_at=finished_at,
        url=None,
    )


def parse_release_node(node: Any, environment: str = "production") -> DeploymentRecord:
    """A GraphQL ``Release`` as a deployment of its tag's commit (like :func:`parse_release`)."""
    n = _mapping(node, "release")
    what = f"release {n.get('databaseId', '?')}"
    published_at = _opt_ts(n, "publishedAt", what)
    done = not _bool(n, "isDraft", what) and published_at is not None
    tag_commit = n.get("tagCommit")
    sha = None
    if tag_commit is not None:
        sha = _str(_mapping(tag_commit, f"{what}.tagCommit"), "oid", f"{what}.tagCommit")
    return DeploymentRecord(
        source="release",
        provider_id=str(_int(n, "databaseId", what)),
        environment=environment,
        commit_sha=sha,
        ref=_str(n, "tagName", what),
        status="success" if done else "pending",
        started_at=_opt_ts(n, "createdAt", what),
        finished_at=published_at if done else None,
        url=_opt_str(n, "url", what),
    )


def _closed_at(obj: Mapping[str, Any], state_key: str, key: str, what: str) -> datetime | None:
    """When an issue was closed, or None while it is open: a reopened issue still carries
    the time of its last close, so an ``open`` state wins over the timestamp."""
    closed = _opt_ts(obj, key, what)
    if str(obj.get(state_key) or "").lower() == "open":
        return None
    return closed


def parse_issue_node(node: Any) -> IssueRecord:
    """A GraphQL ``Issue`` (an incident candidate)."""
    n = _mapping(node, "issue")
    what = f"issue #{n.get('number', '?')}"
    reopens = [
        _ts(e, "createdAt", f"{what}.timelineItems")
        for e in (_nodes(n, "timelineItems", what) if "timelineItems" in n else [])
        if e.get("createdAt") is not None
    ]
    return IssueRecord(
        number=_int(n, "number", what),
        title=_str(n, "title", what),
        url=_opt_str(n, "url", what),
        body=_opt_str(n, "body", what) or "",
        created_at=_ts(n, "createdAt", what),
        updated_at=_ts(n, "updatedAt", what),
        closed_at=_closed_at(n, "state", "closedAt", what),
        labels=tuple(_str(lbl, "name", f"{what}.labels") for lbl in _nodes(n, "labels", what)),
        reopened_at=max(reopens) if reopens else None,
    )


def parse_rest_issue(payload: Any) -> IssueRecord:
    """A REST issue (list issues, the webhook ``issue``); pull requests are flagged."""
    i = _mapping(payload, "issue")
    what = f"issue #{i.get('number', '?')}"
    labels = i.get("labels") or []
    if not isinstance(labels, list):
        raise GitHubPayloadError(f"{what}.labels: expected a list, got {labels!r}")
    names = []
    for lbl in labels:
        if isinstance(lbl, str):  # the REST API accepts and sometimes returns plain names
            names.append(lbl)
        else:
            names.append(_str(_mapping(lbl, f"{what}.labels"), "name", f"{what}.labels"))
    return IssueRecord(
        number=_int(i, "number", what),
        title=_str(i, "title", what),
        url=_opt_str(i, "html_url", what),
        body=_opt_str(i, "body", what) or "",
        created_at=_ts(i, "created_at", what),
        updated_at=_ts(i, "updated_at", what),
        closed_at=_closed_at(i, "state", "closed_at", what),
        labels=tuple(names),
        is_pull_request=i.get("pull_request") is not None,
    )


def parse_repository_sync_response(data: Any, environment: str = "production") -> RepositoryPage:
    """The ``data`` of one :data:`REPOSITORY_SYNC_QUERY` answer.

    ``environment`` is the one releases are recorded in (the team's production environment).
    """
    d = _mapping(data, "GraphQL data")
    repo = d.get("repository")
    if repo is None:
        raise GitHubPayloadError("GraphQL data: repository is null (not found or no access)")
    r = _mapping(repo, "repository")
    what = "repository"
    branch = r.get("defaultBranchRef")
    default_branch = None
    history = None
    if branch is not None:
        b = _mapping(branch, f"{what}.defaultBranchRef")
        default_branch = _opt_str(b, "name", f"{what}.defaultBranchRef")
        if "target" in b:
            target = b["target"]
            t = _mapping(target, f"{what}.defaultBranchRef.target") if target is not None else {}
            history = _connection(t, "history", "defaultBranchRef.target", parse_commit_node)
            if history is None:
                history = Connection((), False, None)
    elif "pullRequests" in r or "deployments" in r:
        history = None
    incomplete: list[IncompletePull] = []
    pulls_raw = r.get("pullRequests")
    if pulls_raw is not None:
        for n in _nodes(r, "pullRequests", what):
            more_reviews = _page_info(_mapping(n.get("reviews") or {}, "reviews"), "reviews")
            more_files = _page_info(_mapping(n.get("files") or {}, "files"), "files")
            if more_reviews[0] or more_files[0]:
                incomplete.append(
                    IncompletePull(
                        _int(n, "number", "pull request"),
                        more_reviews[1] if more_reviews[0] else None,
                        more_files[1] if more_files[0] else None,
                    )
                )
    return RepositoryPage(
        database_id=r.get("databaseId") if isinstance(r.get("databaseId"), int) else None,
        full_name=_opt_str(r, "nameWithOwner", what),
        default_branch=default_branch,
        pulls=_connection(r, "pullRequests", what, parse_pr_node),
        incomplete_pulls=tuple(incomplete),
        history=history,
        deployments=_connection(r, "deployments", what, parse_deployment_node),
        releases=_connection(r, "releases", what, lambda n: parse_release_node(n, environment)),
        issues=_connection(r, "issues", what, parse_issue_node),
        rate_limit=_rate_limit(d),
    )


def parse_commit_histories_response(data: Any, count: int) -> list[Connection[CommitRecord] | None]:
    """The ``data`` of one :func:`commit_histories_query` answer: per alias, its history page,
    or None when GitHub has no commit with that id (``object`` is null or not a commit)."""
    d = _mapping(data, "GraphQL data")
    repo = d.get("repository")
    if repo is None:
        raise GitHubPayloadError("GraphQL data: repository is null (not found or no access)")
    r = _mapping(repo, "repository")
    out: list[Connection[CommitRecord] | None] = []
    for i in range(count):
        obj = r.get(f"c{i}")
        if obj is None:
            out.append(None)
            continue
        o = _mapping(obj, f"repository.c{i}")
        out.append(_connection(o, "history", f"repository.c{i}", parse_commit_node))
    return out


def parse_team_members_response(data: Any) -> Connection[str] | None:
    """One page of a team's members (logins, lower case); None when the organisation has
    no such team (or the token may not see it)."""
    root = _mapping(data, "response")
    org = root.get("organization")
    if org is None:
        return None
    team = _mapping(org, "organization").get("team")
    if team is None:
        return None
    return _connection(
        _mapping(team, "organization.team"),
        "members",
        "organization.team",
        lambda n: _str(_mapping(n, "member"), "login", "member").lower(),
    )


def parse_pull_request_details_response(data: Any) -> PullRequestDetails:
    """The ``data`` of one :data:`PULL_REQUEST_DETAILS_QUERY` answer."""
    d = _mapping(data, "GraphQL data")
    repo = _mapping(d.get("repository"), "repository")
    pr = repo.get("pullRequest")
    if pr is None:
        return PullRequestDetails(None, None)
    p = _mapping(pr, "pullRequest")
    return PullRequestDetails(
        reviews=_connection(p, "reviews", "pullRequest", parse_review_node),
        files=_connection(
            p,
            "files",
            "pullRequest",
            lambda f: FileRecord(
                path=_str(f, "path", "pullRequest.files"),
                additions=_int(f, "additions", "pullRequest.files", 0),
                deletions=_int(f, "deletions", "pullRequest.files", 0),
            ),
        ),
    )
