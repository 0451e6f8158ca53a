"""A simulated week and a half of scheduler time, in Berlin and New York, across both DST
changes (Berlin 2026-10-25, New York 2026-11-01): exactly the expected digests and
reminders, at the expected local times, each once."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

from bot.scheduler.jobs import DigestJobs, SchedulerOptions
from bot.scheduler.service import SchedulerService
from bot.settings import Settings
from bot.store import subscriptions as subs
from bot.store.session import session_factory
from tests.scheduler_fakes import (
    ORG,
    SchedulerSlack,
    add_item,
    poster_for,
    runs,
    setup_org,
    subscribe,
)


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


class SimClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def test_a_week_posts_exactly_the_expected_digests_and_reminders(engine):
    f = session_factory(engine)
    ids = setup_org(f)
    before = utc(2026, 10, 20, 12)
    berlin_weekly = subscribe(f, ids["berlin"], "CBERLIN1", "weekly", before)
    berlin_monthly = subscribe(f, ids["berlin"], "CBERLIN1", "monthly", before)
    nyc_weekly = subscribe(f, ids["nyc"], "CNYC0001", "weekly", before)
    # a subscription's own time overrides the team's (here: the 2nd at 07:00 New York time)
    nyc_monthly = subscribe(f, ids["nyc"], "CNYC0002", "monthly", before, schedule="2 07:00")
    add_item(f, ids["berlin"], "UOWNERB", date(2026, 10, 28))
    add_item(f, ids["nyc"], "UOWNERN", date(2026, 11, 1))

    with SchedulerSlack() as slack:
        clock = SimClock(utc(2026, 10, 25, 0, 0))
        service = SchedulerService(
            Settings(), f, ORG, poster_for(slack), clock=clock, options=SchedulerOptions()
        )
        service.build(blocking=False)  # jobs registered, not started: the test drives time
        posts: list[tuple[str, str, datetime]] = []
        dms: list[tuple[str, datetime]] = []
        seen = 0
        late_channel = None
        end = utc(2026, 11, 2, 15, 0)
        while clock.now <= end:
            if clock.now == utc(2026, 10, 28, 12, 0):
                # subscribed in Slack mid-week: takes effect without a restart
                late_channel = subscribe(f, ids["berlin"], "CBERLIN2", "weekly", clock.now)
            if clock.now == utc(2026, 10, 30, 12, 0):
                # a restart: a new process (new holder) after the old one stopped cleanly
                service.stop()
                service = SchedulerService(Settings(), f, ORG, poster_for(slack), clock=clock)
                service.build(blocking=False)
            assert service.tick()
            calls = slack.calls_to("chat.postMessage")
            for c in calls[seen:]:
                meta = c.args.get("metadata") or {}
                key = str((meta.get("event_payload") or {}).get("key"))
                if key.startswith("digest:"):
                    posts.append((c.args["channel"], key, clock.now))
                else:
                    dms.append((c.args["channel"], clock.now))
            seen = len(calls)
            clock.now += timedelta(hours=1)  # every due time here is on the hour

        def k(sub_id: int, period: str) -> str:
            return f"digest:{sub_id}:{period}"

        assert late_channel is not None
        assert sorted(posts, key=lambda p: (p[2], p[1])) == sorted(
            [
                # Monday 09:00 in Berlin is 08:00 UTC once summer time ended on the 25th
                ("CBERLIN1", k(berlin_weekly, "2026-W43"), utc(2026, 10, 26, 8)),
                # ... and 09:00 in New York still 13:00 UTC (EDT until 1 November)
                ("CNYC0001", k(nyc_weekly, "2026-W43"), utc(2026, 10, 26, 13)),
                ("CBERLIN1", k(berlin_monthly, "2026-10"), utc(2026, 11, 1, 8)),
                ("CBERLIN1", k(berlin_weekly, "2026-W44"), utc(2026, 11, 2, 8)),
                ("CBERLIN2", k(late_channel, "2026-W44"), utc(2026, 11, 2, 8)),
                ("CNYC0002", k(nyc_monthly, "2026-10"), utc(2026, 11, 2, 12)),
                # New York on EST: 09:00 is 14:00 UTC
                ("CNYC0001", k(nyc_weekly, "2026-W44"), utc(2026, 11, 2, 14)),
            ],
            key=lambda p: (p[2], p[1]),
        )
        # the fake Slack's own record: each digest exactly once, nothing else in channels
        assert len(slack.keys()) == len(set(slack.keys())) == 7 + len(dms)
        for c in slack.calls_to("chat.postMessage"):
            assert c.args.get("text"), "every message has a plain-text fallback"
            assert len(c.blocks) <= 50
        # reminders at 09:00 team time: due tomorrow, due today, then overdue, once a day
        assert sorted(dms, key=lambda d: (d[1], d[0])) == [
            ("DOWNERB", utc(2026, 10, 27, 8)),  # due tomorrow
            ("DOWNERB", utc(2026, 10, 28, 8)),  # due today
            ("DOWNERB", utc(2026, 10, 29, 8)),  # overdue, every day
            ("DOWNERB", utc(2026, 10, 30, 8)),
            ("DOWNERB", utc(2026, 10, 31, 8)),
            ("DOWNERN", utc(2026, 10, 31, 13)),  # 09:00 EDT
            ("DOWNERB", utc(2026, 11, 1, 8)),
            ("DOWNERN", utc(2026, 11, 1, 14)),  # 09:00 EST
            ("DOWNERB", utc(2026, 11, 2, 8)),
            ("DOWNERN", utc(2026, 11, 2, 14)),
        ]
        texts = [
            c.args["text"]
            for c in slack.calls_to("chat.postMessage")
            if c.args["channel"] == "DOWNERB"
        ]
        assert (
            "due *tomorrow*" in texts[0] and "due *today*" in texts[1] and "*overdue*" in texts[2]
        )
        assert {r.status for r in runs(f)} == {"posted"}
        # the per-subscription cron jobs follow the database
        job_ids = {j.id for j in service.scheduler.get_jobs()}  # type: ignore[union-attr]
        assert {
            f"digest:{i}"
            for i in (berlin_weekly, berlin_monthly, nyc_weekly, nyc_monthly, late_channel)
        } <= job_ids


def test_subscribe_and_unsubscribe_change_the_jobs_without_a_restart(engine):
    f = session_factory(engine)
    ids = setup_org(f)
    clock = SimClock(utc(2026, 10, 27, 10))
    with SchedulerSlack() as slack:
        service = SchedulerService(Settings(), f, ORG, poster_for(slack), clock=clock)
        sched = service.build(blocking=False)
        assert {j.id for j in sched.get_jobs()} == {
            "tick",
            "sync",
            "reminders:berlin",
            "reminders:nyc",
        }
        sid = subscribe(f, ids["nyc"], "CNYC0001", "weekly", clock.now, schedule="fri 16:30")
        assert service.tick()
        job = sched.get_job(f"digest:{sid}")
        assert job is not None
        nxt = job.trigger.get_next_fire_time(None, clock.now)
        assert nxt.astimezone(UTC) == utc(2026, 10, 30, 20, 30)  # Friday 16:30 EDT
        with f() as s:
            subs.unsubscribe(s, platform="slack", channel_id="CNYC0001")
            s.commit()
        assert service.tick()
        assert sched.get_job(f"digest:{sid}") is None
        service.stop()


def test_a_digest_missed_while_down_is_posted_within_grace_and_skipped_after(engine, caplog):
    f = session_factory(engine)
    ids = setup_org(f)
    before = utc(2026, 10, 20, 12)
    b = subscribe(f, ids["berlin"], "CBERLIN1", "weekly", before)
    n = subscribe(f, ids["nyc"], "CNYC0001", "weekly", before)
    with SchedulerSlack() as slack:
        jobs = DigestJobs(f, ORG, poster_for(slack), options=SchedulerOptions())
        # back at 20:00 UTC on Monday 26th: Berlin's (08:00 UTC) is 12 h late: still posted;
        # New York's (13:00 UTC) is 7 h late: posted
        out = jobs.run_due(utc(2026, 10, 26, 20, 0))
        assert {(o.subscription_id, o.status) for o in out} == {(b, "posted"), (n, "posted")}
        # the next week nothing ran until Tuesday: both are beyond the window
        with caplog.at_level(logging.WARNING, logger="kpibot.scheduler"):
            out = jobs.run_due(utc(2026, 11, 3, 9, 0))
        assert {(o.subscription_id, o.status) for o in out} == {(b, "skipped"), (n, "skipped")}
        assert any(
            "skipped the weekly digest of berlin for 2026-W44" in r.message for r in caplog.records
        )
        assert len(slack.calls_to("chat.postMessage")) == 2
        # and again later: nothing more happens
        assert jobs.run_due(utc(2026, 11, 3, 10, 0)) == []
        assert sorted(r.status for r in runs(f)) == ["posted", "posted", "skipped", "skipped"]


def test_a_pass_stops_when_another_scheduler_takes_the_lease_and_it_finishes(engine):
    f = session_factory(engine)
    ids = setup_org(f)
    before = utc(2026, 10, 20, 12)
    for ch in ("CBERLIN1", "CBERLIN2", "CBERLIN3"):
        subscribe(f, ids["berlin"], ch, "weekly", before)
    now = utc(2026, 10, 26, 9, 0)
    with SchedulerSlack() as slack:
        a = SchedulerService(Settings(), f, ORG, poster_for(slack), clock=lambda: now)
        b = SchedulerService(Settings(), f, ORG, poster_for(slack), clock=lambda: now)
        assert a.lease.acquire(now)
        renewals = iter([True, False])
        a.jobs.keep_alive = lambda: next(renewals)  # the lease is lost after the second post
        assert [o.status for o in a.jobs.run_due(now)] == ["posted", "posted"]
        a.lease.release(now)
        assert b.tick()
        assert len(slack.keys()) == 3 == len(set(slack.keys()))
        assert {r.claimed_by for r in runs(f)} == {a.holder, b.holder}
