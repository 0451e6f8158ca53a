"""The Teams side of a working-agreement card's buttons (``Action.Execute`` verbs
``agreement_snooze`` and ``agreement_exclude``): each handler takes the Teams
:class:`~bot.chat.service.ChatService`, the :class:`Actor` and the action's ``data`` and
returns the card to show, so the invoke registry maps a verb to it in one line::

    HANDLERS = {"agreement_snooze": on_snooze, "agreement_exclude": on_exclude}

*Exclude from metrics* first answers with a dialog card asking why (leads and admins only);
its *Exclude* sends the same verb with the ``reason`` input, which records the exclusion.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.chat import agreements as core
from bot.chat import answers as ans
from bot.chat.permissions import Actor, NotAllowed
from bot.chat.service import ChatService
from bot.errors import KpibotError
from bot.renderers import adaptive
from bot.teams.answers import card

Card = dict[str, Any]


def _answer(fn: Any) -> Card:
    try:
        return card(fn())
    except NotAllowed as exc:
        return card(ans.Refused(str(exc)))
    except KpibotError as exc:
        return card(ans.Problem(str(exc)))


def on_snooze(service: ChatService, actor: Actor, data: Mapping[str, Any]) -> Card:
    return _answer(lambda: core.snooze(service, actor, data))


def on_exclude(service: ChatService, actor: Actor, data: Mapping[str, Any]) -> Card:
    reason = data.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        try:
            core.check_exclude(service, actor, data)
            team, pr = core.button_data(data)
        except NotAllowed as exc:
            return card(ans.Refused(str(exc)))
        except KpibotError as exc:
            return card(ans.Problem(str(exc)))
        return adaptive.exclude_dialog({"t": team, "pr": pr})
    return _answer(lambda: core.exclude(service, actor, data, reason))


HANDLERS = {
    adaptive.AGREEMENT_SNOOZE: on_snooze,
    adaptive.AGREEMENT_EXCLUDE: on_exclude,
}
