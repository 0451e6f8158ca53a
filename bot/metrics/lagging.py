"""Lagging indicators (monthly): DORA keys, failure attribution, predictability.

Pure functions over plain records; ``bot.metrics.engine`` loads the records from the store.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from bot.metrics.business import BusinessClock
from bot.metrics.periods import Period, week_of
from bot.metrics.stats import median, summarise
from bot.metrics.timeline import PRFacts, Timeline, timeline
from bot.metrics.values import NO_DATA, MetricValue

REVERT_PREFIX = 'Revert "'
# the head branch GitHub's "Revert" button creates for a revert of PR #N: revert-N-<branch>
REVERT_BRANCH = re.compile(r"revert-(\d+)-")


class ContainedPR(NamedTuple):
    """A PR a deployment contains, as the failure rules need it."""

    title: str
    merge_sha: str | None
    number: int | None = None


@dataclass(frozen=True, slots=True)
class DeploymentFacts:
    """A production deployment run (naive UTC)."""

    id: int
    repository_id: int
    sha: str
    status: str
    finished: datetime
    rolled_back_at: datetime | None = None
    contents_unknown: bool = False  # the commit graph does not know what it contains

    @property
    def succeeded(self) -> bool:
        return self.status == "success"


@dataclass(frozen=True, slots=True)
class IncidentFacts:
    id: int
    started: datetime
    resolved: datetime | None
    deployment_id: int | None = None  # explicit link
    commit_sha: str | None = None  # explicit link

    @property
    def linked(self) -> bool:
        return self.deployment_id is not None or bool(self.commit_sha)


@dataclass(frozen=True, slots=True)
class RevertFacts:
    repository_id: int
    title: str
    merged: datetime
    head_branch: str | None = None

    @property
    def reverted_number(self) -> int | None:
        """N when the head branch is GitHub's revert branch ``revert-N-...``."""
        m = REVERT_BRANCH.match(self.head_branch or "")
        return int(m.group(1)) if m else None

    @property
    def reverted_title(self) -> str | None:
        t = self.title
        if t.startswith(REVERT_PREFIX) and t.endswith('"') and len(t) > len(REVERT_PREFIX) + 1:
            return t[len(REVERT_PREFIX) : -1]
        return None


@dataclass(frozen=True, slots=True)
class SprintItemFacts:
    sprint_id: int
    committed: bool
    added: bool
    completed: bool
    points: float | None


# --- deployment frequency ------------------------------------------------------------------


def unknown_contents(runs: Iterable[DeploymentFacts], period: Period) -> int:
    """Successful deployments finished in ``period`` whose contents are unknown."""
    return sum(
        1 for d in runs if d.succeeded and d.contents_unknown and period.contains(d.finished)
    )


def deploy_frequency(
    finished: Iterable[datetime], period: Period, first_deployed: datetime | None = None
) -> MetricValue:
    """Median distinct deployment days (team zone) per ISO week overlapping the period.

    ``finished``: finish times (naive UTC) of the successful production deployments. For a
    period in progress the unfinished ISO week is left out of the median; while no week of
    the period has finished, the value is the number of deployment days so far.

    ``first_deployed``: when the team's first recorded successful production deployment
    finished. A period without one is "no data", except (METRICS.md) once the team has a
    deployment before the period's end: the source was watched and saw none, so the value
    is 0 (band *low*).
    """
    zone = period.zone
    times = [t for t in finished if period.contains(t)]
    days = {(t.replace(tzinfo=UTC).astimezone(zone)).date() for t in times}
    first_week = week_of(period.start_local.date(), zone)
    last_day = period.last_day
    per_week: list[float] = []
    w = first_week
    while w.start_local.date() <= last_day:
        if period.in_progress and w.end_local > period.end_local:
            break  # the week still in progress
        ws, we = w.start_local.date(), w.end_local.date()
        per_week.append(float(sum(1 for d in days if ws <= d < we)))
        w = week_of(we, zone)
    n = len(times)
    if n == 0 and first_deployed is not None and first_deployed < period.end:
        return MetricValue(
            0,
            0.0,
            breakdown={"deployments_per_week": 0.0, "deploy_days": 0, "weeks": len(per_week)},
            extra={"deploy_days": 0, "period_days": period.days},
            measured=True,
        )
    if n == 0:
        return MetricValue(0, None, breakdown={"deployments_per_week": None, "deploy_days": 0})
    weeks = period.days / 7
    return MetricValue(
        n,
        median(per_week) if per_week else float(len(days)),
        breakdown={
            "deployments_per_week": n / weeks if weeks else None,
            "deploy_days": len(days),
            "weeks": len(per_week),
        },
        extra={"deploy_days": len(days), "period_days": period.days},
    )


# --- lead time -----------------------------------------------------------------------------


def lead_time(
    prs: Sequence[PRFacts],
    unknown_contents: int = 0,
    clock: BusinessClock | None = None,
    timelines: Sequence[Timeline] | None = None,
) -> MetricValue:
    """``unknown_contents``: successful production deployments finished in the period whose
    contents are unknown (they credit no PR; reported so the reader knows what is missing);
    ``clock``: the team's business hours (None: calendar time); ``timelines``: the PRs'
    timelines with that clock when the caller has them already (one per PR, in order)."""
    if timelines is None:
        tls = [timeline(p, clock) for p in prs if p.deployed is not None]
    else:
        tls = [t for p, t in zip(prs, timelines, strict=True) if p.deployed is not None]
    if not tls:
        if unknown_contents:
            return MetricValue(0, None, breakdown={"unknown_contents": unknown_contents})
        return NO_DATA
    s = summarise(t.lead or 0.0 for t in tls)
    breakdown = {
        "coding": median(t.coding for t in tls),
        "pickup": median(t.pickup for t in tls),
        "review": median(t.review for t in tls),
        "deploy": median(t.deploy or 0.0 for t in tls),
        "unknown_contents": unknown_contents,
    }
    return MetricValue(s.n, s.p50, s.p50, s.p75, s.p90, breakdown)


# --- failure attribution --------------------------------------------------------------------


#: the shortest commit SHA an incident names a deployment by
MIN_SHA = 7


@dataclass(frozen=True)
class Named:
    """What the failure rules look for among the PRs deployments contain: the titles and
    numbers reverts name, and the commit SHAs (lower case) incidents name. A contained PR
    matching none of them changes no attribution, so only those need reading."""

    titles: frozenset[str]
    numbers: frozenset[int]
    shas: frozenset[str]

    def __bool__(self) -> bool:
        return bool(self.titles or self.numbers or self.shas)


def named_in_contents(incidents: Iterable[IncidentFacts], reverts: Iterable[RevertFacts]) -> Named:
    titles = {t for rv in reverts if (t := rv.reverted_title) is not None}
    numbers = {n for rv in reverts if (n := rv.reverted_number) is not None}
    shas = {
        i.commit_sha.lower() for i in incidents if i.commit_sha and len(i.commit_sha) >= MIN_SHA
    }
    return Named(frozenset(titles), frozenset(numbers), frozenset(shas))


@dataclass(frozen=True)
class Attribution:
    """Why deployments failed, and which deployment each incident is attributed to."""

    failed: Mapping[int, frozenset[str]]  # deployment id -> reasons
    incident_deployment: Mapping[int, int]  # incident id -> deployment id


def attribute_failures(
    deployments: Sequence[DeploymentFacts],
    incidents: Iterable[IncidentFacts],
    reverts: Iterable[RevertFacts],
    contained: Mapping[int, Sequence[ContainedPR]],
    window: timedelta,
) -> Attribution:
    """Apply the three failure rules of METRICS.md to successful production deployments.

    ``deployments``: the team's successful production deployments (any order);
    ``contained``: deployment id -> the PRs it contains.
    """
    ok = sorted((d for d in deployments if d.succeeded), key=lambda d: (d.finished, d.id))
    by_id = {d.id: d for d in ok}
    reasons: dict[int, set[str]] = {}
    incident_dep: dict[int, int] = {}

    def mark(dep_id: int, reason: str) -> None:
        reasons.setdefault(dep_id, set()).add(reason)

    # SHA index, built on the first incident naming a SHA: the deployed commit, and the merge
    # commits of the PRs it contains, sorted, so that the SHAs an incident's SHA is a prefix
    # of are a bisect range, and so are the ones equal to each of its prefixes
    sha_index: list[tuple[str, int]] = []
    sha_keys: list[str] = []

    def shipped(sha: str) -> list[int]:
        """Deployments whose deployed or contained SHA starts with ``sha`` or begins it."""
        if not sha_keys:
            for d in ok:
                sha_index.append((d.sha.lower(), d.id))
                for pr in contained.get(d.id, ()):
                    merge_sha = pr.merge_sha
                    if merge_sha:
                        sha_index.append((merge_sha.lower(), d.id))
            sha_index.sort()
            sha_keys.extend(s for s, _ in sha_index)
        lo = bisect.bisect_left(sha_keys, sha)
        hi = bisect.bisect_right(sha_keys, sha + "\uffff")
        hits = [dep for _, dep in sha_index[lo:hi]]
        for k in range(len(sha)):  # the stored SHAs that are a strict prefix of it
            prefix = sha[:k]
            lo = bisect.bisect_left(sha_keys, prefix)
            hi = bisect.bisect_right(sha_keys, prefix)
            hits.extend(dep for _, dep in sha_index[lo:hi])
        return hits

    finishes = [d.finished for d in ok]
    for inc in incidents:
        if inc.linked:
            # rule 1: the incident names the deployment (id, or a commit SHA it deployed)
            target: int | None = None
            if inc.deployment_id is not None and inc.deployment_id in by_id:
                target = inc.deployment_id
            elif inc.commit_sha and len(inc.commit_sha) >= MIN_SHA:
                sha = inc.commit_sha.lower()
                hits = shipped(sha)
                if hits:
                    # the first deployment that shipped it
                    target = min(hits, key=lambda i: (by_id[i].finished, i))
            if target is not None:
                mark(target, "incident")
                incident_dep[inc.id] = target
            continue
        # rule 2: the team's latest successful deployment before the incident, within window
        i = bisect.bisect_left(finishes, inc.started) - 1
        if i >= 0:
            d = ok[i]
            if d.finished < inc.started and inc.started - d.finished <= window:
                mark(d.id, "incident")
                incident_dep[inc.id] = d.id

    # rule 3a: rolled back by a later deployment of a strict ancestor within the window
    for d in ok:
        if d.rolled_back_at is not None and timedelta(0) <= d.rolled_back_at - d.finished <= window:
            mark(d.id, "rollback")

    # rule 3b: a PR it contains is reverted (titled Revert "<title>", or from the head branch
    # revert-<number>-...) within the window; only the titles and numbers the reverts name
    # are indexed
    reverts = list(reverts)
    named_titles: dict[int, set[str]] = {}
    named_numbers: dict[int, set[int]] = {}
    for rv in reverts:
        inner = rv.reverted_title
        if inner is not None:
            named_titles.setdefault(rv.repository_id, set()).add(inner)
        number = rv.reverted_number
        if number is not None:
            named_numbers.setdefault(rv.repository_id, set()).add(number)
    titles: dict[tuple[int, str], list[int]] = {}
    numbers: dict[tuple[int, int], list[int]] = {}
    if named_titles or named_numbers:
        no_titles: set[str] = set()
        no_numbers: set[int] = set()
        for d in ok:
            repo = d.repository_id
            repo_titles = named_titles.get(repo, no_titles)
            repo_numbers = named_numbers.get(repo, no_numbers)
            if not repo_titles and not repo_numbers:
                continue
            for pr in contained.get(d.id, ()):
                if pr.title in repo_titles:
                    titles.setdefault((repo, pr.title), []).append(d.id)
                if pr.number is not None and pr.number in repo_numbers:
                    numbers.setdefault((repo, pr.number), []).append(d.id)
    for rv in reverts:
        hit: set[int] = set()
        inner = rv.reverted_title
        if inner is not None:
            hit.update(titles.get((rv.repository_id, inner), ()))
        number = rv.reverted_number
        if number is not None:
            hit.update(numbers.get((rv.repository_id, number), ()))
        for dep_id in sorted(hit):
            d = by_id[dep_id]
            if d.finished <= rv.merged and rv.merged - d.finished <= window:
                mark(dep_id, "revert")

    return Attribution({k: frozenset(v) for k, v in reasons.items()}, incident_dep)


def change_failure_rate(
    runs: Sequence[DeploymentFacts], attribution: Attribution, period: Period
) -> MetricValue:
    """Failed / successful production deployments finished in the period."""
    in_period = [d for d in runs if period.contains(d.finished)]
    ok = [d for d in in_period if d.succeeded]
    unsuccessful = len(in_period) - len(ok)
    failed = [d for d in ok if d.id in attribution.failed]
    breakdown = {
        "failed": len(failed),
        "by_incident": sum(1 for d in failed if "incident" in attribution.failed[d.id]),
        "by_rollback": sum(1 for d in failed if "rollback" in attribution.failed[d.id]),
        "by_revert": sum(1 for d in failed if "revert" in attribution.failed[d.id]),
        "deploy_failure_share": unsuccessful / len(in_period) if in_period else None,
    }
    if not ok:
        return MetricValue(0, None, breakdown=breakdown)
    return MetricValue(len(ok), len(failed) / len(ok), breakdown=breakdown)


# --- restore --------------------------------------------------------------------------------


def time_to_restore(incidents: Iterable[IncidentFacts], period: Period) -> MetricValue:
    durations = [
        max(0.0, (i.resolved - i.started).total_seconds())
        for i in incidents
        if i.resolved is not None and period.contains(i.resolved)
    ]
    s = summarise(durations)
    if s.n == 0:
        return NO_DATA
    return MetricValue(s.n, s.p50, s.p50, s.p75, s.p90)


def recovery_time(
    incidents: Iterable[IncidentFacts],
    attribution: Attribution,
    finished: Mapping[int, datetime],
    period: Period,
) -> MetricValue:
    """Failed deployment recovery time: incident resolved minus its deployment's finish."""
    durations = []
    for inc in incidents:
        dep = attribution.incident_deployment.get(inc.id)
        if dep is None or inc.resolved is None or not period.contains(inc.resolved):
            continue
        durations.append(max(0.0, (inc.resolved - finished[dep]).total_seconds()))
    s = summarise(durations)
    if s.n == 0:
        return NO_DATA
    return MetricValue(s.n, s.p50, s.p50, s.p75, s.p90)


# --- sprints --------------------------------------------------------------------------------


def _basis(items: Sequence[SprintItemFacts]) -> str:
    return "points" if items and all(i.points is not None for i in items) else "items"


def _weight(item: SprintItemFacts, basis: str) -> float:
    return float(item.points or 0.0) if basis == "points" else 1.0


def predictability(items: Sequence[SprintItemFacts]) -> MetricValue:
    committed = [i for i in items if i.committed]
    sprints = len({i.sprint_id for i in items})
    if not committed:
        return MetricValue(0, None, breakdown={"sprints": sprints} if sprints else None)
    basis = _basis(committed)
    total = sum(_weight(i, basis) for i in committed)
    done = sum(_weight(i, basis) for i in committed if i.completed)
    value = done / total if total else None
    return MetricValue(
        len(committed) if value is not None else 0,
        value,
        breakdown={"sprints": sprints, "basis": basis, "committed": total, "completed": done},
    )


def scope_creep(items: Sequence[SprintItemFacts]) -> MetricValue:
    committed = [i for i in items if i.committed]
    added = [i for i in items if i.added and not i.committed]
    if not committed:
        return NO_DATA
    basis = _basis(committed + added)
    total = sum(_weight(i, basis) for i in committed)
    extra = sum(_weight(i, basis) for i in added)
    if not total:
        return NO_DATA
    return MetricValue(
        len(committed),
        extra / total,
        breakdown={"basis": basis, "committed": total, "added": extra},
    )
