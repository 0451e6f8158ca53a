"""Benchmark: the working-agreement check of every team over the 200,000-PR organisation.

    python bench/bench_agreements.py [--db PATH | --database-url URL [--schema S]] [--reuse]
                                     [--teams 50] [--prs 200000] [--repeat 3]

Builds (or with ``--reuse`` reuses) the synthetic organisation of ``bench/bench_reports.py``
(``bench/benchdb.py`` for where it lives), gives every team the three working agreements
(``first_review_within: 4h``, ``pr_size_under: 400``, ``open_pr_idle_for: 3d``; every third
team in business hours), then times full passes of the scheduler's check
(``bot.reports.agreements.check_team`` for each team: the open PRs with their reviews and
files, the rule, the breach rows written). The first pass inserts every breach, the later
ones find them stored. Prints each figure with its target and PASS/FAIL (exit status 1 when
one fails). Target: a pass over 50 teams under 5 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import bench_reports as org  # noqa: E402
import benchdb  # noqa: E402
from sqlalchemy import delete, func, select  # noqa: E402

from bot.reports.agreements import check_team  # noqa: E402
from bot.settings import Agreements, TeamConfig, WorkingHours  # noqa: E402
from bot.store.models import AgreementBreach, PullRequest  # noqa: E402
from bot.store.session import make_engine, session_factory  # noqa: E402

TARGET_SECONDS = 5.0
AGREED = Agreements(first_review_within=4 * 3600, pr_size_under=400, open_pr_idle_for=3 * 86400)


def configs(n: int) -> list[TeamConfig]:
    out = []
    for i, team in enumerate(org.team_configs(n)):
        hours = WorkingHours() if i % 3 == 0 else None
        out.append(replace(team, agreements=AGREED, working_hours=hours))
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    benchdb.add_arguments(ap, Path(tempfile.gettempdir()) / "kpibot-bench-agreements.db")
    ap.add_argument("--teams", type=int, default=50)
    ap.add_argument("--prs", type=int, default=200_000)
    ap.add_argument("--deployments", type=int, default=20_000)
    ap.add_argument("--incidents", type=int, default=2_000)
    ap.add_argument("--repeat", type=int, default=3, help="steady-state passes (median counts)")
    args = ap.parse_args(argv)
    if args.teams < 1 or args.prs < 1 or args.repeat < 1:
        ap.error("--teams, --prs and --repeat must be positive")
    return args


def one_pass(factory: object, teams: list[TeamConfig]) -> tuple[float, int]:
    now = org.ANCHOR_NAIVE
    found = 0
    t0 = time.perf_counter()
    for team in teams:
        with factory() as s:  # type: ignore[operator]
            found += len(check_team(s, team, now))
            s.commit()
    return time.perf_counter() - t0, found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    store = org.ensure_database(args)
    org.tune_gc()  # as every kpibot process does when it starts
    try:
        engine = make_engine(store.url)
        factory = session_factory(engine)
        teams = configs(args.teams)
        with factory() as s:
            s.execute(delete(AgreementBreach))  # a reused store starts without breaches
            s.commit()
            open_prs = s.scalar(
                select(func.count()).select_from(PullRequest).where(PullRequest.state == "open")
            )
        print(f"\n{store.label}")
        print(f"{args.teams} teams, {open_prs:,} open PRs; now = {org.ANCHOR:%Y-%m-%d %H:%M}Z")
        first, found = one_pass(factory, teams)
        print(f"  first pass (every breach new)  {first:7.2f} s   {found:,} breaches")
        steady = []
        for _ in range(args.repeat):
            seconds, again = one_pass(factory, teams)
            assert again == found
            steady.append(seconds)
        median = statistics.median(steady)
        print(f"  later pass (median of {args.repeat})     {median:7.2f} s")
        with factory() as s:
            rows = s.scalar(select(func.count()).select_from(AgreementBreach))
        print(f"  breach rows stored             {rows:,}")
        figures = [
            org.Figure("first check of every team", first, "s", TARGET_SECONDS),
            org.Figure("later check of every team (median)", median, "s", TARGET_SECONDS),
        ]
        print()
        for fig in figures:
            print(fig.line())
        engine.dispose()
        return 0 if all(f.ok for f in figures) else 1
    finally:
        store.drop()


if __name__ == "__main__":
    sys.exit(main())
