"""``kpibot sync`` end to end with GitHub, Jira and PagerDuty faked on loopback, then
``kpibot report``: predictability and scope creep from Jira sprints, MTTR and CFR from Jira and
PagerDuty incidents against GitHub deployments, all computed by hand."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from bot.surfaces.cli import main
from tests.conftest import fixtures_dir
from tests.fakes import github as gh
from tests.fakes.github import Commit, Deployment, FakeGitHub, Repo
from tests.fakes.jira import FakeJira
from tests.fakes.pagerduty import FakePagerDuty
from tests.test_jira_sync import build_board, build_incidents

NOW = "2026-11-20T09:00:00Z"
GH_TOKEN = "ghp_e2e_sources"
CONFIG = """
teams:
  - name: payments
    repos: [acme/api]
    deployments: {source: github-deployments}
    incidents: {source: jira, project: OPS, issue_type: Incident}
    sprints: {source: jira, board: 12}
  - name: mobile
    repos: [acme/app]
    deployments: {source: github-deployments}
    incidents: {source: pagerduty, services: [PSVC1, PSVC2]}
"""


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 10, day, hour, minute)


def repo(name: str, db_id: int, deploys: list[tuple[int, datetime]]) -> Repo:
    """A repository whose default branch has one commit per deployment, each deployed once."""
    r = Repo("acme", name, database_id=db_id)
    shas = [gh.sha_of(name, i) for i in range(len(deploys) + 1)]
    commits = [Commit(shas[0], [], at(1, 9), at(1, 9))]
    for i, (dep_id, finished) in enumerate(deploys, start=1):
        commits.append(Commit(shas[i], [shas[i - 1]], finished, finished))
        r.deployments.append(
            Deployment(dep_id, shas[i], finished, [("SUCCESS", finished)], environment="production")
        )
    r.commits = list(reversed(commits))
    return r


@pytest.fixture
def fakes():
    fixtures_dir()  # the fake GitHub checks its queries against GitHub's schema
    api = repo("api", 71, [(201, at(10, 9)), (202, at(15, 9)), (203, at(20, 11)), (204, at(28, 9))])
    app = repo("app", 72, [(301, at(10, 9, 30)), (302, at(14, 9)), (303, at(25, 9))])
    with (
        FakeGitHub([api, app], token=GH_TOKEN) as github,
        FakeJira() as jira,
        FakePagerDuty() as pd,
    ):
        build_board(jira)
        build_incidents(jira)
        pd.add(1, "PSVC1", "2026-10-10 10:00", "2026-10-10 10:20")
        pd.add(2, "PSVC2", "2026-10-20 12:00", "2026-10-20 13:40", with_resolved_at=False)
        pd.add(3, "PSVC1", "2026-10-27 09:00")
        pd.add(4, "POTHER", "2026-10-11 10:00", "2026-10-11 18:00")
        yield github, jira, pd


@pytest.fixture
def workdir(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, fakes) -> Path:
    github, jira, pd = fakes
    monkeypatch.chdir(tmp_path)
    (tmp_path / "kpibot.yml").write_text(CONFIG, encoding="utf-8")
    env = {
        "DATABASE_URL": db_url,
        "KPIBOT_CONFIG": str(tmp_path / "kpibot.yml"),
        "GITHUB_TOKEN": GH_TOKEN,
        "GITHUB_API_URL": github.url,
        "JIRA_URL": jira.url,
        "JIRA_EMAIL": "bot@example.com",
        "JIRA_API_TOKEN": "jira-token",
        "PAGERDUTY_API_TOKEN": "pd-token",
        "PAGERDUTY_API_URL": pd.url,
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert main(["db", "upgrade"]) == 0
    return tmp_path


def report(capsys, metric: str, team: str, period: str = "2026-10") -> dict:
    capsys.readouterr()
    args = ["report", metric, "--team", team, "--period", period, "--format", "json"]
    assert main([*args, "--now", NOW]) == 0
    return json.loads(capsys.readouterr().out)


def test_kpibot_sync_then_reports(workdir, fakes, capsys):
    assert main(["sync", "--now", NOW]) == 0
    out = capsys.readouterr().out
    assert "payments: incidents and sprints from jira: " in out
    assert "mobile: incidents from pagerduty" in out
    # Jira is asked once for a team taking both its sprints and its incidents from it
    assert len(fakes[1].requests_to("GET", r"/rest/agile/1\.0/board/12/sprint")) == 1
    assert "jira-token" not in out and "pd-token" not in out

    # payments (see tests/test_jira_sync.py for the items): 11 of 29 committed points done,
    # 3 points added after the start
    pred = report(capsys, "predictability", "payments")
    # (JSON rounds fractions to 4 decimals at the source)
    assert (pred["n"], pred["value"]) == (7, round(11 / 29, 4))
    creep = report(capsys, "scope-creep", "payments")
    assert creep["value"] == round(3 / 29, 4)
    # Jira incidents: 30 min and 2 h; deployments 10-10 and 10-20 each followed within an
    # hour by one, the 10-25 incident is 4.9 days after the latest deployment
    mttr = report(capsys, "mttr", "payments")
    assert (mttr["n"], mttr["value"]) == (2, 4500)
    cfr = report(capsys, "cfr", "payments")
    assert (cfr["n"], cfr["value"]) == (4, 0.5)

    # mobile, PagerDuty: 20 and 100 min resolved; #1 30 min after 301, #3 48 h after 303
    mttr = report(capsys, "mttr", "mobile")
    assert (mttr["n"], mttr["value"]) == (2, 3600)
    cfr = report(capsys, "cfr", "mobile")
    assert (cfr["n"], cfr["value"]) == (3, round(2 / 3, 4))
    assert report(capsys, "predictability", "mobile")["n"] == 0

    # the health view and the monthly digest carry the same numbers
    capsys.readouterr()
    assert main(["report", "health", "--team", "payments", "--period", "2026-10",
                 "--now", NOW]) == 0  # fmt: skip
    health = capsys.readouterr().out
    assert re.search(r"Delivery predictability +38%", health)  # 37.9 %
    assert main(["digest", "monthly", "--team", "payments", "--period", "2026-10",
                 "--now", NOW]) == 0  # fmt: skip
    digest = capsys.readouterr().out

    def line(label: str) -> str:
        return next(ln for ln in digest.splitlines() if ln.strip().startswith(label))

    assert "38%  n = 7" in line("Delivery predictability")
    assert "10%  n = 7" in line("Scope creep")
    assert "50%  n = 4" in line("Change failure rate")
    assert "1.2h  n = 2" in line("Time to restore")

    # a second sync changes no number
    assert main(["sync", "--now", NOW]) == 0
    again = report(capsys, "predictability", "payments")
    assert again["value"] == pred["value"]
    assert report(capsys, "cfr", "mobile")["value"] == round(2 / 3, 4)
