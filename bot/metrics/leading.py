"""Leading indicators (weekly) as pure functions of a period's merged PRs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.metrics.business import BusinessClock
from bot.metrics.stats import median, summarise
from bot.metrics.timeline import PRFacts, Timeline, timeline
from bot.metrics.values import NO_DATA, MetricValue

LARGE_PR_LINES = 400


def _value(values: Sequence[float], breakdown: dict[str, Any] | None = None) -> MetricValue:
    s = summarise(values)
    if s.n == 0:
        return MetricValue(0, None, breakdown=breakdown)
    return MetricValue(s.n, s.p50, s.p50, s.p75, s.p90, breakdown)


def cycle_time(
    prs: Sequence[PRFacts],
    clock: BusinessClock | None = None,
    timelines: Sequence[Timeline] | None = None,
) -> MetricValue:
    """``clock``: the team's business hours (None: calendar time); ``timelines``: the PRs'
    timelines with that clock when the caller has them already (one per PR, in order)."""
    tls = [timeline(p, clock) for p in prs] if timelines is None else timelines
    if not tls:
        return NO_DATA
    breakdown: dict[str, Any] = {
        "coding": median(t.coding for t in tls),
        "pickup": median(t.pickup for t in tls),
        "review": median(t.review for t in tls),
        "merged_without_review": sum(1 for t in tls if not t.reviewed),
    }
    return _value([t.cycle for t in tls], breakdown)


def pr_size(prs: Sequence[PRFacts]) -> MetricValue:
    if not prs:
        return NO_DATA
    sizes = [float(p.size) for p in prs]
    large = sum(1 for s in sizes if s > LARGE_PR_LINES)
    return _value(sizes, {"over_400_share": large / len(sizes), "over_400": large})


def first_review(
    prs: Sequence[PRFacts],
    clock: BusinessClock | None = None,
    timelines: Sequence[Timeline] | None = None,
) -> MetricValue:
    """``timelines``: as for ``cycle_time``."""
    tls = [timeline(p, clock) for p in prs] if timelines is None else timelines
    reviewed = [t.pickup for t in tls if t.reviewed]
    if not reviewed:
        return MetricValue(0, None, breakdown={"without_review": len(tls)} if tls else None)
    return _value(reviewed, {"without_review": len(tls) - len(reviewed)})


def review_coverage(prs: Sequence[PRFacts]) -> MetricValue:
    if not prs:
        return NO_DATA
    approved = sum(1 for p in prs if p.approved is not None and p.approved <= p.merged)
    return MetricValue(
        len(prs),
        approved / len(prs),
        breakdown={"approved": approved, "not_approved": len(prs) - approved},
    )


def merge_frequency(prs: Sequence[PRFacts], days: float) -> MetricValue:
    if not prs or days <= 0:
        return NO_DATA
    authors = {p.author.lower() for p in prs}
    weeks = days / 7
    return MetricValue(
        len(prs),
        len(prs) / len(authors) / weeks,
        breakdown={"merged": len(prs), "authors": len(authors), "weeks": weeks},
    )
