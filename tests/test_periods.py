"""Periods in the team's zone (METRICS.md, Time): half-open, ISO weeks, months, DST."""

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from bot.errors import BadPeriod
from bot.metrics.periods import (
    last_complete_month,
    last_complete_week,
    month_of,
    parse_period,
    week_of,
)
from tests.factories import T, now_utc

UTC = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
NOW = now_utc("2026-11-20T12:00:00")


def test_iso_week_utc():
    p = parse_period("2026-W46", UTC, NOW)
    assert p.kind == "week"
    assert p.label == "2026-W46"
    assert p.start == T("2026-11-09 00:00")  # Monday
    assert p.end == T("2026-11-16 00:00")
    assert p.days == 7.0


def test_week_containing_dst_end_in_berlin():
    # 2026-10-25 (Sunday): 03:00 CEST -> 02:00 CET. Week W43 = Mon 19 Oct .. Mon 26 Oct local.
    p = week_of(date(2026, 10, 25), BERLIN)
    assert p.label == "2026-W43"
    assert p.start == T("2026-10-18 22:00")  # Mon 00:00 CEST = UTC+2
    assert p.end == T("2026-10-25 23:00")  # Mon 00:00 CET = UTC+1
    assert (p.end - p.start).total_seconds() == 169 * 3600  # one 25-hour day
    assert p.days == 7.0  # calendar days in the zone
    assert parse_period("2026-w43", BERLIN, NOW) == p  # case-insensitive


def test_week_is_half_open_at_local_midnight():
    p = week_of(date(2026, 10, 25), BERLIN)
    assert not p.contains(T("2026-10-18 21:59:59"))  # Sun 23:59:59 CEST, previous week
    assert p.contains(T("2026-10-18 22:00:00"))  # Mon 00:00 CEST
    assert p.contains(T("2026-10-25 22:59:59"))  # Sun 23:59:59 CET
    assert not p.contains(T("2026-10-25 23:00:00"))  # Mon 00:00 CET, next week


def test_month_across_dst_in_berlin():
    p = parse_period("2026-10", BERLIN, NOW)
    assert p.kind == "month"
    assert p.label == "2026-10"
    assert p.start == T("2026-09-30 22:00")  # 1 Oct 00:00 CEST
    assert p.end == T("2026-10-31 23:00")  # 1 Nov 00:00 CET
    assert p.days == 31.0
    assert p.contains(T("2026-10-31 22:59:59"))
    assert not p.contains(T("2026-10-31 23:00:00"))
    assert not p.contains(T("2026-09-30 21:59:59"))


def test_month_across_spring_dst_in_berlin():
    # 2026-03-29: 02:00 CET -> 03:00 CEST
    p = month_of(2026, 3, BERLIN)
    assert p.start == T("2026-02-28 23:00")
    assert p.end == T("2026-03-31 22:00")
    assert p.days == 31.0
    assert (p.end - p.start).total_seconds() == (31 * 24 - 1) * 3600


def test_quarter_and_december():
    q = parse_period("2026-Q4", UTC, NOW).whole()  # NOW is inside it: see the next tests
    assert (q.start, q.end, q.label, q.days) == (
        T("2026-10-01 00:00"),
        T("2027-01-01 00:00"),
        "2026-Q4",
        92.0,
    )
    d = parse_period("2026-12", UTC, NOW)
    assert (d.start, d.end) == (T("2026-12-01 00:00"), T("2027-01-01 00:00"))


def test_previous_periods():
    w = parse_period("2026-W01", UTC, NOW)
    assert w.previous().label == "2025-W52"
    assert w.previous(2).label == "2025-W51"
    m = parse_period("2026-01", BERLIN, NOW)
    assert m.previous().label == "2025-12"
    assert m.previous().days == 31.0
    assert parse_period("2026-03", UTC, NOW).previous().days == 28.0  # February 2026
    q = parse_period("2026-Q1", UTC, NOW)
    assert q.previous().label == "2025-Q4"


def test_week_53():
    p = parse_period("2026-W53", UTC, NOW)  # 2026 starts on a Thursday: 53 ISO weeks
    assert p.start == T("2026-12-28 00:00")
    with pytest.raises(BadPeriod):
        parse_period("2025-W53", UTC, NOW)


def test_named_periods_use_the_local_date():
    # Sunday 25 Oct 2026 23:30 UTC is Monday 26 Oct 00:30 in Berlin (CET)
    now = now_utc("2026-10-25T23:30:00")
    assert parse_period("this-week", BERLIN, now).label == "2026-W44"
    assert parse_period("last-week", BERLIN, now).label == "2026-W43"
    assert parse_period("this-week", UTC, now).label == "2026-W43"
    assert parse_period("last-week", UTC, now).label == "2026-W42"
    # Saturday 31 Oct 23:30 UTC is Sunday 1 Nov 00:30 in Berlin
    now = now_utc("2026-10-31T23:30:00")
    assert parse_period("this-month", BERLIN, now).label == "2026-11"
    assert parse_period("last-month", BERLIN, now).label == "2026-10"
    assert parse_period("last-month", UTC, now).label == "2026-09"
    # Sunday 1 Nov is still in W44 (26 Oct - 1 Nov), so the last complete week is W43
    assert last_complete_week(now, BERLIN).label == "2026-W43"
    assert last_complete_month(now, BERLIN).label == "2026-10"
    assert parse_period("this-quarter", BERLIN, now).label == "2026-Q4"
    assert parse_period("last-quarter", BERLIN, now).label == "2026-Q3"


def test_rolling_period():
    now = now_utc("2026-11-20T12:00:00")
    p = parse_period("28d", UTC, now)
    assert p.kind == "rolling"
    assert p.start == T("2026-10-23 12:00")
    assert p.end == T("2026-11-20 12:00")
    assert p.days == 28.0
    assert p.label == "28d"
    prev = p.previous()
    assert (prev.start, prev.end) == (T("2026-09-25 12:00"), T("2026-10-23 12:00"))


@pytest.mark.parametrize("word", ["2026-13", "0d", "400d", "next-week", "2026-Q5", "w46", ""])
def test_bad_periods(word):
    with pytest.raises(BadPeriod):
        parse_period(word, UTC, NOW)


# --- periods in progress (METRICS.md, Time: "a period still in progress ends now") ----------

DEC3 = now_utc("2026-12-03T11:00:00")  # Thu 3 Dec 2026, 12:00 in Berlin (CET)


def test_this_month_in_progress_ends_now_in_the_team_zone():
    p = parse_period("this-month", BERLIN, DEC3)
    assert p.in_progress
    assert p.label == "2026-12"
    assert p.start == T("2026-11-30 23:00")  # 1 Dec 00:00 CET
    assert p.end == T("2026-12-03 11:00")  # now
    assert p.days == 2.5  # Dec 1 00:00 -> Dec 3 12:00 local
    assert p.describe() == "December 2026 so far (Dec 1 – Dec 3)"
    assert p.contains(T("2026-12-03 10:59:59")) and not p.contains(T("2026-12-03 11:00"))
    assert p.whole() == month_of(2026, 12, BERLIN)
    assert p.whole().days == 31.0
    # a named period that contains now is the same period in progress
    assert parse_period("2026-12", BERLIN, DEC3) == p
    # sparklines: the previous periods are whole
    assert p.previous() == month_of(2026, 11, BERLIN)
    assert not p.previous().in_progress


def test_trend_base_is_the_same_elapsed_span_of_the_previous_period():
    p = parse_period("this-month", BERLIN, DEC3)
    base = p.comparison()
    assert base.label == "2026-11"
    assert base.start == T("2026-10-31 23:00")  # 1 Nov 00:00 CET
    assert base.end == T("2026-11-03 11:00")  # 3 Nov 12:00 CET
    assert base.days == 2.5
    assert base.in_progress  # cut the same way, so rates treat it alike
    # a whole period compares with the whole previous one
    assert month_of(2026, 11, BERLIN).comparison() == month_of(2026, 10, BERLIN)


def test_trend_base_is_at_most_the_whole_previous_period():
    # 31 Mar 12:00: 30.5 days into March; February 2026 has 28
    p = parse_period("this-month", UTC, now_utc("2026-03-31T12:00:00"))
    assert p.days == 30.5
    assert p.comparison() == month_of(2026, 2, UTC)


def test_this_week_and_quarter_in_progress():
    w = parse_period("this-week", BERLIN, DEC3)
    assert (w.label, w.start, w.end, w.days) == (
        "2026-W49",
        T("2026-11-29 23:00"),  # Mon 30 Nov 00:00 CET
        T("2026-12-03 11:00"),
        3.5,
    )
    assert w.describe() == "week 2026-W49 so far (Nov 30 – Dec 3)"
    assert parse_period("2026-W49", BERLIN, DEC3) == w
    base = w.comparison()
    assert (base.label, base.start, base.end) == (
        "2026-W48",
        T("2026-11-22 23:00"),
        T("2026-11-26 11:00"),  # Thu 26 Nov 12:00 CET
    )
    q = parse_period("this-quarter", BERLIN, DEC3)
    assert (q.label, q.end, q.in_progress) == ("2026-Q4", T("2026-12-03 11:00"), True)
    assert q.describe() == "2026-Q4 so far (Oct 1 – Dec 3)"
    # 63.5 days into Q4 (Oct 1 00:00 CEST .. Dec 3 12:00 CET, wall clock)
    assert q.days == 63.5
    base = q.comparison()
    assert (base.label, base.start, base.end) == (
        "2026-Q3",
        T("2026-06-30 22:00"),  # 1 Jul 00:00 CEST
        T("2026-09-02 10:00"),  # 2 Sep 12:00 CEST: 63.5 days later on the wall clock
    )


def test_complete_rolling_and_future_periods_are_not_in_progress():
    for word in ("last-week", "last-month", "last-quarter", "2026-11", "2026-W48", "28d"):
        p = parse_period(word, BERLIN, DEC3)
        assert not p.in_progress, word
        assert "so far" not in p.describe()
    assert parse_period("28d", BERLIN, DEC3).end == T("2026-12-03 11:00")
    # a period that has not started yet is not cut
    assert parse_period("2027-01", BERLIN, DEC3) == month_of(2027, 1, BERLIN)
    # the last complete week/month stay whole
    assert last_complete_month(DEC3, BERLIN) == month_of(2026, 11, BERLIN)
