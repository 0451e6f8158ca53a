"""Freshness (METRICS.md, Agreements and alerts): the *data as of* of a card or digest, and
when a source is failing. Which sources a team's KPIs read is :mod:`bot.ingest.sources`.

Pure: the store's :mod:`bot.store.source_health` holds what happened; these rules decide what
it means.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from bot.ingest.sources import Group, SourceKey

#: consecutive failed runs after which a source's channels are told
FAILURES_TO_NOTICE = 3
#: sync intervals after which a polled source's data is stale
STALE_INTERVALS = 3


def data_as_of(
    groups: Iterable[Group], as_of: Mapping[SourceKey, datetime | None]
) -> datetime | None:
    """The oldest *data as of* among ``groups`` (each group as fresh as its latest source);
    None when one of them has never delivered data, or there is none."""
    oldest: datetime | None = None
    seen = False
    for group in groups:
        times = [t for k in group if (t := as_of.get(k)) is not None]
        if not times:
            return None
        latest = max(times)
        oldest = latest if oldest is None else min(oldest, latest)
        seen = True
    return oldest if seen else None


def is_failing(
    key: SourceKey,
    *,
    failures: int,
    last_success: datetime | None,
    now: datetime,
    interval: timedelta | None,
) -> bool:
    """A source is failing when its last ``FAILURES_TO_NOTICE`` runs failed, or when it is
    read on a schedule (``interval``) and its data is older than ``STALE_INTERVALS`` of them."""
    if failures >= FAILURES_TO_NOTICE:
        return True
    if not key.polled or interval is None or last_success is None:
        return False
    return now - last_success > interval * STALE_INTERVALS


def transition(failing_before: bool, failing_now: bool) -> str | None:
    """What to tell the team's channels: ``failing`` when a source starts failing,
    ``recovered`` when it stops, None otherwise."""
    if failing_now and not failing_before:
        return "failing"
    if failing_before and not failing_now:
        return "recovered"
    return None
