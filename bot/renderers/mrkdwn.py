"""Source-provided strings in Slack mrkdwn: the one escaping function and the one link policy.

Every string that comes from a source (PR titles and URLs, incident titles, repository and
team names, action-item text typed by users...) goes through ``escape`` before it is put in
an mrkdwn text, so ``<!channel>``, ``<@U…>`` or ``<https://…|…>`` in it are shown as typed
and never act. The mrkdwn text objects themselves are ``verbatim`` (``bot.renderers.blocks``),
so Slack does not turn a bare URL or ``@channel`` in them into a link or a mention either.

A source URL becomes a link only when ``Links`` allows it: ``https://`` on the web host of a
configured provider (GitHub from ``GITHUB_API_URL``, Jira from ``JIRA_URL``, PagerDuty and
Opsgenie account hosts from their API URLs). Any other URL is shown as escaped plain text.
The surfaces build ``Links`` from their settings; renderers only receive it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

# Slack's control characters (https://docs.slack.dev/messaging/formatting-message-text)
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
# characters that would end or split a link's URL part, or break the line
_NOT_IN_LINK = re.compile(r"[\s<>|\"'`\\\x00-\x1f\x7f]")
_USER_ID = re.compile(r"[UWB][A-Z0-9]{1,30}")
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{1,30}")


def escape(s: str) -> str:
    """``s`` made inert in mrkdwn: ``&``, ``<`` and ``>`` escaped, so no mention, link or
    special command (``<!channel>``) can be formed from it."""
    return s.translate(_ESCAPES)


class ProviderUrls(Protocol):
    """Where the configured providers live (``bot.settings.Settings`` has these)."""

    @property
    def github_api_url(self) -> str: ...
    @property
    def jira_url(self) -> str | None: ...
    @property
    def pagerduty_api_url(self) -> str: ...
    @property
    def opsgenie_api_url(self) -> str: ...


def _host(url: str | None) -> str | None:
    if not url:
        return None
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    return host.lower().rstrip(".") if host else None


def github_web_host(api_url: str) -> str | None:
    """github.com for ``https://api.github.com``; ``ghe.acme.io`` for a GitHub Enterprise
    Server ``https://ghe.acme.io/api/v3``; otherwise the API URL's own host."""
    host = _host(api_url)
    return "github.com" if host == "api.github.com" else host


def _account_domain(api_url: str, prefix: str = "") -> str | None:
    """``api.pagerduty.com`` -> ``pagerduty.com`` (account hosts ``acme.pagerduty.com``);
    ``api.eu.opsgenie.com`` with prefix ``app.`` -> ``app.eu.opsgenie.com``."""
    host = _host(api_url)
    if host is None or not host.startswith("api."):
        return None
    return prefix + host.removeprefix("api.")


@dataclass(frozen=True)
class Links:
    """Which source URLs may be links in chat: https on one of ``hosts``, or on a subdomain
    of one of ``domains``."""

    hosts: frozenset[str] = frozenset({"github.com"})
    domains: frozenset[str] = frozenset()

    @classmethod
    def of(cls, providers: ProviderUrls) -> Links:
        hosts = {github_web_host(providers.github_api_url), _host(providers.jira_url)}
        domains = {
            _account_domain(providers.pagerduty_api_url),
            _account_domain(providers.opsgenie_api_url, "app."),
        }
        return cls(frozenset(h for h in hosts if h), frozenset(d for d in domains if d))

    def allows(self, url: str | None) -> bool:
        if not url or _NOT_IN_LINK.search(url):
            return False
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return False
        host = _host(url)
        if parts.scheme != "https" or host is None or parts.username or parts.password:
            return False
        if port not in (None, 443):
            return False
        return host in self.hosts or any(host.endswith("." + d) for d in self.domains)


GITHUB_COM = Links()  # the default: links to github.com only


def link(url: str | None, text: str, links: Links) -> str:
    """``text`` linked to ``url`` when ``links`` allows it; otherwise the text, and the URL
    (if any) as plain text after it. Both are source strings: they are escaped here."""
    if url and links.allows(url):
        return f"<{escape(url)}|{escape(text)}>"
    if url:
        return f"{escape(text)} ({escape(url)})"
    return escape(text)


def user(user_id: str) -> str:
    """A mention of a Slack user id; anything that is not an id is shown as text."""
    return f"<@{user_id}>" if _USER_ID.fullmatch(user_id) else escape(user_id)


def channel(channel_id: str) -> str:
    """A link to a Slack channel id; anything that is not an id is shown as text."""
    return f"<#{channel_id}>" if _CHANNEL_ID.fullmatch(channel_id) else escape(channel_id)
