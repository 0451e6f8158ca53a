"""The noise budget: every proactive message kpibot sends to a conversation on its own
(a working-agreement nudge, a threshold alert, a freshness notice) goes through
:func:`admit`, which is also its exactly-once claim.

A conversation receives at most ``budget`` alerts and nudges per ISO week in the team's time
zone (``noise_budget`` in kpibot.yml, default 5). A notice over the budget is *folded*: it is
not posted, and its ``text`` is listed in the conversation's next daily roll-up
(:func:`folded`, then :func:`rolled_up`). Roll-ups themselves (``budget=None``) are never
counted nor folded.

How a sender uses it (in one session; commit after each step)::

    admission = budget.admit(s, "slack", channel, "alert", f"{team}:cfr:off:{day}", now,
                             budget=team.noise_budget, zone=team.zone, text="CFR off target")
    s.commit()
    if admission:                      # post it now
        ts = poster.post(channel, message, key=admission.key, look_first=admission.retry)
        budget.posted(s, admission, now, ts); s.commit()
    # else: posted before, being posted by another process, or folded into the roll-up

``kind`` + ``key`` name the notice for good: admitting it again never posts it twice. A
notice whose post failed, or whose process died before :func:`posted` (its claim older than
``stale_after``), is admitted again with ``retry`` set: look in the conversation first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.settings import DEFAULT_NOISE_BUDGET
from bot.store.models import NoticeRun
from bot.store.session import aware, utc

#: kinds that are not alerts or nudges: never counted against the budget, never folded
UNCOUNTED = frozenset({"rollup"})
#: statuses that used the week's budget (a failed post was still meant to be seen)
COUNTED = ("admitted", "posted", "failed", "unsent", "skipped")
CLAIM_TTL = timedelta(minutes=10)
UTC_ZONE = ZoneInfo("UTC")


@dataclass(frozen=True)
class Admission:
    """What :func:`admit` decided. True (``post``): post it now under ``key``."""

    id: int | None
    key: str  # the key to mark the platform message with (kind:key)
    post: bool
    retry: bool = False  # an earlier attempt may have posted it: look first
    folded: bool = False  # over the budget: in the next roll-up instead
    settled: bool = False  # posted (or folded, or settled empty) before: nothing more to do

    def __bool__(self) -> bool:
        return self.post


def week_of(now: datetime, zone: ZoneInfo) -> str:
    """The ISO week (``2026-W49``) of ``now`` in the team's zone: the budget's period."""
    iso = aware(now).astimezone(zone).isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def used(session: Session, platform: str, conversation: str, week: str) -> int:
    """Alerts and nudges that used the conversation's budget in ``week``."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(NoticeRun)
            .where(
                NoticeRun.platform == platform,
                NoticeRun.channel_id == conversation,
                NoticeRun.week == week,
                NoticeRun.kind.not_in(UNCOUNTED),
                NoticeRun.status.in_(COUNTED),
            )
        )
        or 0
    )


def admit(
    session: Session,
    platform: str,
    conversation: str,
    kind: str,
    key: str,
    now: datetime,
    *,
    budget: int | None = DEFAULT_NOISE_BUDGET,
    zone: ZoneInfo = UTC_ZONE,
    text: str | None = None,
    stale_after: timedelta = CLAIM_TTL,
) -> Admission:
    """Claim the notice ``kind``/``key`` for a conversation, within the week's ``budget``
    (None: no budget, for roll-ups). ``text``: its line in the roll-up if it is folded."""
    now = utc(now)
    marker = f"{kind}:{key}"
    row = session.scalar(
        select(NoticeRun).where(
            NoticeRun.platform == platform,
            NoticeRun.channel_id == conversation,
            NoticeRun.kind == kind,
            NoticeRun.key == key,
        )
    )
    if row is not None:
        stale = row.status == "admitted" and row.claimed_at <= now - stale_after
        if row.status in ("failed", "unsent") or stale:
            retry = row.status != "unsent"  # the platform did not take the last attempt
            row.status, row.claimed_at = "admitted", now
            session.flush()
            return Admission(row.id, marker, True, retry=retry)
        done = row.status in ("posted", "folded", "empty", "undeliverable", "skipped")
        return Admission(row.id, marker, False, folded=row.status == "folded", settled=done)
    week = week_of(now, zone)
    over = (
        budget is not None
        and kind not in UNCOUNTED
        and used(session, platform, conversation, week) >= budget
    )
    row = NoticeRun(
        platform=platform,
        channel_id=conversation,
        kind=kind,
        key=key,
        week=week,
        status="folded" if over else "admitted",
        text=text,
        claimed_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # another process admitted it first
        return Admission(None, marker, False)
    return Admission(row.id, marker, not over, folded=over, settled=over)


def posted(session: Session, admission: Admission, now: datetime, ts: str | None) -> None:
    _set(session, admission, "posted", posted_at=utc(now), message_ts=ts)


def failed(session: Session, admission: Admission, *, unsent: bool = False) -> None:
    """The post failed: it is admitted again by the next pass, looking first unless
    ``unsent`` (the platform is known not to have taken it)."""
    _set(session, admission, "unsent" if unsent else "failed")


def skipped(session: Session, admission: Admission, now: datetime) -> None:
    """An earlier attempt may have posted it and the platform cannot tell (a Teams bot cannot
    read a channel's history): settled rather than risk posting it twice."""
    _set(session, admission, "skipped", posted_at=utc(now))


def settled_empty(session: Session, admission: Admission, now: datetime) -> None:
    """A roll-up with nothing to say: settled without a message."""
    _set(session, admission, "empty", posted_at=utc(now))


def undeliverable(session: Session, admission: Admission, now: datetime) -> None:
    """The conversation cannot be posted to (gone, archived, the bot removed): settled, not
    retried."""
    _set(session, admission, "undeliverable", posted_at=utc(now))


def _set(session: Session, admission: Admission, status: str, **values: object) -> None:
    if admission.id is None:
        return
    session.execute(
        update(NoticeRun).where(NoticeRun.id == admission.id).values(status=status, **values)
    )


def folded(session: Session, platform: str, conversation: str) -> list[NoticeRun]:
    """Notices folded into the conversation's next roll-up, oldest first."""
    return list(
        session.scalars(
            select(NoticeRun)
            .where(
                NoticeRun.platform == platform,
                NoticeRun.channel_id == conversation,
                NoticeRun.status == "folded",
                NoticeRun.rolled_up_at.is_(None),
            )
            .order_by(NoticeRun.claimed_at, NoticeRun.id)
        )
    )


def rolled_up(session: Session, ids: list[int], now: datetime) -> None:
    """These folded notices were listed in a posted roll-up."""
    if ids:
        session.execute(
            update(NoticeRun).where(NoticeRun.id.in_(ids)).values(rolled_up_at=utc(now))
        )
