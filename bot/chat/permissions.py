"""Who may change what, for every chat surface (Slack today, Microsoft Teams later).

The surfaces gather the facts about the person acting (an :class:`Actor`: their platform,
user id, workspace or tenant, and whether the platform calls them an admin) and about the
thing they change; the rules below decide. The service calls them before any write, so a
refused request stores nothing.

The model:

- A request from another workspace or tenant than the one the app is installed in (a
  shared channel, Slack Connect) is refused, whatever it asks.
- An action item may be changed (edited, marked done, reopened) by its owner, the person
  who logged it, a workspace admin or owner, or a lead of the item's team. Its owner must be
  a person of the installed workspace.
- A team's threshold alerts are switched on or off by an admin or a lead of the team.
- A channel's team mapping and its digest subscriptions may be changed (remapped;
  unsubscribed or re-timed) by the person who made the current one, an admin, or a lead of
  the team it is for. Making the first mapping or subscription of a channel, or subscribing
  again to a stopped digest, is open to anyone in the channel.
- A PR may be excluded from a team's metrics by an admin or a lead of the team; anyone may
  snooze a working-agreement nudge.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from bot.errors import KpibotError


class NotAllowed(KpibotError):
    """A refused change; the message says who may make it."""


@dataclass(frozen=True)
class Actor:
    """The person behind a request, as the surface established it."""

    platform: str  # "slack", "teams"
    user_id: str
    tenant_id: str | None  # the person's own workspace (Slack team id) or tenant
    is_admin: bool = False  # a workspace admin or owner, per the platform


FOREIGN = (
    "kpibot only works for people of the workspace it is installed in; this request came "
    "from another organisation's workspace, so nothing was changed."
)


def same_workspace(tenant_id: str | None, home: str | None) -> bool:
    """Whether a person (or a picked user) of ``tenant_id`` belongs to the installed
    workspace ``home``. Unknown ``home`` (not established at start) checks nothing; an
    unknown ``tenant_id`` against a known home is refused."""
    return home is None or tenant_id == home


def check_workspace(actor: Actor, home: str | None) -> None:
    if not same_workspace(actor.tenant_id, home):
        raise NotAllowed(FOREIGN)


def _privileged(actor: Actor, leads: Collection[str]) -> bool:
    return actor.is_admin or actor.user_id in leads


def may_change_item(actor: Actor, *, owner: str, creator: str, leads: Collection[str]) -> bool:
    return actor.user_id in (owner, creator) or _privileged(actor, leads)


def may_change_subscription(
    actor: Actor, *, created_by: str | None, leads: Collection[str]
) -> bool:
    """A subscription made outside chat (``created_by`` None, e.g. from the command line) is
    changed only by admins and leads."""
    return (created_by is not None and actor.user_id == created_by) or _privileged(actor, leads)


def may_exclude_pr(actor: Actor, *, leads: Collection[str]) -> bool:
    """Leaving a PR out of a team's metrics (and its agreements) is for admins and the
    team's leads."""
    return _privileged(actor, leads)


def may_map_channel(
    actor: Actor, *, mapped: bool, mapped_by: str | None, leads: Collection[str]
) -> bool:
    """``mapped``: the channel already has a mapping (``mapped_by`` made it; ``leads`` are
    those of its team). A first mapping is open to anyone in the channel."""
    if not mapped:
        return True
    return (mapped_by is not None and actor.user_id == mapped_by) or _privileged(actor, leads)


def may_change_alerts(actor: Actor, *, leads: Collection[str]) -> bool:
    """Switching a team's threshold alerts on or off: admins and the team's leads."""
    return _privileged(actor, leads)
