"""`kpibot sync` reads each ``github_team``'s members from the fake GitHub (its GraphQL run
against GitHub's published schema) and keeps their history; PRs synced for teams defined by
people or paths are selected as they are written.

The data set is tests/test_sync_e2e.py's (week 2026-W46 of acme/api): #1 alice 5 h
(src/ledger.py), #2 carol 10 h (src/refunds.py and a lock file), #3 alice 3 h (src/round.py),
#4 a bot's, #5 open.
"""

from __future__ import annotations

import json
from pathlib import Path

import graphql
import pytest
from sqlalchemy import select

from bot.sources.github import TEAM_MEMBERS_QUERY
from bot.store.models import Team, TeamMember
from bot.store.session import make_engine, session_factory
from bot.surfaces.cli import main
from tests.conftest import fixtures_dir
from tests.fakes.github import FakeGitHub, github_schema
from tests.test_sync_e2e import NOW, TOKEN, dataset

LATER = "2026-11-25T00:00:00Z"

CONFIG = """
teams:
  - name: payments
    repos: [acme/api]
    github_team: acme/payments
  - name: refunds
    repos: [acme/api]
    paths: ["src/refunds.py", "src/round.py"]
    members: [carol]
  - name: everyone
    repos: [acme/api]
"""


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
    return tmp_path


def report(capsys, metric: str, period: str, team: str, now: str = NOW) -> dict:
    capsys.readouterr()
    args = ["report", metric, "--team", team, "--period", period, "--format", "json"]
    assert main([*args, "--now", now]) == 0
    return json.loads(capsys.readouterr().out)


def _members(db_url: str) -> list[tuple[str, str, str, object, object]]:
    engine = make_engine(db_url)
    try:
        with session_factory(engine)() as s:
            return [
                tuple(r)
                for r in s.execute(
                    select(Team.name, TeamMember.login, TeamMember.source, TeamMember.since)
                    .add_columns(TeamMember.until)
                    .join(Team, Team.id == TeamMember.team_id)
                    .order_by(Team.name, TeamMember.login, TeamMember.id)
                )
            ]
    finally:
        engine.dispose()


def test_the_members_query_is_valid_for_githubs_schema():
    assert graphql.validate(github_schema(), graphql.parse(TEAM_MEMBERS_QUERY)) == []


def test_github_team_members_are_synced_with_their_history(
    fake, workdir, capsys, monkeypatch, db_url
):
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    fake.teams["acme/payments"] = ["Alice"]
    assert main(["sync", "--now", NOW]) == 0
    assert fake.requests_to("POST", "/graphql")
    # payments: alice's #1 (5 h) and #3 (3 h); refunds: carol's #2 (10 h; #3 is alice's)
    ct = report(capsys, "cycle-time", "2026-W46", "payments")
    assert (ct["n"], ct["value"]) == (2, 4 * 3600)
    ct = report(capsys, "cycle-time", "2026-W46", "refunds")
    assert (ct["n"], ct["value"]) == (1, 10 * 3600)
    ct = report(capsys, "cycle-time", "2026-W46", "everyone")  # unchanged: every PR
    assert (ct["n"], ct["value"]) == (3, 5 * 3600)

    # carol joins the GitHub team, alice leaves; the history keeps both with the sync's time
    fake.teams["acme/payments"] = ["carol"]
    assert main(["sync", "--now", LATER]) == 0
    rows = [r for r in _members(db_url) if r[0] == "payments"]
    later = "2026-11-25 00:00:00"
    assert [(r[1], r[2], str(r[3]), str(r[4])) for r in rows] == [
        ("alice", "github", "None", later),
        ("carol", "github", later, "None"),
    ]
    # PRs merged before the change count for the team their author was on then
    ct = report(capsys, "cycle-time", "2026-W46", "payments", LATER)
    assert (ct["n"], ct["value"]) == (2, 4 * 3600)


def test_members_pages_are_followed(fake, workdir, capsys, monkeypatch, db_url):
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    fake.teams["acme/payments"] = [f"dev{i}" for i in range(150)] + ["alice"]
    assert main(["sync", "--now", NOW]) == 0
    team_queries = [r for r in fake.requests_to("POST", "/graphql") if b"TeamMembers" in r.body]
    assert len(team_queries) == 2  # 100 a page
    assert len([r for r in _members(db_url) if r[0] == "payments"]) == 151


def test_an_unknown_github_team_is_a_problem_and_changes_nothing(
    fake, workdir, capsys, monkeypatch, db_url
):
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    assert main(["sync", "--now", NOW]) == 1
    out = capsys.readouterr().out
    assert "github_team acme/payments of team payments" in out and "no such team" in out
    assert [r for r in _members(db_url) if r[0] == "payments"] == []
    # the other teams synced all the same
    ct = report(capsys, "cycle-time", "2026-W46", "refunds")
    assert ct["n"] == 1
