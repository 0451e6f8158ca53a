"""The pull-request timeline (METRICS.md, The pull-request timeline) as a pure function."""

from bot.metrics.timeline import PRFacts, timeline
from tests.factories import T
from tests.helpers import HOUR


def facts(**kw) -> PRFacts:
    base = {
        "id": 1,
        "repository_id": 1,
        "number": 1,
        "title": "PR",
        "author": "alice",
        "created": T("2026-11-02 10:00"),
        "merged": T("2026-11-03 10:00"),
    }
    base.update(kw)
    return PRFacts(**base)


def test_full_timeline_by_hand():
    tl = timeline(
        facts(
            first_commit=T("2026-11-02 06:00"),
            ready=T("2026-11-02 12:00"),
            first_review=T("2026-11-02 14:00"),
            approved=T("2026-11-02 15:00"),
            deployed=T("2026-11-03 12:30"),
        )
    )
    # coding = ready - first commit = 12:00 - 06:00 = 6 h
    assert tl.coding == 6 * HOUR
    # pickup = first review - ready = 14:00 - 12:00 = 2 h
    assert tl.pickup == 2 * HOUR
    # review = merged - first review = Nov 3 10:00 - Nov 2 14:00 = 20 h
    assert tl.review == 20 * HOUR
    # cycle = merged - first commit = 28 h = 6 + 2 + 20
    assert tl.cycle == 28 * HOUR
    # deploy = 12:30 - 10:00 = 2.5 h; lead = deployed - first commit = 30.5 h
    assert tl.deploy == 2.5 * HOUR
    assert tl.lead == 30.5 * HOUR
    assert tl.reviewed


def test_never_a_draft_ready_is_created():
    tl = timeline(facts(first_commit=T("2026-11-02 09:00"), first_review=T("2026-11-02 11:00")))
    assert tl.ready == T("2026-11-02 10:00")
    assert tl.coding == 1 * HOUR  # 10:00 - 09:00
    assert tl.pickup == 1 * HOUR  # 11:00 - 10:00
    assert tl.review == 23 * HOUR  # Nov 3 10:00 - Nov 2 11:00


def test_missing_first_commit_uses_created():
    tl = timeline(facts(first_commit=None))
    assert tl.first_commit == T("2026-11-02 10:00")
    assert tl.coding == 0.0
    assert tl.cycle == 24 * HOUR


def test_first_commit_after_creation_uses_created():
    # e.g. a PR opened empty and the first commit pushed later
    tl = timeline(facts(first_commit=T("2026-11-02 18:00")))
    assert tl.first_commit == T("2026-11-02 10:00")
    assert tl.cycle == 24 * HOUR
    assert tl.coding == 0.0


def test_draft_then_ready_coding_runs_to_ready():
    tl = timeline(
        facts(
            first_commit=T("2026-11-01 10:00"),
            ready=T("2026-11-02 20:00"),
            first_review=T("2026-11-02 22:00"),
        )
    )
    assert tl.coding == 34 * HOUR  # Nov 1 10:00 -> Nov 2 20:00
    assert tl.pickup == 2 * HOUR
    assert tl.review == 12 * HOUR  # Nov 2 22:00 -> Nov 3 10:00
    assert tl.cycle == 48 * HOUR


def test_review_while_draft_counts_as_zero_pickup():
    tl = timeline(
        facts(
            first_commit=T("2026-11-02 08:00"),
            ready=T("2026-11-02 16:00"),
            first_review=T("2026-11-02 12:00"),  # before ready
        )
    )
    assert tl.first_review == T("2026-11-02 16:00")  # clamped to ready
    assert tl.pickup == 0.0
    assert tl.review == 18 * HOUR  # merged - ready
    assert tl.coding == 8 * HOUR
    assert tl.reviewed


def test_no_review_pickup_runs_to_merge():
    tl = timeline(facts(first_commit=T("2026-11-02 08:00"), ready=T("2026-11-02 12:00")))
    assert not tl.reviewed
    assert tl.pickup == 22 * HOUR  # merged - ready
    assert tl.review == 0.0
    assert tl.coding + tl.pickup + tl.review == tl.cycle == 26 * HOUR


def test_review_after_merge_is_clamped_to_merge():
    tl = timeline(facts(first_review=T("2026-11-04 10:00")))
    assert tl.reviewed  # it has a t_first_review, clamped into [ready, merged]
    assert tl.first_review == T("2026-11-03 10:00")
    assert tl.pickup == 24 * HOUR
    assert tl.review == 0.0


def test_not_deployed_has_no_deploy_phase_or_lead():
    tl = timeline(facts())
    assert tl.deploy is None
    assert tl.lead is None


def test_deployment_reported_before_merge_is_clipped_to_zero():
    tl = timeline(facts(deployed=T("2026-11-03 09:00")))
    assert tl.deploy == 0.0
    assert tl.lead == tl.cycle == 24 * HOUR


def test_ready_before_first_commit_is_clipped():
    # inconsistent provider data: ready reported before the (clamped) first commit
    tl = timeline(facts(first_commit=T("2026-11-02 09:00"), ready=T("2026-11-02 08:00")))
    assert tl.coding == 0.0
    assert tl.pickup == 25 * HOUR  # no review: merged - ready(clamped to 09:00)
    assert tl.coding + tl.pickup + tl.review == tl.cycle


def test_adding_a_deployment_to_a_timeline_equals_computing_it_whole():
    """The engine adds a deployed PR's deploy phase to the timeline it computed for the
    merged PR (``with_deployment``): in calendar time and in business hours, every field is
    the one ``timeline`` computes with the deployment set."""
    import random
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from bot.metrics.business import BusinessClock
    from bot.metrics.timeline import with_deployment
    from bot.settings import WorkingHours

    rng = random.Random(7)
    clocks = [None, BusinessClock.of(WorkingHours(), ZoneInfo("America/New_York"))]
    start = T("2026-03-01 00:00")
    for _ in range(400):
        created = start + timedelta(minutes=rng.randrange(0, 200 * 24 * 60))
        merged = created + timedelta(minutes=rng.randrange(0, 20 * 24 * 60))

        def near(t):
            return t + timedelta(minutes=rng.randrange(-3 * 24 * 60, 6 * 24 * 60))

        pr = facts(
            created=created,
            merged=merged,
            first_commit=rng.choice([None, near(created)]),
            ready=rng.choice([None, near(created)]),
            first_review=rng.choice([None, near(created)]),
        )
        deployed = near(merged)  # sometimes before the merge: the phase is 0 then
        for clock in clocks:
            whole = timeline(facts(**{**_fields(pr), "deployed": deployed}), clock)
            assert with_deployment(timeline(pr, clock), deployed, clock) == whole


def _fields(pr: PRFacts) -> dict:
    return {f: getattr(pr, f) for f in PRFacts.__dataclass_fields__}
