"""The pull-request timeline and its phases (METRICS.md, The pull-request timeline)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.metrics.business import BusinessClock


# PRFacts and Timeline are built for every PR a card reads (tens of thousands at the largest
# organisations): plain slotted dataclasses, as a frozen one's __init__ costs several times
# more (it sets each field through object.__setattr__). Nothing changes them once built,
# except the engine setting a loaded PR's reviews once, before any KPI reads them.
@dataclass(slots=True)
class PRFacts:
    """What the metrics need to know about one merged, non-bot PR (naive UTC times)."""

    id: int
    repository_id: int
    number: int
    title: str
    author: str
    created: datetime
    merged: datetime
    ready: datetime | None = None  # first ready_for_review; None when never a draft
    first_commit: datetime | None = None  # earliest commit author date
    first_review: datetime | None = None  # earliest non-author, non-bot, non-pending review
    approved: datetime | None = None  # earliest non-dismissed approval by a non-author non-bot
    deployed: datetime | None = None  # finish of the first successful production deployment
    size: int = 0  # additions + deletions outside ignored paths


@dataclass(slots=True)
class Timeline:
    first_commit: datetime
    ready: datetime
    first_review: datetime | None  # clamped into [ready, merged]
    merged: datetime
    deployed: datetime | None
    coding: float
    pickup: float
    review: float
    deploy: float | None
    cycle: float  # merged - first commit (working seconds in business hours)

    @property
    def lead(self) -> float | None:
        if self.deployed is None:
            return None
        return self.cycle + (self.deploy or 0.0)

    @property
    def reviewed(self) -> bool:
        return self.first_review is not None


def _clamp(t: datetime, lo: datetime, hi: datetime) -> datetime:
    return lo if t < lo else hi if t > hi else t


def timeline(pr: PRFacts, clock: BusinessClock | None = None) -> Timeline:
    """Timeline points and phases, each clipped so they never go negative and sum to cycle time.

    - ``t_first_commit``: earliest commit author date, or ``t_created`` when missing or later;
    - ``t_ready``: first ready_for_review, or ``t_created`` when never a draft;
    - coding = ready - first commit; pickup = clamp(first review, ready, merged) - ready;
      review = merged - clamp(first review, ready, merged); without a review pickup runs to
      the merge and review is 0; deploy = deployed - merged.

    With a ``clock`` (the team's business hours) every duration counts only working time;
    the phases still sum to cycle time, as working time over adjacent spans adds up.
    """
    merged = pr.merged
    first = pr.first_commit if pr.first_commit is not None else pr.created
    if first > pr.created:
        first = pr.created
    if first > merged:
        first = merged
    ready = _clamp(pr.ready if pr.ready is not None else pr.created, first, merged)
    fr = _clamp(pr.first_review, ready, merged) if pr.first_review is not None else None
    if clock is not None:
        # one mark per point; each phase is the difference of two (never negative)
        points = [first, ready, fr or merged, merged]
        if pr.deployed is not None:
            points.append(pr.deployed)
        w = clock.marks(points)
        coding = max(0.0, w[1] - w[0])
        pickup = max(0.0, w[2] - w[1])
        review = max(0.0, w[3] - w[2])
        deploy = None if pr.deployed is None else max(0.0, w[4] - w[3])
        cycle = coding + pickup + review
        return Timeline(
            first, ready, fr, merged, pr.deployed, coding, pickup, review, deploy, cycle
        )
    coding = (ready - first).total_seconds()
    if fr is None:
        pickup = (merged - ready).total_seconds()
        review = 0.0
    else:
        pickup = (fr - ready).total_seconds()
        review = (merged - fr).total_seconds()
    deploy = None
    if pr.deployed is not None:
        deploy = max(0.0, (pr.deployed - merged).total_seconds())
    cycle = (merged - first).total_seconds()
    return Timeline(first, ready, fr, merged, pr.deployed, coding, pickup, review, deploy, cycle)


def with_deployment(
    t: Timeline, deployed: datetime, clock: BusinessClock | None = None
) -> Timeline:
    """``t``, the timeline of a PR without its deployment, with the deployment finished at
    ``deployed``: equal to ``timeline`` of the PR with ``deployed`` set (marks count from a
    fixed origin, so the deploy phase is the same difference), without computing the other
    phases again (a team's deployed PRs are mostly the merged PRs it has timelines of)."""
    if clock is not None:
        deploy = clock.seconds(t.merged, deployed)
    else:
        deploy = max(0.0, (deployed - t.merged).total_seconds())
    return Timeline(
        t.first_commit,
        t.ready,
        t.first_review,
        t.merged,
        deployed,
        t.coding,
        t.pickup,
        t.review,
        deploy,
        t.cycle,
    )
