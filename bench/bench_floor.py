"""Benchmark: one KPI value against the floor, a single SQL query of the same population.

    python bench/bench_floor.py [--db PATH | --database-url URL [--schema S]] [--reuse]
                                [--repeat 5]

On the store of ``bench_reports.py`` (built unless ``--reuse`` finds it; PostgreSQL: see
``bench/benchdb.py``), for the busiest team and the last 7, 28 and 90 days it times

- the KPI value as a surface asks for it: a fresh session and ``TeamEngine``, one
  ``value("cycle-time", period)`` (loading included);
- the floor: one SQL query of the same population (the team's PRs merged in the period into
  its repositories' default branches, not by bots) returning the timestamps cycle time is made
  of, and their median in Python (SQLite has no ``percentile_cont``).

It checks that both give the same n and p50, then prints the median times and their ratio
(target: at most 5x), and the ratio of the best runs (less sensitive to other work on the
machine). Exit status 1 when a median ratio misses the target or the values differ.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import bench_reports as br  # noqa: E402
import benchdb  # noqa: E402
from sqlalchemy import and_, select  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from bot.metrics.engine import TeamEngine  # noqa: E402
from bot.metrics.patterns import BotFilter  # noqa: E402
from bot.metrics.periods import Period, rolling  # noqa: E402
from bot.metrics.stats import percentile  # noqa: E402
from bot.settings import TeamConfig  # noqa: E402
from bot.store.models import PullRequest, Repository  # noqa: E402
from bot.store.session import make_engine, session_factory  # noqa: E402

WINDOWS = (7, 28, 90)
Value = tuple[int, float | None]  # n, p50
RATIO_TARGET = 5.0


def engine_value(factory: sessionmaker[Session], team: TeamConfig, period: Period) -> Value:
    with factory() as s:
        mv = TeamEngine(s, team).value("cycle-time", period)
    return mv.n, mv.value


def floor_value(factory: sessionmaker[Session], team: TeamConfig, period: Period) -> Value:
    """One query: the period's merged PRs into the default branch, with their timestamps."""
    start = period.start.replace(tzinfo=None)
    end = period.end.replace(tzinfo=None)
    bots = BotFilter(team.bot_patterns)
    q = (
        select(
            PullRequest.author_login,
            PullRequest.first_commit_at,
            PullRequest.created_at,
            PullRequest.merged_at,
        )
        .join(
            Repository,
            and_(
                Repository.id == PullRequest.repository_id,
                Repository.default_branch == PullRequest.base_branch,
            ),
        )
        .where(
            Repository.full_name.in_(team.repos),
            PullRequest.merged_at >= start,
            PullRequest.merged_at < end,
            PullRequest.author_is_bot.is_(False),
        )
    )
    with factory() as s:
        rows = s.connection().execute(q).all()
    cycles = []
    for login, first_commit, created, merged in rows:
        if bots(login):
            continue
        first = min(first_commit or created, created, merged)
        cycles.append((merged - first).total_seconds())
    cycles.sort()
    return len(cycles), percentile(cycles, 0.5)


def timed(
    fn: Callable[[sessionmaker[Session], TeamConfig, Period], Value],
    factory: sessionmaker[Session],
    team: TeamConfig,
    period: Period,
) -> tuple[float, Value]:
    t0 = time.perf_counter()
    out = fn(factory, team, period)
    return time.perf_counter() - t0, out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    benchdb.add_arguments(ap, Path(tempfile.gettempdir()) / "kpibot-bench.db")
    ap.add_argument("--repeat", type=int, default=11, help="runs per figure (default: 11)")
    args = ap.parse_args(argv)
    args.teams, args.prs, args.deployments, args.incidents = 50, 200_000, 20_000, 2_000
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    store = br.ensure_database(args)
    br.tune_gc()  # as every kpibot process does when it starts
    try:
        engine = make_engine(store.url)
        factory = session_factory(engine)
        configs = br.team_configs(args.teams)
        with factory() as s:
            team = br.busiest_team(s, configs)
        print(f"\n{store.label}; team {team.name}, cycle time, median of {args.repeat} run(s)")
        print(benchdb.speed_line())
        print(
            f"  {'window':<8} {'n':>5} {'KPI value':>10} {'SQL floor':>10} {'ratio':>7} "
            f"{'best runs':>10}"
        )
        ok = True
        for days in WINDOWS:
            period = rolling(days, br.ANCHOR, team.zone)
            engine_value(factory, team, period)  # warm-up: statement caches, pool
            floor_value(factory, team, period)
            kpi, floor = [], []
            for _ in range(args.repeat):  # alternately, so that other work hits both alike
                kpi.append(timed(engine_value, factory, team, period))
                floor.append(timed(floor_value, factory, team, period))
            t_kpi = statistics.median(t for t, _ in kpi)
            t_floor = statistics.median(t for t, _ in floor)
            (n, value), (fn, fvalue) = kpi[-1][1], floor[-1][1]
            ratio = t_kpi / t_floor
            best = min(t for t, _ in kpi) / min(t for t, _ in floor)
            same = n == fn and value == fvalue
            good = same and ratio <= RATIO_TARGET
            ok = ok and good
            print(
                f"  {days:>3} days {n:>6} {t_kpi * 1000:>8.1f} ms {t_floor * 1000:>7.1f} ms "
                f"{ratio:>6.1f}x {best:>9.1f}x  target <= {RATIO_TARGET:g}x "
                f"{'PASS' if good else 'FAIL'}"
                + ("" if same else f"  (values differ: {n}/{value} vs {fn}/{fvalue})")
            )
        engine.dispose()
    finally:
        store.drop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
