"""The KPI engine: loads a team's records for a span of time in a few queries, then computes
any KPI for any period inside that span in one pass over the rows.

Nothing here reads the clock: callers pass periods built from their own ``now``.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from operator import attrgetter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.ingest.rules import FirstReviews, counted_lines, first_reviews
from bot.metrics import agreements, bands, lagging, leading
from bot.metrics.agreements import Breach, OpenPR
from bot.metrics.business import BusinessClock
from bot.metrics.lagging import (
    Attribution,
    DeploymentFacts,
    IncidentFacts,
    RevertFacts,
    SprintItemFacts,
)
from bot.metrics.patterns import BotFilter, PathFilter
from bot.metrics.periods import Period
from bot.metrics.registry import BY_ID
from bot.metrics.timeline import PRFacts, Timeline, timeline, with_deployment
from bot.metrics.values import NO_DATA, MetricValue
from bot.settings import TeamConfig
from bot.store import pr_summary
from bot.store import queries as q
from bot.store.models import Deployment

#: the KPIs whose durations count only working time when a team has business hours (the
#: PR-timeline durations; incident times stay calendar time: METRICS.md, Time)
BUSINESS_HOURS_KPIS = frozenset({"cycle-time", "first-review", "lead-time"})
#: the KPIs computed over a population of PRs (the ones exclusions leave PRs out of)
PR_KPIS = frozenset(
    {"cycle-time", "pr-size", "first-review", "review-coverage", "merge-frequency", "lead-time"}
)


@dataclass(frozen=True)
class WaitingPR:
    repository: str
    number: int
    title: str
    url: str | None
    waiting_since: datetime  # naive UTC


def with_deployed_or_size(
    p: PRFacts, deployed: datetime | None = None, size: int | None = None
) -> PRFacts:
    """``dataclasses.replace(p, deployed=..., size=...)`` for the two fields the engine sets
    after loading, built positionally: several times faster than ``replace``'s walk over the
    fields, and a card copies thousands of PRs (``tests/test_store_reads.py`` checks that
    it copies every field)."""
    return PRFacts(
        p.id,
        p.repository_id,
        p.number,
        p.title,
        p.author,
        p.created,
        p.merged,
        p.ready,
        p.first_commit,
        p.first_review,
        p.approved,
        p.deployed if deployed is None else deployed,
        p.size if size is None else size,
    )


_MERGED = attrgetter("merged")
_DEPLOYED = attrgetter("deployed")


class _Sorted:
    """Records sorted by a time key, sliced by period with bisect."""

    def __init__(self, items: Iterable[Any], key: Callable[[Any], datetime]) -> None:
        self.items = sorted(items, key=key)
        self.keys = list(map(key, self.items))

    def between(self, start: datetime, end: datetime) -> list[Any]:
        lo = bisect.bisect_left(self.keys, start)
        hi = bisect.bisect_left(self.keys, end)
        return self.items[lo:hi]


class TeamEngine:
    """Computes KPIs for one team from the store."""

    def __init__(self, session: Session, team: TeamConfig, calendar: bool = False) -> None:
        """``calendar``: count calendar time even where the team has business hours."""
        self.session = session
        self.team = team
        #: the team's business hours, or None for calendar time (METRICS.md, Time)
        self.clock: BusinessClock | None = (
            BusinessClock.of(team.working_hours, team.zone)
            if team.working_hours is not None and not calendar
            else None
        )
        self.repos = q.repositories(session, team.repos)
        self.repo_ids = list(self.repos)
        self.envs = list(team.production_environments)
        self.bots = BotFilter(team.bot_patterns)
        self.paths = PathFilter(team.path_patterns)
        self.branches = PathFilter(team.branches) if team.branches else None
        self.window = timedelta(seconds=team.attribution_window)
        self._span: tuple[datetime, datetime] | None = None
        self._first_deployed_at: datetime | None = None
        self._first_deployed_read = False
        self._loaded: set[str] = set()  # parts of the span loaded so far
        self._merged = _Sorted([], _MERGED)
        self._deployed = _Sorted([], _DEPLOYED)
        self._runs_v: list[DeploymentFacts] = []
        self._runs_from: datetime = datetime.min
        self._incidents_v: list[IncidentFacts] = []
        self._attribution_v = Attribution({}, {})
        self._items_v = _Sorted([], lambda i: i[0])
        self._selection: Any = None  # the PRs of the loaded span, for the file rows
        self._sized: dict[int, int] | None = None  # PR sizes outside ignored paths, on demand
        self._merged_sized: _Sorted | None = None  # the merged PRs with those sizes
        self._labels = frozenset(label.lower() for label in team.exclude_labels)
        self._label_hits: dict[str, bool] = {}  # labels as stored -> an excluding label?
        self._lead_excluded: set[int] | None = None  # PRs a lead excluded, read on first use
        # the excluded PRs of the loaded span, by merge and by first deployment time
        self._excluded_merged = _Sorted([], _MERGED)
        self._excluded_deployed: list[datetime] = []
        # timelines of the loaded span's merged and deployed PRs by PR id, computed once for
        # every KPI and period that reads them (cycle time, first review; lead time)
        self._merged_timelines: dict[int, Timeline] = {}
        self._deployed_timelines: dict[int, Timeline] = {}

    @cached_property
    def team_id(self) -> int | None:
        """The team's row id (None before ``kpibot db upgrade`` stored it): read on first use,
        as only incidents, sprints and action items need it."""
        return q.team_id(self.session, self.team.name)

    # --- loading ---------------------------------------------------------------------------
    #
    # ``prefetch`` sets the span; each part of it (the PRs merged in it, the PRs deployed in
    # it, deployments, incidents, failure attribution, sprint items) is read on the first use
    # of a KPI that needs it, so that one value costs the queries of its own population only.

    def prefetch(self, periods: Iterable[Period]) -> None:
        ps = list(periods)
        if not ps:
            return
        start = min(p.start for p in ps)
        end = max(p.end for p in ps)
        if self._span and self._span[0] <= start and end <= self._span[1]:
            return
        if self._span:
            start, end = min(start, self._span[0]), max(end, self._span[1])
        self._span = (start, end)
        self._loaded = set()
        self._selection, self._sized, self._merged_sized = None, None, None
        self._excluded_merged = _Sorted([], _MERGED)
        self._excluded_deployed = []
        self._merged_timelines, self._deployed_timelines = {}, {}

    def _ensure(self, period: Period) -> None:
        self.prefetch([period])

    def _need(self, part: str) -> None:
        if part in self._loaded or self._span is None:
            return
        start, end = self._span
        match part:
            case "merged":
                self._load_merged(start, end)
            case "deployed":
                self._load_deployed(start, end)
            case "runs":
                self._load_runs(start - self.window, end)
            case "incidents":
                self._load_incidents(start)
            case "attribution":
                self._load_attribution(start, end)
            case "sprints":
                self._load_sprints(start, end)
        self._loaded.add(part)

    @property
    def _runs(self) -> list[DeploymentFacts]:
        """Production deployments from the attribution window before the span (earlier ones
        too once the attribution needed them) to the window after it."""
        self._need("runs")
        return self._runs_v

    @property
    def _incidents(self) -> list[IncidentFacts]:
        self._need("incidents")
        return self._incidents_v

    @property
    def _attribution(self) -> Attribution:
        self._need("attribution")
        return self._attribution_v

    @property
    def _items(self) -> _Sorted:
        self._need("sprints")
        return self._items_v

    def _load_merged(self, start: datetime, end: datetime) -> None:
        """The PRs merged in the span into the team's branches, without bots, by merge time
        (their ``deployed`` stays None: no KPI of this population reads it)."""
        merged: list[PRFacts] = []
        excluded: list[tuple[PRFacts, bool]] = []
        if self.repo_ids:
            self._selection = self._population(start, end)
            facts = self._pr_facts(self._selection, excluded=excluded)
            merged = [f for f, branch_ok in facts if branch_ok]
        self._merged = _Sorted(merged, _MERGED)
        self._excluded_merged = _Sorted([f for f, ok in excluded if ok], _MERGED)

    @cached_property
    def _selected_by(self) -> int | None:
        """The team's row id when it is defined by people or paths (its PRs are the ones kept
        for it in the store), else None (all its repositories' PRs). -1 when such a team is
        not in the store yet: it has no PRs."""
        if not self.team.selects_prs:
            return None
        return self.team_id if self.team_id is not None else -1

    def _population(self, start: datetime, end: datetime) -> q.Selection:
        """Selection: the team's PRs merged in ``[start, end)`` (METRICS.md, *Which PRs are a
        team's*): PRs of its repositories, or, for a team defined by people or paths, those
        the store keeps for it (``bot.store.population``). The base branch and bot rules are
        applied to the rows (``_pr_facts``)."""
        if self._selected_by is not None:
            return q.team_merged_pr_ids(self._selected_by, start, end)
        return q.merged_pr_ids(self.repo_ids, start, end)

    def _load_deployed(self, start: datetime, end: datetime) -> None:
        """The PRs whose first successful production deployment finished in the span, without
        bots, by deployment time.

        Built on the merged population (read first, once for both): the span's deployments
        name their PRs and each one's first deployment; the merged PRs among them are reused,
        and only the others (merged before the span, or into another branch) are read.
        """
        self._need("merged")
        if not self.repo_ids:
            self._deployed = _Sorted([], _DEPLOYED)
            return
        first = dict(
            q.first_deployment_rows(
                self.session, self.repo_ids, self.envs, start, end, self._selected_by
            )
        )
        known = {p.id: p for p in self._merged.items if p.id in first}
        facts = [with_deployed_or_size(p, deployed=first[p.id]) for p in known.values()]
        excluded = [(p, True) for p in self._excluded_merged.items if p.id in first]
        seen = {p.id for p, _ in excluded}
        others = sorted(pr for pr in first if pr not in known and pr not in seen)
        for i in range(0, len(others), 5000):
            facts.extend(
                with_deployed_or_size(f, deployed=first[f.id])
                for f, _ in self._pr_facts(q.pr_ids(others[i : i + 5000]), excluded=excluded)
            )
        facts.sort(key=lambda p: (p.merged, p.id))
        self._deployed = _Sorted(facts, _DEPLOYED)
        # like the population itself, whatever branch they were merged into
        self._excluded_deployed = sorted(first[p.id] for p, _ in excluded)

    def _load_sprints(self, start: datetime, end: datetime) -> None:
        if self.team_id is None:
            return
        self._items_v = _Sorted(
            [
                (
                    r.ended_at,
                    SprintItemFacts(r.sprint_id, r.committed, r.added, r.completed, r.points),
                )
                for r in q.sprint_item_rows(self.session, self.team_id, start, end)
            ],
            lambda i: i[0],
        )

    def _load_runs(self, runs_from: datetime, end: datetime) -> None:
        runs: list[DeploymentFacts] = []
        if self.repo_ids:
            runs = [
                DeploymentFacts(
                    r.id,
                    r.repository_id,
                    r.commit_sha,
                    r.status,
                    r.finished_at,
                    r.rolled_back_at,
                    bool(r.contents_unknown),
                )
                for r in q.deployment_rows(
                    self.session, self.repo_ids, self.envs, runs_from, end + self.window
                )
            ]
        self._runs_v = runs
        self._runs_from = runs_from

    def _load_incidents(self, start: datetime) -> None:
        self._incidents_v = (
            [
                IncidentFacts(r.id, r.started_at, r.resolved_at, r.deployment_id, r.commit_sha)
                for r in q.incident_rows(self.session, self.team_id, start - self.window)
            ]
            if self.team_id is not None
            else []
        )

    def _load_attribution(self, start: datetime, end: datetime) -> None:
        """Which deployments failed (incidents, rollbacks, reverts): the deployments the span's
        incidents can be attributed to, reverts around the span and the PRs deployed."""
        s = self.session
        incidents = self._incidents
        # an incident resolved in the span may have started long before it: load every
        # deployment it can be attributed to (the recovery time needs its finish)
        runs_from = start
        if incidents:
            runs_from = min(runs_from, min(i.started for i in incidents))
        runs_from -= self.window
        linked = {i.deployment_id for i in incidents if i.deployment_id is not None}
        if linked:
            oldest = s.scalar(
                select(func.min(Deployment.finished_at)).where(Deployment.id.in_(linked))
            )
            if oldest is not None:
                runs_from = min(runs_from, oldest)
        if "runs" not in self._loaded or runs_from < self._runs_from:
            self._load_runs(runs_from, end)
            self._loaded.add("runs")
        runs = self._runs_v
        reverts = (
            [
                RevertFacts(r.repository_id, r.title, r.merged_at, r.head_branch)
                for r in q.revert_rows(s, self.repo_ids, start - self.window, end + self.window)
            ]
            if self.repo_ids
            else []
        )
        ok = [d for d in runs if d.succeeded]
        # only the contained PRs the reverts and incidents name can change an attribution
        named = lagging.named_in_contents(incidents, reverts)
        contained: dict[int, list[lagging.ContainedPR]] = defaultdict(list)
        if named and ok:
            ContainedPR = lagging.ContainedPR
            for deployment_id, title, merge_sha, number in q.contained_rows(
                s,
                [d.id for d in ok],
                titles=named.titles,
                numbers=named.numbers,
                shas=named.shas,
                min_sha=lagging.MIN_SHA,
            ):
                contained[deployment_id].append(ContainedPR(title, merge_sha, number))
        self._attribution_v = lagging.attribute_failures(
            ok, incidents, reverts, contained, self.window
        )

    def _branch_ok(self, repository_id: int, base: str) -> bool:
        if self.branches is not None:
            return self.branches(base)
        return base == self.repos[repository_id][1]

    def lead_excluded(self) -> set[int]:
        """The PRs a lead excluded from the team's KPIs, read once."""
        if self._lead_excluded is None:
            tid = self.team_id
            self._lead_excluded = q.excluded_pr_ids(self.session, tid) if tid is not None else set()
        return self._lead_excluded

    def is_excluded(self, pr_id: int, labels: str | None) -> bool:
        """Whether a PR counts for none of the team's KPIs and is never in breach of an
        agreement: it has a label in ``exclude_labels`` (any case) or a lead excluded it
        (METRICS.md, Which PRs are a team's). The one home of that rule."""
        if labels and self._labels:
            hit = self._label_hits.get(labels)
            if hit is None:  # a few distinct label sets among a span's thousands of PRs
                hit = self._label_hits[labels] = any(
                    label.strip().lower() in self._labels for label in labels.split(",")
                )
            if hit:
                return True
        lead = self._lead_excluded
        return pr_id in (lead if lead is not None else self.lead_excluded())

    def _pr_facts(
        self, selection: Any, excluded: list[tuple[PRFacts, bool]] | None = None
    ) -> list[tuple[PRFacts, bool]]:
        """Facts of the selection's non-bot, not excluded merged PRs, each with whether its
        base branch is one of the team's (``deployed`` None: ``_load_deployed`` sets it from
        the span's first deployments). This is where every PR population of the KPIs is
        chosen: the excluded PRs go to ``excluded``, with the same branch flag (the cards count
        them). Their first review and approval are the ones the store keeps with each PR
        (``bot.store.pr_summary``), read again from the reviews where the team's own bot
        patterns name the stored reviewer (``_recheck_reviews``). Rows are unpacked by
        position (``bot.store.queries`` order)."""
        rows = []
        bots, is_excluded, repos = self.bots, self.is_excluded, self.repos
        for r in q.pr_rows(self.session, selection, reviewers=self._own_bots):
            if bots(r[4], r[5]) or r[1] not in repos:  # only the team's repositories' PRs
                continue
            if is_excluded(r[0], r[13]):
                if excluded is not None:
                    excluded.append((self._bare_facts(r), self._branch_ok(r[1], r[10])))
                continue
            rows.append(r)
        if not rows:
            return []
        again = self._recheck_reviews(rows) if self._own_bots else {}
        own_paths = self._own_paths
        out = []
        branch_ok: dict[tuple[int, str], bool] = {}  # by (repository, base branch)
        for (
            pr,
            repository_id,
            number,
            title,
            author,
            _is_bot,
            created,
            ready,
            first_commit,
            merged,
            base,
            additions,
            deletions,
            _labels,
            first_review,
            _review_by,
            approved,
            _approval_by,
            lines,
        ) in rows:
            if again and pr in again:
                first_review, approved = again[pr].review_at, again[pr].approval_at
            if lines is None or own_paths:
                lines = additions + deletions  # until _sizes() leaves out the ignored paths
            facts = PRFacts(
                pr,
                repository_id,
                number,
                title,
                author,
                created,
                merged,
                ready,
                first_commit,
                first_review,
                approved,
                None,
                lines,
            )
            ok = branch_ok.get((repository_id, base))
            if ok is None:
                ok = branch_ok[repository_id, base] = self._branch_ok(repository_id, base)
            out.append((facts, ok))
        return out

    @cached_property
    def _own_bots(self) -> bool:
        """Whether the team's bot rule is not the one the store's review summaries follow
        (it lists ``exclude_authors`` of its own)."""
        return set(self.bots.patterns) != set(pr_summary.DEFAULT_BOTS.patterns)

    @cached_property
    def _own_paths(self) -> bool:
        """Whether the team's ignored paths are not the ones the store's counted lines follow
        (it lists ``ignore_paths`` of its own): its PR sizes are then read from the files."""
        return set(self.paths.patterns) != set(pr_summary.DEFAULT_PATHS)

    def _recheck_reviews(self, rows: list[Any]) -> dict[int, FirstReviews]:
        """For a team with bot patterns of its own: the first review and approval, under its
        rule, of the PRs whose stored first reviewer or approver that rule calls a bot (read
        from their reviews; absent: none left). The other PRs' stored ones are the rule's
        too: leaving out more accounts cannot make a later review the first."""
        # the few distinct reviewers first (a span's thousands of PRs have tens of them)
        named = {r[15] for r in rows} | {r[17] for r in rows}
        bots = self.bots
        called = {login for login in named if login is not None and bots(login, False)}
        if not called:
            return {}
        ids = [r[0] for r in rows if r[15] in called or r[17] in called]
        authors = {r[0]: (r[4] or "").lower() for r in rows}
        found: dict[int, FirstReviews] = {pr: FirstReviews() for pr in ids}
        for i in range(0, len(ids), 5000):
            found.update(
                first_reviews(
                    q.review_rows(self.session, q.pr_ids(ids[i : i + 5000])),
                    {pr: authors[pr] for pr in ids[i : i + 5000]},
                    bots,
                )
            )
        return found

    @staticmethod
    def _bare_facts(r: Any) -> PRFacts:
        """An excluded PR's facts without its reviews: only counted, never measured."""
        return PRFacts(
            r[0], r[1], r[2], r[3], r[4], r[6], r[9], r[7], r[8], None, None, None, r[11] + r[12]
        )

    def excluded(self, metric_id: str, period: Period) -> int:
        """How many PRs the period's population of a PR KPI left out as excluded (0 for the
        KPIs that count no PRs)."""
        if metric_id not in PR_KPIS:
            return 0
        self._ensure(period)
        if metric_id == "lead-time":
            self._need("deployed")
            times = self._excluded_deployed
            return bisect.bisect_left(times, period.end) - bisect.bisect_left(times, period.start)
        self._need("merged")
        return len(self._excluded_merged.between(period.start, period.end))

    def _sizes_for(self, period: Period) -> dict[int, int]:
        self._ensure(period)
        self._need("merged")
        return self._sizes()

    def _sizes(self) -> dict[int, int]:
        """For a team with ``ignore_paths`` of its own (``_sized_prs`` asks only then): the
        counted lines of the loaded merged PRs that have file rows (the others keep their
        totals), from their files. Only PR size needs them: loaded on first use. (Under the
        default paths each PR's size is the one the store keeps, set when the PRs are read.)"""
        if self._sized is None:
            self._sized = (
                counted_lines(q.file_rows(self.session, self._selection), self.paths)
                if self._selection is not None
                else {}
            )
        return self._sized

    # --- populations -----------------------------------------------------------------------

    def merged_prs(self, period: Period) -> list[PRFacts]:
        """The period's population, each PR's ``size`` outside the ignored paths."""
        return self._sized_prs(period)

    def _sized_prs(self, period: Period) -> list[PRFacts]:
        """The period's population with each PR's ``size`` outside the ignored paths."""
        if not self._own_paths:
            return self._merged_unsized(period)  # their sizes are the ones the store keeps
        sizes = self._sizes_for(period)
        if self._merged_sized is None:  # once per span: a card asks for 8 or 9 periods
            # a PR whose files' lines add up to its total keeps its facts: only the others
            # (lines in ignored paths or generated files) are copied with their own size
            self._merged_sized = _Sorted(
                (
                    with_deployed_or_size(p, size=size)
                    if (size := sizes.get(p.id)) is not None and size != p.size
                    else p
                    for p in self._merged.items
                ),
                _MERGED,
            )
        return self._merged_sized.between(period.start, period.end)

    def _merged_unsized(self, period: Period) -> list[PRFacts]:
        """The same PRs, with ``size`` the raw total for a team with ``ignore_paths`` of its
        own: for the KPIs that do not read it, so they skip the file rows."""
        self._ensure(period)
        self._need("merged")
        return self._merged.between(period.start, period.end)

    def _timelines(
        self,
        prs: list[PRFacts],
        known: dict[int, Timeline],
        base: dict[int, Timeline] | None = None,
    ) -> list[Timeline]:
        """The PRs' timelines (with the team's clock), each computed once per loaded span:
        ``known`` is the population's store of them. ``base``: for the deployed PRs, the
        merged PRs' timelines, which only need the deploy phase added."""
        clock = self.clock
        out = []
        for p in prs:
            t = known.get(p.id)
            if t is None:
                b = base.get(p.id) if base is not None else None
                t = known[p.id] = (
                    with_deployment(b, p.deployed, clock)
                    if b is not None and p.deployed is not None
                    else timeline(p, clock)
                )
            out.append(t)
        return out

    def deployed_prs(self, period: Period) -> list[PRFacts]:
        self._ensure(period)
        self._need("deployed")
        return self._deployed.between(period.start, period.end)

    # --- KPIs ------------------------------------------------------------------------------

    def value(self, metric_id: str, period: Period) -> MetricValue:
        self._ensure(period)
        match metric_id:
            case "cycle-time":
                prs = self._merged_unsized(period)
                tls = self._timelines(prs, self._merged_timelines)
                return leading.cycle_time(prs, self.clock, tls)
            case "pr-size":
                return leading.pr_size(self._sized_prs(period))
            case "first-review":
                prs = self._merged_unsized(period)
                tls = self._timelines(prs, self._merged_timelines)
                return leading.first_review(prs, self.clock, tls)
            case "review-coverage":
                return leading.review_coverage(self._merged_unsized(period))
            case "merge-frequency":
                return leading.merge_frequency(self._merged_unsized(period), period.days)
            case "deploy-frequency":
                return lagging.deploy_frequency(
                    (d.finished for d in self._runs if d.succeeded),
                    period,
                    self._first_deployed(),
                )
            case "lead-time":
                prs = self.deployed_prs(period)
                return lagging.lead_time(
                    prs,
                    lagging.unknown_contents(self._runs, period),
                    self.clock,
                    self._timelines(prs, self._deployed_timelines, self._merged_timelines),
                )
            case "change-failure-rate":
                attribution = self._attribution  # first: it reads the deployments it needs
                return lagging.change_failure_rate(self._runs, attribution, period)
            case "mttr":
                return lagging.time_to_restore(self._incidents, period)
            case "recovery-time":
                attribution = self._attribution  # first: it may load earlier deployments
                finished = {d.id: d.finished for d in self._runs}
                return lagging.recovery_time(self._incidents, attribution, finished, period)
            case "predictability":
                return lagging.predictability(self._sprint_items(period))
            case "scope-creep":
                return lagging.scope_creep(self._sprint_items(period))
        raise KeyError(metric_id)

    def time_basis(self, metric_id: str) -> str | None:
        """How ``metric_id``'s durations count time for this team: ``business_hours`` or
        ``calendar`` for a team with working hours (``calendar`` for the KPIs that always
        count it, and with ``calendar=True``); None for a team without them."""
        if self.team.working_hours is None:
            return None
        if self.clock is not None and metric_id in BUSINESS_HOURS_KPIS:
            return "business_hours"
        return "calendar"

    def _first_deployed(self) -> datetime | None:
        """When the team's first recorded successful production deployment finished (for
        deployment frequency's 0: METRICS.md), read once."""
        if not self._first_deployed_read:
            self._first_deployed_read = True
            self._first_deployed_at = (
                self.session.scalar(
                    select(func.min(Deployment.finished_at)).where(
                        Deployment.repository_id.in_(self.repo_ids),
                        Deployment.environment.in_(self.envs),
                        Deployment.status == "success",
                    )
                )
                if self.repo_ids
                else None
            )
        return self._first_deployed_at

    def values(self, metric_id: str, periods: Sequence[Period]) -> list[MetricValue]:
        self.prefetch(periods)
        return [self.value(metric_id, p) for p in periods]

    def _sprint_items(self, period: Period) -> list[SprintItemFacts]:
        self._ensure(period)
        return [i for _, i in self._items.between(period.start, period.end)]

    def band(self, metric_id: str, mv: MetricValue) -> str | None:
        if not BY_ID[metric_id].dora or not mv.has_data or mv.value is None:
            return None
        edition = self.team.dora_edition
        match metric_id:
            case "deploy-frequency":
                return bands.deploy_frequency_band(
                    mv.value,
                    mv.extra.get("deploy_days", 0),
                    mv.extra.get("period_days", 0.0),
                    edition,
                )
            case "lead-time":
                return bands.lead_time_band(mv.value, edition)
            case "change-failure-rate":
                return bands.change_failure_band(mv.value, edition)
            case "mttr":
                return bands.restore_band(mv.value, edition)
        return None

    # --- work waiting now ------------------------------------------------------------------

    def open_prs(self) -> list[OpenPR]:
        """The team's open PRs into its branches as the working agreements read them.

        The last activity is the latest of: opened, ready for review, any non-bot review,
        and the PR's ``updated_at`` (the provider's last change: a commit pushed, a comment,
        also a label or title edit, which the store keeps no finer record of)."""
        if not self.repo_ids:
            return []
        selection = q.open_prs(self.repo_ids, self._selected_by)
        rows = [
            r
            for r in q.open_pr_detail_rows(self.session, selection)
            if self._branch_ok(r.repository_id, r.base_branch)
        ]
        if not rows:
            return []
        authors = {r.id: (r.author_login or "").lower() for r in rows}
        reviews = q.review_rows(self.session, selection)
        first = first_reviews(reviews, authors, self.bots)
        last_review: dict[int, datetime] = {}
        for pr, login, is_bot, _state, submitted, _dismissed in reviews:
            if pr in authors and not self.bots(login, is_bot):
                last_review[pr] = max(last_review.get(pr, submitted), submitted)
        sizes = counted_lines(q.file_rows(self.session, selection), self.paths)
        out = []
        for r in rows:
            activity = [r.created_at, r.ready_at, r.updated_at, last_review.get(r.id)]
            out.append(
                OpenPR(
                    id=r.id,
                    repository=self.repos[r.repository_id][0],
                    number=r.number,
                    title=r.title or "",
                    url=r.url,
                    created=r.created_at,
                    ready=r.ready_at,
                    first_review=first[r.id].review_at if r.id in first else None,
                    last_activity=max(t for t in activity if t is not None),
                    size=sizes.get(r.id, r.additions + r.deletions),
                    draft=bool(r.is_draft),
                    bot=self.bots(r.author_login, r.author_is_bot),
                    excluded=self.is_excluded(r.id, r.labels),
                    author=authors[r.id] or None,
                )
            )
        return out

    def agreement_breaches(self, now: datetime) -> list[Breach]:
        """The team's PRs in breach of its working agreements at ``now`` (naive UTC)."""
        if not self.team.agreements.any:
            return []
        return agreements.breaches(self.open_prs(), self.team.agreements, now, self.clock)

    def waiting_for_review(self, now: datetime, limit: int = 10) -> list[WaitingPR]:
        """Open, non-draft, non-bot, not excluded PRs with no review, waiting longer than the
        target (in business hours for a team with working hours, like first review time)."""
        if not self.repo_ids:
            return []
        target = self.team.target_for("first-review").value
        cutoff = now - timedelta(seconds=target)
        selection = q.open_pr_ids(self.repo_ids, cutoff, self._selected_by)
        rows = [
            r
            for r in q.open_pr_rows(self.session, selection)
            if not self.bots(r.author_login, r.author_is_bot)
            and not self.is_excluded(r.id, r.labels)
        ]
        authors = {r.id: (r.author_login or "").lower() for r in rows}
        reviewed = first_reviews(q.review_rows(self.session, selection), authors, self.bots)
        out = []
        for r in rows:
            since = r.ready_at or r.created_at
            if r.id in reviewed or since >= cutoff:
                continue
            # working time is never longer than calendar time: the cutoff above still holds
            if self.clock is not None and self.clock.seconds(since, now) <= target:
                continue
            out.append(WaitingPR(self.repos[r.repository_id][0], r.number, r.title, r.url, since))
        out.sort(key=lambda w: w.waiting_since)
        return out[:limit]


__all__ = ["NO_DATA", "TeamEngine", "WaitingPR"]
