"""Leading indicators through TeamEngine on the database, with hand-computed values.

Week 2026-W45 runs Mon 2 Nov 2026 00:00 to Mon 9 Nov 00:00 (UTC unless said otherwise).
"""

import pytest
from sqlalchemy import update

from bot.metrics import leading
from bot.metrics.timeline import PRFacts
from bot.reports.cards import build_card, build_health
from bot.settings import TeamConfig
from bot.store.models import Repository
from tests.factories import H, T, now_utc, pr, setup_team
from tests.helpers import HOUR, engine, period, pr_file, review

W45 = "2026-W45"


def numbers(prs):
    return sorted(p.number for p in prs)


# --- cycle time, first review, coverage, size, merge frequency: one population -----------


def _population(session):
    team = setup_team(
        session,
        TeamConfig(
            name="payments", repos=("acme/api",), exclude_authors=("release-robot", "svc[ci]")
        ),
    )
    setup_team(session, TeamConfig(name="other", repos=("acme/web",)))
    # A: coding 08:00->10:00 = 2 h, pickup 10:00->12:00 = 2 h, review 12:00->18:00 = 6 h
    a = pr(
        session,
        number=1,
        author="alice",
        first_commit=T("2026-11-02 08:00"),
        created=T("2026-11-02 10:00"),
        merged=T("2026-11-02 18:00"),
        additions=100,
        deletions=20,
        reviews=[("bob", "APPROVED", T("2026-11-02 12:00"))],
    )
    # B (draft until Nov 3 08:00): coding 00:00->08:00 = 8 h, pickup 08:00->10:00 = 2 h,
    # review Nov 3 10:00 -> Nov 4 00:00 = 14 h; size: src 300+150, yarn.lock ignored
    pr(
        session,
        number=2,
        author="Alice",
        first_commit=T("2026-11-03 00:00"),
        created=T("2026-11-03 04:00"),
        ready=T("2026-11-03 08:00"),
        merged=T("2026-11-04 00:00"),
        additions=5310,
        deletions=160,
        files=[("src/a.py", 300, 150), ("yarn.lock", 5000, 10)],
        reviews=[
            ("carol", "COMMENTED", T("2026-11-03 10:00")),
            ("bob", "APPROVED", T("2026-11-03 14:00")),
        ],
    )
    # C: no first commit date, no review: coding 0, pickup 00:00->04:00 = 4 h, review 0
    pr(
        session,
        number=3,
        author="dave",
        created=T("2026-11-05 00:00"),
        merged=T("2026-11-05 04:00"),
        additions=10,
        deletions=5,
    )
    # --- excluded from every PR metric ---
    out = {"created": T("2026-11-04 00:00"), "merged": T("2026-11-04 01:00")}
    pr(session, number=10, author="ci-helper", author_is_bot=True, **out)  # provider flag
    pr(session, number=11, author="renovate[bot]", **out)  # [bot] suffix
    pr(session, number=12, author="Dependabot", **out)  # default pattern, any case
    pr(session, number=13, author="Release-Robot", **out)  # team exclude_authors
    pr(session, number=19, author="SVC[CI]", **out)  # team pattern: `[`, `]` are literal
    pr(session, number=14, author="alice", base="develop", **out)  # not the default branch
    pr(
        session,
        number=15,
        author="alice",
        created=T("2026-11-08 20:00"),
        merged=T("2026-11-09 00:00"),
    )  # next week: periods are half-open
    pr(
        session,
        number=16,
        author="alice",
        created=T("2026-11-01 20:00"),
        merged=T("2026-11-01 23:59:59"),
    )  # previous week
    pr(session, number=17, author="alice", created=T("2026-11-02 20:00"), merged=None)  # open
    pr(session, number=18, author="alice", repository="acme/web", **out)  # other team's repo
    return team, a


def test_cycle_time_by_hand(session):
    team, _ = _population(session)
    eng = engine(session, team)
    p = period(W45)
    assert numbers(eng.merged_prs(p)) == [1, 2, 3]
    mv = eng.value("cycle-time", p)
    # cycles: A 10 h (08:00->18:00), B 24 h, C 4 h; sorted 4, 10, 24
    assert mv.n == 3
    assert mv.value == mv.p50 == 10 * HOUR
    assert mv.p75 == 17 * HOUR  # p = 1.5: 10 + 0.5 * 14
    assert mv.p90 == pytest.approx(21.2 * HOUR)  # p = 1.8: 10 + 0.8 * 14
    # phase medians: coding [2, 8, 0] -> 2 h; pickup [2, 2, 4] -> 2 h; review [6, 14, 0] -> 6 h
    assert mv.breakdown["coding"] == 2 * HOUR
    assert mv.breakdown["pickup"] == 2 * HOUR
    assert mv.breakdown["review"] == 6 * HOUR
    assert mv.breakdown["merged_without_review"] == 1  # C


def test_first_review_by_hand(session):
    team, _ = _population(session)
    mv = engine(session, team).value("first-review", period(W45))
    # only A (2 h) and B (2 h) had a review
    assert mv.n == 2
    assert mv.value == 2 * HOUR
    assert mv.breakdown == {"without_review": 1}


def test_review_coverage_by_hand(session):
    team, _ = _population(session)
    mv = engine(session, team).value("review-coverage", period(W45))
    # A and B approved before merge, C not: 2 / 3
    assert mv.n == 3
    assert mv.value == pytest.approx(2 / 3)
    assert mv.breakdown == {"approved": 2, "not_approved": 1}


def test_pr_size_by_hand(session):
    team, _ = _population(session)
    mv = engine(session, team).value("pr-size", period(W45))
    # A 100+20 = 120 (no file rows: totals); B 300+150 = 450 (yarn.lock left out); C 15
    assert mv.n == 3
    assert mv.value == 120
    assert mv.breakdown["over_400"] == 1
    assert mv.breakdown["over_400_share"] == pytest.approx(1 / 3)


def test_merge_frequency_by_hand(session):
    team, _ = _population(session)
    mv = engine(session, team).value("merge-frequency", period(W45))
    # 3 merged / 2 distinct authors ("alice" and "Alice" are one person, and dave) / 1 week
    assert mv.n == 3
    assert mv.value == 1.5
    assert mv.breakdown == {"merged": 3, "authors": 2, "weeks": 1.0}


def test_merge_frequency_rolling_period(session):
    team, _ = _population(session)
    # 14d ending Tue 10 Nov 00:00: [27 Oct, 10 Nov) holds A, B, C and #15 and #16 (alice)
    p = period("14d", now="2026-11-10T00:00:00")
    mv = engine(session, team).value("merge-frequency", p)
    # 5 merged / 2 authors (alice, dave) / (14 / 7) weeks = 1.25
    assert mv.n == 5
    assert mv.value == 1.25


# --- reviewers -----------------------------------------------------------------------------


def test_reviewer_edge_cases(session):
    team = setup_team(
        session,
        TeamConfig(name="payments", repos=("acme/api",), exclude_authors=("qa-robot",)),
    )

    def mk(n, day):
        return pr(
            session,
            number=n,
            author="alice",
            created=T(f"2026-11-0{day} 10:00"),
            merged=T(f"2026-11-0{day} 20:00"),
        )

    t = lambda day, h: T(f"2026-11-0{day} {h}")  # noqa: E731
    # P1: a reviewer the provider calls a bot (normal login), then a person at +3 h
    p1 = mk(1, 2)
    review(session, p1, "helper", "APPROVED", t(2, "11:00"), is_bot=True)
    review(session, p1, "bob", "APPROVED", t(2, "13:00"))
    # P2: only bots review (pattern, [bot] suffix): merged without review
    p2 = mk(2, 2)
    review(session, p2, "coderabbitai", "COMMENTED", t(2, "11:00"))
    review(session, p2, "sonar[bot]", "APPROVED", t(2, "11:00"))
    # P3: the author's own review (any case) is ignored; bob approves at +5 h
    p3 = mk(3, 3)
    review(session, p3, "ALICE", "COMMENTED", t(3, "11:00"))
    review(session, p3, "bob", "APPROVED", t(3, "15:00"))
    # P4: a PENDING review is ignored; carol comments at +2 h; nobody approves
    p4 = mk(4, 3)
    review(session, p4, "bob", "PENDING", t(3, "11:00"))
    review(session, p4, "carol", "COMMENTED", t(3, "12:00"))
    # P5: an approval at +1 h, later dismissed: first review yes, coverage no
    p5 = mk(5, 4)
    review(session, p5, "bob", "APPROVED", t(4, "11:00"), dismissed=True)
    # P6: a review in state DISMISSED at +30 min, then carol approves
    p6 = mk(6, 4)
    review(session, p6, "bob", "DISMISSED", t(4, "10:30"), dismissed=True)
    review(session, p6, "carol", "APPROVED", t(4, "16:00"))
    # P7: approved only after the merge: pickup clamps to the merge (10 h), not covered
    p7 = mk(7, 5)
    review(session, p7, "bob", "APPROVED", t(6, "09:00"))
    # P8: only a team-excluded account reviews
    p8 = mk(8, 5)
    review(session, p8, "QA-Robot", "APPROVED", t(5, "11:00"))
    eng = engine(session, team)
    p = period(W45)

    fr = eng.value("first-review", p)
    # pickups (h): P1 3, P3 5, P4 2, P5 1, P6 0.5, P7 10; sorted 0.5, 1, 2, 3, 5, 10
    assert fr.n == 6
    assert fr.value == 2.5 * HOUR  # p = 2.5: 2 + 0.5 * (3 - 2)
    assert fr.p75 == 4.5 * HOUR  # p = 3.75: 3 + 0.75 * 2
    assert fr.p90 == 7.5 * HOUR  # p = 4.5: 5 + 0.5 * 5
    assert fr.breakdown == {"without_review": 2}  # P2, P8

    cov = eng.value("review-coverage", p)
    # approved before merge, not dismissed, not self, not bot: P1, P3, P6 -> 3 / 8
    assert cov.n == 8
    assert cov.value == 3 / 8
    assert cov.breakdown == {"approved": 3, "not_approved": 5}

    ct = eng.value("cycle-time", p)
    assert ct.n == 8
    assert ct.value == 10 * HOUR  # all created 10:00, merged 20:00, no first commit
    assert ct.breakdown["merged_without_review"] == 2


def test_draft_review_counts_as_zero_pickup(session):
    team = setup_team(session)
    # review at 09:00 while a draft; ready at 12:00; merged 18:00
    pr(
        session,
        number=1,
        created=T("2026-11-02 08:00"),
        ready=T("2026-11-02 12:00"),
        merged=T("2026-11-02 18:00"),
        reviews=[("bob", "APPROVED", T("2026-11-02 09:00"))],
    )
    # never a draft: pickup 08:00 -> 11:00 = 3 h
    pr(
        session,
        number=2,
        created=T("2026-11-03 08:00"),
        merged=T("2026-11-03 18:00"),
        reviews=[("bob", "COMMENTED", T("2026-11-03 11:00"))],
    )
    eng = engine(session, team)
    fr = eng.value("first-review", period(W45))
    # pickups: 0 and 3 h -> median 1.5 h
    assert fr.n == 2
    assert fr.value == 1.5 * HOUR
    ct = eng.value("cycle-time", period(W45))
    # #1: coding 08->12 = 4 h, pickup 0, review 12->18 = 6 h; #2: coding 0, pickup 3, review 7
    assert ct.breakdown == {
        "coding": 2 * HOUR,
        "pickup": 1.5 * HOUR,
        "review": 6.5 * HOUR,
        "merged_without_review": 0,
    }
    assert ct.value == 10 * HOUR
    cov = eng.value("review-coverage", period(W45))
    # #1's approval while a draft still precedes the merge; #2 was only commented: 1 / 2
    assert cov.value == 0.5


def test_first_commit_after_creation_uses_created(session):
    team = setup_team(session)
    pr(
        session,
        number=1,
        created=T("2026-11-02 08:00"),
        first_commit=T("2026-11-02 09:00"),
        merged=T("2026-11-02 12:00"),
    )
    pr(
        session,
        number=2,
        created=T("2026-11-02 08:00"),
        first_commit=T("2026-10-30 08:00"),
        merged=T("2026-11-02 12:00"),
    )
    mv = engine(session, team).value("cycle-time", period(W45))
    # #1: 08:00 -> 12:00 = 4 h (the later first commit is replaced by created)
    # #2: Oct 30 08:00 -> Nov 2 12:00 = 76 h; median of 4 and 76 = 40 h
    assert mv.value == 40 * HOUR
    assert mv.breakdown["coding"] == 36 * HOUR  # median of 0 and 72 h


# --- PR size and ignored paths -------------------------------------------------------------


def test_pr_size_ignored_paths(session):
    team = setup_team(
        session,
        TeamConfig(
            name="payments",
            repos=("acme/api",),
            ignore_paths=("**/testdata/**", "*.pb.go", "docs/*.md"),
        ),
    )
    x = pr(
        session,
        number=1,
        created=T("2026-11-02 08:00"),
        merged=T("2026-11-02 12:00"),
        additions=9999,
        deletions=9999,
    )
    for path, a, d in [
        ("src/app.py", 40, 10),  # kept: 50
        ("web/package-lock.json", 900, 900),  # default, name in any folder
        ("Gemfile.lock", 10, 0),  # *.lock
        ("vendor/lib/a.go", 500, 0),  # vendor/**
        ("node_modules/x/index.js", 100, 0),
        ("dist/bundle.js", 100, 0),
        ("static/app.min.js", 100, 0),
        ("tests/__snapshots__/a.snap", 100, 0),
        ("api/v1/svc.pb.go", 300, 0),  # team: *.pb.go
        ("pkg/x/testdata/big.json", 1000, 0),  # team: **/testdata/**
        ("testdata/top.json", 1000, 0),  # **/ matches zero folders
        ("docs/guide.md", 20, 0),  # team: docs/*.md
        ("docs/api/ref.md", 25, 5),  # kept: `*` does not cross `/` -> 30
    ]:
        pr_file(session, x, path, a, d)
    pr_file(session, x, "src/schema_gen.py", 200, 0, generated=True)  # linguist-generated
    # exactly 400 lines is not "over 400"; 401 is
    pr(
        session,
        number=2,
        created=T("2026-11-03 08:00"),
        merged=T("2026-11-03 12:00"),
        additions=400,
        deletions=0,
    )
    pr(
        session,
        number=3,
        created=T("2026-11-04 08:00"),
        merged=T("2026-11-04 12:00"),
        additions=399,
        deletions=2,
    )
    eng = engine(session, team)
    mv = eng.value("pr-size", period(W45))
    # sizes: #1 = 50 + 30 = 80, #2 = 400, #3 = 401 -> median 400
    assert mv.n == 3
    assert mv.value == 400
    assert mv.breakdown == {"over_400": 1, "over_400_share": 1 / 3}
    size = {p.number: p.size for p in eng.merged_prs(period(W45))}
    assert size == {1: 80, 2: 400, 3: 401}
    # target "< 400": a median of exactly 400 is off target
    assert build_card(eng, "pr-size", period(W45)).status == "off target"


def test_pr_with_only_ignored_files_has_size_zero(session):
    team = setup_team(session)
    x = pr(
        session,
        number=1,
        created=T("2026-11-02 08:00"),
        merged=T("2026-11-02 12:00"),
        additions=3000,
        deletions=0,
    )
    pr_file(session, x, "go.sum", 3000, 0)
    mv = engine(session, team).value("pr-size", period(W45))
    assert (mv.n, mv.value) == (1, 0)


# --- base branches -------------------------------------------------------------------------


def test_base_branch_must_be_the_default_branch(session):
    team = setup_team(session)
    session.execute(update(Repository).values(default_branch="trunk"))
    pr(session, number=1, base="trunk", created=T("2026-11-02 08:00"), merged=T("2026-11-02 12:00"))
    pr(session, number=2, base="main", created=T("2026-11-02 08:00"), merged=T("2026-11-02 12:00"))
    eng = engine(session, team)
    assert numbers(eng.merged_prs(period(W45))) == [1]
    assert eng.value("cycle-time", period(W45)).n == 1


def test_team_branches_override_the_default_branch(session):
    team = setup_team(
        session,
        TeamConfig(name="payments", repos=("acme/api",), branches=("main", "release/*.x", "hf/*")),
    )
    bases = ["main", "release/2.x", "release/v2/3.x", "develop", "hf/1", "hf/1/2", "x/main"]
    for n, base in enumerate(bases, 1):
        pr(
            session,
            number=n,
            base=base,
            created=T("2026-11-02 08:00"),
            merged=T("2026-11-02 12:00"),
        )
    eng = engine(session, team)
    # `*` does not cross `/`: release/v2/3.x is not listed. .gitignore rules also make a
    # pattern that matches a "folder" cover what is below it (hf/* matches hf/1, so hf/1/2),
    # and a pattern without `/` matches in any folder (main matches x/main).
    assert numbers(eng.merged_prs(period(W45))) == [1, 2, 5, 6, 7]


def test_team_branches_replace_the_default_branch(session):
    team = setup_team(
        session, TeamConfig(name="payments", repos=("acme/api",), branches=("release/*",))
    )
    pr(session, number=1, base="main", created=T("2026-11-02 08:00"), merged=T("2026-11-02 12:00"))
    pr(
        session,
        number=2,
        base="release/1",
        created=T("2026-11-02 08:00"),
        merged=T("2026-11-02 12:00"),
    )
    assert numbers(engine(session, team).merged_prs(period(W45))) == [2]


# --- time zones ----------------------------------------------------------------------------


def test_week_and_month_boundaries_in_berlin_across_dst(session):
    team = setup_team(
        session, TeamConfig(name="payments", repos=("acme/api",), timezone="Europe/Berlin")
    )
    merges = {
        1: ("2026-09-30 21:59:59", "dave"),  # Wed 30 Sep 23:59:59 CEST: September, W40
        2: ("2026-09-30 22:00:00", "carol"),  # Thu 1 Oct 00:00 CEST: October, W40
        3: ("2026-10-18 21:59:59", "dave"),  # Sun 18 Oct 23:59:59 CEST: W42
        4: ("2026-10-18 22:00:00", "alice"),  # Mon 19 Oct 00:00 CEST: W43
        5: ("2026-10-25 22:59:59", "bob"),  # Sun 25 Oct 23:59:59 CET (after DST): W43
        6: ("2026-10-25 23:00:00", "erin"),  # Mon 26 Oct 00:00 CET: W44
        7: ("2026-10-31 22:59:59", "alice"),  # Sat 31 Oct 23:59:59 CET: October, W44
        8: ("2026-10-31 23:00:00", "frank"),  # Sun 1 Nov 00:00 CET: November, W44
    }
    for n, (at, who) in merges.items():
        pr(session, number=n, author=who, created=T(at) - H(1), merged=T(at))
    eng = engine(session, team)
    berlin = lambda w: period(w, "Europe/Berlin")  # noqa: E731
    assert numbers(eng.merged_prs(berlin("2026-W42"))) == [3]
    assert numbers(eng.merged_prs(berlin("2026-W43"))) == [4, 5]
    assert numbers(eng.merged_prs(berlin("2026-W44"))) == [6, 7, 8]
    assert numbers(eng.merged_prs(berlin("2026-10"))) == [2, 3, 4, 5, 6, 7]
    assert numbers(eng.merged_prs(berlin("2026-09"))) == [1]
    assert numbers(eng.merged_prs(berlin("2026-11"))) == [8]
    # the same data in a UTC team: W43 = [19 Oct 00:00, 26 Oct 00:00) UTC
    assert numbers(eng.merged_prs(period("2026-W43"))) == [5, 6]
    mf = eng.value("merge-frequency", berlin("2026-10"))
    # 6 merged / 5 authors (carol, dave, alice, bob, erin) / (31 / 7) weeks = 42 / 155
    assert mf.value == pytest.approx(42 / 155)
    assert mf.breakdown["weeks"] == pytest.approx(31 / 7)
    w43 = eng.value("merge-frequency", berlin("2026-W43"))
    assert (w43.n, w43.value) == (2, 1.0)  # 2 merged / 2 authors / 1 week (169 hours long)


# --- n = 0, n = 1, status and trend --------------------------------------------------------


def test_no_data(session):
    team = setup_team(session)
    # a bot PR only: the population is empty
    pr(
        session,
        number=1,
        author="dependabot[bot]",
        created=T("2026-11-02 08:00"),
        merged=T("2026-11-02 12:00"),
    )
    eng = engine(session, team)
    p = period(W45)
    for metric in ("cycle-time", "pr-size", "first-review", "review-coverage", "merge-frequency"):
        mv = eng.value(metric, p)
        assert mv.n == 0 and mv.value is None and not mv.has_data, metric
        card = build_card(eng, metric, p)
        assert card.status == "no data"
        assert card.value is None
        assert card.trend == "not enough data"


def test_one_pr(session):
    team = setup_team(session)
    pr(
        session,
        number=1,
        created=T("2026-11-02 08:00"),
        merged=T("2026-11-02 12:00"),
        reviews=[("bob", "APPROVED", T("2026-11-02 09:00"))],
    )
    eng = engine(session, team)
    card = build_card(eng, "cycle-time", period(W45))
    assert (card.n, card.value, card.p50, card.p75, card.p90) == (
        1,
        4 * HOUR,
        4 * HOUR,
        4 * HOUR,
        4 * HOUR,
    )
    assert card.status == "on target"  # 4 h < 72 h
    assert card.trend == "not enough data"
    assert card.previous_n == 0 and card.previous_value is None
    assert [s.n for s in card.sparkline] == [0] * 7 + [1]
    assert card.sparkline[-1].label == W45
    fr = build_card(eng, "first-review", period(W45))
    assert (fr.n, fr.value, fr.status) == (1, 1 * HOUR, "on target")


def _weekly_prs(session, monday: str, hours: list[float]):
    for h in hours:
        pr(session, created=T(f"{monday} 08:00"), merged=T(f"{monday} 08:00") + H(h))


def test_trend_better_worse_flat_through_cards(session):
    team = setup_team(session)
    _weekly_prs(session, "2026-10-26", [12] * 5)  # W44: median 12 h, n = 5
    _weekly_prs(session, "2026-11-02", [10] * 5)  # W45: median 10 h, n = 5
    _weekly_prs(session, "2026-11-09", [10.5] * 5)  # W46: median 10.5 h
    _weekly_prs(session, "2026-11-16", [30] * 4)  # W47: n = 4
    eng = engine(session, team)
    c = build_card(eng, "cycle-time", period(W45))
    # (10 - 12) / 12 = -16.7 %: lower is better -> better
    assert c.trend == "better"
    assert c.change == pytest.approx(-1 / 6)
    assert (c.previous_n, c.previous_value) == (5, 12 * HOUR)
    c = build_card(eng, "cycle-time", period("2026-W46"))
    assert c.trend == "flat"  # +5 %
    assert c.change == pytest.approx(0.05)
    c = build_card(eng, "cycle-time", period("2026-W47"))
    assert c.trend == "not enough data"  # n = 4
    assert c.change == pytest.approx(30 / 10.5 - 1)
    c = build_card(eng, "cycle-time", period("2026-W44"))
    assert c.trend == "not enough data"  # previous week empty
    # coverage: no PR of either week was approved, 0 -> 0 is no change
    cov = build_card(eng, "review-coverage", period(W45))
    assert (cov.value, cov.previous_value, cov.trend) == (0.0, 0.0, "flat")


def test_targets_and_health(session):
    team = setup_team(session)
    # 5 PRs: 80 h cycle (off target "< 72 h"), size 15 (on), no review (coverage 0: off)
    _weekly_prs(session, "2026-11-02", [80] * 5)
    eng = engine(session, team)
    p = period(W45)
    assert build_card(eng, "cycle-time", p).status == "off target"
    assert build_card(eng, "pr-size", p).status == "on target"
    assert build_card(eng, "review-coverage", p).status == "off target"
    health = build_health(eng, p)
    # with data: cycle time, PR size, coverage, merge frequency (5/1/1 = 5 > 2.25: on);
    # first review has no reviewed PR; every lagging KPI has no data
    assert health.with_data == 4
    assert health.on_target == 2


def test_waiting_for_review(session):
    team = setup_team(session)
    now = T("2026-11-05 12:00")
    # the first-review target is 4 h: the cut-off is 08:00
    pr(session, number=1, created=T("2026-11-05 02:00"), merged=None)  # waiting since 02:00
    pr(
        session,
        number=2,
        created=T("2026-11-04 02:00"),
        merged=None,
        reviews=[
            ("alice", "COMMENTED", T("2026-11-04 03:00")),  # own review
            ("ci[bot]", "APPROVED", T("2026-11-04 03:00")),
        ],
    )  # bot review
    pr(
        session,
        number=3,
        created=T("2026-11-05 01:00"),
        merged=None,
        reviews=[("bob", "COMMENTED", T("2026-11-05 03:00"))],
    )  # reviewed
    pr(session, number=4, created=T("2026-11-05 01:00"), merged=None, draft=True)  # a draft
    pr(
        session, number=5, created=T("2026-11-05 01:00"), merged=None, author="renovate[bot]"
    )  # a bot's PR
    pr(
        session, number=6, created=T("2026-11-05 01:00"), ready=T("2026-11-05 10:00"), merged=None
    )  # ready only 2 h ago
    pr(session, number=7, created=T("2026-11-05 11:00"), merged=None)  # 1 h old
    pr(session, number=8, created=T("2026-11-05 01:00"), merged=T("2026-11-05 06:00"))  # merged
    eng = engine(session, team)
    waiting = eng.waiting_for_review(now)
    assert [(w.number, w.waiting_since) for w in waiting] == [
        (2, T("2026-11-04 02:00")),
        (1, T("2026-11-05 02:00")),
    ]
    assert waiting[0].repository == "acme/api"
    # at most 10, oldest first
    for n in range(20, 32):
        pr(session, number=n, created=T("2026-11-01 00:00") + H(n), merged=None)
    waiting = engine(session, team).waiting_for_review(now)
    assert [w.number for w in waiting] == list(range(20, 30))
    assert len(eng.waiting_for_review(now, limit=1)) == 1


# --- pure functions ------------------------------------------------------------------------


def test_pure_leading_functions_with_no_prs():
    assert leading.cycle_time([]).value is None
    assert leading.pr_size([]).value is None
    assert leading.first_review([]).n == 0
    assert leading.review_coverage([]).value is None
    assert leading.merge_frequency([], 7).value is None


def test_pure_merge_frequency_zero_days_is_no_data():
    p = PRFacts(1, 1, 1, "t", "a", T("2026-11-02 08:00"), T("2026-11-02 09:00"))
    assert leading.merge_frequency([p], 0).value is None


def test_pure_coverage_approved_exactly_at_merge():
    p = PRFacts(
        1,
        1,
        1,
        "t",
        "a",
        T("2026-11-02 08:00"),
        T("2026-11-02 09:00"),
        approved=T("2026-11-02 09:00"),
    )
    assert leading.review_coverage([p]).value == 1.0  # t_approved <= t_merged


# --- a period in progress (METRICS.md, Time) ------------------------------------------------


def test_merge_frequency_this_month_on_dec_3_uses_the_elapsed_days(session):
    """On Thu 3 Dec 2026 12:00 in Berlin, December so far is 2.5 days: the rate divides by
    2.5 / 7 weeks (not the month's 31 / 7) and the trend compares with 1 Nov 00:00 - 3 Nov
    12:00, while the sparkline keeps the whole of November."""
    team = setup_team(
        session, TeamConfig(name="payments", repos=("acme/api",), timezone="Europe/Berlin")
    )

    def merged(at, author):
        pr(session, author=author, created=T(at) - H(2), merged=T(at))

    # December so far: 5 PRs by alice and bob
    merged("2026-11-30 23:30", "alice")  # Tue 1 Dec 00:30 CET
    merged("2026-12-01 09:00", "bob")
    merged("2026-12-02 10:00", "alice")
    merged("2026-12-02 15:00", "bob")
    merged("2026-12-03 10:59", "alice")
    # November: 5 PRs by alice, bob and carol in its first 2.5 days...
    merged("2026-10-31 22:30", "erin")  # 31 Oct 23:30 CET: October
    merged("2026-10-31 23:00", "alice")  # 1 Nov 00:00 CET
    merged("2026-11-01 12:00", "bob")
    merged("2026-11-02 12:00", "carol")
    merged("2026-11-02 13:00", "alice")
    merged("2026-11-03 10:59", "bob")
    # ... then 5 more by alice and dave
    merged("2026-11-03 11:00", "alice")  # 3 Nov 12:00 CET: after the compared span
    for day in (10, 17, 24, 30):
        merged(f"2026-11-{day} 12:00", "dave")
    session.commit()

    p = period("this-month", "Europe/Berlin", now="2026-12-03T11:00:00")
    card = build_card(engine(session, team), "merge-frequency", p)
    # 5 merged / 2 authors / (2.5 / 7) weeks = 7.0 (the whole month would say 0.56)
    assert (card.n, card.value) == (5, 7.0)
    assert card.breakdown == {"merged": 5, "authors": 2, "weeks": 2.5 / 7}
    assert card.status == "on target"  # > 2.25
    # previous: 5 merged / 3 authors / (2.5 / 7) weeks = 14 / 3
    assert (card.previous_n, card.previous_value) == (5, pytest.approx(14 / 3))
    assert (card.trend, card.change) == ("better", pytest.approx(0.5))
    # sparkline: whole November (10 merged / 4 authors / (30 / 7) weeks), then December so far
    assert card.sparkline[-2].label == "2026-11"
    assert card.sparkline[-2].value == pytest.approx(10 / 4 / (30 / 7))
    assert (card.sparkline[-1].label, card.sparkline[-1].value) == ("2026-12", 7.0)
    assert card.period.in_progress
    assert card.period.description == "December 2026 so far (Dec 1 – Dec 3)"
    assert card.period.end == now_utc("2026-12-03T11:00:00")


def test_leading_kpis_of_a_week_in_progress_stop_at_now(session):
    team, _ = _population(session)
    # Wed 4 Nov 00:00: W45 so far holds A (2 Nov 18:00) and B (4 Nov 00:00 is not before now)
    p = period("this-week", now="2026-11-04T00:00:00")
    eng = engine(session, team)
    mv = eng.value("cycle-time", p)
    assert (mv.n, mv.value) == (1, 10 * HOUR)  # A alone: 2 + 2 + 6 h
    mf = eng.value("merge-frequency", p)
    assert (mf.n, mf.value) == (1, pytest.approx(1 / 1 / (2 / 7)))
