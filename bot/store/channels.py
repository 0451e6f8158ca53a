"""Conversation -> team mappings made in chat (``team set``), and team look-ups by name.

A conversation is (platform, conversation id): a Slack channel and a Microsoft Teams channel
each have their own mapping. A mapping stored here wins over the ``channel:`` of a team in
kpibot.yml (a Slack channel id).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot.store.models import ActionItem, ChannelTeam, DigestSubscription, Team


def team_ids(session: Session) -> dict[str, int]:
    """Team name -> id for every stored team."""
    return {name: tid for tid, name in session.execute(select(Team.id, Team.name)).all()}


def team_name(session: Session, team_id: int) -> str | None:
    return session.scalar(select(Team.name).where(Team.id == team_id))


def mapping(session: Session, *, platform: str, channel_id: str) -> ChannelTeam | None:
    return session.get(ChannelTeam, (platform, channel_id))


def set_channel_team(
    session: Session,
    *,
    platform: str,
    channel_id: str,
    team_id: int,
    set_by: str | None,
    now: datetime,
) -> None:
    row = mapping(session, platform=platform, channel_id=channel_id)
    if row is None:
        session.add(
            ChannelTeam(
                platform=platform, channel_id=channel_id, team_id=team_id, set_by=set_by, set_at=now
            )
        )
    else:
        row.team_id = team_id
        row.set_by = set_by
        row.set_at = now
    session.flush()


def channel_team(session: Session, *, platform: str, channel_id: str) -> str | None:
    """The name of the team mapped to a conversation, if any."""
    return session.scalar(
        select(Team.name)
        .join(ChannelTeam, ChannelTeam.team_id == Team.id)
        .where(ChannelTeam.platform == platform, ChannelTeam.channel_id == channel_id)
    )


def channels_of_team(session: Session, team_id: int, *, platform: str) -> list[str]:
    """The conversations of one platform mapped to a team."""
    return list(
        session.scalars(
            select(ChannelTeam.channel_id)
            .where(ChannelTeam.team_id == team_id, ChannelTeam.platform == platform)
            .order_by(ChannelTeam.channel_id)
        )
    )


def user_teams(session: Session, user_id: str, *, platform: str) -> list[str]:
    """Teams a user of ``platform`` works with: those whose action items they own or
    created, and those they mapped a conversation to; alphabetical."""
    from_items = select(ActionItem.team_id).where(
        ActionItem.platform == platform,
        or_(ActionItem.owner == user_id, ActionItem.created_by == user_id),
    )
    from_channels = select(ChannelTeam.team_id).where(
        ChannelTeam.platform == platform, ChannelTeam.set_by == user_id
    )
    return list(
        session.scalars(
            select(Team.name)
            .where(or_(Team.id.in_(from_items), Team.id.in_(from_channels)))
            .order_by(Team.name)
        )
    )


def team_conversations(
    session: Session,
    team_id: int,
    *,
    configured: str | None = None,
    platform: str | None = None,
) -> list[tuple[str, str]]:
    """Where kpibot speaks up for a team (alerts, nudges, freshness notices), as
    (platform, conversation), each once, sorted: the conversations mapped to it, those
    subscribed to one of its digests (broken subscriptions left out), and ``configured`` (the
    ``channel:`` of kpibot.yml, a Slack channel) unless a mapping made in chat gave that
    channel to another team (a mapping wins). Only ``platform``'s when it is given."""
    mapped = session.execute(
        select(ChannelTeam.platform, ChannelTeam.channel_id).where(ChannelTeam.team_id == team_id)
    ).tuples()
    subscribed = session.execute(
        select(DigestSubscription.platform, DigestSubscription.channel_id).where(
            DigestSubscription.team_id == team_id,
            DigestSubscription.active.is_(True),
            DigestSubscription.broken_reason.is_(None),
        )
    ).tuples()
    found = set(mapped) | set(subscribed)
    if configured and ("slack", configured) not in found:
        owner = mapping(session, platform="slack", channel_id=configured)
        if owner is None or owner.team_id == team_id:
            found.add(("slack", configured))
    return sorted(c for c in found if platform is None or c[0] == platform)
