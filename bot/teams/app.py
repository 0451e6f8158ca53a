"""``POST /api/messages``: Microsoft Teams activities, served by HTTP mode's route table.

Every request is authenticated before its body is read (:mod:`bot.teams.auth`: a Bot
Framework token for this app id, else 401). The handler then parses the activity (a body
that is no activity object: 400), checks that the token was issued for the activity's
``serviceUrl`` (else 401) and, when ``TEAMS_TENANT_ID`` is set, that the activity comes from
that tenant (else 403); nothing is stored or posted before these pass.

A message (``@kpibot <command>`` in a channel or group chat, the command as plain text in
the personal chat) is parsed with the ``/kpi`` grammar, answered by the chat-neutral core
(:class:`~bot.chat.service.ChatService` for platform ``teams``) and the answer posted back
to the conversation through the connector as an Adaptive Card. ``invoke`` activities (card
buttons, the action-item dialog) are answered in the HTTP response by
:mod:`bot.teams.invoke`; the personal chat's ``home`` and the bot's install there get the
person's own view (:mod:`bot.teams.personal`). Other activity types are acknowledged.
"""

from __future__ import annotations

import html
import json
import logging
import re
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.chat.grammar import ParseError, parse
from bot.chat.service import ChatService, Clock, system_clock
from bot.errors import ConfigError
from bot.renderers.adaptive import CONTENT_TYPE, Card
from bot.settings import Config, Settings
from bot.store.subscriptions import Reference
from bot.surfaces.http import HttpApp, HttpRequest, HttpResponse
from bot.teams import answers as teams_answers
from bot.teams import dialogs, invoke, personal
from bot.teams.answers import TeamsVoice
from bot.teams.auth import ActivityAuth, NotAuthenticated
from bot.teams.charts import ChartLinks
from bot.teams.connector import Connector, ConnectorError
from bot.teams.roster import Roster

log = logging.getLogger("kpibot.teams")

PATH = "/api/messages"
MAX_ACTIVITY = 256 * 1024  # Teams activities are far smaller
_AT = re.compile(r"<at>[^<]*</at>", re.IGNORECASE)


def command_text(activity: dict[str, Any]) -> str:
    """The text of a message with the bot's own mention taken out (Teams puts
    ``<at>kpibot</at>`` where the person typed @kpibot)."""
    text = str(activity.get("text") or "")
    bot_id = str((activity.get("recipient") or {}).get("id") or "")
    for entity in activity.get("entities") or []:
        if not isinstance(entity, dict) or entity.get("type") != "mention":
            continue
        mentioned = entity.get("mentioned") or {}
        if isinstance(mentioned, dict) and mentioned.get("id") == bot_id and entity.get("text"):
            text = text.replace(str(entity["text"]), " ")
    if bot_id == "":
        text = _AT.sub(" ", text)
    return " ".join(html.unescape(text).split())


class TeamsSurface:
    def __init__(
        self,
        settings: Settings,
        factory: sessionmaker[Session],
        config: Config,
        *,
        clock: Clock = system_clock,
        connector: Connector | None = None,
        auth: ActivityAuth | None = None,
    ) -> None:
        self.app_id = settings.teams_app_id or ""
        self.tenant = settings.teams_tenant_id
        self.auth = auth or ActivityAuth(self.app_id, settings.teams_openid_url)
        self.connector = connector or Connector(
            self.app_id, settings.teams_app_password or "", settings.teams_token_url
        )
        self.service = ChatService(factory, config, clock, TeamsVoice())
        self.service.home_workspace = self.tenant
        self.roster = Roster(self.connector, settings.teams_admins)
        # chart links are signed with a key from the client secret: none without it
        secret = settings.teams_app_password or ""
        self.charts = ChartLinks(secret, settings.public_url if secret else None)
        self.parts = invoke.Parts(
            self.service, self.connector, self.roster, self.charts, self.card_for
        )

    def install(self, http_app: HttpApp) -> None:
        http_app.add_route("POST", PATH, self.messages, max_body=MAX_ACTIVITY, verify=self.verify)
        self.charts.install(http_app, lambda m, t, p: self.service.card(t, m, p))

    # ------------------------------------------------------------------ requests

    def verify(self, req: HttpRequest) -> bool:
        """The bearer token is a Bot Framework token for this app (body unread)."""
        try:
            self.auth.claims(req.headers.get("authorization"))
        except NotAuthenticated as exc:
            log.warning("Teams activity refused: %s", exc)
            return False
        return True

    def messages(self, req: HttpRequest) -> HttpResponse:
        try:
            activity = json.loads(req.body)
        except (ValueError, RecursionError):
            activity = None
        service_url = activity.get("serviceUrl") if isinstance(activity, dict) else None
        if not isinstance(activity, dict) or not isinstance(service_url, str) or not service_url:
            log.warning("Teams request that is no activity refused (400)")
            return HttpResponse.json({"error": "malformed activity"}, status=400)
        try:
            self.auth.claims(req.headers.get("authorization"), service_url)
        except NotAuthenticated as exc:
            log.warning("Teams activity refused: %s", exc)
            return HttpResponse.json({"error": "invalid request"}, status=401)
        tenant = tenant_of(activity)
        if self.tenant and tenant != self.tenant:
            log.warning("Teams activity from another tenant refused (403)")
            return HttpResponse.json({"error": "this bot serves another tenant"}, status=403)
        if activity.get("type") == "message":
            self.answer_message(activity, service_url, tenant)
        elif activity.get("type") == "invoke":
            return HttpResponse.json(self.answer_invoke(activity, service_url, tenant))
        elif activity.get("type") == "conversationUpdate":
            personal.welcome(self.parts, activity, service_url)
        return HttpResponse.json({})

    def answer_invoke(
        self, activity: dict[str, Any], service_url: str, tenant: str | None
    ) -> dict[str, Any]:
        conversation = str((activity.get("conversation") or {}).get("id") or "")
        sender = activity.get("from") or {}
        user = str(sender.get("aadObjectId") or sender.get("id") or "")
        return invoke.handle(
            activity,
            self.parts,
            user=user,
            conversation=conversation,
            service_url=service_url,
            tenant=tenant,
        )

    # ------------------------------------------------------------------ answering

    def answer_message(
        self, activity: dict[str, Any], service_url: str, tenant: str | None
    ) -> None:
        conversation = activity.get("conversation") or {}
        conversation_id = str(conversation.get("id") or "")
        sender = activity.get("from") or {}
        user = str(sender.get("aadObjectId") or sender.get("id") or "")
        if not conversation_id or not user:
            log.warning("Teams message without a conversation or sender ignored")
            return
        text = command_text(activity)
        card = personal.home_answer(self.parts, activity, text, user)
        if card is None:
            card = self.card_for(
                text, user, conversation_id, tenant, Reference(service_url, tenant)
            )
        reply = {
            "type": "message",
            "replyToId": activity.get("id"),
            "attachments": [{"contentType": CONTENT_TYPE, "content": card}],
        }
        try:
            self.connector.send(service_url, conversation_id, reply)
        except (ConnectorError, OSError, ValueError) as exc:
            log.warning("posting the answer to Teams failed: %s", exc)

    def card_for(
        self,
        text: str,
        user: str,
        conversation: str,
        tenant: str | None,
        reference: Reference | None = None,
    ) -> Card:
        """``reference``: how the scheduler reaches the conversation (kept by ``subscribe``)."""
        svc = self.service
        try:
            cmd = parse(text, svc.team_names())
        except ParseError as exc:
            return teams_answers.problem(str(exc), exc.suggestions)
        if cmd.kind == "action_add":
            return dialogs.command_card(svc, cmd, user, conversation)
        actor = self.roster.actor(user, tenant)
        answer = svc.dispatch(cmd, text, user, conversation, actor=actor, reference=reference)
        return teams_answers.card(answer)


def tenant_of(activity: dict[str, Any]) -> str | None:
    """The tenant an activity comes from (``channelData.tenant.id``, else the
    conversation's ``tenantId``)."""
    channel_data = activity.get("channelData")
    if isinstance(channel_data, dict):
        tenant = channel_data.get("tenant")
        if isinstance(tenant, dict) and isinstance(tenant.get("id"), str):
            return str(tenant["id"])
    conversation = activity.get("conversation")
    if isinstance(conversation, dict) and isinstance(conversation.get("tenantId"), str):
        return str(conversation["tenantId"])
    return None


def install(
    http_app: HttpApp,
    settings: Settings,
    factory: sessionmaker[Session],
    config: Config,
    clock: Clock = system_clock,
) -> TeamsSurface:
    """Serve ``POST /api/messages`` on ``http_app`` (HTTP mode, when ``TEAMS_APP_ID`` is set);
    without ``TEAMS_APP_PASSWORD`` kpibot could not answer, so it stops with one line."""
    if not settings.teams_app_password:
        raise ConfigError(
            "TEAMS_APP_PASSWORD is not set: kpibot needs the bot's client secret (Teams "
            "Developer Portal -> Tools -> Bot management -> your bot -> Client secrets) to "
            "answer in Teams"
        )
    surface = TeamsSurface(settings, factory, config, clock=clock)
    surface.install(http_app)
    return surface
