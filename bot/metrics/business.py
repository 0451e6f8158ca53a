"""Business hours (METRICS.md, Time): the working seconds of a span in a team's zone.

The working time of ``[a, b)`` is the length of its overlap with the team's working intervals:
each working day that is not a holiday, from the start to the end of the working hours, in the
team's zone and on the wall clock (a DST change day still has its full working hours). The
answer is ``W(b) - W(a)``, where ``W(t)`` counts the working seconds from a fixed origin to
``t``: whole weeks in O(1), the days of the last partial week from a table, holidays by a
binary search in their sorted day numbers, then the part of ``t``'s own day. So a span costs
the same whether it is a minute or a year long.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from bot.settings import WorkingHours

_EPOCH = datetime(1970, 1, 1)
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
    _offsets: dict[int, int] = field(init=False, repr=False, default_factory=dict)

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

    def _cover(self, first: int, last: int) -> None:
        """Make sure the country calendars' holidays of the years ``first``..``last`` are in."""
        if not self.calendars:
            return
        if self._years is not None and self._years[0] <= first and last <= self._years[1]:
            return
        if self._years is not None:
            first, last = min(first, self._years[0]), max(last, self._years[1])
        years = range(first, last + 1)
        dates = set(self.holidays)
        for cal in self.calendars:
            dates |= cal.dates(years)
        self._set_off(dates)
        self._years = (first, last)

    def local(self, t: datetime) -> datetime:
        """A naive UTC time as the team's naive wall-clock time."""
        secs = int((t - _EPOCH).total_seconds())
        key = secs // _BUCKET
        offset = self._offsets.get(key)
        if offset is None:
            aware = t.replace(tzinfo=UTC).astimezone(self.zone)
            off = aware.utcoffset()
            offset = int(off.total_seconds()) if off is not None else 0
            self._offsets[key] = offset
        return t + timedelta(seconds=offset)

    def _working_days_before(self, ordinal: int) -> int:
        """Working days (holidays left out) from the origin up to, not including, ``ordinal``
        (``date.fromordinal(1)`` is a Monday, so ``(ordinal - 1) % 7`` is the weekday)."""
        weeks, rest = divmod(ordinal - 1, 7)
        return weeks * self._prefix[7] + self._prefix[rest] - bisect.bisect_left(self._off, ordinal)

    def _is_working(self, ordinal: int) -> bool:
        if (ordinal - 1) % 7 not in self.days:
            return False
        i = bisect.bisect_left(self._off, ordinal)
        return i == len(self._off) or self._off[i] != ordinal

    def _upto(self, local: datetime) -> float:
        """Working seconds from the origin to the local wall-clock time ``local``."""
        ordinal = local.toordinal()
        total = float(self._working_days_before(ordinal) * self.day_seconds)
        if self._is_working(ordinal):
            into = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
            total += min(max(into, self.start), self.end) - self.start
        return total

    def seconds(self, a: datetime, b: datetime) -> float:
        """Working seconds in ``[a, b)`` (naive UTC); 0 when ``b <= a``."""
        if b <= a:
            return 0.0
        la, lb = self.local(a), self.local(b)
        self._cover(la.year, lb.year)
        return max(0.0, self._upto(lb) - self._upto(la))
