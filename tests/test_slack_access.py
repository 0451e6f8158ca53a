"""Who may change what from Slack, and requests that must change nothing: replayed modal
submissions, people of another workspace (Slack Connect), changes to someone else's channel
mapping, subscription or action item, owners from elsewhere; and the bot's membership of a
channel it is subscribed in. All as signed HTTP requests on loopback."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.settings import Config
from bot.store import subscriptions
from bot.store.models import ActionItem, ChannelTeam, DigestSubscription, FormSubmission
from bot.store.session import make_engine, session_factory
from tests import slack_harness as sh
from tests.fakes.slack import FakeSlack

slack_server, slack, kpi = sh.slack_server, sh.slack, sh.kpi
PAY, OTHER = sh.PAY_CHANNEL, sh.OTHER_CHANNEL
CARD = json.dumps({"m": "cycle-time", "t": "payments", "p": "28d"})
PARTNER = "T0PARTNER"  # another organisation's workspace, sharing a channel


def _count(db_url: str, model: Any) -> int:
    eng = make_engine(db_url)
    with session_factory(eng)() as s:
        n = s.scalar(select(func.count()).select_from(model))
    eng.dispose()
    return int(n or 0)


def _items(db_url: str) -> list[ActionItem]:
    eng = make_engine(db_url)
    with session_factory(eng)() as s:
        items = list(s.scalars(select(ActionItem).order_by(ActionItem.id)))
    eng.dispose()
    return items


def _mapping(db_url: str, channel: str) -> tuple[int, str | None] | None:
    eng = make_engine(db_url)
    with session_factory(eng)() as s:
        row = s.get(ChannelTeam, ("slack", channel))
        out = (row.team_id, row.set_by) if row else None
    eng.dispose()
    return out


def _subs(db_url: str) -> set[tuple[str, str, str, str | None, str | None]]:
    eng = make_engine(db_url)
    with session_factory(eng)() as s:
        out = {
            (x.channel_id, x.team, x.kind, x.schedule, x.created_by)
            for x in subscriptions.active_subscriptions(s, include_broken=True)
        }
    eng.dispose()
    return out


def _text(kpi: sh.Harness, command: str, **kw: Any) -> str:
    _r, url = kpi.command(command, **kw)
    return kpi.answer(url).text_of()


# --- replayed modal submissions -------------------------------------------------------------


def test_a_replayed_submission_stores_nothing_new(kpi, db_url):
    first = kpi.submit()
    assert first.status_code == 200 and first.text == ""
    kpi.slack.wait_for("chat.postMessage")
    again = kpi.replay(first)  # the same signed bytes, within Slack's 5 minutes
    assert again.status_code == 200 and again.text == ""  # answered as the first was
    assert again.request.headers["X-Slack-Signature"] == first.request.headers["X-Slack-Signature"]
    assert _count(db_url, ActionItem) == 1
    assert _count(db_url, FormSubmission) == 1
    kpi.command("")  # a later request: anything the replay would have done is done by now
    time.sleep(0.2)
    assert len(kpi.slack.calls_to("chat.postMessage")) == 1  # one confirmation
    # another modal with the same words is another item
    assert kpi.submit().text == ""
    assert _count(db_url, ActionItem) == 2


def test_concurrent_deliveries_of_one_submission_store_one_item(kpi, db_url):
    body = kpi.submission_body(view_id="V0SAME", view_hash="1700000000.abc")
    headers = sh.signed_headers(body)  # one signed request, delivered four times at once
    ctype = "application/x-www-form-urlencoded"
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: kpi.post(body, ctype, headers=headers), range(4)))
    assert [(a.status_code, a.text) for a in answers] == [(200, "")] * 4
    assert _count(db_url, ActionItem) == 1
    kpi.slack.wait_for("chat.postMessage")
    kpi.command("")
    time.sleep(0.2)
    assert len(kpi.slack.calls_to("chat.postMessage")) == 1


def test_a_replayed_edit_is_applied_and_confirmed_once(kpi, db_url):
    kpi.submit()
    kpi.slack.wait_for("chat.postMessage")
    item = _items(db_url)[0]
    meta = {"channel": PAY, "item": item.id}
    edit = kpi.submit(opportunity="Reviews wait", user="U0BOB", metadata=meta)
    assert edit.text == ""
    kpi.slack.wait_for("chat.postMessage", 2)
    assert kpi.replay(edit).status_code == 200
    kpi.command("")
    time.sleep(0.2)
    assert len(kpi.slack.calls_to("chat.postMessage")) == 2
    assert _items(db_url)[0].opportunity == "Reviews wait"


# --- another organisation's workspace (Slack Connect) ----------------------------------------


def test_people_of_another_workspace_are_refused_and_nothing_changes(kpi, db_url):
    for command in ("subscribe weekly", "team set mobile", "unsubscribe", "ct", "action add"):
        r, url = kpi.command(command, user="U0GUEST", workspace=PARTNER)
        assert r.status_code == 200
        assert "another organisation" in str(r.json()), command  # in the ack, ephemeral
        assert r.json()["response_type"] == "ephemeral"
    r = kpi.submit(user="U0GUEST", workspace=PARTNER)
    assert "another organisation" in r.json()["errors"]["opportunity"]
    _r, url = kpi.click("share_card", CARD, user="U0GUEST", workspace=PARTNER)
    assert "another organisation" in kpi.answer(url).text_of()
    assert [_count(db_url, m) for m in (ActionItem, ChannelTeam, DigestSubscription)] == [0, 0, 0]
    assert not kpi.slack.calls_to("chat.postMessage") and not kpi.slack.calls_to("views.open")


def test_a_guest_is_told_apart_by_slacks_record_of_them(kpi, db_url):
    # a payload that names the channel's host workspace, for a person of another one
    kpi.slack.add_user("U0GUEST", team=PARTNER)
    said = _text(kpi, "subscribe weekly", user="U0GUEST")
    assert "another organisation" in said
    assert _count(db_url, DigestSubscription) == 0


def test_another_workspaces_person_cannot_change_an_item(kpi, db_url):
    kpi.submit()
    kpi.slack.wait_for("chat.postMessage")
    item = _items(db_url)[0]
    kpi.slack.add_user("U0GUESTADMIN", admin=True, team=PARTNER)
    _r, url = kpi.click("item_done", f"{item.id}|open", user="U0GUESTADMIN", workspace=PARTNER)
    assert "another organisation" in kpi.answer(url).text_of()
    assert _items(db_url)[0].completed_on is None


def test_app_home_is_not_shown_to_another_workspaces_person(kpi):
    kpi.slack.add_user("U0GUEST", team=PARTNER)
    r = kpi.event({"type": "app_home_opened", "user": "U0GUEST", "channel": "D0", "tab": "home"})
    assert r.status_code == 200
    kpi.event({"type": "app_home_opened", "user": "U0ALICE", "channel": "D1", "tab": "home"})
    published = kpi.slack.wait_for("views.publish")
    time.sleep(0.2)
    assert [c.args["user_id"] for c in kpi.slack.calls_to("views.publish")] == ["U0ALICE"]
    assert published


# --- channel mappings -------------------------------------------------------------------------


def test_only_the_mapper_an_admin_or_a_lead_may_remap_a_channel(kpi, db_url):
    assert "now belongs to *mobile*" in _text(kpi, "team set mobile", channel=OTHER)
    mapped = _mapping(db_url, OTHER)
    assert mapped is not None and mapped[1] == "U0ALICE"
    refused = _text(kpi, "team set payments", channel=OTHER, user="U0MALLORY")
    assert "not allowed to remap" in refused and "<@U0ALICE>" in refused
    assert _mapping(db_url, OTHER) == mapped
    # naming the team it already has changes nothing, so anyone may
    assert "already belongs to *mobile*" in _text(
        kpi, "team set mobile", channel=OTHER, user="U0MALLORY"
    )
    assert _mapping(db_url, OTHER) == mapped
    assert "now belongs to *payments*" in _text(kpi, "team set payments", channel=OTHER)
    kpi.slack.add_user("U0ADMIN", admin=True)
    assert "now belongs to *mobile*" in _text(kpi, "team set mobile", channel=OTHER, user="U0ADMIN")
    assert _mapping(db_url, OTHER) == (mapped[0], "U0ADMIN")


def test_a_failed_admin_lookup_grants_no_remap(kpi, db_url):
    _text(kpi, "team set mobile", channel=OTHER)
    kpi.slack.server_error("users.info", times=5)
    assert "not allowed" in _text(kpi, "team set payments", channel=OTHER, user="U0EVE")


# --- subscriptions --------------------------------------------------------------------------


def test_only_the_subscriber_an_admin_or_a_lead_may_stop_or_retime_a_digest(kpi, db_url):
    assert "will now receive" in _text(kpi, "subscribe weekly")
    before = _subs(db_url)
    assert before == {(PAY, "payments", "weekly", None, "U0ALICE")}
    refused = _text(kpi, "unsubscribe weekly", user="U0MALLORY")
    assert "not allowed to change the weekly digest of payments" in refused
    assert "<@U0ALICE>" in refused
    assert "not allowed" in _text(kpi, "unsubscribe", user="U0MALLORY")
    assert "not allowed" in _text(kpi, "subscribe weekly at wed 07:30", user="U0MALLORY")
    assert _subs(db_url) == before
    # asking for what already exists changes nothing, so anyone may
    assert "already receives" in _text(kpi, "subscribe weekly", user="U0MALLORY")
    # the subscriber may re-time and stop it; then anyone may subscribe again, and owns it
    assert "every Wed at 07:30" in _text(kpi, "subscribe weekly at wed 07:30")
    assert "Stopped the weekly digest" in _text(kpi, "unsubscribe weekly")
    assert "will now receive" in _text(kpi, "subscribe weekly", user="U0MALLORY")
    assert _subs(db_url) == {(PAY, "payments", "weekly", "wed 07:30", "U0MALLORY")}
    kpi.slack.add_user("U0ADMIN", admin=True)
    assert "Stopped the weekly digest" in _text(kpi, "unsubscribe", user="U0ADMIN")
    assert _subs(db_url) == set()


# --- action-item owners -----------------------------------------------------------------------


def test_an_owner_from_another_workspace_is_refused_inline(kpi, db_url):
    kpi.slack.add_user("U0GUEST", team=PARTNER)
    r = kpi.submit(owner="U0GUEST")
    assert r.status_code == 200 and r.json()["response_action"] == "errors"
    assert list(r.json()["errors"]) == ["owner"]
    assert "from this workspace" in r.json()["errors"]["owner"]
    kpi.slack.server_error("users.info", times=5)  # an owner who can't be looked up
    assert "owner" in kpi.submit(owner="U0UNKNOWN").json()["errors"]
    assert _count(db_url, ActionItem) == 0
    kpi.slack.clear_faults()
    assert kpi.submit(owner="U0BOB").text == ""
    assert _count(db_url, ActionItem) == 1


# --- leads from kpibot.yml ------------------------------------------------------------------


@pytest.fixture
def led(db_url: str, slack: FakeSlack, tmp_path: Any) -> Iterator[sh.Harness]:
    """The harness with U0PAYLEAD leading payments and U0MOBLEAD leading mobile."""
    pay, mob = sh.TEAMS
    teams = (
        dataclasses.replace(pay, leads=("U0PAYLEAD",)),
        dataclasses.replace(mob, leads=("U0MOBLEAD",)),
    )
    yield from sh.make_harness(db_url, slack, tmp_path, Config(teams))


def test_leads_may_change_their_teams_items_subscriptions_and_channels(led, db_url):
    led.submit()
    led.slack.wait_for("chat.postMessage")
    item = _items(db_url)[0]
    _r, url = led.click("item_done", f"{item.id}|open", user="U0MOBLEAD")
    assert "not allowed" in led.answer(url).text_of()
    _r, url = led.click("item_done", f"{item.id}|open", user="U0PAYLEAD")
    assert "No open action items" in led.answer(url).text_of()
    assert _items(db_url)[0].completed_on is not None

    _text(led, "subscribe weekly")
    assert "not allowed" in _text(led, "unsubscribe weekly", user="U0MOBLEAD")
    assert "Stopped" in _text(led, "unsubscribe weekly", user="U0PAYLEAD")

    _text(led, "team set payments", channel=OTHER)
    assert "not allowed" in _text(led, "team set mobile", channel=OTHER, user="U0MOBLEAD")
    assert "now belongs to *mobile*" in _text(
        led, "team set mobile", channel=OTHER, user="U0PAYLEAD"
    )


# --- the bot's membership of subscribed channels --------------------------------------------


def test_subscribing_a_public_channel_joins_it(kpi, db_url):
    kpi.slack.add_channel(PAY, name="payments", member=False)
    assert "will now receive" in _text(kpi, "subscribe weekly")
    (join,) = kpi.slack.calls_to("conversations.join")
    assert join.args["channel"] == PAY
    assert kpi.slack.channels[PAY]["is_member"] is True
    assert len(_subs(db_url)) == 1
    # already a member: no second join
    assert "will now receive" in _text(kpi, "subscribe monthly")
    assert len(kpi.slack.calls_to("conversations.join")) == 1


def test_subscribing_a_private_channel_without_the_bot_asks_for_an_invite(kpi, db_url):
    kpi.slack.add_channel(OTHER, name="secret", member=False, private=True)
    said = _text(kpi, "subscribe weekly payments", channel=OTHER)
    assert "/invite @kpibot" in said and "Nothing was subscribed" in said
    assert _subs(db_url) == set()
    assert not kpi.slack.calls_to("conversations.join")
    # once invited, subscribing works
    kpi.slack.channels[OTHER]["is_member"] = True
    assert "will now receive" in _text(kpi, "subscribe weekly payments", channel=OTHER)
    assert len(_subs(db_url)) == 1


def test_an_archived_channel_or_a_failed_check_stores_nothing(kpi, db_url):
    kpi.slack.add_channel(OTHER, name="old", member=False, archived=True)
    assert "archived" in _text(kpi, "subscribe weekly payments", channel=OTHER)
    kpi.slack.add_channel(PAY, name="payments", member=False)
    kpi.slack.slack_error("conversations.info", "internal_error")
    assert "couldn't check" in _text(kpi, "subscribe weekly")
    assert _subs(db_url) == set()
