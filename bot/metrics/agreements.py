"""Working agreements: which open PRs are in breach (METRICS.md, Agreements and alerts).

Pure: the caller passes the team's open PRs as :class:`OpenPR` facts, the agreements, ``now``
and the team's business clock (None for calendar time). The one home of the rules:

- ``first_review_within: D``: an open, non-draft, non-bot PR with no first review (by an
  account that is neither its author nor a bot) ``D`` after ``t_ready`` is in breach;
- ``pr_size_under: N``: an open PR whose size (additions + deletions outside the ignored
  paths, as for PR size) reaches ``N`` is in breach;
- ``open_pr_idle_for: D``: an open PR with no commit, review or comment for ``D`` is in breach.

``D`` counts working time when the team has business hours. Drafts, bots' PRs and excluded
PRs are never in breach; a PR leaves a breach when its condition stops holding.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from bot.metrics.business import BusinessClock
from bot.settings import AGREEMENT_KEYS, Agreements

#: how each agreement reads in messages (the key is what kpibot.yml and the store use)
AGREEMENT_NAMES = {
    "first_review_within": "first review within",
    "pr_size_under": "PRs under",
    "open_pr_idle_for": "no open PR idle for",
}


@dataclass(frozen=True)
class OpenPR:
    """What the agreements read of one open PR (naive UTC times)."""

    id: int
    repository: str  # owner/name
    number: int
    title: str
    url: str | None
    created: datetime
    ready: datetime | None  # first ready_for_review; None when never a draft
    first_review: datetime | None  # earliest non-author, non-bot, non-pending review
    last_activity: datetime  # latest commit, review or comment known (see the loader)
    size: int  # additions + deletions outside the ignored paths
    draft: bool = False
    bot: bool = False
    excluded: bool = False
    author: str | None = None  # the author's GitHub login, for a mention in a nudge

    @property
    def t_ready(self) -> datetime:
        return self.ready or self.created


@dataclass(frozen=True)
class Breach:
    """One PR in breach of one agreement. ``measured``: the waiting or idle time in seconds
    (working seconds with business hours), or the size in lines; ``limit``: the agreement's
    value in the same unit; ``since``: the start of the span measured (the PR's opening for
    size)."""

    pr: OpenPR
    agreement: str
    since: datetime
    measured: float
    limit: float


def _elapsed(a: datetime, b: datetime, clock: BusinessClock | None) -> float:
    if clock is not None:
        return clock.seconds(a, b)
    return max(0.0, (b - a).total_seconds())


def breaches(
    prs: Iterable[OpenPR],
    agreements: Agreements,
    now: datetime,
    clock: BusinessClock | None = None,
) -> list[Breach]:
    """Every breach of ``agreements`` at ``now``, in agreement order, then oldest first."""
    out: dict[str, list[Breach]] = {k: [] for k in AGREEMENT_KEYS}
    review_within = agreements.first_review_within
    size_under = agreements.pr_size_under
    idle_for = agreements.open_pr_idle_for
    for pr in prs:
        if pr.draft or pr.bot or pr.excluded:
            continue
        if review_within is not None and pr.first_review is None:
            waited = _elapsed(pr.t_ready, now, clock)
            if waited >= review_within:
                out["first_review_within"].append(
                    Breach(pr, "first_review_within", pr.t_ready, waited, review_within)
                )
        if size_under is not None and pr.size >= size_under:
            out["pr_size_under"].append(
                Breach(pr, "pr_size_under", pr.created, float(pr.size), float(size_under))
            )
        if idle_for is not None:
            idle = _elapsed(pr.last_activity, now, clock)
            if idle >= idle_for:
                out["open_pr_idle_for"].append(
                    Breach(pr, "open_pr_idle_for", pr.last_activity, idle, idle_for)
                )
    ordered: list[Breach] = []
    for key in AGREEMENT_KEYS:
        ordered.extend(sorted(out[key], key=lambda b: (b.since, b.pr.id)))
    return ordered
