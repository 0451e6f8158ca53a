"""A scheduler process on a simulated clock, for the multi-process tests.

    python -m tests.scheduler_worker --db URL --slack URL --config PATH \\
        --start ISO --end ISO --t0 EPOCH --speed N [--grace-hours H] [--ttl-hours H]

Simulated time is ``start + (time.time() - t0) * speed``, so several workers started with the
same ``t0`` share one timeline. The worker runs the real :class:`SchedulerService` (lease,
catch-up, digests, reminders) at every step of that clock until ``end``, then exits 0.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import UTC, datetime, timedelta

from bot.scheduler.jobs import SchedulerOptions
from bot.scheduler.posting import RetryPolicy, SlackPoster
from bot.scheduler.service import SchedulerService
from bot.settings import Settings, load_config
from bot.store.session import make_engine, session_factory
from tests.fakes.slack import BOT_TOKEN


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--db", required=True)
    p.add_argument("--slack", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--start", required=True)
    p.add_argument("--end", required=True)
    p.add_argument("--t0", type=float, required=True)
    p.add_argument("--speed", type=float, required=True)
    p.add_argument("--grace-hours", type=float, default=72)
    p.add_argument("--ttl-hours", type=float, default=24)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    start = datetime.fromisoformat(a.start).astimezone(UTC)
    end = datetime.fromisoformat(a.end).astimezone(UTC)

    def clock() -> datetime:
        return (start + timedelta(seconds=(time.time() - a.t0) * a.speed)).replace(microsecond=0)

    ttl = timedelta(hours=a.ttl_hours)
    options = SchedulerOptions(
        grace=timedelta(hours=a.grace_hours), lease_ttl=ttl, claim_ttl=ttl, sync_every=None
    )
    engine = make_engine(a.db)
    poster = SlackPoster(
        BOT_TOKEN, a.slack, policy=RetryPolicy(backoff=0.01, max_backoff=0.05, pace=0.0)
    )
    config = load_config(a.config)
    service = SchedulerService(
        Settings(database_url=a.db),
        session_factory(engine),
        config,
        poster,
        options=options,
        clock=clock,
    )
    print(f"holder {service.holder}", flush=True)
    while clock() <= end:
        service.tick()
        time.sleep(0.002)
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
