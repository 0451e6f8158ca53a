"""Posting from the scheduler: the :class:`Poster` interface every chat platform implements,
and Slack's poster (retries, pacing, and finding an earlier attempt).

The scheduler's one exactly-once path (claim, post, record: :mod:`bot.scheduler.jobs`,
:mod:`bot.store.digest_runs`) posts each subscription's digest through the poster of the
subscription's platform, and understands only the platform-neutral errors below:
:class:`PostError` (refused), :class:`ConversationUnavailable` (the subscription is broken)
and :class:`PlatformUnavailable` (nothing is known about whether a post arrived).

``SlackPoster`` calls the Web API over httpx:

- HTTP 429 waits for ``Retry-After`` (capped) and tries again;
- HTTP 5xx, timeouts and dropped connections back off exponentially, up to ``max_attempts``
  (a post, which may have arrived all the same, is first looked for in the channel);
- ``channel_not_found``, ``not_in_channel`` and ``is_archived`` raise :class:`ChannelUnavailable`
  at once (the caller marks the subscription broken); other Slack errors raise
  :class:`SlackError`;
- posts to one channel are spaced by ``pace`` seconds (Slack allows about one message per
  second per channel);
- no attempt starts after the caller's ``deadline`` (a monotonic time), so that a claim
  given up as stale can never be posted late by the process that held it.

Every scheduled message carries Slack message metadata (``event_type`` ``kpibot_post``, the
run's key in ``event_payload``); :meth:`SlackPoster.find_post` looks for it in the channel's
history, which is how a retry learns that an earlier attempt did reach Slack.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from bot.renderers import mrkdwn
from bot.renderers.charts import Upload
from bot.renderers.mrkdwn import Links
from bot.reports.digests import MonthlyDigest, WeeklyDigest
from bot.reports.freshness import SourceNotice
from bot.store.models import ActionItem
from bot.store.subscriptions import Subscription

if TYPE_CHECKING:
    from bot.reports.agreements import AgreementsReport
    from bot.reports.alerts import Alert

log = logging.getLogger("kpibot.scheduler")

EVENT_TYPE = "kpibot_post"
CHANNEL_ERRORS = ("channel_not_found", "not_in_channel", "is_archived")
#: errors of a direct message that no retry will change (the user is gone or cannot be DMed)
USER_ERRORS = ("user_not_found", "user_disabled", "user_not_visible", "cannot_dm_bot")


class PostError(Exception):
    """The platform refused a call; ``error`` is its error code. ``permanent``: no retry will
    change it (the person is gone or cannot be messaged). ``unsent``: the post is known not
    to have arrived (a later attempt need not look for it)."""

    error: str = "unknown_error"
    permanent: bool = False
    unsent: bool = False


class ConversationUnavailable(PostError):
    """The conversation cannot be posted to (gone, archived, or the bot is not in it): the
    subscription is broken until someone subscribes again."""


class PlatformUnavailable(Exception):
    """The platform did not answer usefully within the attempts or the deadline; nothing is
    known about whether a post arrived, unless ``unsent`` says it did not."""

    unsent: bool = False


class CannotLook(PostError):
    """The platform cannot tell whether an earlier attempt's post arrived (a Teams bot cannot
    read a channel's history): the scheduler settles such a run instead of posting it again."""

    error = "cannot_look"
    permanent = True


class Poster(Protocol):
    """What the scheduler needs of a chat platform to deliver digests and reminders."""

    @property
    def platform(self) -> str:
        """The platform of the conversations it posts to (``slack``, ``teams``)."""
        ...

    def render_digest(self, digest: WeeklyDigest | MonthlyDigest, links: Links) -> dict[str, Any]:
        """The platform's message for a digest."""
        ...

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
        """Post ``message`` once, marked with ``key``; returns the platform's message id."""
        ...

    def find_post(
        self,
        channel: str,
        key: str,
        *,
        oldest: float | None = None,
        deadline: float | None = None,
    ) -> str | None:
        """The id of the bot's message marked with ``key`` in the conversation, if any."""
        ...

    def render_notice(self, notice: SourceNotice, links: Links) -> dict[str, Any]:
        """The platform's message for a source's freshness notice."""
        ...

    def render_agreements(
        self, report: AgreementsReport, links: Links, mentions: Mapping[str, str]
    ) -> dict[str, Any]:
        """The platform's message for an agreement nudge or roll-up; ``mentions``: the
        platform's user id of each PR author the identity mapping knows (by GitHub login)."""
        ...

    def render_alert(self, alert: Alert) -> dict[str, Any]:
        """The platform's message for a threshold alert."""
        ...

    def render_reminder(self, team: str, items: list[ActionItem], day: date) -> dict[str, Any]:
        """The platform's reminder of an owner's open ``items`` of ``team`` due by ``day``+1."""
        ...

    def upload(
        self,
        channel: str,
        files: Sequence[Upload],
        *,
        thread_ts: str | None = None,
        deadline: float | None = None,
    ) -> list[str]:
        """Share images (a digest's charts) in a conversation, in the thread of the message
        ``thread_ts``; returns the platform's file ids."""
        ...

    def open_dm(self, user: str) -> str:
        """The conversation id of the bot's personal chat with a user."""
        ...

    def dm(self, user: str, text: str) -> str:
        """A personal message to a user."""
        ...

    def broken_note(self, subscription: Subscription, error: str) -> tuple[str, str | None]:
        """Why a conversation cannot be posted to (``error`` from
        :class:`ConversationUnavailable`), and the note for whoever subscribed it (None: they
        cannot be messaged on this platform)."""
        ...


class SlackError(PostError):
    """Slack answered ``ok: false``."""

    def __init__(self, method: str, error: str) -> None:
        super().__init__(f"Slack {method} failed: {error}")
        self.method = method
        self.error = error
        self.permanent = error in USER_ERRORS


class ChannelUnavailable(SlackError, ConversationUnavailable):
    """The channel cannot be posted to (gone, archived, or the bot is not in it)."""


class SlackUnavailable(PlatformUnavailable):
    """Slack did not answer usefully within the attempts or the deadline; nothing is known
    about whether a post arrived."""


class Unclear(SlackUnavailable):
    """One attempt ended without a clear answer (5xx, timeout, dropped connection)."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5  # for 5xx and transport errors
    backoff: float = 1.0  # first wait, doubled each time
    max_backoff: float = 30.0
    max_retry_after: float = 120.0  # longest 429 wait honoured
    max_rate_limited: int = 10  # 429s in a row before giving up
    timeout: float = 10.0  # per request
    pace: float = 1.0  # seconds between posts to one channel


class SlackPoster:
    """The :class:`Poster` of Slack."""

    platform = "slack"

    def __init__(
        self,
        token: str,
        api_url: str = "https://slack.com/api/",
        *,
        policy: RetryPolicy | None = None,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._token = token
        self.api_url = api_url if api_url.endswith("/") else api_url + "/"
        self.policy = policy or RetryPolicy()
        self._client = client or httpx.Client(timeout=self.policy.timeout)
        self._sleep = sleep
        self._monotonic = monotonic
        self._last_post: dict[str, float] = {}
        self._pace_lock = threading.Lock()

    def __repr__(self) -> str:  # the token never reaches logs
        return f"SlackPoster(api_url={self.api_url!r})"

    def render_digest(self, digest: WeeklyDigest | MonthlyDigest, links: Links) -> dict[str, Any]:
        """The digest as Block Kit (``text`` fallback and ``blocks``)."""
        from bot.renderers import blocks

        return blocks.digest(digest, links)

    def render_reminder(self, team: str, items: list[ActionItem], day: date) -> dict[str, Any]:
        return {"text": reminder_text(team, items, day)}

    def render_notice(self, notice: SourceNotice, links: Links) -> dict[str, Any]:
        """A source's freshness notice as Block Kit."""
        from bot.renderers import blocks

        return blocks.source_notice(notice)

    def render_agreements(
        self, report: AgreementsReport, links: Links, mentions: Mapping[str, str]
    ) -> dict[str, Any]:
        """A nudge or roll-up as Block Kit, authors mentioned as ``<@U…>`` when known."""
        from bot.renderers import blocks

        return blocks.agreements(report, links, mentions=mentions)

    def render_alert(self, alert: Alert) -> dict[str, Any]:
        """A threshold alert as Block Kit."""
        from bot.renderers import blocks

        return blocks.alert(alert)

    def broken_note(self, subscription: Subscription, error: str) -> tuple[str, str | None]:
        sub = subscription
        reason = {
            "channel_not_found": "the channel no longer exists (or is private and I was "
            "never added to it)",
            "not_in_channel": "the bot is not a member of the channel",
            "is_archived": "the channel is archived",
        }.get(error, error)
        if not (sub.created_by and sub.created_by[:1] in ("U", "W")):
            return reason, None
        where = mrkdwn.channel(sub.channel_id)
        note = (
            f"I could not post the {sub.kind} digest of *{sub.team}* to {where}: "
            f"{reason}. I have paused that subscription. Invite me to the channel "
            f"(`/invite @kpibot`) and run `/kpi subscribe {sub.kind} {sub.team}` there "
            "again, or subscribe another channel."
        )
        return reason, note

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------ calls

    def call(
        self,
        method: str,
        payload: dict[str, Any],
        *,
        deadline: float | None = None,
        retry_unclear: bool = True,
        form: bool = False,
    ) -> dict[str, Any]:
        """One Web API method with retries; returns the ``ok`` body.

        ``retry_unclear=False``: a 5xx, timeout or dropped connection (after which the call
        may or may not have taken effect) raises :class:`Unclear` instead of being repeated.
        ``form``: send the arguments form-encoded (the file-upload methods take no JSON).
        """
        p = self.policy
        failures = 0
        limited = 0
        while True:
            if deadline is not None and self._monotonic() + p.timeout > deadline:
                raise SlackUnavailable(f"Slack {method}: gave up, the claim's time ran out")
            try:
                body_arg: dict[str, Any] = (
                    {"data": {k: v for k, v in payload.items() if v is not None}}
                    if form
                    else {"json": payload}
                )
                resp = self._client.post(
                    self.api_url + method,
                    headers={"Authorization": f"Bearer {self._token}"},
                    timeout=p.timeout,
                    **body_arg,
                )
            except httpx.TransportError as exc:
                failures += 1
                reason = type(exc).__name__
                if not retry_unclear:
                    raise Unclear(f"Slack {method}: {reason}") from None
                if failures >= p.max_attempts:
                    raise SlackUnavailable(
                        f"Slack {method}: {reason} ({failures} attempts)"
                    ) from None
                wait = min(p.backoff * 2 ** (failures - 1), p.max_backoff)
                log.warning("Slack %s: %s; retrying in %.1fs", method, reason, wait)
                self._sleep(wait)
                continue
            if resp.status_code == 429:
                limited += 1
                if limited > p.max_rate_limited:
                    raise SlackUnavailable(
                        f"Slack {method}: still rate limited after {limited} tries"
                    )
                wait = min(retry_after(resp), p.max_retry_after)
                log.warning("Slack %s: rate limited; waiting %.1fs (Retry-After)", method, wait)
                self._sleep(wait)
                continue
            if resp.status_code >= 500:
                failures += 1
                if not retry_unclear:
                    raise Unclear(f"Slack {method}: HTTP {resp.status_code}")
                if failures >= p.max_attempts:
                    raise SlackUnavailable(
                        f"Slack {method}: HTTP {resp.status_code} ({failures} attempts)"
                    )
                wait = min(p.backoff * 2 ** (failures - 1), p.max_backoff)
                log.warning("Slack %s: HTTP %s; retrying in %.1fs", method, resp.status_code, wait)
                self._sleep(wait)
                continue
            try:
                body = resp.json()
            except ValueError:
                raise SlackUnavailable(
                    f"Slack {method}: HTTP {resp.status_code} without a JSON body"
                ) from None
            if not isinstance(body, dict):
                raise SlackUnavailable(f"Slack {method}: unexpected answer")
            if body.get("ok"):
                return body
            error = str(body.get("error") or "unknown_error")
            if error == "ratelimited":  # some proxies answer 200 with this
                limited += 1
                if limited > p.max_rate_limited:
                    raise SlackUnavailable(f"Slack {method}: still rate limited")
                self._sleep(min(retry_after(resp), p.max_retry_after))
                continue
            if error in CHANNEL_ERRORS:
                raise ChannelUnavailable(method, error)
            raise SlackError(method, error)

    def _pace(self, channel: str) -> None:
        with self._pace_lock:
            last = self._last_post.get(channel)
            now = self._monotonic()
            if last is not None and now - last < self.policy.pace:
                self._sleep(self.policy.pace - (now - last))
            self._last_post[channel] = self._monotonic()

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
        """Post ``message`` (``text`` and ``blocks``) once; returns the message ``ts``.

        With ``look_first`` (a retry of an earlier attempt) the channel's history is searched
        for the message first; an attempt that failed without a clear answer is looked for
        again before it is repeated.
        """
        if look_first:
            ts = self.find_post(channel, key, oldest=oldest, deadline=deadline)
            if ts is not None:
                log.info("found the earlier post of %s in %s (ts %s)", key, channel, ts)
                return ts
        payload = {
            **message,
            "channel": channel,
            "unfurl_links": False,
            "unfurl_media": False,
            "metadata": {"event_type": EVENT_TYPE, "event_payload": {"key": key}},
        }
        p = self.policy
        for attempt in range(1, p.max_attempts + 1):
            self._pace(channel)
            try:
                body = self.call(
                    "chat.postMessage", payload, deadline=deadline, retry_unclear=False
                )
            except Unclear as exc:
                if attempt >= p.max_attempts:
                    raise SlackUnavailable(f"{exc} ({attempt} attempts)") from None
                wait = min(p.backoff * 2 ** (attempt - 1), p.max_backoff)
                log.warning("%s; looking for the message, then retrying in %.1fs", exc, wait)
                self._sleep(wait)
                ts = self.find_post(channel, key, oldest=oldest, deadline=deadline)
                if ts is not None:
                    return ts
                continue
            return str(body.get("ts") or body.get("message", {}).get("ts") or "")
        raise SlackUnavailable("Slack chat.postMessage: no attempt made")  # pragma: no cover

    def upload(
        self,
        channel: str,
        files: Sequence[Upload],
        *,
        thread_ts: str | None = None,
        deadline: float | None = None,
    ) -> list[str]:
        """Share PNG files in a channel (in the thread of ``thread_ts``) through Slack's
        external upload flow, as ``files_upload_v2`` does: ``files.getUploadURLExternal`` per
        file, the bytes to each upload URL (without the token), then one
        ``files.completeUploadExternal``. Returns the file ids.

        The completion is never repeated after an unclear answer (it may have shared the
        files): that raises :class:`Unclear`, so a chart is missing rather than posted twice.
        """
        ids: list[str] = []
        for f in files:
            body = self.call(
                "files.getUploadURLExternal",
                {"filename": f.filename, "length": str(len(f.png)), "alt_txt": f.alt},
                deadline=deadline,
                form=True,
            )
            url, file_id = body.get("upload_url"), body.get("file_id")
            if not url or not file_id:
                raise SlackError("files.getUploadURLExternal", "no_upload_url_returned")
            try:
                resp = self._client.post(
                    str(url),
                    content=f.png,
                    headers={"Content-Type": "application/octet-stream"},
                    timeout=self.policy.timeout,
                )
            except httpx.TransportError as exc:
                raise SlackUnavailable(f"file upload: {type(exc).__name__}") from None
            if resp.status_code != 200:
                raise SlackUnavailable(f"file upload: HTTP {resp.status_code}")
            ids.append(str(file_id))
        files_arg = [{"id": i, "title": f.title} for i, f in zip(ids, files, strict=True)]
        self._pace(channel)
        self.call(
            "files.completeUploadExternal",
            {"files": json.dumps(files_arg), "channel_id": channel, "thread_ts": thread_ts},
            deadline=deadline,
            retry_unclear=False,
            form=True,
        )
        return ids

    def find_post(
        self,
        channel: str,
        key: str,
        *,
        oldest: float | None = None,
        deadline: float | None = None,
        max_pages: int = 20,
    ) -> str | None:
        """The ``ts`` of the bot's message carrying ``key`` in the channel, if there is one."""
        cursor: str | None = None
        for _ in range(max_pages):
            args: dict[str, Any] = {"channel": channel, "include_all_metadata": True, "limit": 200}
            if oldest is not None:
                args["oldest"] = f"{oldest:.6f}"
            if cursor:
                args["cursor"] = cursor
            body = self.call("conversations.history", args, deadline=deadline)
            for m in body.get("messages") or []:
                meta = m.get("metadata") or {}
                payload = meta.get("event_payload") or {}
                if meta.get("event_type") == EVENT_TYPE and payload.get("key") == key:
                    return str(m.get("ts"))
            cursor = (body.get("response_metadata") or {}).get("next_cursor") or None
            if not body.get("has_more") or not cursor:
                return None
        return None

    def open_dm(self, user: str) -> str:
        """The id of the bot's direct-message channel with a user (``conversations.open``)."""
        body = self.call("conversations.open", {"users": user, "return_im": False})
        channel = (body.get("channel") or {}).get("id")
        if not channel:
            raise SlackError("conversations.open", "no_channel_returned")
        return str(channel)

    def dm(self, user: str, text: str, *, blocks: list[dict[str, Any]] | None = None) -> str:
        """A direct message to a user (the bot's DM with them)."""
        message: dict[str, Any] = {"channel": user, "text": text}
        if blocks:
            message["blocks"] = blocks
        self._pace(user)
        body = self.call("chat.postMessage", message)
        return str(body.get("ts") or "")


def retry_after(resp: httpx.Response) -> float:
    """The seconds a 429 answer asks to wait (``Retry-After``; 1 when it says nothing usable)."""
    raw = resp.headers.get("Retry-After", "1")
    try:
        return max(0.0, float(raw))
    except ValueError:
        return 1.0


def reminder_lines(
    team: str,
    items: list[ActionItem],
    day: date,
    *,
    bold: Callable[[str], str],
    escape: Callable[[str], str],
    bullet: str = "•",
) -> tuple[str, list[str]]:
    """An action-item reminder's heading and one line per item (``bold`` and ``escape`` in
    the platform's markup; source strings escaped)."""
    lines = []
    for it in items:
        if it.due_on < day:
            when = f"{bold('overdue')} since {it.due_on.isoformat()}"
        elif it.due_on == day:
            when = f"due {bold('today')}"
        else:
            when = f"due {bold('tomorrow')}"
        kpi = f" ({escape(it.kpi)})" if it.kpi else ""
        lines.append(f"{bullet} {escape(it.opportunity)} → {escape(it.resolution)}{kpi}: {when}")
    n = len(items)
    head = (
        f"Reminder: {n} action item{'s' if n > 1 else ''} of {bold(escape(team))} "
        f"need{'s' if n == 1 else ''} you"
    )
    return head, lines


def reminder_text(team: str, items: list[ActionItem], day: date) -> str:
    """An action-item reminder in Slack mrkdwn (source strings escaped)."""
    head, lines = reminder_lines(team, items, day, bold=lambda t: f"*{t}*", escape=mrkdwn.escape)
    return head + "\n" + "\n".join(lines) + "\nMark them done with `/kpi actions`."
