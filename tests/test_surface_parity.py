"""Slack and Teams give the same numbers: the same store (the demo organisation), the same
clock, the same commands through both real surfaces over HTTP (signed slash commands to the
fake Slack's response URLs, signed activities to the fake Bot Framework connector), and the
numbers read back out of the Block Kit and the Adaptive Card. Plus the action-item core on
the demo's numbers, called without either surface."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from bot.chat import answers as ans
from bot.chat.grammar import parse
from bot.chat.items import ItemInput
from bot.chat.permissions import Actor
from bot.chat.service import ChatService
from bot.settings import Settings, load_env_settings
from bot.slack.answers import SlackVoice
from bot.slack.app import create_app
from bot.surfaces.http import HttpApp, Server, slack_http_app
from bot.teams.answers import TeamsVoice
from bot.teams.app import TeamsSurface
from tests import slack_harness as sh
from tests.demo_org import NOW, DemoOrg, load_demo
from tests.fakes.slack import BOT_TOKEN, FakeSlack
from tests.fakes.teams import APP_ID, APP_PASSWORD, FakeTeams

COMMANDS = (
    "cycle-time payments",
    "lead-time mobile last-month",
    "first-review platform 2026-W46",
    "pr-size payments 90d",
    "review-coverage payments",
    "deploy-frequency platform",
    "cfr mobile last-month",
    "mttr payments 90d",
)
# a number with its unit, a direction arrow, or a word of a verdict
_TOKEN = re.compile(
    r"\d+(?:[.,]\d+)*(?:\s?(?:pp|%|days?/week|[a-z]+))?|[▲▼→<>]=?|on target|off target"
    r"|better|worse|flat"
)


@pytest.fixture(scope="module")
def org(tmp_path_factory, pg_schema_url) -> Iterator[DemoOrg]:
    yield from load_demo(tmp_path_factory.mktemp("parity-demo"), pg_schema_url)


class Surfaces:
    def __init__(self, slack: sh.Harness, teams: FakeTeams, teams_url: str) -> None:
        self.slack = slack
        self.teams = teams
        self.teams_url = teams_url

    def slack_fields(self, words: str) -> dict[str, str]:
        r, url = self.slack.command(words)
        assert r.status_code == 200
        fields: dict[str, str] = {}
        for block in self.slack.answer(url).blocks:
            for f in block.get("fields") or []:
                title, _, value = f["text"].partition("\n")
                fields[title.strip("*")] = value
        return fields

    def teams_facts(self, words: str) -> dict[str, str]:
        import httpx

        before = len(self.teams.sent)
        r = httpx.post(
            self.teams_url,
            json=self.teams.activity(words),
            headers={"Authorization": f"Bearer {self.teams.token()}"},
        )
        assert r.status_code == 200
        sent = self.teams.wait_sent(before + 1)[before]
        card = sent.activity["attachments"][0]["content"]
        return {
            f["title"]: f["value"]
            for element in card["body"]
            if element.get("type") == "FactSet"
            for f in element["facts"]
        }


@pytest.fixture(scope="module")
def surfaces(org, tmp_path_factory) -> Iterator[Surfaces]:
    tmp = tmp_path_factory.mktemp("parity")
    with FakeSlack() as fake_slack, FakeTeams() as fake_teams:
        settings = Settings(
            database_url=org.url,
            config_path=str(tmp / "kpibot.yml"),
            slack_bot_token=BOT_TOKEN,
            slack_signing_secret=sh.SECRET,
            slack_api_url=fake_slack.api_url,
        )
        app = create_app(settings, config=org.config, clock=lambda: NOW, backoff=0.01)
        teams_settings = load_env_settings(
            {
                "TEAMS_APP_ID": APP_ID,
                "TEAMS_APP_PASSWORD": APP_PASSWORD,
                "TEAMS_OPENID_URL": fake_teams.openid_url,
                "TEAMS_TOKEN_URL": fake_teams.token_url,
            },
            dotenv_path=None,
        )
        teams = TeamsSurface(teams_settings, org.factory, org.config, clock=lambda: NOW)
        http_app: HttpApp = slack_http_app(app)
        teams.install(http_app)  # one HTTP-mode server for both, as `kpibot run` serves them
        server = Server(http_app, host="127.0.0.1", port=0, threads=8).start()
        harness = sh.Harness(fake_slack, server, app)
        try:
            yield Surfaces(harness, fake_teams, f"{server.url}/api/messages")
        finally:
            harness.close()
            server.stop()
            teams.close()
            app.close()


def numbers(value: str) -> list[str]:
    return _TOKEN.findall(value)


@pytest.mark.parametrize("words", COMMANDS)
def test_a_metric_card_has_the_same_numbers_in_slack_and_teams(surfaces, words):
    slack = surfaces.slack_fields(words)
    teams = surfaces.teams_facts(words)
    assert set(slack) == set(teams) >= {"n", "Target", "Trend"}
    value = "Value (p50)" if "Value (p50)" in slack else "Value"
    for title in (value, "n", "p75 / p90", "Target", "Trend"):
        if title in slack:
            assert numbers(slack[title]) == numbers(teams[title]), title
            assert numbers(teams[title]), title
    # the trend names the previous period's value and sample size on both
    assert "previous" in slack["Trend"] and "previous" in teams["Trend"]
    assert int(slack["n"].replace(",", "")) > 0


def test_both_surfaces_read_the_store_the_core_reads(surfaces, org):
    """The numbers are the core's: the card computed directly says the same."""
    svc = ChatService(org.factory, org.config, lambda: NOW, TeamsVoice())
    card = svc.card("payments", "cycle-time", None)
    teams = surfaces.teams_facts("cycle-time payments")
    assert teams["n"] == str(card.n)
    assert numbers(surfaces.slack_fields("cycle-time payments")["n"]) == [str(card.n)]


# ------------------------------------------------------------------ the action-item core


def test_action_items_through_the_core_alone_on_the_demos_numbers(org):
    """Baseline from the team's current numbers, the list both platforms get, overdue and
    done, without Slack or Teams."""
    slack = ChatService(org.factory, org.config, lambda: NOW, SlackVoice())
    teams = ChatService(org.factory, org.config, lambda: NOW, TeamsVoice())
    anna = Actor("teams", "aad-anna", None, False)
    item = ItemInput(
        team="payments",
        kpi="cycle-time",
        opportunity="Reviews wait a day",
        resolution="A review slot after stand-up",
        owner="aad-anna",
        due_on="2026-11-27",
    )
    assert teams.validate(item, None) == {}
    row = teams.save_item(item, anna, "19:c", None)
    try:
        assert row is not None and row.platform == "teams"
        value, n = teams.baseline("payments", "cycle-time")
        card = teams.card("payments", "cycle-time", "28d")
        assert (value, n) == (card.value, card.n) and n and n > 0
        assert (row.baseline, row.kpi) == (value, "cycle-time")

        def listed(svc: ChatService, words: str) -> ans.ItemList:
            answer = svc.dispatch(parse(words, svc.team_names()), words, "u", None)
            assert isinstance(answer, ans.ItemList)
            return answer

        # both platforms list the same items (the demo's and this one) the same way
        assert listed(slack, "actions payments").items == listed(teams, "actions payments").items
        (mine,) = [i for i in listed(slack, "actions payments").items if i.id == row.id]
        assert not mine.overdue(NOW.date()) and mine.overdue(date(2026, 11, 28))
        done = teams.set_done(row.id, True, anna)
        assert done.completed_on == NOW.date()
        assert row.id not in [i.id for i in listed(slack, "actions payments").items]
        assert row.id in [i.id for i in listed(teams, "actions payments all").items]
    finally:
        if row is not None:
            _delete_item(org, row.id)


def _delete_item(org: DemoOrg, item_id: int) -> None:
    from bot.store.models import ActionItem

    with org.factory() as s:
        stored: Any = s.get(ActionItem, item_id)
        if stored is not None:
            s.delete(stored)
            s.commit()
