"""When digests are due: weekly and monthly schedules in team time zones, across DST."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from bot.scheduler.schedule import (
    BadSchedule,
    DailyTime,
    DigestSchedule,
    default_schedule,
    parse_schedule,
    subscription_schedule,
)
from bot.settings import DigestTimes

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def test_weekly_monday_nine_follows_each_zone_across_dst():
    s = DigestSchedule("weekly", 0, 9, 0)
    # Berlin leaves summer time on 2026-10-25, New York on 2026-11-01
    assert s.latest_fire(utc(2026, 10, 20, 12), BERLIN) == utc(2026, 10, 19, 7)  # CEST
    assert s.latest_fire(utc(2026, 10, 27, 12), BERLIN) == utc(2026, 10, 26, 8)  # CET
    assert s.latest_fire(utc(2026, 10, 27, 12), NEW_YORK) == utc(2026, 10, 26, 13)  # EDT
    assert s.latest_fire(utc(2026, 11, 3, 12), NEW_YORK) == utc(2026, 11, 2, 14)  # EST
    # exactly at the moment counts; one second before, the previous week's
    assert s.latest_fire(utc(2026, 10, 26, 8), BERLIN) == utc(2026, 10, 26, 8)
    assert s.latest_fire(utc(2026, 10, 26, 7, 59, 59), BERLIN) == utc(2026, 10, 19, 7)


def test_periods_are_the_last_complete_week_and_month():
    w = DigestSchedule("weekly", 0, 9, 0)
    m = DigestSchedule("monthly", 1, 9, 0)
    assert w.period(utc(2026, 10, 26, 8), BERLIN).key == "2026-W43"
    assert m.period(utc(2026, 11, 1, 14), NEW_YORK).key == "2026-10"
    assert m.period(utc(2027, 1, 1, 8), BERLIN).key == "2026-12"


def test_monthly_wraps_years_and_respects_the_day():
    m = DigestSchedule("monthly", 3, 7, 30)
    assert m.latest_fire(utc(2027, 1, 2, 12), BERLIN) == utc(2026, 12, 3, 6, 30)
    assert m.latest_fire(utc(2027, 1, 3, 6, 30), BERLIN) == utc(2027, 1, 3, 6, 30)
    assert m.next_fire(utc(2026, 12, 31), NEW_YORK) == utc(2027, 1, 3, 12, 30)


def test_next_fire_steps_one_occurrence_at_a_time():
    s = DigestSchedule("weekly", 4, 17, 45)
    t = utc(2026, 10, 20)
    seen = []
    for _ in range(6):
        t = s.next_fire(t, NEW_YORK)
        seen.append(t)
    assert all(
        b - a in (timedelta(days=7), timedelta(days=7, hours=1))
        for a, b in itertools.pairwise(seen)
    )
    assert [x.astimezone(NEW_YORK).strftime("%a %H:%M") for x in seen] == ["Fri 17:45"] * 6


def test_a_skipped_local_time_runs_with_the_earlier_offset():
    # 02:30 does not exist in Berlin on 2026-03-29: it runs at 03:30 summer time (01:30 UTC)
    s = DigestSchedule("weekly", 6, 2, 30)
    assert s.latest_fire(utc(2026, 3, 29, 5), BERLIN) == utc(2026, 3, 29, 1, 30)
    # a repeated local time (02:30 on 2026-10-25) runs at its first occurrence
    assert s.latest_fire(utc(2026, 10, 25, 5), BERLIN) == utc(2026, 10, 25, 0, 30)


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        ("weekly", "mon 09:00", DigestSchedule("weekly", 0, 9, 0)),
        ("weekly", "Friday 16:30", DigestSchedule("weekly", 4, 16, 30)),
        ("monthly", "1 09:00", DigestSchedule("monthly", 1, 9, 0)),
        ("monthly", "28 23:59", DigestSchedule("monthly", 28, 23, 59)),
    ],
)
def test_parse_schedule(kind, text, expected):
    assert parse_schedule(kind, text) == expected
    assert parse_schedule(kind, expected.text) == expected


@pytest.mark.parametrize(
    ("kind", "text", "hint"),
    [
        ("weekly", "monday", "mon 09:00"),
        ("weekly", "xyz 09:00", "mon 09:00"),
        ("weekly", "mon 25:00", "mon 09:00"),
        ("monthly", "31 09:00", "day 1-28"),
        ("monthly", "mon 09:00", "day 1-28"),
        ("daily", "09:00", "weekly or monthly"),
    ],
)
def test_bad_schedules_say_what_to_write(kind, text, hint):
    with pytest.raises(BadSchedule, match=hint):
        parse_schedule(kind, text)


def test_subscription_time_overrides_the_team_default():
    times = DigestTimes(weekly_day=2, weekly_time=(8, 15), monthly_day=5, monthly_time=(10, 0))
    assert default_schedule("weekly", times) == DigestSchedule("weekly", 2, 8, 15)
    assert subscription_schedule("monthly", None, times) == DigestSchedule("monthly", 5, 10, 0)
    assert subscription_schedule("weekly", "fri 16:00", times) == DigestSchedule("weekly", 4, 16, 0)
    assert default_schedule("weekly", DigestTimes()) == DigestSchedule("weekly", 0, 9, 0)
    assert default_schedule("monthly", DigestTimes()) == DigestSchedule("monthly", 1, 9, 0)


@pytest.mark.parametrize("zone", [BERLIN, NEW_YORK, ZoneInfo("Asia/Kathmandu")])
@pytest.mark.parametrize(
    "sched", [DigestSchedule("weekly", 0, 9, 0), DigestSchedule("monthly", 1, 9, 0)]
)
def test_apscheduler_cron_fires_when_the_schedule_says(zone, sched):
    trigger = CronTrigger(**sched.cron_fields(), timezone=zone)
    t = utc(2026, 9, 15)
    for _ in range(8):
        ours = sched.next_fire(t, zone)
        theirs = trigger.get_next_fire_time(None, t + timedelta(seconds=1))
        assert theirs is not None
        assert theirs.astimezone(UTC) == ours
        t = ours


def test_daily_reminder_time():
    d = DailyTime(9, 0)
    assert d.latest_fire(utc(2026, 11, 2, 7), BERLIN) == utc(2026, 11, 1, 8)
    assert d.latest_fire(utc(2026, 11, 2, 8), BERLIN) == utc(2026, 11, 2, 8)
