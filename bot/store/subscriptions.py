"""Digest subscriptions of chat conversations: written by ``subscribe``, read by the scheduler.

A subscription is (platform, conversation, team, kind) with kind ``weekly`` or ``monthly``:
a Slack channel and a Microsoft Teams channel subscribe on their own. Unsubscribing
keeps the row inactive (its digest runs stay, so a digest is still posted at most once per
period after a re-subscribe). The scheduler marks a subscription broken when the platform
refuses to post to its conversation (Slack's ``channel_not_found``, ``not_in_channel``);
subscribing again clears it.

A Teams subscription also keeps its conversation's :class:`Reference` (the connector's
service URL and the tenant), which proactive posting needs; subscribing again refreshes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, or_, select, update
from sqlalchemy.orm import Session

from bot.store.models import DigestSubscription, Team

KINDS = ("weekly", "monthly")


@dataclass(frozen=True)
class Reference:
    """Where a platform is reached to post proactively in a conversation (Teams: the
    connector's service URL and the conversation's tenant)."""

    service_url: str
    tenant_id: str | None = None


@dataclass(frozen=True)
class Subscription:
    """A subscription as the scheduler and the Slack views read it."""

    id: int
    channel_id: str  # the conversation on ``platform``
    team_id: int
    team: str
    kind: str  # weekly | monthly
    schedule: str | None  # "mon 09:00" / "1 09:00"; None = the team's configured time
    active: bool
    broken_reason: str | None
    created_by: str | None
    created_at: datetime
    platform: str = "slack"  # slack | teams
    service_url: str | None = None  # Teams: the conversation's reference
    tenant_id: str | None = None

    @property
    def broken(self) -> bool:
        return self.broken_reason is not None

    @property
    def reference(self) -> Reference | None:
        return Reference(self.service_url, self.tenant_id) if self.service_url else None


def _view(sub: DigestSubscription, team: str) -> Subscription:
    return Subscription(
        sub.id,
        sub.channel_id,
        sub.team_id,
        team,
        sub.kind,
        sub.schedule,
        sub.active,
        sub.broken_reason,
        sub.created_by,
        sub.created_at,
        sub.platform,
        sub.service_url,
        sub.tenant_id,
    )


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"digest kind must be weekly or monthly, not {kind!r}")


def subscribe(
    session: Session,
    *,
    platform: str,
    channel_id: str,
    team_id: int,
    kind: str,
    created_by: str | None,
    now: datetime,
    schedule: str | None = None,
    reference: Reference | None = None,
) -> tuple[Subscription, bool]:
    """Subscribe a channel to a team's digest; returns (subscription, newly active).

    Subscribing again reactivates an inactive row, clears a broken flag and stores the
    conversation's newest ``reference``.
    """
    _check_kind(kind)
    sub = session.scalar(
        select(DigestSubscription).where(
            DigestSubscription.platform == platform,
            DigestSubscription.channel_id == channel_id,
            DigestSubscription.team_id == team_id,
            DigestSubscription.kind == kind,
        )
    )
    created = False
    if sub is None:
        sub = DigestSubscription(
            platform=platform,
            channel_id=channel_id,
            team_id=team_id,
            kind=kind,
            schedule=schedule,
            created_by=created_by,
            created_at=now,
            active=True,
        )
        session.add(sub)
        created = True
    else:
        created = not sub.active or sub.broken_reason is not None
        if not sub.active:  # subscribing again to a stopped digest: a new subscription
            sub.created_by = created_by
            sub.created_at = now
        sub.active = True
        sub.broken_reason = None
        if schedule is not None:
            sub.schedule = schedule
    if reference is not None:
        sub.service_url = reference.service_url
        sub.tenant_id = reference.tenant_id
    session.flush()
    team = session.get(Team, team_id)
    return _view(sub, team.name if team else "?"), created


def find(
    session: Session, *, platform: str, channel_id: str, team_id: int, kind: str
) -> Subscription | None:
    """The conversation's subscription to a team's digest, active or not."""
    row = session.execute(
        select(DigestSubscription, Team.name)
        .join(Team, Team.id == DigestSubscription.team_id)
        .where(
            DigestSubscription.platform == platform,
            DigestSubscription.channel_id == channel_id,
            DigestSubscription.team_id == team_id,
            DigestSubscription.kind == kind,
        )
    ).first()
    return _view(row[0], row[1]) if row else None


def _matching(
    platform: str, channel_id: str, kind: str | None, team_id: int | None
) -> Select[tuple[DigestSubscription, str]]:
    if kind is not None:
        _check_kind(kind)
    q = select(DigestSubscription, Team.name).join(Team, Team.id == DigestSubscription.team_id)
    q = q.where(
        DigestSubscription.platform == platform,
        DigestSubscription.channel_id == channel_id,
        DigestSubscription.active.is_(True),
    )
    if kind is not None:
        q = q.where(DigestSubscription.kind == kind)
    if team_id is not None:
        q = q.where(DigestSubscription.team_id == team_id)
    return q


def matching(
    session: Session,
    *,
    platform: str,
    channel_id: str,
    kind: str | None = None,
    team_id: int | None = None,
) -> list[Subscription]:
    """The conversation's active subscriptions an ``unsubscribe`` with these filters would
    stop."""
    q = _matching(platform, channel_id, kind, team_id)
    return [_view(sub, team) for sub, team in session.execute(q)]


def unsubscribe(
    session: Session,
    *,
    platform: str,
    channel_id: str,
    kind: str | None = None,
    team_id: int | None = None,
) -> list[Subscription]:
    """Deactivate the conversation's matching active subscriptions; returns those changed."""
    changed = []
    for sub, team in session.execute(_matching(platform, channel_id, kind, team_id)).all():
        sub.active = False
        changed.append(_view(sub, team))
    session.flush()
    return changed


def _select() -> Select[tuple[DigestSubscription, str]]:
    return (
        select(DigestSubscription, Team.name)
        .join(Team, Team.id == DigestSubscription.team_id)
        .where(DigestSubscription.active.is_(True))
        .order_by(
            DigestSubscription.platform,
            DigestSubscription.channel_id,
            Team.name,
            DigestSubscription.kind,
        )
    )


def for_channel(session: Session, *, platform: str, channel_id: str) -> list[Subscription]:
    """The conversation's active subscriptions (broken ones included)."""
    q = _select().where(
        DigestSubscription.platform == platform, DigestSubscription.channel_id == channel_id
    )
    return [_view(s, t) for s, t in session.execute(q).all()]


def for_channels(
    session: Session, channel_ids: Iterable[str], *, platform: str
) -> list[Subscription]:
    ids = list(channel_ids)
    if not ids:
        return []
    q = _select().where(
        DigestSubscription.platform == platform, DigestSubscription.channel_id.in_(ids)
    )
    rows = session.execute(q).all()
    return [_view(s, t) for s, t in rows]


def for_team(session: Session, team_id: int) -> list[Subscription]:
    rows = session.execute(_select().where(DigestSubscription.team_id == team_id)).all()
    return [_view(s, t) for s, t in rows]


def active_subscriptions(
    session: Session, kind: str | None = None, include_broken: bool = False
) -> list[Subscription]:
    """Every active subscription (for the scheduler), without broken ones unless asked."""
    q = _select()
    if kind is not None:
        _check_kind(kind)
        q = q.where(DigestSubscription.kind == kind)
    if not include_broken:
        q = q.where(DigestSubscription.broken_reason.is_(None))
    return [_view(s, t) for s, t in session.execute(q).all()]


def reference(session: Session, *, platform: str, channel_id: str) -> Reference | None:
    """The newest stored reference of a conversation (its subscriptions share it)."""
    row = session.execute(
        select(DigestSubscription.service_url, DigestSubscription.tenant_id)
        .where(
            DigestSubscription.platform == platform,
            DigestSubscription.channel_id == channel_id,
            DigestSubscription.service_url.is_not(None),
        )
        .order_by(DigestSubscription.created_at.desc(), DigestSubscription.id.desc())
        .limit(1)
    ).first()
    return Reference(row[0], row[1]) if row is not None and row[0] else None


def refresh_reference(
    session: Session, *, platform: str, channel_id: str, reference: Reference
) -> int:
    """Keep the conversation's subscriptions at its newest reference (the platform may move
    a conversation to another service URL); returns the subscriptions changed."""
    res = session.execute(
        update(DigestSubscription)
        .where(
            DigestSubscription.platform == platform,
            DigestSubscription.channel_id == channel_id,
            or_(
                DigestSubscription.service_url.is_distinct_from(reference.service_url),
                DigestSubscription.tenant_id.is_distinct_from(reference.tenant_id),
            ),
        )
        .values(service_url=reference.service_url, tenant_id=reference.tenant_id)
        .execution_options(synchronize_session=False)
    )
    return int(res.rowcount or 0)  # type: ignore[attr-defined]


def tenants(session: Session, platform: str) -> set[str]:
    """The tenants of the platform's conversations that subscribed (Teams)."""
    q = select(DigestSubscription.tenant_id).where(
        DigestSubscription.platform == platform, DigestSubscription.tenant_id.is_not(None)
    )
    return {t for t in session.scalars(q.distinct()) if t}


def mark_broken(session: Session, subscription_id: int, reason: str) -> None:
    """Flag a subscription whose channel cannot be posted to (shown in ``/kpi subscriptions``)."""
    sub = session.get(DigestSubscription, subscription_id)
    if sub is not None:
        sub.broken_reason = reason
        session.flush()


def clear_broken(session: Session, subscription_id: int) -> None:
    sub = session.get(DigestSubscription, subscription_id)
    if sub is not None:
        sub.broken_reason = None
        session.flush()
