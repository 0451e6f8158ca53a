"""The scheduler's command-line parts: ``kpibot run --mode scheduler``, the scheduler inside
``kpibot run``, and ``kpibot digest ... --post``.

Scheduler settings come from the environment (or ``.env``):

| variable | meaning | default |
|---|---|---|
| ``KPIBOT_DIGEST_GRACE`` | how late a missed digest is still posted | ``12h`` |
| ``KPIBOT_SYNC_INTERVAL`` | how often the periodic sync runs (``off``: never) | ``1h`` |
| ``KPIBOT_REMINDER_TIME`` | daily action-item reminders, team time | ``09:00`` |
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from dotenv import dotenv_values
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import KpibotError
from bot.metrics.periods import Period
from bot.renderers.mrkdwn import Links
from bot.scheduler.jobs import DigestJobs, Outcome, SchedulerOptions
from bot.scheduler.posting import Poster, SlackPoster
from bot.scheduler.schedule import DailyTime
from bot.scheduler.service import SchedulerService
from bot.scheduler.teams_poster import TeamsPoster
from bot.settings import Config, Settings, TeamConfig, chat_platforms, parse_duration
from bot.store import subscriptions as subs
from bot.store.session import utc

if TYPE_CHECKING:
    from bot.chat.workers import ReportWorkers

log = logging.getLogger("kpibot.scheduler")

ENV = {
    "grace": "KPIBOT_DIGEST_GRACE",
    "sync": "KPIBOT_SYNC_INTERVAL",
    "reminder": "KPIBOT_REMINDER_TIME",
}


def options_from_env(
    environ: Mapping[str, str] | None = None, dotenv_path: str | Path | None = ".env"
) -> SchedulerOptions:
    env: dict[str, str] = {}
    if dotenv_path is not None and Path(dotenv_path).is_file():
        env.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    env.update(os.environ if environ is None else environ)
    opts = SchedulerOptions()
    grace = env.get(ENV["grace"], "").strip()
    if grace:
        opts = replace(opts, grace=timedelta(seconds=_duration(ENV["grace"], grace)))
    sync = env.get(ENV["sync"], "").strip()
    if sync:
        if sync.lower() in ("off", "0", "never", "none"):
            opts = replace(opts, sync_every=None)
        else:
            secs = _duration(ENV["sync"], sync)
            if secs < 60:
                raise KpibotError(f"{ENV['sync']} must be at least 1m, not '{sync}'")
            opts = replace(opts, sync_every=timedelta(seconds=secs))
    rt = env.get(ENV["reminder"], "").strip()
    if rt:
        m = re.fullmatch(r"(\d{1,2}):(\d{2})", rt)
        if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
            raise KpibotError(f"{ENV['reminder']} must be a time like 09:00, not '{rt}'")
        opts = replace(opts, reminder_time=DailyTime(int(m.group(1)), int(m.group(2))))
    return opts


def _duration(name: str, raw: str) -> float:
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise KpibotError(f"{name}: {exc}") from None


def make_poster(settings: Settings) -> SlackPoster:
    if not settings.slack_bot_token:
        raise KpibotError(
            "SLACK_BOT_TOKEN is not set: the scheduler posts as the bot. Put the Bot User OAuth "
            "Token (xoxb-...) in the environment or .env (see README, Connecting Slack)"
        )
    return SlackPoster(settings.slack_bot_token, settings.slack_api_url)


def make_teams_poster(settings: Settings, factory: sessionmaker[Session]) -> TeamsPoster:
    """The Teams poster of ``TEAMS_APP_ID``: the app token from ``TEAMS_TOKEN_URL``, each
    subscription's stored conversation reference, ``TEAMS_API_URL`` and ``TEAMS_TENANT_ID``
    for the personal chats of reminders."""
    from bot.teams.connector import Connector

    if not settings.teams_app_password:
        raise KpibotError(
            "TEAMS_APP_PASSWORD is not set: the scheduler posts to Teams as the bot of "
            "TEAMS_APP_ID and needs its client secret (see README, Connecting Microsoft Teams)"
        )
    connector = Connector(
        settings.teams_app_id or "", settings.teams_app_password, settings.teams_token_url
    )

    def reference(conversation: str) -> subs.Reference | None:
        with factory() as s:
            return subs.reference(s, platform="teams", channel_id=conversation)

    def tenants() -> set[str]:
        with factory() as s:
            return subs.tenants(s, "teams")

    return TeamsPoster(
        connector,
        service_url=settings.teams_api_url,
        tenant=settings.teams_tenant_id,
        references=reference,
        tenants=tenants,
    )


def make_posters(settings: Settings, factory: sessionmaker[Session]) -> dict[str, Poster]:
    """A poster per configured platform (:func:`~bot.settings.chat_platforms`): Slack with
    its credentials, Teams with ``TEAMS_APP_ID``, both when both are set."""
    platforms = chat_platforms(settings)
    posters: dict[str, Poster] = {}
    if "slack" in platforms:
        posters["slack"] = make_poster(settings)
    if "teams" in platforms:
        posters["teams"] = make_teams_poster(settings, factory)
    return posters


def make_service(
    settings: Settings,
    factory: sessionmaker[Session],
    config: Callable[[], Config],
    *,
    options: SchedulerOptions | None = None,
    workers: ReportWorkers | None = None,
) -> SchedulerService:
    return SchedulerService(
        settings,
        factory,
        config,
        make_posters(settings, factory),
        options=options or options_from_env(),
        workers=workers,
    )


def start_in_background(
    settings: Settings,
    factory: sessionmaker[Session],
    config: Callable[[], Config],
    workers: ReportWorkers | None = None,
) -> Callable[[], None]:
    """The scheduler in a background thread of ``kpibot run``; returns its stop function.
    ``workers``: the chat apps' report worker processes, which compute a pass's digests,
    alert evaluations and agreement checks."""
    config()  # fail early on a broken kpibot.yml
    service = make_service(settings, factory, _cached(config), workers=workers)
    service.run(blocking=False)
    log.info("scheduler started in the background (holder %s)", service.holder)
    return service.stop


def run_blocking(
    settings: Settings,
    factory: sessionmaker[Session],
    config: Callable[[], Config],
    out: Callable[[str], None],
) -> int:
    """``kpibot run --mode scheduler``: the scheduler alone, until SIGTERM or Ctrl+C. With
    more than one core (or ``KPIBOT_REPORT_WORKERS`` above 1) it starts report worker
    processes of its own, which compute a pass's digests, alert evaluations and agreement
    checks side by side."""
    from bot.chat.workers import ReportWorkers, default_count

    cached = _cached(config)
    cfg = cached()  # fail early on a broken kpibot.yml
    count = default_count(settings)
    workers = (
        ReportWorkers(settings.database_url, cfg, count, Links.of(settings)) if count > 1 else None
    )
    try:
        service = make_service(settings, factory, cached, workers=workers)
        opts = service.options
        sync = "off" if opts.sync_every is None else f"every {_span(opts.sync_every)}"
        out(
            f"kpibot scheduler {service.holder}: digests and reminders (grace "
            f"{_span(opts.grace)}), sync {sync}; press Ctrl+C to stop"
        )

        def _term(signum: int, frame: FrameType | None) -> None:
            raise SystemExit(0)

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _term)
        service.run(blocking=True)
        out("kpibot scheduler stopped")
        return 0
    finally:
        if workers is not None:
            workers.close()


def _cached(config: Callable[[], Config]) -> Callable[[], Config]:
    """kpibot.yml read once: team changes need a restart, like the Slack app's."""
    holder: list[Config] = []

    def get() -> Config:
        if not holder:
            holder.append(config())
        return holder[0]

    return get


def _span(td: timedelta) -> str:
    secs = int(td.total_seconds())
    if secs % 3600 == 0:
        return f"{secs // 3600}h"
    if secs % 60 == 0:
        return f"{secs // 60}m"
    return f"{secs}s"


# --- kpibot digest ... --post ------------------------------------------------------------------


def post_now(
    settings: Settings,
    factory: sessionmaker[Session],
    config: Config,
    team: TeamConfig,
    kind: str,
    period: Period,
    now: datetime,
    *,
    channel: str | None,
    out: Callable[[str], None],
    err: Callable[[str], object] = lambda s: sys.stderr.write(s + "\n"),
    poster: Poster | Mapping[str, Poster] | None = None,
) -> int:
    """Post a team's digest for ``period`` to its subscribed channels (or ``channel``) through
    the scheduler's exactly-once path; returns the exit code (0, or 1 when a post failed)."""
    expected = "week" if kind == "weekly" else "month"
    if period.kind != expected:
        raise KpibotError(
            f"a {kind} digest covers a {expected}: use --period "
            + ("last-week or 2026-W46" if kind == "weekly" else "last-month or 2026-10")
            + f", not {period.label}"
        )
    if period.in_progress:
        raise KpibotError(
            f"{period.label} has not ended: the {kind} digest posted for it would take the place "
            f"of the whole {expected}'s. Preview it without --post, or post "
            + ("last-week" if kind == "weekly" else "last-month")
        )
    if channel is not None and not re.fullmatch(r"[CG][A-Z0-9]{6,}", channel):
        raise KpibotError(
            f"--channel '{channel}' is not a Slack channel id: use the id (e.g. C0123456789, "
            "from the channel's details), not its name"
        )
    poster = poster or make_posters(settings, factory)
    if channel is not None and isinstance(poster, Mapping) and "slack" not in poster:
        raise KpibotError(
            "--channel names a Slack channel and Slack is not set up here: set SLACK_BOT_TOKEN, "
            "or drop --channel to post to the conversations subscribed in Teams"
        )
    with factory() as s:
        from sqlalchemy import select

        from bot.store.models import Team

        team_id = s.scalar(select(Team.id).where(Team.name == team.name))
        if team_id is None:
            raise KpibotError(
                f"team '{team.name}' is not in the database yet: run 'kpibot db upgrade'"
            )
        targets = [x for x in subs.for_team(s, team_id) if x.kind == kind]
        if channel is not None:
            targets = [x for x in targets if x.platform == "slack" and x.channel_id == channel]
            if not targets:
                sub, _ = subs.subscribe(
                    s,
                    platform="slack",
                    channel_id=channel,
                    team_id=team_id,
                    kind=kind,
                    created_by=None,
                    now=utc(now),
                )
                s.commit()
                targets = [sub]
                out(
                    f"subscribed {channel} to the {kind} digest of {team.name} (stop with "
                    f"'/kpi unsubscribe {kind} {team.name}' in the channel)"
                )
    if not targets:
        platforms = set(poster) if isinstance(poster, Mapping) else {"slack"}
        ways = []
        if "slack" in platforms:
            ways.append(f"'/kpi subscribe {kind} {team.name}' in a Slack channel")
        if "teams" in platforms:
            ways.append(f"'@kpibot subscribe {kind} {team.name}' in a Teams conversation")
        channel_hint = ", or pass --channel C0123456789" if "slack" in platforms else ""
        raise KpibotError(
            f"no channel is subscribed to the {kind} digest of {team.name}: run "
            f"{' or '.join(ways)}{channel_hint}"
        )
    jobs = DigestJobs(factory, config, poster, options=options_from_env(), links=Links.of(settings))
    code = 0
    for sub in targets:
        if sub.broken:
            err(
                f"kpibot: not posting to {sub.channel_id}: {sub.broken_reason}. Fix the "
                f"channel, then run '"
                + ("@kpibot" if sub.platform == "teams" else "/kpi")
                + f" subscribe {kind} {team.name}' there again"
            )
            code = 1
            continue
        outcome = jobs.post(sub, team, period, now, manual=True)
        line, ok = describe(outcome)
        (out if ok else err)(line)
        code = code if ok else 1
    return code


def describe(o: Outcome) -> tuple[str, bool]:
    what = f"the {o.kind} digest of {o.team} for {o.period} to {o.channel}"
    match o.status:
        case "posted":
            return f"posted {what} (message {o.ts})", True
        case "found":
            return f"{what} had already been posted (message {o.ts}); recorded it", True
        case "done":
            return f"{what} was posted before (message {o.ts}); not posting it again", True
        case "busy":
            return f"{what} is being posted by another process right now; not posting it", True
        case "skipped":
            return f"{what} was skipped: {o.detail}", True
        case "broken":
            return (
                f"kpibot: could not post {what}: {o.detail}. The subscription is paused; "
                + (
                    "add kpibot to the team in Teams again and subscribe again"
                    if o.platform == "teams"
                    else "invite the bot to the channel and subscribe again"
                ),
                False,
            )
    return f"kpibot: could not post {what}: {o.detail}. Run the command again to retry", False
