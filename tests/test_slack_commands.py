"""Every /kpi command of the grammar, as signed slash commands over HTTP on loopback."""

from __future__ import annotations

from tests import slack_harness as sh

slack, kpi = sh.slack, sh.kpi


def test_help_is_answered_in_the_ack(kpi):
    r, _ = kpi.command("")
    assert r.status_code == 200
    body = r.json()
    assert body["response_type"] == "ephemeral"
    text = str(body["blocks"])
    assert "cycle-time" in text and "`ct`" in text and "payments" in text
    assert "This channel's team: *payments*" in text


def test_metric_card_with_alias(kpi):
    r, url = kpi.command("ct last-month")
    assert r.status_code == 200 and r.text == ""
    ans = kpi.answer(url)
    assert ans.args["response_type"] == "ephemeral"
    text = ans.text_of()
    assert "Cycle time · payments" in text
    assert "p75 / p90" in text and "Target" in text and "Trend" in text
    assert "Last 8 periods" in text and "Phases (p50)" in text
    ids = [e["action_id"] for b in ans.blocks if b["type"] == "actions" for e in b["elements"]]
    assert ids == ["share_card", "how_computed", "log_action", "show_chart"]
