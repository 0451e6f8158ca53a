"""The action-item dialog (Teams' task module): the same fields as Slack's modal
(:data:`bot.chat.items.FIELDS`), opened by ``task/fetch`` and saved by ``task/submit``.

``task/fetch`` answers with the dialog (a ``continue`` task holding an Adaptive Card,
pre-filled: the KPI and its baseline from a metric card's *Log action*, the item for
*Edit*). ``task/submit`` hands the fields to the core (:meth:`ChatService.save_item`: the
validation, the permission for an edit, the baseline); invalid input gets the dialog again
with the submitted values and an error under each wrong field, and nothing is stored. A
saved item closes the dialog and is confirmed in the conversation. The submission's key is
the invoke activity's id, so a replayed delivery stores nothing a second time.

Responses are the Teams SDK's task-module models (``TaskModuleResponse``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from microsoft_teams.api.models.attachment.attachment import Attachment
from microsoft_teams.api.models.task_module.task_module_continue_response import (
    TaskModuleContinueResponse,
)
from microsoft_teams.api.models.task_module.task_module_message_response import (
    TaskModuleMessageResponse,
)
from microsoft_teams.api.models.task_module.task_module_response import TaskModuleResponse
from microsoft_teams.api.models.task_module.task_module_task_info import CardTaskModuleTaskInfo
from microsoft_teams.cards import (
    CardElement,
    Choice,
    ChoiceSetInput,
    DateInput,
    SubmitAction,
    TextBlock,
    TextInput,
)

from bot.chat.grammar import Command
from bot.chat.items import MAX_OPPORTUNITY, MAX_RESOLUTION, ItemInput, ItemRow
from bot.chat.service import ChatService
from bot.errors import KpibotError
from bot.metrics import registry
from bot.renderers import adaptive
from bot.renderers import format as fmt
from bot.renderers.adaptive import CONTENT_TYPE, Card, escape
from bot.teams import answers as teams_answers
from bot.teams.roster import Member

log = logging.getLogger("kpibot.teams")

SAVE_VERB = "save_item"
Response = dict[str, Any]


def dialog(title: str, card: Card) -> Response:
    """A ``continue`` task: the dialog showing ``card``."""
    info = CardTaskModuleTaskInfo(
        title=title,
        height="large",
        width="medium",
        card=Attachment(content_type=CONTENT_TYPE, content=card),
    )
    return TaskModuleResponse(task=TaskModuleContinueResponse(value=info)).model_dump(
        by_alias=True, exclude_none=True
    )


def message(text: str) -> Response:
    """A ``message`` task: Teams shows ``text`` in the dialog (or closes it with it)."""
    return TaskModuleResponse(task=TaskModuleMessageResponse(value=text)).model_dump(
        by_alias=True, exclude_none=True
    )


def _error(errors: Mapping[str, str], field: str) -> list[CardElement]:
    if field not in errors:
        return []
    return [
        TextBlock(
            text=f"⚠️ {escape(errors[field])}",
            wrap=True,
            color="Attention",
            spacing="None",
            size="Small",
        )
    ]


def form(
    *,
    teams: Sequence[str],
    values: ItemInput,
    people: Sequence[Member],
    item_id: int | None,
    baseline: str | None = None,
    errors: Mapping[str, str] | None = None,
) -> Card:
    """The dialog's card: team, related KPI, opportunity, resolution, owner, due date (and
    the baseline), with ``values`` filled in and ``errors`` under their fields."""
    errors = errors or {}
    owners = list(people)
    if values.owner and all(p.user_id != values.owner for p in owners):
        owners.insert(0, Member(values.owner, "the current owner", None, False))
    body: list[CardElement] = [
        ChoiceSetInput(
            id="team",
            label="Team",
            is_required=True,
            error_message="Pick the team this action is for.",
            choices=[Choice(title=t, value=t) for t in teams[:100]],
            value=values.team if values.team in teams else None,
        ),
        *_error(errors, "team"),
        ChoiceSetInput(
            id="kpi",
            label="Related KPI (optional)",
            placeholder="None",
            choices=[Choice(title=m.name, value=m.id) for m in registry.METRICS],
            value=values.kpi if values.kpi in registry.BY_ID else None,
        ),
        *_error(errors, "kpi"),
        TextInput(
            id="opportunity",
            label="Opportunity / challenge",
            is_multiline=True,
            is_required=True,
            max_length=MAX_OPPORTUNITY,
            placeholder="e.g. PRs wait a day for their first review",
            value=values.opportunity or None,
        ),
        *_error(errors, "opportunity"),
        TextInput(
            id="resolution",
            label="Resolution",
            is_multiline=True,
            is_required=True,
            max_length=MAX_RESOLUTION,
            placeholder="e.g. a daily review slot after stand-up",
            value=values.resolution or None,
        ),
        *_error(errors, "resolution"),
        ChoiceSetInput(
            id="owner",
            label="Owner",
            is_required=True,
            choices=[Choice(title=p.name, value=p.user_id) for p in owners[:100]],
            value=values.owner or None,
        ),
        *_error(errors, "owner"),
        DateInput(id="due_on", label="Due by", is_required=True, value=values.due_on or None),
        *_error(errors, "due_on"),
    ]
    if baseline:
        body.append(adaptive.note(f"Baseline when logged: {escape(baseline)}"))
    save = SubmitAction(title="Save", data={"verb": SAVE_VERB, "item": item_id})
    return adaptive.card(body, [save])


def read_input(data: Mapping[str, Any]) -> ItemInput:
    """The submitted fields (``task/submit``'s ``value.data``) as plain fields."""

    def text(name: str) -> str:
        v = data.get(name)
        return v if isinstance(v, str) else ""

    return ItemInput(
        team=text("team") or None,
        kpi=text("kpi") or None,
        opportunity=text("opportunity"),
        resolution=text("resolution"),
        owner=text("owner") or None,
        due_on=text("due_on") or None,
    )


def open_form(
    svc: ChatService,
    *,
    user: str,
    team: str | None,
    kpi: str | None,
    people: Sequence[Member],
    item: ItemRow | None = None,
) -> Response:
    """The dialog for a new item (``team``, ``kpi`` pre-filled) or an edit of ``item``."""
    if item is not None:
        values = ItemInput(
            item.team,
            item.kpi,
            item.opportunity,
            item.resolution,
            item.owner,
            item.due_on.isoformat(),
        )
        baseline = fmt.baseline(item.kpi, item.baseline) if item.kpi else ""
    else:
        values = ItemInput(team, kpi if kpi in registry.BY_ID else None, "", "", user, None)
        baseline = ""
        if team and values.kpi:
            value, n = svc.baseline(team, values.kpi)
            baseline = fmt.baseline(values.kpi, value, n) + " over the last 28 days"
    card = form(
        teams=svc.team_names(),
        values=values,
        people=people,
        item_id=item.id if item else None,
        baseline=baseline or None,
    )
    return dialog("Edit action item" if item else "Log an action item", card)


def invalid(
    svc: ChatService,
    data: ItemInput,
    errors: Mapping[str, str],
    people: Sequence[Member],
    item_id: int | None,
) -> Response:
    """The dialog again, as submitted, with the core's errors under their fields."""
    card = form(teams=svc.team_names(), values=data, people=people, item_id=item_id, errors=errors)
    return dialog("Edit action item" if item_id else "Log an action item", card)


OwnerTenant = Callable[[str], str | None]


def command_card(svc: ChatService, cmd: Command, user: str, conversation: str | None) -> Card:
    """The answer to ``action add [team] [kpi]``: a message cannot open a dialog in Teams,
    so a card whose button opens it, pre-filled."""
    team = cmd.team
    if team is None:
        try:
            team = svc.resolve_team(None, conversation, user)
        except KpibotError:
            team = None
    return teams_answers.open_dialog(team, cmd.metric)
