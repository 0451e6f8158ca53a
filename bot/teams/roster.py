"""The Teams facts the permission rules need (the rules are in :mod:`bot.chat.permissions`):
who is an admin of kpibot in Teams, and which tenant a person belongs to.

Admins come from ``TEAMS_ADMINS`` (comma-separated AAD object ids). The Bot Framework's
roster (``GET /v3/conversations/{id}/members``) gives each member a ``userRole`` of ``user``
or ``guest`` only: team owners are not visible there (that takes Microsoft Graph and its own
consent), so the configured list is the source. The roster gives the people a conversation
holds (the action-item dialog's owner choices) and each one's tenant (a new owner must be of
the installed tenant). Rosters are cached for ``ttl`` seconds; a failed look-up gives no
members (and is not cached), so an outage never grants rights. The display names seen (in
rosters and on verified activities) are kept, so that sentences name people, not ids.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from bot.chat.permissions import Actor
from bot.teams.connector import Connector, ConnectorError

log = logging.getLogger("kpibot.teams")


MAX_NAMES = 10_000  # display names kept for kpibot's sentences


@dataclass(frozen=True)
class Member:
    user_id: str  # the AAD object id: how kpibot names Teams users
    name: str
    tenant_id: str | None
    guest: bool


class Roster:
    def __init__(
        self,
        connector: Connector,
        admins: Collection[str] = (),
        *,
        ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connector = connector
        self.admins = frozenset(admins)
        self.ttl = ttl
        self.clock = clock
        self._seen: dict[tuple[str, str], tuple[float, tuple[Member, ...]]] = {}
        self._names: dict[str, str] = {}  # AAD object id -> display name, newest last
        self._lock = threading.Lock()

    def remember(self, user: str, name: str) -> None:
        """Keep a person's display name (from a verified activity or a roster) so that
        kpibot's sentences can name them; at most :data:`MAX_NAMES`, the oldest forgotten."""
        if not user or not name:
            return
        with self._lock:
            self._names.pop(user, None)
            self._names[user] = name
            while len(self._names) > MAX_NAMES:
                del self._names[next(iter(self._names))]

    def name(self, user: str) -> str | None:
        """The display name last seen for ``user`` (None: not seen since kpibot started)."""
        with self._lock:
            return self._names.get(user)

    def is_admin(self, user: str) -> bool:
        return bool(user) and user in self.admins

    def actor(self, user: str, tenant: str | None) -> Actor:
        """The person behind a request (``tenant``: the activity's)."""
        return Actor("teams", user, tenant, self.is_admin(user))

    def members(self, service_url: str, conversation: str) -> tuple[Member, ...]:
        key = (service_url, conversation)
        now = self.clock()
        with self._lock:
            hit = self._seen.get(key)
            if hit and now - hit[0] < self.ttl:
                return hit[1]
        try:
            raw = self.connector.members(service_url, conversation)
        except (ConnectorError, OSError, ValueError) as exc:
            log.warning("reading the Teams roster failed: %s", exc)
            return ()
        found = tuple(
            Member(
                str(m.get("aadObjectId") or m.get("id") or ""),
                str(m.get("name") or m.get("givenName") or "someone"),
                str(m["tenantId"]) if m.get("tenantId") else None,
                str(m.get("userRole") or "").lower() == "guest",
            )
            for m in raw
            if m.get("aadObjectId") or m.get("id")
        )
        with self._lock:
            self._seen[key] = (now, found)
        for m in raw:
            if m.get("aadObjectId") and m.get("name"):
                self.remember(str(m["aadObjectId"]), str(m["name"]))
        return found

    def tenant_lookup(self, service_url: str, conversation: str) -> Callable[[str], str | None]:
        """A picked owner's tenant, from the conversation's roster (None: not a member)."""

        def tenant(user: str) -> str | None:
            for m in self.members(service_url, conversation):
                if m.user_id == user and not m.guest:
                    return m.tenant_id
            return None

        return tenant
