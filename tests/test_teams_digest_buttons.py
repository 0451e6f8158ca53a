"""A weekly digest's *Log action* and *Details* buttons in Teams, as Slack's, over real HTTP:
the digest preview (``@kpibot weekly``) and the proactively posted digest carry them; a
signed ``task/fetch`` opens the action-item dialog for the digest's team, a signed
``adaptiveCard/action`` shows the team's health over the digest's week in place of the
digest (for the person who asked) with a button back to it. Every card is valid against the
Adaptive Card 1.5 schema and under 28 KB."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bot.chat import answers as ans
from bot.reports.digests import WeeklyDigest
from bot.scheduler.teams_poster import TeamsPoster
from bot.teams.connector import Connector
from tests.demo_org import DemoOrg, load_demo
from tests.fakes.teams import APP_ID, APP_PASSWORD
from tests.test_teams import assert_valid_card, card_text
from tests.test_teams_invoke import Bot, _bot, _card, _dialog, _inputs

WEEK = "2026-W46"  # the last complete week before the demo's NOW (2026-11-20)
DIGEST = {"t": "payments", "k": "weekly", "p": WEEK}


@pytest.fixture(scope="module")
def org(tmp_path_factory) -> Iterator[DemoOrg]:
    yield from load_demo(tmp_path_factory.mktemp("teams-digest-buttons"))


@pytest.fixture
def bot(org) -> Iterator[Bot]:
    yield from _bot(org.factory, org.config)


def _buttons(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["title"]: a for a in card["actions"]}


def _assert_digest_buttons(card: dict[str, Any]) -> None:
    assert_valid_card(card)
    buttons = _buttons(card)
    assert list(buttons) == ["Log action", "Details"]
    log = buttons["Log action"]  # a dialog: only Action.Submit with task/fetch opens one
    assert log["type"] == "Action.Submit"
    assert log["data"] == {"t": "payments", "verb": "log_action", "msteams": {"type": "task/fetch"}}
    details = buttons["Details"]
    assert details["type"] == "Action.Execute" and details["verb"] == "digest_details"
    assert details["data"] == DIGEST


def test_the_weekly_preview_carries_log_action_and_details(bot):
    assert bot.post(bot.teams.activity(f"weekly payments {WEEK}")).status_code == 200
    (sent,) = bot.teams.wait_sent(1)
    card = sent.activity["attachments"][0]["content"]
    assert card["body"][0]["text"] == "Weekly leading indicators · payments"
    _assert_digest_buttons(card)


def test_log_action_on_a_digest_opens_the_dialog_for_its_team(bot):
    data = {"t": "payments", "verb": "log_action", "msteams": {"type": "task/fetch"}}
    inputs = _inputs(_dialog(bot.fetch(data)))
    assert inputs["team"]["value"] == "payments"
    assert not inputs["kpi"].get("value")  # a digest is about no one KPI
    assert bot.teams.sent == []


def test_details_shows_the_weeks_health_in_place_and_back_returns_the_digest(bot):
    health = _card(bot.click("digest_details", DIGEST))
    assert health["body"][0]["text"] == "Health · payments"
    assert f"week {WEEK} (Nov 9 – Nov 15)" in card_text(health)  # the digest's, not 28 days
    (back,) = health["actions"]
    assert back["title"] == "Back to the digest"
    assert back["verb"] == "show_digest" and back["data"] == DIGEST
    digest = _card(bot.click("show_digest", back["data"]))
    assert digest["body"][0]["text"] == "Weekly leading indicators · payments"
    assert "Nov 9 – Nov 15" in card_text(digest)
    _assert_digest_buttons(digest)
    assert bot.teams.sent == []  # nothing posted to the conversation


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "older message"),
        ({"t": "payments", "k": "daily", "p": WEEK}, "older message"),
        ({"t": "payments", "k": "weekly", "p": 46}, "older message"),
        ({"t": "gone-team", "k": "weekly", "p": WEEK}, "no longer configured"),
        ({"t": "payments", "k": "weekly", "p": "not-a-week"}, "older message"),
    ],
)
def test_stale_or_forged_digest_buttons_answer_a_message(bot, data, message):
    for verb in ("digest_details", "show_digest"):
        r = bot.click(verb, data)
        assert r["type"] == "application/vnd.microsoft.activity.message", r
        assert message in r["value"]
    assert bot.teams.sent == []


def test_a_proactively_posted_weekly_digest_carries_the_buttons(org):
    service_url = "https://smba.example.com/teams/"
    connector = Connector(APP_ID, APP_PASSWORD, "http://127.0.0.1:9/token")
    poster = TeamsPoster(connector, service_url=service_url)
    preview = _service(org).digest("payments", "weekly", WEEK)
    assert isinstance(preview.digest, WeeklyDigest)
    activity = poster.render_digest(preview.digest, _service(org).links)
    _assert_digest_buttons(activity["attachments"][0]["content"])


def test_details_asks_what_slack_asks():
    assert ans.digest_details_command("payments", WEEK) == f"health payments {WEEK}"


def _service(org: DemoOrg):
    from bot.chat.service import ChatService
    from bot.teams.answers import TeamsVoice
    from tests.demo_org import NOW

    return ChatService(org.factory, org.config, lambda: NOW, TeamsVoice())
