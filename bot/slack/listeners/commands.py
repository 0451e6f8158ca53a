"""``/kpi``: parse at once; answer help and mistakes in the ack itself, open the modal right
after the ack, and run everything else after the ack, answering through ``respond()`` (a
report when the worker processes have room for it; otherwise the ack says busy)."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.chat.grammar import ParseError, parse
from bot.chat.permissions import NotAllowed
from bot.errors import KpibotError
from bot.slack import blocks
from bot.slack.listeners.common import Deps, answer_command, open_item_modal, refusal, reply


def register(app: App, deps: Deps) -> None:
    @app.command("/kpi")
    def kpi(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        handle_kpi(deps, ack, body, respond, client)


def handle_kpi(
    deps: Deps, ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient
) -> None:
    svc = deps.service
    text = str(body.get("text") or "")
    user = str(body.get("user_id") or "")
    channel = body.get("channel_id")
    try:
        svc.admit(deps.admins.actor(body, user, admin=False))
    except NotAllowed as exc:
        ack(**refusal(exc))
        return
    try:
        cmd = parse(text, svc.team_names())
    except ParseError as exc:
        ack(**blocks.error_payload(str(exc), exc.suggestions))
        return
    if cmd.kind == "help":
        try:
            channel_team = svc.channel_team(channel)
        except KpibotError:
            channel_team = None
        ack(**blocks.help_payload(channel_team, svc.team_names()))
        return
    if cmd.kind == "action_add":
        ack()
        problem = open_item_modal(
            deps,
            client,
            trigger_id=str(body.get("trigger_id") or ""),
            user=user,
            channel=channel,
            team=cmd.team,
            kpi=cmd.metric,
        )
        if problem:
            reply(deps, respond, client, blocks.message(problem), channel=channel, user=user)
        return

    def answer(payload: dict[str, Any]) -> None:
        reply(deps, respond, client, payload, channel=channel, user=user)

    answer_command(deps, cmd, text, user, channel, body=body, client=client, ack=ack, answer=answer)
