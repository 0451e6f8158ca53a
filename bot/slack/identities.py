"""Who is who in Slack: kpibot.yml may know a person only by e-mail; their Slack member id is
looked up once (``users.lookupByEmail``, scope ``users:read.email``) and kept in the store,
found or not, so a person's teams come from membership from then on."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.chat.service import ChatService

log = logging.getLogger("kpibot.slack")

#: look-ups done at most per call, so a first App Home of a large organisation stays quick
#: (the rest are done on the next ones)
BATCH = 20


def look_up_emails(client: WebClient, service: ChatService, limit: int = BATCH) -> int:
    """Look up the Slack ids of the people known only by e-mail, each once; returns the
    number of answers stored. A failure other than "no such user" is tried again later."""
    done = 0
    for person, email in service.emails_to_look_up()[:limit]:
        try:
            resp = client.users_lookupByEmail(email=email)
            user = resp.get("user") or {}
            found: str | None = str(user.get("id")) if user.get("id") else None
        except SlackApiError as exc:
            if exc.response.get("error") != "users_not_found":
                log.warning("users.lookupByEmail failed: %s", exc.response.get("error"))
                continue
            found = None
        service.store_looked_up(person, found)
        done += 1
    return done
