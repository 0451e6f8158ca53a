"""`kpibot sync` against the fake GitHub on loopback, then `kpibot report`: a small data set
whose KPIs are computed by hand below, on github.com-style and GitHub Enterprise Server URLs."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.store.models import Deployment as DeploymentRow
from bot.store.models import Incident, PullRequest, PullRequestFile, Repository, SyncCursor
from bot.store.models import Review as ReviewRow
from bot.store.session import make_engine, session_factory
from bot.surfaces.cli import main
from tests.conftest import fixtures_dir
from tests.fakes import github as gh
from tests.fakes.github import Commit, Deployment, FakeGitHub, Issue, Pull, Repo, Review

TOKEN = "ghp_e2e_token_value"
NOW = "2026-11-20T00:00:00Z"

CONFIG = """
teams:
  - name: payments
    timezone: UTC
    repos: [acme/api]
    production_environments: [production]
    deployments: {source: github-deployments}
    incidents: {source: github-issues, labels: [incident]}
"""


def d(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute)


def sha(n: int) -> str:
    return gh.sha_of("e2e", n)


def dataset() -> Repo:
    """Week 2026-W46 (Mon 9 Nov - Sun 15 Nov), UTC.

    #1 alice  first commit 9th 08:00, approved 11:00, merged 13:00  -> cycle 5 h
    #2 carol  first commit 10th 06:00, draft until 10:00, approved 12:00, merged 16:00 -> 10 h
    #3 alice  first commit 11th 09:00, no review, merged 12:00  -> 3 h
    #4 dependabot[bot], merged: left out.  #5 open.
    cycle time p50 = 5 h (n 3); review coverage = 2/3.
    Deployment 101 (commit of #2) succeeds 10th 17:20: the first one, so it contains the
    commits of the 7 days before: #1 and #2. Deployment 102 (commit of #3) succeeds 11th 13:30.
    lead times: #1 33h20m, #2 11h20m, #3 4h30m -> p50 = 11h20m = 40800 s.
    Incident #50 (label incident) names the commit of #3: started 11th 14:00, closed 15:00.
    change failure rate = 1 / 2; time to restore = 1 h.
    """
    repo = Repo("acme", "api", database_id=77)
    repo.pulls = {
        1: Pull(
            1,
            "Add ledger",
            "alice",
            d(9, 9),
            d(9, 13),
            "MERGED",
            d(9, 13),
            d(9, 13),
            sha(1),
            commit_dates=[d(9, 8)],
            files=[("src/ledger.py", 40, 2)],
            reviews=[Review(11, "bob", "APPROVED", d(9, 11))],
        ),
        2: Pull(
            2,
            "Refunds",
            "carol",
            d(10, 8),
            d(10, 16),
            "MERGED",
            d(10, 16),
            d(10, 16),
            sha(2),
            is_draft=False,
            ready_at=d(10, 10),
            commit_dates=[d(10, 7), d(10, 6)],
            files=[("src/refunds.py", 300, 20), ("package-lock.json", 900, 100)],
            reviews=[
                Review(21, "dave", "APPROVED", d(10, 12)),
                Review(22, "renovate[bot]", "COMMENTED", d(10, 9), type="Bot"),
            ],
        ),
        3: Pull(
            3,
            "Fix rounding",
            "alice",
            d(11, 10),
            d(11, 12),
            "MERGED",
            d(11, 12),
            d(11, 12),
            sha(3),
            commit_dates=[d(11, 9)],
            files=[("src/round.py", 5, 5)],
        ),
        4: Pull(
            4,
            "Bump lib",
            "dependabot[bot]",
            d(11, 1),
            d(11, 2),
            "MERGED",
            d(11, 2),
            d(11, 2),
            sha(4),
            author_type="Bot",
            commit_dates=[d(11, 1)],
        ),
        5: Pull(5, "WIP", "erin", d(12, 9), d(12, 9), commit_dates=[d(12, 8)]),
    }
    base = Commit(sha(0), [], d(1, 9), d(1, 9))
    c1 = Commit(sha(1), [base.sha], d(9, 13), d(9, 13))
    c4 = Commit(sha(4), [c1.sha], d(10, 2), d(10, 2))
    c2 = Commit(sha(2), [c4.sha], d(10, 16), d(10, 16))
    c3 = Commit(sha(3), [c2.sha], d(11, 12), d(11, 12))
    repo.commits = [c3, c2, c4, c1, base]
    repo.deployments = [
        Deployment(
            101,
            sha(2),
            d(10, 17),
            [
                ("IN_PROGRESS", d(10, 17, 1)),
                ("SUCCESS", d(10, 17, 20)),
                ("INACTIVE", d(11, 13, 30)),
            ],
        ),
        Deployment(
            102, sha(3), d(11, 13), [("IN_PROGRESS", d(11, 13, 2)), ("SUCCESS", d(11, 13, 30))]
        ),
        Deployment(103, sha(3), d(11, 14), [("SUCCESS", d(11, 14, 10))], environment="staging"),
    ]
    repo.issues = [
        Issue(
            50,
            "Payments down",
            d(11, 14),
            d(11, 15),
            d(11, 15),
            ["incident"],
            body=f"Started after the deploy of {sha(3)[:10]}.",
        ),
        Issue(51, "Typo in docs", d(11, 14), d(11, 16), None, ["docs"]),
    ]
    return repo


@pytest.fixture
def fake():
    fixtures_dir()  # the fake executes queries against GitHub's published schema
    with FakeGitHub([dataset()], token=TOKEN) as server:
        yield server


@pytest.fixture
def workdir(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "kpibot.yml").write_text(CONFIG, encoding="utf-8")
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("KPIBOT_CONFIG", str(tmp_path / "kpibot.yml"))
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    return tmp_path  # the schema is there (db_url); sync stores the teams itself


def report(capsys, metric: str, period: str) -> dict:
    capsys.readouterr()
    assert (
        main(
            [
                "report",
                metric,
                "--team",
                "payments",
                "--period",
                period,
                "--format",
                "json",
                "--now",
                NOW,
            ]
        )
        == 0
    )
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("style", ["github.com", "ghes"])
def test_sync_then_report_matches_hand_computed_kpis(fake, workdir, capsys, monkeypatch, style):
    monkeypatch.setenv("GITHUB_API_URL", fake.url if style == "github.com" else fake.ghes_url)
    assert main(["sync", "--now", NOW]) == 0
    out = capsys.readouterr().out
    assert "acme/api: 5 pull requests, 5 commits, 2 deployments, 1 incidents" in out
    assert "synced 1 of 1 repositories" in out
    graphql_path = "/graphql" if style == "github.com" else "/api/graphql"
    assert fake.requests_to("POST", graphql_path), "GraphQL went to the wrong endpoint"
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in fake.requests)
    assert TOKEN not in out

    ct = report(capsys, "cycle-time", "2026-W46")
    assert (ct["n"], ct["value"]) == (3, 5 * 3600)
    cov = report(capsys, "review-coverage", "2026-W46")
    assert cov["n"] == 3 and cov["value"] == round(2 / 3, 4)  # JSON: 4 decimals
    size = report(capsys, "pr-size", "2026-W46")
    assert size["value"] == 42  # 42, 320 (lock file left out), 10
    lt = report(capsys, "lead-time", "2026-11")
    assert (lt["n"], lt["value"]) == (3, 11 * 3600 + 20 * 60)
    cfr = report(capsys, "cfr", "2026-11")
    assert (cfr["n"], cfr["value"]) == (2, 0.5)
    mttr = report(capsys, "mttr", "2026-11")
    assert (mttr["n"], mttr["value"]) == (1, 3600)


def test_second_sync_fetches_only_what_changed(fake, workdir, capsys, monkeypatch, db_url):
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    assert main(["sync", "--now", NOW]) == 0
    first = len(fake.requests)
    capsys.readouterr()
    repo = fake.repos["acme/api"]
    # #5 is approved and merged, and deployed; nothing else changes
    p5 = repo.pulls[5]
    p5.reviews.append(Review(51, "bob", "APPROVED", d(12, 11)))
    p5.state, p5.merged_at, p5.closed_at, p5.merge_sha = "MERGED", d(12, 12), d(12, 12), sha(5)
    p5.updated_at = d(12, 12)
    repo.commits.insert(0, Commit(sha(5), [sha(3)], d(12, 12), d(12, 12)))
    repo.deployments.append(Deployment(104, sha(5), d(12, 13), [("SUCCESS", d(12, 13, 15))]))
    repo.issues.append(
        Issue(
            52,
            "Checkout errors",
            d(12, 14),
            d(12, 14, 30),
            d(12, 14, 30),
            ["Incident"],
            body="Since https://github.com/acme/api/deployments/104 went out.",
        )
    )
    assert main(["sync", "--now", NOW]) == 0
    out = capsys.readouterr().out
    assert "acme/api: 1 pull requests" in out and "(1 requests" in out
    assert len(fake.requests) - first == 1
    ct = report(capsys, "cycle-time", "2026-W46")
    assert (ct["n"], ct["value"]) == (4, 4.5 * 3600)  # median of 3, 4 (#5: 08:00-12:00), 5, 10 h
    lt = report(capsys, "lead-time", "2026-11")
    assert lt["n"] == 4
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        assert s.scalar(select(func.count()).select_from(PullRequest)) == 5
        assert s.scalar(select(Repository.provider_id)) == "77"
        kinds = set(s.scalars(select(SyncCursor.kind)))
        linked = s.execute(
            select(Incident.provider_id, DeploymentRow.provider_id, Incident.commit_sha)
            .outerjoin(DeploymentRow, DeploymentRow.id == Incident.deployment_id)
            .order_by(Incident.provider_id)
        ).all()
    engine.dispose()
    assert kinds == {"pulls", "history", "deployments", "issues"}
    assert [tuple(r) for r in linked] == [
        ("acme/api#50", None, sha(3)),  # by commit (the 10-digit prefix, stored in full)
        ("acme/api#52", "104", None),  # by deployment URL; labels match case-insensitively
    ]


def test_full_resync_changes_nothing(fake, workdir, capsys, monkeypatch):
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    assert main(["sync", "--now", NOW]) == 0
    before = report(capsys, "lead-time", "2026-11")
    assert main(["sync", "--full", "--team", "payments", "--now", NOW]) == 0
    out = capsys.readouterr().out
    assert "acme/api: 5 pull requests" in out
    assert report(capsys, "lead-time", "2026-11") == before


def test_unknown_team_is_bad_input(fake, workdir, capsys, monkeypatch):
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    assert main(["sync", "--team", "paymnts", "--now", NOW]) == 2
    err = capsys.readouterr().err
    assert "unknown team 'paymnts'" in err and "payments" in err
    assert fake.requests == []


def test_bad_token_names_the_repo_and_what_to_check(fake, workdir, capsys, monkeypatch):
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_wrong_token_value")
    assert main(["sync", "--now", NOW]) == 1
    out = capsys.readouterr().out
    assert "acme/api: failed" in out and "GITHUB_TOKEN" in out and "401" in out
    assert "ghp_wrong_token_value" not in out


def test_missing_repo_is_reported_and_the_others_sync(fake, workdir, capsys, monkeypatch):
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    (workdir / "kpibot.yml").write_text(
        CONFIG.replace("repos: [acme/api]", "repos: [acme/gone, acme/api]"), encoding="utf-8"
    )
    assert main(["sync", "--now", NOW]) == 1
    out = capsys.readouterr().out
    assert "acme/gone: failed: acme/gone was not found" in out and "kpibot.yml" in out
    assert "acme/api: 5 pull requests" in out
    assert "synced 1 of 2 repositories" in out
    ct = report(capsys, "cycle-time", "2026-W46")
    assert ct["n"] == 3


def test_workflow_runs_as_deployments_with_link_pagination(fake, workdir, capsys, monkeypatch):
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    repo = fake.repos["acme/api"]
    repo.deployments = []
    start = d(2, 9)
    # 130 runs of deploy.yml (two REST pages), every 3 h; the last two deploy #2 and #3
    runs = [
        gh.Run(
            9000 + i,
            "deploy.yml",
            sha(0),
            start + timedelta(hours=3 * i),
            start + timedelta(hours=3 * i, minutes=10),
        )
        for i in range(128)
    ]
    runs.append(gh.Run(9200, "deploy.yml", sha(2), d(10, 17), d(10, 17, 20)))
    runs.append(gh.Run(9201, "deploy.yml", sha(3), d(11, 13), d(11, 13, 30)))
    runs.append(gh.Run(9202, "deploy.yml", sha(3), d(11, 14), d(11, 14, 5), conclusion="failure"))
    repo.runs = runs
    (workdir / "kpibot.yml").write_text(
        CONFIG.replace("{source: github-deployments}", "{source: workflow, workflow: deploy.yml}"),
        encoding="utf-8",
    )
    assert main(["sync", "--now", NOW]) == 0
    out = capsys.readouterr().out
    assert "131 deployments" in out
    assert len(fake.requests_to("GET", r"/repos/acme/api/actions/workflows/deploy.yml/runs")) == 2
    cfr = report(capsys, "cfr", "2026-11")
    assert cfr["n"] == 130  # successful production runs finished in November


def test_progress_on_a_terminal_overwrites_one_status_line():
    import io

    from bot.sources.sync import TerminalProgress, as_progress

    buf = io.StringIO()
    p = TerminalProgress(buf)
    p.status("acme/api: reading pulls · 50 pull requests")
    p.status("acme/api: reading pulls · 100 pull requests")
    p.line("acme/api: 100 pull requests")
    assert buf.getvalue() == (
        "acme/api: reading pulls · 50 pull requests"
        "\r\x1b[Kacme/api: reading pulls · 100 pull requests"
        "\r\x1b[Kacme/api: 100 pull requests\n"
    )
    lines: list[str] = []
    plain = as_progress(lines.append)
    plain.status("transient")
    plain.line("kept")
    assert lines == ["kept"]


def test_releases_as_deployments(fake, workdir, capsys, monkeypatch):
    """The same deliveries as published releases: same lead time and change failure rate."""
    monkeypatch.setenv("GITHUB_API_URL", fake.ghes_url)
    repo = fake.repos["acme/api"]
    repo.deployments = []
    repo.releases = [
        gh.Release(1, "v1.0.0", sha(2), d(10, 17), d(10, 17, 20)),
        gh.Release(2, "v1.1.0", sha(3), d(11, 13), d(11, 13, 30)),
        gh.Release(3, "v1.2.0-rc", sha(3), d(11, 15), None, draft=True),
    ]
    (workdir / "kpibot.yml").write_text(
        CONFIG.replace("{source: github-deployments}", "{source: releases}"), encoding="utf-8"
    )
    assert main(["sync", "--now", NOW]) == 0
    assert "3 deployments" in capsys.readouterr().out
    lt = report(capsys, "lead-time", "2026-11")
    assert (lt["n"], lt["value"]) == (3, 11 * 3600 + 20 * 60)
    cfr = report(capsys, "cfr", "2026-11")
    assert (cfr["n"], cfr["value"]) == (2, 0.5)


def test_a_github_api_url_that_is_not_a_url_is_bad_input(workdir, capsys, monkeypatch):
    monkeypatch.setenv("GITHUB_API_URL", "ghe.acme.io/api/v3")
    assert main(["sync", "--now", NOW]) == 2
    err = capsys.readouterr().err
    assert "GITHUB_API_URL must be a URL" in err and "https://HOST/api/v3" in err


def test_pull_requests_with_more_files_and_reviews_than_a_page(
    fake, workdir, capsys, monkeypatch, db_url
):
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    p3 = fake.repos["acme/api"].pulls[3]
    p3.files = [(f"src/gen/part_{i:03}.py", 1, 0) for i in range(130)]
    p3.reviews = [Review(3000 + i, "bob", "COMMENTED", d(11, 10, i)) for i in range(55)]
    assert main(["sync", "--now", NOW]) == 0
    details = [r for r in fake.requests if b"PullRequestDetails" in r.body]
    assert len(details) == 1  # the rest of the files and the reviews in one request
    size = report(capsys, "pr-size", "2026-W46")
    assert size["value"] == 130  # 42, 130, 320
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        pid = s.scalar(select(PullRequest.id).where(PullRequest.number == 3))
        files = s.scalar(select(func.count()).where(PullRequestFile.pull_request_id == pid))
        reviews = s.scalar(select(func.count()).where(ReviewRow.pull_request_id == pid))
    engine.dispose()
    assert (files, reviews) == (130, 55)


def test_incidents_from_another_repository(fake, workdir, capsys, monkeypatch, db_url):
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    ops = fake.add(Repo("acme", "ops", database_id=78))
    ops.issues = [
        Issue(7, "Checkout outage", d(11, 14), d(11, 15), d(11, 15), ["incident"]),
        Issue(8, "Upgrade runbook", d(11, 14), d(11, 15), None, ["docs"]),
    ]
    (workdir / "kpibot.yml").write_text(
        CONFIG.replace("labels: [incident]}", "labels: [incident], repos: [acme/ops]}"),
        encoding="utf-8",
    )
    assert main(["sync", "--now", NOW]) == 0
    out = capsys.readouterr().out
    assert "acme/ops: 0 pull requests, 0 commits, 0 deployments, 1 incidents" in out
    assert "acme/api: 5 pull requests, 5 commits, 2 deployments, 0 incidents" in out
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        names = set(s.scalars(select(Repository.full_name)))
        incidents = list(s.scalars(select(Incident.provider_id)))
    engine.dispose()
    assert names == {"acme/api"} and incidents == ["acme/ops#7"]
    mttr = report(capsys, "mttr", "2026-11")
    assert (mttr["n"], mttr["value"]) == (1, 3600)


def test_an_incident_of_a_shared_repository_counts_for_every_team(
    fake, workdir, capsys, monkeypatch, db_url
):
    """Two teams share acme/api and both watch the `incident` label: issue #50 is an incident
    of each (it was stored for one team only), and syncing again keeps exactly those two."""
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    shared = CONFIG + CONFIG.split("teams:\n", 1)[1].replace("name: payments", "name: checkout")
    (workdir / "kpibot.yml").write_text(shared, encoding="utf-8")
    for _ in range(2):
        assert main(["sync", "--now", NOW]) == 0
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        rows = s.execute(select(Incident.team_id, Incident.provider_id)).all()
    engine.dispose()
    assert sorted(pid for _, pid in rows) == ["acme/api#50", "acme/api#50"]
    assert len({tid for tid, _ in rows}) == 2
    for team in ("payments", "checkout"):
        capsys.readouterr()
        args = ["report", "mttr", "--team", team, "--period", "2026-11", "--format", "json"]
        assert main([*args, "--now", NOW]) == 0
        mttr = json.loads(capsys.readouterr().out)
        assert (mttr["n"], mttr["value"]) == (1, 3600), team


def test_a_reopened_incident_issue_is_not_resolved(fake, workdir, capsys, monkeypatch):
    """GitHub keeps a reopened issue's last ``closedAt``; the incident is open again, so time to
    restore has nothing resolved to count."""
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    issue = next(i for i in fake.repos["acme/api"].issues if i.number == 50)
    issue.reopened = True
    assert main(["sync", "--now", NOW]) == 0
    mttr = report(capsys, "mttr", "2026-11")
    assert (mttr["n"], mttr["value"]) == (0, None)
