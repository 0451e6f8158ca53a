"""The ingestion rules both paths apply, and the webhook findings they fixed: a scalar
`labels`, a deployment workflow limited to a branch, unknown hex in an incident's text,
`incidents.repos`, and the earliest ready-for-review time."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from bot.ingest import rules
from bot.settings import Config, TeamConfig, parse_config
from bot.store.models import Deployment, Incident, PullRequest
from bot.store.session import session_factory
from bot.store.teams import sync_teams
from bot.surfaces.http import HttpApp, Server
from bot.surfaces.webhooks import Webhooks, install
from tests.test_webhooks import SECRET, gh, octokit

# the repositories of the recorded octokit payloads
HELLO = "Codertocat/Hello-World"
OCTO = "octo-org/octo-repo"


def _config(yaml_text: str) -> Config:
    config, problems = parse_config(yaml_text)
    assert problems == [] and config is not None, problems
    return config


@pytest.fixture
def serve(engine, session) -> Iterator:
    servers: list[Server] = []

    def start(config: Config) -> str:
        sync_teams(session, config)
        session.commit()
        app = HttpApp()
        install(app, Webhooks(session_factory(engine), config, SECRET))
        srv = Server(app, host="127.0.0.1", port=0, threads=4)
        srv.__enter__()
        servers.append(srv)
        return srv.url

    yield start
    for srv in servers:
        srv.__exit__(None, None, None)


# --------------------------------------------------------------------------- the rules


def test_which_teams_count_an_issue():
    scalar = TeamConfig(
        name="a", repos=("o/api",), incidents={"source": "github-issues", "labels": "Incident"}
    )
    ops = TeamConfig(
        name="b", repos=("o/api",), incidents={"source": "github-issues", "repos": ["o/ops"]}
    )
    jira = TeamConfig(name="c", repos=("o/api",), incidents={"source": "jira", "project": "X"})
    teams = [scalar, ops, jira]
    assert rules.incident_teams(teams, "O/API", ["incident"]) == [scalar]
    assert rules.incident_teams(teams, "o/ops", ["INCIDENT", "bug"]) == [ops]
    assert rules.incident_teams(teams, "o/api", ["bug"]) == []
    assert rules.issue_repositories(jira) == ()


def test_which_workflow_runs_are_deployments():
    team = TeamConfig(
        name="a",
        repos=("o/api",),
        deployments={"source": "workflow", "workflow": "deploy.yml", "branch": "main"},
    )
    path = ".github/workflows/deploy.yml"
    assert rules.is_deployment_run(team, path=path, name="Deploy", branch="main")
    assert rules.is_deployment_run(team, path=path + "@refs/heads/main", name=None, branch="main")
    assert not rules.is_deployment_run(team, path=path, name="Deploy", branch="feature/x")
    assert not rules.is_deployment_run(
        team, path=".github/workflows/test.yml", name="CI", branch="main"
    )
    assert not rules.is_deployment_run(
        TeamConfig(name="b"), path=path, name="Deploy", branch="main"
    )


def test_an_incident_links_only_to_what_the_store_knows():
    full = "4f2a9c1e" + "0" * 32
    known = {full}

    def commit_of(prefix: str) -> str | None:
        return next((s for s in known if s.startswith(prefix)), None)

    def no_deployment(ids):
        return None

    text = "Trace 4f2a9c1e shows 502s"
    assert rules.incident_link(text, deployment_of=no_deployment, commit_of=lambda p: None) == (
        None,
        None,
    )
    assert rules.incident_link(text, deployment_of=no_deployment, commit_of=commit_of) == (
        None,
        full,
    )
    linked = rules.incident_link(
        "after https://github.com/o/api/deployments/77, trace deadbeef1",
        deployment_of=lambda ids: 5 if "77" in ids else None,
        commit_of=lambda p: None,
    )
    assert linked == (5, None)


# --------------------------------------------------------------------------- the findings


def test_scalar_labels_count_issues_delivered_by_webhook(serve, session):
    """Finding 1: `labels: bug` (a scalar, accepted by config check) was compared letter by
    letter, and the webhook answered that the issue had none of the teams' labels."""
    url = serve(
        _config(
            f"teams:\n  - name: web\n    repos: [{HELLO}]\n"
            "    incidents: {source: github-issues, labels: bug}\n"
        )
    )
    r = gh(url, "issues", octokit("issues/opened.payload.json"))
    assert r.json().get("stored") == "incident", r.text
    session.expire_all()
    assert session.scalars(select(Incident.provider_id)).all() == ["codertocat/hello-world#1"]


def test_a_workflow_run_on_another_branch_is_not_a_deployment(serve, session):
    """Finding 2: with `branch: main`, a run of the deployment workflow on a feature branch
    was stored as a successful production deployment."""
    url = serve(
        _config(
            f"teams:\n  - name: octo\n    repos: [{OCTO}]\n"
            "    deployments: {source: workflow, workflow: test.yml, branch: main}\n"
        )
    )
    run = json.loads(octokit("workflow_run/completed.payload.json"))
    run["workflow_run"]["head_branch"] = "feature/try-something"
    r = gh(url, "workflow_run", json.dumps(run).encode())
    assert r.status_code == 200 and "ignored" in r.json(), r.text
    session.expire_all()
    assert session.scalars(select(Deployment)).all() == []
    run["workflow_run"]["head_branch"] = "main"
    assert gh(url, "workflow_run", json.dumps(run).encode()).json()["stored"] == "deployment"
    session.expire_all()
    assert len(session.scalars(select(Deployment)).all()) == 1


def test_unknown_hex_in_an_incident_is_no_link_and_a_known_sha_is(serve, session):
    """Finding 3: "Trace 4f2a9c1e shows 502s" stored 4f2a9c1e as the incident's commit, so the
    incident was never attributed by its time window; only a SHA the store knows links."""
    url = serve(
        _config(
            f"teams:\n  - name: web\n    repos: [{HELLO}]\n"
            "    incidents: {source: github-issues, labels: [bug]}\n"
        )
    )
    issue = json.loads(octokit("issues/opened.payload.json"))
    issue["issue"]["body"] = "Trace 4f2a9c1e shows 502s"
    assert gh(url, "issues", json.dumps(issue).encode()).json()["stored"] == "incident"
    session.expire_all()
    assert session.scalars(select(Incident.commit_sha)).one() is None
    # a deployed commit the store knows links, by its short form
    status = json.loads(octokit("deployment_status/payload.json"))
    sha = status["deployment"]["sha"]
    assert gh(url, "deployment_status", json.dumps(status).encode()).status_code == 200
    issue["issue"]["body"] = f"Since {sha[:8]} checkout fails"
    assert gh(url, "issues", json.dumps(issue).encode()).json()["stored"] == "incident"
    session.expire_all()
    assert session.scalars(select(Incident.commit_sha)).one() == sha


def test_issues_of_an_incident_repository_are_taken_by_webhook(serve, session):
    """`incidents.repos` names where the team's incidents are filed; the sync read them, the
    webhook answered that the repository was not in kpibot.yml."""
    url = serve(
        _config(
            "teams:\n  - name: web\n    repos: [acme/api]\n"
            f"    incidents: {{source: github-issues, labels: [bug], repos: [{HELLO}]}}\n"
        )
    )
    r = gh(url, "issues", octokit("issues/opened.payload.json"))
    assert r.json().get("stored") == "incident", r.text
    # and a repository no team names is still ignored
    other = json.loads(octokit("issues/opened.payload.json"))
    other["repository"]["full_name"] = "someone/else"
    assert "not in kpibot.yml" in gh(url, "issues", json.dumps(other).encode()).json()["ignored"]


def test_the_earliest_ready_for_review_time_is_kept(serve, session):
    """Two ready_for_review deliveries (a PR made ready, turned back to draft, made ready
    again) arriving out of order: the earliest time is the PR's ready time, as the sync's
    GraphQL parser takes the earliest event."""
    url = serve(_config(f"teams:\n  - name: web\n    repos: [{HELLO}]\n"))
    first = json.loads(octokit("pull_request/ready_for_review.payload.json"))
    later = json.loads(json.dumps(first))
    later["pull_request"]["updated_at"] = "2019-05-16T09:00:00Z"
    for delivery in (later, first):
        r = gh(url, "pull_request", json.dumps(delivery).encode())
        assert r.json()["stored"] == "pull_request", r.text
    # an event without the ready time (closed) keeps it
    assert gh(url, "pull_request", octokit("pull_request/closed.payload.json")).status_code == 200
    session.expire_all()
    pr = session.scalars(select(PullRequest)).one()
    assert pr.ready_at.isoformat() == "2019-05-15T15:21:18" and pr.was_draft


# --------------------------------------------------------------------------- layering


def _imports(path) -> set[str]:
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


@pytest.mark.parametrize("package", ["store", "ingest"])
def test_the_store_and_the_rules_import_no_source(package):
    """Records live in bot.store.records; the store and the ingestion rules sit below the
    sources (which parse) and the surfaces (which receive)."""
    from pathlib import Path

    import bot

    root = Path(bot.__file__).parent / package
    files = sorted(root.rglob("*.py"))
    assert files
    for path in files:
        bad = {
            m
            for m in _imports(path)
            if m.startswith(("bot.sources", "bot.surfaces", "bot.slack", "bot.scheduler"))
        }
        if package == "ingest":
            bad |= {m for m in _imports(path) if m.startswith("bot.store")}
        assert not bad, (str(path), bad)
