"""``POST /api/messages``: Microsoft Teams activities, served by HTTP mode's route table.

Every request is authenticated before its body is read (:mod:`bot.teams.auth`: a Bot
Framework token for this app id, else 401). The handler then parses the activity (a body
that is no activity object: 400), checks that the token was issued for the activity's
``serviceUrl`` (else 401) and, when ``TEAMS_TENANT_ID`` is set, that the activity comes from
that tenant (else 403); nothing is stored or posted before these pass.

The token is validated once, by the route's ``verify`` (its claims travel with the request).

A message (``@kpibot <command>`` in a channel or group chat, the command as plain text in
the personal chat) is parsed with the ``/kpi`` grammar and acknowledged with 200 at once; the
chat-neutral core (:class:`~bot.chat.service.ChatService` for platform ``teams``) answers it
afterwards and the answer is posted to the conversation through the connector as an Adaptive
Card. Reports are computed in the shared report worker processes (:mod:`bot.chat.workers`)
when ``kpibot run`` has them, everything else on a few answering threads; when too much is
waiting, the answer says busy, try again, as in Slack. ``invoke`` activities (card buttons,
the action-item dialog) are answered in the HTTP response by :mod:`bot.teams.invoke`; the
personal chat's ``home`` and the bot's install there get the person's own view
(:mod:`bot.teams.personal`). Other activity types are acknowledged.
"""

from __future__ import annotations

import html
import json
import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.chat import answers as ans
from bot.chat import workers
from bot.chat.grammar import Command, ParseError, parse
from bot.chat.permissions import Actor, NotAllowed
from bot.chat.service import REPORT_KINDS, ChatService, Clock, system_clock
from bot.chat.workers import ReportWorkers, WorkersBusy
from bot.errors import ConfigError
from bot.renderers import adaptive
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
ANSWER_THREADS = 4  # threads answering what is not a report (and posting every answer)
MAX_PENDING = 64  # answers waiting for those threads before new ones are answered busy


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
        workers: ReportWorkers | None = None,
    ) -> None:
        self.app_id = settings.teams_app_id or ""
        self.tenant = settings.teams_tenant_id
        self.auth = auth or ActivityAuth(self.app_id, settings.teams_openid_url)
        self.connector = connector or Connector(
            self.app_id, settings.teams_app_password or "", settings.teams_token_url
        )
        self.roster = Roster(self.connector, settings.teams_admins)
        self.service = ChatService(factory, config, clock, TeamsVoice(self.roster.name))
        self.service.home_workspace = self.tenant
        # chart links are signed with a key from the client secret: none without it
        secret = settings.teams_app_password or ""
        self.charts = ChartLinks(secret, settings.public_url if secret else None)
        self.parts = invoke.Parts(
            self.service, self.connector, self.roster, self.charts, self.card_for
        )
        self.workers = workers  # reports go to these processes when given
        self.threads = ThreadPoolExecutor(ANSWER_THREADS, thread_name_prefix="kpibot-teams")
        self._pending = 0
        self._lock = threading.Lock()

    def close(self) -> None:
        self.threads.shutdown(wait=False, cancel_futures=True)

    def install(self, http_app: HttpApp) -> None:
        http_app.add_route("POST", PATH, self.messages, max_body=MAX_ACTIVITY, verify=self.verify)
        self.charts.install(http_app, lambda m, t, p: self.service.card(t, m, p))

    # ------------------------------------------------------------------ requests

    def verify(self, req: HttpRequest) -> bool:
        """The bearer token is a Bot Framework token for this app (body unread); its claims
        go with the request to :meth:`messages`."""
        try:
            req.verified["claims"] = self.auth.claims(req.headers.get("authorization"))
        except NotAuthenticated as exc:
            log.warning("Teams activity refused: %s", exc)
            return False
        return True

    def messages(self, req: HttpRequest) -> HttpResponse:
        claims = req.verified.get("claims")
        if not isinstance(claims, dict):  # only reachable without the route's verify
            return HttpResponse.json({"error": "invalid request"}, status=401)
        try:
            activity = json.loads(req.body)
        except (ValueError, RecursionError):
            activity = None
        service_url = activity.get("serviceUrl") if isinstance(activity, dict) else None
        if not isinstance(activity, dict) or not isinstance(service_url, str) or not service_url:
            log.warning("Teams request that is no activity refused (400)")
            return HttpResponse.json({"error": "malformed activity"}, status=400)
        try:
            self.auth.check_service_url(claims, service_url)
        except NotAuthenticated as exc:
            log.warning("Teams activity refused: %s", exc)
            return HttpResponse.json({"error": "invalid request"}, status=401)
        tenant = tenant_of(activity)
        if self.tenant and tenant != self.tenant:
            log.warning("Teams activity from another tenant refused (403)")
            return HttpResponse.json({"error": "this bot serves another tenant"}, status=403)
        sender = activity.get("from")
        if isinstance(sender, dict) and isinstance(sender.get("name"), str):
            self.roster.remember(str(sender.get("aadObjectId") or ""), sender["name"])
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
        """Buttons and dialogs: answered in the HTTP response (Teams waits for it)."""
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
        """Start answering a message; returns at once (the answer is posted when ready)."""
        conversation = activity.get("conversation") or {}
        conversation_id = str(conversation.get("id") or "")
        sender = activity.get("from") or {}
        user = str(sender.get("aadObjectId") or sender.get("id") or "")
        if not conversation_id or not user:
            log.warning("Teams message without a conversation or sender ignored")
            return
        to = Reply(service_url, conversation_id, activity.get("id"))
        text = command_text(activity)
        if text.strip().lower() == personal.WORD:
            self._later(to, lambda: self._home(activity, text, user))
            return
        svc = self.service
        try:
            cmd = parse(text, svc.team_names(), svc.voice)
        except ParseError as exc:
            problem = teams_answers.problem(str(exc), exc.suggestions)
            self._later(to, lambda: problem, bounded=False)
            return
        actor = self.roster.actor(user, tenant)
        try:
            svc.admit(actor)
        except NotAllowed as exc:
            refused = teams_answers.card(ans.Refused(str(exc)))
            self._later(to, lambda: refused, bounded=False)
            return
        if self.workers is not None and cmd.kind in REPORT_KINDS:
            try:
                job = self.workers.submit(
                    card_in_worker, svc.now(), cmd, text, user, conversation_id
                )
            except WorkersBusy as exc:
                log.info("too busy for %s from Teams (%s); answered busy", cmd.kind, exc)
                self._later(to, busy_card, bounded=False)
                return
            except Exception as exc:
                log.warning("report workers failed (%s); answering here", type(exc).__name__)
            else:
                job.add_done_callback(lambda done: self._delivered(to, done, cmd, text, user))
                return
        reference = Reference(service_url, tenant)
        if cmd.kind == "action_add":
            self._later(to, lambda: dialogs.command_card(svc, cmd, user, conversation_id))
            return
        self._later(
            to, lambda: answer_card(svc, cmd, text, user, conversation_id, actor, reference)
        )

    def _home(self, activity: dict[str, Any], text: str, user: str) -> Card:
        card = personal.home_answer(self.parts, activity, text, user)
        return card if card is not None else adaptive.message(ans.OOPS)

    def card_for(
        self,
        text: str,
        user: str,
        conversation: str,
        tenant: str | None,
        reference: Reference | None = None,
    ) -> Card:
        """The answer to a command, computed here (buttons that answer a command, e.g. the
        team picker); ``reference``: how the scheduler reaches the conversation."""
        svc = self.service
        try:
            cmd = parse(text, svc.team_names(), svc.voice)
        except ParseError as exc:
            return teams_answers.problem(str(exc), exc.suggestions)
        if cmd.kind == "action_add":
            return dialogs.command_card(svc, cmd, user, conversation)
        actor = self.roster.actor(user, tenant)
        return answer_card(svc, cmd, text, user, conversation, actor, reference)

    def _later(self, to: Reply, make: Callable[[], Card], *, bounded: bool = True) -> None:
        """Make the card and post it on an answering thread; beyond ``MAX_PENDING`` answers
        waiting, a bounded one is answered busy instead."""
        with self._lock:
            if bounded and self._pending >= MAX_PENDING:
                log.info("%d Teams answers waiting; answered busy", self._pending)
                make = busy_card
            self._pending += 1

        def run() -> None:
            try:
                self.post(to, make())
            finally:
                with self._lock:
                    self._pending -= 1

        try:
            self.threads.submit(run)
        except RuntimeError:  # closing
            with self._lock:
                self._pending -= 1

    def _delivered(self, to: Reply, done: Future[Card], cmd: Command, text: str, user: str) -> None:
        """A report from the workers (on their delivery thread): post it."""
        if done.cancelled():  # closing
            return
        try:
            card = done.result()
        except CancelledError:
            return
        except BrokenProcessPool:
            log.error("report workers died twice answering %s from Teams", cmd.kind)
            card = adaptive.message(ans.OOPS)
        except Exception as exc:
            log.warning("report worker failed (%s); answering here", type(exc).__name__)
            self._later(
                to, lambda: answer_card(self.service, cmd, text, user, to.conversation, None)
            )
            return
        # posted on an answering thread: the delivery thread hands every worker's result
        # over, and one slow post must not hold up the cards behind it
        self._later(to, lambda: card, bounded=False)

    def post(self, to: Reply, card: Card) -> None:
        """Post ``card`` to the conversation as a reply to the message; failures are logged."""
        reply = {
            "type": "message",
            "replyToId": to.reply_to,
            "attachments": [{"contentType": CONTENT_TYPE, "content": card}],
        }
        try:
            self.connector.send(to.service_url, to.conversation, reply)
        except (ConnectorError, OSError, ValueError) as exc:
            log.warning("posting the answer to Teams failed: %s", exc)


@dataclass(frozen=True)
class Reply:
    """Where an answer goes: the conversation (at its connector) and the message answered."""

    service_url: str
    conversation: str
    reply_to: str | None


def busy_card() -> Card:
    return adaptive.message(ans.BUSY)


def answer_card(
    svc: ChatService,
    cmd: Command,
    text: str,
    user: str,
    conversation: str,
    actor: Actor | None,
    reference: Reference | None = None,
) -> Card:
    """The core's answer to a parsed command as an Adaptive Card; never raises."""
    try:
        answer = svc.dispatch(cmd, text, user, conversation, actor=actor, reference=reference)
        return teams_answers.card(answer)
    except Exception:
        log.exception("answering %s from Teams failed", cmd.kind)
        return adaptive.message(ans.OOPS)


def card_in_worker(cmd: Command, text: str, user: str, conversation: str) -> Card:
    """In a report worker: the card answering a report command."""
    return answer_card(workers.service(TeamsVoice), cmd, text, user, conversation, None)


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
    workers: ReportWorkers | None = None,
) -> TeamsSurface:
    """Serve ``POST /api/messages`` on ``http_app`` (HTTP mode, when ``TEAMS_APP_ID`` is set);
    without ``TEAMS_APP_PASSWORD`` kpibot could not answer, so it stops with one line."""
    if not settings.teams_app_password:
        raise ConfigError(
            "TEAMS_APP_PASSWORD is not set: kpibot needs the bot's client secret (Teams "
            "Developer Portal -> Tools -> Bot management -> your bot -> Client secrets) to "
            "answer in Teams"
        )
    surface = TeamsSurface(settings, factory, config, clock=clock, workers=workers)
    surface.install(http_app)
    return surface
