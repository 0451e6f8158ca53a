"""The crossing rule of threshold alerts (METRICS.md, Agreements and alerts), on its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.metrics import alerts as rule
from bot.metrics.registry import Target
from bot.metrics.values import MetricValue

DAY = timedelta(days=1)
T0 = datetime(2026, 10, 1, 7, 0, tzinfo=UTC)  # 09:00 in Berlin
UNDER_4H = Target("<", 4 * 3600.0)


def days(*statuses: str | None) -> list[tuple[datetime, str | None]]:
    return [(T0 + k * DAY, s) for k, s in enumerate(statuses)]


ON, OFF = rule.ON, rule.OFF


def sent(crossings: list[rule.Crossing]) -> list[tuple[int, str]]:
    return [((c.at - T0).days, c.kind) for c in crossings if c.sent]


def test_the_first_status_is_where_the_rule_starts_not_a_crossing():
    state, crossings = rule.replay(days(OFF, OFF, OFF))
    assert crossings == []
    assert state == rule.State(OFF, None)
    _, crossings = rule.replay(days(None, None, ON, ON))
    assert crossings == []


def test_on_to_off_sends_off_target_and_off_to_on_sends_recovered_once_each():
    state, crossings = rule.replay(days(ON, ON, OFF, OFF, OFF, *[OFF] * 7, ON, ON, ON))
    assert sent(crossings) == [(2, "off target"), (12, "recovered")]
    assert state.status == ON and state.crossed_at == T0 + 12 * DAY


def test_the_opposite_crossing_within_seven_days_is_applied_silently():
    # off on day 2, back on day 5 (3 days later: cool-down), off again day 8 (3 days after
    # the silent recovery: still cooling), back on day 20: sent
    statuses = [ON, ON, OFF, OFF, OFF, ON, ON, ON, *[OFF] * 12, ON]
    state, crossings = rule.replay(days(*statuses))
    assert [((c.at - T0).days, c.kind, c.sent) for c in crossings] == [
        (2, "off target", True),
        (5, "recovered", False),
        (8, "off target", False),
        (20, "recovered", True),
    ]
    assert state.status == ON


def test_the_cool_down_ends_after_seven_days():
    exactly = [ON, OFF, *[OFF] * 6, ON]  # off on day 1, back on day 8: 7 days later
    _, crossings = rule.replay(days(*exactly))
    assert sent(crossings) == [(1, "off target"), (8, "recovered")]
    almost = rule.replay([(T0, ON), (T0 + DAY, OFF), (T0 + 8 * DAY - timedelta(minutes=1), ON)])[1]
    assert [(c.kind, c.sent) for c in almost] == [("off target", True), ("recovered", False)]


def test_no_data_and_small_samples_keep_the_previous_status():
    # None is what an evaluation without data or with n < 5 observes
    state, crossings = rule.replay(days(ON, None, None, OFF, None, OFF))
    assert sent(crossings) == [(3, "off target")]
    assert state.status == OFF
    # a gap never makes a crossing by itself, whichever side it ends on
    _, crossings = rule.replay(days(OFF, None, None, None, OFF))
    assert crossings == []


@pytest.mark.parametrize(
    ("mv", "expected"),
    [
        (MetricValue(5, 3 * 3600.0), ON),
        (MetricValue(12, 5 * 3600.0), OFF),
        (MetricValue(4, 9 * 3600.0), None),  # n < 5: keeps the previous status
        (MetricValue(0, None), None),  # no data never alerts
        # deployment frequency's measured 0 (no deployments seen) is data, but n = 0 < 5
        (MetricValue(0, 0.0, measured=True), None),
    ],
)
def test_what_an_evaluation_observes(mv, expected):
    assert rule.observed(mv, UNDER_4H) == expected


def test_windows():
    assert rule.window_days("first-review") == rule.window_days("pr-size") == 7
    assert rule.window_days("change-failure-rate") == rule.window_days("cycle-time") == 28
