"""A fake Slack Web API on loopback that records every call and can answer with faults.

Point a ``WebClient`` at ``fake.api_url`` (``base_url``); response URLs handed to the app
(``fake.response_url()``) are served by the same server, and so are the upload URLs of
files upload v2. Every call is kept in ``fake.calls`` as a :class:`SlackCall`::

    with FakeSlack() as slack:
        client = WebClient(token="xoxb-test", base_url=slack.api_url)
        client.chat_postMessage(channel="C1", text="hi")
        assert slack.calls_to("chat.postMessage")[0].args["channel"] == "C1"

Faults (served before the real handler, ``times`` requests in a row)::

    slack.rate_limit("chat.postMessage", retry_after=0)       # HTTP 429 with Retry-After
    slack.server_error("views.open")                           # HTTP 500
    slack.slack_error("chat.postMessage", "channel_not_found") # 200 {"ok": false, ...}
    slack.fail_response_url(status=500)                        # response_url posts fail

Users: ``slack.add_user("U1", admin=True, tz="Europe/Berlin")`` (``team="T0OTHER"`` for a
person of another workspace, as in Slack Connect); unknown users are plain members in UTC.
Channels: ``slack.add_channel("C1", name="payments", member=True, private=False)``;
``chat.postMessage`` to a channel the bot is not a member of answers ``not_in_channel``
when the channel is known, and any channel is accepted when none are registered.
``conversations.info`` answers ``channel_not_found`` for a private channel the bot is not
in (as Slack does); ``conversations.join`` joins public channels only.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from tests.fakes.server import FakeRequest, FakeResponse, FakeServer

BOT_TOKEN = "xoxb-fake-bot-token"


def _api_path(method: str) -> str:
    return "/api/" + re.escape(method)


BOT_USER = "UBOT0001"
TEAM_ID = "T0FAKE001"


@dataclass
class SlackCall:
    """One Web API call (``method`` like ``chat.postMessage``) or a response_url post
    (``method`` ``"response_url"``) or a file upload (``method`` ``"upload"``)."""

    method: str
    args: dict[str, Any]
    token: str | None
    path: str
    at: float = field(default_factory=time.monotonic)

    @property
    def blocks(self) -> list[dict[str, Any]]:
        raw = self.args.get("blocks")
        if isinstance(raw, str):
            return list(json.loads(raw))
        return list(raw or [])

    @property
    def view(self) -> dict[str, Any]:
        raw = self.args.get("view")
        if isinstance(raw, str):
            return dict(json.loads(raw))
        return dict(raw or {})

    def text_of(self) -> str:
        """The message text and every text inside its blocks or view, joined (for asserts)."""
        parts: list[str] = [str(self.args.get("text") or "")]

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                for k, v in node.items():
                    if k == "text" and isinstance(v, str):
                        parts.append(v)
                    else:
                        walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)

        walk(self.blocks)
        walk(self.view)
        return "\n".join(p for p in parts if p)


def _args(req: FakeRequest) -> dict[str, Any]:
    args: dict[str, Any] = {k: v[-1] for k, v in req.query.items()}
    ctype = req.headers.get("content-type", "")
    if req.body:
        if "json" in ctype:
            body = req.json()
            if isinstance(body, dict):
                args.update(body)
        elif "form" in ctype:
            args.update({k: v[-1] for k, v in parse_qs(req.body.decode("utf-8")).items()})
    return args


class FakeSlack(FakeServer):
    """The subset of the Slack Web API kpibot uses, plus response URLs and file uploads."""

    def __init__(self, token: str = BOT_TOKEN) -> None:
        super().__init__()
        self.token = token
        self.calls: list[SlackCall] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.views: dict[str, dict[str, Any]] = {}
        self.home_views: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, bytes] = {}
        self._ids = itertools.count(1)
        self._calls_lock = threading.Lock()
        self._changed = threading.Condition(self._calls_lock)
        self.route("POST", r"/response/(?P<hook>[\w-]+)", self._response_url)
        self.route("POST", r"/upload/(?P<file_id>\w+)", self._upload)
        self.route("POST", r"/api/(?P<method>[\w.]+)", self._api)
        self.route("GET", r"/api/(?P<method>[\w.]+)", self._api)

    # ------------------------------------------------------------------ set-up

    @property
    def api_url(self) -> str:
        """The Web API base URL (``SLACK_API_URL``), with the trailing slash WebClient wants."""
        return self.url + "/api/"

    def response_url(self, hook: str | None = None) -> str:
        return f"{self.url}/response/{hook or f'hook{next(self._ids)}'}"

    def add_user(
        self,
        user_id: str,
        *,
        admin: bool = False,
        tz: str = "UTC",
        name: str | None = None,
        team: str = TEAM_ID,
        email: str | None = None,
    ) -> None:
        self.users[user_id] = {
            "id": user_id,
            "team_id": team,
            "name": name or user_id.lower(),
            "real_name": name or user_id,
            "is_admin": admin,
            "is_owner": False,
            "is_bot": False,
            "tz": tz,
            "profile": {"display_name": name or user_id.lower(), "email": email or ""},
        }

    def add_channel(
        self,
        channel_id: str,
        *,
        name: str | None = None,
        member: bool = True,
        private: bool = False,
        archived: bool = False,
    ) -> None:
        self.channels[channel_id] = {
            "id": channel_id,
            "name": name or channel_id.lower(),
            "is_channel": not private,
            "is_group": private,
            "is_private": private,
            "is_member": member,
            "is_archived": archived,
        }

    def rate_limit(self, method: str, *, retry_after: int = 0, times: int = 1) -> None:
        self.fail(
            "POST",
            _api_path(method),
            FakeResponse.json(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(retry_after)},
            ),
            times=times,
        )

    def server_error(self, method: str, *, status: int = 500, times: int = 1) -> None:
        self.fail(
            "POST",
            _api_path(method),
            FakeResponse.text("upstream failure", status=status),
            times=times,
        )

    def slack_error(self, method: str, error: str, *, times: int = 1) -> None:
        self.fail(
            "POST",
            _api_path(method),
            FakeResponse.json({"ok": False, "error": error}),
            times=times,
        )

    def fail_response_url(self, *, status: int = 500, times: int = 1) -> None:
        self.fail(
            "POST", r"/response/[\w-]+", FakeResponse.text("failure", status=status), times=times
        )

    # ---------------------------------------------------------------- reading

    def calls_to(self, method: str) -> list[SlackCall]:
        with self._calls_lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 10.0) -> list[SlackCall]:
        """Block until ``count`` calls of ``method`` arrived (slow work runs after ack)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                hits = [c for c in self.calls if c.method == method]
                if len(hits) >= count:
                    return hits
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = sorted({c.method for c in self.calls})
                    raise AssertionError(
                        f"expected {count} {method} call(s), got {len(hits)}; calls seen: {seen}"
                    )
                self._changed.wait(left)

    def reset(self) -> None:
        """Forget every call, request, fault, user, channel, view and upload (a fresh fake)."""
        with self._calls_lock:
            self.calls.clear()
        with self._lock:
            self.requests.clear()
        self.clear_faults()
        for d in (self.users, self.channels, self.views, self.home_views, self.uploads):
            d.clear()

    # ---------------------------------------------------------------- serving

    def _record(self, method: str, args: dict[str, Any], req: FakeRequest) -> SlackCall:
        auth = req.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else args.get("token")
        call = SlackCall(method, args, token, req.path)
        with self._changed:
            self.calls.append(call)
            self._changed.notify_all()
        return call

    def _response_url(self, req: FakeRequest) -> FakeResponse:
        self._record("response_url", _args(req) or dict(req.json() or {}), req)
        return FakeResponse.text("ok")

    def _upload(self, req: FakeRequest) -> FakeResponse:
        self.uploads[req.params["file_id"]] = req.body
        self._record("upload", {"file_id": req.params["file_id"], "size": len(req.body)}, req)
        return FakeResponse.text("OK - " + str(len(req.body)))

    def _api(self, req: FakeRequest) -> FakeResponse:
        method = req.params["method"]
        args = _args(req)
        call = self._record(method, args, req)
        if call.token != self.token:
            return FakeResponse.json({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return FakeResponse.json({"ok": False, "error": "unknown_method"})
        result: dict[str, Any] = handler(args)
        return FakeResponse.json(result)

    def _ts(self) -> str:
        return f"{int(time.time())}.{next(self._ids):06d}"

    def _channel_error(self, channel: str | None) -> str | None:
        if not channel:
            return "channel_not_found"
        if channel.startswith(("U", "D", "W")):
            return None
        if not self.channels:
            return None
        ch = self.channels.get(channel)
        if ch is None:
            return "channel_not_found"
        if not ch["is_member"]:
            return "not_in_channel"
        return None

    # Web API methods --------------------------------------------------------------

    def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://fake.slack.com/",
            "team": "Fake",
            "user": "kpibot",
            "team_id": TEAM_ID,
            "user_id": BOT_USER,
            "bot_id": "BFAKE001",
        }

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        error = self._channel_error(args.get("channel"))
        if error:
            return {"ok": False, "error": error}
        ts = self._ts()
        return {"ok": True, "channel": args["channel"], "ts": ts, "message": {"ts": ts}}

    def _m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        error = self._channel_error(args.get("channel"))
        if error:
            return {"ok": False, "error": error}
        return {"ok": True, "message_ts": self._ts()}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts")}

    def _m_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        view = args.get("view")
        view = json.loads(view) if isinstance(view, str) else dict(view or {})
        view_id = f"V{next(self._ids):08d}"
        view.update({"id": view_id, "hash": f"h{view_id}"})
        self.views[view_id] = view
        return {"ok": True, "view": view}

    def _m_views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        view = json.loads(view) if isinstance(view, str) else dict(view or {})
        view_id = str(args.get("view_id") or f"V{next(self._ids):08d}")
        view.update({"id": view_id})
        self.views[view_id] = view
        return {"ok": True, "view": view}

    def _m_views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        view = json.loads(view) if isinstance(view, str) else dict(view or {})
        user = str(args.get("user_id"))
        self.home_views[user] = view
        return {"ok": True, "view": {**view, "id": f"VH{user}"}}

    def _m_users_lookupByEmail(self, args: dict[str, Any]) -> dict[str, Any]:
        email = str(args.get("email") or "").lower()
        for user in self.users.values():
            if str(user.get("profile", {}).get("email", "")).lower() == email and email:
                return {"ok": True, "user": user}
        return {"ok": False, "error": "users_not_found"}

    def _m_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("user") or "")
        if not user:
            return {"ok": False, "error": "user_not_found"}
        if user not in self.users:
            self.add_user(user)
        return {"ok": True, "user": self.users[user]}

    def _m_conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        ch = self.channels.get(channel)
        if ch is not None and not (ch["is_private"] and not ch["is_member"]):
            return {"ok": True, "channel": ch}
        if not self.channels and channel:
            return {
                "ok": True,
                "channel": {"id": channel, "name": channel.lower(), "is_member": True},
            }
        return {"ok": False, "error": "channel_not_found"}

    def _m_conversations_join(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        ch = self.channels.get(channel)
        if ch is None:
            if self.channels or not channel:
                return {"ok": False, "error": "channel_not_found"}
            return {"ok": True, "channel": {"id": channel, "is_member": True}}
        if ch["is_private"]:
            return {"ok": False, "error": "method_not_supported_for_channel_type"}
        if ch["is_archived"]:
            return {"ok": False, "error": "is_archived"}
        ch["is_member"] = True
        return {"ok": True, "channel": ch}

    def _m_files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("filename") or not str(args.get("length") or "").isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._ids):08d}"
        return {"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        files = args.get("files")
        files = json.loads(files) if isinstance(files, str) else list(files or [])
        channel = args.get("channel_id")
        if channel:
            error = self._channel_error(str(channel))
            if error:
                return {"ok": False, "error": error}
        missing = [f["id"] for f in files if f.get("id") not in self.uploads]
        if missing:
            return {"ok": False, "error": "file_not_found"}
        return {
            "ok": True,
            "files": [{"id": f["id"], "title": f.get("title")} for f in files],
        }
