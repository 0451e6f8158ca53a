"""The core's refusals in Teams name people by their display names (seen in the conversation's
roster or on their own verified activities), or by their role alone when kpibot has not seen
them: never by a raw AAD object id. Over real HTTP, signed activities, the fake connector."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from bot import demo
from bot.slack.answers import SlackVoice
from bot.store import subscriptions as subs
from bot.store.session import make_engine, session_factory
from bot.store.teams import sync_teams
from bot.teams import roster as roster_module
from bot.teams.answers import TeamsVoice
from bot.teams.connector import Connector
from bot.teams.roster import Roster
from tests.fakes.teams import APP_ID, APP_PASSWORD, TENANT_ID
from tests.test_teams import assert_valid_card
from tests.test_teams_invoke import Bot, _bot, _completed, _logged

CONVERSATION = "19:channel@thread.tacv2"  # the fake's default conversation
STRANGER = "29:user-aad-3"  # neither owner nor creator, not an admin


@pytest.fixture
def items_bot(db_url) -> Iterator[Bot]:
    eng = make_engine(db_url)
    yield from _bot(session_factory(eng), demo.demo_config(), {"TEAMS_TENANT_ID": TENANT_ID})
    eng.dispose()


def test_an_item_refusal_names_its_owner_and_creator_never_their_ids(items_bot):
    item_id = _logged(items_bot, owner="aad-2")  # the dialog read the roster: Person 1..3
    r = items_bot.click("item_done", {"item": item_id, "scope": "open"}, user=STRANGER)
    assert r["type"] == "application/vnd.microsoft.activity.message"
    refusal = r["value"]
    assert "only its owner (Person 2), the person who logged it (Person 1)," in refusal
    assert "aad-" not in refusal
    assert _completed(items_bot, item_id) is None


def _said(bot: Bot, text: str, user: str, count: int) -> str:
    assert bot.post(bot.teams.activity(text, user=user)).status_code == 200
    card = bot.teams.wait_sent(count)[count - 1].activity["attachments"][0]["content"]
    assert_valid_card(card)
    return " ".join(b.get("text", "") for b in card["body"])


def test_a_person_kpibot_has_not_seen_is_named_by_role_then_by_name_once_seen(items_bot):
    factory = items_bot.surface.service.factory
    with factory() as s:
        team_id = sync_teams(s, demo.demo_config())["payments"]
        subs.subscribe(
            s,
            platform="teams",
            channel_id=CONVERSATION,
            team_id=team_id,
            kind="weekly",
            created_by="aad-5",
            now=datetime(2026, 11, 1, tzinfo=UTC).replace(tzinfo=None),
            reference=subs.Reference(items_bot.teams.service_url, TENANT_ID),
        )
        s.commit()
    first = _said(items_bot, "unsubscribe weekly payments", STRANGER, 1)
    assert "You're not allowed to change the weekly digest of payments" in first
    assert "only the person who subscribed it, a workspace admin" in first
    assert "aad-5" not in first and "someone" not in first
    # the subscriber speaks to kpibot once: from then on they are named
    _said(items_bot, "help", "29:user-aad-5", 2)
    second = _said(items_bot, "unsubscribe weekly payments", STRANGER, 3)
    assert "only the person who subscribed it (A person), a workspace admin" in second
    assert "aad-5" not in second
    with factory() as s:
        assert [x.channel_id for x in subs.for_team(s, team_id)] == [CONVERSATION]  # kept


def test_names_are_escaped_and_slack_keeps_its_mentions():
    voice = TeamsVoice({"aad-1": "**Eve** [x](https://evil.example)"}.get)
    said = voice.person("its owner", "aad-1")
    assert said == r"its owner (\*\*Eve\*\* \[x\](https://evil.example))"
    assert voice.person("its owner", "aad-2") == "its owner"
    assert voice.user("aad-2") == "someone"
    assert SlackVoice().person("its owner", "U0ALICE") == "its owner (<@U0ALICE>)"


def test_the_roster_keeps_the_newest_names_within_its_bound(monkeypatch):
    monkeypatch.setattr(roster_module, "MAX_NAMES", 3)
    roster = Roster(Connector(APP_ID, APP_PASSWORD, "http://127.0.0.1:9/token"))
    for i in range(4):
        roster.remember(f"aad-{i}", f"Person {i}")
    roster.remember("aad-1", "Person One")  # seen again: newest, renamed
    roster.remember("aad-9", "")  # no name: nothing kept
    roster.remember("aad-4", "Person 4")
    assert [roster.name(f"aad-{i}") for i in range(5)] == [
        None,
        "Person One",
        None,
        "Person 3",
        "Person 4",
    ]
    assert roster.name("aad-9") is None
