"""The personal view in Teams (Slack's App Home): in the person's 1:1 chat with kpibot,
``home`` and the bot's install there answer with the person's teams' health, their open
action items (with *Mark done*) and their teams' digests, from the core's
:meth:`~bot.chat.service.ChatService.home`, the same the Slack App Home shows."""

from __future__ import annotations

import logging
from typing import Any

from bot.renderers import adaptive
from bot.renderers.adaptive import CONTENT_TYPE, Card
from bot.teams import answers as teams_answers
from bot.teams.connector import ConnectorError
from bot.teams.invoke import Parts

log = logging.getLogger("kpibot.teams")

WORD = "home"


def is_personal(activity: dict[str, Any]) -> bool:
    conversation = activity.get("conversation") or {}
    return isinstance(conversation, dict) and conversation.get("conversationType") == "personal"


def home_answer(parts: Parts, activity: dict[str, Any], text: str, user: str) -> Card | None:
    """The answer to ``home`` (None for any other text). Elsewhere than the personal chat it
    says where to ask: the view shows the person's own items."""
    if text.strip().lower() != WORD:
        return None
    if not is_personal(activity):
        return adaptive.message(
            f"**{WORD}** is your own view: write it to kpibot in your personal chat with it."
        )
    return teams_answers.home_card(parts.service.home(user))


def welcome(parts: Parts, activity: dict[str, Any], service_url: str) -> None:
    """When kpibot is added to a person's personal chat, post their view there."""
    if not is_personal(activity):
        return
    bot_id = str((activity.get("recipient") or {}).get("id") or "")
    added = activity.get("membersAdded") or []
    if not any(isinstance(m, dict) and m.get("id") == bot_id for m in added):
        return
    conversation = str((activity.get("conversation") or {}).get("id") or "")
    sender = activity.get("from") or {}
    user = str(sender.get("aadObjectId") or sender.get("id") or "")
    if not conversation or not user:
        return
    card = teams_answers.home_card(parts.service.home(user))
    message = {"type": "message", "attachments": [{"contentType": CONTENT_TYPE, "content": card}]}
    try:
        parts.connector.send(service_url, conversation, message)
    except (ConnectorError, OSError, ValueError) as exc:
        log.warning("posting the personal view to Teams failed: %s", exc)
