"""Block Kit builders of the Slack surface: content, and Slack's limits (blocks per message
and view, characters per text, options, buttons, metadata)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from bot.metrics.registry import Kind, Target
from bot.reports.cards import Health, MetricCard, PeriodInfo, SparkPoint
from bot.slack import blocks
from bot.slack.blocks import ItemRow
from bot.store.subscriptions import Subscription

TODAY = date(2026, 11, 20)
PERIOD = PeriodInfo(
    "28d",
    "last 28 days (2026-10-23 to 2026-11-19)",
    datetime(2026, 10, 23, tzinfo=UTC),
    datetime(2026, 11, 20, tzinfo=UTC),
    "Europe/Berlin",
)


def card(metric="cycle-time", team="payments", n=12, value=180000.0, **kw) -> MetricCard:
    base = dict(
        metric=metric,
        name="Cycle time",
        team=team,
        period=PERIOD,
        kind=Kind.DURATION,
        unit="seconds",
        lower_is_better=True,
        n=n,
        value=value if n else None,
        p50=value if n else None,
        p75=value * 1.5 if n else None,
        p90=value * 2 if n else None,
        target=Target("<", 172800.0),
        status="off target" if n else "no data",
        previous_n=10,
        previous_value=150000.0,
        trend="worse",
        change=0.2,
        band=None,
        edition=None,
        breakdown={"coding": 3600.0, "pickup": 90000.0, "review": 7200.0} if n else None,
        sparkline=tuple(SparkPoint(f"P{i}", None if i == 2 else 1000.0 * i, 5) for i in range(8)),
        definition="Median time from first commit to merge.",
    )
    base.update(kw)
    return MetricCard(**base)


def item(i: int, text_len: int = 40, done: bool = False) -> ItemRow:
    return ItemRow(
        i,
        "payments",
        "o" * text_len,
        "r" * text_len,
        "U0BOB",
        date(2026, 11, 1 + i % 28),
        TODAY if done else None,
        "cycle-time",
        3600.0,
        "U0ALICE",
    )


def _texts(payload_blocks):
    for b in payload_blocks:
        if "text" in b and isinstance(b["text"], dict):
            yield b["type"], b["text"]["text"]
        for f in b.get("fields", []):
            yield "field", f["text"]
        for e in b.get("elements", []):
            if isinstance(e.get("text"), str):
                yield "context", e["text"]


def _within_limits(payload_blocks, max_blocks=50):
    assert len(payload_blocks) <= max_blocks
    for kind, t in _texts(payload_blocks):
        limit = {"header": 150, "field": 2000}.get(kind, 3000)
        assert len(t) <= limit, (kind, len(t))
    for b in payload_blocks:
        assert len(b.get("fields", [])) <= 10
        if b["type"] == "actions":
            assert len(b["elements"]) <= 25
            for e in b["elements"]:
                assert len(e.get("value", "")) <= 2000 and len(e["text"]["text"]) <= 75


def test_metric_card_content():
    p = blocks.card_payload(card())
    assert p["response_type"] == "ephemeral"
    text = " ".join(t for _, t in _texts(p["blocks"]))
    for part in (
        "Cycle time · payments",
        "Value (p50)",
        "2.1d",
        "p75 / p90",
        "*n*\n12",
        "< 2.0d",
        "off target",
        "▲ 20% worse",
        "Last 8 periods",
        "P0 to P7",
        "*pickup 25h*",
    ):
        assert part in text, part
    buttons = [e for b in p["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["action_id"] for b in buttons] == [
        "share_card",
        "how_computed",
        "log_action",
        "show_chart",
    ]
    assert json.loads(buttons[0]["value"]) == {"m": "cycle-time", "t": "payments", "p": "28d"}
    assert buttons[2]["value"] == "payments|cycle-time"
    _within_limits(p["blocks"])


def test_no_data_card_and_band():
    p = blocks.card_payload(card(n=0, band="elite", edition=2023))
    text = " ".join(t for _, t in _texts(p["blocks"]))
    assert "no data (n = 0)" in text and "DORA 2023 band*\nelite" in text
    assert "Phases" not in text


def test_shared_card_has_no_share_button_and_names_the_sharer():
    p = blocks.shared_card_payload(card(), "U0ALICE")
    assert "response_type" not in p
    ids = [e["action_id"] for b in p["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert "share_card" not in ids
    assert any("Shared by <@U0ALICE>" in t for _, t in _texts(p["blocks"]))


def test_long_names_are_clipped_to_the_header_limit():
    p = blocks.card_payload(card(team="t" * 300))
    _within_limits(p["blocks"])


def test_action_list_truncates_with_a_note():
    p = blocks.actions_payload([item(i, 1000) for i in range(120)], "payments", False, TODAY)
    _within_limits(p["blocks"])
    assert any("more item(s) not shown" in t for _, t in _texts(p["blocks"]))
    first = p["blocks"][2]["elements"]
    assert [e["action_id"] for e in first] == ["item_done", "item_edit"]
    assert first[0]["value"] == "0|open"


def test_done_items_offer_reopen():
    p = blocks.actions_payload([item(1, done=True)], "payments", True, TODAY)
    ids = [e["action_id"] for b in p["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert ids == ["item_reopen", "item_edit"]
    assert p["blocks"][2]["elements"][0]["value"] == "1|all"


def test_overdue_items_are_marked():
    assert "*overdue*" in blocks.item_text(item(1), TODAY)  # due 2026-11-02


def test_modal_limits_and_prefill():
    many = [f"team-{i}" for i in range(150)]
    meta = {"channel": "C1", "item": None, "response_url": "x" * 4000}
    view = blocks.action_modal(teams=many, team="team-3", kpi="pr-size", owner="U1", metadata=meta)
    assert len(view["blocks"]) <= 100 and len(view["title"]["text"]) <= 24
    assert len(view["private_metadata"]) <= 3000
    by_id = {b["block_id"]: b for b in view["blocks"] if "block_id" in b}
    assert len(by_id["team"]["element"]["options"]) == 100
    assert by_id["team"]["element"]["initial_option"]["value"] == "team-3"
    assert by_id["kpi"]["element"]["initial_option"]["value"] == "pr-size"
    assert by_id["opportunity"]["element"]["max_length"] == blocks.MAX_OPPORTUNITY
    for b in by_id.values():
        for o in b["element"].get("options", []):
            assert len(o["text"]["text"]) <= 75
    edit = blocks.action_modal(
        teams=["payments"], team=None, kpi=None, owner="U9", metadata={"item": 4}, item=item(4)
    )
    eb = {b["block_id"]: b for b in edit["blocks"] if "block_id" in b}
    assert eb["owner"]["element"]["initial_user"] == "U0BOB"
    assert eb["due"]["element"]["initial_date"] == "2026-11-05"
    assert edit["title"]["text"] == "Edit action item"


def test_home_view_stays_within_100_blocks():
    h = Health("payments", PERIOD, tuple(card() for _ in range(10)))
    subs = [
        Subscription(
            i, f"C{i}", 1, "payments", "weekly", None, True, None, "U1", datetime(2026, 1, 1)
        )
        for i in range(300)
    ]
    view = blocks.home_view(
        user="U1",
        healths=[h] * 10,
        items=[item(i) for i in range(200)],
        subscriptions=subs,
        today=TODAY,
    )
    assert view["type"] == "home"
    _within_limits(view["blocks"], max_blocks=100)
    texts = " ".join(t for _, t in _texts(view["blocks"]))
    assert "more open item(s) not shown" in texts and "Channel digests you receive" in texts


def test_help_errors_and_lists_stay_within_limits():
    help_p = blocks.help_payload("payments", [f"t{i}" for i in range(500)])
    _within_limits(help_p["blocks"])
    texts = " ".join(t for _, t in _texts(help_p["blocks"]))
    assert "`cycle-time` (`ct`, `cycle`)" in texts and "This channel's team: *payments*" in texts
    err = blocks.error_payload("x" * 5000, ["/kpi a"] * 10)
    _within_limits(err["blocks"])
    pick = blocks.which_team_payload("ct", [f"t{i}" for i in range(40)])
    _within_limits(pick["blocks"])
    subs = [
        Subscription(
            i, "C1", 1, "p" * 60, "monthly", None, True, "x" * 100, "U1", datetime(2026, 1, 1)
        )
        for i in range(200)
    ]
    _within_limits(blocks.subscriptions_payload(subs, "C1")["blocks"])
    rows = [blocks.TeamRow(f"t{i}", "UTC", 3, ("C1", "C2")) for i in range(300)]
    _within_limits(blocks.teams_payload(rows, "t1")["blocks"])
