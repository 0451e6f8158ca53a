"""The chat-neutral core, driven directly without any chat surface: team resolution,
action-item rules (validation by field name, baseline, edit/done/reopen with the permission
rule inside the service), subscriptions and mappings keyed by (platform, conversation), and
digest delivery through one exactly-once path with a poster per platform."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.chat import answers as ans
from bot.chat.grammar import parse
from bot.chat.items import FIELDS, ItemInput
from bot.chat.permissions import Actor, NotAllowed
from bot.chat.service import ChatService, InvalidItem, NeedTeam
from bot.chat.voice import Voice
from bot.errors import KpibotError
from bot.reports.digests import MonthlyDigest, WeeklyDigest
from bot.scheduler.jobs import DigestJobs, SchedulerOptions
from bot.scheduler.posting import ConversationUnavailable
from bot.settings import Config, TeamConfig
from bot.store import subscriptions
from bot.store.models import ActionItem, DigestRun
from bot.store.session import session_factory
from bot.store.subscriptions import Subscription
from bot.store.teams import sync_teams
from tests.scheduler_fakes import SchedulerSlack, poster_for

NOW = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
CONFIG = Config(
    (
        TeamConfig("payments", repos=("acme/pay",), channel="CPAYYML1", leads=("ULEAD1",)),
        TeamConfig("mobile", repos=("acme/app",)),
    )
)


class TeamsVoice(Voice):
    """A second platform's wording, as a Teams surface will give it."""

    platform = "teams"

    def user(self, user_id: str) -> str:
        return f"<at>{user_id}</at>"


def service(engine: Any, voice: Voice, config: Config = CONFIG) -> ChatService:
    return ChatService(session_factory(engine), config, lambda: NOW, voice)


class SlackLike(Voice):
    platform = "slack"


def slack(user: str, admin: bool = False) -> Actor:
    return Actor("slack", user, None, admin)


def teams(user: str, admin: bool = False) -> Actor:
    return Actor("teams", user, None, admin)


def item_input(**kw: Any) -> ItemInput:
    values: dict[str, Any] = {
        "team": "payments",
        "kpi": "cycle-time",
        "opportunity": "Reviews wait a day",
        "resolution": "Review rota",
        "owner": "UOWNER1",
        "due_on": "2026-12-01",
    }
    values.update(kw)
    return ItemInput(**values)


# ------------------------------------------------------------------ team resolution


def test_team_resolution_named_conversation_user_only_team_then_ask(engine):
    sl = service(engine, SlackLike())
    tm = service(engine, TeamsVoice())
    assert sl.resolve_team("MOBILE", None, "U1") == "mobile"  # named (any case)
    with pytest.raises(KpibotError):
        sl.resolve_team("nope", None, "U1")
    # kpibot.yml's channel is a Slack channel id: it maps nothing on Teams
    assert sl.resolve_team(None, "CPAYYML1", "U1") == "payments"
    with pytest.raises(NeedTeam):
        tm.resolve_team(None, "CPAYYML1", "U1")
    # a mapping is the conversation's on its own platform only
    tm.set_channel_team("19:chan@thread.tacv2", "mobile", teams("29:anna"))
    assert tm.resolve_team(None, "19:chan@thread.tacv2", "29:bob") == "mobile"
    assert sl.channel_team("19:chan@thread.tacv2") is None
    # the user's only team: the one they mapped a conversation to
    assert tm.resolve_team(None, None, "29:anna") == "mobile"
    with pytest.raises(NeedTeam):
        sl.resolve_team(None, None, "29:anna")
    # the only team
    only = service(engine, SlackLike(), Config((TeamConfig("payments"),)))
    assert only.resolve_team(None, None, "U9") == "payments"
    # ask: dispatch answers with the teams to pick from
    cmd = parse("cycle-time", sl.team_names())
    answer = sl.dispatch(cmd, "cycle-time", "U9", None)
    assert answer == ans.AskTeam("cycle-time", ("payments", "mobile"))


def test_dispatch_answers_report_objects_and_errors_never_platform_payloads(engine):
    sl = service(engine, SlackLike())
    card = sl.dispatch(parse("cycle-time payments", sl.team_names()), "", "U1", None)
    assert isinstance(card, ans.CardAnswer) and card.card.team == "payments"
    weekly = sl.dispatch(parse("weekly mobile", sl.team_names()), "", "U1", None)
    assert isinstance(weekly, ans.DigestPreview) and isinstance(weekly.digest, WeeklyDigest)
    monthly = sl.dispatch(parse("monthly mobile", sl.team_names()), "", "U1", None)
    assert isinstance(monthly, ans.DigestPreview) and isinstance(monthly.digest, MonthlyDigest)
    assert isinstance(
        sl.dispatch(parse("health mobile", sl.team_names()), "", "U1", None), ans.HealthAnswer
    )
    assert isinstance(
        sl.dispatch(parse("dora mobile", sl.team_names()), "", "U1", None), ans.DoraAnswer
    )
    helped = sl.dispatch(parse("help", sl.team_names()), "", "U1", "CPAYYML1")
    assert helped == ans.Help("payments", ("payments", "mobile"))
    # a write without a known person is refused as a clear problem, storing nothing
    sub = sl.dispatch(parse("subscribe weekly mobile", sl.team_names()), "", "U1", "C1")
    assert isinstance(sub, ans.Problem) and "needs to know who asks" in sub.text
    with sl.session() as s:
        assert not subscriptions.for_channel(s, platform="slack", channel_id="C1")


# ------------------------------------------------------------------ action items


def test_item_validation_is_keyed_by_field_names_and_stores_nothing(engine):
    tm = service(engine, TeamsVoice())
    assert tm.validate(item_input(), None) == {}
    cases = {
        "team": item_input(team="nope"),
        "kpi": item_input(kpi="not-a-kpi"),
        "opportunity": item_input(opportunity="  "),
        "resolution": item_input(resolution="x" * 1001),
        "owner": item_input(owner=None),
        "due_on": item_input(due_on="2026-11-17"),  # yesterday
    }
    assert set(cases) == set(FIELDS)
    for field, data in cases.items():
        errors = tm.validate(data, None)
        assert list(errors) == [field], (field, errors)
        with pytest.raises(InvalidItem) as exc:
            tm.save_item(data, teams("29:anna"), "19:c", None)
        assert exc.value.errors == errors
    assert tm.validate(item_input(due_on="tomorrow"), None) == {
        "due_on": "Pick a date from the calendar."
    }
    # an owner from another workspace or tenant is refused by the surface's look-up
    tm.home_workspace = "tenant-1"
    errors = tm.validate(item_input(), None, owner_workspace=lambda _u: "tenant-2")
    assert list(errors) == ["owner"]
    with tm.session() as s:
        assert s.scalar(select(func.count()).select_from(ActionItem)) == 0


def test_new_item_gets_the_baseline_and_its_platform(engine):
    tm = service(engine, TeamsVoice())
    row = tm.save_item(item_input(), teams("29:anna"), "19:c", None, submission="teams:1")
    assert row is not None and row.platform == "teams" and row.created_by == "29:anna"
    value, n = tm.baseline("payments", "cycle-time")
    with tm.session() as s:
        stored = s.get(ActionItem, row.id)
        assert stored is not None
        assert (stored.baseline_value, stored.baseline_n, stored.platform) == (value, n, "teams")
    # the same submission delivered again stores nothing
    assert tm.save_item(item_input(), teams("29:anna"), "19:c", None, submission="teams:1") is None
    assert len(tm.items("payments", include_done=True)) == 1


def test_edit_done_reopen_follow_the_permission_rule_inside_the_service(engine):
    sl = service(engine, SlackLike())
    tm = service(engine, TeamsVoice())
    row = sl.save_item(item_input(owner="UOWNER1"), slack("UCREATOR"), "C1", None)
    assert row is not None
    # a stranger may not edit, mark done or reopen; nothing changes
    for attempt in (
        lambda: sl.set_done(row.id, True, slack("USTRANGER")),
        lambda: sl.editable_item(row.id, slack("USTRANGER")),
        lambda: sl.save_item(item_input(resolution="mine now"), slack("USTRANGER"), "C1", row.id),
    ):
        with pytest.raises(NotAllowed) as exc:
            attempt()
        assert "UOWNER1" in str(exc.value) and "UCREATOR" in str(exc.value)
    assert sl.item(row.id) == row
    # the same user id on another platform is another person
    with pytest.raises(NotAllowed):
        tm.set_done(row.id, True, teams("UOWNER1", admin=True))
    # the refusal names people in the asking platform's words
    mine = tm.save_item(item_input(owner="29:anna"), teams("29:anna"), "19:c", None)
    assert mine is not None
    with pytest.raises(NotAllowed, match="<at>29:anna</at>"):
        tm.set_done(mine.id, True, teams("29:bob"))
    # owner, creator, a lead of the team and an admin may
    assert sl.set_done(row.id, True, slack("UOWNER1")).completed_on == date(2026, 11, 18)
    assert sl.set_done(row.id, False, slack("UCREATOR")).completed_on is None
    assert sl.set_done(row.id, True, slack("ULEAD1")).completed_on is not None
    assert sl.set_done(row.id, False, slack("UADMIN", admin=True)).completed_on is None
    edited = sl.save_item(item_input(resolution="Pair reviews"), slack("UOWNER1"), "C1", row.id)
    assert edited is not None and edited.resolution == "Pair reviews"
    # a past due date that did not change stays valid on edit
    later = NOW + timedelta(days=30)
    sl2 = ChatService(session_factory(engine), CONFIG, lambda: later, SlackLike())
    assert sl2.validate(item_input(resolution="again"), sl2.item(row.id)) == {}


# ------------------------------------------------------------------ subscriptions


def test_subscriptions_are_keyed_by_platform_and_conversation(engine):
    sl = service(engine, SlackLike())
    tm = service(engine, TeamsVoice())
    same = "C0SHARED1"  # the same conversation id on both platforms is two conversations
    a = sl.subscribe(same, "payments", "weekly", slack("U1"))
    b = tm.subscribe(same, "payments", "weekly", teams("29:anna"))
    assert "will now receive" in a.text and "will now receive" in b.text
    assert [s.platform for s in sl.conversation_subscriptions(same).subscriptions] == ["slack"]
    assert [s.platform for s in tm.conversation_subscriptions(same).subscriptions] == ["teams"]
    # another person may not stop someone else's digest
    with pytest.raises(NotAllowed):
        tm.unsubscribe(same, None, "weekly", teams("29:bob"))
    stopped = tm.unsubscribe(same, None, "weekly", teams("29:anna"))
    assert stopped.text.startswith("Stopped the weekly digest of payments")
    assert tm.conversation_subscriptions(same).subscriptions == ()
    assert len(sl.conversation_subscriptions(same).subscriptions) == 1
    # a Teams actor is not admitted by the Slack service
    with pytest.raises(NotAllowed):
        sl.subscribe(same, "mobile", "monthly", teams("29:anna"))


class RecordingTeamsPoster:
    """A stand-in for the Teams connector: keeps what it is asked to post."""

    platform = "teams"

    def __init__(self, gone: set[str] | None = None) -> None:
        self.posts: list[tuple[str, str, dict[str, Any]]] = []
        self.gone = gone or set()

    def render_digest(self, digest: WeeklyDigest | MonthlyDigest, links: Any) -> dict[str, Any]:
        return {"type": "AdaptiveCard", "team": digest.team, "of": type(digest).__name__}

    def post(self, channel: str, message: dict[str, Any], *, key: str, **_: Any) -> str:
        if channel in self.gone:
            raise Gone()
        self.posts.append((channel, key, message))
        return f"activity-{len(self.posts)}"

    def find_post(self, channel: str, key: str, **_: Any) -> str | None:
        return next((f"activity-{i + 1}" for i, p in enumerate(self.posts) if p[1] == key), None)

    def render_reminder(self, team: str, items: list[Any], day: date) -> dict[str, Any]:
        return {"type": "AdaptiveCard", "team": team, "items": [i.opportunity for i in items]}

    def open_dm(self, user: str) -> str:
        return user

    def dm(self, user: str, text: str) -> str:
        return "dm"

    def broken_note(self, subscription: Subscription, error: str) -> tuple[str, str | None]:
        return "the conversation is gone", None


class Gone(ConversationUnavailable):
    error = "ConversationNotFound"


def test_digests_reach_each_platform_once_through_its_own_poster(engine):
    f = session_factory(engine)
    with f() as s:
        ids = sync_teams(s, CONFIG)
        created = datetime(2026, 11, 1)
        for platform, conv in (("slack", "CDIGEST1"), ("teams", "19:d@thread"), ("teams", "19:x")):
            subscriptions.subscribe(
                s,
                platform=platform,
                channel_id=conv,
                team_id=ids["payments"],
                kind="weekly",
                created_by="U1",
                now=created,
            )
        s.commit()
    monday = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)  # the weekly digest is due
    teams_poster = RecordingTeamsPoster(gone={"19:x"})
    with SchedulerSlack() as fake:
        jobs = DigestJobs(
            f,
            CONFIG,
            {"slack": poster_for(fake), "teams": teams_poster},
            options=SchedulerOptions(),
        )
        first = {(o.channel, o.status) for o in jobs.run_due(monday)}
        assert first == {
            ("CDIGEST1", "posted"),
            ("19:d@thread", "posted"),
            ("19:x", "broken"),
        }
        assert [m["channel"] for m in fake.posts()] == ["CDIGEST1"]
        assert [p[0] for p in teams_poster.posts] == ["19:d@thread"]
        assert teams_poster.posts[0][2]["type"] == "AdaptiveCard"
        # a second pass (or a restart) posts nothing again
        assert jobs.run_due(monday + timedelta(minutes=5)) == []
        assert len(fake.posts()) == 1 and len(teams_poster.posts) == 1
    with f() as s:
        runs = {
            (r.status, r.message_ts)
            for r in s.scalars(select(DigestRun).where(DigestRun.status == "posted"))
        }
        assert ("posted", "activity-1") in runs and len(runs) == 2
        broken = [x for x in subscriptions.active_subscriptions(s, include_broken=True) if x.broken]
        assert [(x.platform, x.channel_id) for x in broken] == [("teams", "19:x")]


def test_a_platform_without_a_poster_claims_nothing(engine):
    f = session_factory(engine)
    with f() as s:
        ids = sync_teams(s, CONFIG)
        subscriptions.subscribe(
            s,
            platform="teams",
            channel_id="19:d@thread",
            team_id=ids["payments"],
            kind="weekly",
            created_by="29:anna",
            now=datetime(2026, 11, 1),
        )
        s.commit()
    with SchedulerSlack() as fake:
        jobs = DigestJobs(f, CONFIG, poster_for(fake), options=SchedulerOptions())
        assert jobs.posters.keys() == {"slack"}
        [outcome] = jobs.run_due(datetime(2026, 11, 16, 9, 30, tzinfo=UTC))
        assert (outcome.status, outcome.detail) == ("failed", "no poster for teams is configured")
        assert fake.posts() == []
    with f() as s:  # left for a process that can post to Teams
        assert s.scalar(select(func.count()).select_from(DigestRun)) == 0


def test_reminders_reach_each_owner_on_their_own_platform(engine):
    f = session_factory(engine)
    tm = service(engine, TeamsVoice())
    sl = service(engine, SlackLike())
    assert tm.save_item(item_input(owner="29:anna"), teams("29:anna"), "19:c", None)
    assert sl.save_item(item_input(owner="UOWNER1"), slack("UOWNER1"), "C1", None)
    teams_poster = RecordingTeamsPoster()
    reminder_day = datetime(2026, 11, 30, 9, 5, tzinfo=UTC)  # 09:00 UTC, due tomorrow
    with SchedulerSlack() as fake:
        fake.add_user("UOWNER1")
        jobs = DigestJobs(
            f,
            CONFIG,
            {"slack": poster_for(fake), "teams": teams_poster},
            options=SchedulerOptions(),
        )
        assert jobs.send_reminders(reminder_day) == 2
        assert jobs.send_reminders(reminder_day) == 0  # once a day
        slack_dms = fake.calls_to("chat.postMessage")
    assert [p[0] for p in teams_poster.posts] == ["29:anna"]
    assert teams_poster.posts[0][2] == {
        "type": "AdaptiveCard",
        "team": "payments",
        "items": ["Reviews wait a day"],
    }
    assert len(slack_dms) == 1
    assert "Reviews wait a day" in slack_dms[0].args["text"]
