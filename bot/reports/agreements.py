"""Platform-neutral report objects of the working agreements: a nudge naming the PRs that
broke an agreement, the daily roll-up of what is still open, and ``/kpi agreements``.

Numbers stay in base units (seconds, lines); renderers format them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from bot.metrics.agreements import Breach
from bot.settings import AGREEMENT_KEYS, TeamConfig


@dataclass(frozen=True)
class BreachLine:
    """One PR in breach of one agreement. ``measured``/``limit``: seconds (working seconds
    with business hours) or lines; ``snoozed_until``: naive UTC, when a lead snoozed it."""

    team: str
    agreement: str
    pr_id: int
    repository: str
    number: int
    title: str  # as the source wrote it: renderers escape it
    url: str | None
    measured: float
    limit: float
    snoozed_until: datetime | None = None


@dataclass(frozen=True)
class AgreementsReport:
    """``kind``: ``nudge`` (new breaches), ``rollup`` (the daily list of what is still open,
    with the notices the noise budget folded into it) or ``list`` (``/kpi agreements``)."""

    team: str
    kind: str
    agreements: tuple[tuple[str, float], ...]  # (key, limit) in AGREEMENT_KEYS order
    lines: tuple[BreachLine, ...]
    business_hours: bool = False
    folded: tuple[str, ...] = ()  # other notices folded into a roll-up, as plain text
    snoozed: int = 0  # PRs in breach left out while snoozed (roll-up)


def agreement_limits(team: TeamConfig) -> tuple[tuple[str, float], ...]:
    a = team.agreements
    out = []
    for key in AGREEMENT_KEYS:
        value = getattr(a, key)
        if value is not None:
            out.append((key, float(value)))
    return tuple(out)


def lines_of(
    team: TeamConfig, breaches: Iterable[Breach], snoozed: dict[int, datetime] | None = None
) -> tuple[BreachLine, ...]:
    snoozed = snoozed or {}
    return tuple(
        BreachLine(
            team.name,
            b.agreement,
            b.pr.id,
            b.pr.repository,
            b.pr.number,
            b.pr.title,
            b.pr.url,
            b.measured,
            b.limit,
            snoozed.get(b.pr.id),
        )
        for b in breaches
    )


def build_report(
    team: TeamConfig,
    kind: str,
    breaches: Iterable[Breach],
    *,
    snoozed: dict[int, datetime] | None = None,
    folded: Iterable[str] = (),
    left_out: int = 0,
) -> AgreementsReport:
    return AgreementsReport(
        team.name,
        kind,
        agreement_limits(team),
        lines_of(team, breaches, snoozed),
        team.working_hours is not None,
        tuple(folded),
        left_out,
    )
