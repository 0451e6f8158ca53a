"""A fake Bot Framework (Microsoft Teams) on loopback: the OpenID metadata and JWKS whose key
signs inbound activities, the OAuth client-credentials token endpoint and the connector's
conversation API, recording every activity the bot sends.

The key pair is generated per fake; tests sign the activities they send to ``/api/messages``
with :meth:`FakeTeams.token` (RS256, issuer ``https://api.botframework.com``, audience the
app id, ``serviceurl`` the fake's connector)::

    with FakeTeams() as teams:
        env = {"TEAMS_OPENID_URL": teams.openid_url, "TEAMS_TOKEN_URL": teams.token_url, ...}
        headers = {"Authorization": f"Bearer {teams.token()}"}
        ...
        assert teams.sent[0].activity["attachments"][0]["contentType"] == CARD

Connector routes: ``POST /v3/conversations/{id}/activities`` (and ``.../activities/{id}``,
a reply), ``PUT``/``DELETE /v3/conversations/{id}/activities/{activity id}``; every one
needs a bearer token this fake issued (``401`` otherwise). Rosters:
``GET /v3/conversations/{id}/members`` and ``GET /v3/teams/{id}/members`` answer
``teams.rosters[id]`` (else :meth:`FakeTeams.default_roster`). Faults as for every fake
(``teams.fail("POST", r"/v3/conversations/.*", FakeResponse.json({}, status=429))``).

Proactive messaging: ``POST /v3/conversations`` creates (or finds) the bot's 1:1
conversation with a member (``created`` records each); :meth:`FakeTeams.rate_limit`,
:meth:`FakeTeams.server_error` inject 429 (with ``Retry-After``) and 5xx answers to posts;
:meth:`FakeTeams.remove` makes a conversation answer 403 (the bot was removed) or 404 (it is
gone) from then on; :meth:`FakeTeams.unreachable` makes a user's 1:1 conversation
impossible (403, the app is not installed for them); :meth:`FakeTeams.posted` lists the
activities posted; ``hold_after_post`` keeps an accepted post's answer back (a lost answer).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.fakes.server import FakeRequest, FakeResponse, FakeServer

APP_ID = "00000000-0000-0000-0000-00000000b075"
APP_PASSWORD = "fake-app-password"
TENANT_ID = "72f988bf-0000-0000-0000-000000000001"
ISSUER = "https://api.botframework.com"
KEY_ID = "fake-key-1"


@dataclass
class SentActivity:
    """One call the bot made to the connector: ``method`` POST (new), PUT (update), DELETE."""

    method: str
    conversation: str
    activity_id: str | None
    activity: dict[str, Any]


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class FakeTeams(FakeServer):
    def __init__(self, app_id: str = APP_ID, app_password: str = APP_PASSWORD) -> None:
        super().__init__()
        self.app_id = app_id
        self.app_password = app_password
        self.key = new_key()
        self.sent: list[SentActivity] = []
        self.issued: set[str] = set()
        self._ids = itertools.count(1)
        self._sent_lock = threading.Lock()
        self.route("GET", r"/v1/\.well-known/openidconfiguration", self.openid)
        self.route("GET", r"/v1/\.well-known/keys", self.keys)
        self.route("POST", r"/botframework\.com/oauth2/v2\.0/token", self.issue_token)
        activities = r"/v3/conversations/(?P<conv>[^/]+)/activities"
        one = activities + r"/(?P<aid>[^/]+)"
        self.route("POST", activities, self.post)
        self.route("POST", one, self.post)  # a reply to an activity
        self.route("PUT", one, self.put)
        self.route("DELETE", one, self.delete)
        self.rosters: dict[str, list[dict[str, Any]]] = {}
        self.route("GET", r"/v3/conversations/(?P<conv>[^/]+)/members", self.members)
        self.route("GET", r"/v3/teams/(?P<conv>[^/]+)/members", self.members)
        self.route("POST", r"/v3/conversations", self.create_conversation)
        self.created: list[dict[str, Any]] = []  # the bodies of POST /v3/conversations
        self.removed: dict[str, int] = {}  # conversation -> the status its posts get
        self.unreachable_users: set[str] = set()
        self.hold_after_post = 0.0  # seconds an accepted post's answer is held back

    # ----------------------------------------------------------------- addresses

    @property
    def openid_url(self) -> str:
        return f"{self.url}/v1/.well-known/openidconfiguration"

    @property
    def token_url(self) -> str:
        return f"{self.url}/botframework.com/oauth2/v2.0/token"

    @property
    def service_url(self) -> str:
        return f"{self.url}/"

    # ------------------------------------------------------------------- signing

    def token(
        self,
        *,
        audience: str | None = None,
        service_url: str | None = None,
        issuer: str = ISSUER,
        expires_in: int = 3600,
        key: rsa.RSAPrivateKey | None = None,
        kid: str = KEY_ID,
    ) -> str:
        """A Bot Framework token for an inbound activity (``key``: another key forges it)."""
        now = int(time.time())
        claims = {
            "iss": issuer,
            "aud": audience or self.app_id,
            "serviceurl": service_url or self.service_url,
            "iat": now - 10,
            "nbf": now - 10,
            "exp": now + expires_in,
        }
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": kid})

    def activity(
        self,
        text: str,
        *,
        conversation: str = "19:channel@thread.tacv2",
        conversation_type: str = "channel",
        user: str = "29:user-aad-1",
        tenant: str = TENANT_ID,
        mention: bool = True,
        service_url: str | None = None,
    ) -> dict[str, Any]:
        """A message activity as Teams sends it; in a channel, ``text`` follows a mention of
        the bot (``<at>kpibot</at>``) with the mention entity."""
        body = f"<at>kpibot</at> {text}" if mention else text
        entities = (
            [
                {
                    "type": "mention",
                    "text": "<at>kpibot</at>",
                    "mentioned": {"id": f"28:{self.app_id}", "name": "kpibot"},
                }
            ]
            if mention
            else []
        )
        return {
            "type": "message",
            "id": f"in-{next(self._ids)}",
            "timestamp": "2026-11-20T12:00:00.000Z",
            "serviceUrl": service_url or self.service_url,
            "channelId": "msteams",
            "from": {"id": user, "name": "A person", "aadObjectId": "aad-" + user[-1]},
            "conversation": {
                "id": conversation,
                "conversationType": conversation_type,
                "tenantId": tenant,
            },
            "recipient": {"id": f"28:{self.app_id}", "name": "kpibot"},
            "text": body,
            "entities": entities,
            "channelData": {"tenant": {"id": tenant}},
        }

    # -------------------------------------------------------------------- routes

    def openid(self, req: FakeRequest) -> FakeResponse:
        return FakeResponse.json(
            {
                "issuer": ISSUER,
                "jwks_uri": f"{self.url}/v1/.well-known/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            }
        )

    def keys(self, req: FakeRequest) -> FakeResponse:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": KEY_ID, "use": "sig", "alg": "RS256", "endorsements": ["msteams"]})
        return FakeResponse.json({"keys": [jwk]})

    def issue_token(self, req: FakeRequest) -> FakeResponse:
        form = req.form()
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_id") != self.app_id
            or form.get("client_secret") != self.app_password
        ):
            return FakeResponse.json({"error": "invalid_client"}, status=401)
        token = f"outbound-{next(self._ids)}"
        with self._sent_lock:
            self.issued.add(token)
        return FakeResponse.json(
            {"token_type": "Bearer", "expires_in": 3599, "access_token": token}
        )

    def _authorized(self, req: FakeRequest) -> bool:
        auth = req.headers.get("authorization", "")
        with self._sent_lock:
            return auth.startswith("Bearer ") and auth[7:] in self.issued

    def _record(self, method: str, req: FakeRequest, activity: dict[str, Any]) -> str:
        aid = unquote(req.params["aid"]) if method != "POST" else f"out-{next(self._ids)}"
        with self._sent_lock:
            self.sent.append(SentActivity(method, unquote(req.params["conv"]), aid, activity))
        return aid or ""

    def post(self, req: FakeRequest) -> FakeResponse:
        if not self._authorized(req):
            return FakeResponse.json({"error": {"code": "Unauthorized"}}, status=401)
        conversation = unquote(req.params["conv"]).split(";")[0]
        status = self.removed.get(conversation)
        if status is not None:
            code = "BotNotInConversationRoster" if status == 403 else "ConversationNotFound"
            return FakeResponse.json({"error": {"code": code, "message": code}}, status=status)
        answer = FakeResponse.json({"id": self._record("POST", req, req.json())}, status=201)
        if self.hold_after_post:
            time.sleep(self.hold_after_post)
        return answer

    # ---------------------------------------------------------- proactive messaging

    def create_conversation(self, req: FakeRequest) -> FakeResponse:
        """The bot's 1:1 conversation with one member of the tenant (the same id each time)."""
        if not self._authorized(req):
            return FakeResponse.json({"error": {"code": "Unauthorized"}}, status=401)
        body = req.json()
        members = body.get("members") if isinstance(body, dict) else None
        tenant = ((body or {}).get("channelData") or {}).get("tenant", {}).get("id")
        if not isinstance(members, list) or len(members) != 1 or not tenant:
            return FakeResponse.json({"error": {"code": "BadArgument"}}, status=400)
        user = str(members[0].get("id") or "")
        with self._sent_lock:
            self.created.append(body)
        if user in self.unreachable_users:
            code = "Forbidden"  # the app is not installed in the user's personal scope
            return FakeResponse.json({"error": {"code": code, "message": code}}, status=403)
        return FakeResponse.json({"id": f"a:1on1-{user}"}, status=201)

    def rate_limit(self, retry_after: int = 1, times: int = 1, pattern: str = ".*") -> None:
        """The next ``times`` posts to conversations matching ``pattern`` get 429."""
        response = FakeResponse.json(
            {"error": {"code": "Throttled"}}, status=429, headers={"Retry-After": str(retry_after)}
        )
        self.fail("POST", rf"/v3/conversations/{pattern}/activities", response, times=times)

    def server_error(self, status: int = 503, times: int = 1, pattern: str = ".*") -> None:
        """The next ``times`` posts to conversations matching ``pattern`` get ``status``."""
        response = FakeResponse.json({"error": {"code": "ServiceError"}}, status=status)
        self.fail("POST", rf"/v3/conversations/{pattern}/activities", response, times=times)

    def remove(self, conversation: str, status: int = 404) -> None:
        """From now on posts to ``conversation`` get ``status`` (403: the bot was removed from
        the team; 404: the conversation is gone)."""
        self.removed[conversation] = status

    def unreachable(self, user: str) -> None:
        self.unreachable_users.add(user)

    def posted(self, conversation: str | None = None) -> list[SentActivity]:
        """The new activities posted (every conversation, or one; replies in a thread count
        for their conversation), oldest first."""
        with self._sent_lock:
            return [
                a
                for a in self.sent
                if a.method == "POST"
                and (conversation is None or a.conversation.split(";")[0] == conversation)
            ]

    def put(self, req: FakeRequest) -> FakeResponse:
        if not self._authorized(req):
            return FakeResponse.json({"error": {"code": "Unauthorized"}}, status=401)
        return FakeResponse.json({"id": self._record("PUT", req, req.json())})

    def delete(self, req: FakeRequest) -> FakeResponse:
        if not self._authorized(req):
            return FakeResponse.json({"error": {"code": "Unauthorized"}}, status=401)
        self._record("DELETE", req, {})
        return FakeResponse(200)

    @staticmethod
    def member(
        user: str, name: str, *, tenant: str = TENANT_ID, role: str = "user"
    ) -> dict[str, Any]:
        """A roster entry as the Bot Framework gives it (``user``: the AAD object id)."""
        return {
            "id": f"29:{user}",
            "aadObjectId": user,
            "name": name,
            "givenName": name.split()[0],
            "userPrincipalName": f"{user}@example.com",
            "tenantId": tenant,
            "userRole": role,
        }

    def default_roster(self) -> list[dict[str, Any]]:
        """The people of :meth:`activity`'s default senders (``aad-1`` .. ``aad-3``)."""
        return [self.member(f"aad-{i}", f"Person {i}") for i in (1, 2, 3)]

    def members(self, req: FakeRequest) -> FakeResponse:
        if not self._authorized(req):
            return FakeResponse.json({"error": {"code": "Unauthorized"}}, status=401)
        conv = unquote(req.params["conv"])
        return FakeResponse.json(self.rosters.get(conv, self.default_roster()))

    def invoke(
        self,
        name: str,
        value: dict[str, Any],
        *,
        conversation: str = "19:channel@thread.tacv2",
        conversation_type: str = "channel",
        user: str = "29:user-aad-1",
        tenant: str = TENANT_ID,
    ) -> dict[str, Any]:
        """An ``invoke`` activity (a card button, a dialog's fetch or submit)."""
        activity = self.activity(
            "",
            conversation=conversation,
            conversation_type=conversation_type,
            user=user,
            tenant=tenant,
            mention=False,
        )
        activity.update({"type": "invoke", "name": name, "value": value})
        del activity["text"]
        return activity

    def execute(self, verb: str, data: dict[str, Any], **kw: Any) -> dict[str, Any]:
        """An ``Action.Execute`` click: ``adaptiveCard/action`` with the button's verb."""
        action = {"type": "Action.Execute", "verb": verb, "data": data}
        return self.invoke("adaptiveCard/action", {"action": action, "trigger": "manual"}, **kw)

    def wait_sent(self, count: int = 1, timeout: float = 10.0) -> list[SentActivity]:
        """The activities sent so far, once there are at least ``count`` (or the timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._sent_lock:
                if len(self.sent) >= count:
                    return list(self.sent)
            time.sleep(0.02)
        with self._sent_lock:
            return list(self.sent)
