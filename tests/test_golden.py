"""Golden files: the demo organisation is deterministic, so its rendered text, Block Kit and
JSON for a handful of cards and both digests are pinned in ``tests/golden/``. A change to how
numbers read shows up as a diff of these files, reviewed with the change.

Regenerate them after an intended change, then review ``git diff tests/golden``::

    KPIBOT_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.metrics.periods import last_complete_month, last_complete_week, parse_period
from bot.renderers import blocks as digest_blocks
from bot.renderers import jsonout, text
from bot.reports.cards import build_card, build_dora, build_health
from bot.reports.digests import build_monthly, build_weekly
from bot.slack import blocks
from tests.demo_org import NOW, DemoOrg, load_demo

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("KPIBOT_UPDATE_GOLDEN") == "1"
NOW_NAIVE = NOW.replace(tzinfo=None)


@pytest.fixture(scope="module")
def org(tmp_path_factory):
    yield from load_demo(tmp_path_factory.mktemp("golden"))


def _period(org: DemoOrg, team: str, word: str):
    return parse_period(word, org.config.team(team).zone, NOW)


# (file stem, team, what to build) -> the report object
CARDS = [
    ("card-cycle-time-payments-28d", "payments", "cycle-time", "28d"),
    ("card-review-coverage-payments-2026-10", "payments", "review-coverage", "2026-10"),
    ("card-pr-size-mobile-2026-W46", "mobile", "pr-size", "2026-W46"),
    ("card-deploy-frequency-platform-this-month", "platform", "deploy-frequency", "this-month"),
    ("card-mttr-payments-90d", "payments", "mttr", "90d"),
]

Renderers = dict[str, Callable[[Any], Any]]
CARD_RENDERERS: Renderers = {
    "txt": text.card,
    "blocks.json": blocks.card_payload,
    "json": jsonout.card,
}


def _cases() -> list[tuple[str, str, Callable[[DemoOrg], Any], Renderers]]:
    cases: list[tuple[str, str, Callable[[DemoOrg], Any], Renderers]] = []
    for stem, team, metric, word in CARDS:

        def build(org: DemoOrg, team=team, metric=metric, word=word) -> Any:
            with org.factory() as s:
                return build_card(org.engine(s, team), metric, _period(org, team, word))

        cases.append((stem, team, build, CARD_RENDERERS))

    def dora(org: DemoOrg) -> Any:
        with org.factory() as s:
            return build_dora(org.engine(s, "mobile"), _period(org, "mobile", "last-month"))

    cases.append(
        (
            "dora-mobile-last-month",
            "mobile",
            dora,
            {
                "txt": text.dora,
                "blocks.json": blocks.dora_payload,
                "json": jsonout.dora,
            },
        )
    )

    def health(org: DemoOrg) -> Any:
        with org.factory() as s:
            return build_health(org.engine(s, "platform"), _period(org, "platform", "28d"))

    cases.append(
        (
            "health-platform-28d",
            "platform",
            health,
            {
                "txt": text.health,
                "blocks.json": blocks.health_payload,
                "json": jsonout.health,
            },
        )
    )

    def weekly(org: DemoOrg) -> Any:
        with org.factory() as s:
            eng = org.engine(s, "payments")
            return build_weekly(eng, last_complete_week(NOW, eng.team.zone), NOW_NAIVE)

    cases.append(
        (
            "digest-weekly-payments",
            "payments",
            weekly,
            {
                "txt": text.weekly,
                "blocks.json": digest_blocks.weekly,
                "json": jsonout.weekly,
            },
        )
    )

    def monthly(org: DemoOrg) -> Any:
        with org.factory() as s:
            eng = org.engine(s, "payments")
            return build_monthly(eng, last_complete_month(NOW, eng.team.zone), NOW_NAIVE)

    cases.append(
        (
            "digest-monthly-payments",
            "payments",
            monthly,
            {
                "txt": text.monthly,
                "blocks.json": digest_blocks.monthly,
                "json": jsonout.monthly,
            },
        )
    )
    return cases


CASES = _cases()


def _serialise(out: Any) -> str:
    if isinstance(out, str):
        return out.rstrip("\n") + "\n"
    return json.dumps(out, indent=2, ensure_ascii=False) + "\n"


@pytest.mark.parametrize(
    "stem,build,renderers", [(c[0], c[2], c[3]) for c in CASES], ids=[c[0] for c in CASES]
)
def test_golden(org, stem, build, renderers):
    report = build(org)
    mismatched = []
    for ext, render in renderers.items():
        path = GOLDEN / f"{stem}.{ext}"
        got = _serialise(render(report))
        if UPDATE:
            path.parent.mkdir(exist_ok=True)
            path.write_text(got, encoding="utf-8")
        assert path.exists(), (
            f"{path.name} is missing: KPIBOT_UPDATE_GOLDEN=1 python -m pytest "
            "tests/test_golden.py writes it"
        )
        if path.read_text(encoding="utf-8") != got:
            mismatched.append(path.name)
    assert not mismatched, (
        f"rendering changed for {', '.join(mismatched)}; if intended, regenerate with "
        "KPIBOT_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py and review the diff"
    )


def test_golden_files_are_all_produced():
    """No stale golden file is left behind when a case is renamed or removed."""
    expected = {f"{c[0]}.{ext}" for c in CASES for ext in c[3]}
    present = {p.name for p in GOLDEN.iterdir()} if GOLDEN.is_dir() else set()
    assert present == expected
