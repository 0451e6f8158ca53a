"""The chat-neutral core every chat surface calls: team resolution, command dispatch (a
:mod:`~bot.chat.answers` object, never a platform's message format), reports, conversation
mappings and digest subscriptions keyed by (platform, conversation), and action items with
their validation, baseline and permission rules. One unit of work (session) per call; no
chat platform API calls here.

One :class:`ChatService` serves one platform: its :class:`~bot.chat.voice.Voice` names the
platform and words the sentences. The clock is read only through ``clock`` (the
surface's), so tests pick the moment.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.chat import answers as ans
from bot.chat import permissions as perms
from bot.chat.grammar import Command
from bot.chat.items import MAX_OPPORTUNITY, MAX_RESOLUTION, ItemInput, ItemRow, TeamRow
from bot.chat.permissions import Actor, NotAllowed
from bot.chat.voice import Voice
from bot.errors import KpibotError
from bot.metrics import alerts as alert_rule
from bot.metrics import registry
from bot.metrics.engine import BUSINESS_HOURS_KPIS, TeamEngine
from bot.metrics.periods import Period, last_complete_month, last_complete_week, parse_period
from bot.metrics.registry import Target
from bot.renderers import format as fmt
from bot.renderers.mrkdwn import GITHUB_COM, Links
from bot.reports import alerts as alert_reports
from bot.reports.cards import Health, MetricCard, build_card, build_dora, build_health
from bot.reports.digests import build_monthly, build_weekly
from bot.reports.freshness import SourceStatus, build_status
from bot.settings import WEEKDAYS, Config, DigestTimes, TeamConfig, parse_target
from bot.store import actions, channels, population, subscriptions
from bot.store import alerts as alerts_store
from bot.store.models import ActionItem, Team
from bot.store.session import unit_of_work
from bot.store.teams import sync_teams

log = logging.getLogger("kpibot.chat")

Clock = Callable[[], datetime]

REPORT_KINDS = ("card", "dora", "health", "digest", "alert_preview")
WRITE_KINDS = ("team_set", "subscribe", "unsubscribe", "alert_set")


def system_clock() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class NeedTeam(KpibotError):
    """No team given, none mapped to the conversation and the user is in several (or none)."""


__all__ = ["Actor", "ChatService", "ItemInput", "NeedTeam", "NotAllowed"]

GONE = "that action item no longer exists"


def _sentence(s: str) -> str:
    s = s.strip()
    return s[:1].upper() + s[1:] if s else s


class ChatService:
    def __init__(
        self,
        factory: sessionmaker[Session],
        config: Config,
        clock: Clock,
        voice: Voice,
        *,
        teams_stored: bool = False,
        links: Links = GITHUB_COM,
    ) -> None:
        """``teams_stored``: the configured teams are already in the store (report workers,
        started after the app stored them); ``links``: the source URLs that may be links."""
        self.links = links
        self.factory = factory
        self.config = config
        self.clock = clock
        self.voice = voice
        self._synced = teams_stored
        # the workspace (tenant) the app is installed in; None until the surface knows it
        self.home_workspace: str | None = None

    @property
    def platform(self) -> str:
        return self.voice.platform

    # ------------------------------------------------------------------ basics

    def prepare(self) -> None:
        """Store the configured teams now (before the first request or worker needs them)."""
        with self.session():
            pass

    @contextmanager
    def session(self) -> Iterator[Session]:
        with unit_of_work(self.factory) as s:
            if not self._synced:
                sync_teams(s, self.config, now=self.now_naive())
                s.flush()
                self._synced = True
            yield s

    def team_names(self) -> list[str]:
        return self.config.team_names()

    def team(self, name: str) -> TeamConfig:
        return self.config.team(name)

    def now(self) -> datetime:
        now = self.clock()
        return now if now.tzinfo else now.replace(tzinfo=UTC)

    def now_naive(self) -> datetime:
        return self.now().astimezone(UTC).replace(tzinfo=None)

    def today(self, team: str | None) -> date:
        zone = self.team(team).zone if team else UTC
        return self.now().astimezone(zone).date()

    # ------------------------------------------------------------- permissions

    def admit(self, actor: Actor) -> None:
        """Refuse (:class:`NotAllowed`) a request from another workspace than the installed
        one, or from another platform than this service's."""
        if actor.platform != self.platform:
            raise NotAllowed(perms.FOREIGN)
        perms.check_workspace(actor, self.home_workspace)

    def leads(self, team: str | None) -> tuple[str, ...]:
        if team is None or team not in self.team_names():
            return ()
        return self.team(team).leads

    def owner_allowed(self, owner_workspace: str | None) -> bool:
        """Whether a picked owner (of ``owner_workspace``) may own action items here."""
        return perms.same_workspace(owner_workspace, self.home_workspace)

    def _check_item(self, item: ItemRow, actor: Actor) -> None:
        self.admit(actor)
        if item.platform != actor.platform or not perms.may_change_item(
            actor, owner=item.owner, creator=item.created_by, leads=self.leads(item.team)
        ):
            v = self.voice
            if item.platform != actor.platform:
                who = f"the people of {item.platform} who own or logged it"
            else:
                who = (
                    f"{v.person('its owner', item.owner)}, "
                    f"{v.person('the person who logged it', item.created_by)}"
                )
            raise NotAllowed(
                f"You're not allowed to change this action item: only {who}, a workspace "
                f"admin or a lead of {item.team} can."
            )

    def _check_subscription(self, sub: subscriptions.Subscription, actor: Actor) -> None:
        if not perms.may_change_subscription(
            actor, created_by=sub.created_by, leads=self.leads(sub.team)
        ):
            v = self.voice
            who = (
                f"{v.person('the person who subscribed it', sub.created_by)}, "
                if sub.created_by
                else ""
            )
            raise NotAllowed(
                f"You're not allowed to change the {sub.kind} digest of {sub.team} in "
                f"{v.conversation(sub.channel_id)}: only {who}a workspace admin or a lead of "
                f"{sub.team} can."
            )

    def _team_id(self, s: Session, name: str) -> int:
        tid = s.scalar(select(Team.id).where(Team.name == name))
        if tid is None:
            tid = sync_teams(s, self.config, now=self.now_naive())[name]
        return tid

    # ------------------------------------------------------------- resolution

    def channel_team(self, conversation: str | None) -> str | None:
        """The team of a conversation: its mapping on this platform first, else (Slack) the
        channel in kpibot.yml."""
        if not conversation:
            return None
        with self.session() as s:
            mapped = channels.channel_team(s, platform=self.platform, channel_id=conversation)
        if mapped and mapped in self.team_names():
            return mapped
        if self.platform == "slack":  # kpibot.yml's ``channel:`` is a Slack channel id
            for t in self.config.teams:
                if t.channel == conversation:
                    return t.name
        return None

    def user_teams(self, user: str) -> list[str]:
        """The user's teams: those they are a member of (through the identity mapping), else
        a guess from their action items and the conversations they mapped."""
        known = set(self.team_names())
        with self.session() as s:
            ids = population.user_team_ids(s, self.platform, user)
            names = [n for n, tid in channels.team_ids(s).items() if tid in ids and n in known]
            if names:
                return sorted(names)
            names = channels.user_teams(s, user, platform=self.platform)
        return [n for n in names if n in known]

    def chat_user(self, login: str | None) -> str | None:
        """The chat id on this platform of a GitHub login (a PR's author), when known."""
        with self.session() as s:
            return population.chat_user_of(s, self.platform, login)

    def emails_to_look_up(self) -> list[tuple[int, str]]:
        """(person, e-mail) of the people whose chat id is still to be looked up once."""
        with self.session() as s:
            return population.emails_to_look_up(s)

    def store_looked_up(self, person: int, user: str | None) -> None:
        """Keep the answer of an e-mail look-up (None: nobody), so it is not asked again."""
        with self.session() as s:
            population.store_lookup(s, person, user, self.now_naive())

    def resolve_team(self, explicit: str | None, conversation: str | None, user: str) -> str:
        """Explicit team, else the conversation's, else the user's only team, else the only
        team; else :class:`NeedTeam` (ask)."""
        if explicit:
            return self.team(explicit).name
        found = self.channel_team(conversation)
        if found:
            return found
        mine = self.user_teams(user)
        if len(mine) == 1:
            return mine[0]
        if len(self.team_names()) == 1:
            return self.team_names()[0]
        if not self.team_names():
            raise KpibotError("no teams are configured: add them to kpibot.yml (see README)")
        raise NeedTeam("which team?")

    def period(self, team: str, word: str | None, default: str = "28d") -> Period:
        return parse_period(word or default, self.team(team).zone, self.now())

    # -------------------------------------------------------------- dispatch

    def dispatch(
        self,
        cmd: Command,
        text: str,
        user: str,
        conversation: str | None,
        actor: Actor | None = None,
        ensure_postable: Callable[[], str | None] | None = None,
        reference: subscriptions.Reference | None = None,
    ) -> ans.Answer:
        """The answer to a parsed command: a report, a write's outcome, or a clear error;
        never raises. Writes need the ``actor`` (report workers only compute reads);
        ``ensure_postable`` (the surface's) makes sure a digest can be posted in the
        conversation, or says what to do first; ``reference``: how the platform reaches the
        conversation proactively (Teams), kept with its subscriptions and refreshed by every
        command heard from it."""
        try:
            if reference is not None and conversation:
                self.remember_reference(conversation, reference)
            if cmd.kind in WRITE_KINDS and actor is None:
                raise KpibotError(f"'{cmd.kind}' needs to know who asks")
            if cmd.kind == "team_set":
                assert cmd.team is not None and actor is not None
                if not conversation:
                    raise KpibotError(
                        f"run {self.voice.command('team set')} in the channel you want to map"
                    )
                return self.set_channel_team(conversation, cmd.team, actor)
            if cmd.kind == "subscribe":
                assert actor is not None
                if not conversation:
                    raise KpibotError(
                        f"run {self.voice.command('subscribe')} in the channel that should "
                        "get the digest"
                    )
                team = self.resolve_team(cmd.team, conversation, user)
                return self.subscribe(
                    conversation,
                    team,
                    cmd.digest or "weekly",
                    actor,
                    cmd.schedule,
                    ensure_postable,
                    reference,
                )
            if cmd.kind == "unsubscribe":
                assert actor is not None
                return self.unsubscribe(conversation or "", cmd.team, cmd.digest, actor)
            if cmd.kind == "alert_set":
                assert actor is not None and cmd.metric is not None
                team = self.resolve_team(cmd.team, conversation, user)
                return self.set_alert(team, cmd.metric, cmd.enabled, actor)
            return self.answer(cmd, user, conversation)
        except NeedTeam:
            return ans.AskTeam(text, tuple(self.team_names()))
        except NotAllowed as exc:
            return ans.Refused(str(exc))
        except KpibotError as exc:
            return ans.Problem(_sentence(str(exc)))
        except Exception:
            log.exception("answering %s failed", cmd.kind)
            return ans.Problem(ans.OOPS)

    def answer(self, cmd: Command, user: str, conversation: str | None) -> ans.Answer:
        """The answer to a parsed read-only command (cards, dora, health, digests, lists)."""
        if cmd.kind == "help":
            return ans.Help(self.channel_team(conversation), tuple(self.team_names()))
        if cmd.kind == "teams":
            return self.teams(conversation)
        if cmd.kind == "subscriptions":
            return self.conversation_subscriptions(conversation or "")
        team = self.resolve_team(cmd.team, conversation, user)
        if cmd.kind == "card":
            assert cmd.metric is not None
            return ans.CardAnswer(self.card(team, cmd.metric, cmd.period))
        if cmd.kind == "dora":
            period = self.period(team, cmd.period)
            with self.session() as s:
                return ans.DoraAnswer(build_dora(TeamEngine(s, self.team(team)), period))
        if cmd.kind == "health":
            period = self.period(team, cmd.period)
            with self.session() as s:
                return ans.HealthAnswer(build_health(TeamEngine(s, self.team(team)), period))
        if cmd.kind == "digest":
            return self.digest(team, cmd.digest or "weekly", cmd.period)
        if cmd.kind == "actions":
            return self.actions_list(team, cmd.all)
        if cmd.kind == "alert_preview":
            assert cmd.metric is not None
            return self.alert_preview(team, cmd.metric, cmd.target)
        if cmd.kind == "status":
            return ans.StatusAnswer(self.status(team))
        if cmd.kind == "agreements":
            from bot.chat.agreements import agreements

            return agreements(self, team)
        raise KpibotError(f"'{cmd.kind}' is not answered here")

    # ---------------------------------------------------------------- reports

    def card(self, team: str, metric: str, period_word: str | None) -> MetricCard:
        period = self.period(team, period_word)
        with self.session() as s:
            return build_card(TeamEngine(s, self.team(team)), metric, period)

    def digest(self, team: str, kind: str, period_word: str | None) -> ans.DigestPreview:
        tc = self.team(team)
        now = self.now()
        if period_word:
            period = parse_period(period_word, tc.zone, now)
        elif kind == "weekly":
            period = last_complete_week(now, tc.zone)
        else:
            period = last_complete_month(now, tc.zone)
        with self.session() as s:
            engine = TeamEngine(s, tc)
            if kind == "weekly":
                return ans.DigestPreview(kind, build_weekly(engine, period, self.now_naive()))
            return ans.DigestPreview(kind, build_monthly(engine, period, self.now_naive()))

    def health(self, team: str) -> Health:
        period = self.period(team, None)
        with self.session() as s:
            return build_health(TeamEngine(s, self.team(team)), period)

    def status(self, team: str) -> SourceStatus:
        """Every source of a team: its data as of, last error and next run."""
        with self.session() as s:
            return build_status(s, self.team(team), self.now())

    def teams(self, conversation: str | None) -> ans.TeamList:
        rows = []
        with self.session() as s:
            ids = channels.team_ids(s)
            for t in self.config.teams:
                chans = (
                    set(channels.channels_of_team(s, ids[t.name], platform=self.platform))
                    if t.name in ids
                    else set()
                )
                if t.channel and self.platform == "slack":
                    chans.add(t.channel)
                members = (
                    len(population.current_members(s, ids[t.name]))
                    if t.has_members and t.name in ids
                    else None
                )
                rows.append(
                    TeamRow(
                        t.name,
                        t.timezone,
                        len(t.repos),
                        tuple(sorted(chans)),
                        members,
                        t.github_team,
                        t.paths,
                    )
                )
        return ans.TeamList(tuple(rows), self.channel_team(conversation))

    def definition(self, metric: str, team: str | None) -> ans.Definition:
        spec = registry.resolve(metric)
        target = business_hours = None
        if team and team in self.team_names():
            tc = self.team(team)
            target = fmt.target(spec.kind, tc.target_for(spec.id))
            if tc.working_hours is not None and spec.id in BUSINESS_HOURS_KPIS:
                business_hours = fmt.working_hours(tc.working_hours, tc.timezone)
        return ans.Definition(spec, target, business_hours)

    # ------------------------------------------------------- conversation state

    def set_channel_team(self, conversation: str, team: str, actor: Actor) -> ans.Notice:
        self.admit(actor)
        name = self.team(team).name
        v = self.voice
        here = v.conversation(conversation)
        with self.session() as s:
            current = channels.mapping(s, platform=self.platform, channel_id=conversation)
            team_id = self._team_id(s, name)
            if current is not None and current.team_id == team_id:
                return ans.Notice(f"{here} already belongs to {v.bold(name)}.")
            if current is not None:
                now_team = channels.team_name(s, current.team_id)
                if not perms.may_map_channel(
                    actor, mapped=True, mapped_by=current.set_by, leads=self.leads(now_team)
                ):
                    who = (
                        f"{v.person('the person who mapped it', current.set_by)}, "
                        if current.set_by
                        else ""
                    )
                    raise NotAllowed(
                        f"You're not allowed to remap {here}: it belongs to "
                        f"{v.bold(now_team or '?')}, and only {who}a workspace admin or a lead "
                        f"of {now_team} can change that."
                    )
            channels.set_channel_team(
                s,
                platform=self.platform,
                channel_id=conversation,
                team_id=team_id,
                set_by=actor.user_id,
                now=self.now_naive(),
            )
        return ans.Notice(
            f"{here} now belongs to {v.bold(name)}: {v.command('')} here answers for "
            f"{name} unless you name another team."
        )

    def conversation_subscriptions(self, conversation: str) -> ans.SubscriptionList:
        with self.session() as s:
            subs = subscriptions.for_channel(s, platform=self.platform, channel_id=conversation)
        when = {sub.id: self.digest_time(sub.team, sub.kind, sub.schedule) for sub in subs}
        return ans.SubscriptionList(conversation, tuple(subs), when)

    def remember_reference(self, conversation: str, reference: subscriptions.Reference) -> None:
        """The conversation's subscriptions follow the newest reference it was heard from."""
        with self.session() as s:
            changed = subscriptions.refresh_reference(
                s, platform=self.platform, channel_id=conversation, reference=reference
            )
        if changed:
            log.info("%s subscription(s) of a conversation moved to a new reference", changed)

    def digest_time(self, team: str, kind: str, schedule: str | None = None) -> str:
        """When a team's digest is posted, in words: the subscription's own ``schedule``
        ("mon 09:00", "1 09:00") or the team's digests times from kpibot.yml."""
        if schedule:
            day, _, hhmm = schedule.partition(" ")
        else:
            d = self.team(team).digests if team in self.team_names() else DigestTimes()
            if kind == "weekly":
                day = WEEKDAYS[d.weekly_day]
                hhmm = f"{d.weekly_time[0]:02d}:{d.weekly_time[1]:02d}"
            else:
                day = str(d.monthly_day)
                hhmm = f"{d.monthly_time[0]:02d}:{d.monthly_time[1]:02d}"
        if kind == "weekly":
            return f"every {day.capitalize()} at {hhmm}"
        return f"on day {day} of each month at {hhmm}"

    def subscribe(
        self,
        conversation: str,
        team: str,
        kind: str,
        actor: Actor,
        schedule: str | None = None,
        ensure_postable: Callable[[], str | None] | None = None,
        reference: subscriptions.Reference | None = None,
    ) -> ans.Notice:
        """Subscribe the conversation; the digest follows the team's times in kpibot.yml
        unless ``schedule`` ("tue 10:00", "15 08:30") gives it a time of its own.

        Re-timing an active subscription is a change (see :mod:`bot.chat.permissions`).
        ``ensure_postable`` (the surface's) makes sure the digest can be posted in the
        conversation, or returns what the subscriber must do first; then nothing is stored."""
        self.admit(actor)
        tc = self.team(team)
        key = {"platform": self.platform, "channel_id": conversation}
        with self.session() as s:
            found = subscriptions.find(s, **key, team_id=self._team_id(s, tc.name), kind=kind)
        if found is not None and found.active and schedule not in (None, found.schedule):
            self._check_subscription(found, actor)
        if ensure_postable is not None:
            problem = ensure_postable()
            if problem:
                return ans.Notice(problem)
        with self.session() as s:
            sub, created = subscriptions.subscribe(
                s,
                **key,
                team_id=self._team_id(s, tc.name),
                kind=kind,
                created_by=actor.user_id,
                now=self.now_naive(),
                schedule=schedule,
                reference=reference,
            )
        v = self.voice
        when = self.digest_time(tc.name, kind, sub.schedule)
        verb = "will now receive" if created else "already receives"
        return ans.Notice(
            f"{v.conversation(conversation)} {verb} the {kind} digest of {v.bold(sub.team)} "
            f"{when} ({tc.timezone}). {v.command(kind)} previews it."
        )

    def unsubscribe(
        self, conversation: str, team: str | None, kind: str | None, actor: Actor
    ) -> ans.Notice:
        """Stop the conversation's matching digests: all of them, or none when ``actor`` may
        not stop one of them."""
        self.admit(actor)
        key = {"platform": self.platform, "channel_id": conversation}
        with self.session() as s:
            tid = self._team_id(s, self.team(team).name) if team else None
            for sub in subscriptions.matching(s, **key, kind=kind, team_id=tid):
                self._check_subscription(sub, actor)
            gone = subscriptions.unsubscribe(s, **key, kind=kind, team_id=tid)
        if not gone:
            return ans.Notice(
                "Nothing to stop: this channel has no such digest subscription. "
                f"{self.voice.command('subscriptions')} lists them."
            )
        what = ", ".join(f"the {g.kind} digest of {g.team}" for g in gone)
        return ans.Notice(f"Stopped {what} in {self.voice.conversation(conversation)}.")

    # ---------------------------------------------------------- threshold alerts

    def _alert_terms(self, tc: TeamConfig, kpi: str, target: Target) -> str:
        spec = registry.BY_ID[kpi]
        return (
            f"checked daily at {alert_rule.EVALUATION_TIME:%H:%M} ({tc.timezone}) over the last "
            f"{alert_rule.window_days(kpi)} days against the target "
            f"{fmt.target(spec.kind, target)}"
        )

    def set_alert(self, team: str, kpi: str, on: bool, actor: Actor) -> ans.Notice:
        """Switch a team's threshold alert on a KPI on or off (admins and the team's leads;
        asking for what is already so changes nothing). The setting wins over kpibot.yml."""
        self.admit(actor)
        tc = self.team(team)
        spec = registry.resolve(kpi)
        kpi = spec.id
        v = self.voice
        what = f"{v.bold(spec.name)} of {v.bold(tc.name)}"
        with self.session() as s:
            tid = self._team_id(s, tc.name)
            was_on = kpi in alerts_store.enabled(tc.alerts, alerts_store.chat_settings(s, tid))
            if was_on == on:
                return ans.Notice(f"Alerts on {what} are already {'on' if on else 'off'}.")
            if not perms.may_change_alerts(actor, leads=tc.leads):
                raise NotAllowed(
                    f"You're not allowed to switch alerts of {tc.name} {'on' if on else 'off'}:"
                    f" only a workspace admin or a lead of {tc.name} can."
                )
            alerts_store.set_enabled(s, tid, kpi, on, by=actor.user_id, now=self.now_naive())
            where = [
                v.conversation(c)
                for _, c in channels.team_conversations(
                    s, tid, configured=tc.channel, platform=self.platform
                )
            ]
        if not on:
            return ans.Notice(f"Alerts on {what} are off.")
        to = (
            f"to {', '.join(where)}"
            if where
            else f"to the team's channels (none yet: {v.command(f'team set {tc.name}')} in one)"
        )
        return ans.Notice(
            f"Alerts on {what} are on: {self._alert_terms(tc, kpi, tc.target_for(kpi))}, "
            f"posted {to} once when it goes off target and once when it recovers. "
            f"{v.command(f'alert preview {kpi}')} shows how often it would have fired."
        )

    def alert_preview(self, team: str, kpi: str, target_text: str | None) -> ans.Notice:
        """How many alerts the last 90 days would have sent with a target (the team's, or
        ``target_text``), and when."""
        tc = self.team(team)
        spec = registry.resolve(kpi)
        kpi = spec.id
        try:
            target = parse_target(target_text, spec) if target_text else tc.target_for(kpi)
        except ValueError as exc:
            raise KpibotError(str(exc)) from None
        with self.session() as s:
            p = alert_reports.preview(TeamEngine(s, tc), kpi, target, self.now())
        v = self.voice
        what = f"{v.bold(spec.name)} of {v.bold(tc.name)}"
        n = len(p.sent)
        if n:
            when = ", ".join(f"{fmt.day_list([c.at], tc.timezone)} ({c.kind})" for c in p.sent)
            fired = f"would have fired {n} {'time' if n == 1 else 'times'}: {when}"
        else:
            fired = "would not have fired"
        quiet = (
            f" {p.silent} more {'crossing' if p.silent == 1 else 'crossings'} fell within "
            f"{alert_rule.COOL_DOWN.days} days of the previous one and would have changed the "
            "status silently."
            if p.silent
            else ""
        )
        return ans.Notice(
            f"With the target {fmt.target(spec.kind, target)}, {what} {fired} in the last "
            f"{p.days} days ({self._alert_terms(tc, kpi, target)}; fewer than "
            f"{alert_rule.MIN_N} in a window keep the previous status).{quiet}"
        )

    # ------------------------------------------------------------- action items

    @staticmethod
    def _row(item: ActionItem, team: str) -> ItemRow:
        return ItemRow(
            item.id,
            team,
            item.opportunity,
            item.resolution,
            item.owner,
            item.due_on,
            item.completed_on,
            item.kpi,
            item.baseline_value,
            item.created_by,
            item.platform,
        )

    @staticmethod
    def _item_and_team(s: Session, item_id: int) -> tuple[ActionItem, str] | None:
        row = s.execute(
            select(ActionItem, Team.name)
            .join(Team, Team.id == ActionItem.team_id)
            .where(ActionItem.id == item_id)
        ).first()
        return (row[0], row[1]) if row else None

    def item(self, item_id: int) -> ItemRow | None:
        with self.session() as s:
            found = self._item_and_team(s, item_id)
            return self._row(*found) if found else None

    def items(self, team: str, include_done: bool) -> list[ItemRow]:
        with self.session() as s:
            q = (
                select(ActionItem)
                .where(ActionItem.team_id == self._team_id(s, team))
                .order_by(ActionItem.completed_on.is_not(None), ActionItem.due_on, ActionItem.id)
            )
            if not include_done:
                q = q.where(ActionItem.completed_on.is_(None))
            return [self._row(i, team) for i in s.scalars(q)]

    def actions_list(self, team: str, include_done: bool) -> ans.ItemList:
        return ans.ItemList(
            tuple(self.items(team, include_done)), team, include_done, self.today(team)
        )

    def open_items_of(self, user: str) -> list[ItemRow]:
        with self.session() as s:
            rows = s.execute(
                select(ActionItem, Team.name)
                .join(Team, Team.id == ActionItem.team_id)
                .where(
                    ActionItem.platform == self.platform,
                    ActionItem.owner == user,
                    ActionItem.completed_on.is_(None),
                )
                .order_by(ActionItem.due_on, ActionItem.id)
            ).all()
            return [self._row(i, t) for i, t in rows]

    def baseline(self, team: str, kpi: str | None) -> tuple[float | None, int | None]:
        """The KPI's value (and n) for the team over the last 28 days: what an action item
        is measured against."""
        if not kpi or kpi not in registry.BY_ID:
            return None, None
        with self.session() as s:
            mv = TeamEngine(s, self.team(team)).value(kpi, self.period(team, None))
        return (mv.value if mv.has_data else None), mv.n

    def editable_item(self, item_id: int, actor: Actor) -> ItemRow:
        """The item ``actor`` wants to edit, when they may."""
        item = self.item(item_id)
        if item is None:
            raise KpibotError(GONE)
        self._check_item(item, actor)
        return item

    def validate(
        self,
        data: ItemInput,
        existing: ItemRow | None,
        owner_workspace: Callable[[str], str | None] | None = None,
    ) -> dict[str, str]:
        """Inline errors by field name (:data:`bot.chat.items.FIELDS`); empty when the input
        can be stored. ``owner_workspace`` (the surface's look-up) gives a picked owner's
        workspace; a new owner must be of the installed one."""
        errors: dict[str, str] = {}
        if not data.team or data.team not in self.team_names():
            errors["team"] = "Pick the team this action is for."
        if data.kpi and data.kpi not in registry.BY_ID:
            errors["kpi"] = "Pick a KPI from the list, or leave it empty."
        for name, value, limit in (
            ("opportunity", data.opportunity, MAX_OPPORTUNITY),
            ("resolution", data.resolution, MAX_RESOLUTION),
        ):
            if not value.strip():
                errors[name] = f"Describe the {name}."
            elif len(value) > limit:
                errors[name] = f"Keep it under {limit} characters (now {len(value)})."
        if not data.owner:
            errors["owner"] = "Pick the owner."
        elif (
            owner_workspace is not None
            and (existing is None or existing.owner != data.owner)
            and not self.owner_allowed(owner_workspace(data.owner))
        ):
            errors["owner"] = (
                "Pick an owner from this workspace: people of another organisation (or who "
                "could not be looked up) can't own action items here."
            )
        if not data.due_on:
            errors["due_on"] = "Pick a due date."
        else:
            try:
                due = date.fromisoformat(data.due_on)
            except ValueError:
                errors["due_on"] = "Pick a date from the calendar."
            else:
                today = self.today(data.team if "team" not in errors else None)
                unchanged = existing is not None and existing.due_on == due
                if due < today and not unchanged:
                    errors["due_on"] = f"The due date can't be in the past (today is {today})."
        return errors

    def save_item(
        self,
        data: ItemInput,
        actor: Actor,
        conversation: str | None,
        item_id: int | None,
        submission: str | None = None,
        owner_workspace: Callable[[str], str | None] | None = None,
    ) -> ItemRow | None:
        """Validate, check the permission (an edit), and store an item (new, or an edit of
        ``item_id``); new ones get the baseline. Invalid input raises :class:`InvalidItem`
        with the errors by field name; nothing is stored.

        ``submission`` is the platform's key of this exact form submission: a second
        delivery of it (a replay) stores nothing and returns None."""
        self.admit(actor)
        existing = self.editable_item(item_id, actor) if item_id is not None else None
        errors = self.validate(data, existing, owner_workspace)
        if errors:
            raise InvalidItem(errors)
        assert data.team and data.owner and data.due_on
        due = date.fromisoformat(data.due_on)
        try:
            return self._store_item(data, actor, conversation, item_id, submission, due)
        except IntegrityError:
            with self.session() as s:
                if submission is not None and actions.submission_seen(s, submission):
                    log.info("form submission delivered twice at once; stored once")
                    return None
            raise

    def _store_item(
        self,
        data: ItemInput,
        actor: Actor,
        conversation: str | None,
        item_id: int | None,
        submission: str | None,
        due: date,
    ) -> ItemRow | None:
        assert data.team and data.owner
        user = actor.user_id
        # the baseline is read before the write transaction starts, so it is held briefly
        value, n = self.baseline(data.team, data.kpi) if item_id is None else (None, None)
        with self.session() as s:
            claim = None
            if submission is not None:
                claim = actions.claim_submission(
                    s, submission, submitted_by=user, now=self.now_naive()
                )
                if claim is None:
                    log.info("form submission delivered again; nothing stored")
                    return None
            team_id = self._team_id(s, data.team)
            if item_id is None:
                item = ActionItem(
                    team_id=team_id,
                    platform=self.platform,
                    opportunity=data.opportunity.strip(),
                    resolution=data.resolution.strip(),
                    owner=data.owner,
                    due_on=due,
                    kpi=data.kpi or None,
                    baseline_value=value,
                    baseline_n=n,
                    created_by=user,
                    created_at=self.now_naive(),
                    channel_id=conversation,
                )
                s.add(item)
            else:
                found = s.get(ActionItem, item_id)
                if found is None:
                    raise KpibotError(GONE)
                item = found
                kpi_changed = (data.kpi or None) != item.kpi or team_id != item.team_id
                item.team_id = team_id
                item.opportunity = data.opportunity.strip()
                item.resolution = data.resolution.strip()
                item.owner = data.owner
                item.due_on = due
                if kpi_changed:
                    item.kpi = data.kpi or None
                    item.baseline_value, item.baseline_n = self.baseline(data.team, data.kpi)
            s.flush()
            if claim is not None:
                claim.item_id = item.id
            return self._row(item, data.team)

    def set_done(self, item_id: int, done: bool, actor: Actor) -> ItemRow:
        """Mark an item done (today, in its team's zone) or reopen it, when ``actor`` may."""
        self.editable_item(item_id, actor)
        with self.session() as s:
            found = self._item_and_team(s, item_id)
            if found is None:
                raise KpibotError(GONE)
            item, team = found
            item.completed_on = (
                self.today(team if team in self.team_names() else None) if done else None
            )
            s.flush()
            return self._row(item, team)

    # -------------------------------------------------------------- own view

    def home(self, user: str) -> ans.Home:
        """A person's own view: their teams' health, their open items and their teams'
        digests on this platform."""
        mine = self.user_teams(user)
        note = None
        teams = mine
        if not teams:
            teams = self.team_names()[:5]
            if teams:
                note = (
                    "Showing every team: you'll see your own once kpibot.yml lists you as a "
                    "member, you own an action item or you map a channel with "
                    f"{self.voice.command('team set')}."
                )
        healths = tuple(self.health(t) for t in teams[:10])
        items = tuple(self.open_items_of(user))
        subs: list[subscriptions.Subscription] = []
        with self.session() as s:
            ids = channels.team_ids(s)
            for t in teams:
                if t in ids:
                    subs.extend(
                        x for x in subscriptions.for_team(s, ids[t]) if x.platform == self.platform
                    )
        return ans.Home(user, healths, items, tuple(subs), self.today(None), note)

    # ------------------------------------------------------------------- values

    @staticmethod
    def card_ref(value: str) -> tuple[str, str, str]:
        """(metric, team, period) from a card button's value."""
        try:
            data = json.loads(value)
            return str(data["m"]), str(data["t"]), str(data["p"])
        except (ValueError, KeyError, TypeError):
            raise KpibotError(
                "that button is from an older message: run the command again"
            ) from None


class InvalidItem(KpibotError):
    """Action-item input that cannot be stored; ``errors``: field name -> what to fix."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors
