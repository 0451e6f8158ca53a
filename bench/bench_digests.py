"""Benchmark: the scheduler's digest pass over the 200,000-PR benchmark organisation.

    python bench/bench_digests.py [--db PATH | --database-url URL [--schema S]] [--reuse]
                                  [--subscriptions 500] [--teams 50]

1. Builds (or with ``--reuse`` reuses) the synthetic store of ``bench_reports.py`` (50 teams,
   200,000 PRs, 20,000 deployments, 2,000 incidents, sprints) and brings its schema up to date.
2. Subscribes ``--subscriptions`` channels spread over the teams, half to the weekly leading
   digest and half to the monthly lagging one, with action items for every team.
3. Renders every digest those subscriptions are due (the scheduler renders a team's digest once
   per period and shares it between its channels), then runs the scheduler's whole pass
   (claims, rendering, posting to a loopback fake Slack, recording), then the same pass again
   with the digests computed in ``--workers`` report worker processes side by side (as
   ``kpibot run`` computes them), and prints the times, the slowest digest, the largest
   message and the peak memory. Exit status 1 when a target fails.

The subscriptions, action items and digest runs it adds are removed again at the end.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import bench_reports as br  # noqa: E402
import benchdb  # noqa: E402
from sqlalchemy import delete, select  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from bot.chat.workers import ReportWorkers, default_count  # noqa: E402
from bot.metrics.periods import Period  # noqa: E402
from bot.scheduler.jobs import (  # noqa: E402
    DigestJobs,
    SchedulerOptions,
    digest_in_worker,
    render_digest,
)
from bot.scheduler.posting import RetryPolicy, SlackPoster  # noqa: E402
from bot.settings import Config, TeamConfig  # noqa: E402
from bot.store import subscriptions as subs  # noqa: E402
from bot.store.migrate import upgrade  # noqa: E402
from bot.store.models import ActionItem, DigestRun, DigestSubscription, Team  # noqa: E402
from bot.store.session import make_engine, session_factory  # noqa: E402
from tests.fakes.slack import BOT_TOKEN, FakeSlack  # noqa: E402

NOW = br.ANCHOR  # Friday 2026-11-20 09:30 UTC
CREATED = NOW.replace(tzinfo=None) - timedelta(days=60)
BENCH_USER = "UBENCH000"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    benchdb.add_arguments(ap, Path(tempfile.gettempdir()) / "kpibot-bench.db")
    ap.add_argument("--teams", type=int, default=50)
    ap.add_argument("--prs", type=int, default=200_000)
    ap.add_argument("--deployments", type=int, default=20_000)
    ap.add_argument("--incidents", type=int, default=2_000)
    ap.add_argument("--subscriptions", type=int, default=500)
    ap.add_argument(
        "--workers",
        type=int,
        default=default_count(),
        help="report worker processes of the third pass (default: one per core, %(default)s)",
    )
    args = ap.parse_args(argv)
    if args.subscriptions < 1 or args.teams < 1 or args.workers < 1:
        ap.error("--subscriptions, --teams and --workers must be positive")
    return args


def add_subscriptions(factory: sessionmaker[Session], config: Config, n: int) -> list[int]:
    with factory() as s:
        clean(s)
        ids = dict(s.execute(select(Team.name, Team.id)).tuples().all())
        out = []
        for i in range(n):
            team = config.teams[i % len(config.teams)]
            kind = "weekly" if (i // len(config.teams)) % 2 == 0 else "monthly"
            sub, _ = subs.subscribe(
                s,
                platform="slack",
                channel_id=f"CB{i:08d}",
                team_id=ids[team.name],
                kind=kind,
                created_by=BENCH_USER,
                now=CREATED,
            )
            out.append(sub.id)
        for t, team in enumerate(config.teams):
            for k in range(12):  # open, overdue and completed action items
                s.add(
                    ActionItem(
                        team_id=ids[team.name],
                        opportunity=f"Bench opportunity {k} of {team.name}",
                        resolution="Pairing on reviews, smaller PRs, a review rota",
                        owner=f"UBENCH{t:03d}",
                        due_on=date(2026, 10, 1) + timedelta(days=4 * k),
                        completed_on=date(2026, 10, 3 + k) if k % 3 == 0 else None,
                        kpi=("cycle-time", "first-review", "deploy-frequency", None)[k % 4],
                        baseline_value=3600.0 * (k + 1),
                        created_by=BENCH_USER,
                        created_at=CREATED,
                    )
                )
        s.commit()
        return out


def clean(s: Session) -> None:
    ids = list(
        s.scalars(select(DigestSubscription.id).where(DigestSubscription.created_by == BENCH_USER))
    )
    if ids:
        s.execute(delete(DigestRun).where(DigestRun.subscription_id.in_(ids)))
        s.execute(delete(DigestSubscription).where(DigestSubscription.id.in_(ids)))
    s.execute(delete(ActionItem).where(ActionItem.created_by == BENCH_USER))
    s.commit()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    store = br.ensure_database(args)
    try:
        return measure(args, store)
    finally:
        store.drop()


def measure(args: argparse.Namespace, store: benchdb.BenchStore) -> int:
    br.tune_gc()  # as every kpibot process does when it starts
    engine = make_engine(store.url)
    upgrade(engine)  # a reused build may predate the scheduler's tables
    factory = session_factory(engine)
    config = Config(br.team_configs(args.teams))
    sub_ids = add_subscriptions(factory, config, args.subscriptions)
    options = SchedulerOptions(grace=timedelta(days=40))  # every subscription is due now
    print(
        f"\n{len(sub_ids)} subscriptions over {len(config.teams)} teams "
        f"({len(sub_ids) // 2} weekly, {len(sub_ids) - len(sub_ids) // 2} monthly), at "
        f"{NOW:%Y-%m-%d %H:%M}Z, {store.label}"
    )
    try:
        with FakeSlack() as slack:
            poster = SlackPoster(BOT_TOKEN, slack.api_url, policy=RetryPolicy(pace=0.0))
            jobs = DigestJobs(factory, config, poster, options=options)
            # warm-up, not measured
            with factory() as s:
                t = config.teams[-1]
                render_digest(
                    s,
                    t,
                    "weekly",
                    jobs.schedule_of(_sub(s, sub_ids[-1]), t).period(NOW, t.zone),
                    NOW,
                )

            # 1) rendering every due digest, as the scheduler does (once per team and period)
            with factory() as s:
                active = [a for a in subs.active_subscriptions(s) if a.id in set(sub_ids)]
            distinct: dict[tuple[str, str, str], tuple[TeamConfig, str, Period]] = {}
            for sub in active:
                team = config.team(sub.team)
                sched = jobs.schedule_of(sub, team)
                period = sched.period(sched.latest_fire(NOW, team.zone), team.zone)
                distinct.setdefault((team.name, sub.kind, period.key), (team, sub.kind, period))
            t0 = time.perf_counter()
            slowest = (0.0, "")
            biggest = (0, "")
            for (name, kind, key), (team, _, period) in distinct.items():
                t1 = time.perf_counter()
                with factory() as s:
                    msg = render_digest(s, team, kind, period, NOW)
                took = time.perf_counter() - t1
                slowest = max(slowest, (took, f"{kind} {name} {key}"))
                biggest = max(biggest, (len(msg["blocks"]), f"{kind} {name} {key}"))
                assert len(msg["blocks"]) <= 50 and msg["text"]
            render_s = time.perf_counter() - t0
            print(
                f"\n1) rendered {len(distinct)} distinct digests for {len(active)} subscriptions "
                f"in {render_s:.2f} s (slowest {slowest[0]:.2f} s: {slowest[1]}; "
                f"largest {biggest[0]} blocks: {biggest[1]})"
            )

            # 2) the whole scheduler pass: claim, render, post, record
            t0 = time.perf_counter()
            outcomes = jobs.run_due(NOW)
            pass_s = time.perf_counter() - t0
            posted = sum(o.status == "posted" for o in outcomes)
            print(
                f"2) scheduler pass: {posted} of {len(outcomes)} digests posted to a loopback "
                f"Slack in {pass_s:.2f} s"
            )
            again = jobs.run_due(NOW + timedelta(minutes=1))
            print(f"   a second pass right after posts {len(again)} (exactly once)")

            # 3) the same pass with the digests computed in report worker processes side by
            #    side, as kpibot run (and --mode scheduler) computes them
            with factory() as s:
                s.execute(delete(DigestRun).where(DigestRun.subscription_id.in_(sub_ids)))
                s.commit()
            pool = ReportWorkers(store.url, config, args.workers)
            try:
                pool.warm_up()
                # each process's first digest pays its imports, the chart library's too (not
                # measured: kpibot run's workers are warm by the time a pass is due)
                monthly = [v for v in distinct.values() if v[1] == "monthly"]
                warm = [(monthly or list(distinct.values()))[0]] * pool.count
                pool.map(digest_in_worker, NOW, warm)
                jobs_w = DigestJobs(factory, config, poster, options=options, workers=pool)
                t0 = time.perf_counter()
                outcomes_w = jobs_w.run_due(NOW)
                workers_s = time.perf_counter() - t0
            finally:
                pool.close()
            posted_w = sum(o.status == "posted" for o in outcomes_w)
            print(
                f"3) the same pass, digests computed in {pool.count} report worker processes: "
                f"{posted_w} of {len(outcomes_w)} posted in {workers_s:.2f} s"
            )
    finally:
        with factory() as s:
            clean(s)
        engine.dispose()
    figures = [
        br.Figure("render every digest due (500 subscriptions)", render_s, "s", 60),
        br.Figure("scheduler pass incl. posting and recording", pass_s, "s", 60),
        br.Figure(f"the same pass, digests in {args.workers} report workers", workers_s, "s", 60),
        br.Figure("peak memory of this process (ru_maxrss)", br.peak_rss_mb(), "MB", 500),
    ]
    ok = posted == len(sub_ids) == posted_w and not again
    print("\nSummary (targets for a 2-core machine)")
    for f in figures:
        print(f.line())
    if not ok:
        print("  not every subscription was posted exactly once: FAIL")
    return 0 if ok and all(f.ok for f in figures) else 1


def _sub(s: Session, sub_id: int) -> subs.Subscription:
    return next(x for x in subs.active_subscriptions(s) if x.id == sub_id)


if __name__ == "__main__":
    sys.exit(main())
