"""The one registry of KPIs: ids, aliases, units, direction, default targets and definitions.

The slash-command parser, help text, "How is this computed?", targets and renderers all read
this, so a new KPI is one entry here plus its function in ``bot.metrics.engine``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.errors import UnknownMetric, did_you_mean


class Kind(StrEnum):
    DURATION = "duration"  # seconds
    LINES = "lines"
    RATIO = "ratio"  # a fraction 0..1
    RATE = "rate"  # merges per developer-week
    DAYS_PER_WEEK = "days_per_week"  # deployment days per week


UNITS: dict[Kind, str] = {
    Kind.DURATION: "seconds",
    Kind.LINES: "lines",
    Kind.RATIO: "fraction",
    Kind.RATE: "merges per developer-week",
    Kind.DAYS_PER_WEEK: "deploy-days per week",
}


@dataclass(frozen=True)
class Target:
    op: str  # one of < <= > >=
    value: float

    def met_by(self, value: float) -> bool:
        match self.op:
            case "<":
                return value < self.value
            case "<=":
                return value <= self.value
            case ">":
                return value > self.value
            case ">=":
                return value >= self.value
        raise ValueError(self.op)


@dataclass(frozen=True)
class MetricSpec:
    id: str
    name: str
    aliases: tuple[str, ...]
    kind: Kind
    lower_is_better: bool
    target: Target
    cadence: str  # leading | lagging
    definition: str
    dora: bool = False
    # the sources the KPI is computed from: repos (pull requests), deployments, incidents,
    # sprints; the health view lists a KPI only when the team has every one configured
    sources: tuple[str, ...] = ("repos",)

    @property
    def unit(self) -> str:
        return UNITS[self.kind]

    @property
    def trend_in_points(self) -> bool:
        """Rate KPIs (a share: coverage, failure rate, predictability, scope creep) trend in
        percentage points, the others by relative change (METRICS.md, Aggregation)."""
        return self.kind is Kind.RATIO


H = 3600.0

METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "cycle-time",
        "Cycle time",
        ("ct", "cycle"),
        Kind.DURATION,
        True,
        Target("<", 72 * H),
        "leading",
        "Median time from a PR's first commit to its merge, over the team's non-bot PRs merged "
        "into the default branch in the period. Split into coding (first commit to ready for "
        "review), pickup (ready to first review) and review (first review to merge).",
    ),
    MetricSpec(
        "pr-size",
        "PR size",
        ("size",),
        Kind.LINES,
        True,
        Target("<", 400),
        "leading",
        "Median lines changed (additions + deletions) per merged PR, leaving out lock files, "
        "vendored, generated and other ignored paths. Also the share of PRs over 400 lines.",
    ),
    MetricSpec(
        "first-review",
        "First review time",
        ("pickup", "review-time"),
        Kind.DURATION,
        True,
        Target("<", 4 * H),
        "leading",
        "Median time from a PR being ready for review to its first review by someone other "
        "than the author or a bot, over merged PRs that had a review. A review given while the "
        "PR was a draft counts as 0.",
    ),
    MetricSpec(
        "review-coverage",
        "Review coverage",
        ("coverage",),
        Kind.RATIO,
        False,
        Target(">", 0.95),
        "leading",
        "Share of merged PRs approved (by someone other than the author or a bot, and not "
        "dismissed) before they were merged.",
    ),
    MetricSpec(
        "merge-frequency",
        "Merge frequency",
        ("merges",),
        Kind.RATE,
        False,
        Target(">", 2.25),
        "leading",
        "Merged PRs per developer per week: merged PRs / distinct non-bot authors of those "
        "PRs / weeks in the period.",
    ),
    MetricSpec(
        "deploy-frequency",
        "Deployment frequency",
        ("df", "deploys"),
        Kind.DAYS_PER_WEEK,
        False,
        Target(">=", 5),
        "lagging",
        "Median number of distinct days with a successful production deployment per ISO week "
        "(weeks with none count as 0). n is the number of successful production deployments.",
        dora=True,
        sources=("deployments",),
    ),
    MetricSpec(
        "lead-time",
        "Lead time for changes",
        ("lt", "ltc"),
        Kind.DURATION,
        True,
        Target("<", 24 * H),
        "lagging",
        "Median time from a PR's first commit to the finish of the first successful production "
        "deployment that contains it, over PRs whose deployment finished in the period.",
        dora=True,
        sources=("repos", "deployments"),
    ),
    MetricSpec(
        "change-failure-rate",
        "Change failure rate",
        ("cfr",),
        Kind.RATIO,
        True,
        Target("<", 0.15),
        "lagging",
        "Failed deployments / successful production deployments finished in the period. A "
        "deployment failed when an incident names it, when an unlinked incident starts within "
        "the attribution window after it (and it is the latest deployment before that "
        "incident), or when it is rolled back or a PR it contains is reverted within the window.",
        dora=True,
        sources=("deployments",),
    ),
    MetricSpec(
        "mttr",
        "Time to restore",
        ("time-to-restore", "ttr"),
        Kind.DURATION,
        True,
        Target("<", 1 * H),
        "lagging",
        "Median time from an incident's start to its resolution, over incidents resolved in "
        "the period.",
        dora=True,
        sources=("incidents",),
    ),
    MetricSpec(
        "predictability",
        "Delivery predictability",
        ("delivery",),
        Kind.RATIO,
        False,
        Target(">", 0.80),
        "lagging",
        "Completed committed work / committed work, over sprints (or milestones) that ended in "
        "the period; by story points when every committed item has them, else by item count. "
        "n is the number of committed items.",
        sources=("sprints",),
    ),
    MetricSpec(
        "recovery-time",
        "Failed deployment recovery time",
        ("fdrt", "recovery"),
        Kind.DURATION,
        True,
        Target("<", 1 * H),
        "lagging",
        "Median time from the finish of a failed deployment to the resolution of the incident "
        "attributed to it, over such incidents resolved in the period.",
        sources=("deployments", "incidents"),
    ),
    MetricSpec(
        "scope-creep",
        "Scope creep",
        ("creep",),
        Kind.RATIO,
        True,
        Target("<", 0.20),
        "lagging",
        "Work added to sprints after they started / committed work, over sprints that ended in "
        "the period (points or items, as for predictability).",
        sources=("sprints",),
    ),
)

BY_ID: dict[str, MetricSpec] = {m.id: m for m in METRICS}
LEADING: tuple[str, ...] = tuple(m.id for m in METRICS if m.cadence == "leading")
DORA: tuple[str, ...] = tuple(m.id for m in METRICS if m.dora)
LAGGING: tuple[str, ...] = tuple(m.id for m in METRICS if m.cadence == "lagging")

_LOOKUP: dict[str, str] = {}
for _m in METRICS:
    _LOOKUP[_m.id] = _m.id
    for _a in _m.aliases:
        _LOOKUP[_a] = _m.id


def all_names() -> list[str]:
    return list(_LOOKUP)


def resolve(word: str) -> MetricSpec:
    """The metric named by an id or alias (case-insensitive), or UnknownMetric with advice."""
    key = word.strip().lower()
    if key in _LOOKUP:
        return BY_ID[_LOOKUP[key]]
    raise UnknownMetric(
        f"unknown metric '{word}'.{did_you_mean(key, all_names())} "
        f"Valid metrics: {', '.join(m.id for m in METRICS)}."
    )
