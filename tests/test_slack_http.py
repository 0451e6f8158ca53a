"""The HTTP-mode WSGI app served by waitress on loopback: routing and the health check."""

from __future__ import annotations

import httpx

from bot.surfaces.http import HttpApp, HttpRequest, HttpResponse, Server


def test_routes_health_and_errors():
    app = HttpApp(health=lambda: {"database": "ok"})
    seen: list[HttpRequest] = []

    def echo(req: HttpRequest) -> HttpResponse:
        seen.append(req)
        return HttpResponse.json({"got": req.text(), "q": req.query.get("a")})

    def boom(req: HttpRequest) -> HttpResponse:
        raise RuntimeError("secret-value")

    app.add_route("POST", "/echo", echo)
    app.add_route("POST", "/boom", boom)
    app.add_route("POST", "/big", echo, max_body=3 * 1024 * 1024)
    with Server(app, host="127.0.0.1", port=0, threads=4) as server:
        base = server.url
        r = httpx.get(base + "/healthz")
        assert r.status_code == 200 and r.json() == {"ok": True, "database": "ok"}
        r = httpx.post(base + "/echo?a=1", content=b"hello", headers={"X-Thing": "v"})
        assert r.json() == {"got": "hello", "q": ["1"]}
        assert seen[0].headers["x-thing"] == "v"
        assert httpx.get(base + "/echo").status_code == 405
        assert httpx.get(base + "/nope").status_code == 404
        r = httpx.post(base + "/boom")
        assert r.status_code == 500 and "secret-value" not in r.text
        assert httpx.post(base + "/echo", content=b"x" * (1024 * 1024 + 1)).status_code == 413
        # a route's own limit: bigger bodies pass, and past it they are refused too
        assert httpx.post(base + "/big", content=b"x" * (2 * 1024 * 1024)).status_code == 200
        assert httpx.post(base + "/big", content=b"x" * (3 * 1024 * 1024 + 1)).status_code == 413


def test_health_failure_is_503():
    def broken() -> dict[str, str]:
        raise ConnectionError("db down")

    with Server(HttpApp(health=broken), host="127.0.0.1", port=0) as server:
        r = httpx.get(server.url + "/healthz")
    assert r.status_code == 503 and r.json()["ok"] is False
