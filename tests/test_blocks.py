"""Block Kit builders respect Slack's limits at any data size."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from bot.metrics.engine import WaitingPR
from bot.metrics.registry import BY_ID, LEADING, Target
from bot.renderers import blocks
from bot.reports.cards import MetricCard, PeriodInfo, SparkPoint
from bot.reports.digests import ActionItemView, WeeklyDigest

PERIOD = PeriodInfo(
    "2026-W46",
    "week 2026-W46 (Nov 9 – Nov 15)",
    datetime(2026, 11, 9, tzinfo=UTC),
    datetime(2026, 11, 16, tzinfo=UTC),
    "UTC",
)


def card(metric: str, value: float | None = 3600.0, n: int = 12) -> MetricCard:
    spec = BY_ID[metric]
    return MetricCard(
        metric=metric,
        name=spec.name,
        team="payments",
        period=PERIOD,
        kind=spec.kind,
        unit=spec.unit,
        lower_is_better=spec.lower_is_better,
        n=n,
        value=value,
        p50=value,
        p75=value,
        p90=value,
        target=Target("<", 7200),
        status="on target" if n else "no data",
        previous_n=10,
        previous_value=4000.0,
        trend="better",
        change=-0.1,
        band=None,
        edition=None,
        breakdown={"coding": 1.0, "pickup": 2.0, "review": 3.0},
        sparkline=tuple(SparkPoint(str(i), float(i), 5) for i in range(8)),
        definition=spec.definition,
    )


def item(i: int, text: str = "x") -> ActionItemView:
    return ActionItemView(i, text, text, "U123", date(2026, 11, 1), None, None, None, None, True)


def test_section_text_is_truncated_with_more_link():
    b = blocks.section("a" * 5000, more_url="https://example.com/all")
    assert len(b["text"]["text"]) == blocks.MAX_SECTION_TEXT
    assert b["text"]["text"].endswith("<https://example.com/all|more>")
    short = blocks.section("hello")
    assert short["text"]["text"] == "hello"


def test_header_and_fields_limits():
    assert len(blocks.header("h" * 400)["text"]["text"]) == blocks.MAX_HEADER_TEXT
    f = blocks.fields([f"field {i}" for i in range(25)])
    assert len(f["fields"]) == blocks.MAX_FIELDS


def test_limit_blocks_keeps_a_note():
    many = [blocks.section(str(i)) for i in range(120)]
    out = blocks.limit_blocks(many, 50, more_url="https://example.com")
    assert len(out) == 50
    assert out[-1]["type"] == "context"
    assert "71 more items not shown" in out[-1]["elements"][0]["text"]
    assert blocks.limit_blocks(many[:10]) == many[:10]
    assert len(blocks.limit_blocks(many, blocks.MAX_VIEW_BLOCKS)) == 100


def test_weekly_digest_with_huge_data_stays_within_limits():
    waiting = tuple(
        WaitingPR(
            "acme/api",
            n,
            "t" * 300,
            f"https://github.com/acme/api/pull/{n}",
            datetime(2026, 11, 1) + timedelta(hours=n),
        )
        for n in range(10)
    )
    d = WeeklyDigest(
        "payments",
        PERIOD,
        tuple(card(m) for m in LEADING),
        ("review", 3.0),
        waiting,
        tuple(item(i, "long text <b> & more " * 20) for i in range(300)),
    )
    msg = blocks.weekly(d)
    assert msg["text"].startswith("Weekly leading indicators for payments")
    assert len(msg["blocks"]) <= blocks.MAX_MESSAGE_BLOCKS
    for b in msg["blocks"]:
        if b["type"] == "section":
            assert len(b["text"]["text"]) <= blocks.MAX_SECTION_TEXT
        if b["type"] == "header":
            assert len(b["text"]["text"]) <= blocks.MAX_HEADER_TEXT
    text = str(msg["blocks"])
    assert "&lt;b&gt; &amp; more" in text and "<b>" not in text
    assert "<@U123>" in text


def test_no_data_card_line():
    line = blocks.card_line(card("cycle-time", None, 0))
    assert "no data" in line and "n = 0" in line
