"""Every fault GitHub produces, injected by the fake server: the sync waits, retries or reports,
and ends with the same store as a clean run. A sync killed at any request or commit and started
again ends with the same store too, with no duplicates."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, delete, event, select
from sqlalchemy.orm import Session

from bot.settings import Settings, parse_config
from bot.sources.github_client import GitHubClient
from bot.sources.sync import SyncSummary, sync_all
from bot.store.models import (
    Base,
    Commit,
    Deployment,
    DeploymentPullRequest,
    Incident,
    PullRequest,
    PullRequestFile,
    Repository,
    Review,
)
from bot.store.session import session_factory
from tests.conftest import fixtures_dir
from tests.fakes.github import FakeGitHub, Run, generate_org, github_schema
from tests.fakes.server import FakeResponse

NOW = datetime(2026, 11, 20)
CONFIG = """
teams:
  - name: payments
    timezone: UTC
    repos: [acme/service-00, acme/service-01]
    deployments: {source: github-deployments}
    incidents: {source: github-issues, labels: [incident]}
  - name: web
    repos: [acme/service-02]
    deployments: {source: workflow, workflow: deploy.yml}
    incidents: {source: github-issues, labels: [incident]}
"""
SIZES = {"pulls": 15, "history": 20, "deployments": 4, "releases": 5, "issues": 2}
GRAPHQL = r"(/api)?/graphql"
RUNS = r"/repos/acme/service-02/actions/workflows/deploy.yml/runs"


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture(scope="module")
def org() -> Any:
    fixtures_dir()
    github_schema()  # built once, before any client waits on it
    repos = generate_org(3, 60, days=40)
    web = repos[2]
    web.deployments = []
    for n, c in enumerate(reversed(web.commits[::5])):
        web.runs.append(
            Run(70_000 + n, "deploy.yml", c.sha, c.committed_at, c.committed_at.replace(second=30))
        )
    return repos


@pytest.fixture(scope="module")
def shared_fake(org):
    with FakeGitHub(org) as server:
        yield server


@pytest.fixture
def fake(shared_fake):
    """The module's fake GitHub (its data never changes here), without faults or records."""
    shared_fake.clear_faults()
    shared_fake.requests.clear()
    shared_fake.degrade(-shared_fake._degraded)
    return shared_fake


def config() -> Any:
    cfg, problems = parse_config(CONFIG)
    assert not problems and cfg is not None
    return cfg


def run(
    fake: FakeGitHub,
    engine: Engine,
    sleeps: Sleeps | None = None,
    transport: httpx.BaseTransport | None = None,
    lines: list[str] | None = None,
    timeout: float = 10.0,
) -> SyncSummary:
    client = GitHubClient(
        "t",
        fake.url,
        timeout=timeout,
        backoff=0.01,
        max_retries=3,
        sleep=sleeps or Sleeps(),
        transport=transport,
    )
    with client:
        return sync_all(
            Settings(github_token="t", github_api_url=fake.url),
            session_factory(engine),
            config=config(),
            client=client,
            now=NOW,
            page_sizes=SIZES,
            out=(lines.append if lines is not None else None),
        )


def dump(engine: Engine) -> dict[str, list[tuple]]:
    """The store by provider keys (no surrogate ids)."""
    with Session(engine) as s:
        repo = dict(s.execute(select(Repository.id, Repository.full_name)).tuples().all())
        prs = {
            pid: (repo[rid], n)
            for pid, rid, n in s.execute(
                select(PullRequest.id, PullRequest.repository_id, PullRequest.number)
            )
        }
        deps = {
            did: (repo[rid], src, p)
            for did, rid, src, p in s.execute(
                select(
                    Deployment.id,
                    Deployment.repository_id,
                    Deployment.source,
                    Deployment.provider_id,
                )
            )
        }
        out = {
            "repos": sorted(
                s.execute(
                    select(Repository.full_name, Repository.provider_id, Repository.default_branch)
                ).tuples()
            ),
            "pulls": sorted(
                (prs[r[0]], *r[1:])
                for r in s.execute(
                    select(
                        PullRequest.id,
                        PullRequest.title,
                        PullRequest.state,
                        PullRequest.merged_at,
                        PullRequest.updated_at,
                        PullRequest.first_commit_at,
                        PullRequest.merge_commit_sha,
                        PullRequest.additions,
                        PullRequest.author_is_bot,
                    )
                )
            ),
            "reviews": sorted(
                (prs[r[0]], *r[1:])
                for r in s.execute(
                    select(
                        Review.pull_request_id,
                        Review.provider_id,
                        Review.state,
                        Review.submitted_at,
                    )
                )
            ),
            "files": sorted(
                (prs[r[0]], *r[1:])
                for r in s.execute(
                    select(
                        PullRequestFile.pull_request_id,
                        PullRequestFile.path,
                        PullRequestFile.additions,
                    )
                )
            ),
            "commits": sorted(
                (repo[r[0]], *r[1:])
                for r in s.execute(
                    select(Commit.repository_id, Commit.sha, Commit.parents, Commit.committed_at)
                )
            ),
            "deployments": sorted(
                (deps[r[0]], *r[1:])
                for r in s.execute(
                    select(
                        Deployment.id,
                        Deployment.commit_sha,
                        Deployment.status,
                        Deployment.finished_at,
                        Deployment.rolled_back_at,
                        Deployment.contents_computed_at.is_(None),
                    )
                )
            ),
            "contents": sorted(
                (deps[d], prs[p])
                for d, p in s.execute(
                    select(
                        DeploymentPullRequest.deployment_id, DeploymentPullRequest.pull_request_id
                    )
                )
            ),
            "incidents": sorted(
                s.execute(
                    select(
                        Incident.provider_id,
                        Incident.title,
                        Incident.started_at,
                        Incident.resolved_at,
                    )
                ).tuples()
            ),
        }
    return out


def wipe(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(delete(table))


_CLEAN: dict[str, dict[str, list[tuple]]] = {}


@pytest.fixture
def clean(fake, engine) -> dict[str, list[tuple]]:
    """The store after an uninterrupted sync (computed once; the data set never changes)."""
    if "store" not in _CLEAN:
        summary = run(fake, engine)
        assert summary.ok, [r.line() for r in summary.repos]
        expected = dump(engine)
        assert len(expected["pulls"]) == 60 and expected["contents"] and expected["incidents"]
        _CLEAN["store"] = expected
        wipe(engine)
        fake.requests.clear()
    return _CLEAN["store"]


FAULTS: dict[str, Callable[[FakeGitHub], None]] = {
    "5xx": lambda f: (
        f.fail(
            "POST", GRAPHQL, FakeResponse.json({"message": "Server Error"}, status=502), times=2
        ),
        f.fail("GET", RUNS, FakeResponse.json({}, status=503)),
    ),
    "5xx until pages are smaller": lambda f: f.fail(
        "POST", GRAPHQL, FakeResponse.json({"message": "Timeout"}, status=504), times=4
    ),
    "timeout": lambda f: f.fail("POST", GRAPHQL, delay=1.6, times=2),
    "dropped connection": lambda f: f.fail("POST", GRAPHQL, drop=True),
    "malformed json": lambda f: (
        f.fail("POST", GRAPHQL, FakeResponse.text('{"data": {"repository": ')),
        f.fail("GET", RUNS, FakeResponse.text("<html>Bad gateway</html>")),
    ),
    "primary rate limit": lambda f: (f.rate_limit(), f.rate_limit("GET", RUNS)),
    "secondary rate limit 403": lambda f: f.fail(
        "POST",
        GRAPHQL,
        FakeResponse.json(
            {"message": "You have exceeded a secondary rate limit. Please wait a few minutes."},
            status=403,
            headers={"retry-after": "30"},
        ),
    ),
    "secondary rate limit 429": lambda f: f.fail(
        "GET",
        RUNS,
        FakeResponse.json({"message": "Too many"}, status=429, headers={"retry-after": "5"}),
    ),
    "graphql errors with partial data": lambda f: f.degrade(times=2),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_is_survived_with_the_same_store(fake, engine, clean, fault):
    FAULTS[fault](fake)
    sleeps = Sleeps()
    summary = run(fake, engine, sleeps, timeout=1.0 if fault == "timeout" else 10.0)
    assert summary.ok, [r.line() for r in summary.repos]
    assert dump(engine) == clean
    if "rate limit" in fault:
        assert sleeps.calls and max(sleeps.calls) >= 1  # it waited instead of failing


def test_partial_data_that_persists_is_kept_and_reported(fake, engine, clean):
    fake.degrade(times=3)
    lines: list[str] = []
    summary = run(fake, engine, lines=lines)
    assert any("part of a page" in line and "timeout" in line for line in lines)
    assert any(r.warnings for r in summary.repos)
    got = dump(engine)
    assert len(got["pulls"]) == len(clean["pulls"]) - 1  # the one node GitHub never sent


class Kill(KeyboardInterrupt):
    pass


class KillingTransport(httpx.HTTPTransport):
    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.n = at, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.n += 1
        if self.n == self.at:
            raise Kill()
        return super().handle_request(request)


@pytest.mark.parametrize("at", [1, 5, 9])
def test_killed_at_a_request_and_restarted_gives_the_same_store(fake, engine, clean, at):
    with pytest.raises(Kill):
        run(fake, engine, transport=KillingTransport(at))
    summary = run(fake, engine)
    assert summary.ok
    assert dump(engine) == clean


@pytest.mark.parametrize("at", [2, 8, 15])
def test_killed_at_a_commit_and_restarted_gives_the_same_store(fake, engine, clean, at):
    commits = {"n": 0}

    def before_commit(session: Session) -> None:
        commits["n"] += 1
        if commits["n"] == at:
            raise Kill()

    event.listen(Session, "before_commit", before_commit)
    try:
        with pytest.raises(Kill):
            run(fake, engine)
    finally:
        event.remove(Session, "before_commit", before_commit)
    assert commits["n"] == at
    summary = run(fake, engine)
    assert summary.ok
    assert dump(engine) == clean


def test_other_sources_without_settings_are_reported_not_fatal(fake, engine):
    cfg, _ = parse_config(
        CONFIG.replace(
            "incidents: {source: github-issues, labels: [incident]}\n  - name: web",
            "incidents: {source: pagerduty, services: [PABC123]}\n  - name: web",
        )
    )
    assert cfg is not None
    lines: list[str] = []
    client = GitHubClient("t", fake.url, sleep=Sleeps(), backoff=0.01)
    with client:
        summary = sync_all(
            Settings(github_token="t", github_api_url=fake.url),
            session_factory(engine),
            config=cfg,
            client=client,
            now=NOW,
            out=lines.append,
        )
    assert all(r.error is None for r in summary.repos)
    assert any(line.startswith("payments: incidents from pagerduty") for line in lines)
    assert not summary.ok and summary.problems


def test_a_real_process_killed_mid_sync_then_restarted_gives_the_same_store(
    fake, engine, clean, db_url, tmp_path, monkeypatch
):
    """``kpibot sync`` in its own process, SIGKILLed while it works, then run again."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from bot.surfaces.cli import main

    config_path = tmp_path / "kpibot.yml"
    config_path.write_text(CONFIG, encoding="utf-8")
    env = dict(
        os.environ,
        DATABASE_URL=db_url,
        KPIBOT_CONFIG=str(config_path),
        GITHUB_API_URL=fake.url,
        GITHUB_TOKEN="t",
    )
    fake.fail("POST", GRAPHQL, delay=0.4, times=100)  # slow answers, so the kill lands mid-sync
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "sync", "--now", "2026-11-20T00:00:00Z"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while len(fake.requests_to("POST", GRAPHQL)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # inside a later request or a write
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    fake.clear_faults()
    partial = dump(engine)
    assert 0 < len(partial["pulls"]) < len(clean["pulls"])  # it was killed halfway
    for key, value in env.items():
        if key in ("DATABASE_URL", "KPIBOT_CONFIG", "GITHUB_API_URL", "GITHUB_TOKEN"):
            monkeypatch.setenv(key, value)
    assert main(["sync", "--now", "2026-11-20T00:00:00Z"]) == 0
    assert dump(engine) == clean


def test_github_down_stops_after_three_repositories_in_a_row(engine):
    import socket

    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    cfg, _ = parse_config(
        CONFIG.replace(
            "repos: [acme/service-00, acme/service-01]", "repos: [acme/a, acme/b, acme/c, acme/d]"
        )
    )
    assert cfg is not None
    lines: list[str] = []
    sleeps = Sleeps()
    with GitHubClient("t", url, sleep=sleeps, backoff=0.01, max_retries=2) as client:
        summary = sync_all(
            Settings(github_token="t", github_api_url=url),
            session_factory(engine),
            config=cfg,
            client=client,
            now=NOW,
            out=lines.append,
        )
    assert [r.repo for r in summary.failed] == ["acme/a", "acme/b", "acme/c"]
    assert "connection failed" in (summary.failed[0].error or "")
    assert any("skipped 2 more (acme/d, acme/service-02)" in line for line in lines)
    assert len(sleeps.calls) == 3 * 2  # bounded retries per repository
