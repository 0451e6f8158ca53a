"""Benchmark: KPI reports over a large synthetic organisation, in SQLite or PostgreSQL.

    python bench/bench_reports.py [--db PATH | --database-url URL [--schema S]] [--reuse]
                                  [--teams 50] [--prs 200000] [--deployments 20000]
                                  [--incidents 2000] [--repeat 3] [--profile] [--monorepo]

``--database-url postgresql://...`` builds and measures in a schema of its own, never in
``public`` (``bench/benchdb.py``: dropped at the end, or kept as ``kpibot_bench`` with
``--reuse``).

1. Builds (deterministically, from a seeded ``random.Random``) an organisation of teams in
   various IANA time zones, each with a few repositories, about twelve months of pull requests
   (reviews incl. bot reviews and dismissed approvals, per-file sizes incl. lock and generated
   files, first-commit times, drafts), production deployments with the PRs they contain,
   rollbacks, incidents (linked and unlinked) and sprints. The schema comes from the Alembic
   migrations, so the real indexes are measured. The build runs in a child process so that its
   memory does not count towards the report process's peak.
2. Measures one ``build_card`` per KPI for the busiest team (a fresh ``TeamEngine`` per KPI),
   for the last 28 days and the last complete month; every KPI of every team (one engine per
   team, as a digest does), in this process and then in ``--workers`` report worker processes
   side by side (``ReportWorkers.map``, as a scheduler pass computes its digests); and the
   peak resident memory of the measuring process and of the largest worker.
   Each figure is printed with its target and PASS/FAIL; the exit status is 1 when one fails.

``--profile`` prints a cProfile of the slowest single report and of the all-teams pass.

``--monorepo`` puts every team's PRs into one repository, ``bench-org/monorepo``, each team
defined by its paths (``services/<team>/**``, ``libs/<team>-sdk/**``; one PR in twenty also
touches another team's folder) and deploying its own service (``production-<team>``): the
PRs each team counts are selected once when the store is built, as a sync does, and the
targets are 0.5 s for one report and 20 s for all teams.
"""

from __future__ import annotations

import argparse
import bisect
import cProfile
import io
import itertools
import math
import multiprocessing
import pstats
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import Connection, Engine, Table, func, select, text, update  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from bot.chat import workers  # noqa: E402
from bot.chat.workers import ReportWorkers, default_count  # noqa: E402
from bot.ingest.rules import FirstReviews, ReviewRow, counted_lines, first_reviews  # noqa: E402
from bot.metrics.engine import TeamEngine  # noqa: E402
from bot.metrics.patterns import PathFilter  # noqa: E402
from bot.metrics.periods import Period, last_complete_month, rolling  # noqa: E402
from bot.metrics.registry import METRICS, Target  # noqa: E402
from bot.renderers import format as fmt  # noqa: E402
from bot.reports.cards import MetricCard, build_card  # noqa: E402
from bot.runtime import tune_gc  # noqa: E402
from bot.settings import Config, TeamConfig  # noqa: E402
from bot.store import pr_summary  # noqa: E402
from bot.store.migrate import current_revision, head_revision, upgrade  # noqa: E402
from bot.store.models import (  # noqa: E402
    Deployment,
    DeploymentPullRequest,
    Incident,
    PullRequest,
    PullRequestFile,
    Repository,
    Review,
    Sprint,
    SprintItem,
    Team,
    TeamPullRequest,
    TeamRepository,
)
from bot.store.session import make_engine, session_factory  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
import benchdb  # noqa: E402
from benchdb import BenchStore  # noqa: E402

from bot.store import population  # noqa: E402
from bot.store.teams import sync_teams  # noqa: E402

# --- fixed parameters of the synthetic organisation ----------------------------------------

SEED = 20261120
ANCHOR = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)  # "now" for the data and the reports
ANCHOR_NAIVE = ANCHOR.replace(tzinfo=None)
SPAN_DAYS = 365
# PRAGMA user_version written when a build completes (``--reuse`` trusts only such files)
BUILD_MARK = 0x6B7062  # "kpb"
CHUNK = 10_000

ZONES = (
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "America/Los_Angeles",
    "Europe/London",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Sao_Paulo",
    "Asia/Kathmandu",
    "America/St_Johns",
    "Pacific/Auckland",
    "Africa/Lagos",
    "Asia/Singapore",
    "Europe/Helsinki",
    "America/Chicago",
)
# repository kinds of every team, their share of the team's PRs, and file extensions
REPO_KINDS = ("api", "web", "worker", "infra")
REPO_WEIGHTS = (0.4, 0.3, 0.2, 0.1)
EXTENSIONS = {"api": ".py", "web": ".tsx", "worker": ".go", "infra": ".tf"}
LOCK_FILES = {
    "api": "poetry.lock",
    "web": "package-lock.json",
    "worker": "go.sum",
    "infra": "charts/app/Chart.lock",
}
MODULES = ("core", "billing", "auth", "search", "ui", "jobs", "db", "util", "notify", "reports")
WORDS = ("handler", "model", "client", "view", "service", "schema", "config", "cache", "job")
VERBS = ("Add", "Fix", "Refactor", "Update", "Remove", "Speed up", "Document", "Harden")
# (login, provider says bot)
BOT_AUTHORS = (
    ("dependabot[bot]", True),
    ("renovate[bot]", True),
    ("github-actions[bot]", True),
    ("snyk-bot", False),
)
REVIEW_BOTS = (("coderabbitai[bot]", True), ("copilot-pull-request-reviewer", False))
H = 3600.0
DAY = 86400.0


# --- the team configuration (a pure function of the team count) -------------------------------


def team_name(i: int) -> str:
    return f"team-{i:02d}"


MONOREPO = "bench-org/monorepo"


def repo_names(i: int) -> tuple[str, ...]:
    return tuple(f"bench-org/{team_name(i)}-{kind}" for kind in REPO_KINDS)


def team_folders(i: int) -> tuple[str, ...]:
    """A team's folders in the monorepo."""
    return (f"services/{team_name(i)}/", f"libs/{team_name(i)}-sdk/")


def team_configs(n_teams: int, monorepo: bool = False) -> tuple[TeamConfig, ...]:
    """Teams with their zones and some of the per-team settings real configurations use
    (with ``monorepo``: all in one repository, each defined by its folders)."""
    out = []
    for i in range(n_teams):
        kw: dict[str, Any] = {}
        if monorepo:  # its folders, and its service's production environment
            kw["paths"] = tuple(f"{folder}**" for folder in team_folders(i))
            kw["production_environments"] = (f"production-{team_name(i)}",)
        if i % 5 == 0:
            kw["exclude_authors"] = ("release-robot",)
        if i % 4 == 1:
            kw["ignore_paths"] = ("docs/**",)
        if i % 10 == 3:
            kw["branches"] = ("main", "master", "release/*")
        if i % 6 == 5:
            kw["dora_edition"] = 2021
        if i % 7 == 2:
            kw["targets"] = {"cycle-time": Target("<", 48 * H)}
        if i % 8 == 4:
            kw["attribution_window"] = 48 * H
        repos = (MONOREPO,) if monorepo else repo_names(i)
        out.append(TeamConfig(name=team_name(i), timezone=ZONES[i % len(ZONES)], repos=repos, **kw))
    return tuple(out)


# --- building -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildParams:
    store: BenchStore
    teams: int
    prs: int
    deployments: int
    incidents: int
    monorepo: bool = False


@dataclass
class MergedPR:
    id: int
    merged: datetime
    merge_sha: str


@dataclass
class TeamPlan:
    index: int
    config: TeamConfig
    team_id: int
    repo_ids: list[int]
    default_branch: dict[int, str]
    weight: float
    devs: list[str]
    dev_weights: list[float]
    # repository id -> merged PRs into the default branch, by merge time
    merged: dict[int, list[MergedPR]] = field(default_factory=dict)
    merged_count: dict[int, int] = field(default_factory=dict)
    # successful production deployments: (finished, id, sha)
    shipped: list[tuple[datetime, int, str]] = field(default_factory=list)
    shipped_prs: list[str] = field(default_factory=list)  # merge SHAs of deployed PRs

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.config.timezone)


def allocate(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder)."""
    s = sum(weights)
    raw = [total * w / s for w in weights]
    out = [math.floor(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda k: raw[k] - out[k], reverse=True)
    for k in order[: total - sum(out)]:
        out[k] += 1
    return out


def secs(x: float) -> timedelta:
    return timedelta(seconds=max(1, int(x)))


def lognorm(rng: random.Random, median: float, sigma: float) -> float:
    return rng.lognormvariate(math.log(median), sigma)


def sha(rng: random.Random) -> str:
    return f"{rng.getrandbits(160):040x}"


def work_moment(rng: random.Random, zone: ZoneInfo, weekend_share: float = 0.1) -> datetime:
    """A moment (naive UTC) in the span, mostly on working days around the middle of the day."""
    first = (ANCHOR - timedelta(days=SPAN_DAYS)).astimezone(zone).date()
    while True:
        day = first + timedelta(days=rng.randrange(SPAN_DAYS + 1))
        if day.weekday() >= 5 and rng.random() > weekend_share:
            continue
        hour = min(23.99, max(0.0, rng.gauss(13.0, 2.6)))
        local = datetime.combine(day, dtime(), tzinfo=zone) + timedelta(hours=hour)
        t = local.astimezone(UTC).replace(tzinfo=None, microsecond=0)
        if ANCHOR_NAIVE - timedelta(days=SPAN_DAYS) <= t < ANCHOR_NAIVE:
            return t


def any_moment(rng: random.Random) -> datetime:
    return ANCHOR_NAIVE - secs(rng.uniform(1, SPAN_DAYS * DAY))


class Sink:
    """Buffers rows for one table and inserts them with executemany, in chunks."""

    def __init__(self, conn: Connection, table: Table) -> None:
        self.conn = conn
        self.table = table
        self.rows: list[dict[str, Any]] = []
        self.count = 0

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)

    def flush(self) -> None:
        for i in range(0, len(self.rows), CHUNK):
            self.conn.execute(self.table.insert(), self.rows[i : i + CHUNK])
        self.count += len(self.rows)
        self.rows = []


def table(model: Any) -> Table:
    t = model.__table__
    assert isinstance(t, Table)
    return t


class Builder:
    def __init__(self, engine: Engine, params: BuildParams) -> None:
        self.engine = engine
        self.p = params
        self.plans: list[TeamPlan] = []
        self.next_pr = 1
        self.next_review = 1
        self.next_file = 1
        self.next_deployment = 1
        self.numbers: dict[int, int] = {}  # repository id -> its last PR number
        self.ignored = PathFilter(pr_summary.DEFAULT_PATHS)  # the stored sizes' paths
        self.t0 = time.perf_counter()

    def log(self, msg: str) -> None:
        print(f"  [{time.perf_counter() - self.t0:6.1f}s] {msg}", flush=True)

    def rng(self, *parts: object) -> random.Random:
        return random.Random("-".join(str(p) for p in (SEED, *parts)))

    def build(self) -> None:
        configs = team_configs(self.p.teams, self.p.monorepo)
        with Session(self.engine) as s:
            ids = sync_teams(s, Config(configs, path="bench"))
            s.commit()
            repos = {
                r.full_name: r.id for r in s.execute(select(Repository.id, Repository.full_name))
            }
            # a few repositories still on "master"
            master = [rid for name, rid in repos.items() if hash_of(name) % 7 == 0]
            s.execute(
                update(Repository).where(Repository.id.in_(master)).values(default_branch="master")
            )
            s.commit()
        rng = self.rng("teams")
        for i, tc in enumerate(configs):
            weight = rng.uniform(0.5, 1.5)
            n_devs = max(4, round(18 * weight))
            repo_ids = [repos[n] for n in tc.repos]
            self.plans.append(
                TeamPlan(
                    index=i,
                    config=tc,
                    team_id=ids[tc.name],
                    repo_ids=repo_ids,
                    default_branch={rid: "master" if rid in master else "main" for rid in repo_ids},
                    weight=weight,
                    devs=[f"dev{i:02d}-{k:02d}" for k in range(n_devs)],
                    dev_weights=[rng.paretovariate(2.0) for _ in range(n_devs)],
                )
            )
        self.log(f"{len(configs)} teams, {len(repos)} repositories")
        self.pull_requests()
        if self.p.monorepo:
            t0 = time.perf_counter()
            with Session(self.engine) as s:
                rows = population.refresh(s, configs)
                s.commit()
            self.log(
                f"PRs each team counts selected by paths: {rows:,} rows for {len(configs)} "
                f"teams in {time.perf_counter() - t0:.1f}s"
            )
        self.deployments()
        self.incidents()
        self.sprints()
        if self.engine.dialect.name == "sqlite":
            with self.engine.connect() as conn:
                conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        else:
            self.after_postgresql_build()
        with self.engine.begin() as conn:
            self.p.store.write_mark(conn, BUILD_MARK)
        self.log("done")

    def after_postgresql_build(self) -> None:
        """Rows were inserted with explicit ids: move the sequences past them, and give the
        planner statistics (as autovacuum would, later)."""
        with self.engine.begin() as conn:
            for model in (
                PullRequest,
                PullRequestFile,
                Review,
                Deployment,
                Incident,
                Sprint,
                SprintItem,
            ):
                name = table(model).name
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"coalesce((SELECT max(id) FROM {name}), 1))"
                    )
                )
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        self.log("sequences set, VACUUM ANALYZE done")

    # --- pull requests, files, reviews ---------------------------------------------------

    def pull_requests(self) -> None:
        counts = allocate(self.p.prs, [t.weight for t in self.plans])
        with self.engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.execute(text("PRAGMA synchronous = OFF"))
            prs = Sink(conn, table(PullRequest))
            files = Sink(conn, table(PullRequestFile))
            reviews = Sink(conn, table(Review))
            for plan, n in zip(self.plans, counts, strict=True):
                self.team_prs(plan, n, prs, files, reviews)
                prs.flush()
                files.flush()
                reviews.flush()
                if (plan.index + 1) % 10 == 0 or plan.index + 1 == len(self.plans):
                    self.log(
                        f"pull requests: {plan.index + 1}/{len(self.plans)} teams, "
                        f"{prs.count:,} PRs, {files.count:,} files, {reviews.count:,} reviews"
                    )

    def team_prs(self, plan: TeamPlan, n: int, prs: Sink, files: Sink, reviews: Sink) -> None:
        rng = self.rng("prs", plan.index)
        zone = plan.zone
        weights = REPO_WEIGHTS[: len(plan.repo_ids)]
        created = sorted(
            (work_moment(rng, zone), rng.choices(plan.repo_ids, weights=weights)[0])
            for _ in range(n)
        )
        titles: dict[int, list[str]] = {rid: [] for rid in plan.repo_ids}
        plan.merged = {rid: [] for rid in plan.repo_ids}
        for at, rid in created:
            number = self.numbers[rid] = self.numbers.get(rid, 0) + 1
            kind = REPO_KINDS[plan.repo_ids.index(rid)]
            self.one_pr(plan, rng, rid, kind, number, at, titles[rid], prs, files, reviews)
        for rid in plan.repo_ids:
            plan.merged[rid].sort(key=lambda m: (m.merged, m.id))
            plan.merged_count[rid] = len(plan.merged[rid])

    def one_pr(
        self,
        plan: TeamPlan,
        rng: random.Random,
        rid: int,
        kind: str,
        number: int,
        created: datetime,
        titles: list[str],
        prs: Sink,
        files: Sink,
        reviews: Sink,
    ) -> None:
        pr_id = self.next_pr
        self.next_pr += 1
        full_name = plan.config.repos[plan.repo_ids.index(rid)]
        # author: mostly the team's developers, sometimes a bot
        r = rng.random()
        author_is_bot = False
        if r < 0.05:
            author, author_is_bot = rng.choice(BOT_AUTHORS)
        elif r < 0.06 and plan.config.exclude_authors:
            author = "release-robot"  # a bot only by the team's own pattern
        else:
            author = rng.choices(plan.devs, weights=plan.dev_weights)[0]
        bot_pr = author_is_bot or author.endswith("-bot") or author == "release-robot"
        # title, sometimes a revert of a recent PR of the repository
        if titles and rng.random() < 0.006:
            title = f'Revert "{rng.choice(titles[-20:])}"'
        else:
            title = f"{rng.choice(VERBS)} {rng.choice(MODULES)} {rng.choice(WORDS)} (#{number})"
        titles.append(title)
        # timeline
        r = rng.random()
        if r < 0.05:
            first_commit: datetime | None = None
        elif r < 0.08:
            first_commit = created + secs(rng.uniform(60, 3600))  # later than created
        else:
            first_commit = created - secs(lognorm(rng, 3 * H, 1.4))
        was_draft = not bot_pr and rng.random() < 0.2
        ready = created + secs(lognorm(rng, 4 * H, 1.0)) if was_draft else None
        start = ready or created
        age = (ANCHOR_NAIVE - created).total_seconds()
        merged: datetime | None = start + secs(lognorm(rng, 16 * H, 1.1))
        closed: datetime | None = None
        r = rng.random()
        if (age < 7 * DAY and r < 0.5) or r < 0.02:
            merged = None
        elif r < 0.07:
            closed, merged = start + secs(lognorm(rng, 2 * DAY, 1.0)), None
        assert merged is None or merged > start
        if merged is not None and merged >= ANCHOR_NAIVE:
            merged = None
        if closed is not None and closed >= ANCHOR_NAIVE:
            closed = None
        if ready is not None and ready >= ANCHOR_NAIVE:
            ready = None
        state = "merged" if merged else "closed" if closed else "open"
        is_draft = state == "open" and was_draft and (ready is None or rng.random() < 0.1)
        if is_draft:
            ready = None
        r = rng.random()
        if r < 0.93:
            base = plan.default_branch[rid]
        elif r < 0.97:
            base = "develop"
        else:
            base = f"release/{rng.randint(1, 9)}.{rng.randint(0, 20)}"
        merge_sha = sha(rng) if merged else None
        # files
        folders: tuple[str, ...] = ()
        if self.p.monorepo:  # the team's folder; one PR in twenty touches another team's
            folders = (rng.choice(team_folders(plan.index)),)
            if rng.random() < 0.05:
                folders += (rng.choice(team_folders(rng.randrange(self.p.teams))),)
        adds_total, dels_total, n_files, lines = self.pr_files(
            rng, pr_id, kind, bot_pr, files, folders
        )
        labels = rng.choice((None, None, "bug", "feature", "chore,deps"))
        summary = self.pr_reviews(plan, rng, pr_id, author, created, ready, merged, reviews)
        prs.add(
            {
                "id": pr_id,
                "repository_id": rid,
                "number": number,
                "provider_id": f"PR_{pr_id}",
                "title": title,
                "url": f"https://github.com/{full_name}/pull/{number}",
                "author_login": author,
                "author_is_bot": author_is_bot,
                "state": state,
                "is_draft": is_draft,
                "was_draft": was_draft,
                "created_at": created,
                "ready_at": ready,
                "first_commit_at": first_commit,
                "merged_at": merged,
                "closed_at": merged or closed,
                "updated_at": merged or closed or created,
                "merge_commit_sha": merge_sha,
                "base_branch": base,
                "head_branch": f"{author.split('[')[0]}/change-{number}",
                "additions": adds_total,
                "deletions": dels_total,
                "changed_files": n_files,
                "labels": labels,
                "first_review_at": summary.review_at,
                "first_review_by": summary.review_by,
                "first_approval_at": summary.approval_at,
                "first_approval_by": summary.approval_by,
                "counted_lines": lines,
            }
        )
        if merged is not None and merge_sha is not None and base == plan.default_branch[rid]:
            plan.merged[rid].append(MergedPR(pr_id, merged, merge_sha))

    def pr_files(
        self,
        rng: random.Random,
        pr_id: int,
        kind: str,
        bot_pr: bool,
        files: Sink,
        folders: tuple[str, ...] = (),
    ) -> tuple[int, int, int, int | None]:
        """Adds the PR's files; returns its additions, deletions, file count and counted lines
        as the store keeps them (the rule of ``bot.store.pr_summary``; None: no file rows)."""
        ext = EXTENSIONS[kind]
        paths: dict[str, tuple[int, int, bool]] = {}
        if bot_pr:
            paths[LOCK_FILES[kind]] = (
                int(lognorm(rng, 300, 1.0)),
                int(lognorm(rng, 250, 1.0)),
                False,
            )
            paths["pyproject.toml" if kind == "api" else "package.json"] = (1, 1, False)
        else:
            n = min(12, 1 + int(rng.expovariate(1 / 2.0)))
            for _ in range(n):
                module = rng.choice(MODULES)
                word = rng.choice(WORDS)
                r = rng.random()
                if r < 0.25:
                    path = f"tests/{module}/test_{word}{ext}"
                elif r < 0.30:
                    path = f"docs/{module}/{word}.md"
                else:
                    path = f"src/{module}/{word}{ext}"
                paths[path] = (int(lognorm(rng, 22, 1.2)), int(lognorm(rng, 7, 1.4)), False)
            r = rng.random()
            if r < 0.08:
                paths[LOCK_FILES[kind]] = (
                    int(lognorm(rng, 400, 1.0)),
                    int(lognorm(rng, 200, 1.0)),
                    False,
                )
            elif r < 0.11:
                paths[f"gen/proto/{rng.choice(WORDS)}.pb.go"] = (
                    int(lognorm(rng, 600, 0.8)),
                    50,
                    True,
                )
            elif r < 0.13:
                paths[f"vendor/github.com/acme/{rng.choice(WORDS)}/lib.go"] = (800, 20, False)
            elif r < 0.14:
                paths["web/dist/bundle.min.js"] = (1, 1, False)
            elif r < 0.16:
                paths[f"src/__snapshots__/{rng.choice(WORDS)}.test.tsx.snap"] = (120, 80, False)
        if folders and not bot_pr:  # a monorepo: the code sits in the teams' folders
            paths = {
                (rng.choice(folders) if n else folders[-1]) + path: v
                for n, (path, v) in enumerate(paths.items())
            }
        adds = sum(a for a, _, _ in paths.values())
        dels = sum(d for _, d, _ in paths.values())
        if rng.random() < 0.03:  # files never fetched: the PR's own totals stand in
            return adds, dels, len(paths), None
        for path, (a, d, generated) in paths.items():
            files.add(
                {
                    "id": self.next_file,
                    "pull_request_id": pr_id,
                    "path": path,
                    "additions": a,
                    "deletions": d,
                    "generated": generated,
                }
            )
            self.next_file += 1
        lines = counted_lines(
            ((pr_id, path, a, d, g) for path, (a, d, g) in paths.items()), self.ignored
        )
        return adds, dels, len(paths), lines.get(pr_id)

    def pr_reviews(
        self,
        plan: TeamPlan,
        rng: random.Random,
        pr_id: int,
        author: str,
        created: datetime,
        ready: datetime | None,
        merged: datetime | None,
        reviews: Sink,
    ) -> FirstReviews:
        """Adds the PR's reviews; returns its first review and approval as the store keeps
        them (the rule of ``bot.store.pr_summary``, which every write applies)."""
        out: list[tuple[str, bool, str, datetime | None, bool, datetime | None]] = []
        others = [d for d in plan.devs if d != author]

        def human() -> str:
            return rng.choice(others)

        start = ready or created
        end = merged or min(ANCHOR_NAIVE, start + secs(lognorm(rng, 3 * DAY, 1.0)))
        if end <= start:
            end = start + timedelta(seconds=1)
        span = (end - start).total_seconds()
        # bots review first and never count
        if rng.random() < 0.3:
            login, is_bot = REVIEW_BOTS[0]
            out.append((login, is_bot, "COMMENTED", created + secs(120), False, None))
        if rng.random() < 0.1:
            login, is_bot = REVIEW_BOTS[1]
            out.append((login, is_bot, "COMMENTED", created + secs(300), False, None))
        if rng.random() < 0.02:
            out.append(("github-actions[bot]", True, "APPROVED", created + secs(400), False, None))
        if rng.random() < 0.05:  # the author answering in a review
            out.append((author, False, "COMMENTED", start + secs(span * 0.1), False, None))
        if ready is not None and rng.random() < 0.1:  # feedback while still a draft
            out.append((human(), False, "COMMENTED", created + (ready - created) / 2, False, None))
        if rng.random() < 0.02:
            out.append((human(), False, "PENDING", None, False, None))
        reviewed = (merged is not None and rng.random() >= 0.04) or (
            merged is None and rng.random() < 0.5
        )
        if reviewed:
            first = start + secs(span * rng.betavariate(1.2, 3.0))
            first = min(first, end)
            r = rng.random()
            if r < 0.25:
                out.append(
                    (
                        human(),
                        False,
                        rng.choice(("COMMENTED", "CHANGES_REQUESTED")),
                        first,
                        False,
                        None,
                    )
                )
                approve_at = first + secs((end - first).total_seconds() * rng.uniform(0.3, 0.95))
            else:
                approve_at = first
            r = rng.random()
            if r < 0.06:
                pass  # never approved
            elif r < 0.10:  # approval dismissed (by a later push), sometimes approved again
                dismissed_at = approve_at + secs(rng.uniform(60, 3 * H))
                state = "APPROVED" if rng.random() < 0.5 else "DISMISSED"
                out.append((human(), False, state, approve_at, True, dismissed_at))
                if rng.random() < 0.6:
                    again = min(dismissed_at + secs(rng.uniform(60, 2 * H)), end)
                    out.append((human(), False, "APPROVED", again, False, None))
            elif r < 0.11 and merged is not None:  # approved only after the merge
                out.append(
                    (human(), False, "APPROVED", merged + secs(rng.uniform(60, DAY)), False, None)
                )
            else:
                out.append((human(), False, "APPROVED", approve_at, False, None))
        kept: list[ReviewRow] = []
        for login, is_bot, state, at, dismissed, dismissed_at in out:
            if at is not None and at >= ANCHOR_NAIVE:
                continue
            kept.append((pr_id, login, is_bot, state, at, dismissed))
            reviews.add(
                {
                    "id": self.next_review,
                    "pull_request_id": pr_id,
                    "provider_id": f"PRR_{self.next_review}",
                    "author_login": login,
                    "author_is_bot": is_bot,
                    "state": state,
                    "submitted_at": at,
                    "dismissed": dismissed,
                    "dismissed_at": dismissed_at
                    if dismissed_at and dismissed_at < ANCHOR_NAIVE
                    else None,
                }
            )
            self.next_review += 1
        kept.sort(key=lambda r: (r[4] is None, r[4] or ANCHOR_NAIVE))  # stable: then by id
        found = first_reviews(kept, {pr_id: author.lower()}, pr_summary.DEFAULT_BOTS)
        return found.get(pr_id, FirstReviews())

    # --- deployments and their contents ----------------------------------------------------

    def deployments(self) -> None:
        repos = [(plan, rid) for plan in self.plans for rid in plan.repo_ids]
        counts = allocate(
            self.p.deployments, [max(1, plan.merged_count[rid]) for plan, rid in repos]
        )
        per_repo = dict(zip([rid for _, rid in repos], counts, strict=True))
        with self.engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.execute(text("PRAGMA synchronous = OFF"))
            deps = Sink(conn, table(Deployment))
            links = Sink(conn, table(DeploymentPullRequest))
            for plan in self.plans:
                for rid in plan.repo_ids:
                    self.repo_deployments(plan, rid, per_repo[rid], deps, links)
                plan.shipped.sort()
                deps.flush()
                links.flush()
            self.log(f"deployments: {deps.count:,} deployments, {links.count:,} PR links")

    def repo_deployments(self, plan: TeamPlan, rid: int, n: int, deps: Sink, links: Sink) -> None:
        # in a monorepo every team deploys its own service of the one repository
        rng = (
            self.rng("deployments", rid, plan.index)
            if self.p.monorepo
            else self.rng("deployments", rid)
        )
        finishes = sorted({work_moment(rng, plan.zone, weekend_share=0.05) for _ in range(n)})
        merged = plan.merged[rid]
        cursor = 0
        prev_ok = False
        rows: list[dict[str, Any]] = []
        ok_rows: list[dict[str, Any]] = []
        for finished in finishes:
            r = rng.random()
            env = "staging" if r < 0.10 else "prod" if r < 0.12 else "production"
            if self.p.monorepo and env != "staging":  # each team's service of the monorepo
                env = plan.config.production_environments[0]
            r = rng.random()
            if env == "staging":
                status = "success" if r < 0.95 else "failure"
            else:
                status = (
                    "success"
                    if r < 0.90
                    else "failure"
                    if r < 0.96
                    else "error"
                    if r < 0.985
                    else "cancelled"
                )
            started = finished - secs(rng.uniform(4 * 60, 40 * 60))
            dep_id = self.next_deployment
            self.next_deployment += 1
            commit = sha(rng)
            if env != "staging" and status == "success":
                # contents: the default-branch PRs merged since the previous successful
                # production deployment (the first one: in the 7 days before it)
                if not prev_ok:
                    lo = finished - timedelta(days=7)
                    while cursor < len(merged) and merged[cursor].merged < lo:
                        cursor += 1
                contained = []
                while cursor < len(merged) and merged[cursor].merged <= started:
                    contained.append(merged[cursor])
                    cursor += 1
                prev_ok = True
                if contained:
                    commit = contained[-1].merge_sha
                for m in contained:
                    links.add({"deployment_id": dep_id, "pull_request_id": m.id})
                    plan.shipped_prs.append(m.merge_sha)
                plan.shipped.append((finished, dep_id, commit))
            row = {
                "id": dep_id,
                "repository_id": rid,
                "source": "github-deployments",
                "provider_id": str(dep_id),
                "environment": env,
                "commit_sha": commit,
                "status": status,
                "started_at": started,
                "finished_at": finished,
                "url": None,
                "contents_computed_at": ANCHOR_NAIVE if env != "staging" else None,
                "rolled_back_at": None,
            }
            rows.append(row)
            if env != "staging" and status == "success":
                ok_rows.append(row)
        # a few deployments rolled back by the next successful one
        for a, b in itertools.pairwise(ok_rows):
            if rng.random() < 0.02 and b["finished_at"] - a["finished_at"] <= timedelta(days=30):
                a["rolled_back_at"] = b["finished_at"]
        for row in rows:
            deps.add(row)

    # --- incidents ------------------------------------------------------------------------

    def incidents(self) -> None:
        counts = allocate(self.p.incidents, [t.weight for t in self.plans])
        next_id = 1
        with self.engine.begin() as conn:
            sink = Sink(conn, table(Incident))
            for plan, n in zip(self.plans, counts, strict=True):
                rng = self.rng("incidents", plan.index)
                finishes = [f for f, _, _ in plan.shipped]
                for _ in range(n):
                    started = any_moment(rng)
                    resolved: datetime | None = started + secs(lognorm(rng, 50 * 60, 1.3))
                    if resolved is not None and (resolved >= ANCHOR_NAIVE or rng.random() < 0.01):
                        resolved = None
                    dep_id: int | None = None
                    commit: str | None = None
                    r = rng.random()
                    k = bisect.bisect_left(finishes, started) - 1
                    if r < 0.30 and k >= 0:
                        dep_id = plan.shipped[k][1]
                    elif r < 0.40 and k >= 0:
                        commit = plan.shipped[k][2][: rng.choice((7, 12, 40))]
                    elif r < 0.45 and plan.shipped_prs:
                        commit = rng.choice(plan.shipped_prs)[:10]
                    sink.add(
                        {
                            "id": next_id,
                            "team_id": plan.team_id,
                            "source": "pagerduty",
                            "provider_id": f"P{next_id:06d}",
                            "title": f"{rng.choice(MODULES)} degraded",
                            "url": None,
                            "started_at": started,
                            "resolved_at": resolved,
                            "deployment_id": dep_id,
                            "commit_sha": commit,
                        }
                    )
                    next_id += 1
            sink.flush()
            self.log(f"incidents: {sink.count:,}")

    # --- sprints --------------------------------------------------------------------------

    def sprints(self) -> None:
        sprint_id = 1
        item_id = 1
        with self.engine.begin() as conn:
            sprints = Sink(conn, table(Sprint))
            items = Sink(conn, table(SprintItem))
            for plan in self.plans:
                rng = self.rng("sprints", plan.index)
                zone = plan.zone
                today = ANCHOR.astimezone(zone).date()
                day = today - timedelta(days=SPAN_DAYS)
                day -= timedelta(days=day.weekday())  # a Monday
                all_points = plan.index % 3 != 0
                k = 0
                while day < today:
                    start = local_utc(day, 10, zone)
                    end_day = day + timedelta(days=14)
                    end = local_utc(end_day, 10, zone)
                    k += 1
                    sprints.add(
                        {
                            "id": sprint_id,
                            "team_id": plan.team_id,
                            "source": "jira",
                            "provider_id": f"{plan.index}-{k}",
                            "name": f"{plan.config.name} sprint {k}",
                            "started_at": start,
                            "ended_at": end,
                            "state": "closed" if end < ANCHOR_NAIVE else "active",
                        }
                    )
                    for j in range(rng.randint(8, 20)):
                        committed = rng.random() < 0.85
                        points = rng.choice((1.0, 2.0, 3.0, 5.0, 8.0))
                        items.add(
                            {
                                "id": item_id,
                                "sprint_id": sprint_id,
                                "key": f"T{plan.index}-{k}-{j}",
                                "title": f"{rng.choice(VERBS)} {rng.choice(MODULES)}",
                                "committed": committed,
                                "added": not committed,
                                "removed": rng.random() < 0.05,
                                "completed": rng.random() < (0.8 if committed else 0.6),
                                "points": points if all_points or rng.random() < 0.9 else None,
                            }
                        )
                        item_id += 1
                    sprint_id += 1
                    day = end_day
            sprints.flush()
            items.flush()
            self.log(f"sprints: {sprints.count:,} sprints, {items.count:,} items")


def local_utc(day: date, hour: int, zone: ZoneInfo) -> datetime:
    local = datetime.combine(day, dtime(hour), tzinfo=zone)
    return local.astimezone(UTC).replace(tzinfo=None)


def hash_of(name: str) -> int:
    """A stable small hash (``hash()`` of a str changes between runs)."""
    return sum((i + 1) * ord(c) for i, c in enumerate(name))


def build_database(params: BuildParams) -> None:
    """Create the schema with Alembic and fill it (runs in a child process)."""
    params.store.create()
    engine = make_engine(params.store.url)
    t0 = time.perf_counter()
    upgrade(engine)
    print(f"  schema created with Alembic in {time.perf_counter() - t0:.1f}s", flush=True)
    Builder(engine, params).build()
    engine.dispose()


# --- measuring ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    name: str
    measured: float
    unit: str
    limit: float

    @property
    def ok(self) -> bool:
        return self.measured < self.limit

    def line(self) -> str:
        return (
            f"  {self.name:<56} {self.measured:>8.3f} {self.unit:<3} "
            f"target < {self.limit:g} {self.unit:<3} {'PASS' if self.ok else 'FAIL'}"
        )


PeriodFor = Callable[[ZoneInfo], Period]

PERIODS: tuple[tuple[str, PeriodFor], ...] = (
    ("last 28 days", lambda zone: rolling(28, ANCHOR, zone)),
    ("last complete month", lambda zone: last_complete_month(ANCHOR, zone)),
)


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def own_peak_rss_mb() -> float:
    """This process's own peak resident memory: on Linux ``VmHWM``, since ``ru_maxrss``
    carries over the peak of the process that forked it (a report worker would report the
    serving process's peak)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


def children_peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def describe(card: MetricCard) -> str:
    return f"n={card.n:<5} {fmt.value(card.kind, card.value)}"


def store_counts(session: Session) -> dict[str, int]:
    out = {}
    for name, model in (
        ("teams", Team),
        ("repositories", Repository),
        ("pull requests", PullRequest),
        ("files", PullRequestFile),
        ("reviews", Review),
        ("deployments", Deployment),
        ("deployment links", DeploymentPullRequest),
        ("incidents", Incident),
        ("sprints", Sprint),
        ("sprint items", SprintItem),
    ):
        out[name] = int(session.scalar(select(func.count()).select_from(model)) or 0)
    return out


def busiest_team(session: Session, configs: Sequence[TeamConfig]) -> TeamConfig:
    """The team with the most PRs merged in the last 8 months (the worst case for a card)."""
    since = ANCHOR_NAIVE - timedelta(days=8 * 31)
    by_name = {c.name: c for c in configs}
    if any(c.selects_prs for c in configs):  # a monorepo: the PRs each team counts
        top = session.execute(
            select(Team.name, func.count())
            .join(TeamPullRequest, TeamPullRequest.team_id == Team.id)
            .where(TeamPullRequest.merged_at >= since)
            .group_by(Team.name)
            .order_by(func.count().desc(), Team.name)
        ).first()
        return by_name[top[0]] if top else configs[0]
    rows = session.execute(
        select(Team.name, func.count(PullRequest.id))
        .join(TeamRepository, TeamRepository.team_id == Team.id)
        .join(PullRequest, PullRequest.repository_id == TeamRepository.repository_id)
        .where(PullRequest.merged_at >= since)
        .group_by(Team.name)
        .order_by(func.count(PullRequest.id).desc(), Team.name)
    ).first()
    return by_name[rows[0]] if rows else configs[0]


def time_card(
    factory: Callable[[], Session], team: TeamConfig, metric_id: str, period: Period
) -> tuple[float, MetricCard]:
    """One report as a slash command makes it: a fresh session and engine, one card."""
    with factory() as session:
        t0 = time.perf_counter()
        card = build_card(TeamEngine(session, team), metric_id, period)
        return time.perf_counter() - t0, card


def single_reports(
    factory: Callable[[], Session], team: TeamConfig, repeat: int
) -> list[tuple[str, str, float]]:
    """(period label, KPI id, median seconds) for every KPI and period of one team."""
    out = []
    for label, period_for in PERIODS:
        period = period_for(team.zone)
        print(f"\n  {team.name} ({team.timezone}), {label}: {period.describe()}")
        for spec in METRICS:
            runs = [time_card(factory, team, spec.id, period) for _ in range(repeat)]
            seconds = statistics.median(t for t, _ in runs)
            card = runs[-1][1]
            print(
                f"    {spec.id:<20} {seconds * 1000:8.1f} ms   "
                f"(min {min(t for t, _ in runs) * 1000:6.1f} ms)   {describe(card)}"
            )
            out.append((label, spec.id, seconds))
    return out


def all_teams(
    factory: Callable[[], Session], configs: Sequence[TeamConfig], period_for: PeriodFor
) -> tuple[float, int, int]:
    """Every KPI of every team, one engine per team reused across its KPIs (as a digest).

    Returns (seconds, cards, cards with data).
    """
    cards = with_data = 0
    t0 = time.perf_counter()
    for tc in configs:
        with factory() as session:
            engine = TeamEngine(session, tc)
            period = period_for(tc.zone)
            for spec in METRICS:
                card = build_card(engine, spec.id, period)
                cards += 1
                with_data += card.status != "no data"
    return time.perf_counter() - t0, cards, with_data


def team_cards(team: TeamConfig, period: Period) -> tuple[int, int]:
    """In a report worker process: every KPI of one team, one engine for all (as
    :func:`all_teams` computes each team). Returns (cards, cards with data)."""
    cards = with_data = 0
    with workers.sessions()() as session:
        engine = TeamEngine(session, team)
        for spec in METRICS:
            card = build_card(engine, spec.id, period)
            cards += 1
            with_data += card.status != "no data"
    return cards, with_data


def all_teams_in_workers(
    pool: ReportWorkers, configs: Sequence[TeamConfig], period_for: PeriodFor
) -> tuple[float, int, int]:
    """:func:`all_teams` in the report worker processes side by side, as the scheduler
    computes a pass's digests (``ReportWorkers.map``, one team per computation)."""
    t0 = time.perf_counter()
    results = pool.map(team_cards, ANCHOR, [(tc, period_for(tc.zone)) for tc in configs])
    seconds = time.perf_counter() - t0
    cards = with_data = 0
    for r in results:
        if isinstance(r, BaseException):
            raise r
        cards += r[0]
        with_data += r[1]
    return seconds, cards, with_data


def profile(title: str, fn: Callable[[], object]) -> None:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(15)
    print(f"\n=== cProfile: {title} ===")
    print(buf.getvalue())


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    benchdb.add_arguments(ap, Path(tempfile.gettempdir()) / "kpibot-bench.db")
    ap.add_argument("--teams", type=int, default=50)
    ap.add_argument("--prs", type=int, default=200_000)
    ap.add_argument("--deployments", type=int, default=20_000)
    ap.add_argument("--incidents", type=int, default=2_000)
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs per single report; the median counts (default: %(default)s)",
    )
    ap.add_argument(
        "--profile",
        action="store_true",
        help="print a cProfile of the slowest report and of the all-teams pass",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=default_count(),
        help="report worker processes of the side-by-side pass (default: one per core, "
        "%(default)s here, as kpibot run starts)",
    )
    ap.add_argument(
        "--monorepo",
        action="store_true",
        help="one repository shared by every team, each team defined by its paths",
    )
    args = ap.parse_args(argv)
    if args.teams < 1 or args.prs < 1 or args.deployments < 0 or args.incidents < 0:
        ap.error("--teams and --prs must be positive, --deployments and --incidents >= 0")
    if args.workers < 1:
        ap.error("--workers must be at least 1")
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    return args


def ensure_database(args: argparse.Namespace) -> BenchStore:
    """The benchmark store the arguments name, built unless ``--reuse`` finds a complete one
    (an SQLite file, or a PostgreSQL schema: see ``bench/benchdb.py``)."""
    store = benchdb.store_of(args)
    monorepo = bool(getattr(args, "monorepo", False))  # only bench_reports.py offers it
    if args.reuse:
        engine = make_engine(store.url)
        try:
            complete = store.read_mark(engine) == BUILD_MARK
            if complete and current_revision(engine) != head_revision(engine):
                print(f"{store.label} was built with an older schema: rebuilding")
            elif complete:
                with Session(engine) as s:
                    n_teams = int(s.scalar(select(func.count()).select_from(Team)) or 0)
                    n_repos = int(s.scalar(select(func.count()).select_from(Repository)) or 0)
                if (n_repos == 1) != monorepo:
                    print(
                        f"{store.label} is not the {'monorepo' if monorepo else 'usual'}"
                        " organisation: rebuilding"
                    )
                elif n_teams == args.teams:
                    print(f"Reusing {store.label} (--reuse)")
                    return store
                print(f"{store.label} holds {n_teams} teams, not {args.teams}: rebuilding")
            else:
                print(f"{store.label} is missing or incomplete: building it")
        finally:
            engine.dispose()
    params = BuildParams(store, args.teams, args.prs, args.deployments, args.incidents, monorepo)
    print(
        f"Building {store.label}: {args.teams} teams, {args.prs:,} PRs, {args.deployments:,} "
        f"deployments, {args.incidents:,} incidents (seed {SEED}, anchor {ANCHOR:%Y-%m-%d %H:%M}Z)"
    )
    t0 = time.perf_counter()
    proc = multiprocessing.get_context("spawn").Process(target=build_database, args=(params,))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        store.drop()
        raise SystemExit(f"building the database failed (exit code {proc.exitcode})")
    print(
        f"Built in {time.perf_counter() - t0:.1f}s "
        f"(builder peak memory {children_peak_rss_mb():.0f} MB, not counted below)"
    )
    return store


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    store = ensure_database(args)
    try:
        return measure(args, store)
    finally:
        store.drop()


def measure(args: argparse.Namespace, store: BenchStore) -> int:
    tune_gc()  # as every kpibot process does when it starts
    configs = team_configs(args.teams, args.monorepo)
    engine = make_engine(store.url)
    factory = session_factory(engine)
    with factory() as s:
        counts = store_counts(s)
        team = busiest_team(s, configs)
    size_mb = store.size_mb(engine)
    print(f"\n{store.label}")
    print(benchdb.speed_line("Machine speed before the reports"))
    print(f"Store ({size_mb:.0f} MB): " + ", ".join(f"{v:,} {k}" for k, v in counts.items()))
    print(
        f"Reports at {ANCHOR:%Y-%m-%d %H:%M}Z; each card computes its period and the 7 before "
        "it (sparkline and trend)."
    )

    # warm-up (imports, connection pool, compiled statement cache), not measured
    time_card(factory, configs[-1], METRICS[0].id, PERIODS[0][1](configs[-1].zone))

    print(
        f"\n1) One report per KPI, busiest team, fresh TeamEngine per KPI, median of "
        f"{args.repeat} run(s)"
    )
    singles = single_reports(factory, team, args.repeat)

    print(f"\n2) Every KPI of all {len(configs)} teams (one TeamEngine per team), in this process")
    totals: list[tuple[str, float]] = []
    for label, period_for in PERIODS:
        seconds, cards, with_data = all_teams(factory, configs, period_for)
        print(f"    {label:<20} {seconds:7.2f} s   {cards} cards, {with_data} with data")
        totals.append((label, seconds))

    pool = ReportWorkers(store.url, Config(tuple(configs)), args.workers)
    try:
        pool.warm_up()
        # each process's first report pays its imports and connection (not measured): as in
        # ``kpibot run``, whose workers have answered commands before a scheduler pass
        pool.map(team_cards, ANCHOR, [(configs[-1], PERIODS[0][1](configs[-1].zone))] * pool.count)
        print(
            f"\n3) The same in {pool.count} report worker processes side by side (as the "
            "scheduler computes a pass's digests)"
        )
        parallel: list[tuple[str, float]] = []
        for label, period_for in PERIODS:
            seconds, cards, with_data = all_teams_in_workers(pool, configs, period_for)
            print(f"    {label:<20} {seconds:7.2f} s   {cards} cards, {with_data} with data")
            parallel.append((label, seconds))
        # each worker's own peak (several asks, so that every process answers at least once)
        worker_rss = max(
            r
            for r in pool.map(own_peak_rss_mb, ANCHOR, [()] * (8 * pool.count))
            if isinstance(r, float)
        )
    finally:
        pool.close()

    if args.profile:
        label, metric_id, _ = max(singles, key=lambda r: r[2])
        period_for = dict(PERIODS)[label]
        profile(
            f"one report: {metric_id}, {label}, {team.name}",
            lambda: time_card(factory, team, metric_id, period_for(team.zone)),
        )
        profile(
            f"all KPIs of all teams, {PERIODS[0][0]}",
            lambda: all_teams(factory, configs, PERIODS[0][1]),
        )

    # the acceptance targets: 200,000 PRs (and fewer), and the largest organisations (800,000)
    card_target, all_target = (0.2, 8.0) if args.prs <= 200_000 else (0.3, 15.0)
    if args.monorepo:
        card_target, all_target = 0.5, 20.0
    figures = []
    for label, _ in PERIODS:
        worst = max((r for r in singles if r[0] == label), key=lambda r: r[2])
        figures.append(
            Figure(f"slowest single report ({label}: {worst[1]})", worst[2], "s", card_target)
        )
    for label, seconds in totals:
        figures.append(
            Figure(
                f"all KPIs x all {len(configs)} teams ({label}), one process",
                seconds,
                "s",
                all_target,
            )
        )
    for label, seconds in parallel:
        figures.append(
            Figure(
                f"all KPIs x all {len(configs)} teams ({label}), {args.workers} workers",
                seconds,
                "s",
                all_target,
            )
        )
    figures.append(Figure("peak memory of this process (ru_maxrss)", peak_rss_mb(), "MB", 500))
    figures.append(Figure("peak memory of a report worker (VmHWM, largest)", worker_rss, "MB", 500))
    engine.dispose()

    print(benchdb.speed_line("\nMachine speed after the reports"))
    print("\nSummary (targets for a 2-core machine)")
    for f in figures:
        print(f.line())
    return 0 if all(f.ok for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
