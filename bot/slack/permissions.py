"""Who may change an action item: its owner, its creator, or a workspace admin/owner."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.blocks import ItemRow

log = logging.getLogger("kpibot.slack")

NOT_ALLOWED = (
    "You're not allowed to change this action item: only its owner (<@{owner}>), the person "
    "who logged it (<@{creator}>) or a workspace admin can."
)


def may_change(item: ItemRow, user: str, is_admin: bool) -> bool:
    return user in (item.owner, item.created_by) or is_admin


def not_allowed_text(item: ItemRow) -> str:
    return NOT_ALLOWED.format(owner=item.owner, creator=item.created_by)


class AdminCache:
    """``users.info`` answers, kept for ``ttl`` seconds. A failed look-up counts as not admin
    (and is not cached), so a Slack outage never grants rights."""

    def __init__(
        self, client: WebClient, ttl: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.client = client
        self.ttl = ttl
        self.clock = clock
        self._seen: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def is_admin(self, user: str) -> bool:
        now = self.clock()
        with self._lock:
            hit = self._seen.get(user)
            if hit and now - hit[0] < self.ttl:
                return hit[1]
        try:
            info = self.client.users_info(user=user)
        except SlackApiError as exc:
            log.warning("users.info failed for %s: %s", user, exc.response.get("error"))
            return False
        u = info.get("user") or {}
        admin = bool(u.get("is_admin") or u.get("is_owner") or u.get("is_primary_owner"))
        with self._lock:
            self._seen[user] = (now, admin)
        return admin
