"""The Slack facts the permission rules need (the rules are in :mod:`bot.chat.permissions`):
who is a workspace admin or owner and which workspace a user belongs to (``users.info``,
cached), and which workspace a request came from."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.chat.permissions import Actor

log = logging.getLogger("kpibot.slack")


def request_workspace(body: dict[str, Any]) -> str | None:
    """The workspace of the person behind a request. In a Slack Connect channel that is the
    user's own workspace (``user.team_id`` in interactive payloads, ``user_team`` in slash
    commands), not the channel's host; ``team_id`` / ``team.id`` otherwise."""
    user = body.get("user")
    if isinstance(user, dict) and user.get("team_id"):
        return str(user["team_id"])
    if body.get("user_team"):
        return str(body["user_team"])
    if body.get("team_id"):
        return str(body["team_id"])
    team = body.get("team")
    if isinstance(team, dict) and team.get("id"):
        return str(team["id"])
    return None


class AdminCache:
    """``users.info`` answers (admin or owner, and the user's workspace), kept for ``ttl``
    seconds. A failed look-up counts as not admin and no known workspace (and is not
    cached), so a Slack outage never grants rights."""

    def __init__(
        self, client: WebClient, ttl: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.client = client
        self.ttl = ttl
        self.clock = clock
        self._seen: dict[str, tuple[float, bool, str | None]] = {}
        self._lock = threading.Lock()

    def _facts(self, user: str) -> tuple[bool, str | None]:
        now = self.clock()
        with self._lock:
            hit = self._seen.get(user)
            if hit and now - hit[0] < self.ttl:
                return hit[1], hit[2]
        try:
            info = self.client.users_info(user=user)
        except SlackApiError as exc:
            log.warning("users.info failed for %s: %s", user, exc.response.get("error"))
            return False, None
        u = info.get("user") or {}
        admin = bool(u.get("is_admin") or u.get("is_owner") or u.get("is_primary_owner"))
        workspace = u.get("team_id")
        workspace = str(workspace) if workspace else None
        with self._lock:
            self._seen[user] = (now, admin, workspace)
        return admin, workspace

    def is_admin(self, user: str) -> bool:
        return self._facts(user)[0]

    def workspace(self, user: str) -> str | None:
        """The workspace (team id) a user belongs to; None when the look-up failed."""
        return self._facts(user)[1]

    def actor(self, body: dict[str, Any], user: str, *, admin: bool = True) -> Actor:
        """The person behind a request. With ``admin`` (requests that change something) the
        ``users.info`` look-up also gives the person's workspace, which wins over the
        request's: where a payload names the channel's host workspace rather than the
        person's, Slack's own record of the person still tells them apart. ``admin`` False
        skips the look-up (requests that only read)."""
        if not (admin and user):
            return Actor("slack", user, request_workspace(body), False)
        is_admin, workspace = self._facts(user)
        return Actor("slack", user, workspace or request_workspace(body), is_admin)
