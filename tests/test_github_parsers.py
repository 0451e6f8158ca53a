"""GitHub parsers and GraphQL query: the query is checked against GitHub's published schema and
the parsers against real recorded payloads under ``/work/shared/fixtures`` (see SOURCES.md for
their known defects)."""

from __future__ import annotations

import contextlib
import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import graphql
import pytest

from bot.sources.github import (
    DEFAULT_BRANCH_QUERY,
    PULL_REQUESTS_QUERY,
    GitHubPayloadError,
    deployment_outcome,
    parse_deployment,
    parse_pr_node,
    parse_pull_requests_response,
    parse_release,
    parse_rest_pull,
    parse_rest_review,
    parse_timestamp,
    parse_workflow_run,
)
from tests.conftest import fixtures_dir


def load(*parts: str) -> Any:
    return json.loads(fixtures_dir().joinpath(*parts).read_text(encoding="utf-8"))


def webhook(event: str, name: str) -> Any:
    return load("octokit-webhooks", "payload-examples", "api.github.com", event, name)


def example(name: str) -> Any:
    return load("github-openapi-examples", "components", "examples", f"{name}.json")


# --------------------------------------------------------------------------- the query


@pytest.fixture(scope="module")
def schema() -> Any:
    path: Path = fixtures_dir() / "github-graphql-schema" / "schema.graphql"
    # The published SDL defines two EnterpriseOwnerInfo fields twice (see its README), so strict
    # SDL validation fails; query validation works on the schema built without it.
    sdl = path.read_text(encoding="utf-8")
    return graphql.build_schema(sdl, assume_valid_sdl=True, assume_valid=True)


@pytest.mark.parametrize("query", [PULL_REQUESTS_QUERY, DEFAULT_BRANCH_QUERY])
def test_query_is_valid_against_githubs_schema(schema: Any, query: str) -> None:
    assert graphql.validate(schema, graphql.parse(query)) == []


def test_schema_validation_is_not_vacuous(schema: Any) -> None:
    bad = PULL_REQUESTS_QUERY.replace("changedFiles", "changedFilez")
    errors = graphql.validate(schema, graphql.parse(bad))
    assert errors and "changedFilez" in errors[0].message


def test_query_asks_for_what_the_parser_needs() -> None:
    for needle in (
        "UPDATED_AT",
        "DESC",
        "$pageSize",
        "$cursor",
        "READY_FOR_REVIEW_EVENT",
        "pageInfo",
        "rateLimit",
        "resetAt",
        "mergeCommit { oid }",
        "authoredDate",
    ):
        assert needle in PULL_REQUESTS_QUERY


# --------------------------------------------------------------------------- GraphQL nodes

PR_NODE: dict[str, Any] = {
    "number": 42,
    "title": "Add retry to payments client",
    "url": "https://github.com/acme/payments/pull/42",
    "author": {"login": "alice", "__typename": "User"},
    "createdAt": "2026-11-02T09:00:00Z",
    "updatedAt": "2026-11-04T16:30:12Z",
    "isDraft": False,
    "state": "MERGED",
    "mergedAt": "2026-11-04T16:30:00Z",
    "closedAt": "2026-11-04T16:30:00Z",
    "mergeCommit": {"oid": "0123456789abcdef0123456789abcdef01234567"},
    "baseRefName": "main",
    "headRefName": "alice/retry",
    "additions": 120,
    "deletions": 7,
    "changedFiles": 2,
    "labels": {"nodes": [{"name": "payments"}, {"name": "reliability"}]},
    "timelineItems": {"nodes": [{"createdAt": "2026-11-03T10:15:00Z"}]},
    "commits": {"nodes": [{"commit": {"authoredDate": "2026-11-01T22:10:05+02:00"}}]},
    "reviews": {
        "nodes": [
            {
                "databaseId": 9001,
                "author": {"login": "coderabbitai", "__typename": "Bot"},
                "state": "COMMENTED",
                "submittedAt": "2026-11-03T10:16:00Z",
            },
            {
                "databaseId": 9002,
                "author": {"login": "bob", "__typename": "User"},
                "state": "DISMISSED",
                "submittedAt": "2026-11-03T12:00:00Z",
            },
            {
                "databaseId": 9003,
                "author": {"login": "carol", "__typename": "User"},
                "state": "APPROVED",
                "submittedAt": "2026-11-04T15:59:59.123Z",
            },
        ]
    },
    "files": {
        "nodes": [
            {"path": "payments/client.py", "additions": 100, "deletions": 7},
            {"path": "tests/test_client.py", "additions": 20, "deletions": 0},
        ]
    },
}


def test_parse_pr_node_takes_the_earliest_ready_event_whatever_the_order() -> None:
    # a PR made ready, turned back into a draft and made ready again; the payload lists the
    # later event first
    node = {
        **PR_NODE,
        "timelineItems": {
            "nodes": [
                {"createdAt": "2026-11-04T08:00:00Z"},
                {"createdAt": "2026-11-03T10:15:00Z"},
                {},
            ]
        },
    }
    assert parse_pr_node(node).ready_at == datetime(2026, 11, 3, 10, 15)


def test_parse_pr_node_merged_draft_with_ready_event() -> None:
    pr = parse_pr_node(PR_NODE)
    assert pr.number == 42
    assert pr.title == "Add retry to payments client"
    assert pr.url == "https://github.com/acme/payments/pull/42"
    assert (pr.author_login, pr.author_is_bot) == ("alice", False)
    assert pr.state == "merged"
    assert (pr.is_draft, pr.was_draft) == (False, True)
    assert pr.ready_at == datetime(2026, 11, 3, 10, 15)
    assert pr.created_at == datetime(2026, 11, 2, 9, 0)
    assert pr.updated_at == datetime(2026, 11, 4, 16, 30, 12)
    assert pr.merged_at == datetime(2026, 11, 4, 16, 30)
    assert pr.merge_commit_sha == "0123456789abcdef0123456789abcdef01234567"
    # +02:00 converted to naive UTC
    assert pr.first_commit_at == datetime(2026, 11, 1, 20, 10, 5)
    assert (pr.base_ref, pr.head_ref) == ("main", "alice/retry")
    assert (pr.additions, pr.deletions, pr.changed_files) == (120, 7, 2)
    assert pr.labels == ("payments", "reliability")
    assert [(f.path, f.additions, f.deletions) for f in pr.files] == [
        ("payments/client.py", 100, 7),
        ("tests/test_client.py", 20, 0),
    ]
    bot, dismissed, approved = pr.reviews
    assert (bot.author_login, bot.author_is_bot, bot.state) == ("coderabbitai", True, "COMMENTED")
    assert (dismissed.provider_id, dismissed.state) == ("9002", "DISMISSED")
    assert dismissed.dismissed
    assert (approved.author_login, approved.dismissed) == ("carol", False)
    assert approved.submitted_at == datetime(2026, 11, 4, 15, 59, 59)  # second precision


def test_parse_pr_node_bot_author_open_never_draft() -> None:
    node = copy.deepcopy(PR_NODE)
    node.update(
        author={"login": "dependabot", "__typename": "Bot"},
        state="OPEN",
        mergedAt=None,
        closedAt=None,
        mergeCommit=None,
        timelineItems={"nodes": []},
        reviews={"nodes": []},
        files=None,  # GitHub returns null for very large diffs
    )
    pr = parse_pr_node(node)
    assert (pr.author_login, pr.author_is_bot) == ("dependabot", True)
    assert pr.state == "open"
    assert (pr.is_draft, pr.was_draft, pr.ready_at) == (False, False, None)
    assert pr.merge_commit_sha is None and pr.merged_at is None
    assert pr.reviews == () and pr.files == ()


def test_parse_pr_node_current_draft_and_deleted_author() -> None:
    node = copy.deepcopy(PR_NODE)
    node.update(
        author=None,
        isDraft=True,
        state="OPEN",
        mergedAt=None,
        closedAt=None,
        timelineItems={"nodes": [{}]},
    )  # a non-matching fragment yields an empty object
    pr = parse_pr_node(node)
    assert (pr.author_login, pr.author_is_bot) == ("ghost", False)
    assert (pr.is_draft, pr.was_draft, pr.ready_at) == (True, True, None)


def test_bot_login_suffix_counts_as_bot() -> None:
    node = copy.deepcopy(PR_NODE)
    node["author"] = {"login": "renovate[bot]", "__typename": "User"}
    assert parse_pr_node(node).author_is_bot


def test_parse_pull_requests_response_page() -> None:
    body = {
        "data": {
            "rateLimit": {"cost": 1, "remaining": 4999, "resetAt": "2026-11-22T09:00:00Z"},
            "repository": {
                "pullRequests": {
                    "pageInfo": {"hasNextPage": True, "endCursor": "Y3Vyc29yOnYyOpK5"},
                    "nodes": [PR_NODE],
                }
            },
        }
    }
    page = parse_pull_requests_response(body)
    assert [p.number for p in page.pull_requests] == [42]
    assert (page.has_next_page, page.end_cursor) == (True, "Y3Vyc29yOnYyOpK5")
    assert page.rate_limit is not None
    assert (page.rate_limit.cost, page.rate_limit.remaining) == (1, 4999)
    assert page.rate_limit.reset_at == datetime(2026, 11, 22, 9, 0)


def test_parse_pull_requests_response_errors() -> None:
    with pytest.raises(GitHubPayloadError, match="errors"):
        parse_pull_requests_response({"data": None, "errors": [{"message": "Bad credentials"}]})
    with pytest.raises(GitHubPayloadError, match="repository is null"):
        parse_pull_requests_response({"data": {"repository": None}})


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda n: n.pop("createdAt"), "missing field 'createdAt'"),
        (lambda n: n.update(number="42"), "number: expected an integer"),
        (lambda n: n.update(state="WEIRD"), "unknown pull request state"),
        (lambda n: n.update(mergedAt="yesterday"), "not an ISO 8601 timestamp"),
        (lambda n: n.update(author="alice"), "author: expected an object"),
        (lambda n: n.update(labels={"nodes": "x"}), "labels.nodes: expected a list"),
        (lambda n: n["reviews"]["nodes"][0].pop("state"), "missing field 'state'"),
        (lambda n: n.update(isDraft="no"), "isDraft: expected true/false"),
    ],
)
def test_parse_pr_node_malformed(mutate: Any, message: str) -> None:
    node = copy.deepcopy(PR_NODE)
    mutate(node)
    with pytest.raises(GitHubPayloadError, match=message) as info:
        parse_pr_node(node)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("bad", [None, [], "node", 3])
def test_non_objects_raise_value_error(bad: Any) -> None:
    for parser in (
        parse_pr_node,
        parse_rest_pull,
        parse_rest_review,
        parse_workflow_run,
        parse_release,
        parse_deployment,
    ):
        with pytest.raises(ValueError, match="expected an object"):
            parser(bad)


def test_octokit_placeholder_timestamp_is_rejected_clearly() -> None:
    # the octokit.rb reviews cassette has this corrupted submitted_at (SOURCES.md)
    with pytest.raises(GitHubPayloadError, match="not an ISO 8601 timestamp"):
        parse_timestamp("2016-11-29T17:59:<GITHUB_TEST_INTEGRATION>Z", "submitted_at")


# --------------------------------------------------------------------------- webhook payloads


@pytest.mark.parametrize(
    ("name", "state", "draft", "updated"),
    [
        ("opened.payload.json", "open", False, datetime(2019, 5, 15, 15, 20, 33)),
        ("opened.with-null-body.json", "open", False, datetime(2019, 5, 15, 15, 20, 33)),
        ("reopened.payload.json", "open", False, datetime(2019, 5, 15, 15, 20, 33)),
        ("synchronize.payload.json", "open", False, datetime(2019, 5, 15, 15, 20, 33)),
        ("review_requested.payload.json", "open", False, datetime(2019, 5, 15, 15, 20, 33)),
        ("labeled.payload.json", "open", False, datetime(2019, 5, 15, 15, 20, 35)),
        ("ready_for_review.payload.json", "open", False, datetime(2019, 5, 15, 15, 21, 18)),
        ("converted_to_draft.payload.json", "open", True, datetime(2019, 5, 15, 15, 21, 18)),
        ("closed.payload.json", "closed", False, datetime(2019, 5, 15, 15, 21, 18)),
    ],
)
def test_webhook_pull_request(name: str, state: str, draft: bool, updated: datetime) -> None:
    pr = parse_rest_pull(webhook("pull_request", name)["pull_request"])
    assert pr.number == 2
    assert pr.title == "Update the README with new information."
    assert pr.url == "https://github.com/Codertocat/Hello-World/pull/2"
    assert (pr.author_login, pr.author_is_bot) == ("Codertocat", False)
    assert (pr.state, pr.is_draft, pr.was_draft) == (state, draft, draft)
    assert pr.created_at == datetime(2019, 5, 15, 15, 20, 33)
    assert pr.updated_at == updated
    assert (pr.base_ref, pr.head_ref) == ("master", "changes")
    assert (pr.additions, pr.changed_files) == (1, 1)
    assert pr.labels == ("bug",)
    assert pr.merged_at is None
    # the test-merge SHA of an unmerged PR is not a merge commit
    assert pr.merge_commit_sha is None


def test_webhook_closed_unmerged_pull_request() -> None:
    pr = parse_rest_pull(webhook("pull_request", "closed.payload.json")["pull_request"])
    assert pr.state == "closed"
    assert pr.closed_at == datetime(2019, 5, 15, 15, 21, 18)


def test_merged_pull_request_derived_from_closed_payload() -> None:
    # octokit-webhooks has no merged pull_request.closed example (SOURCES.md): derive one
    payload = webhook("pull_request", "closed.payload.json")["pull_request"]
    payload.update(merged=True, merged_at="2019-05-15T15:21:18Z")
    pr = parse_rest_pull(payload)
    assert pr.state == "merged"
    assert pr.merged_at == datetime(2019, 5, 15, 15, 21, 18)
    assert pr.merge_commit_sha == "c4295bd74fb0f4fda03689c3df3f2803b658fd85"


def test_rest_bot_user_type() -> None:
    payload = webhook("pull_request", "opened.payload.json")["pull_request"]
    payload["user"] = {"login": "some-app", "type": "Bot"}
    assert parse_rest_pull(payload).author_is_bot


def test_rest_pull_missing_base_is_value_error() -> None:
    payload = webhook("pull_request", "opened.payload.json")["pull_request"]
    del payload["base"]
    with pytest.raises(GitHubPayloadError, match="pull request #2: missing field 'base'"):
        parse_rest_pull(payload)


@pytest.mark.parametrize(
    ("name", "state", "dismissed"),
    [("submitted.payload.json", "COMMENTED", False), ("dismissed.payload.json", "DISMISSED", True)],
)
def test_webhook_review(name: str, state: str, dismissed: bool) -> None:
    payload = webhook("pull_request_review", name)
    assert payload["review"]["state"] == state.lower()  # webhook states are lowercase
    review = parse_rest_review(payload["review"])
    assert review.provider_id == "237895671"
    assert (review.author_login, review.author_is_bot) == ("Codertocat", False)
    assert (review.state, review.dismissed) == (state, dismissed)
    assert review.submitted_at == datetime(2019, 5, 15, 15, 20, 38)


def test_webhook_deployment_status_success() -> None:
    payload = webhook("deployment_status", "payload.json")
    assert deployment_outcome([payload["deployment_status"]]) == (
        "success",
        datetime(2019, 5, 15, 15, 20, 55),
    )
    dep = parse_deployment(payload["deployment"], [payload["deployment_status"]])
    assert dep.source == "deployment"
    assert dep.provider_id == "145988746"
    assert dep.environment == "production"
    assert dep.commit_sha == "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
    assert dep.ref == "master"
    assert (dep.status, dep.finished_at) == ("success", datetime(2019, 5, 15, 15, 20, 55))
    assert dep.started_at == datetime(2019, 5, 15, 15, 20, 53)


def test_webhook_deployment_status_in_progress_is_not_finished() -> None:
    payload = webhook("deployment_status", "gh-pages.payload.json")
    dep = parse_deployment(payload["deployment"], [payload["deployment_status"]])
    assert dep.environment == "github-pages"
    assert (dep.status, dep.finished_at) == ("in_progress", None)
    assert dep.started_at == datetime(2022, 1, 3, 1, 28, 30)


@pytest.mark.parametrize(
    "name", ["completed.payload.json", "completed.with-pull-requests.payload.json"]
)
def test_webhook_workflow_run_completed(name: str) -> None:
    run = parse_workflow_run(webhook("workflow_run", name)["workflow_run"])
    assert run.source == "workflow_run"
    assert run.provider_id == "289782451"
    assert run.environment == "production"
    assert run.commit_sha == "3484a3fb816e0859fd6e1cea078d76385ff50625"
    assert run.ref == "master"
    assert run.status == "success"
    assert run.started_at == datetime(2020, 10, 5, 16, 33, 49)
    assert run.finished_at == datetime(2020, 10, 5, 16, 33, 49)


def test_workflow_run_failure_and_missing_conclusion() -> None:
    run = webhook("workflow_run", "completed.payload.json")["workflow_run"]
    run["conclusion"] = "failure"
    assert parse_workflow_run(run).status == "failure"
    run["conclusion"] = None
    with pytest.raises(GitHubPayloadError, match="completed run without a conclusion"):
        parse_workflow_run(run)


@pytest.mark.parametrize("name", ["published.payload.json", "released.json"])
def test_webhook_release(name: str) -> None:
    rel = parse_release(webhook("release", name)["release"], environment="prod")
    assert rel.source == "release"
    assert rel.provider_id == "17372790"
    assert rel.environment == "prod"
    assert (rel.ref, rel.commit_sha) == ("0.0.1", None)
    assert rel.status == "success"
    assert rel.started_at == datetime(2019, 5, 15, 15, 19, 25)
    assert rel.finished_at == datetime(2019, 5, 15, 15, 20, 53)
    assert rel.url == "https://github.com/Codertocat/Hello-World/releases/tag/0.0.1"


def test_draft_release_is_pending() -> None:
    payload = webhook("release", "published.payload.json")["release"]
    payload.update(draft=True, published_at=None)
    rel = parse_release(payload)
    assert (rel.status, rel.finished_at) == ("pending", None)


# --------------------------------------------------------------------------- REST examples


def test_openapi_pull_request() -> None:
    pr = parse_rest_pull(example("pull-request"))
    assert pr.number == 1347
    assert pr.title == "Amazing new feature"
    assert pr.url == "https://github.com/octocat/Hello-World/pull/1347"
    assert (pr.author_login, pr.author_is_bot) == ("octocat", False)
    # GitHub's documentation example says open while giving merged_at: trust the state
    assert pr.state == "open"
    assert pr.merge_commit_sha is None
    assert pr.merged_at == datetime(2011, 1, 26, 19, 1, 12)
    assert (pr.additions, pr.deletions, pr.changed_files) == (100, 3, 5)
    assert (pr.base_ref, pr.head_ref) == ("master", "new-topic")
    assert pr.labels == ("bug",)


def test_openapi_review_items() -> None:
    reviews = [parse_rest_review(r) for r in example("pull-request-review-items")]
    assert len(reviews) == 1
    (review,) = reviews
    assert review.provider_id == "80"
    assert (review.author_login, review.state, review.dismissed) == ("octocat", "APPROVED", False)
    assert review.submitted_at == datetime(2019, 11, 17, 17, 43, 43)


def test_openapi_deployment_status_items() -> None:
    statuses = example("deployment-status-items")
    assert deployment_outcome(statuses) == ("success", datetime(2012, 7, 20, 1, 19, 13))


def test_openapi_workflow_run_queued() -> None:
    run = parse_workflow_run(example("workflow-run"))
    assert run.provider_id == "30433642"
    assert run.commit_sha == "acb5820ced9479c074f688cc328bf03f341a511d"
    assert run.ref == "main"
    assert (run.status, run.finished_at) == ("queued", None)
    assert run.started_at == datetime(2020, 1, 22, 19, 33, 8)


def test_openapi_release() -> None:
    rel = parse_release(example("release"))
    assert (rel.provider_id, rel.ref, rel.status) == ("1", "v1.0.0", "success")
    assert rel.finished_at == datetime(2013, 2, 27, 19, 35, 32)
    assert rel.url == "https://github.com/octocat/Hello-World/releases/v1.0.0"


# --------------------------------------------------------------------------- deployment outcome


def _status(state: str, at: str, sid: int = 0) -> dict[str, Any]:
    return {"id": sid, "state": state, "created_at": at}


def test_outcome_ignores_inactive_and_order() -> None:
    statuses = [
        _status("inactive", "2026-11-03T12:00:00Z", 4),  # superseded by a later deployment
        _status("success", "2026-11-02T10:05:00Z", 3),
        _status("in_progress", "2026-11-02T10:01:00Z", 2),
        _status("queued", "2026-11-02T10:00:00Z", 1),
    ]
    assert deployment_outcome(statuses) == ("success", datetime(2026, 11, 2, 10, 5))
    assert deployment_outcome(reversed(statuses)) == ("success", datetime(2026, 11, 2, 10, 5))


def test_outcome_latest_wins_and_failure_finishes() -> None:
    statuses = [
        _status("success", "2026-11-02T10:05:00Z", 3),
        _status("failure", "2026-11-02T10:09:00Z", 5),
    ]
    assert deployment_outcome(statuses) == ("failure", datetime(2026, 11, 2, 10, 9))
    same_time = [
        _status("error", "2026-11-02T10:05:00Z", 7),
        _status("success", "2026-11-02T10:05:00Z", 6),
    ]
    assert deployment_outcome(same_time) == ("error", datetime(2026, 11, 2, 10, 5))


def test_outcome_without_statuses() -> None:
    assert deployment_outcome([]) == ("pending", None)
    assert deployment_outcome([_status("inactive", "2026-11-02T10:05:00Z")]) == ("pending", None)
    assert deployment_outcome([_status("in_progress", "2026-11-02T10:05:00Z")]) == (
        "in_progress",
        None,
    )


def test_outcome_malformed_status() -> None:
    with pytest.raises(GitHubPayloadError, match="missing field 'created_at'"):
        deployment_outcome([{"state": "success"}])


# --------------------------------------------------------------------------- robustness


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            out.append((*prefix, key))
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(obj, list):
        for i, value in enumerate(obj[:2]):
            out.append((*prefix, i))
            out.extend(_paths(value, (*prefix, i)))
    return out


_DELETE = object()
_BAD_VALUES: list[Any] = [_DELETE, None, 1, 1.5, True, "x", [], {}, [None]]


@pytest.mark.parametrize(
    ("parser", "source"),
    [
        (parse_pr_node, lambda: PR_NODE),
        (parse_rest_pull, lambda: webhook("pull_request", "closed.payload.json")["pull_request"]),
        (
            parse_rest_review,
            lambda: webhook("pull_request_review", "dismissed.payload.json")["review"],
        ),
        (
            parse_workflow_run,
            lambda: webhook("workflow_run", "completed.payload.json")["workflow_run"],
        ),
        (parse_release, lambda: webhook("release", "published.payload.json")["release"]),
        (parse_deployment, lambda: webhook("deployment_status", "payload.json")["deployment"]),
        (
            lambda s: deployment_outcome([s]),
            lambda: webhook("deployment_status", "payload.json")["deployment_status"],
        ),
    ],
)
def test_any_damage_raises_only_value_error(parser: Any, source: Any) -> None:
    """Delete or retype every field (to two list items deep): the parser either copes or
    raises GitHubPayloadError, never KeyError/TypeError/AttributeError."""
    base = source()
    for path in _paths(base):
        for bad in _BAD_VALUES:
            damaged = copy.deepcopy(base)
            parent = damaged
            for key in path[:-1]:
                parent = parent[key]
            if bad is _DELETE:
                if isinstance(parent, list):
                    continue
                del parent[path[-1]]
            else:
                parent[path[-1]] = bad
            with contextlib.suppress(GitHubPayloadError):
                parser(damaged)
