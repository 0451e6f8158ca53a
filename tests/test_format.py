"""The display rules of ``bot.renderers.format``, with the examples a manager tripped over."""

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bot.metrics.registry import Kind, Target
from bot.renderers import blocks as digest_blocks
from bot.renderers import format as fmt
from bot.renderers import jsonout, text
from bot.reports.cards import MetricCard, PeriodInfo, SparkPoint
from bot.slack import blocks as slack_blocks

PERIOD = PeriodInfo(
    "28d",
    "last 28 days (2026-11-05 to 2026-12-03)",
    datetime(2026, 11, 5, tzinfo=UTC),
    datetime(2026, 12, 3, tzinfo=UTC),
    "UTC",
)


def card(**kw) -> MetricCard:
    base = dict(
        metric="review-coverage",
        name="Review coverage",
        team="payments",
        period=PERIOD,
        kind=Kind.RATIO,
        unit="fraction",
        lower_is_better=False,
        n=40,
        value=0.92,
        p50=None,  # a share, not a median
        p75=None,
        p90=None,
        target=Target(">", 0.95),
        status="off target",
        previous_n=30,
        previous_value=0.60,
        trend="better",
        change=0.32,
        band=None,
        edition=None,
        breakdown={"approved": 37, "not_approved": 3},
        sparkline=tuple(SparkPoint(f"P{i}", 0.5 + i / 20, 5) for i in range(8)),
        definition="Share of merged PRs approved before merge.",
    )
    base.update(kw)
    return MetricCard(**base)


PR_SIZE = dict(
    metric="pr-size",
    name="PR size",
    kind=Kind.LINES,
    unit="lines",
    lower_is_better=True,
    value=176.0,
    p50=176.0,
    p75=316.25,
    p90=486.4,
    target=Target("<", 400),
    status="on target",
    previous_value=136.0,
    trend="worse",
    change=0.294,
    breakdown={"over_400_share": 0.12162162162162163, "over_400": 9},
)


def everywhere(c: MetricCard) -> list[str]:
    """The card as terminal text, Block Kit (card and digest line) and its JSON."""
    return [
        text.card(c),
        json.dumps(slack_blocks.card_payload(c), ensure_ascii=False),
        digest_blocks.card_line(c),
    ]


def test_rate_kpi_trend_reads_in_points_everywhere():
    # coverage 60 % -> 92 %: "+53% vs previous" read as 53 points; it is 32 points
    c = card()
    for out in everywhere(c):
        assert "▲ 32 pp better" in out
        assert "53%" not in out
    assert jsonout.card(c)["change"] == 0.32
    assert jsonout.card(c)["change_unit"] == "points"


def test_arrow_is_the_direction_and_the_word_says_worse():
    # PR size rose 29 %: the arrow points up, the word says worse (it was "↓ worse")
    c = card(**PR_SIZE)
    for out in everywhere(c):
        assert "▲ 29% worse" in out
        assert "↓" not in out
    assert jsonout.card(c)["change_unit"] == "relative"
    # a fall that is better points down
    assert fmt.card_trend(replace(c, change=-0.2, trend="better")) == "▼ 20% better"


def test_no_minus_zero():
    assert fmt.trend(Kind.DURATION, "flat", -0.004) == "→ 0% flat"
    assert fmt.trend(Kind.RATIO, "flat", -0.001) == "→ 0 pp flat"
    assert fmt.percent(-0.0001) == "0%"
    assert fmt.duration(-0.01) == "0s"
    for out in everywhere(card(change=-0.002, trend="flat")):
        assert "-0%" not in out and "-0 pp" not in out and "→ 0 pp flat" in out


def test_a_flat_change_never_reads_as_big_as_a_real_one():
    # -9.96 % is flat (under 10 %): "▼ 10% flat" would contradict the rule
    assert fmt.trend(Kind.RATE, "flat", -0.0996) == "▼ 9.9% flat"
    assert fmt.trend(Kind.RATIO, "flat", 0.0499) == "▲ 4.9 pp flat"
    assert fmt.trend(Kind.RATE, "worse", -0.10) == "▼ 10% worse"
    assert fmt.trend(Kind.RATE, "flat", 0.094) == "▲ 9% flat"


def test_trend_edge_cases():
    assert fmt.trend(Kind.DURATION, "not enough data", None) == "not enough data"
    assert fmt.trend(Kind.DURATION, "not enough data", 0.5) == "▲ 50% · not enough data"
    # the previous value was 0: no relative change, the arrow still says which way
    assert fmt.trend(Kind.DURATION, "worse", None, lower_is_better=True) == "▲ from 0 · worse"
    assert fmt.trend(Kind.RATE, "worse", None, lower_is_better=False) == "▼ from 0 · worse"


def test_line_counts_are_whole_lines():
    # "174.5 lines": half a line is not a thing; half rounds up
    assert fmt.value(Kind.LINES, 174.5) == "175 lines"
    assert fmt.value(Kind.LINES, 1.0) == "1 line"
    assert fmt.value(Kind.LINES, 1234.4) == "1,234 lines"
    c = card(**{**PR_SIZE, "value": 174.5, "p50": 174.5})
    assert "175 lines (p75 316, p90 486) · n = 40" in text.card(c)
    assert "174.5" not in json.dumps(slack_blocks.card_payload(c))


def test_singular_and_plural():
    assert fmt.value(Kind.DAYS_PER_WEEK, 1.0) == "1 day/week"
    assert fmt.value(Kind.DAYS_PER_WEEK, 2.5) == "2.5 days/week"
    assert fmt.value(Kind.DAYS_PER_WEEK, 0.0) == "0 days/week"
    assert fmt.plural(1, "sprint") == "sprint" and fmt.plural(2, "sprint") == "sprints"


def test_one_unit_per_line():
    # "24h (p75 1.0d, p90 1.4d)" mixed hours and days
    day = 86400.0
    # (a median just under a day, p75 just over)
    assert fmt.spread(Kind.DURATION, 23.9 * 3600, day, 1.4 * day) == "24h (p75 24h, p90 34h)"
    assert fmt.spread(Kind.DURATION, day, day, 1.4 * day) == "1.0d (p75 1.0d, p90 1.4d)"
    # a later value that would need 100 of the headline's unit moves the line to its unit
    assert fmt.durations([45 * 60.0, 3600.0, 3 * day]) == ["0.8h", "1.0h", "72h"]
    assert fmt.durations([None, 3600.0]) == ["no data", "1.0h"]
    c = card(
        metric="cycle-time",
        name="Cycle time",
        kind=Kind.DURATION,
        unit="seconds",
        lower_is_better=True,
        value=23.9 * 3600,
        p50=23.9 * 3600,
        p75=day,
        p90=1.4 * day,
        target=Target("<", 72 * 3600.0),
        previous_value=20 * 3600.0,
        change=0.2,
        trend="worse",
        breakdown={"coding": 3600.0, "pickup": 90000.0, "review": 7200.0},
    )
    assert "24h (p75 24h, p90 34h)" in text.card(c)
    assert "coding 1.0h · pickup 25h · review 2.0h" in text.card(c)
    payload = json.dumps(slack_blocks.card_payload(c), ensure_ascii=False)
    assert "24h / 34h" in payload


def test_only_a_median_is_called_p50():
    # review coverage is a share of PRs, not a median
    coverage = json.dumps(slack_blocks.card_payload(card()), ensure_ascii=False)
    assert "*Value*\\n92%" in coverage and "p50" not in coverage
    size = json.dumps(slack_blocks.card_payload(card(**PR_SIZE)), ensure_ascii=False)
    assert "*Value (p50)*\\n176 lines" in size


def test_no_nested_parentheses():
    c = card()
    for out in everywhere(c):
        assert not _nested(out), out
    health = slack_blocks.health_payload(_health(c))
    assert not _nested(json.dumps(health, ensure_ascii=False))


def _health(c):
    from bot.reports.cards import Health

    return Health("payments", PERIOD, (c,))


def _nested(s: str) -> bool:
    depth = 0
    for ch in s:
        if ch == "(":
            depth += 1
            if depth > 1:
                return True
        elif ch == ")":
            depth = max(0, depth - 1)
    return False


def test_period_in_progress_says_so_far():
    p = replace(PERIOD, label="2026-12", description="December 2026 so far (Dec 1 – Dec 3)")
    p = replace(p, in_progress=True)
    c = card(period=p)
    for out in everywhere(c)[:2]:
        assert "December 2026 so far" in out
    assert fmt.period_label(p) == "2026-12 so far"


def test_json_numbers_rounded_at_the_source():
    c = card(
        metric="cycle-time",
        kind=Kind.DURATION,
        unit="seconds",
        value=73299.30000000002,
        p50=73299.30000000002,
        p75=80000.5,
        p90=90000.49,
        previous_value=60000.0,
        target=Target("<", 172800.0),
        change=0.22165500000000003,
        breakdown={"coding": 25398.5, "pickup": 12470.4, "review": 76777.0, "share": 1 / 3},
    )
    out = jsonout.card(c)
    assert out["value"] == 73299 and isinstance(out["value"], int)
    assert (out["p50"], out["p75"], out["p90"]) == (73299, 80001, 90000)
    assert out["target"]["value"] == 172800
    assert out["change"] == 0.2217
    assert out["breakdown"] == {"coding": 25399, "pickup": 12470, "review": 76777, "share": 0.3333}
    assert "73299.3" not in json.dumps(out)
    ratio = jsonout.card(card(value=0.8783783783783784, p50=0.8783783783783784))
    assert ratio["value"] == 0.8784


@pytest.mark.parametrize(
    "seconds,shown",
    [(45 * 60, "45m"), (6.2 * 3600, "6.2h"), (3.1 * 86400, "3.1d"), (30, "30s"), (None, "no data")],
)
def test_durations_keep_two_to_three_figures(seconds, shown):
    assert fmt.duration(seconds) == shown
