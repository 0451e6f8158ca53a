"""Platform-neutral report objects of the working agreements: a nudge naming the PRs that
broke an agreement, the daily roll-up of what is still open, and ``/kpi agreements``.

Numbers stay in base units (seconds, lines); renderers format them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from bot.metrics.agreements import Breach
from bot.settings import AGREEMENT_KEYS, TeamConfig
from bot.store import agreements as store


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
    author: str | None = None  # the PR author's GitHub login (lower case)


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
            b.pr.author,
        )
        for b in breaches
    )


def authors(report: AgreementsReport) -> set[str]:
    """The GitHub logins of the authors of the report's PRs (to look up their chat ids)."""
    return {line.author for line in report.lines if line.author}


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


def check_team(session: Session, team: TeamConfig, now: datetime) -> list[Breach]:
    """Check a team's working agreements at ``now`` (naive UTC): the breaches found, stored
    (new ones pending announcement, the ones that stopped holding resolved). The caller
    commits. Run after every sync, after every pull-request or review webhook, and by the
    scheduler every 15 minutes."""
    from bot.metrics.engine import TeamEngine

    if not team.agreements.any:
        return []
    engine = TeamEngine(session, team)
    tid = engine.team_id
    if tid is None:
        return []
    found = engine.agreement_breaches(now)
    store.record_check(session, tid, [(b.pr.id, b.agreement, b.since) for b in found], now)
    return found


def check_repository(
    session: Session, teams: Iterable[TeamConfig], repository: str, now: datetime
) -> int:
    """Check every team that counts ``repository`` (a webhook changed one of its PRs);
    returns how many teams were checked."""
    name = repository.lower()
    checked = 0
    for team in teams:
        if team.agreements.any and any(r.lower() == name for r in team.repos):
            check_team(session, team, now)
            checked += 1
    return checked
