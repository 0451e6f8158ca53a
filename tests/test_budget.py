"""The noise budget (bot/scheduler/budget.py): at most N alerts and nudges per conversation
and ISO week in the team's zone, the rest folded into the roll-up; each notice admitted once;
failed or abandoned posts admitted again, looking first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.scheduler import budget

BERLIN = ZoneInfo("Europe/Berlin")


def at(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def test_the_budget_folds_what_is_over_it_and_resets_each_week(session):
    now = at(2026, 11, 2, 9)  # Monday, week 45
    posted = []
    for i in range(4):
        a = budget.admit(
            session, "slack", "C1", "alert", f"k{i}", now, budget=3, zone=BERLIN, text=f"alert {i}"
        )
        if a:
            budget.posted(session, a, now, f"ts{i}")
            posted.append(i)
        else:
            assert a.folded and a.settled
    assert posted == [0, 1, 2]
    # another conversation has its own budget; a roll-up never counts and is never folded
    assert budget.admit(session, "slack", "C2", "alert", "k0", now, budget=3, zone=BERLIN)
    assert budget.admit(session, "slack", "C1", "rollup", "d1", now, budget=None, zone=BERLIN)
    assert [n.text for n in budget.folded(session, "slack", "C1")] == ["alert 3"]
    # Sunday 23:30 Berlin is still week 45 there (22:30 UTC); Monday 00:30 Berlin is week 46
    sunday = at(2026, 11, 8, 22, 30)
    assert not budget.admit(session, "slack", "C1", "alert", "k5", sunday, budget=3, zone=BERLIN)
    monday = at(2026, 11, 8, 23, 30)
    assert budget.week_of(monday, BERLIN) == "2026-W46"
    assert budget.admit(session, "slack", "C1", "alert", "k6", monday, budget=3, zone=BERLIN)
    folded = budget.folded(session, "slack", "C1")
    budget.rolled_up(session, [n.id for n in folded], monday)
    assert budget.folded(session, "slack", "C1") == []


def test_a_notice_is_admitted_once_and_retried_after_a_failure_or_a_dead_process(session):
    now = at(2026, 11, 2, 9)
    first = budget.admit(session, "teams", "19:x", "alert", "cfr:off:2026-11-02", now)
    assert first and not first.retry and first.key == "alert:cfr:off:2026-11-02"
    # in flight (another process, or this one before recording): not admitted again
    again = budget.admit(session, "teams", "19:x", "alert", "cfr:off:2026-11-02", now)
    assert not again and not again.settled
    # the process died: 10 minutes later it is admitted again, to look before posting
    later = now + timedelta(minutes=10)
    retry = budget.admit(session, "teams", "19:x", "alert", "cfr:off:2026-11-02", later)
    assert retry and retry.retry
    budget.failed(session, retry)
    retry2 = budget.admit(session, "teams", "19:x", "alert", "cfr:off:2026-11-02", later)
    assert retry2 and retry2.retry
    budget.posted(session, retry2, later, "a1")
    done = budget.admit(session, "teams", "19:x", "alert", "cfr:off:2026-11-02", later)
    assert not done and done.settled
    # the failed attempt still used the week's budget: 1 of 1 here
    assert not budget.admit(session, "teams", "19:x", "alert", "other", later, budget=1)


def test_threshold_alerts_count_against_the_budget_and_fold_into_the_roll_up(engine):
    """An alert posted through the scheduler's one alert path (deliver_alert) uses the
    conversation's budget; the one over it is not posted and waits for the roll-up."""
    from bot.scheduler.alerts import deliver_alert
    from bot.store.models import AlertEvent
    from bot.store.session import session_factory
    from tests.scheduler_fakes import BERLIN_TEAM, SchedulerSlack, poster_for, setup_org

    factory = session_factory(engine)
    ids = setup_org(factory)
    now = at(2026, 11, 2, 8)
    with factory() as s:
        events = [
            AlertEvent(
                team_id=ids["berlin"],
                kpi="change-failure-rate",
                evaluated_at=(now - timedelta(days=i)).replace(tzinfo=None),
                crossing="off target",
                value=0.3,
                n=10,
                target_op="<=",
                target_value=0.15,
            )
            for i in range(3)
        ]
        s.add_all(events)
        s.commit()
        event_ids = [e.id for e in events]
    with SchedulerSlack() as slack:
        poster = poster_for(slack)
        outcomes = [
            deliver_alert(
                factory,
                poster,
                event_id,
                "C1",
                {"text": f"alert {event_id}"},
                holder="h",
                now=now,
                claim_ttl=timedelta(minutes=5),
                history_back=timedelta(hours=1),
                noise_budget=2,
                zone=BERLIN_TEAM.zone,
                text=f"CFR alert {event_id}",
            )
            for event_id in event_ids
        ]
        assert outcomes == ["posted", "posted", "folded"]
        assert [p["text"] for p in slack.posts("C1")] == [f"alert {i}" for i in event_ids[:2]]
        # delivering the folded one again posts nothing: it waits for the roll-up
        again = deliver_alert(
            factory,
            poster,
            event_ids[2],
            "C1",
            {"text": "again"},
            holder="h",
            now=now,
            claim_ttl=timedelta(minutes=5),
            history_back=timedelta(hours=1),
            noise_budget=2,
            zone=BERLIN_TEAM.zone,
        )
        assert again == "busy" and len(slack.posts("C1")) == 2
    with factory() as s:
        assert [n.text for n in budget.folded(s, "slack", "C1")] == [f"CFR alert {event_ids[2]}"]
