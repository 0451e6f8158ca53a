"""Business hours through TeamEngine: every affected KPI in both modes, computed by hand.

The team works in Berlin (CET = UTC+1 in November), mon-fri 09:00-17:00 local, with Berlin's
public holidays (none in the week). Week 2026-W45 runs Mon 2 Nov to Mon 9 Nov, local time.
Times below are UTC, as stored; local times in the comments.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.metrics.engine import TeamEngine
from bot.renderers import jsonout, text
from bot.reports.cards import build_card
from bot.reports.digests import build_monthly, build_weekly
from bot.settings import TeamConfig, WorkingHours
from bot.surfaces.cli import main
from tests.factories import T, deployment, incident, pr, setup_team
from tests.helpers import HOUR, contain, period, team_id

BERLIN = "Europe/Berlin"
HOURS = WorkingHours(days=(0, 1, 2, 3, 4), start=9 * 3600, end=17 * 3600, calendars=("DE-BE",))


def _team(session, working_hours: WorkingHours | None = HOURS) -> TeamConfig:
    team = setup_team(
        session,
        TeamConfig(
            name="payments", timezone=BERLIN, repos=("acme/api",), working_hours=working_hours
        ),
    )
    # A: created Mon 09:00 (first commit 08:00), first review Mon 16:00, merged Tue 10:00.
    #   calendar: coding 1 h, pickup 7 h, review 18 h, cycle 26 h
    #   business: coding 0 (before 09:00), pickup 7 h, review 1 h + 1 h = 2 h, cycle 9 h
    a = pr(
        session,
        first_commit=T("2026-11-02 07:00"),
        created=T("2026-11-02 08:00"),
        merged=T("2026-11-03 09:00"),
        reviews=[("bob", "APPROVED", T("2026-11-02 15:00"))],
    )
    # B: created Fri 16:00, first review Sat 11:00, merged Sun 13:00.
    #   calendar: coding 0, pickup 19 h, review 26 h, cycle 45 h
    #   business: pickup 1 h (Fri 16-17), review 0 (the weekend), cycle 1 h
    pr(
        session,
        created=T("2026-11-06 15:00"),
        merged=T("2026-11-08 12:00"),
        reviews=[("bob", "APPROVED", T("2026-11-07 10:00"))],
    )
    # C, merged without review: Wed 11:00 -> 15:00, 4 h both ways (all pickup)
    c = pr(session, created=T("2026-11-04 10:00"), merged=T("2026-11-04 14:00"))
    # A deployed Wed 19:00: deploy calendar 33 h, business Tue 10-17 (7 h) + Wed 8 h = 15 h
    contain(session, deployment(session, sha="a", finished=T("2026-11-04 18:00")), a)
    # C deployed Thu 09:30: deploy calendar 18.5 h, business Wed 15-17 + Thu 09:00-09:30 = 2.5 h
    contain(session, deployment(session, sha="c", finished=T("2026-11-05 08:30")), c)
    # an incident from Fri 17:00 to Sat 11:00: 18 h, calendar time in both modes
    incident(
        session,
        team_id(session),
        started=T("2026-11-06 16:00"),
        resolved=T("2026-11-07 10:00"),
    )
    session.commit()
    return team


def _values(engine: TeamEngine, metric: str) -> tuple:
    mv = engine.value(metric, period("2026-W45", BERLIN))
    return mv.n, mv.value, mv.breakdown


# (metric, calendar (n, p50 h, {phase: p50 h}), business (n, p50 h, {phase: p50 h}))
EXPECTED = [
    # cycle: calendar [4, 26, 45] -> 26 h; business [1, 4, 9] -> 4 h
    # phases: coding [1, 0, 0] / [0, 0, 0]; pickup [7, 19, 4] / [7, 1, 4]; review [18, 26, 0]
    # / [2, 0, 0]
    (
        "cycle-time",
        (3, 26, {"coding": 0, "pickup": 7, "review": 18}),
        (3, 4, {"coding": 0, "pickup": 4, "review": 0}),
    ),
    # first review, reviewed PRs only: calendar [7, 19] -> 13 h; business [7, 1] -> 4 h
    ("first-review", (2, 13, {}), (2, 4, {})),
    # lead: calendar A 26 + 33 = 59, C 4 + 18.5 = 22.5 -> 40.75 h; business A 9 + 15 = 24,
    # C 4 + 2.5 = 6.5 -> 15.25 h; deploy phase (33 + 18.5) / 2 and (15 + 2.5) / 2
    (
        "lead-time",
        (2, 40.75, {"coding": 0.5, "pickup": 5.5, "review": 9, "deploy": 25.75}),
        (2, 15.25, {"coding": 0, "pickup": 5.5, "review": 1, "deploy": 8.75}),
    ),
    # incident times stay calendar time
    ("mttr", (1, 18, {}), (1, 18, {})),
]


@pytest.mark.parametrize(("metric", "calendar", "business"), EXPECTED)
def test_each_affected_kpi_in_both_modes(session, metric, calendar, business):
    team = _team(session)
    for mode, engine in (
        (business, TeamEngine(session, team)),
        (calendar, TeamEngine(session, team, calendar=True)),
    ):
        n, value, breakdown = _values(engine, metric)
        assert n == mode[0]
        assert value == pytest.approx(mode[1] * HOUR)
        for phase, hours in mode[2].items():
            assert breakdown[phase] == pytest.approx(hours * HOUR), phase


def test_a_team_without_working_hours_counts_calendar_time(session):
    team = _team(session, working_hours=None)
    engine = TeamEngine(session, team)
    assert engine.clock is None
    for metric, calendar, _ in EXPECTED:
        n, value, _b = _values(engine, metric)
        assert (n, value) == (calendar[0], pytest.approx(calendar[1] * HOUR))
        assert engine.time_basis(metric) is None
    card = build_card(engine, "cycle-time", period("2026-W45", BERLIN))
    assert card.time_basis is None
    assert "time_basis" not in jsonout.card(card)
    assert "business hours" not in text.card(card)
    assert "calendar time" not in text.card(card)


def test_cards_and_json_say_business_hours(session):
    team = _team(session)
    engine = TeamEngine(session, team)
    w45 = period("2026-W45", BERLIN)
    card = build_card(engine, "cycle-time", w45)
    assert card.time_basis == "business_hours"
    assert card.value == pytest.approx(4 * HOUR)
    assert text.card(card).splitlines()[0].endswith(" · business hours")
    assert jsonout.card(card)["time_basis"] == "business_hours"
    # incident times stay calendar time, and say so for a team with working hours
    mttr = build_card(engine, "mttr", w45)
    assert jsonout.card(mttr)["time_basis"] == "calendar"
    assert text.card(mttr).splitlines()[0].endswith(" · calendar time")
    # calendar=True (kpibot report --calendar) counts and says calendar time
    cal = build_card(TeamEngine(session, team, calendar=True), "cycle-time", w45)
    assert cal.value == pytest.approx(26 * HOUR)
    assert jsonout.card(cal)["time_basis"] == "calendar"
    assert "business hours" not in text.card(cal)


def test_digests_mark_the_business_hours_kpis(session):
    team = _team(session)
    engine = TeamEngine(session, team)
    weekly = build_weekly(engine, period("2026-W45", BERLIN), T("2026-11-09 12:00"))
    lines = text.weekly(weekly).splitlines()
    marked = [line for line in lines if line.endswith("(business hours)")]
    assert len(marked) == 2
    assert "Cycle time" in marked[0] and "First review time" in marked[1]
    basis = {c["metric"]: c["time_basis"] for c in jsonout.weekly(weekly)["metrics"]}
    assert basis["cycle-time"] == "business_hours" and basis["pr-size"] == "calendar"
    monthly = build_monthly(engine, period("2026-11", BERLIN), T("2026-12-02 12:00"))
    out = text.monthly(monthly)
    lead = next(line for line in out.splitlines() if "Lead time" in line)
    mttr = next(line for line in out.splitlines() if "Time to restore" in line)
    assert lead.endswith("(business hours)") and "business hours" not in mttr


def test_kpibot_report_calendar(tmp_path: Path, db_url, monkeypatch, capsys):
    """``kpibot report`` counts business hours for the team; ``--calendar`` calendar time."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db_url)
    config = tmp_path / "kpibot.yml"
    config.write_text(
        "teams:\n  - name: payments\n    timezone: Europe/Berlin\n    repos: [acme/api]\n"
        '    working_hours: {days: mon-fri, hours: "09:00-17:00", holidays: DE-BE}\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("KPIBOT_CONFIG", str(config))
    assert main(["db", "upgrade"]) == 0
    from sqlalchemy.orm import Session

    from bot.store.session import make_engine

    eng = make_engine(db_url)
    with Session(eng) as session:
        _team(session)
    eng.dispose()
    capsys.readouterr()
    argv = ["report", "cycle-time", "--period", "2026-W45", "--now", "2026-12-01T00:00Z"]
    assert main([*argv, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["value"], out["time_basis"]) == (4 * 3600, "business_hours")
    assert main([*argv, "--format", "json", "--calendar"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["value"], out["time_basis"]) == (26 * 3600, "calendar")
    assert main(argv) == 0
    assert "business hours" in capsys.readouterr().out.splitlines()[0]


def test_block_kit_and_charts_say_business_hours(session):
    from bot.renderers import blocks as digest_blocks
    from bot.renderers.charts import phase_figure, trend_figure
    from bot.slack.blocks import card_blocks, card_summary

    team = _team(session)
    engine = TeamEngine(session, team)
    card = build_card(engine, "lead-time", period("2026-W45", BERLIN))
    context = card_blocks(card)[1]["elements"][0]["text"]
    assert context.endswith("team time zone Europe/Berlin · business hours")
    assert "(business hours)" in card_summary(card)
    assert "business hours" in trend_figure(card).axes[0].get_xlabel()
    assert "business hours" in phase_figure(card).axes[0].get_xlabel()
    weekly = build_weekly(engine, period("2026-W45", BERLIN), T("2026-11-09 12:00"))
    sections = [
        b["text"]["text"] for b in digest_blocks.weekly(weekly)["blocks"] if b["type"] == "section"
    ]
    assert sum("(business hours)" in s for s in sections) == 2


def test_adaptive_cards_say_business_hours(session):
    import json

    from bot.renderers import adaptive
    from bot.reports.cards import build_dora

    team = _team(session)
    engine = TeamEngine(session, team)
    week = period("2026-W45", BERLIN)
    card = json.dumps(
        adaptive.metric_card(build_card(engine, "cycle-time", week)), ensure_ascii=False
    )
    assert "team time zone Europe/Berlin \u00b7 business hours" in card
    dora = json.dumps(adaptive.dora(build_dora(engine, week)), ensure_ascii=False)
    assert dora.count("(business hours)") == 1  # lead time; the other keys count no working time


def test_prs_waiting_for_review_wait_in_business_hours(session):
    """The weekly digest's waiting list compares working time with the first-review target
    (default 4 h) for a team with working hours."""
    team = _team(session)
    # opened Fri 20 Nov 16:00 local, no review: at Mon 23 Nov 10:00 it has waited 66 h on the
    # calendar but 2 h of working time; at 13:00, 5 h
    pr(session, created=T("2026-11-20 15:00"), merged=None, title="waiting")
    session.commit()
    monday_10, monday_13 = T("2026-11-23 09:00"), T("2026-11-23 12:00")
    business = TeamEngine(session, team)
    calendar = TeamEngine(session, team, calendar=True)
    assert [w.title for w in calendar.waiting_for_review(monday_10)] == ["waiting"]
    assert business.waiting_for_review(monday_10) == []
    assert [w.title for w in business.waiting_for_review(monday_13)] == ["waiting"]


def test_how_is_this_computed_names_the_business_hours(engine):
    from bot.chat.service import ChatService
    from bot.chat.voice import Voice
    from bot.settings import Config
    from bot.slack.answers import payload
    from bot.store.session import session_factory

    config = Config(
        (
            TeamConfig("payments", timezone=BERLIN, repos=("acme/api",), working_hours=HOURS),
            TeamConfig("mobile", repos=("acme/app",)),
        )
    )
    service = ChatService(session_factory(engine), config, lambda: None, Voice())
    answer = service.definition("ct", "payments")
    assert answer.business_hours == "mon-fri 09:00-17:00 (Europe/Berlin), holidays DE-BE"
    body = payload(answer)["blocks"][0]["text"]["text"]
    assert "in *business hours*: only working time counts, mon-fri 09:00-17:00" in body
    # incident times stay calendar time; a team without working hours says nothing of them
    assert service.definition("mttr", "payments").business_hours is None
    assert service.definition("ct", "mobile").business_hours is None
    assert (
        "business hours"
        not in payload(service.definition("ct", "mobile"))["blocks"][0]["text"]["text"]
    )
