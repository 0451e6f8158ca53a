"""Deployments from release branches through the fake GitHub and `kpibot sync`: the history of
deployed commits the default branch does not have is fetched, so lead time, change failure
rate and rollbacks are exactly as METRICS.md defines them; an unknown deployed commit gives
unknown contents (no lead-time credit, counted for deployment frequency and CFR, reported on
the card)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.metrics.engine import TeamEngine
from bot.reports.cards import build_card
from bot.settings import load_config
from bot.slack.blocks import card_blocks
from bot.store.models import Deployment as DeploymentRow
from bot.store.session import make_engine, session_factory
from bot.surfaces.cli import main
from tests.conftest import fixtures_dir
from tests.fakes import github as gh
from tests.fakes.github import Commit, Deployment, FakeGitHub, Issue, Pull, Repo
from tests.helpers import period

TOKEN = "ghp_release_token_value"
NOW = "2026-11-20T00:00:00Z"
HOUR = 3600

CONFIG = """
teams:
  - name: payments
    timezone: UTC
    repos: [acme/app]
    branches: ["main", "release/*"]
    production_environments: [production]
    deployments: {source: github-deployments}
    incidents: {source: github-issues, labels: [incident]}
"""


def d(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute)


def sha(name: str) -> str:
    return gh.sha_of("release-e2e", name)


UNKNOWN = "f" * 40  # deployed, but GitHub has no such commit


def dataset() -> Repo:
    r"""Week 2026-W46 (Mon 9 Nov - Sun 15 Nov), UTC.

    main:         m0 --- m1 ----------- m2 ---- m3 ---- m4
                          \
    release/1.0:           r1 ---- h1

    m0 root (1 Nov).  #1 alice: first commit 9th 08:00, merged 9th 10:00 -> m1.
    r1: the release cut, a direct commit on release/1.0 (9th 11:00).
    #2 bob: first commit 9th 12:00, merged into main 10th 09:00 -> m2.
    #3 carol, the hotfix into release/1.0 (cherry-picked there): first commit 10th 10:00,
       merged 10th 12:00 -> h1.
    #5 erin: first commit 10th 13:30, merged into main 10th 14:00 -> m3.
    #4 dave: first commit 11th 08:00, merged into main 11th 09:00 -> m4.

    Production deployments (finish):
    D201 r1 9th 13:30, the first: r1 and m1 (m0 is older than 7 days) -> #1, lead 5h30m.
    D202 h1 10th 13:20: h1 ^r1 = {h1} -> #3, lead 3h20m (not #2, merged into main only).
    D203 r1 10th 15:10: a strict ancestor of h1 -> contains nothing; rolls D202 back.
    D204 m4 11th 10:20: m4 ^r1 = {m4, m3, m2} -> #2 46h20m, #5 20h50m, #4 2h20m.
    D205 an unknown commit, 12th 10:10: unknown contents; incident #60 names its commit.
    D206 (staging) h1: not production.

    lead time (W46): 2h20m, 3h20m, 5h30m, 20h50m, 46h20m -> p50 5h30m = 19800 s, n 5;
    1 deployment with unknown contents.
    CFR (W46): 5 successful; failed D202 (rollback) and D205 (incident) -> 2/5.
    deployment frequency: deploy days 9, 10, 11, 12 -> 4 per week, n 5.
    """
    repo = Repo("acme", "app", database_id=88)

    def merged(
        n: int, title: str, author: str, first: datetime, at: datetime, to: str, base="main"
    ):
        return Pull(
            n,
            title,
            author,
            first,
            at,
            "MERGED",
            at,
            at,
            sha(to),
            base=base,
            head=f"{author}/{n}",
            commit_dates=[first],
            files=[(f"src/f{n}.py", 10, 1)],
        )

    repo.pulls = {
        1: merged(1, "Ledger", "alice", d(9, 8), d(9, 10), "m1"),
        2: merged(2, "Refunds", "bob", d(9, 12), d(10, 9), "m2"),
        3: merged(3, "Hotfix rounding", "carol", d(10, 10), d(10, 12), "h1", "release/1.0"),
        4: merged(4, "Exports", "dave", d(11, 8), d(11, 9), "m4"),
        5: merged(5, "Fees", "erin", d(10, 13, 30), d(10, 14), "m3"),
    }
    c = {
        "m0": Commit(sha("m0"), [], d(1, 9), d(1, 9)),
        "m1": Commit(sha("m1"), [sha("m0")], d(9, 10), d(9, 10)),
        "r1": Commit(sha("r1"), [sha("m1")], d(9, 11), d(9, 11)),
        "m2": Commit(sha("m2"), [sha("m1")], d(10, 9), d(10, 9)),
        "h1": Commit(sha("h1"), [sha("r1")], d(10, 10), d(10, 12)),
        "m3": Commit(sha("m3"), [sha("m2")], d(10, 14), d(10, 14)),
        "m4": Commit(sha("m4"), [sha("m3")], d(11, 9), d(11, 9)),
    }
    repo.commits = [c["m4"], c["m3"], c["m2"], c["m1"], c["m0"]]
    repo.branch_commits = [c["h1"], c["r1"]]

    def deployed(n: int, what: str, start: datetime, done: datetime, env="production"):
        return Deployment(
            n,
            what,
            start,
            [("IN_PROGRESS", start), ("SUCCESS", done)],
            environment=env,
            ref="main" if what in (sha("m4"), UNKNOWN) else "release/1.0",
        )

    repo.deployments = [
        deployed(201, sha("r1"), d(9, 13), d(9, 13, 30)),
        deployed(202, sha("h1"), d(10, 13), d(10, 13, 20)),
        deployed(203, sha("r1"), d(10, 15), d(10, 15, 10)),
        deployed(204, sha("m4"), d(11, 10), d(11, 10, 20)),
        deployed(205, UNKNOWN, d(12, 10), d(12, 10, 10)),
        deployed(206, sha("h1"), d(10, 16), d(10, 16, 5), env="staging"),
    ]
    repo.issues = [
        Issue(
            60,
            "Checkout broken",
            d(12, 11),
            d(12, 12),
            d(12, 12),
            ["incident"],
            body=f"Since the deploy of {UNKNOWN[:12]}.",
        )
    ]
    return repo


@pytest.fixture
def fake():
    fixtures_dir()  # the fake executes queries against GitHub's published schema
    with FakeGitHub([dataset()], token=TOKEN) as server:
        yield server


@pytest.fixture
def workdir(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, fake) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "kpibot.yml").write_text(CONFIG, encoding="utf-8")
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("KPIBOT_CONFIG", str(tmp_path / "kpibot.yml"))
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    return tmp_path


def report(capsys, metric: str, fmt: str = "json", period: str = "2026-W46") -> dict | str:
    capsys.readouterr()
    args = ["report", metric, "--team", "payments", "--period", period, "--format", fmt]
    assert main([*args, "--now", NOW]) == 0
    out = capsys.readouterr().out
    return json.loads(out) if fmt == "json" else out


def history_requests(fake: FakeGitHub) -> list:
    return [
        r for r in fake.requests_to("POST", "/graphql") if "CommitHistories" in r.json()["query"]
    ]


def rows(db_url: str) -> dict[str, tuple[bool, datetime | None]]:
    eng = make_engine(db_url)
    try:
        with session_factory(eng)() as s:
            return {
                r.provider_id: (r.contents_unknown, r.rolled_back_at)
                for r in s.execute(
                    select(
                        DeploymentRow.provider_id,
                        DeploymentRow.contents_unknown,
                        DeploymentRow.rolled_back_at,
                    ).where(DeploymentRow.environment == "production")
                )
            }
    finally:
        eng.dispose()


def assert_exact_kpis(capsys, db_url: str) -> None:
    lt = report(capsys, "lead-time")
    assert (lt["n"], lt["value"]) == (5, 5 * HOUR + 30 * 60)
    assert lt["breakdown"]["unknown_contents"] == 1
    cfr = report(capsys, "cfr")
    assert (cfr["n"], cfr["value"]) == (5, pytest.approx(2 / 5))
    assert cfr["breakdown"]["by_rollback"] == 1 and cfr["breakdown"]["by_incident"] == 1
    df = report(capsys, "deploy-frequency")
    assert (df["n"], df["value"]) == (5, 4)
    assert rows(db_url) == {
        "201": (False, None),
        "202": (False, d(10, 15, 10)),  # rolled back by D203's redeploy of r1
        "203": (False, None),
        "204": (False, None),
        "205": (True, None),
    }


def test_release_branch_deployments_hotfix_rollback_and_unknown_commit(
    fake, workdir, capsys, db_url
):
    assert main(["sync", "--now", NOW]) == 0
    out = capsys.readouterr().out
    # r1 and h1 came from the history of the deployed commits, in one extra request
    assert "acme/app: 5 pull requests, 7 commits, 5 deployments, 1 incidents" in out
    assert len(history_requests(fake)) == 1
    assert_exact_kpis(capsys, db_url)

    text = report(capsys, "lead-time", "text")
    assert "1 deployment with unknown contents is not counted" in text
    # the same line on the Block Kit card
    config = load_config(workdir / "kpibot.yml")
    eng = make_engine(db_url)
    try:
        with session_factory(eng)() as s:
            card = build_card(
                TeamEngine(s, config.team("payments")), "lead-time", period("2026-W46")
            )
    finally:
        eng.dispose()
    blocks = json.dumps(card_blocks(card))
    assert "1 deployment with unknown contents is not counted" in blocks

    # the next sync does not ask again for a commit GitHub said it does not have
    assert main(["sync", "--now", NOW]) == 0
    assert len(history_requests(fake)) == 1
    assert_exact_kpis(capsys, db_url)
    # --full does
    assert main(["sync", "--full", "--now", NOW]) == 0
    assert len(history_requests(fake)) == 2
    assert_exact_kpis(capsys, db_url)


def test_history_obtained_by_a_later_sync_recomputes_the_deployments(fake, workdir, capsys, db_url):
    fake.object_errors = 3  # GitHub fails on the three deployed commits' histories this time
    assert main(["sync", "--now", NOW]) == 0
    out = capsys.readouterr().out
    assert "could not read the history" not in out  # partial answers: no commit, no guess
    assert rows(db_url) == {
        "201": (True, None),
        "202": (True, None),
        "203": (True, None),
        "204": (True, None),  # its path back to D203's r1 is unknown too
        "205": (True, None),
    }
    lt = report(capsys, "lead-time")
    assert (lt["n"], lt["value"], lt["breakdown"]) == (0, None, {"unknown_contents": 5})
    cfr = report(capsys, "cfr")  # unknown contents still count for the change failure rate
    assert (cfr["n"], cfr["value"]) == (5, pytest.approx(1 / 5))
    assert "5 deployments with unknown contents are not counted" in report(
        capsys, "lead-time", "text"
    )

    # the next sync gets the history: every deployment is recomputed, exactly
    assert main(["sync", "--now", NOW]) == 0
    assert_exact_kpis(capsys, db_url)
