"""GitHubClient over real HTTP on loopback: URLs, headers, pagination and every fault."""

from __future__ import annotations

import time

import pytest

from bot.sources.github_client import (
    GitHubAuthError,
    GitHubClient,
    GitHubGraphQLError,
    GitHubNotFound,
    GitHubUnavailable,
    graphql_url_for,
)
from tests.fakes.server import FakeRequest, FakeResponse, FakeServer

TOKEN = "ghp_secretsecretsecret"


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture(scope="module")
def shared_server():
    fake = FakeServer()
    fake.route("POST", r"(/api)?/graphql", lambda r: FakeResponse.json({"data": {"ok": r.json()}}))
    fake.route(
        "GET",
        r"(/api/v3)?/repos/acme/api/items",
        lambda r: _items(fake, r),
    )
    with fake:
        yield fake


@pytest.fixture
def server(shared_server):
    shared_server.clear_faults()
    shared_server.requests.clear()
    return shared_server


def _items(fake: FakeServer, req: FakeRequest) -> FakeResponse:
    page = int(req.arg("page", "1") or 1)
    headers = {"x-ratelimit-remaining": "4999", "x-ratelimit-reset": str(int(time.time()) + 60)}
    if page < 3:
        headers["Link"] = (
            f'<{fake.url}{req.path}?per_page=2&page={page + 1}>; rel="next", '
            f'<{fake.url}{req.path}?per_page=2&page=3>; rel="last"'
        )
    return FakeResponse.json([{"n": page * 10 + i} for i in range(2)], headers=headers)


def client(url: str, sleeps: Sleeps | None = None, **kw) -> GitHubClient:
    kw.setdefault("max_retries", 2)
    return GitHubClient(TOKEN, url, sleep=sleeps or Sleeps(), timeout=1.0, backoff=0.01, **kw)


def test_graphql_urls_for_github_com_and_enterprise_server():
    assert graphql_url_for("https://api.github.com") == "https://api.github.com/graphql"
    assert graphql_url_for("https://ghe.acme.io/api/v3/") == "https://ghe.acme.io/api/graphql"
    assert graphql_url_for("http://127.0.0.1:8080") == "http://127.0.0.1:8080/graphql"


@pytest.mark.parametrize("prefix", ["", "/api/v3"])
def test_requests_carry_auth_user_agent_and_follow_link_pagination(server, prefix):
    with client(server.url + prefix) as gh:
        result = gh.graphql("query { viewer { login } }", {"a": 1})
        pages = list(gh.paginate("/repos/acme/api/items", {"per_page": 2}, repo="acme/api"))
    assert result.data["ok"] == {"query": "query { viewer { login } }", "variables": {"a": 1}}
    assert [x["n"] for p in pages for x in p.body] == [10, 11, 20, 21, 30, 31]
    gql = server.requests_to("POST", r".*graphql")[0]
    assert gql.path == ("/api/graphql" if prefix else "/graphql")
    assert gql.headers["authorization"] == f"Bearer {TOKEN}"
    assert gql.headers["user-agent"].startswith("kpibot/")
    assert gh.requests_made == 4


def test_5xx_timeouts_dropped_connections_and_bad_json_are_retried(server):
    sleeps = Sleeps()
    server.fail("GET", r"/repos/acme/api/items", FakeResponse.json({}, status=502))
    server.fail("GET", r"/repos/acme/api/items", delay=1.5)
    server.fail("GET", r"/repos/acme/api/items", drop=True)
    server.fail("GET", r"/repos/acme/api/items", FakeResponse.text("{not json"))
    with client(server.url, sleeps, max_retries=4) as gh:
        page = gh.rest("/repos/acme/api/items", repo="acme/api")
    assert [x["n"] for x in page.body] == [10, 11]
    assert sleeps.calls == [0.01, 0.02, 0.04, 0.08]  # exponential backoff


def test_retries_are_bounded(server):
    server.fail("GET", r"/repos/acme/api/items", FakeResponse.json({}, status=503), times=10)
    sleeps = Sleeps()
    with client(server.url, sleeps, max_retries=2) as gh, pytest.raises(GitHubUnavailable) as e:
        gh.rest("/repos/acme/api/items", repo="acme/api")
    assert "acme/api" in str(e.value) and "503" in str(e.value)
    assert len(sleeps.calls) == 2
    assert len(server.requests_to("GET", r"/repos/acme/api/items")) == 3


def test_primary_rate_limit_waits_for_the_reset(server):
    reset = int(time.time()) + 30
    limited = FakeResponse.json(
        {"message": "API rate limit exceeded for user ID 1."},
        status=403,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
    )
    server.fail("GET", r"/repos/acme/api/items", limited)
    sleeps, waits = Sleeps(), []
    with client(server.url, sleeps, on_wait=waits.append) as gh:
        page = gh.rest("/repos/acme/api/items", repo="acme/api")
    assert page.status == 200
    assert len(sleeps.calls) == 1 and 28 <= sleeps.calls[0] <= 32
    assert "rate limit" in waits[0]


def test_exhausted_budget_is_waited_out_before_the_next_request(server):
    now = time.time()
    server.fail(
        "GET",
        r"/repos/acme/api/items",
        FakeResponse.json(
            [], headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(now) + 20)}
        ),
    )
    sleeps = Sleeps()
    with client(server.url, sleeps, clock=lambda: now) as gh:
        gh.rest("/repos/acme/api/items")
        gh.rest("/repos/acme/api/items")
    assert len(sleeps.calls) == 1 and sleeps.calls[0] == pytest.approx(21, abs=1)
    assert len(server.requests_to("GET", r"/repos/acme/api/items")) == 2


@pytest.mark.parametrize("status", [403, 429])
def test_secondary_rate_limit_honours_retry_after(server, status):
    server.fail(
        "POST",
        r"/graphql",
        FakeResponse.json(
            {"message": "You have exceeded a secondary rate limit."},
            status=status,
            headers={"retry-after": "7"},
        ),
    )
    sleeps = Sleeps()
    with client(server.url, sleeps) as gh:
        assert gh.graphql("query { a }").data["ok"]["query"] == "query { a }"
    assert sleeps.calls == [7.0]


def test_401_403_404_name_the_repo_and_what_to_check_but_never_the_token(server):
    cases = [
        (
            FakeResponse.json({"message": "Bad credentials"}, status=401),
            GitHubAuthError,
            "GITHUB_TOKEN",
        ),
        (
            FakeResponse.json({"message": "Resource not accessible"}, status=403),
            GitHubAuthError,
            "access",
        ),
        (FakeResponse.json({"message": "Not Found"}, status=404), GitHubNotFound, "kpibot.yml"),
    ]
    with client(server.url) as gh:
        for resp, exc, hint in cases:
            server.fail("GET", r"/repos/acme/api/items", resp)
            with pytest.raises(exc) as e:
                gh.rest("/repos/acme/api/items", repo="acme/api")
            assert "acme/api" in str(e.value) and hint in str(e.value)
            assert TOKEN not in str(e.value) and TOKEN not in repr(e.value)


def test_graphql_partial_data_errors_and_rate_limited(server):
    partial = {"data": {"repository": {"x": 1}}, "errors": [{"message": "timeout on files"}]}
    server.fail("POST", r"/graphql", FakeResponse.json(partial))
    server.fail(
        "POST",
        r"/graphql",
        FakeResponse.json(
            {"data": None, "errors": [{"type": "NOT_FOUND", "message": "Could not resolve"}]}
        ),
    )
    server.fail("POST", r"/graphql", FakeResponse.json({"errors": [{"message": "Parse error"}]}))
    server.fail(
        "POST",
        r"/graphql",
        FakeResponse.json(
            {"errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded"}]},
            headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + 5)},
        ),
    )
    sleeps = Sleeps()
    with client(server.url, sleeps) as gh:
        result = gh.graphql("query { a }", repo="acme/api")
        assert result.data == {"repository": {"x": 1}} and "timeout" in result.error_text()
        with pytest.raises(GitHubNotFound, match="acme/api"):
            gh.graphql("query { a }", repo="acme/api")
        with pytest.raises(GitHubGraphQLError, match="Parse error"):
            gh.graphql("query { a }", repo="acme/api")
        assert gh.graphql("query { b }").data["ok"]["query"] == "query { b }"
    assert len(sleeps.calls) == 1 and 3 <= sleeps.calls[0] <= 7
