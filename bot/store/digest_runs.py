"""Exactly-once claims for scheduled posts: digest runs and reminder runs.

A run is keyed by what it posts ((subscription, period) or (team, owner, day)). Claiming
inserts the row with status ``claimed`` (the unique key lets only one process win) or takes
over a row whose earlier attempt ``failed`` or was abandoned (``claimed`` longer ago than
``stale_after``, i.e. its process died). ``attempts`` counts claims; a claim with
``attempts > 1`` must first look in the conversation for the message an earlier attempt may
have posted, unless that attempt ended ``unsent`` (the platform did not take the post).
Statuses: ``claimed`` -> ``posted`` | ``failed`` or ``unsent`` (may be claimed again) |
``skipped``.

A run claimed with a :class:`Backoff` (reminders) may be claimed again after a failure only
once the backoff for its attempts has passed; its caller gives it up (``skipped``) after the
last attempt. ``attempts`` and ``claimed_at`` are stored, so a restarted process goes on where
the previous one was instead of starting over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, false, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.store.models import AlertDelivery, DigestRun, ReminderRun, SourceNoticeRun
from bot.store.session import utc

RunModel = type[DigestRun] | type[ReminderRun] | type[AlertDelivery] | type[SourceNoticeRun]
DONE = ("posted", "skipped")
RETRYABLE = ("failed", "unsent")


@dataclass(frozen=True)
class Backoff:
    """When a failed run is tried again: ``first`` after the first attempt, doubling after
    each further one up to ``longest``; given up after ``max_attempts`` attempts."""

    first: timedelta = timedelta(minutes=1)
    longest: timedelta = timedelta(hours=1)
    max_attempts: int = 8  # 1, 2, 4 ... 60 min apart: the last about 2 h after the first

    def wait(self, attempts: int) -> timedelta:
        """How long after the claim of attempt number ``attempts`` the next may start."""
        return min(self.first * 2 ** max(attempts - 1, 0), self.longest)

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts


@dataclass(frozen=True)
class Claim:
    run_id: int
    attempts: int  # including this one
    claimed_at: datetime  # naive UTC
    clean: bool = False  # the attempt before this one is known not to have posted
    prior: str | None = None  # the run's status before this claim (None: a new run)

    @property
    def retry(self) -> bool:
        """An earlier attempt may have reached the conversation: look before posting."""
        return self.attempts > 1 and not self.clean


def _key_filter(model: RunModel, key: dict[str, Any]) -> Any:
    return and_(*(getattr(model, k) == v for k, v in key.items()))


def _claim(
    factory: sessionmaker[Session],
    model: RunModel,
    key: dict[str, Any],
    holder: str,
    now: datetime,
    stale_after: timedelta,
    reclaim_skipped: bool = False,
    backoff: Backoff | None = None,
) -> Claim | None:
    now = utc(now)
    with factory() as s:
        row_ = model(**key, status="claimed", claimed_by=holder, claimed_at=now, attempts=1)
        s.add(row_)
        try:
            s.flush()
            run_id = row_.id
            s.commit()
        except IntegrityError:
            s.rollback()
        else:
            return Claim(run_id, 1, now)
        row = s.execute(
            select(model.id, model.status, model.claimed_at, model.attempts).where(
                _key_filter(model, key)
            )
        ).one_or_none()
        if row is None:  # deleted in between (its subscription went away)
            return None
        run_id, status, claimed_at, attempts = row
        if status == "posted" or (status == "skipped" and not reclaim_skipped):
            return None
        if status == "claimed" and claimed_at > now - stale_after:
            return None  # another process is posting it right now
        if (
            status in RETRYABLE
            and backoff is not None
            and claimed_at > now - backoff.wait(attempts)
        ):
            return None  # failed recently: not yet
        res = s.execute(
            update(model)
            .where(
                model.id == run_id,
                model.attempts == attempts,
                or_(
                    model.status.in_(RETRYABLE),
                    and_(model.status == "skipped", true() if reclaim_skipped else false()),
                    and_(model.status == "claimed", model.claimed_at <= now - stale_after),
                ),
            )
            .values(status="claimed", claimed_by=holder, claimed_at=now, attempts=attempts + 1)
            .execution_options(synchronize_session=False)
        )
        if res.rowcount != 1:  # type: ignore[attr-defined]
            s.rollback()
            return None
        s.commit()
        return Claim(run_id, attempts + 1, now, clean=status == "unsent", prior=status)


def claim_digest(
    factory: sessionmaker[Session],
    subscription_id: int,
    period_key: str,
    holder: str,
    now: datetime,
    stale_after: timedelta,
    *,
    reclaim_skipped: bool = False,
) -> Claim | None:
    """Claim the digest of a subscription for a period; None when it is not ours to post.

    ``reclaim_skipped``: a digest skipped by the scheduler may be claimed (a manual post)."""
    key = {"subscription_id": subscription_id, "period_key": period_key}
    return _claim(factory, DigestRun, key, holder, now, stale_after, reclaim_skipped)


def claim_reminder(
    factory: sessionmaker[Session],
    team_id: int,
    owner: str,
    day: date,
    holder: str,
    now: datetime,
    stale_after: timedelta,
    backoff: Backoff | None = None,
    *,
    platform: str = "slack",
) -> Claim | None:
    """Claim the reminder of an owner (a user of ``platform``) for a team and day; None when
    it is not ours to send (sent, given up, being sent, or failed and its ``backoff`` not yet
    over)."""
    key = {"platform": platform, "team_id": team_id, "owner": owner, "day": day}
    return _claim(factory, ReminderRun, key, holder, now, stale_after, backoff=backoff)


def claim_alert(
    factory: sessionmaker[Session],
    event_id: int,
    platform: str,
    channel_id: str,
    holder: str,
    now: datetime,
    stale_after: timedelta,
) -> Claim | None:
    """Claim the delivery of an alert to one conversation; None when it is not ours to post."""
    key = {"event_id": event_id, "platform": platform, "channel_id": channel_id}
    return _claim(factory, AlertDelivery, key, holder, now, stale_after)


def claim_notice(
    factory: sessionmaker[Session],
    key: dict[str, Any],
    holder: str,
    now: datetime,
    stale_after: timedelta,
) -> Claim | None:
    """Claim a source's freshness notice (``key``: source, scope, episode, kind, platform,
    channel_id); None when it is not ours to post."""
    return _claim(factory, SourceNoticeRun, key, holder, now, stale_after)


def reminder_settled(
    factory: sessionmaker[Session], team_id: int, owner: str, day: date, platform: str = "slack"
) -> bool:
    """Whether the reminder of an owner for a team and day was sent or given up."""
    with factory() as s:
        status = s.scalar(
            select(ReminderRun.status).where(
                ReminderRun.platform == platform,
                ReminderRun.team_id == team_id,
                ReminderRun.owner == owner,
                ReminderRun.day == day,
            )
        )
    return status in DONE


def finish(
    factory: sessionmaker[Session],
    model: RunModel,
    claim: Claim,
    holder: str,
    *,
    status: str,
    now: datetime,
    message_ts: str | None = None,
    detail: str | None = None,
) -> bool:
    """Record the outcome of a claim; False when the claim was taken over meanwhile."""
    values: dict[str, Any] = {"status": status, "detail": detail}
    if status == "posted":
        values.update(posted_at=utc(now), message_ts=message_ts)
    with factory() as s:
        res = s.execute(
            update(model)
            .where(
                model.id == claim.run_id,
                model.claimed_by == holder,
                model.attempts == claim.attempts,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        s.commit()
        return res.rowcount == 1  # type: ignore[attr-defined]


def skip_digest(
    factory: sessionmaker[Session],
    subscription_id: int,
    period_key: str,
    holder: str,
    now: datetime,
    detail: str,
) -> bool:
    """Record a digest as skipped (missed beyond the grace window) unless it has a run."""
    with factory() as s:
        s.add(
            DigestRun(
                subscription_id=subscription_id,
                period_key=period_key,
                status="skipped",
                claimed_by=holder,
                claimed_at=utc(now),
                attempts=0,
                detail=detail,
            )
        )
        try:
            s.commit()
        except IntegrityError:
            s.rollback()
            return False
        return True


def digest_run(session: Session, subscription_id: int, period_key: str) -> DigestRun | None:
    return session.scalar(
        select(DigestRun).where(
            DigestRun.subscription_id == subscription_id, DigestRun.period_key == period_key
        )
    )


def runs_since(session: Session, since: datetime) -> list[DigestRun]:
    """Digest runs claimed at or after ``since`` (naive UTC), oldest first."""
    return list(
        session.scalars(
            select(DigestRun).where(DigestRun.claimed_at >= since).order_by(DigestRun.id)
        )
    )


def settled_keys(session: Session, subscription_ids: list[int]) -> set[tuple[int, str]]:
    """(subscription, period) pairs whose digest is posted or skipped."""
    if not subscription_ids:
        return set()
    rows = session.execute(
        select(DigestRun.subscription_id, DigestRun.period_key).where(
            DigestRun.subscription_id.in_(subscription_ids), DigestRun.status.in_(DONE)
        )
    )
    return {(sid, key) for sid, key in rows}
