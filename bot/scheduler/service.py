"""``kpibot run``'s scheduler: APScheduler jobs around :class:`~bot.scheduler.jobs.DigestJobs`.

Jobs (all in the scheduler's thread pool, each a no-op unless this process holds the lease):

- ``tick`` every ``tick_every``: renew (or take over) the lease, post every digest that is
  due and not yet posted (catch-up after downtime, within the grace window), send due
  reminders, check working agreements every 15 minutes, announce new breaches and post the
  daily roll-ups (:mod:`bot.scheduler.agreements`), and bring the per-subscription jobs in
  line with the database, so that
  ``/kpi subscribe`` and ``unsubscribe`` take effect without a restart;
- ``digest:<id>`` per subscription: a cron trigger on its weekday/day and time in the team's
  time zone;
- ``reminders:<team>`` daily at the reminder time in the team's zone;
- threshold alerts (:mod:`bot.scheduler.alerts`), evaluated and delivered by ``tick``;
- ``sync`` every ``sync_every`` (default hourly), followed by a check of the agreements.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.orm import Session, sessionmaker

from bot.renderers import charts
from bot.renderers.mrkdwn import Links
from bot.scheduler.agreements import AgreementJobs
from bot.scheduler.alerts import AlertJobs
from bot.scheduler.jobs import Clock, DigestJobs, SchedulerOptions, system_clock
from bot.scheduler.lease import Lease, new_holder_id
from bot.scheduler.posting import Poster
from bot.settings import Config, Settings
from bot.store import subscriptions as subs

if TYPE_CHECKING:
    from bot.chat.workers import ReportWorkers

log = logging.getLogger("kpibot.scheduler")


class SchedulerService:
    def __init__(
        self,
        settings: Settings,
        factory: sessionmaker[Session],
        config: Config | Callable[[], Config],
        poster: Poster | Mapping[str, Poster],
        *,
        options: SchedulerOptions | None = None,
        clock: Clock = system_clock,
        holder: str | None = None,
        workers: ReportWorkers | None = None,
    ) -> None:
        self.settings = settings
        self.options = options or SchedulerOptions()
        self.clock = clock
        self.holder = holder or new_holder_id()
        self.lease = Lease(factory, self.holder, ttl=self.options.lease_ttl)
        self.jobs = DigestJobs(
            factory,
            config,
            poster,
            holder=self.holder,
            options=self.options,
            links=Links.of(settings),
            workers=workers,
        )
        self.jobs.keep_alive = lambda: self.lease.acquire(self.clock())
        self.alerts = AlertJobs(
            factory,
            config,
            self.jobs.posters,
            holder=self.holder,
            grace=self.options.grace,
            claim_ttl=self.options.claim_ttl,
            history_margin=self.options.history_margin,
            workers=workers,
        )
        self.agreements = AgreementJobs(
            factory,
            config,
            self.jobs.posters,
            links=Links.of(settings),
            rollup_time=self.options.reminder_time,
            grace=self.options.grace,
            workers=workers,
        )
        self.factory = factory
        self.scheduler: BaseScheduler | None = None
        self._tick_lock = threading.Lock()
        # the monthly digest carries a chart: load the plotting library before it is due
        charts.warm_up_in_background()

    # ------------------------------------------------------------------ work

    def tick(self) -> bool:
        """One pass at the clock's ``now``; False when another process is active."""
        with self._tick_lock:
            now = self.clock()
            try:
                if not self.lease.acquire(now):
                    return False
                self.jobs.run_due(now)
                self.jobs.send_reminders(now)
                self.alerts.run(now)
                self.jobs.send_notices(now)
                self.agreements.run_due(now)
                if self.scheduler is not None:
                    self.refresh_jobs(self.scheduler)
            except Exception:  # a database outage must not stop the scheduler thread
                log.exception("scheduler pass failed; retrying at the next tick")
                return False
            return True

    def fire_digest(self, subscription_id: int) -> None:
        now = self.clock()
        if self.lease.held and self.lease.acquire(now):
            self.jobs.run_due(now, only=[subscription_id])

    def fire_reminders(self) -> None:
        now = self.clock()
        if self.lease.held and self.lease.acquire(now):
            self.jobs.send_reminders(now)

    def fire_sync(self) -> bool:
        """The periodic sync (only in the active scheduler); False when it did not run or failed."""
        now = self.clock()
        if self.lease.held and self.lease.acquire(now):
            ok = self.jobs.sync(self.settings, now)
            try:
                self.agreements.check_all(self.clock())
            except Exception:
                log.exception("checking the working agreements after the sync failed")
            return ok
        return False

    # ---------------------------------------------------------------- APScheduler

    def build(self, *, blocking: bool) -> BaseScheduler:
        sched: BaseScheduler = (
            BlockingScheduler(timezone="UTC") if blocking else BackgroundScheduler(timezone="UTC")
        )
        opts = self.options
        grace = int(opts.grace.total_seconds())
        sched.add_job(
            self.tick,
            IntervalTrigger(seconds=opts.tick_every.total_seconds(), timezone="UTC"),
            id="tick",
            name="lease, catch-up and subscription refresh",
            # at once on start (catch-up); however late the thread pool gets to it
            next_run_time=datetime.now(UTC),
            misfire_grace_time=None,
            max_instances=1,
            coalesce=True,
        )
        if opts.sync_every is not None:
            sched.add_job(
                self.fire_sync,
                IntervalTrigger(seconds=opts.sync_every.total_seconds(), timezone="UTC"),
                id="sync",
                name="incremental sync",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=grace,
            )
        self.scheduler = sched
        self.refresh_jobs(sched)
        return sched

    def refresh_jobs(self, sched: BaseScheduler) -> tuple[int, int]:
        """Add, change and remove per-subscription and reminder jobs; returns (added, removed)."""
        wanted: dict[str, tuple[Callable[..., Any], CronTrigger, tuple[Any, ...], str]] = {}
        config = self.jobs.config
        with self.factory() as s:
            active = subs.active_subscriptions(s)
        for sub in active:
            team = self.jobs._team(sub.team)
            if team is None:
                continue
            sched_ = self.jobs.schedule_of(sub, team)
            trigger = CronTrigger(**sched_.cron_fields(), timezone=team.zone)
            wanted[f"digest:{sub.id}"] = (
                self.fire_digest,
                trigger,
                (sub.id,),
                f"{sub.kind} digest of {sub.team} to {sub.channel_id} "
                f"({sched_.text} {team.timezone})",
            )
        rt = self.options.reminder_time
        for team in config.teams:
            wanted[f"reminders:{team.name}"] = (
                self.fire_reminders,
                CronTrigger(hour=rt.hour, minute=rt.minute, timezone=team.zone),
                (),
                f"action-item reminders of {team.name}",
            )
        have = {j.id: j for j in sched.get_jobs() if j.id.startswith(("digest:", "reminders:"))}
        added = removed = 0
        grace = int(self.options.grace.total_seconds())
        for job_id, (func, trigger, args, name) in wanted.items():
            job = have.get(job_id)
            if job is not None and str(job.trigger) == str(trigger):
                continue
            sched.add_job(
                func,
                trigger,
                args=args,
                id=job_id,
                name=name,
                replace_existing=True,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=grace,
            )
            added += job is None
        for job_id in set(have) - set(wanted):
            sched.remove_job(job_id)
            removed += 1
        if added or removed:
            log.info("scheduler jobs: %s added, %s removed", added, removed)
        return added, removed

    def run(self, *, blocking: bool = True) -> BaseScheduler:
        """Start the scheduler (blocking: until interrupted; then the lease is released)."""
        sched = self.build(blocking=blocking)
        log.info("scheduler %s starting", self.holder)
        if not blocking:
            sched.start()
            return sched
        try:
            sched.start()
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.stop()
        return sched

    def stop(self) -> None:
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        try:
            self.lease.release(self.clock())
        except Exception:
            log.warning("could not release the scheduler lease; it expires by itself")


def grace_from_env(raw: str | None, default: timedelta) -> timedelta:
    """``KPIBOT_DIGEST_GRACE`` (e.g. ``12h``)."""
    if not raw:
        return default
    from bot.settings import parse_duration

    return timedelta(seconds=parse_duration(raw))
