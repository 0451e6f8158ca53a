"""Teams buttons of threshold alerts, each a function of (service, actor, data) answering
with an Adaptive Card: *Turn this alert off* (verb ``alert_off``). *How is this computed?*
uses a metric card's verb and data (``how_computed``, ``{"m", "t", "p"}``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.chat import answers as ans
from bot.chat.permissions import Actor, NotAllowed
from bot.chat.service import ChatService
from bot.errors import KpibotError
from bot.renderers.adaptive import Card
from bot.teams import answers as teams_answers

OLDER = "that button is from an older message"


def alert_off(service: ChatService, actor: Actor, data: Mapping[str, Any]) -> Card:
    """Switch the alert of the card's team and KPI off, when ``actor`` may."""
    try:
        metric, team = str(data["m"]), str(data["t"])
    except (KeyError, TypeError):
        return teams_answers.card(ans.Problem(f"{OLDER.capitalize()}."))
    answer: ans.Answer
    try:
        answer = service.set_alert(team, metric, False, actor)
    except NotAllowed as exc:
        answer = ans.Refused(str(exc))
    except KpibotError as exc:
        answer = ans.Problem(str(exc))
    return teams_answers.card(answer)
