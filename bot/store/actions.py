"""Action items: the queries digests and Slack views need."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.models import ActionItem


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
