"""``agreements [team]`` and the agreement buttons through the chat-neutral core, rendered
for Slack (Block Kit) and Teams (Adaptive Cards, valid against the 1.5 schema); the Teams
handlers (service, actor, data) as the invoke registry calls them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.chat import answers as ans
from bot.chat.grammar import ParseError, parse
from bot.chat.permissions import Actor
from bot.chat.service import ChatService
from bot.renderers import adaptive
from bot.renderers import blocks as kit
from bot.reports.agreements import build_report
from bot.settings import Agreements, Config, TeamConfig, WorkingHours
from bot.slack import answers as slack_answers
from bot.slack.answers import SlackVoice
from bot.store.models import PullRequestExclusion
from bot.store.session import session_factory
from bot.teams import agreements as teams_agreements
from bot.teams.answers import TeamsVoice
from tests.factories import T, pr, setup_team
from tests.scheduler_fakes import offline_posters
from tests.test_teams import assert_valid_card, card_text

LEAD = "29:lead-aad-id"
TEAM = TeamConfig(
    name="payments",
    repos=("acme/api",),
    agreements=Agreements(first_review_within=4 * 3600, pr_size_under=400),
    working_hours=WorkingHours(),
    leads=(LEAD,),
)
NOW = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)  # Tuesday


def seed(session) -> dict[int, int]:
    setup_team(session, TEAM)
    a = pr(session, created=T("2026-11-02 08:00"), merged=None, number=1, title="**x** [a](b) <at>")
    b = pr(
        session, created=T("2026-11-03 09:00"), merged=None, number=2, additions=700, deletions=0
    )
    session.commit()
    return {1: a.id, 2: b.id}


def test_the_grammar_takes_agreements_and_a_team():
    assert parse("agreements", ["payments"]).kind == "agreements"
    assert parse("agreements payments", ["payments"]).team == "payments"
    with pytest.raises(ParseError):
        parse("agreements payments last-week", ["payments"])


def test_agreements_answer_for_slack_and_teams(engine, session):
    ids = seed(session)
    slack = ChatService(session_factory(engine), Config((TEAM,)), lambda: NOW, SlackVoice())
    answer = slack.dispatch(parse("agreements", ["payments"]), "agreements", "U1", None)
    assert isinstance(answer, ans.AgreementsAnswer)
    report = answer.report
    # business hours in UTC: PR 1 opened Monday 08:00, so Monday 09:00-17:00 (8 h) and
    # Tuesday 09:00-12:00 (3 h) = 11 working hours
    assert [(ln.number, ln.agreement, ln.measured) for ln in report.lines] == [
        (1, "first_review_within", 11 * 3600.0),
        (2, "pr_size_under", 700.0),
    ]
    payload = slack_answers.payload(answer)
    text = json.dumps(payload["blocks"])
    assert "first review within 4.0h (business hours)" in text
    assert "PRs under 400 lines" in text
    assert "waiting 11h (business hours)" in text
    assert "&lt;at&gt;" in text and "<at>" not in text
    card = adaptive.agreements(report)
    assert_valid_card(card)
    assert "\\\\*\\\\*x\\\\*\\\\* \\\\[a\\\\](b) \\\\<at\\\\>" in card_text(card)
    verbs = [
        a.get("verb") for el in card["body"] if el["type"] == "ActionSet" for a in el["actions"]
    ]
    assert verbs.count("agreement_snooze") == 2 and verbs.count("agreement_exclude") == 2
    # the nudge and the roll-up, as posted: Block Kit and the Teams activity
    posters = offline_posters()
    for kind in ("nudge", "rollup"):
        r = build_report(TEAM, kind, [], folded=["CFR is off target"])
        activity = posters["teams"].render_agreements(r, slack.links, {})
        assert_valid_card(activity["attachments"][0]["content"])
        assert posters["slack"].render_agreements(r, slack.links, {})["text"]
    assert ids


def test_teams_buttons_snooze_and_exclude_with_a_reason(engine, session):
    ids = seed(session)
    svc = ChatService(session_factory(engine), Config((TEAM,)), lambda: NOW, TeamsVoice())
    member = Actor("teams", "29:member", None)
    lead = Actor("teams", LEAD, None)
    data = {"t": "payments", "pr": ids[1]}
    # PR 1 has no breach row yet (no check ran): snoozing says so
    card = teams_agreements.on_snooze(svc, member, data)
    assert_valid_card(card)
    assert "no longer in breach" in card_text(card)
    from bot.reports.agreements import check_team

    check_team(session, TEAM, NOW.replace(tzinfo=None))
    session.commit()
    card = teams_agreements.on_snooze(svc, member, data)
    assert "Snoozed acme/api#1 for a day (until 2026-11-04 12:00 UTC)" in card_text(card)
    # exclusion: refused for a member, a dialog asking why for the lead, then recorded
    card = teams_agreements.on_exclude(svc, member, data)
    assert "Only a workspace admin or a lead of payments" in card_text(card)
    dialog = teams_agreements.on_exclude(svc, lead, data)
    assert_valid_card(dialog)
    assert [b["type"] for b in dialog["body"]][-1] == "Input.Text"
    assert dialog["actions"][0]["verb"] == "agreement_exclude"
    done = teams_agreements.on_exclude(svc, lead, {**data, "reason": "a spike"})
    assert "acme/api#1 is left out of payments's metrics" in card_text(done)
    again = teams_agreements.on_exclude(svc, lead, {**data, "reason": "twice"})
    assert "already left out" in card_text(again)
    session.expire_all()
    [row] = session.scalars(select(PullRequestExclusion)).all()
    assert (row.platform, row.excluded_by, row.reason) == ("teams", LEAD, "a spike")
    # an old or forged button: a clear problem, nothing changes
    bad = teams_agreements.on_snooze(svc, member, {"t": "payments", "pr": "1; drop"})
    assert "older message" in card_text(bad)
    # PR 1 is no longer in breach: excluded PRs never are
    answer = svc.dispatch(parse("agreements", ["payments"]), "agreements", "29:m", None)
    assert isinstance(answer, ans.AgreementsAnswer)
    assert [ln.number for ln in answer.report.lines] == [2]
    assert kit.AGREEMENT_SNOOZE == adaptive.AGREEMENT_SNOOZE
