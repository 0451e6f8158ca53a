"""Buttons, the action-item modal (valid and every invalid field), permissions and App Home,
as signed interactive requests over HTTP on loopback."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from bot.store.models import ActionItem
from bot.store.session import make_engine, session_factory
from tests import slack_harness as sh

slack_server, slack, kpi = sh.slack_server, sh.slack, sh.kpi
PAY = sh.PAY_CHANNEL
CARD = json.dumps({"m": "cycle-time", "t": "payments", "p": "28d"})


def _items(db_url):
    eng = make_engine(db_url)
    with session_factory(eng)() as s:
        items = list(s.scalars(select(ActionItem).order_by(ActionItem.id)))
    eng.dispose()
    return items


def _count(db_url):
    eng = make_engine(db_url)
    with session_factory(eng)() as s:
        n = s.scalar(select(func.count()).select_from(ActionItem))
    eng.dispose()
    return n


# --- card buttons ---------------------------------------------------------------------------


def test_share_in_channel_posts_the_card_for_everyone(kpi):
    r, _url = kpi.click("share_card", CARD)
    assert r.status_code == 200
    post = kpi.slack.wait_for("chat.postMessage")[0]
    assert post.args["channel"] == PAY
    text = post.text_of()
    assert "Cycle time · payments" in text and "Shared by <@U0ALICE>" in text
    ids = [e["action_id"] for b in post.blocks if b["type"] == "actions" for e in b["elements"]]
    assert "share_card" not in ids


def test_share_when_not_in_channel_says_how_to_invite(kpi):
    kpi.slack.slack_error("chat.postMessage", "not_in_channel")
    _, url = kpi.click("share_card", CARD)
    assert "/invite @kpibot" in kpi.answer(url).text_of()


def test_share_retries_after_a_rate_limit(kpi):
    kpi.slack.rate_limit("chat.postMessage", retry_after=0)
    kpi.click("share_card", CARD)
    posts = kpi.slack.wait_for("chat.postMessage")  # answered calls; the 429 is a request only
    assert posts[-1].args["channel"] == PAY
    assert len(kpi.slack.requests_to("POST", r"/api/chat\.postMessage")) == 2


def test_how_is_this_computed_quotes_the_definition(kpi):
    _, url = kpi.click("how_computed", "first-review")
    ans = kpi.answer(url)
    assert ans.args["replace_original"] is False
    text = ans.text_of()
    assert "How First review time is computed" in text
    assert "ready for review to its first review by someone other than the author" in text
    assert "target < 4.0h" in text


def test_log_action_opens_the_prefilled_modal(kpi):
    kpi.click("log_action", "payments|pr-size")
    view = kpi.slack.wait_for("views.open")[0].view
    by_id = {b["block_id"]: b for b in view["blocks"] if "block_id" in b}
    assert by_id["team"]["element"]["initial_option"]["value"] == "payments"
    assert by_id["kpi"]["element"]["initial_option"]["value"] == "pr-size"
    assert "Baseline when logged: PR size" in kpi.slack.wait_for("views.update")[0].text_of()


def test_log_action_with_an_expired_trigger_says_so(kpi):
    kpi.slack.slack_error("views.open", "expired_trigger_id")
    _, url = kpi.click("log_action", "payments|")
    assert "Slack closed the form" in kpi.answer(url).text_of()


def test_show_chart_uploads_a_png_with_files_upload_v2(kpi):
    kpi.click("show_chart", CARD)
    done = kpi.slack.wait_for("files.completeUploadExternal")[0]
    assert done.args["channel_id"] == PAY
    assert "Cycle time · payments, last 8 periods" in done.args["initial_comment"]
    # cycle time: its trend chart and its phase chart, shared in one message
    assert [f["title"] for f in json.loads(done.args["files"])] == [
        "Cycle time · payments",
        "Cycle time by phase · payments",
    ]
    pngs = list(kpi.slack.uploads.values())
    assert len(pngs) == 2 and all(p.startswith(b"\x89PNG\r\n\x1a\n") for p in pngs)
    methods = [c.method for c in kpi.slack.calls if c.method.startswith(("files.", "upload"))]
    assert methods == [
        *["files.getUploadURLExternal"] * 2,
        *["upload"] * 2,
        "files.completeUploadExternal",
    ]


def test_show_chart_in_a_channel_without_the_bot(kpi):
    kpi.slack.slack_error("files.completeUploadExternal", "not_in_channel")
    _, url = kpi.click("show_chart", CARD)
    assert "/invite @kpibot" in kpi.answer(url).text_of()


def test_stale_button_value_gets_a_clear_message(kpi):
    _, url = kpi.click("share_card", "not json")
    assert "older message" in kpi.answer(url).text_of()


# --- the modal ------------------------------------------------------------------------------


def test_valid_submission_is_stored_with_baseline_and_confirmed(kpi, db_url):
    r = kpi.submit()
    assert r.status_code == 200 and r.text == ""
    (item,) = _items(db_url)
    assert (item.opportunity, item.owner, item.created_by, item.kpi) == (
        "PRs wait a day for review",
        "U0BOB",
        "U0ALICE",
        "cycle-time",
    )
    assert item.baseline_value is not None and item.baseline_n and item.channel_id == PAY
    note = kpi.slack.wait_for("chat.postMessage")[0]
    assert note.args["channel"] == PAY and "logged an action item for *payments*" in note.text_of()


def test_confirmation_falls_back_to_a_dm_when_the_channel_refuses(kpi):
    kpi.slack.slack_error("chat.postMessage", "channel_not_found")
    kpi.submit()
    posts = kpi.slack.wait_for("chat.postMessage")  # the refused post is a request only
    assert posts[-1].args["channel"] == "U0ALICE"
    assert len(kpi.slack.requests_to("POST", r"/api/chat\.postMessage")) == 2


def _errors(r):
    assert r.status_code == 200
    body = r.json()
    assert body["response_action"] == "errors"
    return body["errors"]


def test_each_invalid_field_is_reported_inline_and_nothing_is_stored(kpi, db_url):
    cases = [
        ({"team": None}, "team"),
        ({"opportunity": "  "}, "opportunity"),
        ({"resolution": ""}, "resolution"),
        ({"owner": None}, "owner"),
        ({"due": None}, "due"),
        ({"due": "2026-11-01"}, "due"),
        ({"opportunity": "x" * 501}, "opportunity"),
        ({"resolution": "y" * 1001}, "resolution"),
        ({"kpi": "speed"}, "kpi"),
        ({"team": "nope"}, "team"),
    ]
    for change, block in cases:
        errors = _errors(kpi.submit(**change))
        assert list(errors) == [block], (change, errors)
    assert "in the past" in _errors(kpi.submit(due="2026-11-19"))["due"]
    assert "under 500" in _errors(kpi.submit(opportunity="x" * 501))["opportunity"]
    assert _count(db_url) == 0
    assert not kpi.slack.calls_to("chat.postMessage")


def test_today_in_the_teams_zone_is_a_valid_due_date(kpi, db_url):
    assert kpi.submit(due="2026-11-20").text == ""
    assert _count(db_url) == 1


# --- action list buttons and permissions ----------------------------------------------------


def _one_item(kpi, db_url, **kw):
    kpi.submit(**kw)
    kpi.slack.wait_for("chat.postMessage")
    return _items(db_url)[-1]


def test_mark_done_then_reopen_redraws_the_list(kpi, db_url):
    item = _one_item(kpi, db_url)
    _, url = kpi.click("item_done", f"{item.id}|open", user="U0BOB")
    ans = kpi.answer(url)
    assert ans.args["replace_original"] is True and "No open action items" in ans.text_of()
    assert str(_items(db_url)[0].completed_on) == "2026-11-20"
    _, url = kpi.click("item_reopen", f"{item.id}|all", user="U0ALICE")
    assert "All action items" in kpi.answer(url).text_of()
    assert _items(db_url)[0].completed_on is None


def test_others_may_not_change_an_item_but_admins_may(kpi, db_url):
    item = _one_item(kpi, db_url)
    for action in ("item_done", "item_edit", "item_reopen"):
        _, url = kpi.click(action, f"{item.id}|open", user="U0MALLORY")
        ans = kpi.answer(url)
        assert "not allowed" in ans.text_of() and ans.args["replace_original"] is False
    assert _items(db_url)[0].completed_on is None
    assert not kpi.slack.calls_to("views.open")
    kpi.slack.add_user("U0ADMIN", admin=True)
    _, url = kpi.click("item_done", f"{item.id}|open", user="U0ADMIN")
    assert "No open action items" in kpi.answer(url).text_of()
    assert _items(db_url)[0].completed_on is not None


def test_a_failed_admin_lookup_grants_nothing(kpi, db_url):
    item = _one_item(kpi, db_url)
    kpi.slack.server_error("users.info", times=5)
    _, url = kpi.click("item_done", f"{item.id}|open", user="U0EVE")
    assert "not allowed" in kpi.answer(url).text_of()
    assert _items(db_url)[0].completed_on is None


def test_edit_opens_the_same_modal_prefilled_and_saves(kpi, db_url):
    item = _one_item(kpi, db_url)
    kpi.click("item_edit", f"{item.id}|open", user="U0BOB")
    view = kpi.slack.wait_for("views.open")[0].view
    by_id = {b["block_id"]: b for b in view["blocks"] if "block_id" in b}
    assert by_id["opportunity"]["element"]["initial_value"] == "PRs wait a day for review"
    assert by_id["owner"]["element"]["initial_user"] == "U0BOB"
    assert by_id["due"]["element"]["initial_date"] == "2026-12-15"
    meta = json.loads(view["private_metadata"])
    assert meta["item"] == item.id
    r = kpi.submit(opportunity="Reviews wait", user="U0BOB", metadata=meta)
    assert r.text == ""
    (saved,) = _items(db_url)
    assert saved.opportunity == "Reviews wait" and saved.created_by == "U0ALICE"
    assert saved.baseline_value == item.baseline_value
    assert "updated an action item" in kpi.slack.wait_for("chat.postMessage", 2)[-1].text_of()
    # someone else submitting an edit (a forged metadata) is refused inline
    errors = _errors(kpi.submit(opportunity="Hijacked", user="U0MALLORY", metadata=meta))
    assert "not allowed" in errors["opportunity"]
    assert _items(db_url)[0].opportunity == "Reviews wait"


# --- App Home -------------------------------------------------------------------------------


def test_app_home_shows_health_open_items_and_digests(kpi, db_url):
    item = _one_item(kpi, db_url, owner="U0ALICE")
    kpi.command("subscribe weekly")
    kpi.slack.wait_for("response_url")
    r = kpi.event(
        {"type": "app_home_opened", "user": "U0ALICE", "channel": "D0HOME", "tab": "home"}
    )
    assert r.status_code == 200
    pub = kpi.slack.wait_for("views.publish")[0]
    assert pub.args["user_id"] == "U0ALICE" and pub.view["type"] == "home"
    text = pub.text_of()
    assert "Your teams' health" in text and "*payments*:" in text and "on target" in text
    assert "Your open action items (1)" in text and "PRs wait a day for review" in text
    assert f"*weekly* digest of *payments* in <#{PAY}>" in text
    # Mark done from the Home tab republishes it
    kpi.click("item_done", f"{item.id}|home", channel=None, container={"type": "view"})
    again = kpi.slack.wait_for("views.publish", 2)[-1]
    assert "Your open action items (0)" in again.text_of()


def test_app_home_for_a_newcomer_shows_every_team(kpi):
    kpi.event({"type": "app_home_opened", "user": "U0NEW", "channel": "D0", "tab": "home"})
    text = kpi.slack.wait_for("views.publish")[0].text_of()
    assert "Showing every team" in text and "*mobile*:" in text


def test_messages_tab_event_publishes_nothing(kpi):
    r = kpi.event({"type": "app_home_opened", "user": "U0X", "channel": "D0", "tab": "messages"})
    assert r.status_code == 200
    kpi.command("")  # a later request proves the event was processed first
    assert not kpi.slack.calls_to("views.publish")


def test_digest_details_button_answers_with_the_teams_health(kpi):
    _, url = kpi.click("digest_details", "payments|weekly|2026-W46")
    ans = kpi.answer(url)
    assert ans.args["replace_original"] is False
    assert "Health · payments" in ans.text_of() and "week 2026-W46" in ans.text_of()
    _, url = kpi.click("digest_details", "gone-team|weekly|2026-W46")
    assert "no longer configured" in kpi.answer(url).text_of()


def test_acks_do_not_wait_for_the_reports(kpi):
    import time
    from concurrent.futures import ThreadPoolExecutor

    def one(i):
        t0 = time.monotonic()
        r, url = kpi.command(("health", "dora", "weekly", "ct 90d")[i % 4])
        acked = time.monotonic()
        kpi.answer(url)
        return r.status_code, acked - t0, kpi.answer(url).at - t0

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    for status, ack, answered in results:
        assert status == 200 and ack < 2.5 and ack <= answered


def test_home_buttons_answer_by_direct_message(kpi, db_url):
    item = _one_item(kpi, db_url)
    kpi.click(
        "item_done", f"{item.id}|home", user="U0MALLORY", channel=None, container={"type": "view"}
    )
    kpi.click(
        "item_done", "999999|home", user="U0MALLORY", channel=None, container={"type": "view"}
    )
    dms = [c for c in kpi.slack.wait_for("chat.postMessage", 3) if c.args["channel"] == "U0MALLORY"]
    texts = " ".join(c.text_of() for c in dms)
    assert "not allowed" in texts and "no longer exists" in texts
    assert _items(db_url)[0].completed_on is None
