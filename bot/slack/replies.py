"""Sending answers to Slack reliably: the command's response URL with retries and a
``chat.postEphemeral`` fallback, channel posts whose Slack errors become advice, and the retry
policy every ``WebClient`` of the app uses (429 with Retry-After, 5xx, dropped connections).

A response URL comes from a request body, so it is posted to only when it points at Slack's
hooks host (:func:`response_url_allowed`, the one place that decides) and never through a
redirect.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import (
    ConnectionErrorRetryHandler,
    HttpRequest,
    HttpResponse,
    RetryHandler,
    RetryState,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.jitter import Jitter

from bot.settings import DEFAULT_SLACK_HOOKS_URL

log = logging.getLogger("kpibot.slack")

SLACK_HOOKS_URL = DEFAULT_SLACK_HOOKS_URL
RESPONSE_URL_TIMEOUT = 10.0  # seconds for one post to a response URL


def _parse(url: str) -> httpx.URL | None:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return None
    if parsed.scheme not in ("https", "http") or not parsed.host or parsed.userinfo:
        return None
    return parsed


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    return url.scheme, url.host.lower(), url.port or (443 if url.scheme == "https" else 80)


def response_url_allowed(url: object, hooks_url: str = SLACK_HOOKS_URL) -> bool:
    """True when ``url`` may be posted to: same scheme, host and port as ``hooks_url``
    (``https://hooks.slack.com/`` unless configured), under its path, without credentials.
    Every post to a response URL asks this first. The URL is parsed by httpx, the client
    that sends the post, so the check and the request cannot read it differently."""
    if not isinstance(url, str) or len(url) > 2048:
        return False
    parsed, base = _parse(url), _parse(hooks_url)
    if parsed is None or base is None:
        return False
    base_path = base.path if base.path.endswith("/") else base.path + "/"
    return _origin(parsed) == _origin(base) and parsed.path.startswith(base_path)


def post_response_url(
    url: object,
    payload: dict[str, Any],
    hooks_url: str = SLACK_HOOKS_URL,
    timeout: float = RESPONSE_URL_TIMEOUT,
) -> int | None:
    """POST ``payload`` as JSON to a response URL; returns the HTTP status, or None when
    the URL is not Slack's (nothing is sent). Redirects are not followed. httpx rather than
    Bolt's ``respond()``: that one posts to any URL in the body and follows redirects."""
    if not response_url_allowed(url, hooks_url):
        log.warning("not posting to a response URL outside %s", hooks_url)
        return None
    assert isinstance(url, str)
    body = {k: v for k, v in payload.items() if v is not None}
    resp = httpx.post(httpx.URL(url), json=body, timeout=timeout, follow_redirects=False)
    return resp.status_code


CHANNEL_ADVICE = {
    "not_in_channel": "I'm not in this channel yet: invite me with `/invite @kpibot`, then try "
    "again.",
    "channel_not_found": "I can't see this channel (private channels need an invite: "
    "`/invite @kpibot`).",
    "is_archived": "This channel is archived, so I can't post here.",
    "restricted_action": "This workspace doesn't let apps post in this channel.",
    "msg_too_long": "That answer was too long for Slack; try a shorter period or one team.",
    "ratelimited": "Slack is rate-limiting me right now; please try again in a minute.",
}


def advice(exc: SlackApiError) -> str:
    error = str(exc.response.get("error") or "")
    return CHANNEL_ADVICE.get(
        error, f"Slack refused that ({error or exc.response.status_code}); please try again."
    )


class ProportionalJitter(Jitter):
    """Up to half the interval again, at random (the SDK's default adds up to a whole second,
    whatever the backoff)."""

    def recalculate(self, duration: float) -> float:
        return duration * (1 + random.random() / 2)


def _backoff(factor: float) -> BackoffRetryIntervalCalculator:
    return BackoffRetryIntervalCalculator(backoff_factor=factor, jitter=ProportionalJitter())


class RetryAfterHandler(RetryHandler):
    """Retry a 429 after the server's Retry-After seconds, capped at ``max_wait``."""

    def __init__(self, max_retry_count: int = 3, max_wait: float = 30.0) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code == 429

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        wait = 1.0
        if response is not None:
            for k, v in response.headers.items():
                if k.lower() == "retry-after":
                    raw = v[0] if isinstance(v, list) else v
                    try:
                        wait = float(raw)
                    except ValueError:
                        wait = 1.0
        state.next_attempt_requested = True
        time.sleep(min(max(wait, 0.0), self.max_wait))
        state.increment_current_attempt()


class ServerErrorHandler(RetryHandler):
    """Retry 5xx answers with exponential backoff."""

    def __init__(self, max_retry_count: int = 2, backoff: float = 0.5) -> None:
        super().__init__(max_retry_count=max_retry_count, interval_calculator=_backoff(backoff))

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code >= 500


def retry_handlers(backoff: float = 0.5, max_wait: float = 30.0) -> list[RetryHandler]:
    return [
        ConnectionErrorRetryHandler(max_retry_count=2, interval_calculator=_backoff(backoff)),
        RetryAfterHandler(max_retry_count=3, max_wait=max_wait),
        ServerErrorHandler(max_retry_count=2, backoff=backoff),
    ]


Respond = Callable[..., Any]


def send(
    respond: Respond | None,
    client: WebClient,
    payload: dict[str, Any],
    *,
    channel: str | None,
    user: str | None,
    retries: int = 2,
    backoff: float = 0.5,
    replace_original: bool | None = None,
    hooks_url: str = SLACK_HOOKS_URL,
) -> bool:
    """Answer through the response URL of ``respond`` (Bolt's, from the verified request),
    retrying 429/5xx; when that keeps failing, or the URL is not Slack's, fall back to
    ``chat.postEphemeral``. True when the user got the answer."""
    body = dict(payload)
    if replace_original is not None:
        body["replace_original"] = replace_original
    # None e.g. for a button in App Home: there is no response URL to answer on
    url = getattr(respond, "response_url", None) if respond is not None else None
    if url is not None:
        for attempt in range(retries + 1):
            try:
                status = post_response_url(url, body, hooks_url)
                if status is None:
                    break
                if status < 300:
                    return True
                log.warning("response_url answered %s (attempt %d)", status, attempt + 1)
                if status < 500 and status != 429:
                    break
            except httpx.HTTPError as exc:
                log.warning("response_url failed: %s (attempt %d)", type(exc).__name__, attempt + 1)
            time.sleep(backoff * (2**attempt))
    if channel and user:
        try:
            client.chat_postEphemeral(
                channel=channel, user=user, text=body.get("text", ""), blocks=body.get("blocks")
            )
            return True
        except SlackApiError as exc:
            log.warning("chat.postEphemeral failed: %s", exc.response.get("error"))
    if user:  # last resort: a direct message
        try:
            client.chat_postMessage(
                channel=user, text=body.get("text", ""), blocks=body.get("blocks")
            )
            return True
        except SlackApiError as exc:
            log.warning("direct message failed: %s", exc.response.get("error"))
    return False


def post(client: WebClient, channel: str, payload: dict[str, Any], **extra: Any) -> str | None:
    """Post to a channel; returns None on success, else advice for the user."""
    try:
        client.chat_postMessage(
            channel=channel, text=payload.get("text", ""), blocks=payload.get("blocks"), **extra
        )
        return None
    except SlackApiError as exc:
        log.warning("chat.postMessage to %s failed: %s", channel, exc.response.get("error"))
        return advice(exc)
