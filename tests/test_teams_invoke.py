"""Teams card buttons, the action-item dialog, the item list's buttons and the personal view,
over real HTTP: signed ``invoke`` activities to ``POST /api/messages`` (RS256 tokens from the
fake Bot Framework), answered in the HTTP response (Adaptive Card action responses, task
module responses), with the fake connector's roster and conversation API. Every card is
checked against the Adaptive Card 1.5 schema."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot import demo
from bot.settings import load_env_settings
from bot.store.models import ActionItem
from bot.store.session import make_engine, session_factory
from bot.surfaces.http import HttpApp, Server
from bot.teams.app import TeamsSurface
from bot.teams.charts import ChartLinks
from tests.demo_org import NOW, DemoOrg, load_demo
from tests.fakes.server import FakeResponse
from tests.fakes.teams import APP_ID, APP_PASSWORD, TENANT_ID, FakeTeams, new_key
from tests.test_teams import assert_valid_card, card_text

CARD = "application/vnd.microsoft.card.adaptive"
ME = "aad-1"  # the default sender of the fake's activities (29:user-aad-1)
OTHER = "29:user-aad-2"  # another person of the tenant (aad-2)
ADMIN = "29:user-aad-9"  # aad-9, in TEAMS_ADMINS


class Bot:
    def __init__(self, teams: FakeTeams, server: Server, surface: TeamsSurface) -> None:
        self.teams = teams
        self.server = server
        self.surface = surface

    def post(self, activity: dict[str, Any], token: str | None = "") -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        token = self.teams.token() if token == "" else token
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.post(
            f"{self.server.url}/api/messages", content=json.dumps(activity), headers=headers
        )

    def click(self, verb: str, data: dict[str, Any], **kw: Any) -> dict[str, Any]:
        r = self.post(self.teams.execute(verb, data, **kw))
        assert r.status_code == 200
        return r.json()

    def fetch(self, data: dict[str, Any], **kw: Any) -> dict[str, Any]:
        r = self.post(self.teams.invoke("task/fetch", {"data": data, "context": {}}, **kw))
        assert r.status_code == 200
        return r.json()

    def submit(self, data: dict[str, Any], **kw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        activity = self.teams.invoke("task/submit", {"data": data, "context": {}}, **kw)
        r = self.post(activity)
        assert r.status_code == 200
        return r.json(), activity


def _bot(factory, config, env: dict[str, str] | None = None) -> Iterator[Bot]:
    with FakeTeams() as teams:
        settings = load_env_settings(
            {
                "TEAMS_APP_ID": APP_ID,
                "TEAMS_APP_PASSWORD": APP_PASSWORD,
                "TEAMS_OPENID_URL": teams.openid_url,
                "TEAMS_TOKEN_URL": teams.token_url,
                "TEAMS_ADMINS": "aad-9, someone-else",
                **(env or {}),
            },
            dotenv_path=None,
        )
        surface = TeamsSurface(settings, factory, config, clock=lambda: NOW)
        http_app = HttpApp()
        surface.install(http_app)
        with Server(http_app, host="127.0.0.1", port=0, threads=4) as server:
            yield Bot(teams, server, surface)


@pytest.fixture(scope="module")
def org(tmp_path_factory) -> Iterator[DemoOrg]:
    yield from load_demo(tmp_path_factory.mktemp("teams-invoke-demo"))


@pytest.fixture
def bot(org) -> Iterator[Bot]:
    """The demo organisation's data (metric cards)."""
    yield from _bot(org.factory, org.config)


@pytest.fixture
def items_bot(db_url) -> Iterator[Bot]:
    """An empty store of the test database (SQLite, or PostgreSQL when configured), the demo
    teams, the tenant pinned: for the action items."""
    eng = make_engine(db_url)
    yield from _bot(session_factory(eng), demo.demo_config(), {"TEAMS_TENANT_ID": TENANT_ID})
    eng.dispose()


def _card(response: dict[str, Any]) -> dict[str, Any]:
    assert response["statusCode"] == 200 and response["type"] == CARD, response
    card = response["value"]
    assert_valid_card(card)
    return card


def _dialog(response: dict[str, Any]) -> dict[str, Any]:
    task = response["task"]
    assert task["type"] == "continue", response
    attachment = task["value"]["card"]
    assert attachment["contentType"] == CARD
    assert_valid_card(attachment["content"])
    return attachment["content"]


def _inputs(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["id"]: b for b in card["body"] if b["type"].startswith("Input.")}


def _errors(card: dict[str, Any]) -> list[str]:
    return [b["text"] for b in card["body"] if b.get("color") == "Attention"]


def _count(factory) -> int:
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(ActionItem)) or 0)


REF = {"m": "cycle-time", "t": "payments", "p": "28d"}


# --- a metric card's buttons ----------------------------------------------------------------


def test_share_in_channel_posts_the_card_and_refreshes_it_in_place(bot):
    card = _card(bot.click("share_card", REF))
    assert card["body"][0]["text"] == "Cycle time · payments"
    assert len(card["actions"]) == 4  # the clicked card keeps its buttons
    (sent,) = bot.teams.wait_sent(1)
    assert sent.method == "POST" and sent.conversation == "19:channel@thread.tacv2"
    shared = sent.activity["attachments"][0]["content"]
    assert_valid_card(shared)
    assert "actions" not in shared  # the shared copy has no buttons
    assert shared["body"][0]["text"] == "Cycle time · payments"
    assert shared["body"][-1]["text"] == "Shared by A person"


def test_how_is_this_computed_shows_the_definition_and_back_returns_the_card(bot):
    card = _card(bot.click("how_computed", REF))
    assert card["body"][0]["text"] == "How Cycle time is computed"
    assert "target" in card_text(card)
    (back,) = card["actions"]
    assert back["verb"] == "show_card" and back["data"] == REF
    again = _card(bot.click("show_card", back["data"]))
    assert again["body"][0]["text"] == "Cycle time · payments"
    assert bot.teams.sent == []


def test_show_chart_links_a_signed_expiring_image_served_by_kpibot(bot):
    bot.surface.charts.public_url = bot.server.url
    card = _card(bot.click("show_chart", REF))
    images = [b for b in card["body"] if b["type"] == "Image"]
    assert len(images) == 2  # cycle time: its trend and its phases
    assert "Cycle time · payments, last 8 periods" in card_text(card)
    url = images[0]["url"]
    assert url.startswith(f"{bot.server.url}/api/charts?c=")
    r = httpx.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content.startswith(b"\x89PNG")
    assert httpx.get(images[1]["url"]).content.startswith(b"\x89PNG")
    # a token changed by one character, none, or signed with another key: 401
    token = url.split("c=")[1]
    forged = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert httpx.get(f"{bot.server.url}/api/charts?c={forged}").status_code == 401
    assert httpx.get(f"{bot.server.url}/api/charts").status_code == 401
    other = ChartLinks("another-secret", bot.server.url).url(*REF.values(), 0)
    assert other and httpx.get(other).status_code == 401


def test_an_expired_chart_link_is_refused():
    now = [1_000_000.0]
    links = ChartLinks(APP_PASSWORD, "https://kpibot.example.com", ttl=60, clock=lambda: now[0])
    token = links.token("cycle-time", "payments", "28d", 0)
    assert links.verify(token) == ("cycle-time", "payments", "28d", 0)
    now[0] += 61
    assert links.verify(token) is None


def test_show_chart_without_a_public_address_shows_the_numbers(bot):
    card = _card(bot.click("show_chart", REF))
    assert not [b for b in card["body"] if b["type"] == "Image"]
    text = card_text(card)
    assert "KPIBOT_PUBLIC_URL" in text and "last 8 periods" in text


def test_log_action_opens_the_dialog_with_the_kpi_and_its_baseline(bot):
    card = _dialog(bot.fetch({**REF, "verb": "log_action", "msteams": {"type": "task/fetch"}}))
    inputs = _inputs(card)
    assert list(inputs) == ["team", "kpi", "opportunity", "resolution", "owner", "due_on"]
    assert inputs["team"]["value"] == "payments" and inputs["kpi"]["value"] == "cycle-time"
    assert inputs["owner"]["value"] == ME
    assert [c["value"] for c in inputs["owner"]["choices"]] == ["aad-1", "aad-2", "aad-3"]
    assert re.search(
        r"Baseline when logged: Cycle time: .+ \(n = \d+\) over the last 28 days", card_text(card)
    )
    (save,) = card["actions"]
    assert save["type"] == "Action.Submit" and save["data"]["verb"] == "save_item"


def test_log_action_clicked_as_execute_answers_with_a_button_that_opens_the_dialog(bot):
    card = _card(bot.click("log_action", REF))
    (button,) = card["actions"]
    assert button["type"] == "Action.Submit"
    assert button["data"] == {
        "t": "payments",
        "m": "cycle-time",
        "verb": "action_add",
        "msteams": {"type": "task/fetch"},
    }


def test_action_add_command_answers_with_a_card_opening_the_dialog(bot):
    assert bot.post(bot.teams.activity("action add payments")).status_code == 200
    (sent,) = bot.teams.wait_sent(1)
    card = sent.activity["attachments"][0]["content"]
    assert_valid_card(card)
    (button,) = card["actions"]
    assert button["data"]["msteams"] == {"type": "task/fetch"}
    assert button["data"]["verb"] == "action_add" and button["data"]["t"] == "payments"
    assert "not available" not in card_text(card)


def test_unknown_verb_and_stale_data_answer_a_message(bot):
    r = bot.click("no_such_button", {})
    assert r["type"] == "application/vnd.microsoft.activity.message"
    assert "older message" in r["value"]
    r = bot.click("share_card", {"x": 1})
    assert r["type"] == "application/vnd.microsoft.activity.message"
    assert "older message" in r["value"]
    assert bot.teams.sent == []


@pytest.mark.parametrize("token", ["none", "forged"])
def test_unauthenticated_invoke_gets_401_and_nothing_happens(bot, token):
    t = None if token == "none" else bot.teams.token(key=new_key())
    r = bot.post(bot.teams.execute("share_card", REF), token=t)
    assert r.status_code == 401
    assert bot.teams.sent == []


# --- the dialog -----------------------------------------------------------------------------

VALID = {
    "team": "payments",
    "kpi": "first-review",
    "opportunity": "PRs wait a day for [review](https://evil.example)",
    "resolution": "A **daily** review slot",
    "owner": "aad-2",
    "due_on": "2026-12-01",
}


def _save(items_bot: Bot, **changes: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    data = {**VALID, **changes, "verb": "save_item", "item": None}
    return items_bot.submit({k: v for k, v in data.items() if v is not ...})


def test_a_valid_submit_stores_exactly_one_item_and_confirms_it(items_bot):
    factory = items_bot.surface.service.factory
    response, activity = _save(items_bot)
    assert response == {}  # no task: Teams closes the dialog
    with factory() as s:
        (item,) = s.scalars(select(ActionItem)).all()
        assert (item.platform, item.owner, item.created_by) == ("teams", "aad-2", ME)
        assert item.opportunity == VALID["opportunity"] and item.due_on == date(2026, 12, 1)
        assert item.kpi == "first-review" and item.channel_id == "19:channel@thread.tacv2"
    (sent,) = items_bot.teams.wait_sent(1)
    note = sent.activity["attachments"][0]["content"]
    assert_valid_card(note)
    text = note["body"][0]["text"]
    assert "owner Person 2" in text and "due 2026-12-01" in text
    assert r"\[review\](https://evil.example)" in text and r"\*\*daily\*\*" in text
    # the same delivery again (a replay): nothing stored, nothing posted
    assert items_bot.post(activity).json() == {}
    assert _count(factory) == 1 and len(items_bot.teams.sent) == 1


OTHER_TENANT_ROSTER = "19:guests@thread.tacv2"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"team": ...}, "team", "Pick the team"),
        ({"team": "nope"}, "team", "Pick the team"),
        ({"kpi": "nope"}, "kpi", "Pick a KPI"),
        ({"opportunity": "  "}, "opportunity", "Describe the opportunity"),
        ({"opportunity": "x" * 501}, "opportunity", "under 500 characters"),
        ({"resolution": ""}, "resolution", "Describe the resolution"),
        ({"resolution": "y" * 1001}, "resolution", "under 1000 characters"),
        ({"owner": ...}, "owner", "Pick the owner"),
        ({"owner": "aad-stranger"}, "owner", "Pick an owner from this workspace"),
        ({"due_on": ...}, "due_on", "Pick a due date"),
        ({"due_on": "tomorrow"}, "due_on", "Pick a date from the calendar"),
        ({"due_on": "2026-11-19"}, "due_on", "can't be in the past"),
    ],
)
def test_each_invalid_field_gets_the_dialog_again_with_its_error_and_nothing_stored(
    items_bot, changes, field, message
):
    response, _ = _save(items_bot, **changes)
    card = _dialog(response)
    errors = _errors(card)
    assert len(errors) == 1 and message in errors[0]
    # the error sits right under its field, and what was typed is kept
    ids = [b.get("id") for b in card["body"]]
    at = ids.index(field)
    assert card["body"][at + 1].get("color") == "Attention"
    inputs = _inputs(card)
    assert inputs["resolution"].get("value", "") == changes.get("resolution", VALID["resolution"])
    assert _count(items_bot.surface.service.factory) == 0
    assert items_bot.teams.sent == []


def test_an_owner_of_another_tenant_is_refused(items_bot):
    items_bot.teams.rosters["19:channel@thread.tacv2"] = [
        FakeTeams.member("aad-1", "Person 1"),
        FakeTeams.member("aad-guest", "Guest", tenant="another-tenant"),
    ]
    card = _dialog(_save(items_bot, owner="aad-guest")[0])
    assert "Pick an owner from this workspace" in _errors(card)[0]
    assert _count(items_bot.surface.service.factory) == 0


# --- the item list's buttons ----------------------------------------------------------------


def _logged(items_bot: Bot, **changes: Any) -> int:
    assert _save(items_bot, **changes)[0] == {}
    with items_bot.surface.service.factory() as s:
        return int(s.scalars(select(ActionItem.id).order_by(ActionItem.id.desc())).first() or 0)


def _completed(items_bot: Bot, item_id: int) -> date | None:
    with items_bot.surface.service.factory() as s:
        return s.get(ActionItem, item_id).completed_on  # type: ignore[union-attr]


def test_the_actions_list_has_mark_done_edit_and_reopen(items_bot):
    item_id = _logged(items_bot)
    items_bot.post(items_bot.teams.activity("actions payments"))
    sent = items_bot.teams.wait_sent(2)
    card = sent[-1].activity["attachments"][0]["content"]
    assert_valid_card(card)
    # what people typed is shown as typed: no link, no emphasis
    (entry,) = [b["text"] for b in card["body"] if "evil.example" in b.get("text", "")]
    assert r"\[review\](https://evil.example)" in entry and r"\*\*daily\*\*" in entry
    sets = [b for b in card["body"] if b["type"] == "ActionSet"]
    (buttons,) = [s["actions"] for s in sets]
    assert [b["title"] for b in buttons] == ["Mark done", "Edit"]
    assert buttons[0]["verb"] == "item_done" and buttons[0]["data"] == {
        "item": item_id,
        "scope": "open",
    }
    assert buttons[1]["data"]["msteams"] == {"type": "task/fetch"}
    # the owner marks it done: the list is shown again in place, without it
    after = _card(items_bot.click("item_done", buttons[0]["data"], user=OTHER))
    assert "None." in card_text(after)
    assert _completed(items_bot, item_id) == date(2026, 11, 20)
    # in the list of all items it can be reopened
    everything = _card(items_bot.click("item_reopen", {"item": item_id, "scope": "all"}))
    assert _completed(items_bot, item_id) is None
    (reopened,) = [b for b in everything["body"] if b["type"] == "ActionSet"]
    assert reopened["actions"][0]["title"] == "Mark done"


def test_a_stranger_is_refused_by_the_core_and_nothing_changes(items_bot):
    item_id = _logged(items_bot, owner="aad-2")
    r = items_bot.click("item_done", {"item": item_id, "scope": "open"}, user="29:user-aad-3")
    assert r["type"] == "application/vnd.microsoft.activity.message"
    assert r["value"].startswith("You're not allowed to change this action item")
    assert _completed(items_bot, item_id) is None
    # nor may they open it for editing
    task = items_bot.fetch({"verb": "item_edit", "item": item_id}, user="29:user-aad-3")["task"]
    assert task["type"] == "message" and "not allowed" in task["value"]
    # nor save an edit by submitting the dialog's data directly
    response, _ = items_bot.submit(
        {**VALID, "opportunity": "changed", "verb": "save_item", "item": item_id},
        user="29:user-aad-3",
    )
    assert response["task"]["type"] == "message" and "not allowed" in response["task"]["value"]
    with items_bot.surface.service.factory() as s:
        assert s.get(ActionItem, item_id).opportunity == VALID["opportunity"]  # type: ignore[union-attr]


def test_an_admin_from_teams_admins_may_change_any_item(items_bot):
    item_id = _logged(items_bot, owner="aad-2")
    _card(items_bot.click("item_done", {"item": item_id, "scope": "open"}, user=ADMIN))
    assert _completed(items_bot, item_id) == date(2026, 11, 20)


def test_a_request_from_another_tenant_is_refused(items_bot):
    item_id = _logged(items_bot)
    r = items_bot.post(
        items_bot.teams.execute("item_done", {"item": item_id}, tenant="another-tenant")
    )
    assert r.status_code == 403
    assert _completed(items_bot, item_id) is None


def test_edit_opens_the_dialog_prefilled_and_saves_the_change(items_bot):
    item_id = _logged(items_bot)
    card = _dialog(items_bot.fetch({"verb": "item_edit", "item": item_id}))
    inputs = _inputs(card)
    assert inputs["opportunity"]["value"] == VALID["opportunity"]
    assert inputs["owner"]["value"] == "aad-2" and inputs["due_on"]["value"] == "2026-12-01"
    assert card["actions"][0]["data"] == {"verb": "save_item", "item": item_id}
    response, _ = items_bot.submit(
        {**VALID, "resolution": "Pairing on reviews", "verb": "save_item", "item": item_id}
    )
    assert response == {}
    with items_bot.surface.service.factory() as s:
        assert s.get(ActionItem, item_id).resolution == "Pairing on reviews"  # type: ignore[union-attr]
    assert _count(items_bot.surface.service.factory) == 1
    assert "updated an action item" in card_text(items_bot.teams.wait_sent(2)[-1].activity)


# --- the personal view ----------------------------------------------------------------------


def test_home_in_the_personal_chat_shows_my_items_with_mark_done(items_bot):
    item_id = _logged(items_bot, owner=ME)
    personal = {"conversation": "a:me", "conversation_type": "personal", "mention": False}
    assert items_bot.post(items_bot.teams.activity("home", **personal)).status_code == 200
    card = items_bot.teams.wait_sent(2)[-1].activity["attachments"][0]["content"]
    assert_valid_card(card)
    text = card_text(card)
    assert "Your teams' health" in text and "Your open action items (1)" in text
    assert "Digests of your teams" in text
    (buttons,) = [b["actions"] for b in card["body"] if b["type"] == "ActionSet"]
    assert [b["title"] for b in buttons] == ["Mark done"]
    assert buttons[0]["data"] == {"item": item_id, "scope": "home"}
    after = _card(
        items_bot.click(
            "item_done", buttons[0]["data"], conversation="a:me", conversation_type="personal"
        )
    )
    assert "Your open action items (0)" in card_text(after)
    assert _completed(items_bot, item_id) == date(2026, 11, 20)


def test_installing_the_bot_in_the_personal_chat_posts_the_view(items_bot):
    t = items_bot.teams
    update = t.activity("", conversation="a:new", conversation_type="personal", mention=False)
    update.update({"type": "conversationUpdate", "membersAdded": [{"id": f"28:{APP_ID}"}]})
    del update["text"]
    assert items_bot.post(update).status_code == 200
    (sent,) = t.wait_sent(1)
    assert sent.conversation == "a:new"
    card = sent.activity["attachments"][0]["content"]
    assert_valid_card(card)
    assert card["body"][0]["text"] == "kpibot"
    # someone else joining a channel posts nothing
    other = t.activity("", mention=False)
    other.update({"type": "conversationUpdate", "membersAdded": [{"id": "29:someone"}]})
    assert items_bot.post(other).status_code == 200
    assert len(t.wait_sent(2, timeout=0.5)) == 1


def test_home_in_a_channel_says_where_to_ask(items_bot):
    assert items_bot.post(items_bot.teams.activity("home")).status_code == 200
    card = items_bot.teams.wait_sent(1)[0].activity["attachments"][0]["content"]
    assert_valid_card(card)
    assert "personal chat" in card_text(card)


def test_without_a_roster_the_dialog_offers_the_asking_person(bot):
    bot.teams.fail("GET", r"/v3/conversations/.*/members", FakeResponse.json({}, status=503))
    card = _dialog(bot.fetch({"verb": "action_add"}))
    owner = _inputs(card)["owner"]
    assert owner["value"] == ME
    assert owner["choices"] == [{"title": "A person", "value": ME}]


def test_a_new_button_plugs_in_with_one_line(bot):
    from bot.teams import invoke

    invoke.VERBS["echo_team"] = lambda inv: invoke.message_response(f"team {inv.data['t']}")
    try:
        assert bot.click("echo_team", REF)["value"] == "team payments"
    finally:
        del invoke.VERBS["echo_team"]


def test_long_lists_and_views_are_cut_to_28_kb_with_a_note():
    from bot.chat import answers as ans
    from bot.chat.items import ItemRow
    from bot.teams import answers as teams_answers

    rows = tuple(
        ItemRow(
            i,
            "payments",
            f"**opp {i}** " + "o" * 400,
            "r" * 400,
            "aad-2",
            date(2026, 12, 1),
            None,
            "cycle-time",
            None,
            "aad-1",
            "teams",
        )
        for i in range(1, 120)
    )
    for card in (
        teams_answers.item_list(rows, "payments", False, date(2026, 11, 20)),
        teams_answers.home_card(ans.Home("aad-2", (), rows, (), date(2026, 11, 20))),
    ):
        assert_valid_card(card)
        assert card["body"][-1]["text"].endswith("not shown (the card is too long)")
        assert r"\*\*opp 1\*\*" in card_text(card).replace("\\\\", "\\")


def test_the_team_picker_answers_the_command_for_the_picked_team(bot):
    conv = {"conversation": "19:fresh@thread.tacv2"}
    assert bot.post(bot.teams.activity("health", **conv)).status_code == 200
    card = bot.teams.wait_sent(1)[0].activity["attachments"][0]["content"]
    assert_valid_card(card)
    picks = {a["title"]: a for a in card["actions"]}
    assert picks["mobile"]["verb"] == "pick"
    answer = _card(bot.click("pick", picks["mobile"]["data"], **conv))
    assert answer["body"][0]["text"] == "Health · mobile"


def test_other_invoke_names_are_acknowledged_and_do_nothing(bot):
    r = bot.post(bot.teams.invoke("composeExtension/query", {"commandId": "x"}))
    assert r.status_code == 200 and r.json() == {}
    assert bot.teams.sent == []


def test_turn_this_alert_off_from_a_teams_alert_card(bot):
    """The threshold alert's *Turn this alert off* button: admitted for a Teams admin only."""
    from bot.store import alerts as alerts_store
    from bot.store.models import Team

    data = {"m": "change-failure-rate", "t": "payments", "p": "28d"}

    def enabled() -> set[str]:
        with bot.surface.parts.service.session() as s:
            tid = s.scalars(select(Team.id).where(Team.name == "payments")).one()
            return set(alerts_store.enabled({}, alerts_store.chat_settings(s, tid)))

    bot.surface.parts.service.set_alert(
        "payments", "cfr", True, bot.surface.parts.roster.actor("aad-9", TENANT_ID)
    )
    assert "change-failure-rate" in enabled()
    refused = _card(bot.click("alert_off", data))  # aad-1: neither admin nor lead
    assert_valid_card(refused)
    assert "not allowed" in card_text(refused)
    assert "change-failure-rate" in enabled()
    done = _card(bot.click("alert_off", data, user=ADMIN))
    assert_valid_card(done)
    assert "are off" in card_text(done)
    assert enabled() == set()


def test_agreement_buttons_snooze_and_exclude_through_the_invoke_registry(items_bot):
    """*Snooze 1 day* and *Exclude from metrics* of an agreement nudge, clicked in Teams."""
    from bot.store.models import PullRequestExclusion
    from tests.factories import T
    from tests.factories import pr as add_pr

    with items_bot.surface.service.session() as s:
        pr_id = add_pr(
            s, created=T("2026-11-18 10:00"), merged=None, repository="acme/payments-api"
        ).id
        s.commit()
    data = {"t": "payments", "pr": pr_id}
    snoozed = _card(items_bot.click("agreement_snooze", data))
    assert_valid_card(snoozed)
    assert "no longer in breach" in card_text(snoozed)  # it was never in breach
    refused = _card(items_bot.click("agreement_exclude", data))  # aad-1: no lead, no admin
    assert "Only a workspace admin or a lead of payments" in card_text(refused)
    dialog = _card(items_bot.click("agreement_exclude", data, user=ADMIN))
    assert_valid_card(dialog)
    assert "reason" in _inputs(dialog)
    done = _card(items_bot.click("agreement_exclude", {**data, "reason": "a spike"}, user=ADMIN))
    assert_valid_card(done)
    with items_bot.surface.service.session() as s:
        (row,) = s.scalars(select(PullRequestExclusion)).all()
        assert (row.pull_request_id, row.excluded_by, row.reason) == (pr_id, "aad-9", "a spike")
