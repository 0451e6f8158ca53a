"""Slack API failures: 429 with Retry-After, 5xx and refused response URLs are retried or
answered another way; missing or refused tokens give one clear line; ``kpibot run``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from bot.settings import Config, Settings
from bot.slack.app import SlackSetupError, create_app
from bot.surfaces.cli import main
from tests import slack_harness as sh
from tests.fakes.slack import BOT_TOKEN

slack_server, slack, kpi = sh.slack_server, sh.slack, sh.kpi


def test_a_failing_response_url_is_retried(kpi):
    kpi.slack.fail_response_url(status=500)
    _r, url = kpi.command("ct")
    assert "Cycle time" in kpi.answer(url).text_of()
    path = url.split(kpi.slack.url, 1)[1]
    assert len(kpi.slack.requests_to("POST", path)) == 2


def test_a_dead_response_url_falls_back_to_an_ephemeral_message(kpi):
    kpi.slack.fail_response_url(status=503, times=3)
    kpi.command("ct", user="U0BOB")
    eph = kpi.slack.wait_for("chat.postEphemeral")[0]
    assert eph.args["channel"] == sh.PAY_CHANNEL and eph.args["user"] == "U0BOB"
    assert "Cycle time" in eph.text_of()


def test_web_api_429_and_500_are_retried(kpi):
    kpi.slack.rate_limit("views.open", retry_after=0)
    kpi.command("action add")
    assert kpi.slack.wait_for("views.open")
    kpi.slack.server_error("views.publish", status=502)
    kpi.event({"type": "app_home_opened", "user": "U0ALICE", "tab": "home"})
    assert kpi.slack.wait_for("views.publish")
    assert len(kpi.slack.requests_to("POST", r"/api/views\.publish")) == 2


def test_missing_or_refused_tokens_name_the_variable(slack, db_url, tmp_path):
    base = Settings(database_url=db_url, slack_api_url=slack.api_url)
    cfg = Config(sh.TEAMS)
    cases = [
        (base, "SLACK_BOT_TOKEN is not set"),
        (
            Settings(database_url=db_url, slack_api_url=slack.api_url, slack_bot_token=BOT_TOKEN),
            "SLACK_SIGNING_SECRET is not set",
        ),
        (
            Settings(
                database_url=db_url,
                slack_api_url=slack.api_url,
                slack_bot_token="xoxb-wrong-token",
                slack_signing_secret=sh.SECRET,
            ),
            "SLACK_BOT_TOKEN was refused by Slack (invalid_auth)",
        ),
    ]
    for settings, expected in cases:
        with pytest.raises(SlackSetupError) as exc:
            create_app(settings, config=cfg)
        message = str(exc.value)
        assert expected in message and "manifest.yml" in message
        assert "xoxb-wrong-token" not in message and sh.SECRET not in message


def _env(tmp_path, monkeypatch, **values):
    monkeypatch.chdir(tmp_path)
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_API_URL"):
        monkeypatch.delenv(name, raising=False)
    for k, v in values.items():
        monkeypatch.setenv(k, v)


def test_run_without_tokens_prints_one_line(tmp_path, monkeypatch, capsys, db_url):
    _env(tmp_path, monkeypatch, DATABASE_URL=db_url)
    assert main(["run", "--mode", "socket"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SLACK_APP_TOKEN is not set" in err[0] and "manifest.yml" in err[0]
    assert main(["run", "--mode", "http"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SLACK_BOT_TOKEN is not set" in err[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_kpibot_run_http_mode_serves_events_and_health(slack, db_url, tmp_path):
    sh.seed(db_url)
    (tmp_path / "kpibot.yml").write_text(
        "teams:\n  - name: payments\n    repos: [acme/payments-api]\n    channel: C0PAY00001\n"
    )
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "KPIBOT_CONFIG": str(tmp_path / "kpibot.yml"),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": sh.SECRET,
        "SLACK_API_URL": slack.api_url,
        "KPIBOT_LOG_LEVEL": "INFO",
    }
    env.pop("SLACK_APP_TOKEN", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot",
            "run",
            "--mode",
            "http",
            "--port",
            str(port),
            "--no-scheduler",
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                r = httpx.get(base + "/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "kpibot run did not start"
                time.sleep(0.1)
        assert r.status_code == 200 and r.json() == {"ok": True, "database": "ok", "slack": "ok"}
        hook = slack.response_url("run1")
        body = (
            "command=%2Fkpi&text=ct&user_id=U0ALICE&channel_id=C0PAY00001&team_id=T0FAKE001"
            f"&response_url={httpx.URL(hook)}&trigger_id=t1"
        )
        r = httpx.post(
            base + "/slack/events",
            content=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                **sh.signed_headers(body),
            },
        )
        assert r.status_code == 200
        assert "Cycle time · payments" in slack.wait_for("response_url")[0].text_of()
        bad = httpx.post(base + "/slack/events", content=body, headers=sh.signed_headers("x"))
        assert bad.status_code == 401
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert BOT_TOKEN not in out + err and sh.SECRET not in out + err


def test_run_socket_mode_with_a_refused_app_token(slack, tmp_path, monkeypatch, capsys, db_url):
    (tmp_path / "kpibot.yml").write_text("teams:\n  - name: payments\n    repos: [acme/api]\n")
    _env(
        tmp_path,
        monkeypatch,
        DATABASE_URL=db_url,
        KPIBOT_CONFIG=str(tmp_path / "kpibot.yml"),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN="xapp-1-refused-token",
        SLACK_API_URL=slack.api_url,
    )
    assert main(["run", "--no-scheduler"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "SLACK_APP_TOKEN was refused by Slack (invalid_auth)" in err[0]
    assert "connections:write" in err[0] and "xapp-1-refused-token" not in err[0]
    assert slack.calls_to("apps.connections.open")[0].token == "xapp-1-refused-token"
