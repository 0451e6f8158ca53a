"""``kpibot run --mode http`` with ``TEAMS_APP_ID`` set: one process serving Slack and Teams
(with the report worker processes ``kpibot run`` starts), stopped cleanly by SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests import slack_harness as sh
from tests.fakes.slack import BOT_TOKEN, FakeSlack
from tests.fakes.teams import APP_ID, APP_PASSWORD, FakeTeams
from tests.test_slack_errors import _free_port

ROOT = str(Path(__file__).resolve().parents[1])


def test_kpibot_run_serves_teams_beside_slack(db_url, tmp_path):
    sh.seed(db_url)
    (tmp_path / "kpibot.yml").write_text(
        "teams:\n  - name: payments\n    repos: [acme/payments-api]\n    channel: C0PAY00001\n"
    )
    port = _free_port()
    with FakeSlack() as slack, FakeTeams() as teams:
        env = {
            **os.environ,
            "PYTHONPATH": ROOT,
            "DATABASE_URL": db_url,
            "KPIBOT_CONFIG": str(tmp_path / "kpibot.yml"),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": sh.SECRET,
            "SLACK_API_URL": slack.api_url,
            "TEAMS_APP_ID": APP_ID,
            "TEAMS_APP_PASSWORD": APP_PASSWORD,
            "TEAMS_OPENID_URL": teams.openid_url,
            "TEAMS_TOKEN_URL": teams.token_url,
            "KPIBOT_LOG_LEVEL": "INFO",
        }
        env.pop("SLACK_APP_TOKEN", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--mode", "http", "--port", str(port),
             "--no-scheduler"],
            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(base + "/healthz", timeout=2)
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                    assert time.monotonic() < deadline, "kpibot run did not start"
                    time.sleep(0.1)
            activity = teams.activity("cycle-time payments")
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
    assert "POST /api/messages (Teams)" in out
    assert APP_PASSWORD not in out + err and BOT_TOKEN not in out + err
    assert "Traceback" not in err
    assert "report workers failed" not in err and "report worker failed" not in err
