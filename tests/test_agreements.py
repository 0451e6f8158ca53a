"""Working agreements (METRICS.md, Agreements and alerts) and exclusions (Which PRs are a
team's): the pure rules with hand-computed values, then the engine on a real store."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.metrics.agreements import OpenPR, breaches
from bot.metrics.business import BusinessClock
from bot.reports.cards import build_card, build_health
from bot.settings import Agreements, TeamConfig, WorkingHours
from bot.store.models import PullRequestExclusion
from tests.factories import T, pr, setup_team
from tests.helpers import engine, period, team_id

AGREE = Agreements(first_review_within=4 * 3600, pr_size_under=400, open_pr_idle_for=3 * 86400)


def open_pr(n: int, **kw: object) -> OpenPR:
    base: dict[str, object] = {
        "id": n,
        "repository": "acme/api",
        "number": n,
        "title": f"PR {n}",
        "url": f"https://github.com/acme/api/pull/{n}",
        "created": T("2026-11-02 08:00"),
        "ready": None,
        "first_review": None,
        "last_activity": T("2026-11-02 08:00"),
        "size": 10,
    }
    base.update(kw)
    return OpenPR(**base)  # type: ignore[arg-type]


def test_first_review_breach_starts_exactly_d_after_ready():
    now = T("2026-11-02 12:00")
    prs = [
        open_pr(1),  # opened 08:00: 4 h at 12:00 -> in breach (reaches D)
        open_pr(2, created=T("2026-11-02 08:00:01")),  # 1 s short
        open_pr(3, created=T("2026-11-01 08:00"), ready=T("2026-11-02 09:00")),  # ready 3 h ago
        open_pr(4, first_review=T("2026-11-02 11:00")),  # reviewed: never in breach
        open_pr(5, draft=True),
        open_pr(6, bot=True),
        open_pr(7, excluded=True),
    ]
    got = breaches(prs, Agreements(first_review_within=4 * 3600), now)
    assert [(b.pr.number, b.agreement, b.measured) for b in got] == [
        (1, "first_review_within", 4 * 3600.0)
    ]
    assert got[0].since == T("2026-11-02 08:00")


def test_size_reaches_n_and_idle_counts_from_the_last_activity():
    now = T("2026-11-06 08:00")
    prs = [
        open_pr(1, size=400, first_review=T("2026-11-02 09:00")),  # reaches 400
        open_pr(2, size=399, first_review=T("2026-11-02 09:00")),
        # last activity Nov 3 08:00: idle exactly 3 days
        open_pr(3, first_review=T("2026-11-02 09:00"), last_activity=T("2026-11-03 08:00")),
        open_pr(4, first_review=T("2026-11-02 09:00"), last_activity=T("2026-11-03 08:01")),
    ]
    got = breaches(prs, AGREE, now)
    assert [(b.pr.number, b.agreement, b.measured) for b in got] == [
        (1, "pr_size_under", 400.0),
        (1, "open_pr_idle_for", 4 * 86400.0),
        (2, "open_pr_idle_for", 4 * 86400.0),
        (3, "open_pr_idle_for", 3 * 86400.0),
    ]


def test_business_hours_count_only_working_time():
    clock = BusinessClock.of(WorkingHours(), ZoneInfo("Europe/Berlin"))
    # opened Friday 2026-11-06 15:00 Berlin (14:00 UTC): 2 working hours on Friday, then
    # Monday from 09:00 Berlin (08:00 UTC); 4 working hours are reached Monday 11:00 Berlin
    pr1 = open_pr(1, created=T("2026-11-06 14:00"), last_activity=T("2026-11-06 14:00"))
    agree = Agreements(first_review_within=4 * 3600)
    assert breaches([pr1], agree, T("2026-11-09 09:59"), clock) == []
    got = breaches([pr1], agree, T("2026-11-09 10:00"), clock)
    assert [(b.agreement, b.measured) for b in got] == [("first_review_within", 4 * 3600.0)]
    # in calendar time it was in breach on Friday at 18:00 UTC
    assert breaches([pr1], agree, T("2026-11-06 18:00"))


def test_the_engine_reads_open_prs_with_reviews_sizes_and_exclusions(session):
    team = setup_team(
        session,
        TeamConfig(name="payments", repos=("acme/api",), agreements=AGREE),
    )
    waiting = pr(session, created=T("2026-11-02 08:00"), merged=None, number=1, title="<b>x</b>")
    # reviewed by its author only and by a bot: still waiting for a first review
    pr(
        session,
        created=T("2026-11-02 08:00"),
        merged=None,
        number=2,
        reviews=[
            ("alice", "COMMENTED", T("2026-11-02 09:00")),
            ("ci[bot]", "APPROVED", T("2026-11-02 09:30")),
        ],
    )
    # big, but the lock file does not count: 350 lines
    pr(
        session,
        created=T("2026-11-02 08:00"),
        merged=None,
        number=3,
        additions=900,
        deletions=0,
        files=[("src/a.py", 300, 50), ("package-lock.json", 550, 0)],
        reviews=[("bob", "APPROVED", T("2026-11-02 09:00"))],
    )
    labelled = pr(session, created=T("2026-11-02 08:00"), merged=None, number=4)
    labelled.labels = "bug,KPI-Exclude"
    by_lead = pr(session, created=T("2026-11-02 08:00"), merged=None, number=5)
    pr(session, created=T("2026-11-02 08:00"), merged=None, number=6, draft=True)
    pr(session, created=T("2026-11-02 08:00"), merged=None, number=7, author="dependabot[bot]")
    pr(session, created=T("2026-11-01 08:00"), merged=T("2026-11-01 09:00"), number=8)
    session.add(
        PullRequestExclusion(
            team_id=team_id(session),
            pull_request_id=by_lead.id,
            platform="slack",
            excluded_by="ULEAD",
            reason="spike",
            excluded_at=T("2026-11-02 10:00"),
        )
    )
    eng = engine(session, team)
    got = eng.agreement_breaches(T("2026-11-02 12:00"))
    assert [(b.pr.number, b.agreement) for b in got] == [
        (1, "first_review_within"),
        (2, "first_review_within"),
    ]
    assert got[0].pr.title == "<b>x</b>"  # escaped by the renderers, not here
    assert got[0].pr.id == waiting.id
    sizes = {p.number: p.size for p in eng.open_prs()}
    assert sizes[3] == 350


def test_excluded_prs_leave_every_pr_kpi_and_cards_count_them(session):
    team = setup_team(session, TeamConfig(name="payments", repos=("acme/api",)))
    # three merged PRs in 2026-W45 with cycle times 2 h, 4 h and 30 h; the 30 h one has the
    # label, a 6 h one was excluded by a lead
    pr(session, created=T("2026-11-02 08:00"), merged=T("2026-11-02 10:00"), number=1)
    pr(session, created=T("2026-11-02 08:00"), merged=T("2026-11-02 12:00"), number=2)
    slow = pr(session, created=T("2026-11-02 08:00"), merged=T("2026-11-03 14:00"), number=3)
    slow.labels = "kpi-exclude"
    lead = pr(session, created=T("2026-11-02 08:00"), merged=T("2026-11-02 14:00"), number=4)
    session.add(
        PullRequestExclusion(
            team_id=team_id(session),
            pull_request_id=lead.id,
            platform="slack",
            excluded_by="ULEAD",
            reason="a spike",
            excluded_at=T("2026-11-04 10:00"),
        )
    )
    eng = engine(session, team)
    w45 = period("2026-W45")
    ct = eng.value("cycle-time", w45)
    assert ct.n == 2
    assert ct.value == 3 * 3600.0  # median of 2 h and 4 h
    assert eng.value("merge-frequency", w45).n == 2
    assert eng.excluded("cycle-time", w45) == 2
    assert eng.excluded("mttr", w45) == 0
    card = build_card(eng, "cycle-time", w45)
    assert card.excluded == 2
    health = build_health(eng, w45)
    assert health.excluded == 2
    # without the label rule the 30 h PR counts again: median of 2, 4, 30 h = 4 h
    plain = engine(session, TeamConfig(name="payments", repos=("acme/api",), exclude_labels=()))
    assert plain.value("cycle-time", w45).value == 4 * 3600.0
    assert plain.excluded("cycle-time", w45) == 1


def test_a_pull_request_webhook_checks_the_agreements_at_once(engine, session):
    """Signed GitHub deliveries over loopback: the opened PR is in breach 4 h later (the
    webhook's clock); its author's own review changes nothing; closing it ends the breach."""
    from bot.settings import Config
    from bot.store.models import AgreementBreach
    from bot.store.session import session_factory
    from bot.store.teams import sync_teams
    from bot.surfaces.http import HttpApp, Server
    from bot.surfaces.webhooks import Webhooks, install
    from tests.test_webhooks import SECRET, gh, octokit

    team = TeamConfig(
        name="hello",
        repos=("Codertocat/Hello-World",),
        branches=("master",),
        agreements=Agreements(first_review_within=4 * 3600),
    )
    sync_teams(session, Config((team,)))
    session.commit()
    app = HttpApp()
    # opened 2019-05-15 15:20:33 UTC; the webhook's clock reads 4 h later
    now = datetime(2019, 5, 15, 19, 20, 33, tzinfo=UTC)
    install(app, Webhooks(session_factory(engine), Config((team,)), SECRET, clock=lambda: now))
    with Server(app, host="127.0.0.1", port=0, threads=4) as srv:
        r = gh(srv.url, "pull_request", octokit("pull_request/opened.payload.json"))
        assert r.status_code == 200, r.text
        session.expire_all()
        [row] = session.scalars(select(AgreementBreach)).all()
        assert (row.agreement, row.status, row.resolved_at) == (
            "first_review_within",
            "pending",
            None,
        )
        # a review by the PR's own author is no first review: still in breach
        r = gh(
            srv.url, "pull_request_review", octokit("pull_request_review/submitted.payload.json")
        )
        assert r.status_code == 200, r.text
        session.expire_all()
        [row] = session.scalars(select(AgreementBreach)).all()
        assert row.resolved_at is None
        # closed: out of the breach
        r = gh(srv.url, "pull_request", octokit("pull_request/closed.payload.json"))
        assert r.status_code == 200, r.text
        session.expire_all()
        [row] = session.scalars(select(AgreementBreach)).all()
        assert row.resolved_at == datetime(2019, 5, 15, 19, 20, 33)


def test_kpibot_yml_agreements_exclude_labels_and_noise_budget():
    from bot.settings import parse_config

    config, problems = parse_config(
        "defaults:\n"
        "  noise_budget: 2\n"
        "teams:\n"
        "  - name: a\n"
        "    repos: [acme/api]\n"
        "    agreements:\n"
        "      first_review_within: 4h\n"
        "      pr_size_under: 400 lines\n"
        "      open_pr_idle_for: 3d\n"
        "    exclude_labels: [skip-kpi, wip]\n"
        "  - name: b\n"
        "    repos: [acme/api]\n"
    )
    assert problems == [] and config is not None
    a, b = config.teams
    assert a.agreements == AGREE
    assert (a.exclude_labels, a.noise_budget) == (("skip-kpi", "wip"), 2)
    assert (b.agreements.any, b.exclude_labels, b.noise_budget) == (False, ("kpi-exclude",), 2)
    _, problems = parse_config(
        "teams:\n"
        "  - name: a\n"
        "    repos: [acme/api]\n"
        "    agreements:\n"
        "      first_review: 4h\n"
        "      pr_size_under: big\n"
        "      open_pr_idle_for: 0h\n"
        "    noise_budget: lots\n"
    )
    assert problems == [
        "kpibot.yml:5: unknown key 'first_review' in agreements of team 'a'. Did you mean "
        "'first_review_within'? Allowed: first_review_within, pr_size_under, open_pr_idle_for.",
        "kpibot.yml:6: agreements.pr_size_under of team 'a' must be a number of lines, e.g. "
        "400, not 'big'",
        "kpibot.yml:7: agreements.open_pr_idle_for of team 'a' must be longer than 0, e.g. 4h",
        "kpibot.yml:8: noise_budget of team 'a' must be a whole number of alerts and nudges per "
        "channel and week (e.g. 5; 0 sends every one in the roll-up), not 'lots'",
    ]


def test_excluded_prs_leave_lead_time_and_its_card_counts_them(session):
    from tests.factories import deployment
    from tests.helpers import contain

    team = setup_team(session, TeamConfig(name="payments", repos=("acme/api",)))
    # both merged Monday 10:00 and deployed Monday 12:00: lead times 4 h (from 08:00) and
    # 10 h (from Sunday 22:00 UTC, its first commit); the 10 h one carries the label
    a = pr(
        session,
        created=T("2026-11-02 08:00"),
        merged=T("2026-11-02 10:00"),
        number=1,
        merge_sha="a" * 40,
    )
    b = pr(
        session,
        created=T("2026-11-01 22:00"),
        merged=T("2026-11-02 10:00"),
        number=2,
        merge_sha="b" * 40,
    )
    b.labels = "kpi-exclude"
    contain(session, deployment(session, sha="a" * 40, finished=T("2026-11-02 12:00")), a, b)
    eng = engine(session, team)
    w45 = period("2026-W45")
    lt = eng.value("lead-time", w45)
    assert (lt.n, lt.value) == (1, 4 * 3600.0)
    assert eng.excluded("lead-time", w45) == 1
    assert build_card(eng, "lead-time", w45).excluded == 1
