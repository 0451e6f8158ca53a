"""A real HTTP server on 127.0.0.1 for the fakes: routes, a record of every request, faults.

A fake API subclasses :class:`FakeServer` (or passes a handler) and registers routes::

    class FakeThing(FakeServer):
        def __init__(self) -> None:
            super().__init__()
            self.route("GET", r"/items/(?P<id>\\d+)", self.item)

        def item(self, req: FakeRequest) -> FakeResponse:
            return FakeResponse.json({"id": int(req.params["id"])})

Faults are queued per route pattern and served before the real handler::

    fake.fail("GET", r"/items/.*", FakeResponse.json({"message": "x"}, status=502), times=2)
    fake.fail("GET", r"/items/.*", delay=5.0)      # longer than the client's timeout
    fake.fail("GET", r"/items/.*", drop=True)       # close the connection with no answer

Use it as a context manager (or ``start()``/``stop()``); ``url`` is the base URL.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class FakeRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode("utf-8")).items()}

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default


@dataclass
class FakeResponse:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls, payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> FakeResponse:
        h = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        return cls(status, json.dumps(payload).encode("utf-8"), h)

    @classmethod
    def text(
        cls, text: str, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> FakeResponse:
        h = {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}
        return cls(status, text.encode("utf-8"), h)


Handler = Callable[[FakeRequest], FakeResponse]


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    response: FakeResponse | None
    delay: float
    drop: bool
    times: int


class FakeServer:
    """A threaded HTTP server on an ephemeral loopback port."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self.requests: list[FakeRequest] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0  # set before start() to serve on a given port (0: any free one)

    # ------------------------------------------------------------------ set-up

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method.upper(), re.compile(pattern + r"\Z"), handler))

    def fail(
        self,
        method: str,
        pattern: str,
        response: FakeResponse | None = None,
        *,
        delay: float = 0.0,
        drop: bool = False,
        times: int = 1,
    ) -> None:
        """Serve ``response`` (after ``delay`` seconds; or drop the connection) to the next
        ``times`` requests matching ``method`` and ``pattern`` instead of the real handler."""
        with self._lock:
            self._faults.append(
                _Fault(method.upper(), re.compile(pattern + r"\Z"), response, delay, drop, times)
            )

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def requests_to(self, method: str, pattern: str) -> list[FakeRequest]:
        rx = re.compile(pattern + r"\Z")
        with self._lock:
            return [r for r in self.requests if r.method == method.upper() and rx.match(r.path)]

    # ---------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeServer:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out in two writes: without this, Nagle's algorithm and the
            # client's delayed ACK hold every response back by about 40 ms
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _serve(self) -> None:
                fake._dispatch(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        self._httpd.daemon_threads = True
        # a short poll interval: shutdown() waits for the serve loop to notice, once per fake
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- serving

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for f in self._faults:
                if f.method == method and f.pattern.match(path):
                    f.times -= 1
                    if f.times <= 0:
                        self._faults.remove(f)
                    return f
        return None

    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        req = FakeRequest(
            method=h.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in h.headers.items()},
            body=body,
        )
        with self._lock:
            self.requests.append(req)
        fault = self._take_fault(req.method, req.path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop:
                h.close_connection = True
                return
            if fault.response is not None:
                self._write(h, fault.response)
                return
        resp = self._handle(req)
        self._write(h, resp)

    def _handle(self, req: FakeRequest) -> FakeResponse:
        for method, pattern, handler in self._routes:
            m = pattern.match(req.path)
            if method == req.method and m:
                req.params = {k: v for k, v in m.groupdict().items() if v is not None}
                try:
                    return handler(req)
                except Exception as exc:  # a fake's bug shows as a 500 the test can see
                    return FakeResponse.json({"fake_error": repr(exc)}, status=500)
        return FakeResponse.json({"message": "Not Found"}, status=404)

    @staticmethod
    def _write(h: BaseHTTPRequestHandler, resp: FakeResponse) -> None:
        try:
            h.send_response(resp.status)
            for k, v in resp.headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(resp.body)))
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(resp.body)
        except (BrokenPipeError, ConnectionResetError):
            pass
