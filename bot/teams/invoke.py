"""Teams ``invoke`` activities: card buttons (``adaptiveCard/action``, sent by
``Action.Execute``) and the dialog (``task/fetch`` opens it, ``task/submit`` saves it).

Every one is dispatched by its *verb* through :data:`VERBS`, a registry ``verb -> handler``.
A handler gets an :class:`Invoke` (the verb, the button's data, who asks and where, and the
surface's parts in :class:`Parts`) and returns the invoke response's body. A feature plugs
in with one line::

    VERBS["snooze_day"] = snooze_day          # or: @verb("snooze_day") on the handler

For ``adaptiveCard/action`` the body is the Teams SDK's Adaptive Card action response:
:func:`card_response` (the card shown in place of the one clicked) or
:func:`message_response` (a short message beside it). For ``task/fetch`` and
``task/submit`` it is a task-module response (:mod:`bot.teams.dialogs`). A handler raising
:class:`~bot.chat.permissions.NotAllowed` or :class:`~bot.errors.KpibotError` answers with
the core's sentence and changes nothing; any other failure is logged and answered with a
generic apology. The person must be of the installed tenant (the core's ``admit``) before
any handler runs.

The verbs here: ``share_card``, ``how_computed``, ``show_chart``, ``show_card`` (a metric
card's buttons), ``log_action`` and ``action_add`` (the dialog for a new item),
``item_edit`` (the dialog for an item), ``save_item`` (the dialog's *Save*),
``item_done``, ``item_reopen`` (an item list's buttons), ``pick`` (the team picker) and
``digest_details``, ``show_digest`` (a weekly digest's *Details* and its way back).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from microsoft_teams.api.models.adaptive_card.adaptive_card_action_response import (
    AdaptiveCardActionMessageResponse,
)

from bot.chat import answers as ans
from bot.chat.permissions import Actor, NotAllowed
from bot.chat.service import ChatService, InvalidItem
from bot.errors import KpibotError
from bot.metrics import registry
from bot.metrics.periods import looks_like_period
from bot.renderers import adaptive, charts
from bot.renderers.adaptive import CONTENT_TYPE, Card
from bot.teams import agreements as teams_agreements
from bot.teams import alerts as teams_alerts
from bot.teams import answers as teams_answers
from bot.teams import dialogs
from bot.teams.charts import ChartLinks
from bot.teams.connector import Connector, ConnectorError
from bot.teams.roster import Member, Roster

log = logging.getLogger("kpibot.teams")

ACTION = "adaptiveCard/action"
FETCH = "task/fetch"
SUBMIT = "task/submit"
NAMES = (ACTION, FETCH, SUBMIT)

Response = dict[str, Any]


@dataclass(frozen=True)
class Parts:
    """What handlers use of the surface."""

    service: ChatService
    connector: Connector
    roster: Roster
    charts: ChartLinks
    #: a typed command's card: (text, user, conversation, tenant) -> card
    command: Callable[[str, str, str, str | None], Card]


@dataclass(frozen=True)
class Invoke:
    name: str  # adaptiveCard/action, task/fetch, task/submit
    verb: str
    data: dict[str, Any]
    activity: dict[str, Any]
    user: str
    user_name: str
    conversation: str
    service_url: str
    tenant: str | None
    actor: Actor
    parts: Parts

    @property
    def svc(self) -> ChatService:
        return self.parts.service


Handler = Callable[[Invoke], Response]
VERBS: dict[str, Handler] = {}


def verb(name: str) -> Callable[[Handler], Handler]:
    """Register a handler for ``name`` in :data:`VERBS`."""

    def register(fn: Handler) -> Handler:
        VERBS[name] = fn
        return fn

    return register


def card_response(card: Card) -> Response:
    """The card shown in place of the clicked one (``AdaptiveCardActionCardResponse``)."""
    return {"statusCode": 200, "type": CONTENT_TYPE, "value": card}


def message_response(text: str) -> Response:
    return AdaptiveCardActionMessageResponse(value=text).model_dump(by_alias=True)


def _reply(name: str, text: str) -> Response:
    return dialogs.message(text) if name in (FETCH, SUBMIT) else message_response(text)


def _verb_and_data(name: str, value: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(value, dict):
        return "", {}
    if name == ACTION:
        action = value.get("action")
        if not isinstance(action, dict):
            return "", {}
        data = action.get("data")
        return str(action.get("verb") or ""), data if isinstance(data, dict) else {}
    data = value.get("data")
    if not isinstance(data, dict):
        return "", {}
    return str(data.get("verb") or ""), data


def handle(
    activity: dict[str, Any],
    parts: Parts,
    *,
    user: str,
    conversation: str,
    service_url: str,
    tenant: str | None,
) -> Response:
    """The invoke response body for an authenticated invoke activity."""
    name = str(activity.get("name") or "")
    verb_name, data = _verb_and_data(name, activity.get("value"))
    handler = VERBS.get(verb_name)
    if name not in NAMES:
        log.info("Teams invoke %s not handled", name or "without a name")
        return {}
    if handler is None or not user or not conversation:
        log.info("Teams invoke %s (%s) not handled", name, verb_name or "no verb")
        return _reply(name, "That button is from an older message: run the command again.")
    sender = activity.get("from") or {}
    inv = Invoke(
        name,
        verb_name,
        data,
        activity,
        user,
        str(sender.get("name") or "someone"),
        conversation,
        service_url,
        tenant,
        parts.roster.actor(user, tenant),
        parts,
    )
    try:
        parts.service.admit(inv.actor)
        return handler(inv)
    except NotAllowed as exc:
        return _reply(name, str(exc))
    except KpibotError as exc:
        text = str(exc)
        return _reply(name, text[:1].upper() + text[1:])
    except Exception:
        log.exception("Teams button %s failed", verb_name)
        return _reply(name, ans.OOPS)


# --- a metric card's buttons ----------------------------------------------------------------


def _ref(inv: Invoke) -> tuple[str, str, str]:
    return inv.svc.card_ref(json.dumps(inv.data))


@verb("show_card")
def show_card(inv: Invoke) -> Response:
    metric, team, period = _ref(inv)
    return card_response(adaptive.metric_card(inv.svc.card(team, metric, period)))


@verb("share_card")
def share_card(inv: Invoke) -> Response:
    """Post the card (without buttons) to the conversation for everyone."""
    metric, team, period = _ref(inv)
    card = inv.svc.card(team, metric, period)
    shared = adaptive.metric_card(card, buttons=False, shared_by=inv.user_name)
    message = {
        "type": "message",
        "attachments": [{"contentType": CONTENT_TYPE, "content": shared}],
    }
    try:
        inv.parts.connector.send(inv.service_url, inv.conversation, message)
    except (ConnectorError, OSError, ValueError) as exc:
        log.warning("sharing a card in Teams failed: %s", exc)
        return message_response("I couldn't post the card in this conversation; try again.")
    return card_response(adaptive.metric_card(card))


@verb("how_computed")
def how_computed(inv: Invoke) -> Response:
    metric, team, period = _ref(inv)
    d = inv.svc.definition(metric, team)
    back = {"m": metric, "t": team, "p": period}
    return card_response(adaptive.definition(d.spec, d.target, d.business_hours, back))


@verb("show_chart")
def show_chart(inv: Invoke) -> Response:
    metric, team, period = _ref(inv)
    card = inv.svc.card(team, metric, period)
    links = inv.parts.charts
    titles = [f"{card.name} · {card.team}"]
    if charts.has_phases(card):
        titles.append(f"{card.name} by phase · {card.team}")
    urls = [(links.url(metric, team, period, i), t) for i, t in enumerate(titles)]
    shown = [(u, t) for u, t in urls if u]
    notice = (
        ""
        if shown
        else "Charts are shown once kpibot has a public address (KPIBOT_PUBLIC_URL); "
        "meanwhile, the numbers:"
    )
    return card_response(adaptive.chart(card, shown, charts.alt_text(card), notice))


# --- the action-item dialog -----------------------------------------------------------------


def _people(inv: Invoke) -> list[Member]:
    """The owner choices: the conversation's people (the asking person among them, also
    when the roster could not be read)."""
    people = list(inv.parts.roster.members(inv.service_url, inv.conversation))
    if all(p.user_id != inv.user for p in people):
        people.insert(0, Member(inv.user, inv.user_name, inv.tenant, False))
    return people


@verb("log_action")
@verb("action_add")
def new_item(inv: Invoke) -> Response:
    team = str(inv.data.get("t") or "") or None
    kpi = str(inv.data.get("m") or "") or None
    if team not in inv.svc.team_names():
        try:
            team = inv.svc.resolve_team(None, inv.conversation, inv.user)
        except KpibotError:
            team = None
    kpi = registry.resolve(kpi).id if kpi and _known_metric(kpi) else None
    if inv.name != FETCH:  # a button that cannot open a dialog: offer one that can
        return card_response(teams_answers.open_dialog(team, kpi))
    return dialogs.open_form(inv.svc, user=inv.user, team=team, kpi=kpi, people=_people(inv))


def _known_metric(word: str) -> bool:
    try:
        registry.resolve(word)
    except KpibotError:
        return False
    return True


def _item_id(inv: Invoke) -> int:
    raw = inv.data.get("item")
    if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).isdigit():
        raise KpibotError("that button is from an older message: run the command again")
    return int(raw)


@verb("item_edit")
def edit_item(inv: Invoke) -> Response:
    item = inv.svc.editable_item(_item_id(inv), inv.actor)
    if inv.name != FETCH:
        raise KpibotError("open the form with the card's Edit button")
    return dialogs.open_form(
        inv.svc, user=inv.user, team=item.team, kpi=item.kpi, people=_people(inv), item=item
    )


@verb(dialogs.SAVE_VERB)
def save_item(inv: Invoke) -> Response:
    raw = inv.data.get("item")
    item_id = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    data = dialogs.read_input(inv.data)
    roster = inv.parts.roster
    submission = f"teams:{inv.activity.get('id') or ''}" if inv.activity.get("id") else None
    try:
        row = inv.svc.save_item(
            data,
            inv.actor,
            inv.conversation,
            item_id,
            submission,
            owner_workspace=roster.tenant_lookup(inv.service_url, inv.conversation),
        )
    except InvalidItem as exc:
        return dialogs.invalid(inv.svc, data, exc.errors, _people(inv), item_id)
    if row is None:  # the same submission delivered again: nothing more to do
        return {}
    names = {m.user_id: m.name for m in _people(inv)}
    note = teams_answers.item_confirmation(
        row, inv.user_name, names.get(row.owner, "its owner"), edited=item_id is not None
    )
    message = {"type": "message", "attachments": [{"contentType": CONTENT_TYPE, "content": note}]}
    try:
        inv.parts.connector.send(inv.service_url, inv.conversation, message)
    except (ConnectorError, OSError, ValueError) as exc:
        log.warning("confirming an action item in Teams failed: %s", exc)
    return {}  # no task: Teams closes the dialog


# --- an item list's buttons -----------------------------------------------------------------


def _set_done(inv: Invoke, done: bool) -> Response:
    item = inv.svc.set_done(_item_id(inv), done, inv.actor)
    scope = str(inv.data.get("scope") or "open")
    if scope == "home":
        return card_response(teams_answers.home_card(inv.svc.home(inv.user)))
    answer = inv.svc.actions_list(item.team, scope == "all")
    return card_response(teams_answers.card(answer))


@verb("item_done")
def item_done(inv: Invoke) -> Response:
    return _set_done(inv, True)


@verb("item_reopen")
def item_reopen(inv: Invoke) -> Response:
    return _set_done(inv, False)


@verb("pick")
def pick_team(inv: Invoke) -> Response:
    text, team = inv.data.get("text"), inv.data.get("team")
    if not isinstance(text, str) or not isinstance(team, str):
        raise KpibotError("that button is from an older message: run the command again")
    return card_response(
        inv.parts.command(f"{text} {team}", inv.user, inv.conversation, inv.tenant)
    )


# --- a digest's buttons (Log action is the dialog's log_action) ------------------------------


DIGEST_KINDS = ("weekly", "monthly")


def _digest_ref(inv: Invoke) -> dict[str, str]:
    """The digest a button is on (team ``t``, kind ``k``, period ``p``), its team known."""
    ref = {k: inv.data.get(k) for k in ("t", "k", "p")}
    clean = {k: v for k, v in ref.items() if isinstance(v, str)}
    if len(clean) < len(ref) or clean["k"] not in DIGEST_KINDS or not looks_like_period(clean["p"]):
        raise KpibotError("that button is from an older message: run the command again")
    if clean["t"] not in inv.svc.team_names():
        raise KpibotError("that digest's team is no longer configured")
    return clean


@verb("digest_details")
def digest_details(inv: Invoke) -> Response:
    """*Details* on a digest: the team's health over the digest's period, shown in place of
    the digest to the person who asked, with a button back to it."""
    ref = _digest_ref(inv)
    text = ans.digest_details_command(ref["t"], ref["p"])
    details = inv.parts.command(text, inv.user, inv.conversation, inv.tenant)
    return card_response(adaptive.with_actions(details, [adaptive.back_to_digest(ref)]))


@verb("show_digest")
def show_digest(inv: Invoke) -> Response:
    ref = _digest_ref(inv)
    preview = inv.svc.digest(ref["t"], ref["k"], ref["p"])
    return card_response(adaptive.digest(preview.digest, inv.svc.links))


# --- other features' buttons ------------------------------------------------------------------


@verb("alert_off")
def alert_off(inv: Invoke) -> Response:
    """*Turn this alert off* on a threshold alert."""
    return card_response(teams_alerts.alert_off(inv.svc, inv.actor, inv.data))


def _agreement_handler(name: str) -> Handler:
    def handle_agreement(inv: Invoke) -> Response:
        return card_response(teams_agreements.HANDLERS[name](inv.svc, inv.actor, inv.data))

    return handle_agreement


for _name in teams_agreements.HANDLERS:  # Snooze 1 day, Exclude from metrics
    VERBS[_name] = _agreement_handler(_name)
