"""The scheduler's jobs: digests on their schedules, daily reminders, the periodic sync.

:class:`DigestJobs` does the work for a given ``now`` (it never reads the clock itself, so
tests drive it through a simulated week); :class:`SchedulerService` runs it under APScheduler
with a clock, holding the :class:`~bot.scheduler.lease.Lease` so that only one process in a
deployment posts.

A digest is due at the latest scheduled moment at or before ``now`` (in the team's zone). It
is posted when that moment is at most ``grace`` ago and no run for (subscription, period)
is settled; later than that it is recorded as skipped with a log line. Every job is
idempotent, so a catch-up pass every ``tick`` both recovers from downtime and backs up the
per-subscription cron jobs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import KpibotError
from bot.metrics.periods import Period
from bot.renderers.charts import Upload
from bot.renderers.mrkdwn import GITHUB_COM, Links
from bot.reports.digests import MonthlyDigest, WeeklyDigest
from bot.scheduler.lease import new_holder_id
from bot.scheduler.notices import SourceNotices
from bot.scheduler.posting import (
    CannotLook,
    ConversationUnavailable,
    PlatformUnavailable,
    Poster,
    PostError,
    reminder_text,
)
from bot.scheduler.schedule import BadSchedule, DailyTime, DigestSchedule, subscription_schedule
from bot.settings import Config, Settings, TeamConfig
from bot.store import digest_runs
from bot.store import subscriptions as subs
from bot.store.models import ActionItem, DigestRun, ReminderRun, Team
from bot.store.session import aware, utc

if TYPE_CHECKING:
    from bot.chat.workers import ReportWorkers

log = logging.getLogger("kpibot.scheduler")

__all__ = ["DigestJobs", "SchedulerOptions", "build_digest", "reminder_text", "render_digest"]

Clock = Callable[[], datetime]
Message = dict[str, Any]


def system_clock() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class SchedulerOptions:
    grace: timedelta = timedelta(hours=12)  # a missed digest is still posted this late
    tick_every: timedelta = timedelta(seconds=30)  # lease renewal and catch-up
    lease_ttl: timedelta = timedelta(seconds=90)  # takeover this long after a holder died
    claim_ttl: timedelta = timedelta(minutes=10)  # an unfinished claim is retried after this
    sync_every: timedelta | None = timedelta(hours=1)  # None: no periodic sync
    reminder_time: DailyTime = field(default_factory=DailyTime)  # 09:00 team time
    history_margin: timedelta = timedelta(hours=1)  # how far before a claim to look in Slack
    reminder_retry: digest_runs.Backoff = field(default_factory=digest_runs.Backoff)


@dataclass(frozen=True)
class Outcome:
    """What happened to one subscription's digest for one period."""

    subscription_id: int
    channel: str
    team: str
    kind: str
    period: str
    # posted | found (an earlier attempt had posted it) | skipped | failed | broken | busy
    # (another process holds the claim) | done (posted before)
    status: str
    ts: str | None = None
    detail: str | None = None
    platform: str = "slack"


@dataclass
class _Renders:
    """Digests rendered in one pass, shared by every subscription of a team."""

    items: dict[tuple[str, str, str, str], Message] = field(default_factory=dict)
    digests: dict[tuple[str, str, str, str], WeeklyDigest | MonthlyDigest] = field(
        default_factory=dict
    )
    charts: dict[tuple[str, str, str, str], tuple[Upload, ...]] = field(default_factory=dict)


def build_digest(
    session: Session, team: TeamConfig, kind: str, period: Period, now: datetime
) -> WeeklyDigest | MonthlyDigest:
    """A team's weekly or monthly digest (the report every platform renders)."""
    from bot.metrics.engine import TeamEngine
    from bot.reports.digests import build_monthly, build_weekly

    engine = TeamEngine(session, team)
    now_naive = utc(now)
    if kind == "weekly":
        return build_weekly(engine, period, now_naive)
    return build_monthly(engine, period, now_naive)


def digest_in_worker(
    team: TeamConfig, kind: str, period: Period
) -> tuple[WeeklyDigest | MonthlyDigest, tuple[Upload, ...]]:
    """In a report worker process: :func:`build_digest` on the worker's store, as of the
    moment the scheduler passed (``ReportWorkers.map``), with its charts drawn."""
    from bot.chat import workers

    with workers.sessions()() as session:
        digest = build_digest(session, team, kind, period, workers.now())
    return digest, digest_charts(digest)


def render_digest(
    session: Session,
    team: TeamConfig,
    kind: str,
    period: Period,
    now: datetime,
    links: Links = GITHUB_COM,
) -> Message:
    """The Slack message (``text`` fallback and ``blocks``) of a team's digest; ``links``: the
    source URLs that may be links (``Links.of(settings)``)."""
    from bot.renderers import blocks

    return blocks.digest(build_digest(session, team, kind, period, now), links)


def digest_charts(digest: WeeklyDigest | MonthlyDigest) -> tuple[Upload, ...]:
    """The charts posted with a digest (into its thread): the monthly digest's DORA chart."""
    if isinstance(digest, MonthlyDigest):
        from bot.renderers import charts

        return (charts.dora_upload(digest.dora, digest.team, digest.edition),)
    return ()


def daily_due(
    factory: sessionmaker[Session],
    config: Config,
    at: DailyTime,
    now: datetime,
    grace: timedelta,
) -> list[tuple[TeamConfig, int, datetime]]:
    """(team, team id, moment) of each stored team whose daily ``at`` (team time) last came at
    most ``grace`` before ``now``."""
    with factory() as s:
        ids = dict(s.execute(select(Team.name, Team.id)).tuples().all())
    out = []
    for team in config.teams:
        team_id = ids.get(team.name)
        if team_id is None:
            continue
        fire = at.latest_fire(now, team.zone)
        if now - fire <= grace:
            out.append((team, team_id, fire))
    return out


class DigestJobs:
    """Digests and reminders through one exactly-once path (claim, post, record), posting
    each subscription's digest, and each owner's reminder, with the
    :class:`~bot.scheduler.posting.Poster` of its platform."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        config: Config | Callable[[], Config],
        poster: Poster | Mapping[str, Poster],
        *,
        holder: str | None = None,
        options: SchedulerOptions | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        links: Links = GITHUB_COM,
        workers: ReportWorkers | None = None,
    ) -> None:
        self.factory = factory
        self.links = links
        # the report worker processes of ``kpibot run``: a pass's digests are computed there
        # side by side (see ``_compute_ahead``); without them, one after the other here
        self.workers = workers
        self._config = config
        # one poster per platform; a single poster serves its own platform
        self.posters: dict[str, Poster] = (
            dict(poster) if isinstance(poster, Mapping) else {poster.platform: poster}
        )
        self.holder = holder or new_holder_id()
        self.options = options or SchedulerOptions()
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._reminded: set[tuple[int, date]] = set()
        self._warned: set[int] = set()
        # called between posts of a long pass: renews the lease; False stops the pass (another
        # process is active now)
        self.keep_alive: Callable[[], bool] | None = None
        self.notices = SourceNotices(self)

    @property
    def config(self) -> Config:
        return self._config() if callable(self._config) else self._config

    # ------------------------------------------------------------------ digests

    def schedule_of(self, sub: subs.Subscription, team: TeamConfig) -> DigestSchedule:
        try:
            return subscription_schedule(sub.kind, sub.schedule, team.digests)
        except BadSchedule as exc:
            log.warning(
                "subscription %s has an unreadable time (%s); using the team's", sub.id, exc
            )
            return subscription_schedule(sub.kind, None, team.digests)

    def _team(self, name: str) -> TeamConfig | None:
        try:
            return self.config.team(name)
        except KpibotError:
            return None

    def run_due(self, now: datetime, only: Iterable[int] | None = None) -> list[Outcome]:
        """Post every digest due at ``now`` (aware); ``only``: these subscription ids."""
        wanted = set(only) if only is not None else None
        with self._lock:
            with self.factory() as s:
                active = subs.active_subscriptions(s)
            if wanted is not None:
                active = [a for a in active if a.id in wanted]
            due: list[tuple[subs.Subscription, TeamConfig, datetime, Period]] = []
            for sub in active:
                team = self._team(sub.team)
                if team is None:
                    if sub.id not in self._warned:
                        self._warned.add(sub.id)
                        log.warning(
                            "subscription %s is for team '%s', which is not in kpibot.yml; "
                            "not posting its digests",
                            sub.id,
                            sub.team,
                        )
                    continue
                sched = self.schedule_of(sub, team)
                fire = sched.latest_fire(now, team.zone)
                if fire < aware(sub.created_at):
                    continue  # due before the channel subscribed
                due.append((sub, team, fire, sched.period(fire, team.zone)))
            with self.factory() as s:
                settled = digest_runs.settled_keys(s, [d[0].id for d in due])
            due = [d for d in due if (d[0].id, d[3].key) not in settled]
            renders = _Renders()
            out: list[Outcome] = []
            if not self._compute_ahead(due, now, renders):
                return out  # another process is active now
            for sub, team, fire, period in due:
                if out and not self._alive():
                    break
                out.append(self._one(sub, team, fire, period, now, renders))
            return out

    def _compute_ahead(
        self,
        due: list[tuple[subs.Subscription, TeamConfig, datetime, Period]],
        now: datetime,
        renders: _Renders,
    ) -> bool:
        """Compute the pass's digests and draw their charts in the report worker processes
        side by side (one per team, kind and period, as ``_message`` shares them), before the
        posts: a pass of many teams takes the time of the slowest worker's share instead of
        the sum, and none of it runs in the process serving the chat apps. A digest that
        fails there is computed again here when it is posted (and fails there as it would).
        False when the lease was lost meanwhile: the pass stops."""
        if self.workers is None:
            return True
        wanted: dict[tuple[str, str, str, str], tuple[TeamConfig, str, Period]] = {}
        for sub, team, fire, period in due:
            if self._past_grace(fire, now) or sub.platform not in self.posters:
                continue  # settled without posting, or not posted by this process
            wanted.setdefault(("", team.name, sub.kind, period.key), (team, sub.kind, period))
        if not wanted:
            return True
        # even one: a digest computed here would hold the interpreter of the process that
        # acknowledges the chat platforms for its whole computation
        alive = True

        def keep_going() -> bool:
            nonlocal alive
            alive = self._alive()
            return alive

        t0 = time.monotonic()
        results = self.workers.map(
            digest_in_worker, now, list(wanted.values()), keep_going=keep_going
        )
        log.info(
            "computed %d digests in %d report worker processes in %.1f s",
            len(wanted),
            self.workers.count,
            time.monotonic() - t0,
        )
        failed = 0
        for key, result in zip(wanted, results, strict=True):
            if isinstance(result, BaseException):
                failed += 1
            else:
                renders.digests[key], renders.charts[key] = result
        if failed and alive:
            log.warning(
                "%d of %d digests failed in the report workers; computing them here",
                failed,
                len(wanted),
            )
        return alive

    def _past_grace(self, fire: datetime, now: datetime) -> bool:
        """Whether a digest due at ``fire`` is too late to post at ``now`` (it is settled
        without posting: skipped, or found where an earlier attempt posted it)."""
        return now - fire > self.options.grace

    def _alive(self) -> bool:
        if self.keep_alive is None or self.keep_alive():
            return True
        log.warning("another scheduler took over; leaving the rest of this pass to it")
        return False

    def _one(
        self,
        sub: subs.Subscription,
        team: TeamConfig,
        fire: datetime,
        period: Period,
        now: datetime,
        renders: _Renders,
    ) -> Outcome:
        late = now - fire
        if self._past_grace(fire, now):
            with self.factory() as s:
                run = digest_runs.digest_run(s, sub.id, period.key)
            if run is None:
                detail = (
                    f"due {fire.isoformat()}, {_hours(late)} h ago, beyond the "
                    f"{_hours(self.options.grace)} h grace window"
                )
                if digest_runs.skip_digest(
                    self.factory, sub.id, period.key, self.holder, now, detail
                ):
                    log.warning(
                        "skipped the %s digest of %s for %s to %s: %s",
                        sub.kind,
                        sub.team,
                        period.key,
                        sub.channel_id,
                        detail,
                    )
                return self._outcome(sub, period, "skipped", detail=detail)
            # an unfinished earlier attempt: settle it (found in Slack, else skipped)
            return self.post(sub, team, period, now, renders=renders, give_up=True)
        return self.post(sub, team, period, now, renders=renders)

    def post(
        self,
        sub: subs.Subscription,
        team: TeamConfig,
        period: Period,
        now: datetime,
        *,
        renders: _Renders | None = None,
        give_up: bool = False,
        manual: bool = False,
    ) -> Outcome:
        """Post one subscription's digest for ``period`` through the exactly-once claim.

        ``give_up``: only settle an earlier attempt (record it posted when the conversation
        has it, else skipped); never post anew. ``manual``: a post asked for by hand, which
        may also post a digest the scheduler skipped.

        Where the platform cannot tell whether an earlier attempt arrived (Teams), that run is
        recorded as skipped rather than posted again, so a digest never appears twice; a post
        by hand (``manual``) of a run settled that way posts it all the same.
        """
        opts = self.options
        poster = self.posters.get(sub.platform)
        if poster is None:  # nothing claimed: a process that can post there will
            detail = f"no poster for {sub.platform} is configured"
            log.warning("not posting subscription %s: %s", sub.id, detail)
            return self._outcome(sub, period, "failed", detail=detail)
        claim = digest_runs.claim_digest(
            self.factory,
            sub.id,
            period.key,
            self.holder,
            now,
            opts.claim_ttl,
            reclaim_skipped=manual,
        )
        if claim is None:
            with self.factory() as s:
                run = digest_runs.digest_run(s, sub.id, period.key)
            status = "busy"
            if run is not None and run.status in digest_runs.DONE:
                status = "done" if run.status == "posted" else "skipped"
            return self._outcome(
                sub,
                period,
                status,
                ts=run.message_ts if run else None,
                detail=run.detail if run else None,
            )
        deadline = self._monotonic() + opts.claim_ttl.total_seconds() * 0.8
        key = f"digest:{sub.id}:{period.key}"
        oldest = _claims_oldest(claim, opts)
        try:
            if give_up:
                ts = poster.find_post(sub.channel_id, key, oldest=oldest, deadline=deadline)
                if ts is None:
                    detail = "an earlier attempt did not finish and the grace window has passed"
                    self._finish(DigestRun, claim, "skipped", now, detail=detail)
                    log.warning(
                        "skipped the %s digest of %s for %s: %s",
                        sub.kind,
                        sub.team,
                        period.key,
                        detail,
                    )
                    return self._outcome(sub, period, "skipped", detail=detail)
                self._finish(DigestRun, claim, "posted", now, ts=ts)
                return self._outcome(sub, period, "found", ts=ts)
            if claim.retry:
                try:
                    ts = poster.find_post(sub.channel_id, key, oldest=oldest, deadline=deadline)
                except CannotLook:
                    if not (manual and claim.prior == "skipped"):
                        raise
                    ts = None  # posted by hand after it was settled as skipped: on purpose
                if ts is not None:
                    self._finish(DigestRun, claim, "posted", now, ts=ts)
                    log.info(
                        "the %s digest of %s for %s was already in %s",
                        sub.kind,
                        sub.team,
                        period.key,
                        sub.channel_id,
                    )
                    return self._outcome(sub, period, "found", ts=ts)
            message, uploads = self._message(poster, sub, team, period, now, renders)
            ts = poster.post(sub.channel_id, message, key=key, deadline=deadline, oldest=oldest)
        except CannotLook:
            detail = (
                f"an earlier attempt may have posted it and {sub.platform} cannot tell; "
                "not posted again so that it cannot appear twice (posting it by hand "
                "once more posts it)"
            )
            self._finish(DigestRun, claim, "skipped", now, detail=detail)
            log.warning(
                "skipped the %s digest of %s for %s to %s: %s",
                sub.kind,
                sub.team,
                period.key,
                sub.channel_id,
                detail,
            )
            return self._outcome(sub, period, "skipped", detail=detail)
        except ConversationUnavailable as exc:
            self._finish(DigestRun, claim, "failed", now, detail=exc.error)
            self._broken(poster, sub, exc.error)
            return self._outcome(sub, period, "broken", detail=exc.error)
        except (PlatformUnavailable, PostError) as exc:
            # unless it is known not to have arrived, the next attempt looks for it first
            status = "unsent" if exc.unsent else "failed"
            self._finish(DigestRun, claim, status, now, detail=str(exc))
            log.error(
                "could not post the %s digest of %s for %s to %s: %s",
                sub.kind,
                sub.team,
                period.key,
                sub.channel_id,
                exc,
            )
            return self._outcome(sub, period, "failed", detail=str(exc))
        except Exception as exc:
            self._finish(DigestRun, claim, "failed", now, detail=f"{type(exc).__name__}: {exc}")
            log.exception("the %s digest of %s for %s failed", sub.kind, sub.team, period.key)
            return self._outcome(sub, period, "failed", detail=str(exc))
        self._finish(DigestRun, claim, "posted", now, ts=ts)
        log.info(
            "posted the %s digest of %s for %s to %s",
            sub.kind,
            sub.team,
            period.key,
            sub.channel_id,
        )
        if uploads:
            self._charts(poster, sub, period, uploads, ts, deadline)
        return self._outcome(sub, period, "posted", ts=ts)

    def _charts(
        self,
        poster: Poster,
        sub: subs.Subscription,
        period: Period,
        uploads: tuple[Upload, ...],
        ts: str,
        deadline: float,
    ) -> None:
        """Upload a digest's charts into its thread. The digest is posted and recorded first:
        a chart that cannot be uploaded is logged and never holds back or repeats the digest."""
        try:
            poster.upload(sub.channel_id, uploads, thread_ts=ts or None, deadline=deadline)
        except (PostError, PlatformUnavailable) as exc:
            log.warning(
                "posted the %s digest of %s for %s to %s without its chart: %s",
                sub.kind,
                sub.team,
                period.key,
                sub.channel_id,
                exc,
            )

    def _message(
        self,
        poster: Poster,
        sub: subs.Subscription,
        team: TeamConfig,
        period: Period,
        now: datetime,
        renders: _Renders | None,
    ) -> tuple[Message, tuple[Upload, ...]]:
        """The digest's message on the poster's platform and its charts: a team's digest is
        built once per pass and rendered once per platform, then shared by every subscription."""
        built_key = ("", team.name, sub.kind, period.key)
        key = (poster.platform, team.name, sub.kind, period.key)
        if renders is not None and key in renders.items:
            return renders.items[key], renders.charts.get(built_key, ())
        digest = renders.digests.get(built_key) if renders is not None else None
        if digest is None:
            with self.factory() as s:
                digest = build_digest(s, team, sub.kind, period, now)
        message = poster.render_digest(digest, self.links)
        uploads = renders.charts.get(built_key) if renders is not None else None
        if uploads is None:
            uploads = digest_charts(digest)
        if renders is not None:
            renders.digests[built_key] = digest
            renders.items[key] = message
            renders.charts[built_key] = uploads
        return message, uploads

    def _finish(
        self,
        model: digest_runs.RunModel,
        claim: digest_runs.Claim,
        status: str,
        now: datetime,
        *,
        ts: str | None = None,
        detail: str | None = None,
    ) -> None:
        if not digest_runs.finish(
            self.factory,
            model,
            claim,
            self.holder,
            status=status,
            now=now,
            message_ts=ts,
            detail=detail,
        ):
            log.warning(
                "run %s was taken over by another process before it was recorded", claim.run_id
            )

    def _broken(self, poster: Poster, sub: subs.Subscription, error: str) -> None:
        reason, note = poster.broken_note(sub, error)
        with self.factory() as s:
            subs.mark_broken(s, sub.id, f"{error}: {reason}")
            s.commit()
        log.error(
            "subscription %s (%s digest of %s to %s) is broken: %s",
            sub.id,
            sub.kind,
            sub.team,
            sub.channel_id,
            reason,
        )
        if note is not None and sub.created_by:
            try:
                poster.dm(sub.created_by, note)
            except (PostError, PlatformUnavailable) as exc:
                log.warning(
                    "could not tell %s that subscription %s is broken: %s",
                    sub.created_by,
                    sub.id,
                    exc,
                )

    @staticmethod
    def _outcome(
        sub: subs.Subscription,
        period: Period,
        status: str,
        *,
        ts: str | None = None,
        detail: str | None = None,
    ) -> Outcome:
        return Outcome(
            sub.id, sub.channel_id, sub.team, sub.kind, period.key, status, ts, detail, sub.platform
        )

    # ---------------------------------------------------------------- reminders

    def send_reminders(self, now: datetime) -> int:
        """DM owners of open action items due tomorrow (or today) or overdue; returns DMs sent.

        Once per owner, team and local day, at ``reminder_time`` team time (or later within
        the grace window).
        """
        sent = 0
        with self._lock:
            due = daily_due(
                self.factory, self.config, self.options.reminder_time, now, self.options.grace
            )
            for team, team_id, fire in due:
                day = fire.astimezone(team.zone).date()
                if (team_id, day) in self._reminded:
                    continue
                with self.factory() as s:
                    items = list(
                        s.scalars(
                            select(ActionItem)
                            .where(
                                ActionItem.team_id == team_id,
                                ActionItem.platform.in_(list(self.posters)),
                                ActionItem.completed_on.is_(None),
                                ActionItem.due_on <= day + timedelta(days=1),
                            )
                            .order_by(ActionItem.owner, ActionItem.due_on, ActionItem.id)
                        )
                    )
                by_owner: dict[tuple[str, str], list[ActionItem]] = {}
                for it in items:
                    by_owner.setdefault((it.platform, it.owner), []).append(it)
                complete = True
                for (platform, owner), owned in by_owner.items():
                    if sent and not self._alive():
                        return sent
                    poster = self.posters[platform]
                    ok = self._remind(poster, team, team_id, owner, owned, day, now)
                    sent += ok is True
                    complete = complete and ok is not None
                if complete:
                    self._reminded.add((team_id, day))
        return sent

    def _remind(
        self,
        poster: Poster,
        team: TeamConfig,
        team_id: int,
        owner: str,
        items: list[ActionItem],
        day: date,
        now: datetime,
    ) -> bool | None:
        """True: sent; False: sent before (or by another process); None: failed."""
        retry = self.options.reminder_retry
        platform = poster.platform
        claim = digest_runs.claim_reminder(
            self.factory,
            team_id,
            owner,
            day,
            self.holder,
            now,
            self.options.claim_ttl,
            retry,
            platform=platform,
        )
        if claim is None:
            # settled (sent or given up), or not yet: being sent elsewhere, or backing off
            settled = digest_runs.reminder_settled(self.factory, team_id, owner, day, platform)
            return False if settled else None
        key = f"reminder:{team_id}:{owner}:{day.isoformat()}"
        message = poster.render_reminder(team.name, items, day)
        oldest = _claims_oldest(claim, self.options)
        try:
            channel = poster.open_dm(owner)
            if claim.retry:
                ts = poster.find_post(channel, key, oldest=oldest)
                if ts is not None:
                    self._finish(ReminderRun, claim, "posted", now, ts=ts)
                    return False
            ts = poster.post(channel, message, key=key, oldest=oldest)
        except (PostError, PlatformUnavailable) as exc:
            for_good = isinstance(exc, PostError) and exc.permanent
            if for_good or retry.exhausted(claim.attempts):
                tries = f"{claim.attempts} attempt{'s' if claim.attempts > 1 else ''}"
                detail = f"gave up after {tries}: {exc}"
                self._finish(ReminderRun, claim, "skipped", now, detail=detail)
                log.warning(
                    "gave up reminding %s of %s action items for %s after %s: %s",
                    owner,
                    team.name,
                    day.isoformat(),
                    tries,
                    exc,
                )
                return False
            status = "unsent" if exc.unsent else "failed"
            self._finish(ReminderRun, claim, status, now, detail=str(exc))
            log.info(
                "could not remind %s of %s action items (attempt %s of %s): %s; trying again in %s",
                owner,
                team.name,
                claim.attempts,
                retry.max_attempts,
                exc,
                _duration(retry.wait(claim.attempts)),
            )
            return None
        self._finish(ReminderRun, claim, "posted", now, ts=ts)
        return True

    # ---------------------------------------------------------------- freshness

    def send_notices(self, now: datetime, *, evaluate: bool = False) -> int:
        """Post the freshness notices owed (``evaluate``: after a sync, apply the rule to
        every source first); returns how many were posted. Never raises for a notice."""
        with self._lock:
            try:
                if evaluate:
                    self.notices.evaluate(now)
                return self.notices.send(now)
            except Exception:
                log.exception("freshness notices failed; retried at the next pass")
                return 0

    # ---------------------------------------------------------------- sync

    def sync(
        self, settings: Settings, now: datetime, out: Callable[[str], None] | None = None
    ) -> bool:
        """Run an incremental sync of every team; False when it failed (it is logged)."""
        try:
            from bot.sources.sync import sync_all
        except ImportError:  # pragma: no cover - a build without the sources
            log.warning("the periodic sync is not available in this build; skipping it")
            return False
        started = time.monotonic()
        try:
            summary = sync_all(
                settings,
                self.factory,
                team=None,
                full=False,
                out=out or (lambda line: log.info("sync: %s", line)),
                config=self.config,
                now=now,
            )
        except KpibotError as exc:  # a setup problem the message explains (GITHUB_TOKEN)
            log.warning("periodic sync: %s", exc)
            self.send_notices(now, evaluate=True)
            return False
        except Exception:
            log.exception("the periodic sync failed; it runs again in the next period")
            self.send_notices(now, evaluate=True)  # sources it left stale still count
            return False
        self.send_notices(now, evaluate=True)
        if summary.github_token_missing is not None:
            log.warning("periodic sync: %s", summary.github_token_missing)
        for problem in [*summary.problems, *(f"{r.repo}: {r.error}" for r in summary.failed)]:
            log.warning("periodic sync: %s (retried in the next period)", problem)
        log.info("periodic sync done in %.1fs", time.monotonic() - started)
        return bool(summary.ok)


def _duration(td: timedelta) -> str:
    seconds = int(td.total_seconds())
    return f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s"


def _hours(td: timedelta) -> str:
    return f"{td.total_seconds() / 3600:.1f}".rstrip("0").rstrip(".")


def _claims_oldest(claim: digest_runs.Claim, options: SchedulerOptions) -> float:
    """How far back to look in Slack for an earlier attempt of a run (a Unix time).

    Earlier attempts are retried only within the grace window, each within its claim's
    lifetime, so they all lie within grace + claim lifetime (plus a margin for clock skew)
    before the current claim."""
    back = options.grace + options.claim_ttl + options.history_margin
    return (aware(claim.claimed_at) - back).timestamp()
