"""Drive the real Slack app over HTTP on loopback: signed slash commands, button clicks,
modal submissions and events, against the fake Slack Web API.

Test modules take the fixtures by assignment: ``slack, kpi = sh.slack, sh.kpi`` after
``from tests import slack_harness as sh``.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from bot.settings import Config, Settings, TeamConfig
from bot.slack.app import KpiApp, create_app
from bot.store.session import make_engine, session_factory
from bot.store.teams import sync_teams
from bot.surfaces.http import Server, slack_http_app
from tests import factories as f
from tests.fakes.slack import BOT_TOKEN, TEAM_ID, FakeSlack, SlackCall

SECRET = "kpibot-test-signing-secret-5f3a"
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PAY_CHANNEL = "C0PAY00001"  # payments' channel in kpibot.yml
OTHER_CHANNEL = "C0OTHER001"
TEAMS = (
    TeamConfig(
        name="payments",
        timezone="Europe/Berlin",
        channel=PAY_CHANNEL,
        repos=("acme/payments-api",),
    ),
    TeamConfig(name="mobile", timezone="America/New_York", repos=("acme/mobile-app",)),
)

_ids = itertools.count(1)


def seed(url: str) -> None:
    """A few weeks of merged PRs for payments (none for mobile)."""
    eng = make_engine(url)
    s = session_factory(eng)()
    sync_teams(s, Config(TEAMS))
    base = NOW.replace(tzinfo=None)
    for week in range(10):
        for k in range(4):
            created = base - timedelta(days=7 * week + k + 1, hours=30)
            merged = created + timedelta(hours=20 + 6 * k + week)
            f.pr(
                s,
                repository="acme/payments-api",
                created=created,
                first_commit=created - timedelta(hours=4),
                merged=merged,
                author=("alice", "bob", "carol")[k % 3],
                reviews=[("dave", "APPROVED", created + timedelta(hours=3 + k))],
                additions=50 * (k + 1),
            )
    s.commit()
    s.close()
    eng.dispose()


def signed_headers(body: str, secret: str = SECRET, ts: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if ts is None else ts)
    sig = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": sig}


class Harness:
    def __init__(self, fake: FakeSlack, server: Server, app: KpiApp) -> None:
        self.slack = fake
        self.server = server
        self.app = app
        self.url = server.url + "/slack/events"
        self.http = httpx.Client(timeout=20)

    # --------------------------------------------------------------- requests

    def post(
        self, body: str, content_type: str, *, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        h = {"Content-Type": content_type}
        h.update(signed_headers(body) if headers is None else headers)
        return self.http.post(self.url, content=body.encode("utf-8"), headers=h)

    def command_body(
        self,
        text: str,
        user: str,
        channel: str,
        response_url: str,
        trigger: str,
        workspace: str = TEAM_ID,
    ) -> str:
        return urlencode(
            {
                "token": "legacy-unused",
                "team_id": workspace,
                "team_domain": "fake",
                "channel_id": channel,
                "channel_name": "general",
                "user_id": user,
                "user_name": user.lower(),
                "command": "/kpi",
                "text": text,
                "api_app_id": "A0KPIBOT",
                "response_url": response_url,
                "trigger_id": trigger,
            }
        )

    def command(
        self,
        text: str,
        *,
        user: str = "U0ALICE",
        channel: str = PAY_CHANNEL,
        headers: dict[str, str] | None = None,
        workspace: str = TEAM_ID,
    ) -> tuple[httpx.Response, str]:
        """POST a signed slash command; returns (HTTP response, its response_url).
        ``workspace``: the user's own workspace (another one in a Slack Connect channel)."""
        hook = f"cmd{next(_ids)}"
        url = self.slack.response_url(hook)
        body = self.command_body(text, user, channel, url, f"trigger-{hook}", workspace)
        return self.post(body, "application/x-www-form-urlencoded", headers=headers), url

    def replay(self, sent: httpx.Response) -> httpx.Response:
        """Send the very same signed request again (same body, timestamp and signature), as
        an attacker or a retrying proxy would within Slack's 5 minutes."""
        return self.http.send(sent.request)

    def interactive(self, payload: dict[str, Any]) -> httpx.Response:
        body = urlencode({"payload": json.dumps(payload)})
        return self.post(body, "application/x-www-form-urlencoded")

    def click(
        self,
        action_id: str,
        value: str,
        *,
        user: str = "U0ALICE",
        channel: str | None = PAY_CHANNEL,
        container: dict[str, Any] | None = None,
        workspace: str = TEAM_ID,
    ) -> tuple[httpx.Response, str]:
        hook = f"act{next(_ids)}"
        url = self.slack.response_url(hook)
        payload: dict[str, Any] = {
            "type": "block_actions",
            "team": {"id": TEAM_ID, "domain": "fake"},
            "user": {"id": user, "team_id": workspace},
            "api_app_id": "A0KPIBOT",
            "trigger_id": f"trigger-{hook}",
            "container": container or {"type": "message", "is_ephemeral": True},
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": "b1",
                    "value": value,
                    "action_ts": str(time.time()),
                }
            ],
        }
        if channel:
            payload["channel"] = {"id": channel, "name": "general"}
        if container is None or container.get("type") != "view":
            payload["response_url"] = url
        return self.interactive(payload), url

    def submit(self, **fields: Any) -> httpx.Response:
        """Submit the action-item modal (fields as :meth:`submission_body` takes them)."""
        return self.post(self.submission_body(**fields), "application/x-www-form-urlencoded")

    def submission_body(
        self,
        *,
        team: str | None = "payments",
        kpi: str | None = "cycle-time",
        opportunity: str = "PRs wait a day for review",
        resolution: str = "A review slot after stand-up",
        owner: str | None = "U0BOB",
        due: str | None = "2026-12-15",
        user: str = "U0ALICE",
        metadata: dict[str, Any] | None = None,
        view_id: str | None = None,
        view_hash: str | None = None,
        workspace: str = TEAM_ID,
    ) -> str:
        """The form body of an action-item modal submission. Each call is another opened
        modal (its own view id and hash) unless ``view_id``/``view_hash`` say otherwise."""

        def sel(v: str | None) -> dict[str, Any]:
            return {"type": "static_select", "selected_option": {"value": v} if v else None}

        values = {
            "team": {"value": sel(team)},
            "kpi": {"value": sel(kpi)},
            "opportunity": {"value": {"type": "plain_text_input", "value": opportunity}},
            "resolution": {"value": {"type": "plain_text_input", "value": resolution}},
            "owner": {"value": {"type": "users_select", "selected_user": owner}},
            "due": {"value": {"type": "datepicker", "selected_date": due}},
        }
        payload = {
            "type": "view_submission",
            "team": {"id": TEAM_ID},
            "user": {"id": user, "team_id": workspace},
            "api_app_id": "A0KPIBOT",
            "view": {
                "id": view_id or f"V0MODAL{next(_ids)}",
                "hash": view_hash or f"{next(_ids)}.hash",
                "type": "modal",
                "callback_id": "action_item",
                "private_metadata": json.dumps(
                    metadata if metadata is not None else {"channel": PAY_CHANNEL, "item": None}
                ),
                "state": {"values": values},
            },
        }
        return urlencode({"payload": json.dumps(payload)})

    def event(self, event: dict[str, Any]) -> httpx.Response:
        body = json.dumps(
            {
                "token": "legacy-unused",
                "team_id": TEAM_ID,
                "api_app_id": "A0KPIBOT",
                "type": "event_callback",
                "event_id": f"Ev{next(_ids)}",
                "event_time": int(time.time()),
                "event": event,
            }
        )
        return self.post(body, "application/json")

    # ---------------------------------------------------------------- answers

    def answer(self, response_url: str, timeout: float = 15.0) -> SlackCall:
        """The respond() post made to ``response_url`` (waits for the slow work)."""
        path = response_url.split(self.slack.url, 1)[1]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hits = [c for c in self.slack.calls_to("response_url") if c.path == path]
            if hits:
                return hits[-1]
            time.sleep(0.02)
        raise AssertionError(f"no answer posted to {response_url}")

    def answers(self, response_url: str) -> list[SlackCall]:
        path = response_url.split(self.slack.url, 1)[1]
        return [c for c in self.slack.calls_to("response_url") if c.path == path]

    def close(self) -> None:
        self.http.close()


@pytest.fixture(scope="module")
def slack_server() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def slack(slack_server: FakeSlack) -> Iterator[FakeSlack]:
    """The module's fake Slack, reset for each test."""
    slack_server.reset()
    yield slack_server
    slack_server.reset()


def make_harness(
    db_url: str,
    fake: FakeSlack,
    tmp_path: Any,
    config: Config | None = None,
    *,
    report_workers: int = 0,
) -> Iterator[Harness]:
    seed(db_url)
    settings = Settings(
        database_url=db_url,
        config_path=str(tmp_path / "kpibot.yml"),
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=fake.api_url,
    )
    app = create_app(
        settings,
        config=config or Config(TEAMS),
        clock=lambda: NOW,
        backoff=0.01,
        report_workers=report_workers,
    )
    server = Server(slack_http_app(app), host="127.0.0.1", port=0, threads=8).start()
    h = Harness(fake, server, app)
    try:
        yield h
    finally:
        h.close()
        server.stop()
        app.close()


@pytest.fixture
def kpi(db_url: str, slack: FakeSlack, tmp_path: Any) -> Iterator[Harness]:
    yield from make_harness(db_url, slack, tmp_path)
