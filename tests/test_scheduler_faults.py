"""Slack faults while posting digests, through the fake Slack Web API on loopback."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from bot.scheduler.jobs import DigestJobs, SchedulerOptions, render_digest
from bot.scheduler.posting import SlackPoster, SlackUnavailable
from bot.store import subscriptions as subs
from bot.store.models import ActionItem
from bot.store.session import session_factory
from tests.fakes.slack import BOT_TOKEN
from tests.scheduler_fakes import (
    BERLIN_TEAM,
    ORG,
    SchedulerSlack,
    add_item,
    fast_policy,
    poster_for,
    runs,
    setup_org,
    subscribe,
)

BEFORE = datetime(2026, 10, 20, 12, tzinfo=UTC)
MONDAY = datetime(2026, 10, 26, 14, 0, tzinfo=UTC)  # both weekly digests are due


@pytest.fixture
def slack():
    with SchedulerSlack() as s:
        yield s


@pytest.fixture
def f(engine):
    return session_factory(engine)


def _org(f):
    ids = setup_org(f)
    b = subscribe(f, ids["berlin"], "CBERLIN1", "weekly", BEFORE)
    n = subscribe(f, ids["nyc"], "CNYC0001", "weekly", BEFORE)
    return ids, b, n


def test_429_waits_for_retry_after(f, slack):
    _, b, n = _org(f)
    slack.rate_limit("chat.postMessage", retry_after=7, times=2)
    waits: list[float] = []
    poster = SlackPoster(BOT_TOKEN, slack.api_url, policy=fast_policy(), sleep=waits.append)
    out = DigestJobs(f, ORG, poster).run_due(MONDAY)
    assert {o.status for o in out} == {"posted"}
    assert waits.count(7.0) == 2
    assert sorted(slack.keys()) == sorted([f"digest:{b}:2026-W43", f"digest:{n}:2026-W43"])


def test_429_wait_is_capped(slack):
    slack.rate_limit("chat.postMessage", retry_after=3600)
    waits: list[float] = []
    poster = SlackPoster(
        BOT_TOKEN, slack.api_url, policy=fast_policy(max_retry_after=30), sleep=waits.append
    )
    assert poster.post("C1", {"text": "hi"}, key="k1")
    assert waits == [30.0]


def test_5xx_is_retried_with_backoff_and_never_doubles_a_post(f, slack):
    _org(f)
    slack.server_error("chat.postMessage", status=503, times=2)
    waits: list[float] = []
    poster = SlackPoster(
        BOT_TOKEN,
        slack.api_url,
        policy=fast_policy(backoff=0.5, max_backoff=10),
        sleep=waits.append,
    )
    out = DigestJobs(f, ORG, poster).run_due(MONDAY)
    assert {o.status for o in out} == {"posted"}
    assert waits[:2] == [0.5, 1.0]  # exponential
    # before each repeat the channel was searched for the message
    assert len(slack.calls_to("conversations.history")) == 2
    assert len(slack.keys()) == 2


def test_5xx_until_attempts_run_out_fails_the_run_and_the_next_pass_posts_it(f, slack):
    _org(f)
    slack.server_error("chat.postMessage", status=500, times=3)
    jobs = DigestJobs(f, ORG, poster_for(slack, max_attempts=3))
    out = {o.subscription_id: o for o in jobs.run_due(MONDAY)}
    failed = [o for o in out.values() if o.status == "failed"]
    assert len(failed) == 1 and "HTTP 500" in (failed[0].detail or "")
    assert sorted(r.status for r in runs(f)) == ["failed", "posted"]
    out2 = jobs.run_due(MONDAY.replace(minute=1))
    assert [o.status for o in out2] == ["posted"]
    assert len(slack.keys()) == 2 == len(set(slack.keys()))
    assert {r.status for r in runs(f)} == {"posted"}
    assert max(r.attempts for r in runs(f)) == 2


def test_a_post_whose_answer_is_lost_is_found_instead_of_repeated(f, slack):
    _org(f)
    slack.hold_after_post = 1.0  # Slack keeps the message but the answer comes too late
    jobs = DigestJobs(f, ORG, poster_for(slack, timeout=0.3))
    out = jobs.run_due(MONDAY)
    assert {o.status for o in out} == {"posted"}
    assert len(slack.keys()) == 2 == len(set(slack.keys()))
    by_key = {m["metadata"]["event_payload"]["key"]: m["ts"] for m in slack.posts()}
    for r in runs(f):
        assert r.message_ts == by_key[f"digest:{r.subscription_id}:{r.period_key}"]


@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel", "is_archived"])
def test_channel_errors_break_the_subscription_tell_the_subscriber_and_others_go_on(
    f, slack, error, caplog
):
    ids, b, n = _org(f)
    slack.add_channel("CNYC0001")
    if error == "channel_not_found":
        pass  # CBERLIN1 is unknown to Slack
    elif error == "not_in_channel":
        slack.add_channel("CBERLIN1", member=False)
    else:
        slack.archive("CBERLIN1")
    jobs = DigestJobs(f, ORG, poster_for(slack))
    with caplog.at_level(logging.ERROR, logger="kpibot.scheduler"):
        out = {o.subscription_id: o for o in jobs.run_due(MONDAY)}
    assert out[b].status == "broken" and out[b].detail == error
    assert out[n].status == "posted"
    assert [m["channel"] for m in slack.posts() if m["channel"].startswith("C")] == ["CNYC0001"]
    with f() as s:
        broken = [x for x in subs.active_subscriptions(s, include_broken=True) if x.broken]
    assert [x.id for x in broken] == [b]
    assert broken[0].broken_reason.startswith(error)
    dm = [c for c in slack.calls_to("chat.postMessage") if c.args["channel"] == "UADMIN1"]
    assert len(dm) == 1
    assert "weekly digest of *berlin*" in dm[0].args["text"]
    assert "/kpi subscribe weekly berlin" in dm[0].args["text"]
    assert any("is broken" in r.message for r in caplog.records)
    # a broken subscription is left alone until someone subscribes again
    assert jobs.run_due(MONDAY.replace(minute=30)) == []
    assert len(slack.calls_to("chat.postMessage")) == 3  # two posts tried, one DM
    # re-subscribing clears it; the digest (still in its grace window) is then posted
    slack.add_channel("CBERLIN1")
    slack.channels["CBERLIN1"]["is_archived"] = False
    subscribe(f, ids["berlin"], "CBERLIN1", "weekly", MONDAY)
    later = jobs.run_due(MONDAY.replace(hour=15))
    assert [(o.subscription_id, o.status) for o in later] == [(b, "posted")]


def test_a_failing_dm_to_the_subscriber_does_not_stop_the_others(f, slack):
    _org(f)
    slack.add_channel("CNYC0001")
    slack.slack_error("chat.postMessage", "channel_not_found", times=1)  # the first post
    slack.slack_error("chat.postMessage", "cannot_dm_bot", times=1)  # ... and the DM
    out = {
        o.subscription_id: o.status for o in DigestJobs(f, ORG, poster_for(slack)).run_due(MONDAY)
    }
    assert sorted(out.values()) == ["broken", "posted"]


def test_posts_to_one_channel_are_paced(slack):
    poster = poster_for(slack, pace=0.4)
    for i in range(3):
        poster.post("CSAME001", {"text": f"m{i}"}, key=f"k{i}")
    poster.post("COTHER01", {"text": "other"}, key="k3")
    at = [c.at for c in slack.calls_to("chat.postMessage")]
    # times are taken where the fake receives the posts, so allow for scheduling jitter on a
    # busy machine; the gaps stay far apart (0.4 s paced, 0 s for another channel)
    assert at[1] - at[0] >= 0.3 and at[2] - at[1] >= 0.3
    assert at[3] - at[2] < 0.2  # another channel does not wait


def test_transport_errors_are_retried_then_reported_without_the_token(slack, caplog):
    slack.fail("POST", r"/api/auth\.test", drop=True, times=10)
    poster = poster_for(slack, max_attempts=3)
    with caplog.at_level(logging.DEBUG), pytest.raises(SlackUnavailable) as exc:
        poster.call("auth.test", {})
    assert "3 attempts" in str(exc.value)
    assert BOT_TOKEN not in str(exc.value) and BOT_TOKEN not in caplog.text
    assert BOT_TOKEN not in repr(poster)


def test_digests_stay_within_block_kit_limits_at_any_size(f, slack):
    ids = setup_org(f)
    for i in range(300):
        add_item(f, ids["berlin"], f"U{i:07d}", date(2026, 10, 1 + i % 28), text="x" * 400 + "<&>")
    with f() as s:  # half of them completed in September, the monthly digest's month
        for item in s.scalars(select(ActionItem).where(ActionItem.id % 2 == 0)):
            item.completed_on = date(2026, 9, 15)
        s.commit()
    period_week = BERLIN_TEAM
    from bot.metrics.periods import last_complete_month, last_complete_week

    with f() as s:
        for kind, period in (
            ("weekly", last_complete_week(MONDAY, period_week.zone)),
            ("monthly", last_complete_month(MONDAY, period_week.zone)),
        ):
            msg = render_digest(s, BERLIN_TEAM, kind, period, MONDAY)
            assert msg["text"]
            assert len(msg["blocks"]) <= 50
            assert len(json.dumps(msg["blocks"])) < 40_000
            shown = json.dumps(msg["blocks"])
            assert (
                "Completed this month (150)" if kind == "monthly" else "Open action items (150,"
            ) in shown
            for block in msg["blocks"]:
                if block["type"] == "section" and "text" in block:
                    assert len(block["text"]["text"]) <= 3000
                if block["type"] == "header":
                    assert len(block["text"]["text"]) <= 150
    # and Slack takes it
    jobs = DigestJobs(f, ORG, poster_for(slack), options=SchedulerOptions())
    subscribe(f, ids["berlin"], "CBERLIN1", "weekly", BEFORE)
    assert [o.status for o in jobs.run_due(MONDAY)] == ["posted"]


def test_no_attempt_starts_after_the_claims_deadline(slack):
    poster = poster_for(slack)
    with pytest.raises(SlackUnavailable, match="time ran out"):
        poster.post("C1", {"text": "late"}, key="k", deadline=0.0)
    assert slack.calls_to("chat.postMessage") == []


def test_a_failed_reminder_is_sent_at_the_next_pass_and_only_once(f, slack):
    ids = setup_org(f)
    add_item(f, ids["berlin"], "UOWNER01", date(2026, 10, 27))
    jobs = DigestJobs(f, ORG, poster_for(slack, max_attempts=2))
    slack.server_error("chat.postMessage", times=2)
    morning = datetime(2026, 10, 26, 8, 5, tzinfo=UTC)  # 09:05 in Berlin
    assert jobs.send_reminders(morning) == 0
    assert jobs.send_reminders(morning.replace(minute=6)) == 1
    assert jobs.send_reminders(morning.replace(minute=7)) == 0
    dms = [m for m in slack.posts() if m["channel"] == "DOWNER01"]
    assert len(dms) == 1 and "due *tomorrow*" in dms[0]["text"]
    # a second process the same day sends nothing either
    other = DigestJobs(f, ORG, poster_for(slack))
    assert other.send_reminders(morning.replace(hour=12)) == 0
    assert len([m for m in slack.posts() if m["channel"] == "DOWNER01"]) == 1


def test_a_subscription_of_a_team_no_longer_configured_is_left_alone(f, slack, caplog):
    ids = setup_org(f)
    subscribe(f, ids["berlin"], "CBERLIN1", "weekly", BEFORE)
    from bot.settings import Config

    jobs = DigestJobs(f, Config((ORG.teams[1],)), poster_for(slack))
    with caplog.at_level(logging.WARNING, logger="kpibot.scheduler"):
        assert jobs.run_due(MONDAY) == []
        assert jobs.run_due(MONDAY.replace(minute=30)) == []
    warnings = [r for r in caplog.records if "not in kpibot.yml" in r.message]
    assert len(warnings) == 1  # said once, not every pass
    assert slack.calls == []


def test_a_skipped_digest_can_still_be_posted_by_hand(f, slack):
    _, b, _ = _org(f)
    jobs = DigestJobs(f, ORG, poster_for(slack))
    late = datetime(2026, 10, 27, 12, tzinfo=UTC)  # more than 12 h after both
    assert {o.status for o in jobs.run_due(late)} == {"skipped"}
    with f() as s:
        (sub,) = [x for x in subs.active_subscriptions(s) if x.id == b]
    period = jobs.schedule_of(sub, BERLIN_TEAM).period(MONDAY, BERLIN_TEAM.zone)
    assert jobs.post(sub, BERLIN_TEAM, period, late).status == "skipped"  # not by the scheduler
    assert jobs.post(sub, BERLIN_TEAM, period, late, manual=True).status == "posted"
    assert jobs.post(sub, BERLIN_TEAM, period, late, manual=True).status == "done"
    assert slack.keys() == [f"digest:{b}:2026-W43"]


def _reminder_attempts(slack) -> list[int]:
    """How many chat.postMessage requests reached the fake Slack (answered or failed)."""
    return len(slack.requests_to("POST", r"/api/chat\.postMessage"))


def test_a_reminder_that_keeps_failing_backs_off_and_is_given_up_once(f, slack, caplog):
    """Slack refuses every reminder DM: the scheduler's 30 s passes try again 1, 2, 4 ... 60
    minutes apart, give up after 8 attempts with one warning, and a restart goes on from the
    stored attempts instead of starting over."""
    from datetime import timedelta
    from itertools import pairwise

    from bot.store.models import ReminderRun

    ids = setup_org(f)
    add_item(f, ids["berlin"], "UOWNER01", date(2026, 10, 27))
    slack.slack_error("chat.postMessage", "internal_error", times=10_000)
    first = DigestJobs(f, ORG, poster_for(slack, max_attempts=1))
    start = datetime(2026, 10, 26, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
    attempts_at: list[datetime] = []
    jobs = first
    with caplog.at_level(logging.INFO, logger="kpibot.scheduler"):
        for tick in range(12 * 120):  # every 30 s for the 12 h grace window
            now = start + timedelta(seconds=30 * tick)
            if tick == 120:  # the process restarts after an hour (six attempts so far)
                assert len(attempts_at) == 6
                jobs = DigestJobs(f, ORG, poster_for(slack, max_attempts=1))
            before = _reminder_attempts(slack)
            assert jobs.send_reminders(now) == 0
            if _reminder_attempts(slack) > before:
                attempts_at.append(now)
    gaps = [(b - a).total_seconds() / 60 for a, b in pairwise(attempts_at)]
    assert len(attempts_at) == 8
    assert gaps == [1, 2, 4, 8, 16, 32, 60]
    records = [r for r in caplog.records if r.name == "kpibot.scheduler"]
    assert [r for r in records if r.levelno >= logging.ERROR] == []
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "gave up reminding UOWNER01 of berlin" in warnings[0]
    assert "8 attempts" in warnings[0] and "internal_error" in warnings[0]
    with f() as s:
        run = s.scalar(select(ReminderRun))
    assert run is not None and run.status == "skipped" and run.attempts == 8
    assert "gave up after 8 attempts" in (run.detail or "")
    # the next day is a new reminder, tried afresh
    slack.clear_faults()
    assert DigestJobs(f, ORG, poster_for(slack)).send_reminders(start + timedelta(days=1)) == 1


def test_a_reminder_to_a_user_slack_cannot_dm_is_given_up_at_once(f, slack, caplog):
    ids = setup_org(f)
    add_item(f, ids["berlin"], "UOWNER01", date(2026, 10, 27))
    slack.slack_error("chat.postMessage", "cannot_dm_bot", times=100)
    jobs = DigestJobs(f, ORG, poster_for(slack))
    morning = datetime(2026, 10, 26, 8, 0, tzinfo=UTC)
    with caplog.at_level(logging.WARNING, logger="kpibot.scheduler"):
        assert jobs.send_reminders(morning) == 0
        assert jobs.send_reminders(morning.replace(hour=10)) == 0
        assert DigestJobs(f, ORG, poster_for(slack)).send_reminders(morning.replace(hour=11)) == 0
    assert _reminder_attempts(slack) == 1
    warnings = [r.getMessage() for r in caplog.records if r.name == "kpibot.scheduler"]
    assert (
        len(warnings) == 1 and "after 1 attempt: " in warnings[0] and "cannot_dm_bot" in warnings[0]
    )
