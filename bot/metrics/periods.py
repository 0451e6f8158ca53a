"""Periods: half-open ``[start, end)`` intervals in a team's time zone (METRICS.md, Time)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from bot.errors import BadPeriod, did_you_mean

NAMED = ("last-week", "this-week", "last-month", "this-month", "last-quarter", "this-quarter")
EXAMPLES = "last-week, this-week, last-month, this-month, 2026-W46, 2026-10, 2026-Q3, 28d, 90d"


@dataclass(frozen=True)
class Period:
    """``[start, end)``. A calendar period still in progress ends at ``now`` (METRICS.md, Time:
    "a period still in progress ends now"): ``end_local`` is where its numbers stop and
    ``calendar_end_local`` the end of the calendar period. The same elapsed span at the start
    of an earlier period (what a period in progress is compared with) is cut the same way."""

    kind: str  # week | month | quarter | rolling
    start_local: datetime  # aware, in the team's zone
    end_local: datetime
    days_rolling: int = 0  # for rolling periods: N
    calendar_end_local: datetime | None = None  # set when cut short of the calendar end

    @property
    def in_progress(self) -> bool:
        """Cut at ``now`` (or at the same elapsed span): its numbers say "so far"."""
        return self.calendar_end_local is not None

    def as_of(self, now: datetime) -> Period:
        """This period as seen at ``now`` (aware): cut at ``now`` when it contains it."""
        if self.kind == "rolling" or self.in_progress:
            return self
        if not self.start_local <= now < self.end_local:
            return self
        end = now.astimezone(self.zone).replace(microsecond=0)
        return replace(self, end_local=end, calendar_end_local=self.end_local)

    def whole(self) -> Period:
        """The calendar period, uncut."""
        if self.calendar_end_local is None:
            return self
        return replace(self, end_local=self.calendar_end_local, calendar_end_local=None)

    def comparison(self) -> Period:
        """What the trend compares with: the previous period, or for a period in progress the
        same elapsed span at the start of the previous period (Dec 1-3 against Nov 1-3), at
        most the whole previous period."""
        prev = self.previous()
        if not self.in_progress:
            return prev
        elapsed = _wall(self.end_local) - _wall(self.start_local)
        cut = _wall(prev.start_local) + elapsed
        if cut >= _wall(prev.end_local):
            return prev
        return replace(prev, end_local=_local(cut, self.zone), calendar_end_local=prev.end_local)

    @property
    def zone(self) -> ZoneInfo:
        tz = self.start_local.tzinfo
        assert isinstance(tz, ZoneInfo)
        return tz

    # start and end are read for every record a period is matched against: computed once
    # (a frozen dataclass's cached_property is kept in the instance's __dict__, outside the
    # fields that equality and hashing compare)
    @cached_property
    def start(self) -> datetime:
        """Start as a naive UTC datetime (the store's form)."""
        return self.start_local.astimezone(UTC).replace(tzinfo=None)

    @cached_property
    def end(self) -> datetime:
        return self.end_local.astimezone(UTC).replace(tzinfo=None)

    @property
    def days(self) -> float:
        """Calendar days in the team's zone (wall clock); for a period in progress the elapsed
        part, fractional (Dec 3 12:00 is 2.5 days into December)."""
        if self.kind == "rolling":
            return float(self.days_rolling)
        return (_wall(self.end_local) - _wall(self.start_local)) / timedelta(days=1)

    @property
    def label(self) -> str:
        d = self.start_local.date()
        if self.kind == "week":
            y, w, _ = d.isocalendar()
            return f"{y}-W{w:02d}"
        if self.kind == "month":
            return f"{d.year}-{d.month:02d}"
        if self.kind == "quarter":
            return f"{d.year}-Q{(d.month - 1) // 3 + 1}"
        return f"{self.days_rolling}d"

    @property
    def key(self) -> str:
        """A stable identifier (used for digest runs)."""
        if self.kind == "rolling":
            return f"{self.days_rolling}d@{self.end.isoformat()}"
        return self.label

    def describe(self) -> str:
        if self.in_progress:
            first, last = self.start_local.date(), self.last_day
            span = f"{first:%b} {first.day} – {last:%b} {last.day}"
            what = {"week": f"week {self.label}", "month": self.start_local.strftime("%B %Y")}
            return f"{what.get(self.kind, self.label)} so far ({span})"
        if self.kind == "rolling":
            s = self.start_local.date().isoformat()
            e = (self.end_local - timedelta(seconds=1)).date().isoformat()
            return f"last {self.days_rolling} days ({s} to {e})"
        if self.kind == "week":
            ws = self.start_local.date()
            we = ws + timedelta(days=6)
            return f"week {self.label} ({ws:%b} {ws.day} – {we:%b} {we.day})"
        if self.kind == "month":
            return self.start_local.strftime("%B %Y")
        return self.label

    @property
    def last_day(self) -> date:
        """The last local day the period covers."""
        if self.end_local <= self.start_local:
            return self.start_local.date()
        return (self.end_local - timedelta(microseconds=1)).date()

    def previous(self, k: int = 1) -> Period:
        """The whole period of equal kind and length ``k`` steps before this one (for one in
        progress too: sparklines show whole past periods)."""
        d = self.start_local.date()
        if self.kind == "week":
            return week_of(d - timedelta(days=7 * k), self.zone)
        if self.kind == "month":
            y, m = _add_months(d.year, d.month, -k)
            return month_of(y, m, self.zone)
        if self.kind == "quarter":
            y, m = _add_months(d.year, d.month, -3 * k)
            return quarter_of(y, (m - 1) // 3 + 1, self.zone)
        shift = timedelta(days=self.days_rolling * k)
        return Period(
            "rolling",
            _local(self.start_local.replace(tzinfo=None) - shift, self.zone),
            _local(self.end_local.replace(tzinfo=None) - shift, self.zone),
            self.days_rolling,
        )

    def contains(self, t: datetime) -> bool:
        """``t`` is naive UTC."""
        return self.start <= t < self.end


def _wall(t: datetime) -> datetime:
    """Local wall-clock time (naive): day arithmetic in the team's zone, DST-proof."""
    return t.replace(tzinfo=None)


def _local(naive_wall: datetime, zone: ZoneInfo) -> datetime:
    return naive_wall.replace(tzinfo=zone)


def _midnight(d: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(d, time(), tzinfo=zone)


def _add_months(year: int, month: int, delta: int) -> tuple[int, int]:
    idx = year * 12 + (month - 1) + delta
    return idx // 12, idx % 12 + 1


def week_of(d: date, zone: ZoneInfo) -> Period:
    monday = d - timedelta(days=d.weekday())
    return Period("week", _midnight(monday, zone), _midnight(monday + timedelta(days=7), zone))


def month_of(year: int, month: int, zone: ZoneInfo) -> Period:
    ny, nm = _add_months(year, month, 1)
    return Period("month", _midnight(date(year, month, 1), zone), _midnight(date(ny, nm, 1), zone))


def quarter_of(year: int, q: int, zone: ZoneInfo) -> Period:
    m = 3 * (q - 1) + 1
    ny, nm = _add_months(year, m, 3)
    return Period("quarter", _midnight(date(year, m, 1), zone), _midnight(date(ny, nm, 1), zone))


def rolling(days: int, now: datetime, zone: ZoneInfo) -> Period:
    end = now.astimezone(zone).replace(microsecond=0)
    wall = end.replace(tzinfo=None)
    return Period("rolling", _local(wall - timedelta(days=days), zone), end, days)


def last_complete_week(now: datetime, zone: ZoneInfo) -> Period:
    return week_of(now.astimezone(zone).date(), zone).previous()


def last_complete_month(now: datetime, zone: ZoneInfo) -> Period:
    d = now.astimezone(zone).date()
    return month_of(d.year, d.month, zone).previous()


def parse_period(text: str, zone: ZoneInfo, now: datetime) -> Period:
    """Parse a period word (PRODUCT.md, slash command) relative to ``now`` (aware); a period
    that contains ``now`` (``this-week``, ``this-month``, ``this-quarter``, or a named week,
    month or quarter) ends at ``now``."""
    return _parse_period(text, zone, now).as_of(now)


def _parse_period(text: str, zone: ZoneInfo, now: datetime) -> Period:
    word = text.strip().lower()
    local_today = now.astimezone(zone).date()
    if word == "this-week":
        return week_of(local_today, zone)
    if word == "last-week":
        return week_of(local_today, zone).previous()
    if word == "this-month":
        return month_of(local_today.year, local_today.month, zone)
    if word == "last-month":
        return month_of(local_today.year, local_today.month, zone).previous()
    if word in ("this-quarter", "last-quarter"):
        p = quarter_of(local_today.year, (local_today.month - 1) // 3 + 1, zone)
        return p if word == "this-quarter" else p.previous()
    if m := re.fullmatch(r"(\d{4})-w(\d{1,2})", word):
        year, wk = int(m.group(1)), int(m.group(2))
        try:
            return week_of(date.fromisocalendar(year, wk, 1), zone)
        except ValueError:
            raise BadPeriod(f"{year} has no ISO week {wk}. Valid periods: {EXAMPLES}.") from None
    if m := re.fullmatch(r"(\d{4})-(\d{1,2})", word):
        year, mon = int(m.group(1)), int(m.group(2))
        if not 1 <= mon <= 12 or year < 1970:
            raise BadPeriod(f"'{text}' is not a month. Valid periods: {EXAMPLES}.")
        return month_of(year, mon, zone)
    if m := re.fullmatch(r"(\d{4})-q([1-4])", word):
        return quarter_of(int(m.group(1)), int(m.group(2)), zone)
    if m := re.fullmatch(r"(\d{1,3})d", word):
        n = int(m.group(1))
        if not 1 <= n <= 366:
            raise BadPeriod(f"rolling periods run from 1d to 366d, not '{text}'.")
        return rolling(n, now, zone)
    hint = did_you_mean(word, [*NAMED, "28d", "90d"])
    raise BadPeriod(f"unknown period '{text}'.{hint} Valid periods: {EXAMPLES}.")


def looks_like_period(word: str) -> bool:
    w = word.strip().lower()
    return w in NAMED or bool(re.fullmatch(r"\d{4}-w\d{1,2}|\d{4}-\d{1,2}|\d{4}-q\d|\d{1,3}d", w))
