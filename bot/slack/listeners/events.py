"""Events: App Home (``app_home_opened`` -> ``views.publish``), for people of the installed
workspace only (the event names no workspace of the person, so ``users.info`` tells)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.chat.permissions import NotAllowed
from bot.slack.identities import look_up_emails
from bot.slack.listeners.common import Deps, home_view

log = logging.getLogger("kpibot.slack")


def home(event: dict[str, Any], body: dict[str, Any], client: WebClient, deps: Deps) -> None:
    """``app_home_opened``: publish the person's App Home."""
    if event.get("tab", "home") != "home":
        return
    user = str(event.get("user") or "")
    try:
        deps.service.admit(deps.admins.actor(body, user))
    except NotAllowed:
        log.info("App Home not shown to a person of another workspace")
        return
    look_up_emails(client, deps.service)  # so the person's teams come from membership
    try:
        client.views_publish(user_id=user, view=home_view(deps, user))
    except SlackApiError as exc:
        log.warning("views.publish failed: %s", exc.response.get("error"))


def register(app: App, deps: Deps) -> None:
    @app.event("app_home_opened")
    def on_home(event: dict[str, Any], body: dict[str, Any], client: WebClient) -> None:
        home(event, body, client, deps)

    @app.event("message")
    def ignore_messages() -> None:  # the Messages tab is read-only; nothing to answer
        return
