"""Buttons: Share in channel, How is this computed?, Log action, Show chart, Mark done, Edit,
Reopen, the team picker, the digest's Details and an alert's Turn this alert off. Every one
acks first."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.chat.answers import digest_details_command
from bot.chat.grammar import ParseError, parse
from bot.chat.permissions import NotAllowed
from bot.errors import KpibotError
from bot.metrics import registry
from bot.renderers import charts
from bot.slack import answers, blocks, replies
from bot.slack.listeners.common import (
    OOPS,
    Deps,
    home_view,
    open_item_modal,
    refusal,
    reply,
    run_command,
    say_beside,
)

log = logging.getLogger("kpibot.slack")


def _ids(body: dict[str, Any]) -> tuple[str, str | None]:
    user = str((body.get("user") or {}).get("id") or "")
    channel = (body.get("channel") or {}).get("id")
    return user, channel


Button = Callable[[Deps, dict[str, Any], Respond, WebClient, str, str | None], None]
"""A button's work: (deps, body, respond, client, user, channel), after the ack."""


def _value(body: dict[str, Any]) -> str:
    acts = body.get("actions") or [{}]
    return str(acts[0].get("value") or "")


def guarded(deps: Deps, fn: Button) -> Any:
    """Run a button's work after ack; domain errors and crashes become an ephemeral note."""

    def listener(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()
        user, channel = _ids(body)
        try:
            deps.service.admit(deps.admins.actor(body, user, admin=False))
            fn(deps, body, respond, client, user, channel)
        except NotAllowed as exc:
            reply(
                deps,
                respond,
                client,
                refusal(exc),
                channel=channel,
                user=user,
                replace_original=False,
            )
        except KpibotError as exc:
            reply(
                deps,
                respond,
                client,
                blocks.error_payload(str(exc)),
                channel=channel,
                user=user,
                replace_original=False,
            )
        except Exception:
            log.exception("button %s failed", fn.__name__)
            reply(
                deps,
                respond,
                client,
                blocks.error_payload(OOPS),
                channel=channel,
                user=user,
                replace_original=False,
            )

    listener.__name__ = fn.__name__
    return listener


def share_card(
    deps: Deps,
    body: dict[str, Any],
    respond: Respond,
    client: WebClient,
    user: str,
    channel: str | None,
) -> None:
    metric, team, period = deps.service.card_ref(_value(body))
    if not channel:
        raise KpibotError("there's no channel to share this in")
    card = deps.report("card", team, metric, period)
    problem = replies.post(client, channel, blocks.shared_card_payload(card, user))
    if problem:
        say_beside(deps, respond, client, problem, channel=channel, user=user)


def how_computed(
    deps: Deps,
    body: dict[str, Any],
    respond: Respond,
    client: WebClient,
    user: str,
    channel: str | None,
) -> None:
    metric = _value(body)
    team = deps.service.channel_team(channel)
    reply(
        deps,
        respond,
        client,
        answers.payload(deps.service.definition(metric, team)),
        channel=channel,
        user=user,
        replace_original=False,
    )


def alert_off(
    deps: Deps,
    body: dict[str, Any],
    respond: Respond,
    client: WebClient,
    user: str,
    channel: str | None,
) -> None:
    """*Turn this alert off* under a threshold alert (admins and the team's leads)."""
    metric, team, _ = deps.service.card_ref(_value(body))
    notice = deps.service.set_alert(team, metric, False, deps.admins.actor(body, user))
    reply(
        deps,
        respond,
        client,
        answers.payload(notice),
        channel=channel,
        user=user,
        replace_original=False,
    )


def log_action(
    deps: Deps,
    body: dict[str, Any],
    respond: Respond,
    client: WebClient,
    user: str,
    channel: str | None,
) -> None:
    team, _, kpi = _value(body).partition("|")
    problem = open_item_modal(
        deps,
        client,
        trigger_id=str(body.get("trigger_id") or ""),
        user=user,
        channel=channel,
        team=team if team in deps.service.team_names() else None,
        kpi=kpi if kpi in registry.BY_ID else None,
    )
    if problem:
        say_beside(deps, respond, client, problem, channel=channel, user=user)


def show_chart(
    deps: Deps,
    body: dict[str, Any],
    respond: Respond,
    client: WebClient,
    user: str,
    channel: str | None,
) -> None:
    metric, team, period = deps.service.card_ref(_value(body))
    card = deps.report("card", team, metric, period)
    uploads = charts.card_uploads(card)
    comment = charts.alt_text(card)
    try:
        client.files_upload_v2(
            channel=channel,
            file_uploads=[
                {"content": u.png, "filename": u.filename, "title": u.title, "alt_txt": u.alt}
                for u in uploads
            ],
            initial_comment=comment[:3000],
        )
    except SlackApiError as exc:
        log.warning("chart upload failed: %s", exc.response.get("error"))
        reply(
            deps,
            respond,
            client,
            blocks.message(replies.advice(exc)),
            channel=channel,
            user=user,
            replace_original=False,
        )


def _change(
    deps: Deps,
    body: dict[str, Any],
    respond: Respond,
    client: WebClient,
    user: str,
    channel: str | None,
    done: bool | None,
) -> None:
    raw_id, _, scope = _value(body).partition("|")
    if not raw_id.isdigit():
        raise KpibotError("that button is from an older message: run `/kpi actions` again")
    actor = deps.admins.actor(body, user)
    if done is None:
        item = deps.service.editable_item(int(raw_id), actor)
        problem = open_item_modal(
            deps,
            client,
            trigger_id=str(body.get("trigger_id") or ""),
            user=user,
            channel=channel,
            team=item.team,
            kpi=item.kpi,
            item_id=item.id,
        )
        if problem:
            say_beside(deps, respond, client, problem, channel=channel, user=user)
        return
    item = deps.service.set_done(int(raw_id), done, actor)
    container = body.get("container") or {}
    if scope == "home" or container.get("type") == "view":
        client.views_publish(user_id=user, view=home_view(deps, user))
        return
    refreshed = answers.payload(deps.service.actions_list(item.team, scope == "all"))
    reply(deps, respond, client, refreshed, channel=channel, user=user, replace_original=True)


def item_done(
    deps: Deps,
    body: dict[str, Any],
    respond: Respond,
    client: WebClient,
    user: str,
    channel: str | None,
) -> None:
    _change(deps, body, respond, client, user, channel, True)


def item_reopen(
    deps: Deps,
    body: dict[str, Any],
    respond: Respond,
    client: WebClient,
    user: str,
    channel: str | None,
) -> None:
    _change(deps, body, respond, client, user, channel, False)


def item_edit(
    deps: Deps,
    body: dict[str, Any],
    respond: Respond,
    client: WebClient,
    user: str,
    channel: str | None,
) -> None:
    _change(deps, body, respond, client, user, channel, None)


def pick_team(
    deps: Deps,
    body: dict[str, Any],
    respond: Respond,
    client: WebClient,
    user: str,
    channel: str | None,
) -> None:
    try:
        data = json.loads(_value(body))
        text = f"{data['text']} {data['team']}"
    except (ValueError, KeyError, TypeError):
        raise KpibotError("that button is from an older message: run the command again") from None
    try:
        cmd = parse(text, deps.service.team_names())
    except ParseError as exc:
        payload = blocks.error_payload(str(exc), exc.suggestions)
    else:
        payload = run_command(deps, cmd, text, user, channel, body=body, client=client)
    reply(deps, respond, client, payload, channel=channel, user=user, replace_original=True)


def digest_details(
    deps: Deps,
    body: dict[str, Any],
    respond: Respond,
    client: WebClient,
    user: str,
    channel: str | None,
) -> None:
    team, _kind, label = [*_value(body).split("|"), "", "", ""][:3]
    if team not in deps.service.team_names():
        raise KpibotError("that digest's team is no longer configured")
    text = digest_details_command(team, label)
    cmd = parse(text, deps.service.team_names())
    reply(
        deps,
        respond,
        client,
        run_command(deps, cmd, text, user, channel, body=body, client=client),
        channel=channel,
        user=user,
        replace_original=False,
    )


BUTTONS: tuple[Button, ...] = (
    share_card,
    how_computed,
    log_action,
    show_chart,
    item_done,
    item_reopen,
    item_edit,
    digest_details,
    alert_off,
)


def register(app: App, deps: Deps) -> None:
    for fn in BUTTONS:
        app.action(fn.__name__)(guarded(deps, fn))
    app.action(re.compile(r"^pick_team_\d+$"))(guarded(deps, pick_team))
