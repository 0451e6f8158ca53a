"""The sync's queries against GitHub's schema, its parsers against recorded payloads, and the
client replaying a recorded paginated cassette (Link and rate-limit headers as GitHub sent)."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from typing import Any

import graphql
import pytest

from bot.ingest.rules import find_references
from bot.sources.github import (
    COMMIT_HISTORIES_BATCH,
    PULL_REQUEST_DETAILS_QUERY,
    PULL_REQUESTS_QUERY,
    REPOSITORY_SYNC_QUERY,
    GitHubPayloadError,
    commit_histories_query,
    parse_commit_histories_response,
    parse_commit_node,
    parse_deployment_node,
    parse_issue_node,
    parse_pull_request_details_response,
    parse_release_node,
    parse_repository_sync_response,
    parse_rest_commit,
    parse_rest_issue,
    parse_workflow_run,
)
from bot.sources.github_client import GitHubClient
from tests.conftest import fixtures_dir
from tests.fakes.server import FakeRequest, FakeResponse, FakeServer


def load(*parts: str) -> Any:
    return json.loads(fixtures_dir().joinpath(*parts).read_text(encoding="utf-8"))


def example(name: str) -> Any:
    return load("github-openapi-examples", "components", "examples", f"{name}.json")


def cassette(path: str) -> list[dict[str, Any]]:
    return load("octokit-rb-cassettes", "spec", "cassettes", path)["http_interactions"]


def body_of(interaction: dict[str, Any]) -> str:
    b = interaction["response"]["body"]
    return b.get("string") or base64.b64decode(b.get("base64_string", "")).decode("utf-8")


@pytest.fixture(scope="module")
def schema() -> Any:
    sdl = (fixtures_dir() / "github-graphql-schema" / "schema.graphql").read_text("utf-8")
    return graphql.build_schema(sdl, assume_valid_sdl=True, assume_valid=True)


@pytest.mark.parametrize(
    "query", [REPOSITORY_SYNC_QUERY, PULL_REQUEST_DETAILS_QUERY, PULL_REQUESTS_QUERY]
)
def test_sync_queries_are_valid_against_githubs_schema(schema, query):
    assert graphql.validate(schema, graphql.parse(query)) == []


@pytest.mark.parametrize("count", [1, 3, COMMIT_HISTORIES_BATCH])
def test_commit_histories_query_is_valid_against_githubs_schema(schema, count):
    query = commit_histories_query(count)
    assert graphql.validate(schema, graphql.parse(query)) == []
    assert query.count("object(oid: $oid") == count


def test_commit_histories_query_validation_is_not_vacuous(schema):
    bad = commit_histories_query(2).replace("committedDate", "commitDate")
    assert any("commitDate" in e.message for e in graphql.validate(schema, graphql.parse(bad)))
    with pytest.raises(ValueError):
        commit_histories_query(COMMIT_HISTORIES_BATCH + 1)


def test_commit_histories_response_per_alias():
    node = {
        "oid": "b" * 40,
        "authoredDate": "2026-11-02T09:00:00Z",
        "committedDate": "2026-11-02T10:00:00+01:00",
        "parents": {"nodes": [{"oid": "a" * 40}]},
    }
    data = {
        "rateLimit": None,
        "repository": {
            "c0": {
                "history": {"pageInfo": {"hasNextPage": True, "endCursor": "X"}, "nodes": [node]}
            },
            "c1": None,  # no such commit
            "c2": {},  # an object that is not a commit (a tree, a blob)
        },
    }
    c0, c1, c2 = parse_commit_histories_response(data, 3)
    assert c0 is not None and c0.has_next_page and c0.end_cursor == "X"
    assert c0.items[0].sha == "b" * 40 and c0.items[0].parents == ("a" * 40,)
    assert c0.items[0].committed_at == datetime(2026, 11, 2, 9, 0)
    assert c1 is None and c2 is None
    with pytest.raises(GitHubPayloadError):
        parse_commit_histories_response({"repository": {"c0": {"history": []}}}, 1)


def test_sync_query_validation_is_not_vacuous(schema):
    bad = REPOSITORY_SYNC_QUERY.replace("commitOid", "commitSha")
    assert any("commitSha" in e.message for e in graphql.validate(schema, graphql.parse(bad)))


# --------------------------------------------------------------------------- REST, recorded


def test_rest_issues_from_the_octokit_cassette():
    page = cassette("Octokit_Client_Issues/_list_issues/returns_issues_for_a_repository.json")[0]
    issues = [parse_rest_issue(i) for i in json.loads(body_of(page))]
    assert len(issues) == 30
    assert all(i.created_at <= i.updated_at for i in issues)
    assert all(i.closed_at is None for i in issues)  # the list is of open issues
    # the REST issues list also returns pull requests; they are flagged
    assert any(i.is_pull_request for i in issues) and not all(i.is_pull_request for i in issues)


def test_openapi_issue_items_and_webhook_issue():
    (issue,) = [parse_rest_issue(i) for i in example("issue-items")]
    assert issue.number == 1347 and issue.title == "Found a bug"
    assert issue.labels == ("bug",) and issue.is_pull_request
    hook = load(
        "octokit-webhooks", "payload-examples", "api.github.com", "issues", "labeled.payload.json"
    )
    labelled = parse_rest_issue(hook["issue"])
    assert labelled.labels and not labelled.is_pull_request


def test_a_reopened_issue_is_open_although_it_carries_its_last_close():
    hook = load(
        "octokit-webhooks", "payload-examples", "api.github.com", "issues", "reopened.payload.json"
    )
    assert hook["issue"]["state"] == "open" and hook["issue"]["closed_at"]  # as recorded
    assert parse_rest_issue(hook["issue"]).closed_at is None
    closed = {**hook["issue"], "state": "closed"}
    assert parse_rest_issue(closed).closed_at == datetime(2021, 7, 5, 18, 7, 10)
    node = {
        "number": 3,
        "title": "Outage",
        "url": None,
        "body": "",
        "createdAt": "2026-11-02T10:00:00Z",
        "updatedAt": "2026-11-03T10:00:00Z",
        "state": "OPEN",
        "closedAt": "2026-11-02T11:00:00Z",
        "labels": {"nodes": [{"name": "incident"}]},
    }
    assert parse_issue_node(node).closed_at is None
    assert parse_issue_node({**node, "state": "CLOSED"}).closed_at == datetime(2026, 11, 2, 11)


def test_rest_commits_with_parents():
    (c,) = [parse_rest_commit(x) for x in example("commit-items")]
    assert c.sha == "6dcb09b5b57875f334f61aebed695e2e4193db5e"
    assert c.parents == ("6dcb09b5b57875f334f61aebed695e2e4193db5e",)
    assert c.authored_at == datetime(2011, 4, 14, 16, 0, 49)
    recorded = cassette("Octokit_Client_Commits/_commits/returns_all_commits.json")[0]
    commits = [parse_rest_commit(x) for x in json.loads(body_of(recorded))]
    assert len(commits) == 30
    shas = {x.sha for x in commits}
    # a linear-ish history: most parents of one page are on the page
    assert sum(1 for x in commits for p in x.parents if p in shas) >= 25
    comparison = example("commit-comparison")
    assert [parse_rest_commit(x).sha for x in comparison["commits"]]


def test_rest_commit_without_parents_list_is_a_value_error():
    bad = dict(example("commit-items")[0], parents=None)
    with pytest.raises(GitHubPayloadError, match="parents"):
        parse_rest_commit(bad)


def test_client_follows_recorded_link_headers_and_reads_recorded_rate_limits():
    """The octokit.rb cassette of a paginated workflow-runs list, replayed on loopback."""
    pages = cassette(
        "Octokit_Client_ActionsWorkflowRuns/_repository_workflow_runs/auto-paginates_the_results.json"
    )
    fake = FakeServer()

    def serve(req: FakeRequest) -> FakeResponse:
        n = int(req.arg("page", "1") or 1)
        rec = pages[n - 1]["response"]
        headers = {k: v[0] for k, v in rec["headers"].items() if k.lower() != "content-length"}
        headers.pop("Content-Encoding", None)
        headers.pop("Transfer-Encoding", None)
        if "Link" in headers:
            headers["Link"] = re.sub(r"https://api\.github\.com", fake.url, headers["Link"])
        return FakeResponse(200, body_of(pages[n - 1]).encode("utf-8"), headers)

    fake.route("GET", r"/repos/octo/app/actions/runs", serve)
    fake.route("GET", r"/repositories/540180744/actions/runs", serve)
    with fake, GitHubClient("t", fake.url, sleep=lambda s: None) as gh:
        runs = [
            parse_workflow_run(r)
            for page in gh.paginate("/repos/octo/app/actions/runs", {"per_page": 1})
            for r in page.body["workflow_runs"]
        ]
    assert [r.provider_id for r in runs] == ["3109327341", "3109327220", "3109325726"]
    assert all(r.status == "success" and r.finished_at is not None for r in runs)
    assert gh.rate_remaining is not None and gh.rate_reset == 1663891143


# --------------------------------------------------------------------------- GraphQL shapes

COMMIT = {
    "oid": "b" * 40,
    "authoredDate": "2026-11-09T12:58:00Z",
    "committedDate": "2026-11-09T13:00:00+00:00",
    "parents": {"nodes": [{"oid": "a" * 40}]},
}
DEPLOYMENT = {
    "databaseId": 101,
    "environment": "production",
    "commitOid": "b" * 40,
    "createdAt": "2026-11-10T17:00:00Z",
    "ref": {"name": "main"},
    "latestStatus": {"state": "INACTIVE", "createdAt": "2026-11-11T13:30:00Z"},
    "statuses": {
        "nodes": [
            {"state": "IN_PROGRESS", "createdAt": "2026-11-10T17:01:00Z"},
            {"state": "SUCCESS", "createdAt": "2026-11-10T17:20:00Z"},
        ]
    },
}


def test_commit_and_deployment_nodes():
    c = parse_commit_node(COMMIT)
    assert (c.sha, c.parents, c.committed_at) == ("b" * 40, ("a" * 40,), datetime(2026, 11, 9, 13))
    d = parse_deployment_node(DEPLOYMENT)
    # the later inactive status (a newer deployment succeeded) does not change the outcome
    assert (d.status, d.finished_at) == ("success", datetime(2026, 11, 10, 17, 20))
    assert (d.provider_id, d.environment, d.ref) == ("101", "production", "main")
    running = dict(
        DEPLOYMENT, latestStatus=None, statuses={"nodes": DEPLOYMENT["statuses"]["nodes"][:1]}
    )
    assert parse_deployment_node(running).finished_at is None


def test_release_node_resolves_the_tag_commit():
    node = {
        "databaseId": 7,
        "tagName": "v1.2.0",
        "tagCommit": {"oid": "c" * 40},
        "createdAt": "2026-11-10T10:00:00Z",
        "publishedAt": "2026-11-10T11:00:00Z",
        "isDraft": False,
        "url": "https://github.com/acme/api/releases/tag/v1.2.0",
    }
    r = parse_release_node(node, "prod")
    assert (r.commit_sha, r.status, r.environment) == ("c" * 40, "success", "prod")
    draft = parse_release_node(dict(node, isDraft=True, tagCommit=None))
    assert (draft.commit_sha, draft.status, draft.finished_at) == (None, "pending", None)


def test_repository_page_with_some_connections_and_incomplete_pulls():
    from tests.test_github_parsers import PR_NODE

    pr = dict(PR_NODE, files={"pageInfo": {"hasNextPage": True, "endCursor": "F1"}, "nodes": []})
    data = {
        "rateLimit": {"cost": 1, "remaining": 4999, "resetAt": "2026-11-20T01:00:00Z"},
        "repository": {
            "databaseId": 77,
            "nameWithOwner": "acme/api",
            "defaultBranchRef": {
                "name": "main",
                "target": {
                    "history": {
                        "pageInfo": {"hasNextPage": True, "endCursor": "H1"},
                        "nodes": [COMMIT, None],
                    }
                },
            },
            "pullRequests": {"pageInfo": {"hasNextPage": False, "endCursor": "P1"}, "nodes": [pr]},
            "deployments": {
                "pageInfo": {"hasNextPage": False, "endCursor": None},
                "nodes": [DEPLOYMENT],
            },
        },
    }
    page = parse_repository_sync_response(data)
    assert (page.database_id, page.full_name, page.default_branch) == (77, "acme/api", "main")
    assert page.history is not None and page.history.end_cursor == "H1"
    assert len(page.history.items) == 1  # a null node (partial data) is skipped
    assert page.pulls is not None and page.pulls.items[0].number == 42
    assert [(i.number, i.files_cursor, i.reviews_cursor) for i in page.incomplete_pulls] == [
        (42, "F1", None)
    ]
    assert page.releases is None and page.issues is None  # not asked for
    assert page.rate_limit is not None and page.rate_limit.remaining == 4999
    with pytest.raises(GitHubPayloadError, match="repository is null"):
        parse_repository_sync_response({"repository": None})


def test_pull_request_details_page():
    data = {
        "repository": {
            "pullRequest": {
                "files": {
                    "pageInfo": {"hasNextPage": False, "endCursor": "F2"},
                    "nodes": [{"path": "a.py", "additions": 3, "deletions": 1}],
                }
            }
        }
    }
    details = parse_pull_request_details_response(data)
    assert details.reviews is None
    assert details.files is not None and details.files.items[0].path == "a.py"


@pytest.mark.parametrize(
    ("text", "shas", "ids"),
    [
        ("Broke after deploying 1a2b3c4d5e.", ("1a2b3c4d5e",), ()),
        (f"commit {'ab12' * 10} is bad", ("ab12" * 10,), ()),
        (
            "see https://github.com/acme/api/deployments/123456 and deployment #99",
            (),
            ("123456", "99"),
        ),
        ("run https://github.com/acme/api/actions/runs/3109327341 failed", (), ("3109327341",)),
        # plain numbers and hex-looking words are not commits
        ("error 1234567 at defaced cafebabe", (), ()),
        ("nothing here", (), ()),
    ],
)
def test_incident_references(text, shas, ids):
    refs = find_references(text)
    assert refs.shas == shas and refs.deployment_ids == ids
