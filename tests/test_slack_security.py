"""Request verification through Bolt: forged, missing and stale signatures get 401, change
nothing, post nothing, and no secret reaches the logs. Socket-Mode-shaped payloads reach the
same listeners."""

from __future__ import annotations

import json
import logging
import time

from slack_bolt import BoltRequest
from sqlalchemy import func, select

from bot.store.models import ActionItem, ChannelTeam, DigestSubscription
from bot.store.session import make_engine, session_factory
from tests import slack_harness as sh
from tests.fakes.slack import BOT_TOKEN

slack_server, slack, kpi = sh.slack_server, sh.slack, sh.kpi


def _rows(db_url):
    eng = make_engine(db_url)
    with session_factory(eng)() as s:
        out = [
            s.scalar(select(func.count()).select_from(m))
            for m in (ActionItem, ChannelTeam, DigestSubscription)
        ]
    eng.dispose()
    return out


def test_forged_missing_and_stale_signatures_are_refused(kpi, db_url, caplog):
    caplog.set_level(logging.DEBUG)
    body = kpi.command_body(
        "subscribe weekly", "U0EVE", sh.PAY_CHANNEL, kpi.slack.response_url(), "trigger-x"
    )
    ctype = "application/x-www-form-urlencoded"
    now = int(time.time())
    attempts = {
        "forged": sh.signed_headers(body, secret="not-the-secret"),
        "missing": {},
        "stale": sh.signed_headers(body, ts=now - 6 * 60),
        "future": sh.signed_headers(body, ts=now + 6 * 60),
        "tampered": sh.signed_headers(body.replace("U0EVE", "U0BOB")),
    }
    for name, headers in attempts.items():
        r = kpi.post(body, ctype, headers=headers)
        assert r.status_code == 401, name
    submission = json.dumps({"type": "view_submission", "view": {"callback_id": "action_item"}})
    r = kpi.post("payload=" + submission, ctype, headers=sh.signed_headers("x", secret="bad"))
    assert r.status_code == 401
    assert _rows(db_url) == [0, 0, 0]
    time.sleep(0.2)  # anything a listener would have done after an ack
    assert [c.method for c in kpi.slack.calls if c.method != "auth.test"] == []
    logged = caplog.text
    assert sh.SECRET not in logged and BOT_TOKEN not in logged
    # the same request, properly signed, works
    assert kpi.post(body, ctype).status_code == 200
    kpi.slack.wait_for("response_url")
    assert _rows(db_url) == [0, 0, 1]


def test_health_check_and_unknown_paths(kpi):
    r = kpi.http.get(kpi.server.url + "/healthz")
    assert r.status_code == 200 and r.json()["ok"] is True
    assert kpi.http.get(kpi.server.url + "/slack/events").status_code == 405
    assert kpi.http.post(kpi.server.url + "/other").status_code == 404


def _socket(kpi, body):
    """Dispatch as the Socket Mode adapter does: a parsed body, no signature."""
    return kpi.app.bolt.dispatch(BoltRequest(body=body, mode="socket_mode"))


def test_socket_mode_payloads_reach_the_same_listeners(kpi, db_url):
    url = kpi.slack.response_url("socket1")
    resp = _socket(
        kpi,
        {
            "command": "/kpi",
            "text": "ct",
            "user_id": "U0ALICE",
            "channel_id": sh.PAY_CHANNEL,
            "team_id": "T0FAKE001",
            "response_url": url,
            "trigger_id": "trigger-s1",
        },
    )
    assert resp.status == 200
    assert "Cycle time · payments" in kpi.answer(url).text_of()
    resp = _socket(
        kpi,
        {
            "type": "block_actions",
            "team": {"id": "T0FAKE001"},
            "user": {"id": "U0ALICE"},
            "channel": {"id": sh.PAY_CHANNEL},
            "trigger_id": "trigger-s2",
            "response_url": kpi.slack.response_url("socket2"),
            "actions": [{"action_id": "log_action", "value": "payments|cycle-time"}],
        },
    )
    assert resp.status == 200
    assert kpi.slack.wait_for("views.open")[0].args["trigger_id"] == "trigger-s2"
    values = {
        "team": {"value": {"selected_option": {"value": "payments"}}},
        "kpi": {"value": {"selected_option": None}},
        "opportunity": {"value": {"value": "Too many hand-offs"}},
        "resolution": {"value": {"value": "Pair on reviews"}},
        "owner": {"value": {"selected_user": "U0ALICE"}},
        "due": {"value": {"selected_date": "2026-12-01"}},
    }
    resp = _socket(
        kpi,
        {
            "type": "view_submission",
            "team": {"id": "T0FAKE001"},
            "user": {"id": "U0ALICE"},
            "view": {
                "type": "modal",
                "callback_id": "action_item",
                "private_metadata": json.dumps({"channel": sh.PAY_CHANNEL, "item": None}),
                "state": {"values": values},
            },
        },
    )
    assert resp.status == 200
    assert _rows(db_url)[0] == 1
    resp = _socket(
        kpi,
        {
            "type": "event_callback",
            "team_id": "T0FAKE001",
            "event": {"type": "app_home_opened", "user": "U0ALICE", "tab": "home"},
        },
    )
    assert resp.status == 200
    assert "Too many hand-offs" in kpi.slack.wait_for("views.publish")[0].text_of()
