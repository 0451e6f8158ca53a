"""Authenticating inbound Teams activities: the Bot Framework JWT in ``Authorization``.

The Teams SDK's :class:`TokenValidator` checks the token (RS256 signature with a key of the
Bot Framework's JWKS, issuer, audience = the bot's app id, expiry, and the ``serviceurl``
claim = the activity's ``serviceUrl``). The SDK derives the keys' address from its cloud's
OpenID metadata URL by name; kpibot reads the ``jwks_uri`` from the metadata at
``TEAMS_OPENID_URL`` instead (once, then cached), so the same code works against
Microsoft's endpoints and a loopback fake. The keys themselves are cached by PyJWT's
``PyJWKClient`` inside the SDK.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import httpx
import jwt
from microsoft_teams.apps.auth.token_validator import JwtValidationOptions, TokenValidator

log = logging.getLogger("kpibot.teams")

BOT_FRAMEWORK_ISSUER = "https://api.botframework.com"


class NotAuthenticated(Exception):
    """The request's token is missing, forged, expired or not for this bot."""


class ActivityAuth:
    def __init__(self, app_id: str, openid_url: str, *, timeout: float = 10.0) -> None:
        self.app_id = app_id
        self.openid_url = openid_url
        self.timeout = timeout
        self._validator: TokenValidator | None = None
        self._lock = threading.Lock()

    def validator(self) -> TokenValidator:
        with self._lock:
            if self._validator is None:
                meta = httpx.get(self.openid_url, timeout=self.timeout, follow_redirects=False)
                meta.raise_for_status()
                jwks_uri = meta.json()["jwks_uri"]
                if not isinstance(jwks_uri, str):
                    raise ValueError("the OpenID metadata has no jwks_uri")
                self._validator = TokenValidator(
                    JwtValidationOptions(
                        valid_issuers=[BOT_FRAMEWORK_ISSUER],
                        valid_audiences=[self.app_id],
                        jwks_uri=jwks_uri,
                    )
                )
            return self._validator

    @staticmethod
    def check_service_url(claims: dict[str, Any], service_url: str) -> None:
        """The token (its ``claims``, validated) was issued for the connector at
        ``service_url``, as the SDK's validator compares them; else :class:`NotAuthenticated`."""
        issued_for = claims.get("serviceurl")
        if not isinstance(issued_for, str) or issued_for.rstrip("/") != service_url.rstrip("/"):
            raise NotAuthenticated("the token was issued for another serviceUrl")

    def claims(self, authorization: str | None, service_url: str | None = None) -> dict[str, Any]:
        """The token's claims, or :class:`NotAuthenticated`; with ``service_url``, the token
        must have been issued for that connector."""
        if not self.app_id:
            raise NotAuthenticated("TEAMS_APP_ID is not set")
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated("no bearer token")
        try:
            return asyncio.run(self.validator().validate_token(token.strip(), service_url))
        except jwt.PyJWTError as exc:  # forged, expired, wrong audience, unknown key
            raise NotAuthenticated(type(exc).__name__) from exc
