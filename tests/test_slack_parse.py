"""The /kpi grammar, as a pure function: every command, and "did you mean" suggestions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.chat.grammar import Command, ParseError, parse

TEAMS = ["payments", "mobile", "platform"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Command("help")),
        ("  help ", Command("help")),
        ("ct", Command("card", metric="cycle-time")),
        (
            "CT Payments LAST-WEEK",
            Command("card", metric="cycle-time", team="payments", period="last-week"),
        ),
        (
            "review-time 2026-W46 mobile",
            Command("card", metric="first-review", team="mobile", period="2026-w46"),
        ),
        ("cfr 2026-Q3", Command("card", metric="change-failure-rate", period="2026-q3")),
        ("dora payments last-month", Command("dora", team="payments", period="last-month")),
        ("health platform", Command("health", team="platform")),
        ("weekly", Command("digest", digest="weekly")),
        (
            "leading mobile 2026-W40",
            Command("digest", team="mobile", period="2026-w40", digest="weekly"),
        ),
        ("monthly", Command("digest", digest="monthly")),
        ("lagging 2026-10", Command("digest", period="2026-10", digest="monthly")),
        ("action add", Command("action_add")),
        ("action add mobile pr-size", Command("action_add", team="mobile", metric="pr-size")),
        ("actions", Command("actions")),
        ("actions payments all", Command("actions", team="payments", all=True)),
        ("subscribe weekly", Command("subscribe", digest="weekly")),
        ("subscribe lagging mobile", Command("subscribe", team="mobile", digest="monthly")),
        (
            "subscribe weekly Tuesday 7:05",
            Command("subscribe", digest="weekly", schedule="tue 07:05"),
        ),
        (
            "subscribe weekly payments at fri 16:30",
            Command("subscribe", team="payments", digest="weekly", schedule="fri 16:30"),
        ),
        (
            "subscribe monthly 15 08:30 mobile",
            Command("subscribe", team="mobile", digest="monthly", schedule="15 08:30"),
        ),
        ("unsubscribe", Command("unsubscribe")),
        ("unsubscribe monthly", Command("unsubscribe", digest="monthly")),
        ("unsubscribe mobile", Command("unsubscribe", team="mobile")),
        ("subscriptions", Command("subscriptions")),
        ("teams", Command("teams")),
        ("team set Mobile", Command("team_set", team="mobile")),
    ],
)
def test_grammar(text, expected):
    assert parse(text, TEAMS) == expected


@pytest.mark.parametrize(
    ("text", "in_message", "suggestion"),
    [
        ("cyle-time", "'cyle-time'", "/kpi cycle-time"),
        ("helth", "'helth'", "/kpi health"),
        ("ct paymnts", "'paymnts'", "/kpi cycle-time payments"),
        ("ct last-wek", "'last-wek'", "/kpi cycle-time last-week"),
        ("ct payments mobile", "at most one team", "/kpi cycle-time"),
        ("payments", "is a team", "/kpi health payments"),
        ("<@U123> ct", "a user mention", "/kpi help"),
        ("ct <#C1|general>", "a channel mention", "/kpi cycle-time"),
        ("action", "needs `add`", "/kpi action add"),
        ("action add nonsense", "'nonsense'", "/kpi action add"),
        ("actions mobile al", "'al'", "/kpi actions all"),
        ("subscribe", "say which digest", "/kpi subscribe weekly"),
        ("subscribe daily", "'daily'", "/kpi subscribe monthly"),
        ("subscribe weekly 10:00", "the day before the time", "/kpi subscribe weekly tue 10:00"),
        ("subscribe weekly xyz 10:00", "looks like 'mon 09:00'", "/kpi subscribe weekly tue 10:00"),
        ("subscribe weekly tue 25:00", "looks like 'mon 09:00'", "/kpi subscribe weekly tue 10:00"),
        ("subscribe monthly 31 09:00", "day 1-28", "/kpi subscribe monthly 15 08:30"),
        ("team", "needs `set <team>`", "/kpi teams"),
        ("team set", "exactly one team", "/kpi team set payments"),
        ("team set mobil", "unknown team 'mobil'", "/kpi team set mobile"),
        ("teams extra", "no more words", "/kpi teams"),
        ("x" * 500, "xxxxxxx…", "/kpi help"),
    ],
)
def test_mistakes_explain_and_suggest(text, in_message, suggestion):
    with pytest.raises(ParseError) as exc:
        parse(text, TEAMS)
    assert in_message in str(exc.value)
    assert suggestion in exc.value.suggestions


def test_echoed_words_are_short_and_markup_free():
    with pytest.raises(ParseError) as exc:
        parse("<script>&" + "y" * 100, TEAMS)
    msg = str(exc.value)
    assert "<script>" not in msg and "&lt;script&gt;&amp;" in msg and "y" * 50 not in msg


@given(st.text(max_size=200))
def test_parse_never_fails_unexpectedly(text):
    try:
        cmd = parse(text, TEAMS)
    except ParseError as exc:
        assert str(exc) and exc.suggestions
    else:
        assert cmd.kind


@pytest.mark.parametrize("text", ["cycletime", "cycletme", "leadtim", "deplys"])
def test_each_suggested_command_is_offered_once(text):
    with pytest.raises(ParseError) as exc:
        parse(text, TEAMS)
    suggestions = exc.value.suggestions
    assert suggestions and len(suggestions) == len(set(suggestions)), suggestions
