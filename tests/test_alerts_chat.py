"""Threshold alerts from chat and kpibot.yml: ``/kpi alert on|off`` and ``/kpi alert preview``
as signed slash commands over HTTP on loopback (the real verification, the real permission
rule), the alert's *How is this computed?* button, the Teams card against the Adaptive Card
schema, and ``alerts:`` in kpibot.yml."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from bot.chat import answers as ans
from bot.chat.grammar import ParseError, parse
from bot.chat.permissions import Actor
from bot.chat.service import ChatService
from bot.metrics.engine import TeamEngine
from bot.metrics.registry import Kind, Target
from bot.renderers import adaptive
from bot.reports import alerts as alert_reports
from bot.settings import Config, parse_config
from bot.store import alerts as alerts_store
from bot.store.models import AlertSetting, AlertState
from bot.store.session import make_engine, session_factory
from bot.teams import alerts as teams_alerts
from bot.teams import answers as teams_answers
from bot.teams.answers import TeamsVoice
from tests import slack_harness as sh
from tests.fakes.slack import FakeSlack
from tests.scheduler_fakes import offline_posters
from tests.test_teams import assert_valid_card, card_text

slack_server, slack = sh.slack_server, sh.slack
PAY, OTHER = sh.PAY_CHANNEL, sh.OTHER_CHANNEL
LEAD = "U0PAYLEAD"


@pytest.fixture
def kpi(db_url: str, slack: FakeSlack, tmp_path: Any) -> Iterator[sh.Harness]:
    """The harness with U0PAYLEAD leading payments; payments alerts on cfr in kpibot.yml."""
    pay, mob = sh.TEAMS
    teams = (dataclasses.replace(pay, leads=(LEAD,), alerts={"change-failure-rate": True}), mob)
    yield from sh.make_harness(db_url, slack, tmp_path, Config(teams))


def _text(kpi: sh.Harness, cmd: str, **kw: Any) -> str:
    r, url = kpi.command(cmd, **kw)
    assert r.status_code == 200
    if r.text:
        body = r.json()
        return " ".join([body["text"], str(body["blocks"])])
    return kpi.answer(url).text_of()


def _settings(db_url: str) -> dict[tuple[int, str], bool]:
    eng = make_engine(db_url)
    try:
        with session_factory(eng)() as s:
            return {(r.team_id, r.kpi): r.enabled for r in s.scalars(select(AlertSetting))}
    finally:
        eng.dispose()


def test_only_admins_and_leads_switch_alerts_and_chat_wins_over_the_file(kpi, db_url):
    refused = _text(kpi, "alert on first-review")
    assert "not allowed" in refused and "lead of payments" in refused
    assert _settings(db_url) == {}
    on = _text(kpi, "alert on pickup", user=LEAD)
    assert "Alerts on *First review time* of *payments* are on" in on
    assert "over the last 7 days against the target < 4.0h" in on
    assert f"<#{PAY}>" in on and "`/kpi alert preview first-review`" in on
    assert list(_settings(db_url).values()) == [True]
    # what is already so changes nothing, for anyone
    assert "already on" in _text(kpi, "alert on first-review")
    assert "already on" in _text(kpi, "alert on cfr")  # kpibot.yml says so
    kpi.slack.add_user("U0ADMIN", admin=True)
    assert "are off" in _text(kpi, "alert off cfr", user="U0ADMIN")
    assert sorted(_settings(db_url).values()) == [False, True]
    # the other team's lead is no lead of payments
    assert "not allowed" in _text(kpi, "alert on cfr", user="U0ADMIN2")


def test_a_forged_request_changes_nothing(kpi, db_url):
    body = kpi.command_body("alert on cfr", LEAD, PAY, kpi.slack.response_url("x"), "t")
    r = kpi.post(
        body,
        "application/x-www-form-urlencoded",
        headers=sh.signed_headers(body, secret="not-the-secret"),
    )
    assert r.status_code == 401
    assert _settings(db_url) == {}


def test_switching_an_alert_on_again_starts_the_rule_afresh(db_url):
    eng = make_engine(db_url)
    try:
        f = session_factory(eng)
        with f() as s:
            from bot.store.teams import sync_teams

            tid = sync_teams(s, Config(sh.TEAMS))["payments"]
            now = datetime(2026, 11, 1, 8, 0)
            s.add(AlertState(team_id=tid, kpi="pr-size", status="off target", evaluated_at=now))
            alerts_store.set_enabled(s, tid, "pr-size", False, by=LEAD, now=now)
            s.commit()
            assert s.get(AlertState, (tid, "pr-size")) is not None  # off keeps it
            alerts_store.set_enabled(s, tid, "pr-size", True, by=LEAD, now=now)
            s.commit()
            assert s.get(AlertState, (tid, "pr-size")) is None
            assert alerts_store.enabled({"cfr": True}, alerts_store.chat_settings(s, tid)) == [
                "cfr",
                "pr-size",
            ]
    finally:
        eng.dispose()


def test_the_preview_says_how_often_and_when_with_the_same_count_as_the_rule(kpi, db_url):
    eng = make_engine(db_url)
    try:
        with session_factory(eng)() as s:
            team = sh.TEAMS[0]
            strict = alert_reports.preview(
                TeamEngine(s, team), "cycle-time", Target("<", 40 * 3600.0), sh.NOW
            )
            default = alert_reports.preview(
                TeamEngine(s, team), "cycle-time", team.target_for("cycle-time"), sh.NOW
            )
    finally:
        eng.dispose()
    said = _text(kpi, "alert preview ct < 40h")
    n = len(strict.sent)
    assert n > 0, "the seeded data crosses 40h"
    assert f"With the target < 1.7d, *Cycle time* of *payments* would have fired {n} time" in said
    for c in strict.sent:
        local = c.at.astimezone(team.zone)
        assert f"{local:%b} {local.day} ({c.kind})" in said
    assert "in the last 90 days" in said and "fewer than 5 in a window" in said
    said = _text(kpi, "alert preview cycle-time mobile")
    assert "would not have fired" in said and "*mobile*" in said
    said = _text(kpi, "alert preview ct")
    fired = len(default.sent)
    assert ("would not have fired" in said) if fired == 0 else (f"fired {fired} time" in said)
    # the preview stores nothing
    assert _settings(db_url) == {}


def test_alert_commands_that_are_not_understood_say_what_to_type(kpi):
    said = _text(kpi, "alert maybe cfr")
    assert "`alert` needs `on`, `off` or `preview`" in said and "/kpi alert on cfr" in said
    said = _text(kpi, "alert preview cfr 150%")
    assert "between 0% and 100%" in said and "/kpi alert preview change-failure-rate" in said
    said = _text(kpi, "alert on velocity")
    assert "I don't know the KPI 'velocity'" in said


def test_grammar():
    teams = ["payments", "mobile"]
    assert parse("alert on cfr", teams).kind == "alert_set"
    cmd = parse("alert off pickup Mobile", teams)
    assert (cmd.metric, cmd.team, cmd.enabled) == ("first-review", "mobile", False)
    cmd = parse("alert preview cfr <= 10% payments", teams)
    assert (cmd.kind, cmd.metric, cmd.target, cmd.team) == (
        "alert_preview",
        "change-failure-rate",
        "<= 10%",
        "payments",
    )
    with pytest.raises(ParseError):
        parse("alert on cfr 10%", teams)  # a target only previews
    with pytest.raises(ParseError):
        parse("alert on", teams)


ALERT = alert_reports.Alert(
    team="pay*ments_",
    kpi="first-review",
    name="First review time",
    kind=Kind.DURATION,
    crossing="off target",
    value=6.2 * 3600,
    n=14,
    target=Target("<", 4 * 3600.0),
    window_days=7,
    at=datetime(2026, 12, 3, 8, 0, tzinfo=UTC),
    timezone="Europe/Berlin",
    time_basis="business_hours",
)


def test_the_alert_in_slack_and_teams():
    slack_msg = offline_posters()["slack"].render_alert(ALERT)
    assert slack_msg["text"] == (
        "First review time of pay*ments_ is off target: 6.2h (n = 14) over the last 7 days, "
        "target &lt; 4.0h, business hours"
    )
    assert "Checked Dec 3 09:00 (Europe/Berlin), daily at 09:00" in str(slack_msg["blocks"])
    teams_msg = offline_posters()["teams"].render_alert(ALERT)
    card = teams_msg["attachments"][0]["content"]
    assert teams_msg["attachments"][0]["contentType"] == adaptive.CONTENT_TYPE
    assert_valid_card(card)
    text = card_text(card)
    assert r"pay\\*ments\\_" in text  # markdown in a team name is shown as typed
    assert "6.2h" in text and "< 4.0h" in text and "off target" in text
    how, off = card["actions"]
    assert how["verb"] == "how_computed" and how["data"] == {
        "m": "first-review",
        "t": "pay*ments_",
        "p": "7d",
    }
    assert off["verb"] == "alert_off" and off["data"] == how["data"]
    recovered = offline_posters()["teams"].render_alert(
        dataclasses.replace(ALERT, crossing="recovered")
    )
    assert_valid_card(recovered["attachments"][0]["content"])
    assert "recovered: back on target" in card_text(recovered["attachments"][0]["content"])


def test_the_preview_and_switch_answers_are_valid_teams_cards():
    for answer in (
        ans.Notice("With the target **< 4h**, First review time would have fired 2 times."),
        ans.Refused("You're not allowed to switch alerts of payments on."),
    ):
        assert_valid_card(teams_answers.card(answer))


def test_the_alerts_buttons_answer_the_definition_and_turn_it_off(kpi, db_url):
    msg = offline_posters()["slack"].render_alert(dataclasses.replace(ALERT, team="payments"))
    how, off = [e for b in msg["blocks"] if b["type"] == "actions" for e in b["elements"]]
    in_channel = {"type": "message", "message_ts": "1.2"}
    r, url = kpi.click(how["action_id"], how["value"], container=in_channel)
    assert r.status_code == 200
    assert "How First review time is computed" in kpi.answer(url).text_of()
    # Turn this alert off: the same permission rule as the command
    assert "already off" in _click(kpi, off, in_channel)
    _text(kpi, "alert on first-review", user=LEAD)
    assert "not allowed" in _click(kpi, off, in_channel)
    assert "are off" in _click(kpi, off, in_channel, user=LEAD)
    assert list(_settings(db_url).values()) == [False]


def _click(kpi: sh.Harness, button: dict[str, Any], container: dict[str, Any], **kw: Any) -> str:
    r, url = kpi.click(button["action_id"], button["value"], container=container, **kw)
    assert r.status_code == 200
    return kpi.answer(url).text_of()


def test_the_teams_button_turns_the_alert_off_for_leads_only(db_url):
    eng = make_engine(db_url)
    try:
        svc = ChatService(
            session_factory(eng),
            Config((dataclasses.replace(sh.TEAMS[0], leads=(LEAD,)),)),
            lambda: sh.NOW,
            TeamsVoice(),
        )
        data = adaptive.alert_data(dataclasses.replace(ALERT, team="payments"))
        on = svc.set_alert("payments", "first-review", True, Actor("teams", LEAD, None))
        assert "are on" in on.text
        refused = teams_alerts.alert_off(svc, Actor("teams", "29:someone", None), data)
        assert_valid_card(refused)
        assert "not allowed" in card_text(refused)
        done = teams_alerts.alert_off(svc, Actor("teams", LEAD, None), data)
        assert_valid_card(done)
        assert "are off" in card_text(done)
        stale = teams_alerts.alert_off(svc, Actor("teams", LEAD, None), {"x": 1})
        assert "older message" in card_text(stale)
        unknown = teams_alerts.alert_off(
            svc, Actor("teams", LEAD, None), {"m": "x", "t": "payments"}
        )
        assert "unknown metric" in card_text(unknown).lower()
    finally:
        eng.dispose()


YAML = """
defaults:
  alerts: {cfr: on}
teams:
  - name: payments
    repos: [acme/api]
    alerts: {cfr: off, pickup: on, pr-size: yes}
  - name: mobile
    repos: [acme/app]
"""


def test_alerts_in_kpibot_yml():
    config, problems = parse_config(YAML)
    assert problems == [] and config is not None
    assert dict(config.team("payments").alerts) == {
        "change-failure-rate": False,
        "first-review": True,
        "pr-size": True,
    }
    assert dict(config.team("mobile").alerts) == {"change-failure-rate": True}
    bad = YAML.replace("pr-size: yes", "velocity: on, lead-time: maybe")
    _, problems = parse_config(bad)
    assert any(":7: unknown metric 'velocity' in alerts of team 'payments'" in p for p in problems)
    assert any("alerts.lead-time of team 'payments' must be on or off" in p for p in problems)
