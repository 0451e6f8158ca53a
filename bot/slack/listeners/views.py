"""The action-item modal's submission: validate (errors inline, nothing stored), store,
close the modal, then confirm in the channel (or by direct message when that fails).

A submission is stored once: its key is the view's id and hash (the hash changes with every
update of the view, and a stored submission closes the modal), so a replayed delivery of the
same signed request is acknowledged and stores and posts nothing."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.chat.items import ItemInput
from bot.chat.service import InvalidItem
from bot.errors import KpibotError
from bot.slack import blocks, replies
from bot.slack.listeners.common import Deps

log = logging.getLogger("kpibot.slack")


def read_input(values: dict[str, Any]) -> ItemInput:
    """The modal's state (``view.state.values``) as plain fields."""

    def el(block: str) -> dict[str, Any]:
        v = values.get(block) or {}
        return dict(v.get("value") or next(iter(v.values()), {}) or {})

    def selected(block: str) -> str | None:
        opt = el(block).get("selected_option") or {}
        return opt.get("value")

    return ItemInput(
        team=selected(blocks.B_TEAM),
        kpi=selected(blocks.B_KPI),
        opportunity=str(el(blocks.B_OPPORTUNITY).get("value") or ""),
        resolution=str(el(blocks.B_RESOLUTION).get("value") or ""),
        owner=el(blocks.B_OWNER).get("selected_user"),
        due_on=el(blocks.B_DUE).get("selected_date"),
    )


#: the core's form fields (:data:`bot.chat.items.FIELDS`) -> the modal's block ids
FIELD_BLOCKS = {
    "team": blocks.B_TEAM,
    "kpi": blocks.B_KPI,
    "opportunity": blocks.B_OPPORTUNITY,
    "resolution": blocks.B_RESOLUTION,
    "owner": blocks.B_OWNER,
    "due_on": blocks.B_DUE,
}


def block_errors(errors: dict[str, str]) -> dict[str, str]:
    """The core's errors by field name, keyed by the modal's block ids."""
    return {FIELD_BLOCKS.get(name, blocks.B_OPPORTUNITY): text for name, text in errors.items()}


def submission_key(view: dict[str, Any]) -> str | None:
    """``slack:<view id>:<view hash>``; None for a view without an id."""
    view_id = view.get("id")
    if not view_id:
        return None
    return f"slack:{view_id}:{view.get('hash') or ''}"[:200]


def submit(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, deps: Deps
) -> None:
    """The action-item modal's submission: the core validates, checks who may edit and
    stores; this answers with inline errors or closes the modal and confirms."""
    svc = deps.service
    user = str((body.get("user") or {}).get("id") or "")
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        meta = {}
    channel = meta.get("channel")
    item_id = meta.get("item") if isinstance(meta.get("item"), int) else None
    data = read_input((view.get("state") or {}).get("values") or {})
    actor = deps.admins.actor(body, user, admin=item_id is not None)
    try:
        row = svc.save_item(
            data,
            actor,
            channel,
            item_id,
            submission_key(view),
            owner_workspace=deps.admins.workspace,
        )
    except InvalidItem as exc:
        ack(response_action="errors", errors=block_errors(exc.errors))
        return
    except KpibotError as exc:
        ack(response_action="errors", errors={blocks.B_OPPORTUNITY: str(exc)[:150]})
        return
    ack()
    if row is None:  # the same submission delivered again: answered, nothing to do
        return
    note = blocks.item_confirmation(row, user, edited=item_id is not None)
    problem = replies.post(client, channel, note) if channel else "no channel"
    if problem:
        replies.post(client, user, note)


def register(app: App, deps: Deps) -> None:
    @app.view(blocks.MODAL_CALLBACK)
    def on_submit(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        submit(ack, body, view, client, deps)
