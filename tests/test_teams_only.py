"""A Microsoft 365 organisation without Slack: ``kpibot run`` and ``kpibot digest --post``
with only TEAMS_APP_ID and TEAMS_APP_PASSWORD; with neither platform, one line saying what
to set for each and exit code 2."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bot.settings import NO_PLATFORM, load_config
from bot.store import subscriptions as subs
from bot.store.models import DigestRun, DigestSubscription
from bot.store.session import make_engine, session_factory
from bot.surfaces.cli import main
from tests import slack_harness as sh
from tests.fakes.teams import APP_ID, APP_PASSWORD, TENANT_ID, FakeTeams
from tests.scheduler_fakes import setup_org
from tests.test_slack_errors import _free_port
from tests.test_teams import assert_valid_card

ROOT = str(Path(__file__).resolve().parents[1])
PLATFORM_VARIABLES = (
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_API_URL",
    "TEAMS_APP_ID",
    "TEAMS_APP_PASSWORD",
)
CONFIG = "teams:\n  - name: payments\n    repos: [acme/payments-api]\n"
CHANNEL = "19:payments-general@thread.tacv2"


def _start(proc: subprocess.Popen[str], base: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(base + "/healthz", timeout=2)
            return
        except httpx.TransportError:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "kpibot run did not start"
            time.sleep(0.1)


def test_kpibot_run_serves_teams_without_any_slack_setting(db_url, tmp_path):
    sh.seed(db_url)
    (tmp_path / "kpibot.yml").write_text(CONFIG)
    port = _free_port()
    with FakeTeams() as teams:
        env = {k: v for k, v in os.environ.items() if k not in PLATFORM_VARIABLES}
        env.update(
            PYTHONPATH=ROOT,
            DATABASE_URL=db_url,
            KPIBOT_CONFIG=str(tmp_path / "kpibot.yml"),
            TEAMS_APP_ID=APP_ID,
            TEAMS_APP_PASSWORD=APP_PASSWORD,
            TEAMS_OPENID_URL=teams.openid_url,
            TEAMS_TOKEN_URL=teams.token_url,
            TEAMS_API_URL=teams.service_url,
            KPIBOT_SYNC_INTERVAL="off",  # the scheduler runs, with the Teams poster alone
            KPIBOT_LOG_LEVEL="INFO",
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--mode", "http", "--port", str(port)],
            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            _start(proc, base)
            health = httpx.get(base + "/healthz", timeout=5)
            assert health.status_code == 200
            assert health.json() == {"ok": True, "database": "ok"}
            # no Slack route to answer: nothing there to verify against
            assert httpx.post(base + "/slack/events", json={}, timeout=5).status_code == 404
            # unsigned: refused, nothing posted
            activity = teams.activity("cycle-time payments")
            assert httpx.post(base + "/api/messages", json=activity, timeout=5).status_code == 401
            r = httpx.post(
                base + "/api/messages",
                json=activity,
                headers={"Authorization": f"Bearer {teams.token()}"},
                timeout=10,
            )
            assert r.status_code == 200
            (sent,) = teams.wait_sent(1, timeout=60)
            card = sent.activity["attachments"][0]["content"]
            assert card["body"][0]["text"] == "Cycle time · payments"
            assert sent.activity["replyToId"] == activity["id"]
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    (line,) = [x for x in out.splitlines() if x.startswith("kpibot serving")]
    assert line.startswith("kpibot serving Microsoft Teams, listening on ")
    assert "POST /api/messages (Teams)" in line and "/slack/events" not in line
    assert "scheduler started" in err  # beside the app, posting to Teams
    assert APP_PASSWORD not in out + err
    assert "Traceback" not in err
    assert "report workers failed" not in err and "report worker failed" not in err


@pytest.fixture
def nowhere(tmp_path, db_url, monkeypatch):
    """A configured organisation with no chat platform set up."""
    monkeypatch.chdir(tmp_path)
    for name in PLATFORM_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "kpibot.yml").write_text(CONFIG)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("KPIBOT_CONFIG", str(tmp_path / "kpibot.yml"))
    eng = make_engine(db_url)
    setup_org(session_factory(eng), load_config(tmp_path / "kpibot.yml"))
    eng.dispose()
    return tmp_path


@pytest.mark.parametrize(
    "argv",
    [
        ["run"],
        ["run", "--mode", "http"],
        ["run", "--mode", "scheduler"],
        ["digest", "weekly", "--post", "--period", "last-week", "--now", "2026-11-20T12:00:00Z"],
    ],
)
def test_neither_platform_says_what_to_set_for_either(nowhere, capsys, db_url, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"kpibot: {NO_PLATFORM}"]
    for variable in (
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "TEAMS_APP_ID",
        "TEAMS_APP_PASSWORD",
    ):
        assert variable in err[0]
    eng = make_engine(db_url)
    with session_factory(eng)() as s:  # nothing changed
        assert s.scalars(select(DigestSubscription)).all() == []
    eng.dispose()


def test_socket_mode_with_teams_only_says_teams_needs_http(nowhere, monkeypatch, capsys):
    monkeypatch.setenv("TEAMS_APP_ID", APP_ID)
    monkeypatch.setenv("TEAMS_APP_PASSWORD", APP_PASSWORD)
    assert main(["run", "--mode", "socket"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--mode http" in err[0] and "Socket Mode is Slack's" in err[0]
    assert APP_PASSWORD not in err[0]
    # with Slack set up too, Socket Mode is for Slack: it says what Slack still needs
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
    assert main(["run", "--mode", "socket"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SLACK_APP_TOKEN is not set" in err[0]
    assert "xoxb-test-token" not in err[0]


def test_digest_post_with_teams_only_posts_to_the_subscribed_conversation(
    nowhere, monkeypatch, capsys, db_url
):
    with FakeTeams() as teams:
        monkeypatch.setenv("TEAMS_APP_ID", APP_ID)
        monkeypatch.setenv("TEAMS_APP_PASSWORD", APP_PASSWORD)
        monkeypatch.setenv("TEAMS_TOKEN_URL", teams.token_url)
        monkeypatch.setenv("TEAMS_API_URL", teams.service_url)
        now = "2026-11-20T12:00:00Z"
        argv = ["digest", "weekly", "--post", "--period", "last-week", "--now", now]
        # --channel names a Slack channel: refused here, and nothing subscribed
        assert main([*argv, "--channel", "C0PAYMENTS"]) == 2
        assert "SLACK_BOT_TOKEN" in capsys.readouterr().err
        # nothing subscribed yet: says how to subscribe in Teams (no Slack channel to name)
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "'@kpibot subscribe weekly payments' in a Teams conversation" in err
        assert "/kpi" not in err and "--channel" not in err
        eng = make_engine(db_url)
        f = session_factory(eng)
        with f() as s:
            assert s.scalars(select(DigestSubscription)).all() == []
            team_id = setup_org(f, load_config(nowhere / "kpibot.yml"))["payments"]
            subs.subscribe(
                s,
                platform="teams",
                channel_id=CHANNEL,
                team_id=team_id,
                kind="weekly",
                created_by="aad-subscriber-1",
                now=sh.NOW.replace(tzinfo=None),
                reference=subs.Reference(teams.service_url, TENANT_ID),
            )
            s.commit()
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert f"posted the weekly digest of payments for 2026-W46 to {CHANNEL}" in out
        (sent,) = teams.posted(CHANNEL)
        card = sent.activity["attachments"][0]["content"]
        assert_valid_card(card)
        assert [a["title"] for a in card["actions"]] == ["Log action", "Details"]
        assert main(argv) == 0  # once: the second run finds it done
        assert "not posting it again" in capsys.readouterr().out
        assert len(teams.posted(CHANNEL)) == 1
        with f() as s:
            assert len(s.scalars(select(DigestRun)).all()) == 1
        eng.dispose()
