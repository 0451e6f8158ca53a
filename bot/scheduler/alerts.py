"""Threshold alerts from the scheduler: the daily evaluation and the exactly-once delivery.

:meth:`AlertJobs.run` does both for a given ``now`` (it never reads the clock):

1. For every team and every KPI whose alert is on (kpibot.yml's ``alerts:``, each overridden
   by ``/kpi alert on|off``), the evaluation due at 09:00 team time (at most ``grace`` ago,
   once a day) computes the KPI over its rolling window and steps the crossing rule
   (:mod:`bot.metrics.alerts`); the new state and a sent crossing are stored together
   (:func:`bot.store.alerts.record`), so a restart never evaluates a day twice.
2. Every crossing found within ``grace`` is posted to each of the team's conversations on
   each platform with a poster, through :func:`deliver_alert`: claim, post, record
   (``alert_deliveries``), looking in the conversation first when an earlier attempt may
   have posted it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import KpibotError
from bot.metrics import alerts as rule
from bot.metrics.engine import TeamEngine
from bot.metrics.registry import BY_ID, Target
from bot.metrics.values import MetricValue
from bot.reports import alerts as reports
from bot.scheduler import budget
from bot.scheduler.jobs import daily_due
from bot.scheduler.posting import (
    CannotLook,
    ConversationUnavailable,
    PlatformUnavailable,
    Poster,
    PostError,
)
from bot.scheduler.schedule import DailyTime
from bot.settings import Config, TeamConfig
from bot.store import alerts as store
from bot.store import channels, digest_runs
from bot.store.models import AlertDelivery, AlertEvent, Team
from bot.store.session import aware

if TYPE_CHECKING:
    from bot.chat.workers import ReportWorkers

log = logging.getLogger("kpibot.scheduler")

Message = dict[str, Any]


def deliver_alert(
    factory: sessionmaker[Session],
    poster: Poster,
    event_id: int,
    conversation: str,
    message: Message,
    *,
    holder: str,
    now: datetime,
    claim_ttl: timedelta,
    history_back: timedelta,
    monotonic: Callable[[], float] = time.monotonic,
    noise_budget: int | None = None,
    zone: ZoneInfo = budget.UTC_ZONE,
    text: str | None = None,
) -> str:
    """Post one alert (or nudge) to one conversation exactly once: claim, post, record.

    With ``noise_budget`` the alert counts against the conversation's week
    (:mod:`bot.scheduler.budget`); over it, it is not posted (``folded``) and ``text`` is
    listed in the conversation's next daily roll-up instead.

    Every alert goes through here. Returns ``posted``, ``found`` (an earlier attempt had
    posted it), ``busy`` (settled, or another process holds the claim), ``broken``,
    ``skipped`` (an earlier attempt may have posted it and the platform cannot look, as in
    Teams) or ``failed`` (tried again at the next pass; without looking when the platform
    did not take it)."""
    claim = digest_runs.claim_alert(
        factory, event_id, poster.platform, conversation, holder, now, claim_ttl
    )
    if claim is None:
        return "busy"
    admission: budget.Admission | None = None
    if noise_budget is not None:
        with factory() as s:
            admission = budget.admit(
                s,
                poster.platform,
                conversation,
                "alert",
                str(event_id),
                now,
                budget=noise_budget,
                zone=zone,
                text=text,
            )
            s.commit()
        if admission.folded:
            digest_runs.finish(
                factory,
                AlertDelivery,
                claim,
                holder,
                status="skipped",
                now=now,
                detail="over the noise budget: listed in the next roll-up",
            )
            log.info(
                "alert %s to %s folded into the roll-up (noise budget)", event_id, conversation
            )
            return "folded"

    def counted(status: str, ts: str | None = None) -> None:
        if admission is None or admission.id is None:
            return
        with factory() as s:
            if status == "posted":
                budget.posted(s, admission, now, ts)
            elif status in ("failed", "unsent"):
                budget.failed(s, admission, unsent=status == "unsent")
            elif status == "cannot_look":
                budget.skipped(s, admission, now)
            else:
                budget.undeliverable(s, admission, now)
            s.commit()

    key = f"alert:{event_id}"
    deadline = monotonic() + claim_ttl.total_seconds() * 0.8
    oldest = (aware(claim.claimed_at) - history_back).timestamp()

    def finish(status: str, ts: str | None = None, detail: str | None = None) -> None:
        counted(status, ts)
        digest_runs.finish(
            factory,
            AlertDelivery,
            claim,
            holder,
            status="skipped" if status == "cannot_look" else status,
            now=now,
            message_ts=ts,
            detail=detail,
        )

    try:
        if claim.retry:
            ts = poster.find_post(conversation, key, oldest=oldest, deadline=deadline)
            if ts is not None:
                finish("posted", ts)
                return "found"
        ts = poster.post(conversation, message, key=key, deadline=deadline, oldest=oldest)
    except CannotLook as exc:
        # an earlier attempt may have arrived and the platform cannot tell: not posted again
        finish("cannot_look", detail=str(exc))
        log.warning("alert %s not posted again to %s: %s", event_id, conversation, exc)
        return "skipped"
    except ConversationUnavailable as exc:
        finish("skipped", detail=exc.error)
        log.warning("alert %s not posted to %s: %s", event_id, conversation, exc.error)
        return "broken"
    except (PlatformUnavailable, PostError) as exc:
        finish("unsent" if exc.unsent else "failed", detail=str(exc))
        log.error("could not post alert %s to %s: %s", event_id, conversation, exc)
        return "failed"
    except Exception as exc:
        finish("failed", detail=f"{type(exc).__name__}: {exc}")
        log.exception("posting alert %s to %s failed", event_id, conversation)
        return "failed"
    finish("posted", ts)
    log.info("posted alert %s to %s", event_id, conversation)
    return "posted"


class AlertJobs:
    """The daily threshold-alert evaluation and the delivery of its crossings."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        config: Config | Callable[[], Config],
        posters: Mapping[str, Poster],
        *,
        holder: str,
        grace: timedelta,
        claim_ttl: timedelta,
        history_margin: timedelta,
        at: DailyTime | None = None,
        workers: ReportWorkers | None = None,
    ) -> None:
        self.factory = factory
        # the report worker processes of ``kpibot run``: the teams due at once are evaluated
        # there side by side (``_compute_ahead``); without them, one after the other here
        self.workers = workers
        self._config = config
        self.posters = posters
        self.holder = holder
        self.grace = grace
        self.claim_ttl = claim_ttl
        self.history_back = grace + claim_ttl + history_margin
        self.at = at or DailyTime(rule.EVALUATION_TIME.hour, rule.EVALUATION_TIME.minute)

    @property
    def config(self) -> Config:
        return self._config() if callable(self._config) else self._config

    def run(self, now: datetime) -> list[tuple[int, str, str]]:
        """Evaluate what is due and deliver what is pending; (event, conversation, outcome)."""
        self.evaluate(now)
        return self.deliver(now)

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, now: datetime) -> int:
        """Run the evaluations due at ``now``; returns the crossings stored to be sent."""
        found = 0
        due: list[tuple[TeamConfig, int, datetime, list[str]]] = []
        for team, team_id, fire in daily_due(self.factory, self.config, self.at, now, self.grace):
            with self.factory() as s:
                kpis = [
                    kpi
                    for kpi in store.enabled(team.alerts, store.chat_settings(s, team_id))
                    if not _evaluated(store.state(s, team_id, kpi), fire)
                ]
            if kpis:
                due.append((team, team_id, fire, kpis))
        ahead = self._compute_ahead(due, now)
        for team, team_id, fire, kpis in due:
            for kpi in kpis:
                try:
                    found += self._evaluate(team, team_id, kpi, fire, ahead.get((team_id, kpi)))
                except KpibotError as exc:
                    log.warning("alert on %s of %s not evaluated: %s", kpi, team.name, exc)
        return found

    def _compute_ahead(
        self, due: list[tuple[TeamConfig, int, datetime, list[str]]], now: datetime
    ) -> dict[tuple[int, str], reports.Evaluation]:
        """The evaluations of the teams due at once, computed in the report worker processes
        side by side (one team, all its KPIs, per computation); the rule is then stepped and
        stored here, in order. What the workers cannot compute is computed here (and a KPI
        that cannot be evaluated is logged there, as before)."""
        if self.workers is None or not due:
            return {}
        results = self.workers.map(
            evaluations_in_worker, now, [(team, kpis, fire) for team, _, fire, kpis in due]
        )
        out: dict[tuple[int, str], reports.Evaluation] = {}
        failed = 0
        for (_, team_id, _, kpis), result in zip(due, results, strict=True):
            if isinstance(result, BaseException):
                failed += 1
                continue
            for kpi in kpis:
                if kpi in result:
                    out[team_id, kpi] = result[kpi]
        if failed:
            log.warning(
                "the alerts of %d of %d teams failed in the report workers; evaluating them here",
                failed,
                len(due),
            )
        return out

    def _evaluate(
        self,
        team: TeamConfig,
        team_id: int,
        kpi: str,
        fire: datetime,
        ev: reports.Evaluation | None = None,
    ) -> int:
        """Step the rule with the evaluation of ``kpi`` at ``fire`` (``ev``, computed ahead,
        or computed here) and store it, unless that evaluation is stored already."""
        target = team.target_for(kpi)
        with self.factory() as s:
            before = store.state(s, team_id, kpi)
            if _evaluated(before, fire):
                return 0
            if ev is None:
                ev = reports.evaluate(TeamEngine(s, team), kpi, [fire], target)[0]
        after, crossing = rule.step(before.state, ev.seen, fire)
        sent = None
        if crossing is not None and crossing.sent:
            mv: MetricValue = ev.value
            sent = (crossing.kind, mv.value if mv.has_data else None, mv.n, target)
        elif crossing is not None:
            log.info("%s of %s: %s within the cool-down, not sent", kpi, team.name, crossing.kind)
        event = store.record(self.factory, team_id, kpi, before, after, fire, sent)
        return 1 if event is not None else 0

    # ------------------------------------------------------------------ delivery

    def deliver(self, now: datetime) -> list[tuple[int, str, str]]:
        out: list[tuple[int, str, str]] = []
        with self.factory() as s:
            events = store.events_since(s, now - self.grace)
            if not events:
                return out
            done = store.settled(s, [e.id for e in events])
            names = dict(s.execute(select(Team.id, Team.name)).tuples().all())
            targets: list[tuple[AlertEvent, str, str]] = []
            for e in events:
                team = self._team(names.get(e.team_id))
                if team is None:
                    continue
                for platform, conv in channels.team_conversations(
                    s, e.team_id, configured=team.channel
                ):
                    if platform in self.posters and (e.id, platform, conv) not in done:
                        targets.append((e, platform, conv))
        messages: dict[tuple[int, str], Message] = {}
        for e, platform, conv in targets:
            team = self._team(names.get(e.team_id))
            assert team is not None
            if (e.id, platform) not in messages:
                messages[(e.id, platform)] = self.posters[platform].render_alert(
                    self.alert_of(team, e)
                )
            outcome = deliver_alert(
                self.factory,
                self.posters[platform],
                e.id,
                conv,
                messages[(e.id, platform)],
                holder=self.holder,
                now=now,
                claim_ttl=self.claim_ttl,
                history_back=self.history_back,
                noise_budget=team.noise_budget,
                zone=team.zone,
                text=_rollup_line(self.alert_of(team, e)),
            )
            out.append((e.id, conv, outcome))
        return out

    def _team(self, name: str | None) -> TeamConfig | None:
        if name is None:
            return None
        try:
            return self.config.team(name)
        except KpibotError:
            return None

    def alert_of(self, team: TeamConfig, e: AlertEvent) -> reports.Alert:
        spec = BY_ID[e.kpi]
        with self.factory() as s:
            basis = TeamEngine(s, team).time_basis(e.kpi)
        return reports.Alert(
            team.name,
            e.kpi,
            spec.name,
            spec.kind,
            e.crossing,
            e.value,
            e.n,
            Target(e.target_op, e.target_value),
            rule.window_days(e.kpi),
            aware(e.evaluated_at),
            team.timezone,
            basis,
        )


def _evaluated(stored: store.Stored, fire: datetime) -> bool:
    """Whether the evaluation due at ``fire`` is stored already (at most once a day)."""
    return stored.evaluated_at is not None and stored.evaluated_at >= fire


def evaluations_in_worker(
    team: TeamConfig, kpis: list[str], fire: datetime
) -> dict[str, reports.Evaluation]:
    """In a report worker process: the evaluation at ``fire`` of each of the team's ``kpis``
    with one engine (``ReportWorkers.map``); a KPI that cannot be evaluated is left out."""
    from bot.chat import workers

    out: dict[str, reports.Evaluation] = {}
    with workers.sessions()() as session:
        engine = TeamEngine(session, team)
        for kpi in kpis:
            try:
                out[kpi] = reports.evaluate(engine, kpi, [fire], team.target_for(kpi))[0]
            except KpibotError:
                continue  # evaluated again by the scheduler, which logs why it cannot
    return out


def _rollup_line(alert: reports.Alert) -> str:
    """An alert held back by the noise budget, as its line in the next roll-up."""
    from bot.renderers import format as fmt

    return f"{fmt.alert_headline(alert)}: {fmt.alert_detail(alert)}"
