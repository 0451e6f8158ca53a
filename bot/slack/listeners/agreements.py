"""The buttons of a working-agreement message: *Snooze 1 day*, *Exclude from metrics* (a
modal asks why) and *Open PR* (a link: only acknowledged). The core
(:mod:`bot.chat.agreements`) decides and writes; this parses, calls and renders."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.chat import agreements as core
from bot.chat.permissions import NotAllowed
from bot.errors import KpibotError
from bot.renderers import blocks as kit
from bot.slack import answers, blocks, replies
from bot.slack.listeners.actions import _value, guarded
from bot.slack.listeners.common import Deps, reply, say_beside

log = logging.getLogger("kpibot.slack")

EXCLUDE_CALLBACK = "agreement_exclude"
B_REASON = "reason"


def agreement_snooze(
    deps: Deps,
    body: dict[str, Any],
    respond: Respond,
    client: WebClient,
    user: str,
    channel: str | None,
) -> None:
    notice = core.snooze(deps.service, deps.admins.actor(body, user), _value(body))
    reply(
        deps,
        respond,
        client,
        answers.payload(notice),
        channel=channel,
        user=user,
        replace_original=False,
    )


def exclude_modal(value: str, channel: str | None) -> dict[str, Any]:
    """The modal asking a lead why a PR should be left out of the metrics."""
    return {
        "type": "modal",
        "callback_id": EXCLUDE_CALLBACK,
        "private_metadata": json.dumps({"value": value, "channel": channel}),
        "title": {"type": "plain_text", "text": "Exclude from metrics"},
        "submit": {"type": "plain_text", "text": "Exclude"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "The PR will count for none of the team's KPIs and never be in "
                    "breach of an agreement again. Your name and reason are recorded.",
                    "verbatim": True,
                },
            },
            {
                "type": "input",
                "block_id": B_REASON,
                "label": {"type": "plain_text", "text": "Why?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "multiline": True,
                    "max_length": core.MAX_REASON,
                },
            },
        ],
    }


def agreement_exclude(
    deps: Deps,
    body: dict[str, Any],
    respond: Respond,
    client: WebClient,
    user: str,
    channel: str | None,
) -> None:
    value = _value(body)
    core.check_exclude(deps.service, deps.admins.actor(body, user), value)
    try:
        client.views_open(
            trigger_id=str(body.get("trigger_id") or ""), view=exclude_modal(value, channel)
        )
    except SlackApiError as exc:
        log.warning("views.open failed: %s", exc.response.get("error"))
        say_beside(deps, respond, client, replies.advice(exc), channel=channel, user=user)


def submit_exclude(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, deps: Deps
) -> None:
    user = str((body.get("user") or {}).get("id") or "")
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
        value = str(meta["value"])
    except (ValueError, KeyError, TypeError):
        ack(response_action="errors", errors={B_REASON: core.OLD_BUTTON})
        return
    channel = meta.get("channel") if isinstance(meta.get("channel"), str) else None
    values = (view.get("state") or {}).get("values") or {}
    reason = str(((values.get(B_REASON) or {}).get("value") or {}).get("value") or "")
    try:
        notice = core.exclude(deps.service, deps.admins.actor(body, user), value, reason)
    except NotAllowed as exc:
        ack(response_action="errors", errors={B_REASON: str(exc)[:150]})
        return
    except KpibotError as exc:
        ack(response_action="errors", errors={B_REASON: str(exc)[:150]})
        return
    ack()
    note = blocks.message(notice.text)
    problem = replies.post(client, channel, note) if channel else "no channel"
    if problem:
        replies.post(client, user, note)


def agreement_open(ack: Ack) -> None:
    """*Open PR* is a link button: Slack opens it; the click is only acknowledged."""
    ack()


def register(app: App, deps: Deps) -> None:
    app.action(re.compile(rf"^{kit.AGREEMENT_SNOOZE}(:|$)"))(guarded(deps, agreement_snooze))
    app.action(re.compile(rf"^{kit.AGREEMENT_EXCLUDE}(:|$)"))(guarded(deps, agreement_exclude))
    app.action(re.compile(rf"^{kit.AGREEMENT_OPEN}(:|$)"))(agreement_open)

    @app.view(EXCLUDE_CALLBACK)
    def on_exclude(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        submit_exclude(ack, body, view, client, deps)


__all__ = ["register"]
