"""Fresh data: the freshness rule (METRICS.md, Freshness), source health in the store, "data
as of" on cards, ``/kpi status`` in Slack (signed, over HTTP) and Teams (schema-valid cards),
``kpibot status``, and webhook deliveries as a source's freshness."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from bot.chat import answers as ans
from bot.chat.grammar import Command, ParseError, parse
from bot.ingest.sources import SourceKey, source_groups, team_sources
from bot.metrics.freshness import data_as_of, is_failing, transition
from bot.metrics.periods import parse_period
from bot.renderers import adaptive, jsonout, text
from bot.renderers import blocks as kit
from bot.reports.cards import build_card
from bot.reports.freshness import (
    SourceNotice,
    build_status,
    oldest,
    source_state,
    team_data_as_of,
)
from bot.settings import Config, Settings, TeamConfig
from bot.store import source_health
from bot.store.models import SourceHealth
from bot.store.session import session_factory
from bot.store.teams import sync_teams
from bot.surfaces.http import HttpApp, Server
from bot.surfaces.webhooks import Webhooks, install, sign, sign_delivery
from bot.teams import answers as teams_answers
from tests import slack_harness as sh
from tests.test_teams import assert_valid_card

slack_server, slack, kpi = sh.slack_server, sh.slack, sh.kpi

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
SECRET_TOKEN = "ghp_secretvalue0123456789"


def gh(repo: str) -> SourceKey:
    return SourceKey("github", repo)


def hook(repo: str) -> SourceKey:
    return SourceKey("github-webhooks", repo)


# --- the rule ----------------------------------------------------------------------------------


def test_which_sources_each_kind_of_kpi_reads():
    team = TeamConfig(
        name="payments",
        repos=("Acme/API", "acme/web"),
        incidents={"source": "pagerduty", "services": ["P1"]},
        sprints={"source": "jira", "board": 12},
    )
    assert source_groups(team, ["repos"]) == [
        (gh("acme/api"), hook("acme/api")),
        (gh("acme/web"), hook("acme/web")),
    ]
    assert source_groups(team, ["incidents"]) == [(SourceKey("pagerduty", "payments"),)]
    assert source_groups(team, ["sprints"]) == [(SourceKey("jira", "payments"),)]
    # lead time reads pull requests and deployments: the same repositories, once
    assert source_groups(team, ["repos", "deployments"]) == source_groups(team, ["repos"])
    webhooks = TeamConfig(
        name="ops",
        repos=("acme/ops",),
        deployments={"source": "webhook"},
        incidents={"source": "webhook"},
    )
    assert source_groups(webhooks, ["deployments", "incidents"]) == [
        (SourceKey("deployments-webhook", "acme/ops"),),
        (SourceKey("incidents-webhook", "ops"),),
    ]
    milestones = TeamConfig(name="m", repos=("a/b",), sprints={"source": "github-milestones"})
    assert source_groups(milestones, ["sprints"]) == [(SourceKey("github-milestones", "m"),)]
    assert source_groups(TeamConfig(name="none"), ["sprints"]) == []
    assert team_sources(team) == [
        gh("acme/api"),
        hook("acme/api"),
        gh("acme/web"),
        hook("acme/web"),
        SourceKey("pagerduty", "payments"),
        SourceKey("jira", "payments"),
    ]


def test_data_as_of_is_the_oldest_source_each_as_fresh_as_its_latest_feed():
    groups = [(gh("a/x"), hook("a/x")), (gh("a/y"), hook("a/y"))]
    # a/x synced at 06:00 but a webhook arrived at 09:00: a/x is as of 09:00; a/y of 07:00
    times = {gh("a/x"): T0, hook("a/x"): T0 + 3 * HOUR, gh("a/y"): T0 + HOUR}
    assert data_as_of(groups, times) == T0 + HOUR
    # a source that never delivered: the card cannot say how fresh it is
    assert data_as_of(groups, {gh("a/x"): T0}) is None
    assert data_as_of([], times) is None
    # several cards: the oldest; a card without sources or data is left out
    assert oldest([T0 + HOUR, None, T0]) == T0
    assert oldest([None, None]) is None


def test_a_source_fails_after_three_failed_runs_or_three_intervals_without_new_data():
    def failing(key: SourceKey, failures: int, age: timedelta | None) -> bool:
        last = None if age is None else T0 - age
        return is_failing(key, failures=failures, last_success=last, now=T0, interval=HOUR)

    assert not failing(gh("a/x"), 2, HOUR)
    assert failing(gh("a/x"), 3, HOUR)
    assert failing(gh("a/x"), 3, None)  # never succeeded, failed three times
    assert not failing(gh("a/x"), 0, 3 * HOUR)  # exactly three intervals: not yet
    assert failing(gh("a/x"), 0, 3 * HOUR + timedelta(seconds=1))
    # a webhook is sent to kpibot: silence is no failure
    assert not failing(hook("a/x"), 0, timedelta(days=30))
    assert not is_failing(
        gh("a/x"), failures=0, last_success=T0 - 10 * HOUR, now=T0, interval=None
    )  # periodic sync off: age alone says nothing
    assert transition(False, True) == "failing"
    assert transition(True, False) == "recovered"
    assert transition(True, True) is None and transition(False, False) is None


# --- the store ---------------------------------------------------------------------------------


def test_runs_are_recorded_late_reports_never_move_back_and_secrets_never_stored(engine):
    f = session_factory(engine)
    error = f"GitHub rejected the token {SECRET_TOKEN} (401 Bad credentials): check GITHUB_TOKEN"
    source_health.record(f, "github", "Acme/API", T0, None)
    source_health.record(f, "github", "acme/api", T0 + HOUR, error, [SECRET_TOKEN, None, ""])
    source_health.record(f, "github", "acme/api", T0 + 2 * HOUR, error, [SECRET_TOKEN])
    # a late report of an older run: its data is newer than 06:00, but the later failures
    # still count
    source_health.record(f, "github", "acme/api", T0 + timedelta(minutes=30), None)
    with f() as s:
        row = s.get(SourceHealth, ("github", "acme/api"))
        assert row is not None
        assert row.failures == 2
        assert row.last_success_at == datetime(2026, 11, 20, 6, 30)
        assert row.last_error is not None
        assert SECRET_TOKEN not in row.last_error and "***" in row.last_error
        assert "GITHUB_TOKEN" in row.last_error
    source_health.record(f, "github", "acme/api", T0 + 3 * HOUR, None)
    with f() as s:
        row = s.get(SourceHealth, ("github", "acme/api"))
        assert row is not None and row.failures == 0
        assert row.last_success_at == datetime(2026, 11, 20, 9, 0)
        state = source_state(gh("acme/api"), row, T0 + 3 * HOUR)
        assert state.last_error is None and not state.failing


# --- data as of on cards -----------------------------------------------------------------------

TEAM = TeamConfig(
    name="payments",
    timezone="Europe/Berlin",
    repos=("acme/api", "acme/web"),
    incidents={"source": "pagerduty", "services": ["P1"]},
)


def test_cards_say_how_fresh_the_sources_they_read_are(engine):
    f = session_factory(engine)
    with f() as s:
        sync_teams(s, Config((TEAM,)))
        s.commit()
    now = T0 + 4 * HOUR
    period = parse_period("28d", TEAM.zone, now)
    with f() as s:
        from bot.metrics.engine import TeamEngine

        card = build_card(TeamEngine(s, TEAM), "cycle-time", period)
    assert card.data_as_of is None  # nothing synced yet
    assert "data as of: not synced yet" in text.card(card)
    source_health.record(f, "github", "acme/api", T0 + HOUR, None)
    source_health.record(f, "github", "acme/web", T0 + 2 * HOUR, None)
    source_health.record(f, "pagerduty", "payments", T0, None)
    with f() as s:
        from bot.metrics.engine import TeamEngine

        engine_ = TeamEngine(s, TEAM)
        cycle = build_card(engine_, "cycle-time", period)
        mttr = build_card(engine_, "mttr", period)
    # cycle time reads the repositories (oldest: acme/api at 07:00); time to restore reads
    # PagerDuty only (06:00)
    assert cycle.data_as_of == T0 + HOUR
    assert mttr.data_as_of == T0
    assert jsonout.card(cycle)["data_as_of"] == "2026-11-20T07:00:00Z"
    assert "data as of 2026-11-20 07:00 UTC" in text.card(cycle)
    assert "data as of 2026-11-20 06:00 UTC" in json.dumps(adaptive.metric_card(mttr))


# --- /kpi status ---------------------------------------------------------------------------


def _seed_health(url: str) -> None:
    from bot.store.session import make_engine

    eng = make_engine(url)
    try:
        f = session_factory(eng)
        source_health.record(f, "github", "acme/payments-api", sh.NOW - 5 * HOUR, None)
        for k in range(3):
            source_health.record(
                f,
                "github",
                "acme/payments-api",
                sh.NOW - (2 - k) * HOUR,
                "GitHub answered 401 <!channel> *now*: check GITHUB_TOKEN",
            )
    finally:
        eng.dispose()


def test_slack_status_lists_the_sources_through_the_signed_path(kpi, db_url):
    _seed_health(db_url)
    r, url = kpi.command("status")
    assert r.status_code == 200
    body = r.json() if r.text else kpi.answer(url).args
    blocks = json.dumps(body["blocks"], ensure_ascii=False)
    assert "Data sources · payments" in blocks
    assert "GitHub sync (acme/payments-api): failing" in blocks
    assert "3 failures in a row" in blocks
    assert "last success 2026-11-20 04:00 UTC" in blocks
    # the source's text is escaped: no mention, no bold
    assert "<!channel>" not in blocks and "&lt;!channel&gt;" in blocks
    assert "Data sources of payments: 1 failing" in body["text"]
    r, url = kpi.command("status mobile")
    body = r.json() if r.text else kpi.answer(url).args
    assert "GitHub sync (acme/mobile-app): ok" in json.dumps(body["blocks"])
    assert "last success never" in json.dumps(body["blocks"])


def test_status_grammar():
    assert parse("status", ["payments"]) == Command("status")
    assert parse("status Payments", ["payments"]) == Command("status", team="payments")
    with pytest.raises(ParseError):
        parse("status last-week", ["payments"])


def _status(engine):
    f = session_factory(engine)
    source_health.record(f, "github", "acme/api", T0, None)
    for k in range(3):
        source_health.record(
            f, "github", "acme/web", T0 + k * HOUR, "Bad **credentials** [x](http://e.vil)"
        )
    with f() as s:
        return build_status(s, TEAM, T0 + 3 * HOUR)


def test_teams_status_and_notice_cards_are_valid_adaptive_cards(engine):
    st = _status(engine)
    assert [s.label for s in st.sources] == [
        "GitHub sync (acme/api)",
        "GitHub sync (acme/web)",
        "PagerDuty (payments)",
    ]
    assert [s.failing for s in st.sources] == [False, True, False]
    card = teams_answers.card(ans.StatusAnswer(st))
    assert_valid_card(card)
    dumped = json.dumps(card, ensure_ascii=False)
    assert "Data sources · payments" in dumped
    assert r"Bad \\*\\*credentials\\*\\* \\[x\\](http://e.vil)" in dumped
    notice = SourceNotice("payments", "failing", st.sources[1])
    notice_card = adaptive.source_notice(notice)
    assert_valid_card(notice_card)
    assert "GitHub sync (acme/web) failed 3 times in a row" in json.dumps(notice_card)
    slack_msg = kit.source_notice(notice)
    assert "failed 3 times in a row" in slack_msg["text"]
    recovered = adaptive.source_notice(SourceNotice("payments", "recovered", st.sources[0]))
    assert_valid_card(recovered)
    assert "works again" in json.dumps(recovered)
    # the scheduler's Teams poster posts the same card as a message activity
    from bot.renderers.mrkdwn import GITHUB_COM
    from bot.scheduler.teams_poster import TeamsPoster
    from bot.teams.connector import Connector

    poster = TeamsPoster(
        Connector("app", "secret", "http://127.0.0.1:9/token"),
        service_url="http://127.0.0.1:9/",
        tenant=None,
        references=lambda conversation: None,
    )
    activity = poster.render_notice(notice, GITHUB_COM)
    assert activity["type"] == "message"
    (attachment,) = activity["attachments"]
    assert attachment["content"] == notice_card


def test_kpibot_status_text_json_and_a_bad_team(engine, db_url, tmp_path, monkeypatch, capsys):
    from bot.surfaces.cli import main

    _status(engine)
    cfg = tmp_path / "kpibot.yml"
    cfg.write_text(
        "teams:\n  - name: payments\n    repos: [acme/api, acme/web]\n"
        "    incidents: {source: pagerduty, services: [P1]}\n"
    )
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("KPIBOT_CONFIG", str(cfg))
    monkeypatch.setenv("GITHUB_TOKEN", SECRET_TOKEN)
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    # acme/web never synced: the team's data cannot be said to be fresh
    assert out.startswith("Data sources of payments (data as of: not synced yet)")
    assert "GitHub sync (acme/api): ok · last success 2026-11-20 06:00 UTC" in out
    assert "GitHub sync (acme/web): failing" in out and "last error: Bad" in out
    assert main(["status", "--team", "payments", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["team"] == "payments" and data["data_as_of"] is None
    web = data["sources"][1]
    assert web["status"] == "failing" and web["failures"] == 3
    assert web["last_success"] is None and web["last_error_at"] == "2026-11-20T08:00:00Z"
    assert main(["status", "--team", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown team 'nope'" in err


# --- webhooks ----------------------------------------------------------------------------------


def test_accepted_webhook_deliveries_are_a_sources_freshness(engine):
    team = TeamConfig(
        name="ops",
        repos=("acme/ops",),
        deployments={"source": "webhook"},
        incidents={"source": "webhook"},
    )
    config = Config((team,))
    f = session_factory(engine)
    with f() as s:
        sync_teams(s, config)
        s.commit()
    hooks = Webhooks(f, config, "whsec-fresh")
    clock = [T0]
    hooks.clock = lambda: clock[0]
    app = HttpApp()
    install(app, hooks)

    def deliver(path: str, payload: dict, secret: str = "whsec-fresh") -> int:
        body = json.dumps(payload).encode()
        stamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "X-Kpibot-Timestamp": str(stamp),
            "X-Kpibot-Signature-256": sign_delivery(secret, body, stamp),
        }
        return httpx.post(srv.url + path, content=body, headers=headers).status_code

    deploy = {
        "id": "d-1",
        "repository": "Acme/Ops",
        "environment": "production",
        "commit_sha": "9fceb02d0ae598e95dc970b74767f19372d61af8",
        "status": "success",
        "started_at": "2026-11-20T05:00:00Z",
        "finished_at": "2026-11-20T05:04:00Z",
    }
    incident = {"id": "INC-1", "team": "ops", "started_at": "2026-11-20T05:10:00Z"}
    with Server(app, host="127.0.0.1", port=0, threads=4) as srv:
        assert deliver("/webhooks/deployments", deploy) == 200
        assert deliver("/webhooks/incidents", incident) == 200
        clock[0] = T0 + HOUR
        assert deliver("/webhooks/deployments", deploy, secret="forged") == 401
        # a GitHub delivery for a repository of no team records nothing
        body = json.dumps({"zen": "hi", "repository": {"full_name": "x/y"}}).encode()
        r = httpx.post(
            srv.url + "/webhooks/github",
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-GitHub-Event": "pull_request",
                "X-Hub-Signature-256": sign("whsec-fresh", body),
            },
        )
        assert r.status_code == 200
    with f() as s:
        rows = {(r.source, r.scope): r for r in s.scalars(select(SourceHealth))}
    assert set(rows) == {("deployments-webhook", "acme/ops"), ("incidents-webhook", "ops")}
    assert rows["deployments-webhook", "acme/ops"].last_success_at == datetime(2026, 11, 20, 6)
    with f() as s:
        st = build_status(s, team, T0 + HOUR)
    assert st.data_as_of is None  # its pull requests come from a sync that never ran
    with f() as s:
        assert team_data_as_of(s, team, ["deployments", "incidents"]) == T0
    assert [(s.source, s.polled) for s in st.sources] == [
        ("github", True),
        ("deployments-webhook", False),
        ("incidents-webhook", False),
    ]
    assert "sent to kpibot (webhook)" in text.source_status(st)


def test_settings_secrets_are_what_is_taken_out():
    from bot.settings import secret_values

    s = Settings(github_token=SECRET_TOKEN, jira_api_token="jira-secret", webhook_secret=None)
    assert set(secret_values(s)) == {SECRET_TOKEN, "jira-secret"}
    assert source_health.redact(f"x {SECRET_TOKEN} y", secret_values(s)) == "x *** y"
