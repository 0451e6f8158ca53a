"""Business-hours arithmetic (METRICS.md, Time) against hand-computed cases.

Times are given in the team's local wall clock and converted to naive UTC the way the store
keeps them. Berlin: CET = UTC+1, CEST = UTC+2 (2026: summer time from Sun 29 Mar 02:00 to Sun
25 Oct 03:00). New York: EST = UTC-5, EDT = UTC-4 (2026: from Sun 8 Mar to Sun 1 Nov).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.metrics.business import BusinessClock, HolidayCalendar
from bot.settings import WorkingHours

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
H = 3600.0
MON_FRI = frozenset(range(5))


def at(zone: ZoneInfo, text: str) -> datetime:
    """Local wall-clock ``YYYY-MM-DD HH:MM`` in ``zone`` -> naive UTC."""
    local = datetime.fromisoformat(text).replace(tzinfo=zone)
    return local.astimezone(UTC).replace(tzinfo=None)


def clock(zone: ZoneInfo = BERLIN, **kw) -> BusinessClock:
    hours = WorkingHours(**kw)
    return BusinessClock.of(hours, zone)


def span(c: BusinessClock, zone: ZoneInfo, a: str, b: str) -> float:
    return c.seconds(at(zone, a), at(zone, b))


def test_within_one_working_day():
    c = clock()
    assert span(c, BERLIN, "2026-11-18 10:00", "2026-11-18 12:30") == 2.5 * H
    # clipped at both ends to 09:00-17:00
    assert span(c, BERLIN, "2026-11-18 07:00", "2026-11-18 19:00") == 8 * H


def test_across_a_weekend():
    c = clock()
    # Fri 16:00-17:00 (1 h) + Mon 09:00-10:00 (1 h); the weekend counts nothing
    assert span(c, BERLIN, "2026-11-20 16:00", "2026-11-23 10:00") == 2 * H
    # two whole weeks: 10 working days of 8 h
    assert span(c, BERLIN, "2026-11-02 09:00", "2026-11-16 09:00") == 80 * H


def test_spans_outside_working_time_are_zero():
    c = clock()
    assert span(c, BERLIN, "2026-11-21 10:00", "2026-11-22 18:00") == 0  # Sat -> Sun
    assert span(c, BERLIN, "2026-11-18 18:00", "2026-11-19 08:00") == 0  # overnight
    assert span(c, BERLIN, "2026-11-20 17:00", "2026-11-23 09:00") == 0  # Fri end -> Mon start


def test_zero_length_and_reversed_spans_are_zero():
    c = clock()
    t = at(BERLIN, "2026-11-18 10:00")
    assert c.seconds(t, t) == 0
    assert c.seconds(t, t - timedelta(hours=3)) == 0


def test_listed_holidays_and_a_country_calendar():
    # Thu 24 Dec 12:00 -> Mon 28 Dec 12:00. Berlin's calendar has Fri 25 Dec (and Sat 26)
    # but not 24 Dec: Thu 5 h + Mon 3 h
    de_be = clock(calendars=("DE-BE",))
    assert span(de_be, BERLIN, "2026-12-24 12:00", "2026-12-28 12:00") == 8 * H
    # with 24 Dec listed too, only Monday's 3 h are left
    both = clock(calendars=("DE-BE",), holidays=(date(2026, 12, 24),))
    assert span(both, BERLIN, "2026-12-24 12:00", "2026-12-28 12:00") == 3 * H
    # without holidays: Thu 5 h + Fri 8 h + Mon 3 h
    assert span(clock(), BERLIN, "2026-12-24 12:00", "2026-12-28 12:00") == 16 * H
    # a span entirely inside a holiday is 0
    assert span(de_be, BERLIN, "2026-12-25 10:00", "2026-12-25 16:00") == 0


def test_holiday_calendars_over_several_years():
    # Berlin's 1 Jan 2026 (Thu) and 1 Jan 2027 (Fri) are holidays; Women's Day (8 Mar) falls
    # on a Sunday in 2026 and a Monday in 2027
    c = clock(calendars=("DE-BE",))
    plain = clock()
    a, b = at(BERLIN, "2025-12-31 09:00"), at(BERLIN, "2027-03-09 09:00")
    diff = plain.seconds(a, b) - c.seconds(a, b)
    off = {
        d
        for year in (2025, 2026, 2027)
        for d in HolidayCalendar("DE", "BE").dates([year])
        if date(2025, 12, 31) <= d < date(2027, 3, 9) and d.weekday() < 5
    }
    assert date(2027, 3, 8) in off and date(2026, 1, 1) in off
    assert diff == len(off) * 8 * H


def test_new_york_thanksgiving():
    # Wed 25 Nov 15:00 -> Fri 27 Nov 11:00 with US-NY: Wed 2 h + Thanksgiving 0 + Fri 2 h
    c = clock(NEW_YORK, calendars=("US-NY",))
    assert span(c, NEW_YORK, "2026-11-25 15:00", "2026-11-27 11:00") == 4 * H
    assert span(clock(NEW_YORK), NEW_YORK, "2026-11-25 15:00", "2026-11-27 11:00") == 12 * H


@pytest.mark.parametrize(
    ("zone", "a", "b", "expected", "calendar_hours"),
    [
        # Berlin, spring: Fri 27 Mar 09:00 CET -> Mon 30 Mar 09:00 CEST = all of Friday;
        # on the calendar 71 h (the night of the change has 23 h)
        (BERLIN, "2026-03-27 09:00", "2026-03-30 09:00", 8 * H, 71),
        # Berlin, autumn: Fri 23 Oct 16:00 CEST -> Mon 26 Oct 10:00 CET = 1 h + 1 h; 67 h
        (BERLIN, "2026-10-23 16:00", "2026-10-26 10:00", 2 * H, 67),
        # New York, spring: Fri 6 Mar 16:00 EST -> Mon 9 Mar 10:00 EDT = 2 h; 65 h
        (NEW_YORK, "2026-03-06 16:00", "2026-03-09 10:00", 2 * H, 65),
        # New York, autumn: Fri 30 Oct 16:00 EDT -> Mon 2 Nov 10:00 EST = 2 h; 67 h
        (NEW_YORK, "2026-10-30 16:00", "2026-11-02 10:00", 2 * H, 67),
    ],
)
def test_dst_changes(zone, a, b, expected, calendar_hours):
    assert (at(zone, b) - at(zone, a)).total_seconds() == calendar_hours * H
    assert span(clock(zone), zone, a, b) == expected


def test_a_dst_change_day_has_its_full_working_hours():
    # working every day round the clock: Sun 29 Mar 2026 in Berlin lasts 23 h, but its
    # working day (00:00-24:00, wall clock) counts 24 h; Sun 25 Oct lasts 25 h, counts 24 h
    c = clock(days=tuple(range(7)), start=0, end=86400)
    assert span(c, BERLIN, "2026-03-29 00:00", "2026-03-30 00:00") == 24 * H
    assert span(c, BERLIN, "2026-10-25 00:00", "2026-10-26 00:00") == 24 * H
    ny = clock(NEW_YORK, days=tuple(range(7)), start=0, end=86400)
    assert span(ny, NEW_YORK, "2026-03-08 00:00", "2026-03-09 00:00") == 24 * H


def test_other_working_weeks():
    # Sun-Thu, 08:00-16:00: Thu 15:00 -> Sun 09:00 = 1 h + 1 h (Fri and Sat off)
    c = clock(days=(6, 0, 1, 2, 3), start=8 * 3600, end=16 * 3600)
    assert span(c, BERLIN, "2026-11-19 15:00", "2026-11-22 09:00") == 2 * H


def _brute_force(c: BusinessClock, a: datetime, b: datetime, off: set[date]) -> float:
    """Day by day: the overlap of [a, b) (local wall clock) with each working interval."""
    if b <= a:
        return 0.0
    la, lb = c.local(a), c.local(b)
    total = 0.0
    d = la.date()
    while d <= lb.date():
        if d.weekday() in c.days and d not in off:
            start = datetime.combine(d, datetime.min.time()) + timedelta(seconds=c.start)
            end = datetime.combine(d, datetime.min.time()) + timedelta(seconds=c.end)
            lo, hi = max(la, start), min(lb, end)
            if hi > lo:
                total += (hi - lo).total_seconds()
        d += timedelta(days=1)
    return total


HOLIDAYS = (date(2026, 12, 24), date(2026, 12, 25), date(2027, 1, 1), date(2026, 5, 1))


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)),
    st.integers(min_value=0, max_value=120 * 86400),
    st.sampled_from([BERLIN, NEW_YORK, ZoneInfo("Asia/Tokyo")]),
)
def test_agrees_with_a_day_by_day_count(a, length, zone):
    c = BusinessClock(zone, MON_FRI, 9 * 3600, 17 * 3600, frozenset(HOLIDAYS))
    b = a + timedelta(seconds=length)
    assert c.seconds(a, b) == pytest.approx(_brute_force(c, a, b, set(HOLIDAYS)))


def test_working_hours_must_be_in_order():
    with pytest.raises(ValueError):
        BusinessClock(BERLIN, MON_FRI, 17 * 3600, 9 * 3600)
