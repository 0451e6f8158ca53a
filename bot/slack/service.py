"""What the Slack listeners ask for: team resolution, reports rendered as Block Kit, action
items and subscriptions. One unit of work (session) per call; no Slack API calls here, so
every answer is plain data the listeners send.

The clock is read only through ``clock`` (the surface's), so tests pick the moment.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.chat import permissions as perms
from bot.chat.permissions import Actor, NotAllowed
from bot.errors import KpibotError
from bot.metrics import registry
from bot.metrics.engine import TeamEngine
from bot.metrics.periods import Period, last_complete_month, last_complete_week, parse_period
from bot.renderers import blocks as kit
from bot.renderers import format as fmt
from bot.renderers.mrkdwn import GITHUB_COM, Links
from bot.reports.cards import Health, MetricCard, build_card, build_dora, build_health
from bot.reports.digests import build_monthly, build_weekly
from bot.settings import WEEKDAYS, Config, DigestTimes, TeamConfig
from bot.slack import blocks
from bot.slack.blocks import ItemRow, Payload
from bot.slack.parse import Command
from bot.store import actions, channels, subscriptions
from bot.store.models import ActionItem, ChannelTeam, Team
from bot.store.session import unit_of_work
from bot.store.teams import sync_teams

log = logging.getLogger("kpibot.slack")

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class NeedTeam(KpibotError):
    """No team given, none mapped to the channel and the user is in several (or none)."""


__all__ = ["Actor", "ItemInput", "NeedTeam", "NotAllowed", "Service"]

ITEM_REFUSAL = (
    "You're not allowed to change this action item: only its owner (<@{owner}>), the person "
    "who logged it (<@{creator}>), a workspace admin or a lead of {team} can."
)
OWNER_ELSEWHERE = (
    "Pick an owner from this workspace: people of another organisation (or who could not be "
    "looked up) can't own action items here."
)


@dataclass(frozen=True)
class ItemInput:
    """The fields of the action-item modal, as submitted."""

    team: str | None
    kpi: str | None
    opportunity: str
    resolution: str
    owner: str | None
    due_on: str | None  # YYYY-MM-DD


class Service:
    def __init__(
        self,
        factory: sessionmaker[Session],
        config: Config,
        clock: Clock,
        teams_stored: bool = False,
        links: Links = GITHUB_COM,
    ) -> None:
        """``teams_stored``: the configured teams are already in the store (report workers,
        started after the app stored them); ``links``: the source URLs that may be links."""
        self.links = links
        self.factory = factory
        self.config = config
        self.clock = clock
        self._synced = teams_stored
        # the workspace (tenant) the app is installed in; None until the surface knows it
        self.home_workspace: str | None = None

    # ------------------------------------------------------------------ basics

    def prepare(self) -> None:
        """Store the configured teams now (before the first request or worker needs them)."""
        with self.session():
            pass

    @contextmanager
    def session(self) -> Iterator[Session]:
        with unit_of_work(self.factory) as s:
            if not self._synced:
                sync_teams(s, self.config)
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
        """Refuse (:class:`NotAllowed`) a request from another workspace than the installed one."""
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
        if not perms.may_change_item(
            actor, owner=item.owner, creator=item.created_by, leads=self.leads(item.team)
        ):
            raise NotAllowed(
                ITEM_REFUSAL.format(owner=item.owner, creator=item.created_by, team=item.team)
            )

    def editable_item(self, item_id: int, actor: Actor) -> ItemRow:
        """The item ``actor`` wants to edit, when they may."""
        item = self.item(item_id)
        if item is None:
            raise KpibotError("that action item no longer exists")
        self._check_item(item, actor)
        return item

    def _check_subscription(self, sub: subscriptions.Subscription, actor: Actor) -> None:
        if not perms.may_change_subscription(
            actor, created_by=sub.created_by, leads=self.leads(sub.team)
        ):
            who = f"the person who subscribed it (<@{sub.created_by}>), " if sub.created_by else ""
            raise NotAllowed(
                f"You're not allowed to change the {sub.kind} digest of {sub.team} in "
                f"<#{sub.channel_id}>: only {who}a workspace admin or a lead of {sub.team} can."
            )

    def _team_id(self, s: Session, name: str) -> int:
        tid = s.scalar(select(Team.id).where(Team.name == name))
        if tid is None:
            tid = sync_teams(s, self.config)[name]
        return tid

    # ------------------------------------------------------------- resolution

    def channel_team(self, channel: str | None) -> str | None:
        """The team of a channel: a Slack mapping first, else the channel in kpibot.yml."""
        if not channel:
            return None
        with self.session() as s:
            mapped = channels.channel_team(s, channel)
        if mapped and mapped in self.team_names():
            return mapped
        for t in self.config.teams:
            if t.channel == channel:
                return t.name
        return None

    def user_teams(self, user: str) -> list[str]:
        with self.session() as s:
            names = channels.user_teams(s, user)
        known = set(self.team_names())
        return [n for n in names if n in known]

    def resolve_team(self, explicit: str | None, channel: str | None, user: str) -> str:
        """Explicit team, else the channel's, else the user's only team, else the only team."""
        if explicit:
            return self.team(explicit).name
        found = self.channel_team(channel)
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

    # ---------------------------------------------------------------- reports

    def card(self, team: str, metric: str, period_word: str | None) -> MetricCard:
        period = self.period(team, period_word)
        with self.session() as s:
            return build_card(TeamEngine(s, self.team(team)), metric, period)

    def answer(self, cmd: Command, user: str, channel: str | None) -> Payload:
        """The reply to a parsed read-only command (cards, dora, health, digests, lists)."""
        if cmd.kind == "help":
            return blocks.help_payload(self.channel_team(channel), self.team_names())
        if cmd.kind == "teams":
            return self.teams(channel)
        if cmd.kind == "subscriptions":
            return self.channel_subscriptions(channel or "")
        team = self.resolve_team(cmd.team, channel, user)
        if cmd.kind == "card":
            assert cmd.metric is not None
            return blocks.card_payload(self.card(team, cmd.metric, cmd.period))
        if cmd.kind == "dora":
            period = self.period(team, cmd.period)
            with self.session() as s:
                return blocks.dora_payload(build_dora(TeamEngine(s, self.team(team)), period))
        if cmd.kind == "health":
            period = self.period(team, cmd.period)
            with self.session() as s:
                return blocks.health_payload(build_health(TeamEngine(s, self.team(team)), period))
        if cmd.kind == "digest":
            return self.digest(team, cmd.digest or "weekly", cmd.period)
        if cmd.kind == "actions":
            return self.actions_list(team, cmd.all)
        raise KpibotError(f"'{cmd.kind}' is not answered here")

    def digest(self, team: str, kind: str, period_word: str | None) -> Payload:
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
                out = kit.weekly(build_weekly(engine, period, self.now_naive()), self.links)
            else:
                out = kit.monthly(build_monthly(engine, period, self.now_naive()))
        note = kit.context(
            f"Preview of the {kind} digest, only visible to you. "
            f"`/kpi subscribe {kind}` posts it in this channel on schedule."
        )
        return blocks.message(out["text"], kit.limit_blocks([*out["blocks"], note]))

    def health(self, team: str) -> Health:
        period = self.period(team, None)
        with self.session() as s:
            return build_health(TeamEngine(s, self.team(team)), period)

    def teams(self, channel: str | None) -> Payload:
        rows = []
        with self.session() as s:
            ids = channels.team_ids(s)
            for t in self.config.teams:
                chans = set(channels.channels_of_team(s, ids[t.name])) if t.name in ids else set()
                if t.channel:
                    chans.add(t.channel)
                rows.append(blocks.TeamRow(t.name, t.timezone, len(t.repos), tuple(sorted(chans))))
        return blocks.teams_payload(rows, self.channel_team(channel))

    def definition(self, metric: str, team: str | None) -> Payload:
        spec = registry.resolve(metric)
        target = None
        if team and team in self.team_names():
            target = fmt.target(spec.kind, self.team(team).target_for(spec.id))
        return blocks.definition_payload(spec, target)

    # ------------------------------------------------------------ channel state

    def set_channel_team(self, channel: str, team: str, actor: Actor) -> Payload:
        self.admit(actor)
        name = self.team(team).name
        with self.session() as s:
            current = s.get(ChannelTeam, channel)
            team_id = self._team_id(s, name)
            if current is not None and current.team_id == team_id:
                return blocks.message(f"<#{channel}> already belongs to *{name}*.")
            if current is not None:
                now_team = channels.team_name(s, current.team_id)
                if not perms.may_map_channel(
                    actor, mapped=True, mapped_by=current.set_by, leads=self.leads(now_team)
                ):
                    who = f"<@{current.set_by}>, who mapped it, " if current.set_by else ""
                    raise NotAllowed(
                        f"You're not allowed to remap <#{channel}>: it belongs to *{now_team}*, "
                        f"and only {who}a workspace admin or a lead of {now_team} can change that."
                    )
            channels.set_channel_team(
                s,
                channel_id=channel,
                team_id=team_id,
                set_by=actor.user_id,
                now=self.now_naive(),
            )
        return blocks.message(
            f"<#{channel}> now belongs to *{name}*: `/kpi` here answers for {name} unless you "
            "name another team."
        )

    def channel_subscriptions(self, channel: str) -> Payload:
        with self.session() as s:
            subs = subscriptions.for_channel(s, channel)
        when = {sub.id: self.digest_time(sub.team, sub.kind, sub.schedule) for sub in subs}
        return blocks.subscriptions_payload(subs, channel, when)

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
        channel: str,
        team: str,
        kind: str,
        actor: Actor,
        schedule: str | None = None,
        ensure_postable: Callable[[], str | None] | None = None,
    ) -> Payload:
        """Subscribe the channel; the digest follows the team's times in kpibot.yml unless
        ``schedule`` ("tue 10:00", "15 08:30") gives the channel a time of its own.

        Re-timing an active subscription is a change (see :mod:`bot.chat.permissions`).
        ``ensure_postable`` (the surface's) makes sure the digest can be posted in the
        channel, or returns what the subscriber must do first; then nothing is stored."""
        self.admit(actor)
        tc = self.team(team)
        with self.session() as s:
            found = subscriptions.find(
                s, channel_id=channel, team_id=self._team_id(s, tc.name), kind=kind
            )
        if found is not None and found.active and schedule not in (None, found.schedule):
            self._check_subscription(found, actor)
        if ensure_postable is not None:
            problem = ensure_postable()
            if problem:
                return blocks.message(problem)
        with self.session() as s:
            sub, created = subscriptions.subscribe(
                s,
                channel_id=channel,
                team_id=self._team_id(s, tc.name),
                kind=kind,
                created_by=actor.user_id,
                now=self.now_naive(),
                schedule=schedule,
            )
        when = self.digest_time(tc.name, kind, sub.schedule)
        verb = "will now receive" if created else "already receives"
        return blocks.message(
            f"<#{channel}> {verb} the {kind} digest of *{sub.team}* {when} ({tc.timezone}). "
            f"`/kpi {kind}` previews it."
        )

    def unsubscribe(
        self, channel: str, team: str | None, kind: str | None, actor: Actor
    ) -> Payload:
        """Stop the channel's matching digests: all of them, or none when ``actor`` may not
        stop one of them."""
        self.admit(actor)
        with self.session() as s:
            tid = self._team_id(s, self.team(team).name) if team else None
            for sub in subscriptions.matching(s, channel_id=channel, kind=kind, team_id=tid):
                self._check_subscription(sub, actor)
            gone = subscriptions.unsubscribe(s, channel_id=channel, kind=kind, team_id=tid)
        if not gone:
            return blocks.message(
                "Nothing to stop: this channel has no such digest subscription. "
                "`/kpi subscriptions` lists them."
            )
        what = ", ".join(f"the {g.kind} digest of {g.team}" for g in gone)
        return blocks.message(f"Stopped {what} in <#{channel}>.")

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
        )

    def item(self, item_id: int) -> ItemRow | None:
        with self.session() as s:
            row = s.execute(
                select(ActionItem, Team.name)
                .join(Team, Team.id == ActionItem.team_id)
                .where(ActionItem.id == item_id)
            ).first()
            return self._row(row[0], row[1]) if row else None

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

    def actions_list(self, team: str, include_done: bool) -> Payload:
        return blocks.actions_payload(
            self.items(team, include_done), team, include_done, self.today(team)
        )

    def open_items_of(self, user: str) -> list[ItemRow]:
        with self.session() as s:
            rows = s.execute(
                select(ActionItem, Team.name)
                .join(Team, Team.id == ActionItem.team_id)
                .where(ActionItem.owner == user, ActionItem.completed_on.is_(None))
                .order_by(ActionItem.due_on, ActionItem.id)
            ).all()
            return [self._row(i, t) for i, t in rows]

    def baseline(self, team: str, kpi: str | None) -> tuple[float | None, int | None]:
        if not kpi or kpi not in registry.BY_ID:
            return None, None
        with self.session() as s:
            mv = TeamEngine(s, self.team(team)).value(kpi, self.period(team, None))
        return (mv.value if mv.has_data else None), mv.n

    def validate(
        self,
        data: ItemInput,
        existing: ItemRow | None,
        owner_workspace: Callable[[str], str | None] | None = None,
    ) -> dict[str, str]:
        """Inline errors by modal block id; empty when the input can be stored.
        ``owner_workspace`` (the surface's look-up) gives a picked owner's workspace; a new
        owner must be of the installed one."""
        errors: dict[str, str] = {}
        if not data.team or data.team not in self.team_names():
            errors[blocks.B_TEAM] = "Pick the team this action is for."
        if data.kpi and data.kpi not in registry.BY_ID:
            errors[blocks.B_KPI] = "Pick a KPI from the list, or leave it empty."
        for block_id, value, limit, what in (
            (blocks.B_OPPORTUNITY, data.opportunity, blocks.MAX_OPPORTUNITY, "opportunity"),
            (blocks.B_RESOLUTION, data.resolution, blocks.MAX_RESOLUTION, "resolution"),
        ):
            if not value.strip():
                errors[block_id] = f"Describe the {what}."
            elif len(value) > limit:
                errors[block_id] = f"Keep it under {limit} characters (now {len(value)})."
        if not data.owner:
            errors[blocks.B_OWNER] = "Pick the owner."
        elif (
            owner_workspace is not None
            and (existing is None or existing.owner != data.owner)
            and not self.owner_allowed(owner_workspace(data.owner))
        ):
            errors[blocks.B_OWNER] = OWNER_ELSEWHERE
        if not data.due_on:
            errors[blocks.B_DUE] = "Pick a due date."
        else:
            try:
                due = date.fromisoformat(data.due_on)
            except ValueError:
                errors[blocks.B_DUE] = "Pick a date from the calendar."
            else:
                today = self.today(data.team if blocks.B_TEAM not in errors else None)
                unchanged = existing is not None and existing.due_on == due
                if due < today and not unchanged:
                    errors[blocks.B_DUE] = f"The due date can't be in the past (today is {today})."
        return errors

    def save_item(
        self,
        data: ItemInput,
        actor: Actor,
        channel: str | None,
        item_id: int | None,
        submission: str | None = None,
    ) -> ItemRow | None:
        """Store a validated item (new, or an edit of ``item_id``); new ones get the baseline.

        ``submission`` is the platform's key of this exact form submission: a second
        delivery of it (a replay) stores nothing and returns None."""
        assert data.team and data.owner and data.due_on
        self.admit(actor)
        due = date.fromisoformat(data.due_on)
        if item_id is not None:
            current = self.item(item_id)
            if current is None:
                raise KpibotError("that action item no longer exists")
            self._check_item(current, actor)
        try:
            return self._store_item(data, actor, channel, item_id, submission, due)
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
        channel: str | None,
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
                    opportunity=data.opportunity.strip(),
                    resolution=data.resolution.strip(),
                    owner=data.owner,
                    due_on=due,
                    kpi=data.kpi or None,
                    baseline_value=value,
                    baseline_n=n,
                    created_by=user,
                    created_at=self.now_naive(),
                    channel_id=channel,
                )
                s.add(item)
            else:
                found = s.get(ActionItem, item_id)
                if found is None:
                    raise KpibotError("that action item no longer exists")
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
        current = self.item(item_id)
        if current is None:
            raise KpibotError("that action item no longer exists")
        self._check_item(current, actor)
        with self.session() as s:
            row = s.execute(
                select(ActionItem, Team.name)
                .join(Team, Team.id == ActionItem.team_id)
                .where(ActionItem.id == item_id)
            ).first()
            if row is None:
                raise KpibotError("that action item no longer exists")
            item, team = row
            item.completed_on = (
                self.today(team if team in self.team_names() else None) if done else None
            )
            s.flush()
            return self._row(item, team)

    # ----------------------------------------------------------------- App Home

    def home(self, user: str) -> dict[str, Any]:
        mine = self.user_teams(user)
        note = None
        teams = mine
        if not teams:
            teams = self.team_names()[:5]
            if teams:
                note = (
                    "Showing every team: you'll see your own once you own an action item or map "
                    "a channel with `/kpi team set`."
                )
        healths = [self.health(t) for t in teams[:10]]
        items = self.open_items_of(user)
        with self.session() as s:
            subs = []
            ids = channels.team_ids(s)
            for t in teams:
                if t in ids:
                    subs.extend(subscriptions.for_team(s, ids[t]))
        return blocks.home_view(
            user=user,
            healths=healths,
            items=items,
            subscriptions=subs,
            today=self.today(None),
            note=note,
        )

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
