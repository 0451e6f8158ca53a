"""Teams made of people and paths (METRICS.md, Which PRs are a team's), through the store's
population and the engine, against KPIs computed by hand.

One monorepo, ``acme/mono``, shared by four teams, all in UTC:

- payments: ``members`` (alice, bob, carol; dave joins on 15 Nov) and paths
  ``services/payments/**``, ``libs/billing/**``;
- search: ``github_team`` (dave and erin; dave leaves on 15 Nov) and ``services/search/**``;
- web: paths only, ``apps/web/**``;
- legacy: neither, so every PR of the repository (the behaviour before people and paths).

Every PR below is merged in November 2026 into ``main``; its cycle time is the hours given
(no commit before it was opened).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.metrics.engine import TeamEngine
from bot.settings import Config, TeamConfig, parse_config
from bot.store import population
from bot.store.models import TeamMember, TeamPullRequest
from bot.store.teams import sync_teams
from tests.factories import T, deployment, pr
from tests.helpers import HOUR, contain, period, team_id

MONO = ("acme/mono",)
PAYMENTS = TeamConfig(
    name="payments",
    repos=MONO,
    members=("alice", "bob", "carol"),
    paths=("services/payments/**", "libs/billing/**"),
)
SEARCH = TeamConfig(
    name="search", repos=MONO, github_team="acme/search", paths=("services/search/**",)
)
WEB = TeamConfig(name="web", repos=MONO, paths=("apps/web/**",))
LEGACY = TeamConfig(name="legacy", repos=MONO)
MID = T("2026-11-15 00:00")


def _config(payments: TeamConfig = PAYMENTS) -> Config:
    return Config((payments, SEARCH, WEB, LEGACY))


def _merged(session, author, hours, merged, files, **kw):
    m = T(merged)
    return pr(
        session,
        author=author,
        created=m - timedelta(hours=hours),
        merged=m,
        repository="acme/mono",
        files=[(f, 10, 5) for f in files],
        reviews=[("zed", "APPROVED", m - timedelta(minutes=30))],
        **kw,
    )


@pytest.fixture
def mono(session):
    """The organisation as of 1 December; returns the PRs by name."""
    sync_teams(session, _config(), now=T("2026-10-01 00:00"))
    search = team_id(session, "search")
    population.apply_github_members(session, SEARCH, search, ["Dave", "erin"], T("2026-10-01"))
    # 15 Nov: dave moves from search to payments
    population.apply_github_members(session, SEARCH, search, ["erin"], MID)
    joined = TeamConfig(**{**PAYMENTS.__dict__, "members": (*PAYMENTS.members, "dave")})
    sync_teams(session, _config(joined), now=MID)
    prs = {
        "p1": _merged(session, "alice", 10, "2026-11-03 12:00", ["services/payments/api.py"]),
        # touches two teams' paths: payments (bob is a member) and web (paths only)
        "p2": _merged(
            session, "bob", 20, "2026-11-05 12:00", ["services/payments/x.py", "apps/web/y.ts"]
        ),
        "p3": _merged(session, "dave", 30, "2026-11-10 12:00", ["services/search/q.py"]),
        "p4": _merged(session, "dave", 40, "2026-11-20 12:00", ["services/payments/z.py"]),
        "p5": _merged(session, "dave", 50, "2026-11-20 13:00", ["services/search/r.py"]),
        "p6": _merged(session, "dave", 60, "2026-11-12 12:00", ["services/payments/w.py"]),
        "bot": _merged(
            session,
            "renovate[bot]",
            5,
            "2026-11-06 12:00",
            ["apps/web/package.json"],
            author_is_bot=True,
        ),
        # an author in no team, in web's and payments' folders
        "p8": _merged(
            session, "zoe", 70, "2026-11-08 12:00", ["apps/web/page.tsx", "libs/billing/b.py"]
        ),
        # a member, but only an ignored file (a lock file) in the team's folder
        "p9": _merged(session, "alice", 80, "2026-11-09 12:00", ["services/payments/yarn.lock"]),
        "p10": _merged(session, "erin", 90, "2026-11-25 12:00", ["services/search/a.py"]),
        "open": pr(
            session,
            author="carol",
            created=T("2026-11-28 09:00"),
            merged=None,
            repository="acme/mono",
            files=[("libs/billing/open.py", 1, 1)],
        ),
    }
    d = deployment(session, sha="d1", finished=T("2026-11-26 12:00"), repository="acme/mono")
    contain(session, d, prs["p1"], prs["p3"], prs["p5"])
    # as a sync does after writing PRs
    population.refresh(session, _config().teams, pr_ids=[p.id for p in prs.values()])
    session.commit()
    return prs


def _engine(session, team: TeamConfig) -> TeamEngine:
    return TeamEngine(session, team)


NOV = period("2026-11")


@pytest.mark.parametrize(
    ("team", "hours"),
    [
        (PAYMENTS, [10, 20, 40]),  # p1, p2, p4 (dave after joining); not p6, p8, p9
        (SEARCH, [30, 90]),  # p3 (dave before leaving), p10; not p5
        (WEB, [20, 70]),  # p2, p8; the bot's PR is no one's
        (LEGACY, [10, 20, 30, 40, 50, 60, 70, 80, 90]),  # every non-bot PR
    ],
    ids=["payments", "search", "web", "legacy"],
)
def test_cycle_time_counts_each_teams_own_prs(session, mono, team, hours):
    mv = _engine(session, team).value("cycle-time", NOV)
    assert mv.n == len(hours)
    s = sorted(hours)
    mid = (s[(len(s) - 1) // 2] + s[len(s) // 2]) / 2
    assert mv.value == pytest.approx(mid * HOUR)


def test_merge_frequency_counts_the_teams_authors(session, mono):
    weeks = 30 / 7
    # payments: 3 PRs by alice, bob, dave; search: 2 by dave, erin; web: 2 by bob, zoe
    for team, prs, authors in ((PAYMENTS, 3, 3), (SEARCH, 2, 2), (WEB, 2, 2), (LEGACY, 9, 5)):
        mv = _engine(session, team).value("merge-frequency", NOV)
        assert mv.value == pytest.approx(prs / authors / weeks), team.name


def test_lead_time_and_deployments_follow_the_population(session, mono):
    # deployment d1 (26 Nov 12:00) contains p1, p3 and p5
    lt = {t.name: _engine(session, t).value("lead-time", NOV) for t in _config().teams}
    assert lt["payments"].n == 1  # p1: opened 3 Nov 02:00 -> 23 days 10 hours
    assert lt["payments"].value == pytest.approx((23 * 24 + 10) * HOUR)
    assert lt["search"].n == 1  # p3 only (opened 9 Nov 06:00): p5 came after dave left
    assert lt["search"].value == pytest.approx((17 * 24 + 6) * HOUR)
    assert lt["web"].n == 0
    assert lt["legacy"].n == 3
    # deployments stay per repository: every team sees the same one
    for t in _config().teams:
        assert _engine(session, t).value("deploy-frequency", NOV).n == 1


def test_waiting_for_review_lists_only_the_teams_open_prs(session, mono):
    now = T("2026-12-01 12:00")
    assert [w.number for w in _engine(session, PAYMENTS).waiting_for_review(now)] == [
        mono["open"].number
    ]
    assert _engine(session, SEARCH).waiting_for_review(now) == []
    assert len(_engine(session, LEGACY).waiting_for_review(now)) == 1


def test_membership_history_is_kept_with_its_times(session, mono):
    rows = session.execute(
        select(TeamMember.team_id, TeamMember.login, TeamMember.since, TeamMember.until)
        .where(TeamMember.login == "dave")
        .order_by(TeamMember.team_id)
    ).all()
    assert [(r.since, r.until) for r in rows] == [(MID, None), (None, MID)]
    assert population.current_members(session, team_id(session, "search")) == {"erin"}


def test_a_changed_definition_selects_the_prs_again(session, mono):
    # payments takes the web folder over: p2 and p8's web files now count... for members only
    wider = TeamConfig(
        **{
            **PAYMENTS.__dict__,
            "members": (*PAYMENTS.members, "dave"),
            "paths": ("apps/web/**",),
        }
    )
    sync_teams(session, _config(wider), now=T("2026-12-01 00:00"))
    session.commit()
    mv = _engine(session, wider).value("cycle-time", NOV)
    assert mv.n == 1  # p2 (bob); p8 is zoe's, the bot's is a bot's
    # and without members nor paths it is the repository's again, with no rows kept
    plain = TeamConfig(name="payments", repos=MONO)
    sync_teams(session, _config(plain), now=T("2026-12-02 00:00"))
    session.commit()
    assert _engine(session, plain).value("cycle-time", NOV).n == 9
    assert not session.scalars(
        select(TeamPullRequest).where(TeamPullRequest.team_id == team_id(session))
    ).all()


def test_a_pr_written_later_is_selected_when_written(session, mono):
    late = _merged(session, "carol", 12, "2026-11-27 12:00", ["libs/billing/late.py"])
    population.refresh(
        session, population.teams_of_repository(_config(), "acme/mono"), pr_ids=[late.id]
    )
    session.commit()
    assert _engine(session, PAYMENTS).value("cycle-time", NOV).n == 4


def test_config_members_people_and_paths_parse():
    config, problems = parse_config(
        """
people:
  - {github: Erin, slack: U0ERIN01}
teams:
  - name: payments
    repos: [acme/mono]
    members: [alice, {github: Bob, slack: U0BOB001, email: bob@acme.io}]
    paths: ["services/payments/**"]
  - name: search
    repos: [acme/mono]
    github_team: acme/search
"""
    )
    assert problems == []
    assert config is not None
    payments, search = config.teams
    assert payments.members == ("alice", "bob") and payments.paths == ("services/payments/**",)
    assert search.github_team == "acme/search" and search.has_members
    assert {p.github: p.slack for p in config.people} == {"erin": "U0ERIN01", "bob": "U0BOB001"}


@pytest.mark.parametrize(
    ("snippet", "problem"),
    [
        ("members: [{slack: U0AAAA01}]", "needs 'github: <login>'"),
        ("members: [{github: bob, slak: U0AAAA01}]", "unknown key 'slak'"),
        ("members: [{github: bob, email: nope}]", "is not an e-mail address"),
        ("github_team: payments", "must be written org/team-slug"),
        ("members: alice", "must be a list"),
        ("paths: []", "paths of team 'payments' is empty"),
    ],
)
def test_config_problems_name_their_line(snippet, problem):
    _, problems = parse_config(
        f"teams:\n  - name: payments\n    repos: [acme/mono]\n    {snippet}\n"
    )
    assert len(problems) == 1 and problem in problems[0] and ":4:" in problems[0], problems


def test_teams_sharing_a_repository_get_each_rules_answer():
    """The one-pass evaluation over several teams gives each team's own answer."""
    import random

    from bot.ingest.rules import Populations, TeamPopulation

    spans = {"alice": [(None, MID)], "bob": [(MID, None)], "carol": [(None, None)]}
    rules = [
        TeamPopulation(PAYMENTS, spans),
        TeamPopulation(SEARCH, {"bob": [(None, None)]}),
        TeamPopulation(WEB, None),
        TeamPopulation(TeamConfig(name="people", repos=MONO, members=("carol",)), spans),
    ]
    both = Populations(rules)
    rng = random.Random(7)
    folders = ["services/payments/", "services/search/", "apps/web/", "libs/billing/", "docs/"]
    names = ["a.py", "yarn.lock", "b.ts", "c.min.js"]
    for _ in range(500):
        author = rng.choice(["alice", "bob", "carol", "zoe", None])
        created = T("2026-11-01 00:00") + timedelta(days=rng.randrange(30))
        merged = rng.choice([None, created + timedelta(hours=5)])
        files = [
            (rng.choice(folders) + rng.choice(names), rng.random() < 0.1)
            for _ in range(rng.randrange(4))
        ]
        expected = [i for i, r in enumerate(rules) if r.counts(author, created, merged, files)]
        assert both.teams_of(range(len(rules)), author, created, merged, files) == expected


def test_working_agreements_read_only_the_teams_open_prs(session, mono):
    """The agreements' open PRs follow the same population as every KPI."""
    assert [p.id for p in _engine(session, PAYMENTS).open_prs()] == [mono["open"].id]
    assert _engine(session, SEARCH).open_prs() == []
    assert [p.id for p in _engine(session, LEGACY).open_prs()] == [mono["open"].id]
