"""The same GitHub data stored once by `kpibot sync` (the fake GitHub on loopback) and once
through the signed `/webhooks/github` (the same facts in GitHub's webhook payloads) ends as
the same rows and the same KPI values, for every shape of team configuration.

What no webhook event carries is left out of the comparison: a pull request's commit dates
(`first_commit_at`) and per-file sizes, and the commit graph, which the webhook side gets
as a previous sync would have stored it. So the KPIs compared are those of reviews, merges,
deployments and incidents (cycle time, lead time and PR size need the commit dates and files
only the sync reads).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.settings import Config, parse_config
from bot.sources.sync import derive_teams
from bot.store import writes
from bot.store.models import Deployment, Incident, PullRequest, Repository, Review, Team
from bot.store.records import CommitRecord
from bot.store.session import make_engine, session_factory, unit_of_work
from bot.store.teams import sync_teams
from bot.surfaces.cli import main
from bot.surfaces.http import HttpApp, Server
from bot.surfaces.webhooks import Webhooks, install, sign
from tests.conftest import create_schema, fixtures_dir
from tests.fakes.github import FakeGitHub, Issue, Repo, Run, webhook_deliveries
from tests.test_sync_e2e import NOW, TOKEN, d, dataset, sha

SECRET = "whsec-parity"
BASE = """
teams:
  - name: payments
    timezone: UTC
    repos: [acme/api]
    production_environments: [production]
"""
SHAPES = {
    # GitHub Deployments; list labels; links by deployment URL and by a known SHA
    "deployments-list-labels": BASE + "    deployments: {source: github-deployments}\n"
    "    incidents: {source: github-issues, labels: [incident, sev1]}\n",
    # a deployment workflow on main only; a scalar label; incidents filed in another repository
    "workflow-branch-scalar-label-incident-repos": BASE
    + "    deployments: {source: workflow, workflow: deploy.yml, branch: main}\n"
    + "    incidents: {source: github-issues, labels: incident, repos: [acme/ops, acme/api]}\n",
    # a deployment workflow on any branch; links by run URL; unknown hex
    "workflow-any-branch": BASE + "    deployments: {source: workflow, workflow: deploy.yml}\n"
    "    incidents: {source: github-issues, labels: [Incident]}\n",
}
METRICS = (
    "first-review",
    "review-coverage",
    "merge-frequency",
    "deploy-frequency",
    "change-failure-rate",
    "mttr",
    "recovery-time",
)


def data() -> list[Repo]:
    api = dataset()
    api.runs = [
        Run(901, "deploy.yml", sha(2), d(10, 17), d(10, 17, 20)),
        Run(902, "deploy.yml", sha(3), d(11, 13), d(11, 13, 30)),
        Run(903, "deploy.yml", sha(3), d(12, 9), d(12, 9, 10), head_branch="feature/try"),
        Run(904, "deploy.yml", sha(3), d(12, 11), d(12, 11, 5), conclusion="failure"),
        Run(905, "deploy.yml", sha(3), d(13, 9), d(13, 9), status="in_progress", conclusion=None),
        Run(906, "ci.yml", sha(3), d(13, 9), d(13, 9, 5)),
    ]
    api.issues += [
        Issue(52, "502s", d(12, 9, 20), d(12, 10), d(12, 10), ["incident"],
              body="Trace 4f2a9c1e shows 502s"),
        Issue(53, "Refunds fail", d(11, 13, 40), d(11, 15), d(11, 15), ["sev1"],
              body="Broke after https://github.com/acme/api/deployments/102"),
        Issue(54, "Deploy broke checkout", d(12, 11, 10), d(12, 11, 40), d(12, 11, 40),
              ["INCIDENT"], body="Failed in https://github.com/acme/api/actions/runs/904"),
        Issue(55, "Still slow", d(13, 10), d(13, 10), None, ["incident"]),
        # reopened and open now (GitHub still reports the last closedAt)
        Issue(56, "Back again", d(12, 14), d(12, 16), d(12, 15), ["incident"], reopened=True),
        # reopened, then closed again
        Issue(57, "Flapping", d(13, 8), d(13, 10), d(13, 10), ["incident"],
              reopened_at=d(13, 9, 30)),
    ]  # fmt: skip
    ops = Repo("acme", "ops", database_id=78)
    ops.issues = [
        Issue(7, "Checkout outage", d(10, 18), d(10, 19), d(10, 19), ["incident"],
              body=f"since {sha(2)[:8]} went out"),
        Issue(8, "Runbook", d(10, 18), d(10, 19), None, ["docs"]),
    ]  # fmt: skip
    return [api, ops]


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    fixtures_dir()
    with FakeGitHub(data(), token=TOKEN) as server:
        yield server


def _config(text: str) -> Config:
    config, problems = parse_config(text)
    assert config is not None, problems
    return config


def _rows(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    with session_factory(engine)() as s:
        out = _snapshot(s)
    engine.dispose()
    return out


def _snapshot(s: Session) -> dict[str, Any]:
    repo = {r.id: r.full_name for r in s.scalars(select(Repository))}
    team = {t.id: t.name for t in s.scalars(select(Team))}
    deployments = {
        d.id: (repo[d.repository_id], d.source, d.provider_id)
        for d in s.scalars(select(Deployment))
    }
    prs = {p.id: (repo[p.repository_id], p.number) for p in s.scalars(select(PullRequest))}
    # counted_lines comes from the PR's files, which no webhook carries (as their table, it
    # is left out)
    skip = {"id", "repository_id", "first_commit_at", "contents_computed_at", "counted_lines"}

    def row(obj: Any, leave: set[str]) -> tuple[Any, ...]:
        return tuple(
            (c.name, getattr(obj, c.key)) for c in obj.__table__.columns if c.name not in leave
        )

    return {
        "pull_requests": sorted(
            [(repo[p.repository_id], row(p, skip)) for p in s.scalars(select(PullRequest))],
            key=repr,
        ),
        "reviews": sorted(
            [
                (prs[r.pull_request_id], row(r, {"id", "pull_request_id"}))
                for r in s.scalars(select(Review))
            ],
            key=repr,
        ),
        "deployments": sorted(
            [(repo[d.repository_id], row(d, skip)) for d in s.scalars(select(Deployment))],
            key=repr,
        ),
        "incidents": sorted(
            [
                (
                    team[i.team_id],
                    deployments.get(i.deployment_id) if i.deployment_id else None,
                    row(i, {"id", "team_id", "deployment_id"}),
                )
                for i in s.scalars(select(Incident))
            ],
            key=repr,
        ),
    }


def _kpis(capsys, url: str, monkeypatch) -> dict[str, Any]:
    monkeypatch.setenv("DATABASE_URL", url)
    out = {}
    for metric in METRICS:
        for period in ("2026-W46", "2026-11"):
            capsys.readouterr()
            args = ["report", metric, "--team", "payments", "--period", period]
            assert main([*args, "--format", "json", "--now", NOW]) == 0
            body = json.loads(capsys.readouterr().out)
            out[(metric, period)] = (body.get("value"), body.get("n"), body.get("breakdown"))
    return out


def _deliver(url: str, event: str, payload: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(payload).encode()
    r = httpx.post(
        url + "/webhooks/github",
        content=body,
        headers={
            "X-GitHub-Event": event,
            "X-Hub-Signature-256": sign(SECRET, body),
            "Content-Type": "application/json",
        },
    )
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("shape", list(SHAPES))
def test_sync_and_webhooks_store_the_same(fake, tmp_path: Path, monkeypatch, capsys, shape):
    config_path = tmp_path / "kpibot.yml"
    config_path.write_text(SHAPES[shape], encoding="utf-8")
    config = _config(SHAPES[shape])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KPIBOT_CONFIG", str(config_path))
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", fake.url)

    synced = f"sqlite:///{tmp_path / 'synced.db'}"
    create_schema(synced)
    monkeypatch.setenv("DATABASE_URL", synced)
    assert main(["sync", "--now", NOW]) == 0

    delivered = f"sqlite:///{tmp_path / 'delivered.db'}"
    create_schema(delivered)
    engine = make_engine(delivered)
    sessions = session_factory(engine)
    with unit_of_work(sessions) as s:
        sync_teams(s, config)
        # the commit graph comes from a sync (no webhook carries it), as it was read
        api = fake.repos["acme/api"]
        rid = writes.upsert_repository(s, api.full_name, provider_id="77", default_branch="main")
        writes.upsert_commits(
            s,
            rid,
            [
                CommitRecord(c.sha, tuple(c.parents), c.authored_at, c.committed_at)
                for c in api.commits
            ],
        )
    app = HttpApp()
    install(app, Webhooks(sessions, config, SECRET))
    answers = []
    with Server(app, host="127.0.0.1", port=0, threads=4) as srv:
        for repo in fake.repos.values():
            for event, payload in webhook_deliveries(repo):
                answers.append(_deliver(srv.url, event, payload))
    derive_teams(sessions, config, ["acme/api"])  # as the next sync would
    engine.dispose()

    a, b = _rows(synced), _rows(delivered)
    assert a["deployments"] and a["incidents"] and a["pull_requests"] and a["reviews"]
    for table in a:
        assert a[table] == b[table], table
    assert _kpis(capsys, synced, monkeypatch) == _kpis(capsys, delivered, monkeypatch)


def test_the_shapes_cover_every_rule(fake, tmp_path: Path, monkeypatch):
    """What each shape's data exercises, checked on the synced side: links by deployment
    id and by a known SHA, unknown hex, a run off the configured branch, incident repos."""
    rows = {}
    for shape, text in SHAPES.items():
        url = f"sqlite:///{tmp_path / (shape + '.db')}"
        create_schema(url)
        (tmp_path / f"{shape}.yml").write_text(text, encoding="utf-8")
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv("KPIBOT_CONFIG", str(tmp_path / f"{shape}.yml"))
        monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
        monkeypatch.setenv("GITHUB_API_URL", fake.url)
        assert main(["sync", "--now", NOW]) == 0
        rows[shape] = _rows(url)
    links = {
        shape: {
            row[2][1][1]: (row[1][2] if row[1] else None, dict(row[2])["commit_sha"])
            for row in r["incidents"]
        }
        for shape, r in rows.items()
    }
    first = links["deployments-list-labels"]
    assert first["acme/api#53"] == ("102", None)  # by deployment URL (sev1: list labels only)
    assert first["acme/api#50"] == (None, sha(3))  # a known SHA, by its short form
    assert first["acme/api#52"] == (None, None)  # unknown hex is no link
    assert "acme/ops#7" not in first
    scalar = links["workflow-branch-scalar-label-incident-repos"]
    assert scalar["acme/ops#7"] == (None, sha(2))  # another repository's issue, linked
    assert scalar["acme/api#54"] == ("904", None)  # by workflow run URL
    assert "acme/api#53" not in scalar
    states = {
        dict(r[2])["provider_id"]: (dict(r[2])["resolved_at"], dict(r[2])["reopened_at"])
        for r in rows["workflow-any-branch"]["incidents"]
    }
    assert states["acme/api#56"] == (None, d(12, 16))  # reopened: open again
    assert states["acme/api#57"] == (d(13, 10), d(13, 9, 30))  # closed after its reopen
    runs = {
        shape: {d[1][1][1] for d in r["deployments"]}  # provider ids
        for shape, r in rows.items()
    }
    assert runs["workflow-branch-scalar-label-incident-repos"] == {"901", "902", "904", "905"}
    assert runs["workflow-any-branch"] == {"901", "902", "903", "904", "905"}
    assert runs["deployments-list-labels"] == {"101", "102"}
