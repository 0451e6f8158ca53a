"""Lagging indicators through TeamEngine on the database, with hand-computed values.

October 2026 (UTC): Thu 1 Oct .. Sat 31 Oct; ISO weeks W40 (28 Sep - 4 Oct) .. W44
(26 Oct - 1 Nov) overlap it.
"""

from datetime import date, datetime, timedelta

import pytest

from bot.metrics import lagging
from bot.metrics.bands import (
    change_failure_band,
    deploy_frequency_band,
    lead_time_band,
    restore_band,
)
from bot.metrics.lagging import (
    ContainedPR,
    DeploymentFacts,
    IncidentFacts,
    RevertFacts,
    SprintItemFacts,
)
from bot.metrics.values import MetricValue
from bot.reports.cards import build_card, build_dora
from bot.reports.digests import build_monthly
from bot.settings import TeamConfig
from bot.store.models import ActionItem
from tests.factories import T, deployment, incident, pr, setup_team, sprint
from tests.helpers import DAY, HOUR, contain, engine, period, team_id

OCT = "2026-10"
WINDOW = timedelta(hours=72)


def two_repo_team(session, **kw):
    return setup_team(session, TeamConfig(name="payments", repos=("acme/api", "acme/web"), **kw))


# --- deployment frequency ------------------------------------------------------------------


def _october_deployments(session):
    d = lambda at, **kw: deployment(session, sha="abc", finished=T(at), **kw)  # noqa: E731
    d("2026-09-30 12:00")  # W40 but outside the period
    d("2026-10-01 10:00")  # W40: 1, 2, 3 Oct -> 3 days
    d("2026-10-02 10:00")
    d("2026-10-02 15:00", repository="acme/web")  # same day, other repo: one day
    d("2026-10-03 10:00")
    for day in range(5, 10):  # W41: 5..9 Oct -> 5 days
        d(f"2026-10-0{day} 10:00")
    d("2026-10-13 10:00", status="failure")  # W42: failed run -> 0 days
    d("2026-10-14 10:00", env="staging")  # not production
    d("2026-10-15 10:00", status="cancelled")
    d("2026-10-19 10:00", env="prod")  # W43: 1 day ("prod" is production by default)
    d("2026-10-31 10:00")  # W44: 31 Oct -> 1 day
    d("2026-11-01 10:00")  # W44 but outside the period


def test_deploy_frequency_by_hand(session):
    team = two_repo_team(session)
    _october_deployments(session)
    eng = engine(session, team)
    mv = eng.value("deploy-frequency", period(OCT))
    # per ISO week: W40 3, W41 5, W42 0, W43 1, W44 1 -> sorted 0, 1, 1, 3, 5 -> median 1
    assert mv.value == 1.0
    # n = successful production deployments in October: 4 + 5 + 1 + 1 = 11
    assert mv.n == 11
    assert mv.breakdown["weeks"] == 5
    assert mv.breakdown["deploy_days"] == 10  # 3 + 5 + 0 + 1 + 1
    # deployments per week: 11 / (31 / 7) = 77 / 31
    assert mv.breakdown["deployments_per_week"] == pytest.approx(77 / 31)
    # target ">= 5": off target; DORA 2023: median >= 1 -> high
    card = build_card(eng, "deploy-frequency", period(OCT))
    assert card.status == "off target"
    assert (card.band, card.edition) == ("high", 2023)


def test_deploy_frequency_band_2021(session):
    team = two_repo_team(session, dora_edition=2021)
    _october_deployments(session)
    card = build_card(engine(session, team), "deploy-frequency", period(OCT))
    # 2021: median 1 < 5; 10 deploy-days per 31 days = 9.8 per 30.4375 days >= 1 -> high
    assert (card.band, card.edition) == ("high", 2021)


def test_deploy_frequency_week_in_berlin_across_dst(session):
    team = setup_team(
        session, TeamConfig(name="payments", repos=("acme/api",), timezone="Europe/Berlin")
    )
    for at in [
        "2026-10-18 21:30",  # Sun 18 Oct 23:30 CEST: W42
        "2026-10-18 22:30",  # Mon 19 Oct 00:30 CEST: W43
        "2026-10-19 21:00",  # Mon 19 Oct 23:00 CEST: same local day
        "2026-10-20 21:59",  # Tue 20 Oct 23:59 CEST
        "2026-10-20 22:01",  # Wed 21 Oct 00:01 CEST
        "2026-10-25 22:30",  # Sun 25 Oct 23:30 CET (after the clocks went back)
        "2026-10-25 23:30",  # Mon 26 Oct 00:30 CET: W44
    ]:
        deployment(session, sha="abc", finished=T(at))
    eng = engine(session, team)
    mv = eng.value("deploy-frequency", period("2026-W43", "Europe/Berlin"))
    # Berlin W43: 5 deployments on 19, 20, 21, 25 Oct -> 4 days in the only week
    assert (mv.n, mv.value) == (5, 4.0)
    assert mv.breakdown["deployments_per_week"] == 5.0
    # the same rows for a UTC team: W43 holds 19 Oct 21:00 .. 25 Oct 23:30 -> days 19, 20, 25
    utc = eng.value("deploy-frequency", period("2026-W43"))
    assert (utc.n, utc.value) == (5, 3.0)


def test_deploy_frequency_no_data_and_one(session):
    team = setup_team(session)
    deployment(session, sha="abc", finished=T("2026-11-03 10:00"), status="failure")
    eng = engine(session, team)
    mv = eng.value("deploy-frequency", period("2026-W45"))
    assert (mv.n, mv.value) == (0, None)
    card = build_card(eng, "deploy-frequency", period("2026-W45"))
    assert (card.status, card.band) == ("no data", None)
    deployment(session, sha="abc", finished=T("2026-11-04 10:00"))
    mv = engine(session, team).value("deploy-frequency", period("2026-W45"))
    assert (mv.n, mv.value) == (1, 1.0)


def test_deploy_frequency_is_0_once_the_team_has_deployed(session):
    """METRICS.md's exception: a period without a successful production deployment has value
    0 (band low), not "no data", once the team has one recorded before the period's end."""
    team = setup_team(session)
    deployment(session, sha="abc", finished=T("2026-10-05 10:00"))  # Mon, W41: the first
    deployment(session, sha="abc", finished=T("2026-11-03 10:00"), status="failure")  # W45
    deployment(session, sha="abc", finished=T("2026-11-04 10:00"), env="staging")  # W45
    eng = engine(session, team)
    mv = eng.value("deploy-frequency", period("2026-W45"))
    assert (mv.n, mv.value, mv.has_data) == (0, 0.0, True)
    assert mv.breakdown == {"deployments_per_week": 0.0, "deploy_days": 0, "weeks": 1}
    assert eng.band("deploy-frequency", mv) == "low"
    card = build_card(eng, "deploy-frequency", period("2026-W45"))
    assert card.status != "no data" and card.band == "low"
    # before the first deployment finished: still no data (W40 ends Sun 4 Oct)
    for before in ("2026-W40", "2026-09"):
        mv = eng.value("deploy-frequency", period(before))
        assert (mv.n, mv.value, mv.has_data) == (0, None, False), before
    # the month of the first deployment counts it: W40 0 (1-4 Oct), W41 1, W42-W44 0
    mv = eng.value("deploy-frequency", period(OCT))
    assert (mv.n, mv.value) == (1, 0.0)
    # another team's deployments do not make this one's watched
    other = setup_team(session, TeamConfig(name="web", repos=("acme/web",)))
    mv = engine(session, other).value("deploy-frequency", period("2026-W45"))
    assert (mv.n, mv.value) == (0, None)


def test_deploy_frequency_0_pure():
    p = period("2026-W45")
    assert lagging.deploy_frequency([], p).has_data is False
    assert lagging.deploy_frequency([], p, first_deployed=T("2026-11-08 23:59")).value == 0.0
    # a first deployment at the period's end (exclusive) is after it
    assert lagging.deploy_frequency([], p, first_deployed=T("2026-11-09 00:00")).value is None


def test_deploy_frequency_rolling_period_pure():
    p = period("14d", now="2026-10-21T12:00:00")  # [Wed 7 Oct 12:00, Wed 21 Oct 12:00)
    finished = [
        T("2026-10-07 10:00"),  # before the start
        T("2026-10-07 13:00"),  # W41
        T("2026-10-08 09:00"),  # W41
        T("2026-10-13 09:00"),  # W42
        T("2026-10-21 11:00"),  # W43
        T("2026-10-21 13:00"),  # after the end
    ]
    mv = lagging.deploy_frequency(finished, p)
    # weeks W41 {7, 8} = 2, W42 {13} = 1, W43 {21} = 1 -> median 1; n = 4; 4 / 2 weeks
    assert (mv.n, mv.value) == (4, 1.0)
    assert mv.breakdown["weeks"] == 3
    assert mv.breakdown["deployments_per_week"] == 2.0


# --- lead time -----------------------------------------------------------------------------


def test_lead_time_by_hand(session):
    team = two_repo_team(session)
    d_sep = deployment(session, sha="s", finished=T("2026-09-30 23:59:59"))
    d_oct1 = deployment(session, sha="x", finished=T("2026-10-01 00:00"))
    d_oct2 = deployment(session, sha="y", finished=T("2026-10-02 00:00"))
    d1 = deployment(session, sha="a", finished=T("2026-10-06 10:00"))
    d_dup = deployment(session, sha="b", finished=T("2026-10-08 10:00"))
    staging = deployment(session, sha="c", finished=T("2026-10-10 12:30"), env="staging")
    failed = deployment(session, sha="c", finished=T("2026-10-10 13:00"), status="failure")
    d2 = deployment(session, sha="c", finished=T("2026-10-11 00:00"))
    d_nov = deployment(session, sha="d", finished=T("2026-11-01 00:00"))
    # PR1: 08:00 -> deployed Oct 6 10:00 = 26 h (merged Oct 5 18:00: deploy phase 16 h)
    p1 = pr(
        session,
        first_commit=T("2026-10-05 08:00"),
        created=T("2026-10-05 10:00"),
        merged=T("2026-10-05 18:00"),
    )
    contain(session, d1, p1)
    contain(session, d_dup, p1)  # a later deployment listing it again does not matter
    # PR2: first *successful production* deployment is d2: Oct 10 00:00 -> Oct 11 00:00 = 24 h
    p2 = pr(
        session,
        first_commit=T("2026-10-10 00:00"),
        created=T("2026-10-10 01:00"),
        merged=T("2026-10-10 12:00"),
    )
    contain(session, staging, p2)
    contain(session, failed, p2)
    contain(session, d2, p2)
    # PR3 merged in September, deployed 1 Oct 00:00: Sep 28 00:00 -> Oct 1 00:00 = 72 h
    p3 = pr(
        session,
        first_commit=T("2026-09-28 00:00"),
        created=T("2026-09-29 00:00"),
        merged=T("2026-09-30 12:00"),
    )
    contain(session, d_oct1, p3)
    # PR7 to a non-default branch is still a deployed change: 08:00 -> 10:00 = 2 h
    p7 = pr(
        session,
        base="hotfix",
        first_commit=T("2026-10-06 08:00"),
        created=T("2026-10-06 08:30"),
        merged=T("2026-10-06 09:00"),
    )
    contain(session, d1, p7)
    # not in October: first deployed 30 Sep 23:59:59 (also in a later one), or in November
    p5 = pr(session, created=T("2026-09-25 00:00"), merged=T("2026-09-25 01:00"))
    contain(session, d_sep, p5)
    contain(session, d_oct2, p5)
    p4 = pr(session, created=T("2026-10-30 00:00"), merged=T("2026-10-30 01:00"))
    contain(session, d_nov, p4)
    # a bot's PR is no change of the team's
    p6 = pr(
        session, author="renovate[bot]", created=T("2026-10-06 00:00"), merged=T("2026-10-06 01:00")
    )
    contain(session, d1, p6)
    # a PR never deployed
    pr(session, created=T("2026-10-06 00:00"), merged=T("2026-10-06 01:00"))

    eng = engine(session, team)
    p = period(OCT)
    assert sorted(x.id for x in eng.deployed_prs(p)) == sorted([p1.id, p2.id, p3.id, p7.id])
    mv = eng.value("lead-time", p)
    # leads: 2, 24, 26, 72 h
    assert mv.n == 4
    assert mv.value == 25 * HOUR  # p = 1.5: 24 + 0.5 * 2
    assert mv.p75 == pytest.approx(37.5 * HOUR)  # p = 2.25: 26 + 0.25 * 46
    assert mv.p90 == pytest.approx(58.2 * HOUR)  # p = 2.7: 26 + 0.7 * 46
    # deploy phases: p1 16 h, p2 12 h, p3 12 h, p7 1 h -> median 12 h
    assert mv.breakdown["deploy"] == 12 * HOUR
    card = build_card(eng, "lead-time", p)
    assert card.status == "off target"  # 25 h, target < 24 h
    assert card.band == "high"  # 2023: not < 1 day, < 1 week
    nov = eng.value("lead-time", period("2026-11"))
    assert nov.n == 1
    # p4: created Oct 30 00:00 (no first commit) -> Nov 1 00:00 = 48 h
    assert nov.value == 48 * HOUR
    assert eng.value("lead-time", period("2026-12")).value is None


# --- change failure rate, MTTR, recovery time -----------------------------------------------


def test_change_failure_rate_mttr_recovery_by_hand(session):
    team = two_repo_team(session)
    tid = team_id(session)

    def dep(at, repo="api", sha="a" * 40, **kw):
        return deployment(session, sha=sha, finished=T(at), repository=f"acme/{repo}", **kw)

    def inc(start, resolved, **kw):
        return incident(
            session, tid, started=T(start), resolved=T(resolved) if resolved else None, **kw
        )

    s0 = dep("2026-09-30 12:00")
    inc("2026-10-01 09:00", "2026-10-01 09:30")  # -> s0 (September): 30 min
    dep("2026-10-01 10:00")  # A1
    dep("2026-10-03 10:00")  # A2: two unlinked incidents in the window -> failed once
    inc("2026-10-04 09:00", "2026-10-04 10:00")  # I1 23 h after A2: 1 h
    inc("2026-10-05 10:00", "2026-10-05 10:20")  # I2 48 h after A2, still its latest: 20 min
    w1 = dep("2026-10-07 10:00", repo="web")  # W1: named by id long after the window
    inc("2026-10-20 08:00", "2026-10-20 12:00", deployment_id=w1.id)  # I3: 4 h
    dep("2026-10-08 10:00")  # A3: not the team's latest before I4
    dep("2026-10-08 12:00", repo="web")  # W2: the latest (other repository) -> failed
    inc("2026-10-08 13:00", "2026-10-08 13:45")  # I4: 45 min
    dep("2026-10-12 10:00", sha="c0ffee" + "1" * 34)  # A4: named by a commit SHA prefix
    inc("2026-10-12 11:00", "2026-10-13 11:00", sha="C0FFEE1")  # I5: 24 h
    dep("2026-10-15 10:00")  # A5: I6 starts 72 h + 1 s later -> outside the window
    inc("2026-10-18 10:00:01", "2026-10-18 12:00:01")  # I6: 2 h, attributed to nothing
    dep("2026-10-20 10:00")  # A6: I7 starts exactly 72 h later -> inside the window
    inc("2026-10-23 10:00", "2026-11-01 00:00")  # I7: resolved in November
    a7 = dep("2026-10-24 10:00")  # A7: rolled back 2 h later
    a7.rolled_back_at = T("2026-10-24 12:00")
    a8 = dep("2026-10-25 10:00")  # A8: rolled back 96 h later, outside the window
    a8.rolled_back_at = T("2026-10-29 10:00")
    a9 = dep("2026-10-26 10:00")  # A9: a PR it contains is reverted a day later
    cache = pr(
        session,
        title="Add cache",
        created=T("2026-10-25 00:00"),
        merged=T("2026-10-25 12:00"),
        merge_sha="m" * 40,
    )
    contain(session, a9, cache)
    pr(
        session,
        title='Revert "Add cache"',
        created=T("2026-10-27 09:00"),
        merged=T("2026-10-27 10:00"),
    )
    dep("2026-10-29 10:00")  # A10
    dep("2026-10-30 10:00", status="failure")  # unsuccessful runs
    dep("2026-10-30 11:00", status="cancelled")
    inc("2026-09-28 00:00", "2026-10-02 00:00")  # I9: 96 h, no deployment before it
    inc("2026-10-28 00:00", None)  # unresolved: no MTTR; after A9 but A9 is failed anyway
    eng = engine(session, team)
    p = period(OCT)

    cfr = eng.value("change-failure-rate", p)
    # successful in October: A1..A10, W1, W2 = 12
    # failed: A2, W1, W2, A4, A6 (incidents), A7 (rollback), A9 (revert, and the unresolved
    # incident of Oct 28 00:00, 38 h after it) = 7 -> 7 / 12; each counted once
    assert cfr.n == 12
    assert cfr.value == pytest.approx(7 / 12)
    assert cfr.breakdown["failed"] == 7
    assert cfr.breakdown["by_incident"] == 6  # A2, W1, W2, A4, A6, A9
    assert cfr.breakdown["by_rollback"] == 1
    assert cfr.breakdown["by_revert"] == 1
    # unsuccessful runs / all production runs finished in October: 2 / 14
    assert cfr.breakdown["deploy_failure_share"] == pytest.approx(2 / 14)
    assert eng._attribution.failed[s0.id] == frozenset({"incident"})  # September's

    mttr = eng.value("mttr", p)
    # resolved in October (min): 30, 60, 20, 240, 45, 1440, 120, 5760 (I9 started in Sep)
    # sorted 20, 30, 45, 60, 120, 240, 1440, 5760
    assert mttr.n == 8
    assert mttr.value == 90 * 60  # p = 3.5: 60 + 0.5 * 60
    assert mttr.p75 == 540 * 60  # p = 5.25: 240 + 0.25 * 1200
    assert mttr.p90 == pytest.approx(2736 * 60)  # p = 6.3: 1440 + 0.3 * 4320
    assert build_card(eng, "mttr", p).band == "high"  # 1.5 h: not < 1 h, < 1 day

    rec = eng.value("recovery-time", p)
    # resolved in October and attributed: s0 (Sep 30 12:00 -> Oct 1 09:30) 21.5 h,
    # A2 24 h and 48 h 20 min, W1 (Oct 7 10:00 -> Oct 20 12:00) 314 h, W2 1.75 h, A4 25 h
    # sorted 1.75, 21.5, 24, 25, 48.33, 314 -> p50 = 24 + 0.5 * 1 = 24.5 h
    assert rec.n == 6
    assert rec.value == 24.5 * HOUR
    nov = eng.value("recovery-time", period("2026-11"))
    # I7: A6 Oct 20 10:00 -> Nov 1 00:00 = 11 d 14 h = 278 h
    assert (nov.n, nov.value) == (1, 278 * HOUR)
    assert eng.value("mttr", period("2026-11")).value == pytest.approx((8 * 24 + 14) * HOUR)


def test_recovery_time_for_long_incidents_of_old_deployments(session):
    team = setup_team(session)
    tid = team_id(session)
    # the period starts Oct 1 00:00; both deployments finished more than 72 h before it
    d_old = deployment(session, sha="1" * 40, finished=T("2026-09-01 10:00"))
    deployment(session, sha="2" * 40, finished=T("2026-09-27 10:00"))  # d
    # unlinked, 48 h after d (the latest before it), resolved in October: 5 days after d
    incident(session, tid, started=T("2026-09-29 10:00"), resolved=T("2026-10-02 10:00"))
    # named by id, resolved in October: Sep 1 10:00 -> Oct 3 10:00 = 32 days
    incident(
        session,
        tid,
        started=T("2026-09-25 10:00"),
        resolved=T("2026-10-03 10:00"),
        deployment_id=d_old.id,
    )
    eng = engine(session, team)
    rec = eng.value("recovery-time", period(OCT))
    # 120 h and 768 h -> median 444 h
    assert rec.n == 2
    assert rec.value == 444 * HOUR
    sep = eng.value("change-failure-rate", period("2026-09"))
    assert (sep.n, sep.value) == (2, 1.0)
    # asking for September first, then October, gives the same
    eng = engine(session, team)
    eng.value("change-failure-rate", period("2026-09"))
    assert eng.value("recovery-time", period(OCT)).value == 444 * HOUR


def test_deployment_with_two_incidents_counts_once(session):
    team = setup_team(session)
    tid = team_id(session)
    d = deployment(session, sha="a" * 40, finished=T("2026-10-05 10:00"))
    incident(session, tid, started=T("2026-10-05 11:00"), resolved=T("2026-10-05 12:00"))
    incident(
        session,
        tid,
        started=T("2026-10-06 11:00"),
        resolved=T("2026-10-06 12:00"),
        deployment_id=d.id,
    )
    incident(
        session, tid, started=T("2026-10-07 11:00"), resolved=T("2026-10-07 12:00"), sha="a" * 40
    )
    deployment(session, sha="b" * 40, finished=T("2026-10-20 10:00"))
    mv = engine(session, team).value("change-failure-rate", period(OCT))
    # 1 failed of 2 successful deployments
    assert (mv.n, mv.value, mv.breakdown["failed"]) == (2, 0.5, 1)


def test_incident_linked_by_merge_commit_of_a_contained_pr(session):
    team = setup_team(session)
    tid = team_id(session)
    d1 = deployment(session, sha="1" * 40, finished=T("2026-10-05 10:00"))
    d2 = deployment(session, sha="2" * 40, finished=T("2026-10-06 10:00"))
    d3 = deployment(session, sha="3" * 40, finished=T("2026-10-07 10:00"))
    p = pr(
        session,
        created=T("2026-10-04 00:00"),
        merged=T("2026-10-04 10:00"),
        merge_sha="feed" + "0" * 36,
    )
    contain(session, d1, p)
    # named by the merge commit of a PR d1 contains, two weeks later
    incident(
        session, tid, started=T("2026-10-20 00:00"), resolved=T("2026-10-20 01:00"), sha="feed000"
    )
    # a SHA shorter than 7 characters is no link (and not unlinked either)
    incident(
        session, tid, started=T("2026-10-06 11:00"), resolved=T("2026-10-06 12:00"), sha="2222"
    )
    eng = engine(session, team)
    eng.prefetch([period(OCT)])
    assert set(eng._attribution.failed) == {d1.id}
    mv = eng.value("change-failure-rate", period(OCT))
    assert mv.value == pytest.approx(1 / 3)
    assert d2.id not in eng._attribution.failed and d3.id not in eng._attribution.failed


def test_rollback_and_revert_windows(session):
    team = setup_team(session)
    d1 = deployment(session, sha="1" * 40, finished=T("2026-10-05 10:00"))
    d1.rolled_back_at = T("2026-10-08 10:00")  # exactly 72 h: inside
    d2 = deployment(session, sha="2" * 40, finished=T("2026-10-10 10:00"))
    d2.rolled_back_at = T("2026-10-13 10:00:01")  # 72 h + 1 s: outside
    d3 = deployment(session, sha="3" * 40, finished=T("2026-10-15 10:00"))
    d4 = deployment(session, sha="4" * 40, finished=T("2026-10-20 10:00"))
    a = pr(
        session,
        title="Speed up search",
        created=T("2026-10-14 00:00"),
        merged=T("2026-10-14 10:00"),
    )
    b = pr(session, title="New header", created=T("2026-10-19 00:00"), merged=T("2026-10-19 10:00"))
    contain(session, d3, a)
    contain(session, d4, b)
    # reverts: of a 72 h after d3 (inside); of b 72 h + 1 min after d4 (outside)
    pr(
        session,
        title='Revert "Speed up search"',
        created=T("2026-10-18 09:00"),
        merged=T("2026-10-18 10:00"),
    )
    pr(
        session,
        title='Revert "New header"',
        created=T("2026-10-23 09:00"),
        merged=T("2026-10-23 10:01"),
    )
    # neither a near-miss title nor a revert in another team's repository counts
    pr(
        session,
        title='Revert "New heade"',
        created=T("2026-10-21 09:00"),
        merged=T("2026-10-21 10:00"),
    )
    pr(
        session,
        title="Revert New header",
        created=T("2026-10-21 09:00"),
        merged=T("2026-10-21 10:00"),
    )
    eng = engine(session, team)
    eng.prefetch([period(OCT)])
    assert {k: set(v) for k, v in eng._attribution.failed.items()} == {
        d1.id: {"rollback"},
        d3.id: {"revert"},
    }
    mv = eng.value("change-failure-rate", period(OCT))
    assert (mv.n, mv.value) == (4, 0.5)
    assert (mv.breakdown["by_rollback"], mv.breakdown["by_revert"]) == (1, 1)


def test_revert_branch_marks_the_deployment_failed(session):
    team = setup_team(session)
    d1 = deployment(session, sha="1" * 40, finished=T("2026-10-05 10:00"))
    d2 = deployment(session, sha="2" * 40, finished=T("2026-10-12 10:00"))
    a = pr(session, number=41, created=T("2026-10-04 00:00"), merged=T("2026-10-04 10:00"))
    b = pr(session, number=42, created=T("2026-10-11 00:00"), merged=T("2026-10-11 10:00"))
    contain(session, d1, a)
    contain(session, d2, b)
    # made with GitHub's revert button and retitled: only the branch says what it reverts
    pr(
        session,
        title="Back out the pool change",
        head_branch="revert-41-pool",
        created=T("2026-10-06 09:00"),
        merged=T("2026-10-06 10:00"),
    )
    eng = engine(session, team)
    eng.prefetch([period(OCT)])
    assert {k: set(v) for k, v in eng._attribution.failed.items()} == {d1.id: {"revert"}}
    mv = eng.value("change-failure-rate", period(OCT))
    assert (mv.n, mv.value, mv.breakdown["by_revert"]) == (2, 0.5, 1)


def test_cfr_no_data_and_bands(session):
    team = setup_team(session, dora_edition=2021)
    deployment(session, sha="1" * 40, finished=T("2026-10-05 10:00"), status="failure")
    eng = engine(session, team)
    mv = eng.value("change-failure-rate", period(OCT))
    assert (mv.n, mv.value) == (0, None)
    assert mv.breakdown["deploy_failure_share"] == 1.0  # 1 of 1 run failed
    card = build_card(eng, "change-failure-rate", period(OCT))
    assert (card.status, card.band) == ("no data", None)
    for i in range(4):
        deployment(session, sha="2" * 40, finished=T(f"2026-10-1{i} 10:00"))
    card = build_card(engine(session, team), "change-failure-rate", period(OCT))
    # 0 failed / 4: 0 % is on target and elite in 2021
    assert (card.value, card.status, card.band, card.edition) == (0.0, "on target", "elite", 2021)


def test_dora_card_names_the_edition(session):
    team = setup_team(session, dora_edition=2021)
    dora = build_dora(engine(session, team), period(OCT))
    assert dora.edition == 2021
    assert [c.metric for c in dora.cards] == [
        "deploy-frequency",
        "lead-time",
        "change-failure-rate",
        "mttr",
    ]
    assert all(c.status == "no data" and c.band is None for c in dora.cards)


def test_mttr_n_zero_and_one(session):
    team = setup_team(session)
    tid = team_id(session)
    eng = engine(session, team)
    assert eng.value("mttr", period(OCT)).value is None
    assert build_card(eng, "mttr", period(OCT)).status == "no data"
    incident(session, tid, started=T("2026-10-10 10:00"), resolved=T("2026-10-10 10:59:59"))
    eng = engine(session, team)
    card = build_card(eng, "mttr", period(OCT))
    assert (card.n, card.value, card.status, card.band) == (1, 3599.0, "on target", "elite")
    assert card.trend == "not enough data"
    # the recovery time needs a deployment to attribute the incident to
    assert eng.value("recovery-time", period(OCT)).n == 0


# --- failure attribution: pure function -----------------------------------------------------


def _d(i, at, status="success", repo=1, sha=None, rolled=None):
    return DeploymentFacts(i, repo, sha or f"{i:040d}", status, T(at), rolled)


def test_attribution_latest_deployment_rule():
    deps = [
        _d(1, "2026-10-01 10:00"),
        _d(2, "2026-10-02 10:00", repo=2),
        _d(3, "2026-10-02 11:00", status="failure"),  # not a candidate
    ]
    incs = [IncidentFacts(1, T("2026-10-02 12:00"), None)]
    a = lagging.attribute_failures(deps, incs, [], {}, WINDOW)
    assert a.failed == {2: frozenset({"incident"})}
    assert a.incident_deployment == {1: 2}


def test_attribution_incident_at_the_finish_second_is_not_after_it():
    deps = [_d(1, "2026-10-01 10:00"), _d(2, "2026-10-02 10:00")]
    # starts exactly when d2 finished: "after it finished" is strict, so d1 is the latest
    a = lagging.attribute_failures(
        deps, [IncidentFacts(1, T("2026-10-02 10:00"), None)], [], {}, WINDOW
    )
    assert a.incident_deployment == {1: 1}


def test_attribution_before_any_deployment_and_window_edges():
    deps = [_d(1, "2026-10-05 10:00")]
    incs = [
        IncidentFacts(1, T("2026-10-05 09:00"), None),  # before every deployment
        IncidentFacts(2, T("2026-10-08 10:00"), None),  # exactly 72 h: inside
        IncidentFacts(3, T("2026-10-08 10:00:01"), None),  # outside
    ]
    a = lagging.attribute_failures(deps, incs, [], {}, WINDOW)
    assert a.incident_deployment == {2: 1}
    a = lagging.attribute_failures(deps, incs, [], {}, timedelta(hours=24))
    assert a.incident_deployment == {}  # a team's own window


def test_attribution_explicit_link_to_unknown_or_failed_deployment_is_not_rule_two():
    deps = [_d(1, "2026-10-05 10:00"), _d(2, "2026-10-05 11:00", status="failure")]
    incs = [
        IncidentFacts(1, T("2026-10-05 12:00"), None, deployment_id=2),  # a failed run
        IncidentFacts(2, T("2026-10-05 12:00"), None, deployment_id=99),  # unknown
        IncidentFacts(3, T("2026-10-05 12:00"), None, commit_sha="f" * 40),  # unknown SHA
    ]
    a = lagging.attribute_failures(deps, incs, [], {}, WINDOW)
    assert a.failed == {}
    assert a.incident_deployment == {}


def test_attribution_sha_names_the_first_deployment_that_shipped_it():
    sha = "ab" * 20
    deps = [_d(1, "2026-10-05 10:00", sha=sha), _d(2, "2026-10-06 10:00", sha=sha)]
    a = lagging.attribute_failures(
        deps,
        [IncidentFacts(1, T("2026-10-20 00:00"), None, commit_sha=sha.upper())],
        [],
        {},
        WINDOW,
    )
    assert a.incident_deployment == {1: 1}


def test_attribution_rollback_and_revert_rules():
    deps = [
        _d(1, "2026-10-01 10:00", rolled=T("2026-10-01 09:00")),  # nonsense: before it
        _d(2, "2026-10-02 10:00", rolled=T("2026-10-05 10:00")),
        _d(3, "2026-10-03 10:00", repo=2),
        _d(4, "2026-10-04 10:00"),
    ]
    contained = {3: [ContainedPR("Fix", None)], 4: [ContainedPR("Fix", None)]}
    reverts = [
        RevertFacts(2, 'Revert "Fix"', T("2026-10-03 09:00")),  # before d3 finished
        RevertFacts(2, 'Revert "Fix"', T("2026-10-06 10:00")),  # d3 + 72 h: inside
        RevertFacts(2, 'Revert "Revert "Fix""', T("2026-10-04 11:00")),  # reverts a revert
        RevertFacts(9, 'Revert "Fix"', T("2026-10-04 11:00")),  # another repository
    ]
    a = lagging.attribute_failures(deps, [], reverts, contained, WINDOW)
    assert a.failed == {2: frozenset({"rollback"}), 3: frozenset({"revert"})}


def test_attribution_revert_branch_of_github_revert_button():
    # GitHub's revert button opens a PR from revert-<number>-<branch>, whatever its title
    deps = [_d(1, "2026-10-01 10:00"), _d(2, "2026-10-02 10:00"), _d(3, "2026-10-03 10:00")]
    contained = {
        1: [ContainedPR("Add cache", None, 41)],
        2: [ContainedPR("Tune pool", None, 42)],
        3: [ContainedPR("Other", None, 43)],
    }
    reverts = [
        RevertFacts(1, "Back out the cache", T("2026-10-02 09:00"), "revert-41-add-cache"),
        # a title naming #42 is matched by title too: counted once
        RevertFacts(1, 'Revert "Tune pool"', T("2026-10-02 12:00"), "revert-42-tune"),
        # not GitHub's branch shape, or outside the window
        RevertFacts(1, "Undo", T("2026-10-03 12:00"), "revert-43"),
        RevertFacts(1, "Undo", T("2026-10-03 12:00"), "my-revert-43-x"),
        RevertFacts(1, "Undo", T("2026-10-07 10:01"), "revert-43-other"),
    ]
    a = lagging.attribute_failures(deps, [], reverts, contained, WINDOW)
    assert a.failed == {1: frozenset({"revert"}), 2: frozenset({"revert"})}


def test_revert_branch_parsing():
    at = T("2026-10-01 00:00")
    assert RevertFacts(1, "x", at, "revert-123-feature/a").reverted_number == 123
    assert RevertFacts(1, "x", at, "revert-123").reverted_number is None
    assert RevertFacts(1, "x", at, "reverted-1-x").reverted_number is None
    assert RevertFacts(1, "x", at, None).reverted_number is None


def test_revert_title_parsing():
    assert RevertFacts(1, 'Revert "Add x"', T("2026-10-01 00:00")).reverted_title == "Add x"
    assert RevertFacts(1, 'Revert "a "b""', T("2026-10-01 00:00")).reverted_title == 'a "b"'
    assert RevertFacts(1, 'Revert ""', T("2026-10-01 00:00")).reverted_title is None
    assert RevertFacts(1, "Revert Add x", T("2026-10-01 00:00")).reverted_title is None
    assert RevertFacts(1, 'revert "Add x"', T("2026-10-01 00:00")).reverted_title is None


def test_change_failure_rate_pure():
    p = period(OCT)
    runs = [
        _d(1, "2026-10-01 10:00"),
        _d(2, "2026-10-02 10:00"),
        _d(3, "2026-10-03 10:00", status="error"),
        _d(4, "2026-11-01 00:00"),  # November
    ]
    att = lagging.Attribution({2: frozenset({"incident"}), 4: frozenset({"rollback"})}, {})
    mv = lagging.change_failure_rate(runs, att, p)
    # 1 failed / 2 successful; 1 unsuccessful of 3 runs
    assert (mv.n, mv.value) == (2, 0.5)
    assert mv.breakdown["deploy_failure_share"] == pytest.approx(1 / 3)
    assert lagging.change_failure_rate([], att, p).breakdown["deploy_failure_share"] is None


# --- predictability and scope creep --------------------------------------------------------


def test_predictability_and_scope_creep_by_hand(session):
    team = setup_team(session)
    setup_team(session, TeamConfig(name="other", repos=("acme/web",)))
    tid = team_id(session)

    def items(*specs):
        return [
            dict(committed=c, added=not c, completed=done, points=pts) for c, done, pts in specs
        ]

    # September: every committed item has points -> by points
    sprint(
        session,
        tid,
        started=T("2026-09-16 09:00"),
        ended=T("2026-09-30 09:00"),
        items=items((True, True, 3), (True, True, 5), (True, False, 8), (False, True, 2)),
    )
    # October: one committed item without points -> by item count
    sprint(
        session,
        tid,
        started=T("2026-10-10 09:00"),
        ended=T("2026-10-24 09:00"),
        items=items((True, True, 1), (True, True, None), (True, False, 2), (False, False, None)),
    )
    # ends exactly at 1 Nov 00:00: November (half-open periods)
    sprint(
        session,
        tid,
        started=T("2026-10-18 00:00"),
        ended=T("2026-11-01 00:00"),
        items=items((True, False, 4), (True, False, 4)),
    )
    # December: only added work, nothing committed
    sprint(
        session,
        tid,
        started=T("2026-12-01 00:00"),
        ended=T("2026-12-14 00:00"),
        items=items((False, True, 3)),
    )
    # another team's sprint in October
    sprint(
        session,
        team_id(session, "other"),
        started=T("2026-10-01 00:00"),
        ended=T("2026-10-14 00:00"),
        items=items((True, False, 100)),
    )
    eng = engine(session, team)

    sep = eng.value("predictability", period("2026-09"))
    # (3 + 5) / (3 + 5 + 8) = 8 / 16
    assert (sep.n, sep.value) == (3, 0.5)
    assert sep.breakdown == {"sprints": 1, "basis": "points", "committed": 16.0, "completed": 8.0}
    creep = eng.value("scope-creep", period("2026-09"))
    assert (creep.n, creep.value) == (3, 2 / 16)  # 2 points added / 16 committed

    oct_ = eng.value("predictability", period(OCT))
    # items: 2 done of 3 committed
    assert (oct_.n, oct_.value) == (3, pytest.approx(2 / 3))
    assert oct_.breakdown["basis"] == "items"
    assert eng.value("scope-creep", period(OCT)).value == pytest.approx(1 / 3)  # 1 item / 3

    nov = eng.value("predictability", period("2026-11"))
    assert (nov.n, nov.value) == (2, 0.0)  # 0 of 8 points: data, not "no data"
    assert build_card(eng, "predictability", period("2026-11")).status == "off target"
    assert eng.value("scope-creep", period("2026-11")).value == 0.0

    dec = eng.value("predictability", period("2026-12"))
    assert (dec.n, dec.value) == (0, None)
    assert build_card(eng, "predictability", period("2026-12")).status == "no data"
    assert eng.value("scope-creep", period("2026-12")).value is None

    # Sep + Oct together: one committed item lacks points -> items: 4 done of 6 committed
    q3 = eng.value("predictability", period("2026-Q3"))
    assert q3.value == 0.5  # Q3 = Jul..Sep: September only
    both = lagging.predictability(
        [i for _, i in eng._items.between(T("2026-09-01 00:00"), T("2026-11-01 00:00"))]
    )
    assert (both.n, both.value, both.breakdown["basis"]) == (6, 4 / 6, "items")


def test_predictability_pure_edge_cases():
    zero = [SprintItemFacts(1, True, False, True, 0.0)]
    assert lagging.predictability(zero).value is None  # 0 committed points
    assert lagging.predictability(zero).n == 0
    assert lagging.predictability([]).breakdown is None
    # scope creep: added items lacking points switch both to item count: 1 added / 2 committed
    items = [
        SprintItemFacts(1, True, False, True, 5.0),
        SprintItemFacts(1, True, False, False, 3.0),
        SprintItemFacts(1, False, True, True, None),
    ]
    mv = lagging.scope_creep(items)
    assert (mv.value, mv.breakdown["basis"]) == (0.5, "items")
    assert lagging.predictability(items).value == 5 / 8  # committed all have points


# --- DORA bands ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "seconds,e2023,e2021",
    [
        (0, "elite", "elite"),
        (HOUR - 1, "elite", "elite"),
        (HOUR, "elite", "high"),  # 2021 elite is < 1 h
        (DAY - 1, "elite", "high"),
        (DAY, "high", "high"),  # 2023 elite is < 1 day
        (7 * DAY - 1, "high", "high"),
        (7 * DAY, "medium", "medium"),
        (30 * DAY - 1, "medium", "medium"),
        (30 * DAY, "low", "medium"),  # 2023 medium is < 30 days
        (180 * DAY - 1, "low", "medium"),
        (180 * DAY, "low", "low"),  # 2021 medium is < 180 days
    ],
)
def test_lead_time_bands(seconds, e2023, e2021):
    assert lead_time_band(seconds, 2023) == e2023
    assert lead_time_band(seconds, 2021) == e2021


@pytest.mark.parametrize(
    "failed,total,e2023,e2021",
    [
        (0, 20, "elite", "elite"),
        (1, 20, "elite", "elite"),  # 5 %: <= 5 %
        (1, 19, "high", "elite"),  # 5.3 %
        (2, 20, "high", "elite"),  # 10 %
        (3, 29, "medium", "elite"),  # 10.3 %
        (3, 20, "medium", "elite"),  # 15 %: <= 15 % in both
        (4, 26, "low", "high"),  # 15.4 %
        (4, 20, "low", "high"),  # 20 %
        (5, 24, "low", "medium"),  # 20.8 %
        (6, 20, "low", "medium"),  # 30 %
        (7, 23, "low", "low"),  # 30.4 %
        (1, 1, "low", "low"),
    ],
)
def test_change_failure_bands(failed, total, e2023, e2021):
    rate = failed / total  # as change_failure_rate computes it
    assert change_failure_band(rate, 2023) == e2023
    assert change_failure_band(rate, 2021) == e2021


@pytest.mark.parametrize(
    "seconds,band",
    [
        (HOUR - 1, "elite"),
        (HOUR, "high"),
        (DAY - 1, "high"),
        (DAY, "medium"),
        (7 * DAY - 1, "medium"),
        (7 * DAY, "low"),
    ],
)
def test_restore_bands(seconds, band):
    assert restore_band(seconds, 2023) == band
    assert restore_band(seconds, 2021) == band


@pytest.mark.parametrize(
    "median,days,period_days,e2023,e2021",
    [
        (5.0, 20, 28.0, "elite", "elite"),
        (4.5, 18, 28.0, "high", "high"),
        (1.0, 4, 28.0, "high", "high"),
        (0.5, 2, 28.0, "medium", "high"),  # 2 per 28 d = 2.2 per month
        # per month = days / (period days / 30.4375): 1 day in 30 days = 1.01 >= 1
        (0.0, 1, 30.0, "medium", "high"),
        (0.0, 1, 31.0, "low", "medium"),  # 0.98 per month; 5.9 per 6 months
        (0.0, 1, 182.625, "low", "medium"),  # exactly 1 per 6 months
        (0.0, 1, 183.0, "low", "low"),
        (0.0, 0, 28.0, "low", "low"),
        (0.0, 0, 0.0, "low", "low"),
    ],
)
def test_deploy_frequency_bands(median, days, period_days, e2023, e2021):
    assert deploy_frequency_band(median, days, period_days, 2023) == e2023
    assert deploy_frequency_band(median, days, period_days, 2021) == e2021


def test_band_through_the_engine_uses_the_team_edition(session):
    e2023 = engine(session, setup_team(session, name="t2023", dora_edition=2023))
    e2021 = engine(session, setup_team(session, name="t2021", dora_edition=2021))
    mv = MetricValue(5, 23 * HOUR)
    # 23 h: 2023 elite is < 1 day; 2021 elite is < 1 h, high < 1 week
    assert e2023.band("lead-time", mv) == "elite"
    assert e2021.band("lead-time", mv) == "high"
    assert e2023.band("cycle-time", mv) is None  # not a DORA key
    assert e2023.band("lead-time", MetricValue(0, None)) is None  # no data, no band


def test_time_to_restore_pure():
    p = period(OCT)
    incs = [
        IncidentFacts(1, T("2026-10-01 00:00"), T("2026-10-01 02:00")),  # 2 h
        IncidentFacts(2, T("2026-10-05 10:00"), T("2026-10-05 09:00")),  # bad data: 0
        IncidentFacts(3, T("2026-09-30 00:00"), T("2026-09-30 23:00")),  # September
        IncidentFacts(4, T("2026-10-01 00:00"), None),  # unresolved
    ]
    mv = lagging.time_to_restore(incs, p)
    # durations 2 h and 0 -> median 1 h
    assert (mv.n, mv.value) == (2, 1 * HOUR)
    assert lagging.time_to_restore(incs[3:], p).value is None


# --- deployment frequency of a period in progress (METRICS.md, Time) ------------------------

BERLIN_DEC3 = "2026-12-03T11:00:00"  # Thu 3 Dec 2026, 12:00 CET; ISO week W49 = 30 Nov - 6 Dec


def _berlin_team(session):
    return setup_team(
        session, TeamConfig(name="payments", repos=("acme/api",), timezone="Europe/Berlin")
    )


def test_deploy_frequency_before_any_week_of_the_period_has_finished(session):
    team = _berlin_team(session)
    for at in [
        "2026-11-30 10:00",  # Mon 30 Nov: W49, but before December
        "2026-12-01 09:00",  # Tue 1 Dec
        "2026-12-01 15:00",  # same day
        "2026-12-02 12:00",  # Wed 2 Dec
        "2026-12-02 23:30",  # Thu 3 Dec 00:30 CET
        "2026-12-03 10:00",  # Thu 3 Dec
    ]:
        deployment(session, sha="abc", finished=T(at))
    # last month's first 2.5 days: Sun 1 Nov (W44, which ended Mon 2 Nov) and W45 so far
    for at in ["2026-11-01 11:00", "2026-11-02 09:00", "2026-11-03 08:00"]:
        deployment(session, sha="abc", finished=T(at))
    eng = engine(session, team)
    p = period("this-month", "Europe/Berlin", now=BERLIN_DEC3)
    mv = eng.value("deploy-frequency", p)
    # W49 is unfinished, so no week of December has finished: the value is the number of
    # deploy days so far: 1, 2, 3 Dec -> 3 (the whole month's median would be 0)
    assert (mv.n, mv.value) == (5, 3.0)
    assert mv.breakdown["weeks"] == 0
    assert mv.breakdown["deploy_days"] == 3
    # 5 deployments / (2.5 / 7) weeks
    assert mv.breakdown["deployments_per_week"] == pytest.approx(14.0)
    card = build_card(eng, "deploy-frequency", p)
    assert (card.band, card.status) == ("high", "off target")
    # compared with 1 Nov 00:00 - 3 Nov 12:00: W44 has finished (1 Nov: 1 day), W45 is left
    # out as unfinished at the same point -> median 1; n = 3
    assert (card.previous_n, card.previous_value) == (3, 1.0)
    # the same week, asked for as this-week: 30 Nov, 1, 2, 3 Dec -> 4 days so far
    w = eng.value("deploy-frequency", period("this-week", "Europe/Berlin", now=BERLIN_DEC3))
    assert (w.n, w.value, w.breakdown["weeks"]) == (6, 4.0, 0)


def test_deploy_frequency_leaves_the_unfinished_week_out_of_the_median(session):
    team = _berlin_team(session)
    for at in [
        "2026-12-01 09:00",  # W49 (1-6 Dec inside December): 1, 2, 3 Dec -> 3 days
        "2026-12-02 09:00",
        "2026-12-03 09:00",
        "2026-12-08 09:00",  # W50: 1 day
        "2026-12-14 09:00",  # W51, unfinished on Sun 20 Dec: 5 days, left out
        "2026-12-15 09:00",
        "2026-12-16 09:00",
        "2026-12-17 09:00",
        "2026-12-18 09:00",
    ]:
        deployment(session, sha="abc", finished=T(at))
    p = period("this-month", "Europe/Berlin", now="2026-12-20T11:00:00")  # Sun 12:00 CET
    mv = engine(session, team).value("deploy-frequency", p)
    # median of W49 3 and W50 1 = 2 (the whole month: 3, 1, 5, 0, 0 -> 1)
    assert (mv.n, mv.value) == (9, 2.0)
    assert mv.breakdown["weeks"] == 2
    assert mv.breakdown["deploy_days"] == 9
    # 9 deployments / (19.5 / 7) weeks
    assert mv.breakdown["deployments_per_week"] == pytest.approx(9 / (19.5 / 7))
    assert mv.extra["period_days"] == 19.5


def test_monthly_digest_of_a_month_in_progress_counts_items_completed_today(session):
    team = _berlin_team(session)
    tid = team_id(session)
    for done in (date(2026, 11, 30), date(2026, 12, 1), date(2026, 12, 3)):
        session.add(
            ActionItem(
                team_id=tid,
                opportunity=f"done {done}",
                resolution="r",
                owner="U1",
                due_on=date(2026, 12, 20),
                completed_on=done,
                created_by="U1",
                created_at=datetime(2026, 11, 1, 9, 0),
            )
        )
    p = period("this-month", "Europe/Berlin", now=BERLIN_DEC3)
    d = build_monthly(engine(session, team), p, T("2026-12-03 11:00"))
    assert [i.opportunity for i in d.completed_items] == ["done 2026-12-01", "done 2026-12-03"]
    assert d.period.in_progress and d.predictability.period.in_progress


def test_attribution_reverts_read_once_and_matched_in_their_own_repository():
    # the reverts may come as a one-pass iterable; a number or title a revert names is looked
    # up among the PRs of its own repository's deployments only
    deps = [_d(1, "2026-10-01 10:00"), _d(2, "2026-10-01 11:00", repo=2)]
    contained = {
        1: [ContainedPR("Add cache", "abc1234def", 41)],
        2: [ContainedPR("Add cache", None, 41)],
    }
    reverts = (
        rv
        for rv in [
            RevertFacts(2, "Back out", T("2026-10-02 09:00"), "revert-41-add-cache"),
            RevertFacts(3, 'Revert "Add cache"', T("2026-10-02 09:00")),
        ]
    )
    # the SHA index is built for the incident naming a contained PR's merge commit
    incs = [IncidentFacts(7, T("2026-10-03 00:00"), None, commit_sha="ABC1234DEF00")]
    a = lagging.attribute_failures(deps, incs, reverts, contained, WINDOW)
    assert a.failed == {1: frozenset({"incident"}), 2: frozenset({"revert"})}
    assert a.incident_deployment == {7: 1}
