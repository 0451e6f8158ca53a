"""Action items: the queries digests and Slack views need, and the once-only record of the
form submissions that store them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.models import ActionItem, FormSubmission


def open_items(session: Session, team_id: int) -> list[ActionItem]:
    return list(
        session.scalars(
            select(ActionItem)
            .where(ActionItem.team_id == team_id, ActionItem.completed_on.is_(None))
            .order_by(ActionItem.due_on, ActionItem.id)
        )
    )


def completed_between(session: Session, team_id: int, start: date, end: date) -> list[ActionItem]:
    """Items completed on a day in ``[start, end)``."""
    return list(
        session.scalars(
            select(ActionItem)
            .where(
                ActionItem.team_id == team_id,
                ActionItem.completed_on >= start,
                ActionItem.completed_on < end,
            )
            .order_by(ActionItem.completed_on, ActionItem.id)
        )
    )


def submission_seen(session: Session, key: str) -> bool:
    return (
        session.scalar(select(FormSubmission.id).where(FormSubmission.submission_key == key))
        is not None
    )


def claim_submission(
    session: Session, key: str, *, submitted_by: str, now: datetime
) -> FormSubmission | None:
    """Record a form submission by its key, in the transaction that stores what it says;
    None when that key was recorded before (a replayed delivery: store nothing).

    Of two concurrent deliveries the unique key lets one commit; the other's flush raises
    ``IntegrityError`` (its caller rolls back and treats it as the replay it is)."""
    if submission_seen(session, key):
        return None
    row = FormSubmission(submission_key=key, submitted_by=submitted_by, submitted_at=now)
    session.add(row)
    session.flush()
    return row
