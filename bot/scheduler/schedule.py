"""When digests and reminders are due, in a team's time zone.

A weekly digest is due on its weekday and local time and covers the last complete ISO week;
a monthly digest is due on its day of the month and covers the last complete month. Local
times that a DST change skips run at the same wall-clock time with the earlier offset (so
02:30 on a spring-forward night runs at 03:30 summer time); repeated times run at their first
occurrence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.errors import KpibotError
from bot.metrics.periods import Period, last_complete_month, last_complete_week
from bot.settings import WEEKDAYS, DigestTimes

KINDS = ("weekly", "monthly")


class BadSchedule(KpibotError):
    """A digest time that cannot be read."""


@dataclass(frozen=True)
class DigestSchedule:
    """``kind`` weekly: ``day`` 0 = Monday; monthly: ``day`` 1-28."""

    kind: str
    day: int
    hour: int
    minute: int

    @property
    def text(self) -> str:
        if self.kind == "weekly":
            return f"{WEEKDAYS[self.day]} {self.hour:02d}:{self.minute:02d}"
        return f"{self.day} {self.hour:02d}:{self.minute:02d}"

    def cron_fields(self) -> dict[str, str | int]:
        """The fields of an APScheduler ``CronTrigger`` firing on this schedule."""
        if self.kind == "weekly":
            return {"day_of_week": WEEKDAYS[self.day], "hour": self.hour, "minute": self.minute}
        return {"day": self.day, "hour": self.hour, "minute": self.minute}

    def _on(self, d: date, zone: ZoneInfo) -> datetime:
        return to_utc(datetime.combine(d, time(self.hour, self.minute), tzinfo=zone))

    def latest_fire(self, now: datetime, zone: ZoneInfo) -> datetime:
        """The latest due moment at or before ``now`` (both aware; the result is in UTC)."""
        local = now.astimezone(zone).date()
        if self.kind == "weekly":
            d = local - timedelta(days=(local.weekday() - self.day) % 7)
            fire = self._on(d, zone)
            return fire if fire <= now else self._on(d - timedelta(days=7), zone)
        d = local.replace(day=self.day)
        if d > local or self._on(d, zone) > now:
            y, m = (d.year, d.month - 1) if d.month > 1 else (d.year - 1, 12)
            d = date(y, m, self.day)
        return self._on(d, zone)

    def next_fire(self, after: datetime, zone: ZoneInfo) -> datetime:
        """The first due moment strictly after ``after``."""
        if self.kind == "weekly":
            probe = after + timedelta(days=7)
        else:
            local = after.astimezone(zone)
            y, m = (local.year, local.month + 1) if local.month < 12 else (local.year + 1, 1)
            probe = datetime(y, m, self.day, 23, 59, tzinfo=zone)
        fire = self.latest_fire(probe, zone)
        while fire <= after:  # pragma: no cover - defensive, the probe is always far enough
            probe += timedelta(days=7)
            fire = self.latest_fire(probe, zone)
        # the probe may have jumped more than one occurrence ahead: walk back
        while True:
            earlier = self.latest_fire(fire - timedelta(seconds=1), zone)
            if earlier <= after:
                return fire
            fire = earlier

    def period(self, fire: datetime, zone: ZoneInfo) -> Period:
        """The period the digest due at ``fire`` covers."""
        if self.kind == "weekly":
            return last_complete_week(fire, zone)
        return last_complete_month(fire, zone)


def to_utc(dt: datetime) -> datetime:
    """An aware local time as aware UTC; skipped local times use the pre-transition offset."""
    return dt.astimezone(UTC)


def default_schedule(kind: str, times: DigestTimes) -> DigestSchedule:
    if kind == "weekly":
        return DigestSchedule("weekly", times.weekly_day, *times.weekly_time)
    if kind == "monthly":
        return DigestSchedule("monthly", times.monthly_day, *times.monthly_time)
    raise BadSchedule(f"digest kind must be weekly or monthly, not '{kind}'")


_WEEKLY = re.compile(r"([a-z]{3})[a-z]*\s+(\d{1,2}):(\d{2})")
_MONTHLY = re.compile(r"(\d{1,2})\s+(\d{1,2}):(\d{2})")


def parse_schedule(kind: str, text: str) -> DigestSchedule:
    """``mon 09:00`` (weekly) or ``1 09:00`` (monthly, day 1-28), as in kpibot.yml."""
    raw = text.strip().lower()
    if kind == "weekly":
        m = _WEEKLY.fullmatch(raw)
        if m and m.group(1) in WEEKDAYS and _ok(m):
            return DigestSchedule("weekly", WEEKDAYS.index(m.group(1)), *_hm(m))
        raise BadSchedule(f"a weekly digest time looks like 'mon 09:00', not '{text}'")
    if kind == "monthly":
        m = _MONTHLY.fullmatch(raw)
        if m and 1 <= int(m.group(1)) <= 28 and _ok(m):
            return DigestSchedule("monthly", int(m.group(1)), *_hm(m))
        raise BadSchedule(
            f"a monthly digest time looks like '1 09:00' (day 1-28, then the time), not '{text}'"
        )
    raise BadSchedule(f"digest kind must be weekly or monthly, not '{kind}'")


def _hm(m: re.Match[str]) -> tuple[int, int]:
    return int(m.group(2)), int(m.group(3))


def _ok(m: re.Match[str]) -> bool:
    return int(m.group(2)) < 24 and int(m.group(3)) < 60


def subscription_schedule(kind: str, override: str | None, times: DigestTimes) -> DigestSchedule:
    """A subscription's own time when it has one, else its team's (kpibot.yml or defaults)."""
    if override:
        return parse_schedule(kind, override)
    return default_schedule(kind, times)


@dataclass(frozen=True)
class DailyTime:
    """A time of day in a team's zone (reminders: 09:00)."""

    hour: int = 9
    minute: int = 0

    def latest_fire(self, now: datetime, zone: ZoneInfo) -> datetime:
        local = now.astimezone(zone).date()
        fire = to_utc(datetime.combine(local, time(self.hour, self.minute), tzinfo=zone))
        if fire > now:
            fire = to_utc(
                datetime.combine(
                    local - timedelta(days=1), time(self.hour, self.minute), tzinfo=zone
                )
            )
        return fire
