"""Business hours (METRICS.md, Time): the working seconds of a span in a team's zone.

The working time of ``[a, b)`` is the length of its overlap with the team's working intervals:
each working day that is not a holiday, from the start to the end of the working hours, in the
team's zone and on the wall clock (a DST change day still has its full working hours). The
answer is ``W(b) - W(a)``, where the mark ``W(t)`` counts the working seconds from a fixed
origin to ``t``: whole weeks in O(1), the days of the last partial week from a table, holidays
by a binary search in their sorted day numbers (each day's count is kept once computed), then
the part of ``t``'s own day. So a span costs the same whether it is a minute or a year long,
and a PR's timeline costs one mark per point.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from bot.settings import WorkingHours

_EPOCH = datetime(1970, 1, 1)
_EPOCH_DATE = _EPOCH.date()
_EPOCH_ORDINAL = _EPOCH_DATE.toordinal()
_BUCKET = 900  # zone offsets change on quarter hours of UTC: one look-up per 15 minutes


@dataclass(frozen=True)
class HolidayCalendar:
    """A country's public holidays (``DE``), optionally of one subdivision (``DE-BE``), from
    the ``holidays`` package."""

    country: str
    subdivision: str | None = None

    @classmethod
    def parse(cls, code: str) -> HolidayCalendar:
        country, _, sub = code.partition("-")
        return cls(country.upper(), sub.upper() or None)

    def dates(self, years: Iterable[int]) -> set[date]:
        import holidays  # imported when a team's calendar is first needed

        found = holidays.country_holidays(self.country, subdiv=self.subdivision, years=years)
        return set(found)


@dataclass
class BusinessClock:
    """Working seconds between two naive UTC times, for one team's working hours.

    ``days``: working weekdays (0 = Monday); ``start``/``end``: seconds after local midnight
    (``end`` up to 86400); ``holidays``: dates off work; ``calendars``: country calendars whose
    holidays are off work too (read year by year, as spans reach them).
    """

    zone: ZoneInfo
    days: frozenset[int]
    start: int
    end: int
    holidays: frozenset[date] = frozenset()
    calendars: tuple[HolidayCalendar, ...] = ()
    _prefix: list[int] = field(init=False, repr=False)
    _off: list[int] = field(init=False, repr=False)  # sorted ordinals of holidays on work days
    _years: tuple[int, int] | None = field(init=False, repr=False, default=None)
    _days_covered: tuple[int, int] = field(init=False, repr=False, default=(0, -1))
    _offsets: dict[int, int] = field(init=False, repr=False, default_factory=dict)
    _day_cache: dict[int, tuple[int, bool]] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end <= 86400:
            raise ValueError("working hours must start before they end, within one day")
        # _prefix[r]: working weekdays among the first r days of a week (Monday first)
        self._prefix = [sum(1 for d in range(r) if d in self.days) for r in range(8)]
        self._set_off(set(self.holidays))

    @classmethod
    def of(cls, hours: WorkingHours, zone: ZoneInfo) -> BusinessClock:
        """The clock of a team's ``working_hours`` setting in its zone."""
        return cls(
            zone,
            frozenset(hours.days),
            hours.start,
            hours.end,
            frozenset(hours.holidays),
            tuple(HolidayCalendar.parse(c) for c in hours.calendars),
        )

    @property
    def day_seconds(self) -> int:
        return self.end - self.start

    def _set_off(self, dates: set[date]) -> None:
        self._off = sorted(d.toordinal() for d in dates if d.weekday() in self.days)
        self._day_cache = {}

    def _cover(self, lo: int, hi: int) -> None:
        """Make sure the country calendars' holidays of the days ``lo``..``hi`` (day numbers
        since 1970-01-01) are in: their whole years, and every year between those already
        read, so that one origin serves every span."""
        if not self.calendars or (self._days_covered[0] <= lo and hi <= self._days_covered[1]):
            return
        first = (_EPOCH_DATE + timedelta(days=lo)).year
        last = (_EPOCH_DATE + timedelta(days=hi)).year
        if self._years is not None:
            first, last = min(first, self._years[0]), max(last, self._years[1])
        dates = set(self.holidays)
        for cal in self.calendars:
            dates |= cal.dates(range(first, last + 1))
        self._set_off(dates)
        self._years = (first, last)
        self._days_covered = (
            date(first, 1, 1).toordinal() - _EPOCH_ORDINAL,
            date(last, 12, 31).toordinal() - _EPOCH_ORDINAL,
        )

    def _local_seconds(self, t: datetime) -> float:
        """A naive UTC time as wall-clock seconds since 1970-01-01 00:00 in the team's zone."""
        secs = (t - _EPOCH).total_seconds()
        key = int(secs // _BUCKET)
        offset = self._offsets.get(key)
        if offset is None:
            off = t.replace(tzinfo=UTC).astimezone(self.zone).utcoffset()
            offset = int(off.total_seconds()) if off is not None else 0
            self._offsets[key] = offset
        return secs + offset

    def local(self, t: datetime) -> datetime:
        """A naive UTC time as the team's naive wall-clock time."""
        return _EPOCH + timedelta(seconds=self._local_seconds(t))

    def _day(self, day: int) -> tuple[int, bool]:
        """Working seconds before the day ``day`` (days since 1970-01-01) counted from the
        origin, and whether it is a working day. Whole weeks in O(1), the rest of the week
        from a table, holidays by binary search (``date.fromordinal(1)`` is a Monday, so
        ``(ordinal - 1) % 7`` is the weekday)."""
        cached = self._day_cache.get(day)
        if cached is not None:
            return cached
        ordinal = day + _EPOCH_ORDINAL
        weeks, rest = divmod(ordinal - 1, 7)
        i = bisect.bisect_left(self._off, ordinal)
        days = weeks * self._prefix[7] + self._prefix[rest] - i
        working = rest in self.days and (i == len(self._off) or self._off[i] != ordinal)
        out = (days * self.day_seconds, working)
        self._day_cache[day] = out
        return out

    def marks(self, times: Sequence[datetime]) -> list[float]:
        """Each time's working seconds since a fixed origin: the working time between two of
        them is the difference of their marks (at most 0 when the second is not later)."""
        local = [self._local_seconds(t) for t in times]
        self._cover(int(min(local) // 86400), int(max(local) // 86400))
        start, end = self.start, self.end
        cache = self._day_cache
        out = []
        for x in local:
            day = int(x // 86400)
            known = cache.get(day)
            before, working = known if known is not None else self._day(day)
            mark = float(before)
            if working:
                into = x - day * 86400
                mark += (end if into > end else into if into > start else start) - start
            out.append(mark)
        return out

    def seconds(self, a: datetime, b: datetime) -> float:
        """Working seconds in ``[a, b)`` (naive UTC); 0 when ``b <= a``."""
        if b <= a:
            return 0.0
        ma, mb = self.marks((a, b))
        return max(0.0, mb - ma)
