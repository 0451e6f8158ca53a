"""Microsoft Teams' :class:`~bot.scheduler.posting.Poster`: digests posted proactively to the
subscribed channels and reminders to each owner's personal chat, through the Bot Framework
connector with the app token (:class:`~bot.teams.connector.Connector`).

- A subscription's conversation is reached at the service URL and tenant stored with it
  (its conversation reference, :class:`~bot.store.subscriptions.Reference`); without one, at
  ``TEAMS_API_URL`` in ``TEAMS_TENANT_ID``.
- A reminder goes to the bot's 1:1 chat with the owner, created (or found: Teams answers
  with the same conversation) by ``POST /v3/conversations`` with the bot, the owner and the
  tenant. Teams only allows it when the app is installed for that person: a refusal is
  permanent, so the reminder is recorded as given up, never retried forever.
- HTTP 429 waits for ``Retry-After`` (capped), HTTP 5xx and connections that could not be
  made back off exponentially, up to the policy's attempts (tenacity). These calls did not
  take the post, so a run that ran out of attempts is recorded ``unsent`` and the next pass
  posts it without doubt.
- HTTP 403 (the bot was removed from the team) and 404 (the conversation is gone) raise
  :class:`ConversationGone`: the scheduler marks the subscription broken and tells whoever
  subscribed in their personal chat when it can.
- A timeout or dropped connection after the request went out is unclear: the post may have
  arrived. It is not repeated. A Teams bot cannot read a channel's history, so
  :meth:`TeamsPoster.find_post` cannot look for an earlier attempt: it raises
  :class:`~bot.scheduler.posting.CannotLook` and the scheduler records that run as skipped
  (the channel has the digest once, or not at all for that period; ``kpibot digest ...
  --post`` posts it by hand). The same holds after a crash between the post and its record.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from bot.renderers import adaptive
from bot.renderers import format as fmt
from bot.renderers.adaptive import CONTENT_TYPE
from bot.renderers.charts import Upload
from bot.renderers.mrkdwn import Links
from bot.reports.digests import MonthlyDigest, WeeklyDigest
from bot.reports.freshness import SourceNotice
from bot.scheduler.posting import (
    CannotLook,
    ConversationUnavailable,
    PlatformUnavailable,
    PostError,
    RetryPolicy,
    reminder_lines,
    retry_after,
)
from bot.store.models import ActionItem
from bot.store.subscriptions import Reference, Subscription
from bot.teams.connector import Connector, ConnectorError

if TYPE_CHECKING:
    from bot.reports.agreements import AgreementsReport
    from bot.reports.alerts import Alert

log = logging.getLogger("kpibot.scheduler")

#: statuses after which the conversation cannot be posted to until someone subscribes again
GONE = {403: "bot_removed", 404: "conversation_not_found"}
#: transport errors before the request went out: nothing was posted
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class TeamsError(PostError):
    """The connector refused a call (a 4xx other than 429): the post did not arrive."""

    unsent = True

    def __init__(self, what: str, status: int, error: str, *, permanent: bool = False) -> None:
        super().__init__(f"Teams {what}: " + (f"HTTP {status} ({error})" if status else error))
        self.status = status
        self.error = error
        self.permanent = permanent


class ConversationGone(TeamsError, ConversationUnavailable):
    """The conversation cannot be posted to: the bot was removed (403) or it is gone (404).
    No retry changes that (a reminder to such a personal chat is given up at once)."""

    def __init__(self, what: str, status: int, error: str) -> None:
        super().__init__(what, status, error, permanent=True)


class TeamsUnavailable(PlatformUnavailable):
    """No clear answer (a timeout or dropped connection after the request went out): the post
    may have arrived."""


class TeamsNotPosted(TeamsUnavailable):
    """Teams did not take the post (rate limited or failing on every attempt, or no attempt
    could start before the deadline): it did not arrive."""

    unsent = True


class _Transient(Exception):
    """One attempt Teams did not take (429, 5xx, no connection): worth another."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class TeamsPoster:
    """The :class:`~bot.scheduler.posting.Poster` of Microsoft Teams."""

    platform = "teams"

    def __init__(
        self,
        connector: Connector,
        *,
        service_url: str,
        tenant: str | None = None,
        references: Callable[[str], Reference | None] | None = None,
        tenants: Callable[[], set[str]] | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``service_url`` and ``tenant``: ``TEAMS_API_URL`` and ``TEAMS_TENANT_ID``;
        ``references``: a conversation's stored reference; ``tenants``: the tenants of the
        stored references (a personal chat needs a tenant: without ``TEAMS_TENANT_ID`` it is
        the one tenant kpibot knows of)."""
        self.connector = connector
        self.service_url = service_url
        self.tenant = tenant
        self._references = references or (lambda conversation: None)
        self._tenants = tenants or set
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._monotonic = monotonic
        self._personal: dict[str, str] = {}  # user -> 1:1 conversation id
        self._personal_refs: dict[str, Reference] = {}  # 1:1 conversation id -> reference

    def __repr__(self) -> str:  # the app password never reaches logs
        return f"TeamsPoster(service_url={self.service_url!r})"

    # ------------------------------------------------------------------ rendering

    def render_digest(self, digest: WeeklyDigest | MonthlyDigest, links: Links) -> dict[str, Any]:
        """The digest as a message activity carrying its Adaptive Card."""
        kind = "Weekly leading" if isinstance(digest, WeeklyDigest) else "Monthly lagging"
        return _card_activity(
            adaptive.digest(digest, links), f"{kind} indicators for {digest.team}"
        )

    def render_notice(self, notice: SourceNotice, links: Links) -> dict[str, Any]:
        """A source's freshness notice as a message activity carrying its Adaptive Card."""
        head, _ = fmt.notice(notice)
        return _card_activity(adaptive.source_notice(notice), head)

    def render_agreements(
        self, report: AgreementsReport, links: Links, mentions: Mapping[str, str]
    ) -> dict[str, Any]:
        """A nudge or roll-up as a message activity carrying its Adaptive Card; authors the
        identity mapping knows are ``<at>`` mentions with their ``msteams.entities``."""
        summary = f"{fmt.AGREEMENT_TITLES[report.kind]} · {report.team}"
        return _card_activity(adaptive.agreements(report, mentions=mentions), summary)

    def render_alert(self, alert: Alert) -> dict[str, Any]:
        """A threshold alert as a message activity carrying its Adaptive Card."""
        return _card_activity(adaptive.alert(alert), fmt.alert_headline(alert))

    def render_reminder(self, team: str, items: list[ActionItem], day: date) -> dict[str, Any]:
        head, lines = reminder_lines(
            team, items, day, bold=lambda t: f"**{t}**", escape=adaptive.escape, bullet="-"
        )
        card = adaptive.card(
            [
                adaptive.text(head),
                adaptive.text("\n".join(lines)),
                adaptive.note("Mark them done with @kpibot actions."),
            ]
        )
        return _card_activity(card, f"Reminder: action items of {team}")

    def broken_note(self, subscription: Subscription, error: str) -> tuple[str, str | None]:
        sub = subscription
        reason = {
            "bot_removed": "kpibot was removed from the team (or never added to it)",
            "conversation_not_found": "the channel or chat no longer exists",
        }.get(error, error)
        if not sub.created_by:
            return reason, None
        note = (
            f"I could not post the {sub.kind} digest of **{adaptive.escape(sub.team)}** to the "
            f"channel it was subscribed in: {reason}. I have paused that subscription. Add "
            f"kpibot to the team and send **@kpibot subscribe {sub.kind} "
            f"{adaptive.escape(sub.team)}** in the channel again, or subscribe another channel."
        )
        return reason, note

    # ------------------------------------------------------------------ posting

    def post(
        self,
        channel: str,
        message: dict[str, Any],
        *,
        key: str,
        deadline: float | None = None,
        look_first: bool = False,
        oldest: float | None = None,
    ) -> str:
        """Post the activity ``message`` to the conversation; returns the new activity's id.

        ``look_first`` cannot be honoured (Teams bots cannot read a channel's history): it
        raises :class:`CannotLook` rather than risk a second post."""
        if look_first:
            self.find_post(channel, key, oldest=oldest, deadline=deadline)
        ref = self._reference(channel)
        url = self.connector.activities_url(ref.service_url, channel)
        body = self._call("post to a conversation", url, message, deadline=deadline)
        return str(body.get("id") or "")

    def find_post(
        self,
        channel: str,
        key: str,
        *,
        oldest: float | None = None,
        deadline: float | None = None,
    ) -> str | None:
        raise CannotLook(
            "Teams cannot tell whether an earlier attempt arrived (a bot cannot read a "
            "channel's history)"
        )

    def upload(
        self,
        channel: str,
        files: Sequence[Upload],
        *,
        thread_ts: str | None = None,
        deadline: float | None = None,
    ) -> list[str]:
        """The charts as inline PNG attachments of one reply in the digest's thread."""
        if not files:
            return []
        ref = self._reference(channel)
        conversation = f"{channel};messageid={thread_ts}" if thread_ts else channel
        activity = {
            "type": "message",
            "summary": ", ".join(f.title for f in files),
            "attachments": [
                {
                    "contentType": "image/png",
                    "contentUrl": "data:image/png;base64,"
                    + base64.b64encode(f.png).decode("ascii"),
                    "name": f.filename,
                }
                for f in files
            ],
        }
        url = self.connector.activities_url(ref.service_url, conversation)
        body = self._call("chart reply", url, activity, deadline=deadline)
        return [str(body.get("id") or "")]

    def open_dm(self, user: str) -> str:
        """The bot's 1:1 conversation with ``user`` (``POST /v3/conversations``)."""
        known = self._personal.get(user)
        if known is not None:
            return known
        tenant = self.tenant
        if tenant is None:
            tenants = self._tenants()
            tenant = next(iter(tenants)) if len(tenants) == 1 else None
        if tenant is None:
            raise TeamsError(
                "personal chat",
                0,
                "the user's tenant is unknown (set TEAMS_TENANT_ID)",
                permanent=True,
            )
        body = {
            "bot": {"id": f"28:{self.connector.app_id}"},
            "members": [{"id": user}],
            "isGroup": False,
            "tenantId": tenant,
            "channelData": {"tenant": {"id": tenant}},
        }
        url = self.connector.conversations_url(self.service_url)
        try:
            out = self._call("personal chat", url, body)
        except ConversationGone as exc:  # not installed for the person, or no such person
            raise TeamsError(
                "personal chat", exc.status, "user_unreachable", permanent=True
            ) from None
        conversation = str(out.get("id") or "")
        if not conversation:
            raise TeamsError("personal chat", 200, "no_conversation_returned")
        self._personal[user] = conversation
        self._personal_refs[conversation] = Reference(self.service_url, tenant)
        return conversation

    def dm(self, user: str, text: str) -> str:
        """A personal message (one line of markdown) to ``user``."""
        channel = self.open_dm(user)
        return self.post(
            channel, _card_activity(adaptive.message(text), text[:120]), key=f"note:{user}"
        )

    # ------------------------------------------------------------------ calls

    def _reference(self, conversation: str) -> Reference:
        return (
            self._personal_refs.get(conversation)
            or self._references(conversation)
            or Reference(self.service_url, self.tenant)
        )

    def _call(
        self, what: str, url: str, body: dict[str, Any], *, deadline: float | None = None
    ) -> dict[str, Any]:
        """POST ``body`` with retries of what Teams did not take; the answer's JSON."""
        p = self.policy

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome is not None else None
            if isinstance(exc, _Transient) and exc.retry_after is not None:
                return min(exc.retry_after, p.max_retry_after)
            return min(p.backoff * 2 ** (state.attempt_number - 1), p.max_backoff)

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            wait_s = state.next_action.sleep if state.next_action is not None else 0.0
            log.warning("Teams %s: %s; retrying in %.1fs", what, exc, wait_s)

        retrying = Retrying(
            retry=retry_if_exception_type(_Transient),
            wait=wait,
            stop=stop_after_attempt(max(1, p.max_attempts)),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(self._attempt, what, url, body, deadline)
        except _Transient as exc:
            raise TeamsNotPosted(f"Teams {what}: {exc} ({p.max_attempts} attempts)") from None

    def _attempt(
        self, what: str, url: str, body: dict[str, Any], deadline: float | None
    ) -> dict[str, Any]:
        p = self.policy
        if deadline is not None and self._monotonic() + p.timeout > deadline:
            raise TeamsNotPosted(f"Teams {what}: gave up, the claim's time ran out")
        try:
            self.connector.token()
        except (ConnectorError, httpx.TransportError, ValueError, KeyError) as exc:
            raise _Transient(f"no app token ({type(exc).__name__})") from None  # nothing sent
        try:
            resp = self.connector.request("POST", url, body, timeout=p.timeout)
        except NOT_SENT as exc:
            raise _Transient(type(exc).__name__) from None
        except httpx.TransportError as exc:
            raise TeamsUnavailable(f"Teams {what}: {type(exc).__name__}") from None
        status = resp.status_code
        if status == 429:
            raise _Transient("HTTP 429 (rate limited)", retry_after(resp))
        if status >= 500:
            raise _Transient(f"HTTP {status}")
        if status in GONE:
            raise ConversationGone(what, status, GONE[status])
        if status >= 300:
            raise TeamsError(what, status, _error_code(resp))
        try:
            out = resp.json()
        except ValueError:
            return {}
        return out if isinstance(out, dict) else {}


def _card_activity(card: adaptive.Card, summary: str) -> dict[str, Any]:
    return {
        "type": "message",
        "summary": summary,
        "attachments": [{"contentType": CONTENT_TYPE, "content": card}],
    }


def _error_code(resp: httpx.Response) -> str:
    try:
        error = resp.json().get("error") or {}
    except (ValueError, AttributeError):
        return "error"
    code = error.get("code") if isinstance(error, dict) else None
    return str(code) if code else "error"
