"""The HTTP edge of ``kpibot run --mode http``: nothing is fetched or posted for a request that
has not passed verification, response URLs are posted only to Slack's hooks host and never
through a redirect, malformed requests get 401/400 (never a 500), waitress refuses oversized
and stalled bodies itself, ports are checked, and a Slack that cannot be reached at start-up
does not keep kpibot down."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
from packaging.requirements import Requirement

from bot.settings import Config, Settings
from bot.slack.app import create_app
from bot.slack.replies import response_url_allowed
from bot.surfaces.cli import main
from bot.surfaces.http import HttpApp, HttpRequest, HttpResponse, Server, slack_http_app
from tests import slack_harness as sh
from tests.fakes.server import FakeResponse, FakeServer
from tests.fakes.slack import BOT_TOKEN, TEAM_ID, FakeSlack

slack_server, slack, kpi = sh.slack_server, sh.slack, sh.kpi

FORM = "application/x-www-form-urlencoded"
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def trap():
    """Another loopback service: anything reaching it is a request kpibot should not make.
    ``/redirect`` sends the client on to ``/inside``."""
    server = FakeServer()
    server.route("POST", "/inside", lambda req: FakeResponse.text("ok"))
    server.route("GET", "/inside", lambda req: FakeResponse.text("ok"))
    server.start()
    server.route(
        "POST",
        "/redirect",
        lambda req: FakeResponse(302, b"", {"Location": server.url + "/inside"}),
    )
    yield server
    server.stop()


def _raw_headers(**values: bytes) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").encode(), v) for k, v in values.items()]


# ------------------------------------------------------------------ item: no pre-auth fetches


def test_unverified_requests_fetch_and_post_nothing(kpi, trap):
    body = kpi.command_body("ct", "U0EVE", sh.PAY_CHANNEL, trap.url + "/redirect", "t-1")
    attempts = {
        "timestamp not a number": _raw_headers(
            X_Slack_Request_Timestamp=b"abc", X_Slack_Signature=b"v0=" + b"0" * 64
        ),
        "non-ASCII signature": _raw_headers(
            X_Slack_Request_Timestamp=str(int(time.time())).encode(),
            X_Slack_Signature="v0=é".encode("latin-1"),
        ),
        "non-ASCII timestamp": _raw_headers(
            X_Slack_Request_Timestamp="١٢٣".encode(), X_Slack_Signature=b"v0=00"
        ),
    }
    for name, headers in attempts.items():
        r = kpi.http.post(
            kpi.url, content=body.encode(), headers=[(b"Content-Type", FORM.encode()), *headers]
        )
        assert r.status_code == 401, name
    time.sleep(0.3)  # anything an error handler would have done
    assert trap.requests == []
    assert [c.method for c in kpi.slack.calls if c.method != "auth.test"] == []


def test_unverified_requests_cannot_hold_the_server_threads(kpi):
    """40 unverified requests naming a response URL that never answers: the health check
    and a signed command are still answered at once."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(128)  # accepts connections into the backlog, never answers
    hole = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
    body = kpi.command_body("ct", "U0EVE", sh.PAY_CHANNEL, hole, "t-2")
    headers = {"Content-Type": FORM, "X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": "x"}
    statuses: list[int] = []

    def attack() -> None:
        with httpx.Client(timeout=30) as c:
            statuses.append(c.post(kpi.url, content=body, headers=headers).status_code)

    threads = [threading.Thread(target=attack, daemon=True) for _ in range(40)]
    try:
        for t in threads:
            t.start()
        time.sleep(0.5)
        health = httpx.get(kpi.server.url + "/healthz", timeout=3)
        assert health.status_code == 200
        r, url = kpi.command("ct")
        assert r.status_code == 200
        assert "Cycle time · payments" in kpi.answer(url).text_of()
        for t in threads:
            t.join(timeout=10)
        assert statuses == [401] * 40
        silent.setblocking(False)
        with pytest.raises(BlockingIOError):
            silent.accept()  # nobody connected to the hole
    finally:
        silent.close()


def test_a_verified_response_url_outside_slack_is_not_posted_to(kpi, trap):
    body = kpi.command_body("ct", "U0ALICE", sh.PAY_CHANNEL, trap.url + "/inside", "t-3")
    assert kpi.post(body, FORM).status_code == 200
    eph = kpi.slack.wait_for("chat.postEphemeral")[0]
    assert "Cycle time · payments" in eph.text_of()
    assert trap.requests == []


def test_a_redirecting_response_url_is_not_followed(kpi, trap):
    kpi.slack.fail(
        "POST", "/response/moved", FakeResponse(302, b"", {"Location": trap.url + "/inside"})
    )
    body = kpi.command_body("ct", "U0ALICE", sh.PAY_CHANNEL, kpi.slack.response_url("moved"), "t-4")
    assert kpi.post(body, FORM).status_code == 200
    eph = kpi.slack.wait_for("chat.postEphemeral")[0]
    assert "Cycle time · payments" in eph.text_of()
    assert trap.requests == []
    assert len(kpi.slack.requests_to("POST", "/response/moved")) == 1


def test_a_failing_listener_apologises_only_through_slacks_hooks(kpi, trap):
    @kpi.app.bolt.command("/boom")
    def boom(ack: Any) -> None:
        ack()
        time.sleep(0.2)  # the acknowledgement is on its way first
        raise RuntimeError("listener bug")

    for hook, expect_post in ((kpi.slack.response_url("oops"), True), (trap.url + "/x", False)):
        body = kpi.command_body("", "U0ALICE", sh.PAY_CHANNEL, hook, "t-5")
        assert kpi.post(body.replace("%2Fkpi", "%2Fboom"), FORM).status_code == 200
        if expect_post:
            assert "Something went wrong" in kpi.answer(hook).text_of()
    time.sleep(0.3)
    assert trap.requests == []
    assert len(kpi.slack.calls_to("response_url")) == 1


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://hooks.slack.com/commands/T1/123/abc", True),
        ("https://HOOKS.slack.com:443/actions/T1/1/x", True),
        ("http://hooks.slack.com/commands/T1/123/abc", False),
        ("https://hooks.slack.com.evil.example/commands/x", False),
        ("https://evil.example/?hooks.slack.com", False),
        ("https://user:pw@hooks.slack.com/commands/x", False),
        ("https://hooks.slack.com:8443/commands/x", False),
        ("https://hooks.slack.com:99999/commands/x", False),
        ("http://127.0.0.1:8080/hook", False),
        ("https://hooks.slack.com\\@evil.example/x", False),
        ("https://hooks.slack.com%2F@evil.example/x", False),
        ("https://hooks.slack.com./commands/x", False),
        (" https://hooks.slack.com/commands/x", False),
        ("https://hooks.slack.com/x\r\nHost: evil.example", False),
        ("ftp://hooks.slack.com/x", False),
        ("", False),
        (None, False),
        (["https://hooks.slack.com/x"], False),
    ],
)
def test_response_urls_are_allowed_only_on_slacks_hooks_host(url, allowed):
    assert response_url_allowed(url) is allowed


def test_the_hooks_host_follows_the_settings():
    from bot.errors import ConfigError
    from bot.settings import load_env_settings

    env = {"SLACK_HOOKS_URL": "https://hooks.slack-gov.com/"}
    assert load_env_settings(env, None).hooks_url() == "https://hooks.slack-gov.com/"
    with pytest.raises(ConfigError, match="SLACK_HOOKS_URL must be"):
        load_env_settings({"SLACK_HOOKS_URL": "hooks.slack.com"}, None)
    assert Settings().hooks_url() == "https://hooks.slack.com/"
    fake = Settings(slack_api_url="http://127.0.0.1:5555/api/")
    assert fake.hooks_url() == "http://127.0.0.1:5555/"
    assert response_url_allowed("http://127.0.0.1:5555/response/x", fake.hooks_url())
    assert not response_url_allowed("http://127.0.0.1:5556/response/x", fake.hooks_url())
    gov = Settings(
        slack_api_url="https://slack-gov.com/api/", slack_hooks_url="https://hooks.slack-gov.com/"
    )
    assert response_url_allowed("https://hooks.slack-gov.com/commands/1", gov.hooks_url())


# --------------------------------------------------------------- item: 401/400, never 500


def _kpibot_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("kpibot")]


def test_malformed_unsigned_bodies_get_401_and_one_log_line(kpi, caplog):
    caplog.set_level(logging.INFO)
    bodies: dict[str, tuple[bytes, str]] = {
        "plain text": (b"hello there", "text/plain"),
        "broken JSON": (b"{not json", "application/json"),
        "deeply nested": (b"[" * 100_000, "application/json"),
        "non-UTF-8": (b"\xff\xfe\xfa payload=\xc3", FORM),
        "broken payload": (b"payload=%7Bnot", FORM),
    }
    for name, (body, ctype) in bodies.items():
        for headers in ({}, sh.signed_headers("something else")):
            caplog.clear()
            r = kpi.http.post(kpi.url, content=body, headers={"Content-Type": ctype, **headers})
            assert r.status_code == 401, name
            lines = _kpibot_lines(caplog)
            assert len(lines) == 1 and lines[0].exc_info is None, (name, caplog.text)
            assert "Traceback" not in caplog.text
    time.sleep(0.2)
    assert [c.method for c in kpi.slack.calls if c.method != "auth.test"] == []


def test_verified_but_malformed_bodies_get_400(kpi, caplog):
    caplog.set_level(logging.INFO)
    bodies = {
        "broken JSON": ("{not json", "application/json"),
        "deeply nested": ("[" * 100_000, "application/json"),
        "a JSON list": ("[1, 2]", "application/json"),
        "broken payload": ("payload=%7Bnot", FORM),
        "no fields": ("just words", "text/plain"),
    }
    for name, (body, ctype) in bodies.items():
        caplog.clear()
        r = kpi.post(body, ctype)
        assert r.status_code == 400, name
        lines = _kpibot_lines(caplog)
        assert len(lines) == 1 and lines[0].exc_info is None, (name, caplog.text)
    assert [c.method for c in kpi.slack.calls if c.method != "auth.test"] == []


def test_the_generic_app_refuses_before_verification_without_a_traceback(caplog):
    caplog.set_level(logging.INFO)
    seen: list[HttpRequest] = []

    def handler(req: HttpRequest) -> HttpResponse:
        seen.append(req)
        return HttpResponse.text("ok")

    def broken_verifier(req: HttpRequest) -> bool:
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")

    app = HttpApp()
    app.add_route("POST", "/signed", handler, verify=broken_verifier)
    app.add_route("POST", "/open", handler)

    class BrokenInput(io.RawIOBase):
        def read(self, size: int = -1) -> bytes:
            raise OSError("client went away")

    def environ(path: str, stream: Any) -> dict[str, Any]:
        return {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "CONTENT_LENGTH": "5",
            "wsgi.input": stream,
        }

    assert app.handle(environ("/signed", io.BytesIO(b"hello"))).status == 401
    assert app.handle(environ("/open", BrokenInput())).status == 400
    assert app.handle({**environ("/open", io.BytesIO(b"")), "CONTENT_LENGTH": "-5"}).status == 400
    assert seen == []
    assert all(r.exc_info is None for r in caplog.records)
    assert app.handle(environ("/open", io.BytesIO(b"hello"))).status == 200


def test_serving_slack_events_needs_the_signing_secret():
    from slack_bolt import App

    bolt = App(signing_secret="s", token_verification_enabled=False, token="xoxb-1")
    with pytest.raises(ValueError, match="signing secret"):
        HttpApp(bolt)


# -------------------------------------------------------------- item: waitress's own limits


def _echo_app() -> HttpApp:
    app = HttpApp(health=lambda: {"database": "ok"})
    app.add_route("POST", "/echo", lambda req: HttpResponse.text(str(len(req.body))))
    app.add_route(
        "POST", "/big", lambda req: HttpResponse.text(str(len(req.body))), max_body=3 << 20
    )
    return app


def _read_all(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:  # closed with part of what was sent still unread
            return out
        if not chunk:
            return out
        out += chunk


def test_an_oversized_body_is_refused_before_it_is_read():
    with Server(_echo_app(), host="127.0.0.1", port=0, threads=2) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(
                b"POST /echo HTTP/1.1\r\nHost: kpibot\r\nContent-Length: 200000000\r\n\r\n"
                + b"x" * 1024
            )
            started = time.monotonic()
            answer = _read_all(s, timeout=5)  # answered and closed, without the 200 MB
        assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
        assert time.monotonic() - started < 5
        # the largest route limit is the server's: up to it bodies pass, past it they don't
        r = httpx.post(server.url + "/big", content=b"x" * (3 << 20), timeout=10)
        assert r.status_code == 200 and r.text == str(3 << 20)
        r = httpx.post(server.url + "/big", content=b"x" * ((3 << 20) + 1), timeout=10)
        assert r.status_code == 413
        assert httpx.get(server.url + "/healthz").status_code == 200


def test_oversized_headers_are_refused():
    with Server(_echo_app(), host="127.0.0.1", port=0, threads=2) as server:
        r = httpx.get(server.url + "/healthz", headers={"X-Padding": "p" * (100 * 1024)})
        assert r.status_code == 431
        assert httpx.get(server.url + "/healthz").status_code == 200


def test_a_stalled_body_is_dropped():
    with Server(_echo_app(), host="127.0.0.1", port=0, threads=2) as server:
        adj = server._server.adj  # the defaults kpibot run serves with
        assert adj.channel_timeout <= 30 and adj.cleanup_interval <= adj.channel_timeout
        assert adj.max_request_body_size == (3 << 20) + 1
        assert adj.max_request_header_size <= 64 * 1024
    with (
        Server(_echo_app(), host="127.0.0.1", port=0, threads=2, channel_timeout=2) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as s,
    ):
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: kpibot\r\nContent-Length: 100\r\n\r\n0123")
        started = time.monotonic()
        assert _read_all(s, timeout=10) == b""  # closed without an answer
        assert time.monotonic() - started < 8


# ------------------------------------------------------------ item: dependencies and ports


def test_dependencies_exclude_vulnerable_versions():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    reqs = {Requirement(d).name: Requirement(d) for d in pyproject["project"]["dependencies"]}
    assert not reqs["waitress"].specifier.contains("3.0.0")
    assert reqs["waitress"].specifier.contains("3.0.2")
    assert "h11" in reqs
    assert not reqs["h11"].specifier.contains("0.15.0")
    assert reqs["h11"].specifier.contains("0.16.0")


@pytest.mark.parametrize("port", ["-1", "70000", "0", "http"])
def test_bad_ports_are_one_line_and_exit_2(port, capsys):
    assert main(["run", "--mode", "http", "--port", port]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--port" in err[0] and "1-65535" in err[0], err


def _run_env(tmp_path: Path, db_url: str, slack_api_url: str) -> dict[str, str]:
    sh.seed(db_url)
    (tmp_path / "kpibot.yml").write_text(
        "teams:\n  - name: payments\n    repos: [acme/payments-api]\n    channel: C0PAY00001\n"
    )
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "KPIBOT_CONFIG": str(tmp_path / "kpibot.yml"),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": sh.SECRET,
        "SLACK_API_URL": slack_api_url,
        "KPIBOT_WEBHOOK_SECRET": "webhook-secret",
    }
    env.pop("SLACK_APP_TOKEN", None)
    return env


def test_a_port_in_use_is_one_line_and_exit_2(slack, db_url, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "bot", "run", "--mode", "http", "--no-scheduler",
             "--host", "127.0.0.1", "--port", str(port)],
            env=_run_env(tmp_path, db_url, slack.api_url), cwd=tmp_path,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and f"port {port} is already in use" in err[0], err
    assert "--port" in err[0]


@pytest.mark.parametrize(
    ("host", "expected"),
    [("nohost.invalid", "is not a known address"), ("10.255.255.1", "not an address of this")],
)
def test_an_address_kpibot_cannot_listen_on_is_one_line(host, expected):
    from bot.errors import KpibotError
    from bot.surfaces.cli import _listen

    with pytest.raises(KpibotError, match=expected) as exc:
        _listen(HttpApp(), host, free_port(), threads=4, connection_limit=10)
    assert "\n" not in str(exc.value) and "--host" in str(exc.value)


# ------------------------------------------------------ item: Slack unreachable at start-up


def test_create_app_starts_while_slack_is_down_and_notices_it_come_back(slack, db_url, tmp_path):
    sh.seed(db_url)
    slack.server_error("auth.test", status=503, times=3)  # the start-up call and its retries
    settings = Settings(
        database_url=db_url,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=sh.SECRET,
        slack_api_url=slack.api_url,
    )
    app = create_app(settings, config=Config(sh.TEAMS), backoff=0.01, slack_retry=0.2)
    try:
        assert app.slack is not None and app.slack.state == "unreachable"
        assert app.service.home_workspace is None  # not known yet
        with Server(slack_http_app(app), host="127.0.0.1", port=0) as server:
            r = httpx.get(server.url + "/healthz")
            assert r.status_code == 200 and r.json() == {"ok": True, "slack": "unreachable"}
            deadline = time.monotonic() + 10
            while app.slack.state != "ok" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert httpx.get(server.url + "/healthz").json() == {"ok": True, "slack": "ok"}
            # from then on, requests from another workspace are refused
            assert app.service.home_workspace == TEAM_ID
    finally:
        app.close()
    assert len(slack.calls_to("auth.test")) == 1  # the first that got through


def test_a_token_refused_later_is_reported(slack, db_url):
    sh.seed(db_url)
    slack.server_error("auth.test", status=500, times=3)
    settings = Settings(
        database_url=db_url,
        slack_bot_token="xoxb-revoked",
        slack_signing_secret=sh.SECRET,
        slack_api_url=slack.api_url,
    )
    app = create_app(settings, config=Config(sh.TEAMS), backoff=0.01, slack_retry=0.1)
    try:
        deadline = time.monotonic() + 10
        while app.slack is not None and app.slack.state == "unreachable":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert app.slack is not None and app.slack.state == "refused"
    finally:
        app.close()


def test_socket_mode_still_needs_slack_at_start_up(db_url):
    port = free_port()  # nothing listens there
    settings = Settings(
        database_url=db_url,
        slack_bot_token=BOT_TOKEN,
        slack_api_url=f"http://127.0.0.1:{port}/api/",
    )
    from bot.slack.app import SlackUnreachable

    with pytest.raises(SlackUnreachable, match="could not be reached"):
        create_app(settings, mode="socket", config=Config(sh.TEAMS), backoff=0.01)


def test_kpibot_run_serves_while_slack_is_down_on_the_given_host(db_url, tmp_path):
    slack_port, port = free_port(), free_port()
    env = _run_env(tmp_path, db_url, f"http://127.0.0.1:{slack_port}/api/")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--mode", "http", "--no-scheduler",
         "--host", "127.0.0.2", "--port", str(port)],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    fake = FakeSlack()
    fake.port = slack_port
    try:
        base = f"http://127.0.0.2:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(base + "/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "kpibot run did not start"
                time.sleep(0.1)
        assert r.status_code == 200
        assert r.json() == {"ok": True, "database": "ok", "slack": "unreachable"}
        with pytest.raises(httpx.ConnectError):  # only the address it was given
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        unsigned = httpx.post(base + "/webhooks/deployments", content=b"{}", timeout=5)
        assert unsigned.status_code == 401  # the webhooks are served meanwhile
        fake.start()
        deadline = time.monotonic() + 30
        while httpx.get(base + "/healthz", timeout=2).json()["slack"] != "ok":
            assert time.monotonic() < deadline, "kpibot did not notice Slack come back"
            time.sleep(0.2)
        body = (
            "command=%2Fkpi&text=ct&user_id=U0ALICE&channel_id=C0PAY00001&team_id=T0FAKE001"
            f"&response_url={fake.response_url('back')}&trigger_id=t1"
        )
        headers = {"Content-Type": FORM, **sh.signed_headers(body)}
        assert httpx.post(base + "/slack/events", content=body, headers=headers).status_code == 200
        assert "Cycle time · payments" in fake.wait_for("response_url", timeout=30)[0].text_of()
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
        fake.stop()
    assert BOT_TOKEN not in out + err and sh.SECRET not in out + err
    assert "Traceback" not in err


def test_healthz_answers_json_with_the_slack_state(kpi):
    r = kpi.http.get(kpi.server.url + "/healthz")
    assert r.status_code == 200 and json.loads(r.text) == {"ok": True, "slack": "ok"}
