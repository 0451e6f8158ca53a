"""Working agreements in the team's channels: nudges when PRs break an agreement, and the
daily roll-up (09:00 team time) of what is still open.

:class:`AgreementJobs` works for a given ``now`` (tests drive it with a simulated clock):

- every ``check_every`` (15 minutes) it checks each team's agreements
  (:func:`bot.reports.agreements.check_team`; the sync and the webhooks check too), in the
  report worker processes side by side when it has them;
- each pass announces the team's new breaches in one message per conversation of the team
  (the conversations mapped to it, subscribed for it, and its ``channel`` in kpibot.yml),
  each PR at most once per agreement: the breaches are claimed under one notice key, the
  notice goes through the noise budget (:mod:`bot.scheduler.budget`), is posted, then the
  breaches are settled; a restarted process resumes an unfinished claim and looks in the
  conversation before posting again;
- at 09:00 team time (or later within ``grace``) it posts the roll-up: every PR still in
  breach and not snoozed, and the notices the noise budget held back that week.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import KpibotError
from bot.metrics.agreements import Breach
from bot.renderers.mrkdwn import GITHUB_COM, Links
from bot.reports.agreements import AgreementsReport, authors, build_report, check_team
from bot.scheduler import budget
from bot.scheduler.posting import (
    CannotLook,
    ConversationUnavailable,
    PlatformUnavailable,
    Poster,
    PostError,
)
from bot.scheduler.schedule import DailyTime
from bot.settings import Config, TeamConfig
from bot.store import agreements as store
from bot.store import channels, population
from bot.store.models import Team
from bot.store.session import utc

if TYPE_CHECKING:
    from bot.chat.workers import ReportWorkers

log = logging.getLogger("kpibot.scheduler")


def conversations(
    session: Session, team: TeamConfig, team_id: int, platforms: Iterable[str]
) -> list[tuple[str, str]]:
    """The team's conversations on these platforms
    (:func:`bot.store.channels.team_conversations`)."""
    wanted = set(platforms)
    return [
        c
        for c in channels.team_conversations(session, team_id, configured=team.channel)
        if c[0] in wanted
    ]


class AgreementJobs:
    def __init__(
        self,
        factory: sessionmaker[Session],
        config: Config | Callable[[], Config],
        posters: Mapping[str, Poster],
        *,
        links: Links = GITHUB_COM,
        check_every: timedelta = timedelta(minutes=15),
        rollup_time: DailyTime | None = None,
        grace: timedelta = timedelta(hours=12),
        monotonic: Callable[[], float] = time.monotonic,
        workers: ReportWorkers | None = None,
    ) -> None:
        self.factory = factory
        # the report worker processes of ``kpibot run``: the teams due for a check are
        # checked there side by side (``_check_ahead``); without them, one after the other
        self.workers = workers
        self._config = config
        self.posters = posters
        self.links = links
        self.check_every = check_every
        self.rollup_time = rollup_time or DailyTime()
        self.grace = grace
        self._monotonic = monotonic
        self._checked: dict[str, datetime] = {}

    @property
    def config(self) -> Config:
        return self._config() if callable(self._config) else self._config

    def _teams(self) -> list[tuple[TeamConfig, int]]:
        with self.factory() as s:
            ids = dict(s.execute(select(Team.name, Team.id)).tuples().all())
        return [(t, ids[t.name]) for t in self.config.teams if t.agreements.any and t.name in ids]

    # ------------------------------------------------------------------ passes

    def run_due(self, now: datetime) -> None:
        """One pass: check the teams whose last check is ``check_every`` old, announce new
        breaches, post due roll-ups."""
        teams = self._teams()
        self._check_ahead([t for t, _ in teams if self._check_due(t, now)], now)
        for team, team_id in teams:
            try:
                if self._check_due(team, now):  # not checked in the workers: here
                    self.check(team, now)
                self.announce(team, team_id, now)
                self.rollup(team, team_id, now)
            except Exception:  # one team's trouble never holds back the others
                log.exception("the working agreements of %s failed; retrying next pass", team.name)

    def check_all(self, now: datetime) -> None:
        """Check every team now (after a sync)."""
        teams = [t for t, _ in self._teams()]
        done = self._check_ahead(teams, now)
        for team in teams:
            if team.name not in done:
                self.check(team, now)

    def _check_due(self, team: TeamConfig, now: datetime) -> bool:
        last = self._checked.get(team.name)
        return last is None or now - last >= self.check_every

    def _check_ahead(self, teams: list[TeamConfig], now: datetime) -> set[str]:
        """Check ``teams`` in the report worker processes side by side (each check stores
        its breaches there); returns the names of the teams checked. The others (no workers,
        or a check that failed there) are checked here, which logs why one cannot be."""
        if self.workers is None or not teams:
            return set()
        results = self.workers.map(check_in_worker, now, [(t, utc(now)) for t in teams])
        done = set()
        for team, result in zip(teams, results, strict=True):
            if not isinstance(result, BaseException):
                self._checked[team.name] = now
                done.add(team.name)
        return done

    def check(self, team: TeamConfig, now: datetime) -> list[Breach]:
        try:
            with self.factory() as s:
                found = check_team(s, team, utc(now))
                s.commit()
        except KpibotError as exc:
            log.warning("could not check the working agreements of %s: %s", team.name, exc)
            return []
        self._checked[team.name] = now
        return found

    def _fresh(self, team: TeamConfig, now: datetime) -> list[Breach]:
        """The team's breaches now, read without storing (for a message's numbers)."""
        from bot.metrics.engine import TeamEngine

        with self.factory() as s:
            return TeamEngine(s, team).agreement_breaches(utc(now))

    # ------------------------------------------------------------------ nudges

    def announce(self, team: TeamConfig, team_id: int, now: datetime) -> int:
        """Post the team's new breaches (one message per conversation); returns posts made."""
        with self.factory() as s:
            where = conversations(s, team, team_id, self.posters)
            if not where:
                return 0  # announced once a conversation is mapped or subscribed
            claim = store.claim_pending(s, team_id, utc(now))
            s.commit()
            if claim is None:
                return 0
            key, rows = claim
            wanted = {(r.pull_request_id, r.agreement) for r in rows}
        items = [b for b in self._fresh(team, now) if (b.pr.id, b.agreement) in wanted]
        report = build_report(team, "nudge", items)
        summary = _summary(team, items)
        posts, settled, delivered = 0, True, False
        for platform, channel in where:
            poster = self.posters[platform]
            with self.factory() as s:
                admission = budget.admit(
                    s,
                    platform,
                    channel,
                    "agreement",
                    key,
                    now,
                    budget=team.noise_budget,
                    zone=team.zone,
                    text=summary,
                )
                s.commit()
            if admission.settled:
                delivered = delivered or not admission.folded
                continue
            if not admission:
                settled = False  # another attempt is under way: settle on a later pass
                continue
            if not items:  # every claimed PR left its breach before it could be announced
                with self.factory() as s:
                    budget.settled_empty(s, admission, now)
                    s.commit()
                continue
            outcome = self._post(poster, platform, channel, admission, report, now)
            if outcome == "posted":
                posts += 1
                delivered = True
            elif outcome == "failed":
                settled = False
        if settled:
            with self.factory() as s:
                store.settle(s, key, "announced" if delivered or not items else "folded", now)
                s.commit()
        return posts

    def _post(
        self,
        poster: Poster,
        platform: str,
        channel: str,
        admission: budget.Admission,
        report: AgreementsReport,
        now: datetime,
    ) -> str:
        """``posted``; ``failed`` (tried again next pass, looking first unless the platform
        did not take it); ``gone``: the conversation cannot be posted to (archived, the bot
        removed), or an earlier attempt may have posted it where the platform cannot look
        (Teams): not tried again."""
        try:
            ts = poster.post(
                channel,
                poster.render_agreements(report, self.links, self._mentions(platform, report)),
                key=admission.key,
                look_first=admission.retry,
                deadline=self._monotonic() + budget.CLAIM_TTL.total_seconds() * 0.8,
            )
        except ConversationUnavailable as exc:
            log.error(
                "cannot post the %s of %s to %s (%s); map or subscribe a channel kpibot can "
                "post to",
                report.kind,
                report.team,
                channel,
                exc.error,
            )
            with self.factory() as s:
                budget.undeliverable(s, admission, now)
                s.commit()
            return "gone"
        except CannotLook as exc:
            log.warning(
                "the %s of %s to %s is not posted again: %s", report.kind, report.team, channel, exc
            )
            with self.factory() as s:
                budget.skipped(s, admission, now)
                s.commit()
            return "gone"
        except (PlatformUnavailable, PostError) as exc:
            log.error(
                "could not post the %s of %s to %s: %s", report.kind, report.team, channel, exc
            )
            with self.factory() as s:
                budget.failed(s, admission, unsent=exc.unsent)
                s.commit()
            return "failed"
        with self.factory() as s:
            budget.posted(s, admission, now, ts)
            s.commit()
        return "posted"

    def _mentions(self, platform: str, report: AgreementsReport) -> dict[str, str]:
        """The chat id on ``platform`` of each PR author the identity mapping knows."""
        with self.factory() as s:
            found = {
                login: population.chat_user_of(s, platform, login) for login in authors(report)
            }
        return {login: user for login, user in found.items() if user}

    # ------------------------------------------------------------------ roll-up

    def rollup(self, team: TeamConfig, team_id: int, now: datetime) -> int:
        """The daily roll-up at 09:00 team time: what is still open (not snoozed), and the
        notices folded into it; posted once per conversation and day, nothing when there is
        nothing to say. Returns posts made."""
        fire = self.rollup_time.latest_fire(now, team.zone)
        if now - fire > self.grace:
            return 0
        day = fire.astimezone(team.zone).date().isoformat()
        with self.factory() as s:
            where = conversations(s, team, team_id, self.posters)
            snoozed = store.snoozed(s, team_id, utc(now))
        if not where:
            return 0
        fresh: list[Breach] | None = None
        posts = 0
        for platform, channel in where:
            with self.factory() as s:
                admission = budget.admit(
                    s, platform, channel, "rollup", f"{team.name}:{day}", now, budget=None
                )
                s.commit()
                if not admission:
                    continue
                folded = budget.folded(s, platform, channel)
                held = [n.text or n.key for n in folded if n.kind != "agreement"]
                folded_ids = [n.id for n in folded]
            if fresh is None:
                fresh = self._fresh(team, now)
            open_ = [b for b in fresh if b.pr.id not in snoozed]
            left_out = len({b.pr.id for b in fresh if b.pr.id in snoozed})
            if not open_ and not held:
                with self.factory() as s:
                    budget.settled_empty(s, admission, now)
                    budget.rolled_up(s, folded_ids, now)
                    s.commit()
                continue
            report = build_report(team, "rollup", open_, folded=held, left_out=left_out)
            if self._post(self.posters[platform], platform, channel, admission, report, now) == (
                "posted"
            ):
                posts += 1
                with self.factory() as s:
                    budget.rolled_up(s, folded_ids, now)
                    s.commit()
        return posts


def check_in_worker(team: TeamConfig, now: datetime) -> int:
    """In a report worker process: :func:`check_team` on the worker's store, committed;
    returns how many breaches hold (``ReportWorkers.map``)."""
    from bot.chat import workers

    with workers.sessions()() as session:
        found = check_team(session, team, now)
        session.commit()
    return len(found)


def _summary(team: TeamConfig, items: list[Breach]) -> str:
    """A folded nudge's line for the roll-up."""
    n = len({b.pr.id for b in items})
    return f"{n} PR{'s' if n != 1 else ''} of {team.name} missed a working agreement"
