"""Outbound calls to the Bot Framework connector: an app token from ``TEAMS_TOKEN_URL``
(OAuth client credentials, cached until shortly before it expires) and the conversation
API (send, update, delete an activity).

This is a small httpx client of kpibot's own rather than the Teams SDK's: the SDK gets its
token through MSAL, which builds every endpoint as ``https://<authority host>/<tenant>``, so
it cannot be pointed at a plain-HTTP loopback token endpoint (the tests' fake), and kpibot's
HTTP mode serves requests on waitress's threads, not on the SDK's asyncio app.
"""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import quote

import httpx

BOT_SCOPE = "https://api.botframework.com/.default"
EARLY = 300  # renew a token this many seconds before it expires


class ConnectorError(Exception):
    """The connector (or its token endpoint) refused or failed a call."""


class Connector:
    def __init__(
        self,
        app_id: str,
        app_password: str,
        token_url: str,
        *,
        timeout: float = 10.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.app_id = app_id
        self._password = app_password
        self.token_url = token_url
        self.http = client or httpx.Client(timeout=timeout, follow_redirects=False)
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if self._token is not None and self._token[1] > time.monotonic():
                return self._token[0]
            resp = self.http.post(
                self.token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.app_id,
                    "client_secret": self._password,
                    "scope": BOT_SCOPE,
                },
            )
            if resp.status_code != 200:
                # the body may echo the request; the status says enough (and holds no secret)
                raise ConnectorError(f"the Teams token endpoint answered {resp.status_code}")
            body = resp.json()
            token = str(body["access_token"])
            expires = float(body.get("expires_in", 3600))
            self._token = (token, time.monotonic() + max(0.0, expires - EARLY))
            return token

    def _url(self, service_url: str, conversation: str, activity_id: str | None = None) -> str:
        base = service_url.rstrip("/")
        url = f"{base}/v3/conversations/{quote(conversation, safe='')}/activities"
        return f"{url}/{quote(activity_id, safe='')}" if activity_id else url

    def _call(self, method: str, url: str, activity: dict[str, Any] | None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token()}"}
        resp = self.http.request(method, url, json=activity, headers=headers)
        if resp.status_code >= 300:
            raise ConnectorError(f"the Teams connector answered {resp.status_code} to {method}")
        try:
            out = resp.json()
        except ValueError:
            return {}
        return out if isinstance(out, dict) else {}

    def send(self, service_url: str, conversation: str, activity: dict[str, Any]) -> str:
        """Post ``activity`` to the conversation; the new activity's id."""
        out = self._call("POST", self._url(service_url, conversation), activity)
        return str(out.get("id") or "")

    def update(
        self, service_url: str, conversation: str, activity_id: str, activity: dict[str, Any]
    ) -> None:
        self._call("PUT", self._url(service_url, conversation, activity_id), activity)

    def delete(self, service_url: str, conversation: str, activity_id: str) -> None:
        self._call("DELETE", self._url(service_url, conversation, activity_id), None)

    def members(self, service_url: str, conversation: str) -> list[dict[str, Any]]:
        """The conversation's roster (``GET /v3/conversations/{id}/members``): each member's
        ``id``, ``aadObjectId``, ``name``, ``tenantId`` and ``userRole`` (``user`` or
        ``guest``; the Bot Framework does not tell team owners apart)."""
        url = f"{service_url.rstrip('/')}/v3/conversations/{quote(conversation, safe='')}/members"
        headers = {"Authorization": f"Bearer {self.token()}"}
        resp = self.http.get(url, headers=headers)
        if resp.status_code >= 300:
            raise ConnectorError(f"the Teams connector answered {resp.status_code} to GET")
        try:
            out = resp.json()
        except ValueError:
            return []
        return [m for m in out if isinstance(m, dict)] if isinstance(out, list) else []

    # ------------------------------------------------------------ proactive messaging

    def activities_url(
        self, service_url: str, conversation: str, activity_id: str | None = None
    ) -> str:
        """The URL that posts to a conversation (or replies to one of its activities)."""
        return self._url(service_url, conversation, activity_id)

    def conversations_url(self, service_url: str) -> str:
        """The URL that creates a conversation (the bot's 1:1 chat with a user)."""
        return f"{service_url.rstrip('/')}/v3/conversations"

    def request(
        self, method: str, url: str, body: dict[str, Any] | None, *, timeout: float | None = None
    ) -> httpx.Response:
        """One call with the app token; the answer as it came (the caller reads its status)."""
        headers = {"Authorization": f"Bearer {self.token()}"}
        if timeout is None:
            return self.http.request(method, url, json=body, headers=headers)
        return self.http.request(method, url, json=body, headers=headers, timeout=timeout)
