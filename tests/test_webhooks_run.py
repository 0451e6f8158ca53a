"""Webhook deliveries over real HTTP to ``kpibot run --mode http`` (a separate process, with
Slack faked on loopback): stored once, replays change nothing, bad signatures are 401 and
malformed bodies 400, then the DORA card shows what arrived."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from bot.metrics.engine import TeamEngine
from bot.settings import load_config
from bot.store.models import Deployment, Incident
from bot.surfaces.webhooks import sign, sign_delivery
from tests.fakes.slack import BOT_TOKEN, FakeSlack
from tests.helpers import period

SECRET = "run-secret-5678"
CONFIG = """\
teams:
  - name: payments
    repos: [acme/api]
    deployments: {source: webhook}
    incidents: {source: webhook}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def kpibot(tmp_path: Path, db_url: str) -> Iterator[str]:
    cfg = tmp_path / "kpibot.yml"
    cfg.write_text(CONFIG, encoding="utf-8")
    port = free_port()
    with FakeSlack() as slack:
        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "KPIBOT_CONFIG": str(cfg),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": "slack-signing-secret",
            "SLACK_API_URL": slack.api_url,
            "KPIBOT_WEBHOOK_SECRET": SECRET,
            "PORT": str(port),
        }
        env.pop("SLACK_APP_TOKEN", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--mode", "http", "--no-scheduler"],
            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"kpibot run exited: {proc.stderr.read().decode()[-2000:]}")
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail("kpibot run did not start listening in 30 s")
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()
            if proc.stderr:
                proc.stderr.close()


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    ts = int(time.time())
    signature = sign_delivery(secret, body, ts)
    return {"X-Kpibot-Timestamp": str(ts), "X-Kpibot-Signature-256": signature}


def deliver(url: str, path: str, payload: object, secret: str = SECRET) -> httpx.Response:
    body = json.dumps(payload).encode()
    return httpx.post(
        url + path,
        content=body,
        headers={"Content-Type": "application/json", **signed(body, secret)},
    )


def test_deliveries_to_kpibot_run(kpibot, session, tmp_path):
    deploys = [
        ("d1", "a1b2c3d", "success", "2026-10-05T10:00:00Z"),
        ("d2", "b2c3d4e", "success", "2026-10-12T10:00:00Z"),
        ("d3", "c3d4e5f", "failure", "2026-10-13T10:00:00Z"),
        ("d4", "d4e5f6a", "success", "2026-10-19T10:00:00Z"),
    ]
    for pid, sha, status, finished in deploys:
        payload = {
            "id": pid,
            "repository": "acme/api",
            "environment": "production",
            "commit_sha": sha,
            "status": status,
            "finished_at": finished,
        }
        assert deliver(kpibot, "/webhooks/deployments", payload).status_code == 200
        # every deployment delivered twice
        assert deliver(kpibot, "/webhooks/deployments", payload).json()["duplicate"] is True
    incident = {
        "id": "PD-1",
        "team": "payments",
        "started_at": "2026-10-12T11:00:00Z",
        "resolved_at": "2026-10-12T11:30:00Z",
        "deployment_id": "d2",
    }
    assert deliver(kpibot, "/webhooks/incidents", incident).status_code == 200
    assert deliver(kpibot, "/webhooks/incidents", incident).json()["duplicate"] is True
    bad = deliver(kpibot, "/webhooks/incidents", {**incident, "id": "PD-2"}, secret="guess")
    assert bad.status_code == 401
    malformed = httpx.post(
        kpibot + "/webhooks/deployments",
        content=b'{"repository": ',
        headers=signed(b'{"repository": '),
    )
    assert malformed.status_code == 400 and "not valid JSON" in malformed.json()["error"]
    gh = httpx.post(
        kpibot + "/webhooks/github",
        content=b"{}",
        headers={"X-GitHub-Event": "ping", "X-Hub-Signature-256": sign("nope", b"{}")},
    )
    assert gh.status_code == 401

    assert session.scalar(select(func.count()).select_from(Deployment)) == 4
    assert session.scalar(select(func.count()).select_from(Incident)) == 1
    team = load_config(tmp_path / "kpibot.yml").teams[0]
    eng = TeamEngine(session, team)
    oct_ = period("2026-10")
    cfr = eng.value("change-failure-rate", oct_)
    # three successful production deployments, d2 named by the incident
    assert (cfr.n, cfr.value) == (3, pytest.approx(1 / 3))
    mttr = eng.value("mttr", oct_)
    assert (mttr.n, mttr.value) == (1, pytest.approx(1800.0))
