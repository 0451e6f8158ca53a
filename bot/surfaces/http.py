"""HTTP mode: one WSGI app serving Slack's requests and the health check, run by waitress.

Routes are a plain table of (method, path) -> handler; a handler takes an :class:`HttpRequest`
and returns an :class:`HttpResponse`. Adding an endpoint is one entry::

    http_app.add_route("POST", "/webhooks/github", handle_github)

A route may name a ``verify`` function: a request it does not accept (or that makes it
raise) gets 401 before the handler sees it. ``POST /slack/events`` is verified that way
against the signing secret, on the raw bytes, before anything parses the body; then Bolt
(which verifies again) dispatches it, and a verified body Bolt cannot parse gets 400.
``GET /healthz`` checks the database and answers ``{"ok": true, "database": "ok", "slack":
"ok"}`` (503 when the database is unreachable; Slack's state does not change ``ok``).

:class:`Server` sets waitress's own limits from the routes: a body over the largest route
limit or headers over :data:`MAX_HEADERS` are refused before they are read, and a connection
idle for :data:`CHANNEL_TIMEOUT` seconds (a body that stops arriving) is closed.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from slack_bolt import App, BoltRequest
from slack_sdk.signature import SignatureVerifier

if TYPE_CHECKING:
    from bot.slack.app import KpiApp

log = logging.getLogger("kpibot.http")

MAX_BODY = 1024 * 1024  # Slack payloads are far smaller; anything bigger is refused
MAX_HEADERS = 64 * 1024  # all request headers together
SLACK_MEDIA_TYPES = ("application/x-www-form-urlencoded", "application/json")  # what Slack sends
CHANNEL_TIMEOUT = 30  # seconds a connection may stay idle, e.g. in the middle of a body

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


@dataclass
class HttpRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    # what the route's verify established about the sender (e.g. a token's claims), so the
    # handler does not verify again
    verified: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass
class HttpResponse:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200) -> HttpResponse:
        return cls(
            status,
            json.dumps(payload).encode("utf-8"),
            {"Content-Type": "application/json; charset=utf-8"},
        )

    @classmethod
    def text(cls, text: str, status: int = 200) -> HttpResponse:
        return cls(status, text.encode("utf-8"), {"Content-Type": "text/plain; charset=utf-8"})


Handler = Callable[[HttpRequest], HttpResponse]
Verify = Callable[[HttpRequest], bool]


def slack_signature_ok(signing_secret: str, req: HttpRequest) -> bool:
    """Slack's request signature (``X-Slack-Signature`` over ``v0:timestamp:body`` with the
    signing secret, timestamp within 5 minutes), checked on the raw bytes. Malformed headers
    or bodies (a timestamp that is no number, non-ASCII signatures, non-UTF-8 bytes) are
    simply not verified."""
    if not signing_secret:
        return False
    try:
        return SignatureVerifier(signing_secret).is_valid(
            body=req.body,
            timestamp=req.headers.get("x-slack-request-timestamp"),
            signature=req.headers.get("x-slack-signature"),
        )
    except (ValueError, TypeError, UnicodeError, OverflowError):
        return False


REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class HttpApp:
    """The WSGI application of ``kpibot run --mode http``."""

    def __init__(
        self,
        bolt_app: App | None = None,
        health: Callable[[], dict[str, Any]] | None = None,
        *,
        signing_secret: str = "",
    ) -> None:
        self.bolt_app = bolt_app
        self.health = health
        self.routes: dict[tuple[str, str], Handler] = {("GET", "/healthz"): self.healthz}
        self.max_body: dict[tuple[str, str], int] = {}
        self.verifiers: dict[tuple[str, str], Verify] = {}
        if bolt_app is not None:
            if not signing_secret:
                raise ValueError("serving Slack's events needs the signing secret to verify them")
            self.add_route(
                "POST",
                "/slack/events",
                self.slack_events,
                verify=lambda req: slack_signature_ok(signing_secret, req),
            )

    def add_route(
        self,
        method: str,
        path: str,
        handler: Handler,
        *,
        max_body: int = MAX_BODY,
        verify: Verify | None = None,
    ) -> None:
        """Serve ``method path``; bodies over ``max_body`` bytes get 413 unread; with
        ``verify``, requests it does not accept get 401 and never reach ``handler``."""
        key = (method.upper(), path)
        self.routes[key] = handler
        if max_body != MAX_BODY:
            self.max_body[key] = max_body
        if verify is not None:
            self.verifiers[key] = verify

    def largest_body(self) -> int:
        """The largest body any route accepts (the server refuses bigger ones unread)."""
        return max([MAX_BODY, *self.max_body.values()])

    # -------------------------------------------------------------------- handlers

    def slack_events(self, req: HttpRequest) -> HttpResponse:
        """A verified request from Slack, dispatched through Bolt."""
        assert self.bolt_app is not None
        media_type = req.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in SLACK_MEDIA_TYPES:
            log.warning("Slack request with an unexpected Content-Type refused (400)")
            return HttpResponse.json({"error": "malformed request"}, status=400)
        try:
            bolt_req = BoltRequest(
                body=req.body.decode("utf-8"),
                query={k: list(v) for k, v in req.query.items()},  # type: ignore[arg-type]
                headers={k: [v] for k, v in req.headers.items()},
            )
            if not isinstance(bolt_req.body, dict) or not bolt_req.body:
                raise ValueError("no form fields or JSON object")
        except (ValueError, TypeError, AttributeError, KeyError, RecursionError) as exc:
            log.warning("malformed Slack request refused: %s", type(exc).__name__)
            return HttpResponse.json({"error": "malformed request"}, status=400)
        resp = self.bolt_app.dispatch(bolt_req)
        headers = {k: v[0] for k, v in resp.headers.items() if v}
        return HttpResponse(resp.status, (resp.body or "").encode("utf-8"), headers)

    def healthz(self, req: HttpRequest) -> HttpResponse:
        report: dict[str, Any] = {"ok": True}
        if self.health is not None:
            try:
                report.update(self.health())
            except Exception as exc:
                log.warning("health check failed: %s", type(exc).__name__)
                return HttpResponse.json({"ok": False, "error": type(exc).__name__}, status=503)
        return HttpResponse.json(report, status=200 if report.get("ok") else 503)

    # ------------------------------------------------------------------------ WSGI

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        resp = self.handle(environ)
        reason = REASONS.get(resp.status, "Unknown")
        headers = [*resp.headers.items(), ("Content-Length", str(len(resp.body)))]
        start_response(f"{resp.status} {reason}", headers)
        return [resp.body]

    def handle(self, environ: Environ) -> HttpResponse:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = str(environ.get("PATH_INFO") or "/")
        handler = self.routes.get((method, path))
        if handler is None:
            if any(p == path for _, p in self.routes):
                return HttpResponse.text("method not allowed", 405)
            return HttpResponse.text("not found", 404)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return HttpResponse.text("bad Content-Length", 400)
        if length < 0:
            return HttpResponse.text("bad Content-Length", 400)
        if length > self.max_body.get((method, path), MAX_BODY):
            return HttpResponse.text("request body too large", 413)
        try:
            req = _request(environ, method, path, length)
        except Exception as exc:  # nothing is verified yet: one line, no traceback
            log.warning("unreadable request to %s %s: %s", method, path, type(exc).__name__)
            return HttpResponse.text("bad request", 400)
        verify = self.verifiers.get((method, path))
        if verify is not None:
            try:
                verified = verify(req)
            except Exception as exc:
                log.warning("verifying %s %s failed: %s", method, path, type(exc).__name__)
                verified = False
            if not verified:
                log.warning("unverified request to %s %s refused (401)", method, path)
                return HttpResponse.json({"error": "invalid request"}, status=401)
        try:
            return handler(req)
        except Exception:
            log.exception("unhandled error serving %s %s", method, path)
            return HttpResponse.text("internal error", 500)


def _request(environ: Environ, method: str, path: str, length: int) -> HttpRequest:
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    headers = {
        k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    return HttpRequest(
        method,
        path,
        parse_qs(str(environ.get("QUERY_STRING") or ""), keep_blank_values=True),
        headers,
        body,
    )


# ---------------------------------------------------------------------------- serving


class Server:
    """A waitress server for an :class:`HttpApp`; ``serve_forever()`` or ``start()``/``stop()``.
    Its body limit is the app's largest route limit when it is built: add routes first."""

    def __init__(
        self,
        app: HttpApp,
        host: str = "0.0.0.0",
        port: int = 3000,
        threads: int = 16,
        *,
        channel_timeout: int = CHANNEL_TIMEOUT,
        connection_limit: int = 500,
    ) -> None:
        """``threads`` requests are served at once; up to ``connection_limit`` connections
        are open at once (waitress's own default, 100, made a burst of Slack commands wait
        for a connection; ``kpibot run`` takes both from ``KPIBOT_HTTP_THREADS`` and
        ``KPIBOT_HTTP_CONNECTIONS``). ``serve_forever`` waits with poll() rather than select(),
        which fails past 1,024 descriptors."""
        from waitress.server import create_server

        self.app = app
        self._server: Any = create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            connection_limit=connection_limit,
            asyncore_use_poll=True,
            ident="kpibot",
            asyncore_loop_timeout=0.2,
            # waitress reads a whole body before calling the app: its own limits refuse an
            # oversized one by Content-Length (413) and drop a body that stops arriving
            max_request_body_size=app.largest_body() + 1,  # it refuses length >= this
            max_request_header_size=MAX_HEADERS,
            channel_timeout=channel_timeout,
            cleanup_interval=max(1, channel_timeout // 6),
        )
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    @property
    def url(self) -> str:
        host = self._server.effective_host
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"http://{host}:{self.port}"

    def serve_forever(self) -> None:
        self._server.run()

    def start(self) -> Server:
        """Serve on a background thread until :meth:`stop`."""
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kpibot-http", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        server = self._server
        while not self._stopping.is_set():
            server.asyncore.loop(timeout=0.05, map=server._map, count=1)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        server = self._server
        for channel in list(server._map.values()):
            channel.close()
        server.task_dispatcher.shutdown(timeout=5)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def slack_http_app(kpi: KpiApp, engine: Any | None = None) -> HttpApp:
    """The HTTP app of ``kpibot run --mode http``: Slack events (verified with the app's
    signing secret) plus a health check that pings the database and reports Slack's state
    (``ok``, ``unreachable`` or ``refused``) without failing on it: a load balancer must not
    restart kpibot because Slack is down."""

    def health() -> dict[str, Any]:
        report = _database_health(engine)
        if kpi.slack is not None:
            report["slack"] = kpi.slack.state
        return report

    return HttpApp(kpi.bolt, health=health, signing_secret=kpi.signing_secret)


def plain_http_app(engine: Any | None = None) -> HttpApp:
    """The HTTP app of a deployment without Slack (Teams only): no ``/slack/events``, and a
    health check that pings the database."""
    return HttpApp(health=lambda: _database_health(engine))


def _database_health(engine: Any | None) -> dict[str, Any]:
    report: dict[str, Any] = {}
    if engine is not None:
        from sqlalchemy import text

        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        report["database"] = "ok"
    return report
