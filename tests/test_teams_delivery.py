"""Microsoft Teams delivery: ``@kpibot subscribe`` over real ``POST /api/messages`` (RS256
tokens from the fake Bot Framework) keeps the conversation reference, and the scheduler's
real jobs post digests proactively, and reminders to each owner's personal chat, through the
fake connector on loopback: exactly once across a restart, a 429 and a 5xx; a conversation
that is gone breaks its subscription; an unclear post is never repeated blindly."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.errors import KpibotError
from bot.metrics.engine import WaitingPR
from bot.metrics.periods import last_complete_month, last_complete_week
from bot.renderers import adaptive
from bot.reports.cards import PeriodInfo
from bot.reports.digests import ActionItemView, WeeklyDigest
from bot.scheduler.commands import make_posters
from bot.scheduler.jobs import DigestJobs, SchedulerOptions, build_digest
from bot.scheduler.posting import RetryPolicy
from bot.scheduler.schedule import subscription_schedule
from bot.scheduler.teams_poster import TeamsNotPosted, TeamsPoster
from bot.settings import Settings, load_env_settings
from bot.store import digest_runs
from bot.store import subscriptions as subs
from bot.store.models import ActionItem, ReminderRun
from bot.store.session import session_factory
from bot.surfaces.http import HttpApp, Server
from bot.teams.app import TeamsSurface
from bot.teams.connector import Connector
from tests.demo_org import NOW, load_demo
from tests.fakes.slack import BOT_TOKEN
from tests.fakes.teams import APP_ID, APP_PASSWORD, TENANT_ID, FakeTeams
from tests.scheduler_fakes import (
    BERLIN_TEAM,
    ORG,
    SchedulerSlack,
    add_item,
    poster_for,
    runs,
    setup_org,
    subscribe,
)
from tests.test_teams import assert_valid_card

BEFORE = datetime(2026, 10, 20, 12, tzinfo=UTC)
MONDAY = datetime(2026, 10, 26, 14, 0, tzinfo=UTC)  # both weekly digests are due
CHANNEL = "19:berlin-general@thread.tacv2"
OTHER = "19:nyc-general@thread.tacv2"
SUBSCRIBER = "aad-subscriber-1"
OWNER = "aad-owner-00000000-0000-0000-0000-000000000042"


@pytest.fixture
def f(engine):
    return session_factory(engine)


@pytest.fixture
def teams() -> Iterator[FakeTeams]:
    with FakeTeams() as fake:
        yield fake


def fast(**kw: Any) -> RetryPolicy:
    base: dict[str, Any] = {"backoff": 0.5, "max_backoff": 4.0, "timeout": 5.0, "pace": 0.0}
    base.update(kw)
    return RetryPolicy(**base)


def poster(
    teams: FakeTeams, f, *, waits: list[float] | None = None, tenant: str | None = TENANT_ID, **kw
) -> TeamsPoster:
    def reference(conversation: str) -> subs.Reference | None:
        with f() as s:
            return subs.reference(s, platform="teams", channel_id=conversation)

    return TeamsPoster(
        Connector(APP_ID, APP_PASSWORD, teams.token_url),
        service_url=teams.service_url,
        tenant=tenant,
        references=reference,
        policy=fast(**kw),
        sleep=(waits.append if waits is not None else lambda s: None),
    )


def teams_subscribe(f, teams: FakeTeams, team_id: int, channel: str, kind: str = "weekly") -> int:
    with f() as s:
        sub, _ = subs.subscribe(
            s,
            platform="teams",
            channel_id=channel,
            team_id=team_id,
            kind=kind,
            created_by=SUBSCRIBER,
            now=BEFORE.replace(tzinfo=None),
            reference=subs.Reference(teams.service_url, TENANT_ID),
        )
        s.commit()
    return sub.id


def org(f, teams: FakeTeams) -> tuple[dict[str, int], int, int]:
    ids = setup_org(f)
    b = teams_subscribe(f, teams, ids["berlin"], CHANNEL)
    n = teams_subscribe(f, teams, ids["nyc"], OTHER)
    return ids, b, n


def card_of(activity: dict[str, Any]) -> dict[str, Any]:
    (attachment,) = activity["attachments"]
    assert attachment["contentType"] == adaptive.CONTENT_TYPE
    return attachment["content"]


def add_teams_item(f, team_id: int, owner: str, due: date) -> int:
    with f() as s:
        item = ActionItem(
            team_id=team_id,
            platform="teams",
            opportunity="Slow *reviews*",
            resolution="Review rota",
            owner=owner,
            due_on=due,
            kpi="first-review",
            created_by=SUBSCRIBER,
            created_at=datetime(2026, 10, 1, 9, 0),
            channel_id=CHANNEL,
        )
        s.add(item)
        s.commit()
        return item.id


# --- subscribing in Teams --------------------------------------------------------------------


def _surface(f, teams: FakeTeams) -> Iterator[Server]:
    settings = load_env_settings(
        {
            "TEAMS_APP_ID": APP_ID,
            "TEAMS_APP_PASSWORD": APP_PASSWORD,
            "TEAMS_OPENID_URL": teams.openid_url,
            "TEAMS_TOKEN_URL": teams.token_url,
            "TEAMS_API_URL": teams.service_url,
        },
        dotenv_path=None,
    )
    surface = TeamsSurface(settings, f, ORG, clock=lambda: BEFORE)
    http_app = HttpApp()
    surface.install(http_app)
    with Server(http_app, host="127.0.0.1", port=0, threads=2) as server:
        yield server


def _say(server: Server, teams: FakeTeams, words: str, conversation: str = CHANNEL) -> str:
    """Send ``@kpibot <words>`` as a signed activity; the text of the card answered."""
    before = len(teams.sent)
    activity = teams.activity(words, conversation=conversation, user="29:subscriber-1")
    r = httpx.post(
        f"{server.url}/api/messages",
        content=json.dumps(activity).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {teams.token()}"},
    )
    assert r.status_code == 200
    sent = teams.wait_sent(before + 1)[before]
    card = card_of(sent.activity)
    assert_valid_card(card)
    return json.dumps(card, ensure_ascii=False)


def test_subscribe_in_teams_keeps_the_conversation_reference_and_the_scheduler_posts(f, teams):
    setup_org(f)
    for server in _surface(f, teams):
        said = _say(server, teams, "subscribe weekly berlin tue 10:00")
        assert (
            "This conversation will now receive the weekly digest of **berlin** every Tue at "
            "10:00 (Europe/Berlin)" in said
        )
        listed = _say(server, teams, "subscriptions")
        assert "**weekly** digest of **berlin**, every Tue at 10:00" in listed
        # the preview the notice points to works in Teams too
        preview = _say(server, teams, "weekly berlin")
        assert "Weekly leading indicators · berlin" in preview
    with f() as s:
        (sub,) = subs.active_subscriptions(s)
    assert (sub.platform, sub.channel_id, sub.team, sub.schedule) == (
        "teams",
        CHANNEL,
        "berlin",
        "tue 10:00",
    )
    assert sub.reference == subs.Reference(teams.service_url, TENANT_ID)
    assert sub.created_by == "aad-1"  # the person's Azure AD object id
    answered = len(teams.posted())
    # Tuesday 10:00 Berlin: the scheduler posts the digest to the channel, proactively
    jobs = DigestJobs(f, ORG, poster(teams, f))
    (out,) = jobs.run_due(datetime(2026, 10, 27, 9, 30, tzinfo=UTC))
    assert out.status == "posted"
    (digest,) = teams.posted()[answered:]
    assert digest.conversation == CHANNEL and "replyToId" not in digest.activity
    card = card_of(digest.activity)
    assert_valid_card(card)
    assert card["body"][0]["text"] == "Weekly leading indicators · berlin"
    assert runs(f)[0].message_ts == digest.activity_id


def test_unsubscribe_in_teams_stops_the_digest(f, teams):
    setup_org(f)
    for server in _surface(f, teams):
        _say(server, teams, "subscribe weekly berlin")
        said = _say(server, teams, "unsubscribe weekly berlin")
        assert "Stopped the weekly digest of berlin in this conversation." in said
        assert "receives no digests" in _say(server, teams, "subscriptions")
    with f() as s:
        assert subs.active_subscriptions(s) == []
    assert DigestJobs(f, ORG, poster(teams, f)).run_due(MONDAY) == []


def test_a_conversation_heard_from_at_a_new_service_url_is_posted_there(f, teams):
    ids = setup_org(f)
    with f() as s:
        subs.subscribe(
            s,
            platform="teams",
            channel_id=CHANNEL,
            team_id=ids["berlin"],
            kind="weekly",
            created_by=SUBSCRIBER,
            now=BEFORE.replace(tzinfo=None),
            reference=subs.Reference("http://127.0.0.1:9/old-region/", "old-tenant"),
        )
        s.commit()
    for server in _surface(f, teams):
        assert "**weekly** digest of **berlin**" in _say(server, teams, "subscriptions")
    with f() as s:
        (sub,) = subs.active_subscriptions(s)
    assert sub.reference == subs.Reference(teams.service_url, TENANT_ID)
    answered = len(teams.posted())
    (out,) = DigestJobs(f, ORG, poster(teams, f)).run_due(MONDAY)
    assert out.status == "posted"
    assert [a.conversation for a in teams.posted()[answered:]] == [CHANNEL]


# --- proactive digests ----------------------------------------------------------------------


def test_a_digest_is_posted_once_across_a_restart(f, teams):
    _, b, n = org(f, teams)
    out = DigestJobs(f, ORG, poster(teams, f)).run_due(MONDAY)
    assert sorted(o.status for o in out) == ["posted", "posted"]
    assert sorted(a.conversation for a in teams.posted()) == sorted([CHANNEL, OTHER])
    # a new process (scheduler instance and poster) on the same database, later that day
    again = DigestJobs(f, ORG, poster(teams, f), holder="another-process")
    assert again.run_due(MONDAY + timedelta(hours=3)) == []
    assert len(teams.posted()) == 2
    by_sub = {r.subscription_id: r for r in runs(f)}
    posted = {a.conversation: a.activity_id for a in teams.posted()}
    assert by_sub[b].message_ts == posted[CHANNEL] and by_sub[n].message_ts == posted[OTHER]
    assert {r.status for r in runs(f)} == {"posted"}


def test_a_429_waits_for_retry_after_and_posts_once(f, teams):
    org(f, teams)
    teams.rate_limit(retry_after=7, times=2)
    waits: list[float] = []
    out = DigestJobs(f, ORG, poster(teams, f, waits=waits)).run_due(MONDAY)
    assert {o.status for o in out} == {"posted"}
    assert waits.count(7.0) == 2
    assert len(teams.posted()) == 2
    assert len(teams.requests_to("POST", r"/v3/conversations/.*/activities")) == 4


def test_a_long_retry_after_is_capped(f, teams):
    org(f, teams)
    teams.rate_limit(retry_after=3600)
    waits: list[float] = []
    DigestJobs(f, ORG, poster(teams, f, waits=waits, max_retry_after=30)).run_due(MONDAY)
    assert waits == [30.0]
    assert len(teams.posted()) == 2


def test_a_5xx_is_retried_with_backoff(f, teams):
    org(f, teams)
    teams.server_error(status=503, times=2)
    waits: list[float] = []
    out = DigestJobs(f, ORG, poster(teams, f, waits=waits)).run_due(MONDAY)
    assert {o.status for o in out} == {"posted"}
    assert waits == [0.5, 1.0]  # exponential
    assert len(teams.posted()) == 2


def test_5xx_until_attempts_run_out_is_unsent_and_the_next_pass_posts_it(f, teams):
    _, b, n = org(f, teams)
    teams.server_error(status=502, times=3, pattern=r"19%3Aberlin.*")
    jobs = DigestJobs(f, ORG, poster(teams, f, max_attempts=3))
    out = {o.subscription_id: o for o in jobs.run_due(MONDAY)}
    assert out[b].status == "failed" and "HTTP 502" in (out[b].detail or "")
    assert out[n].status == "posted"
    assert {r.subscription_id: r.status for r in runs(f)} == {b: "unsent", n: "posted"}
    # Teams did not take it: the next pass posts it, with no doubt to settle
    (again,) = jobs.run_due(MONDAY.replace(minute=1))
    assert again.status == "posted"
    assert sorted(a.conversation for a in teams.posted()) == sorted([CHANNEL, OTHER])
    assert {r.status for r in runs(f)} == {"posted"}


@pytest.mark.parametrize(
    ("status", "error"), [(403, "bot_removed"), (404, "conversation_not_found")]
)
def test_a_conversation_gone_breaks_the_subscription_and_says_so(f, teams, status, error, caplog):
    _, b, n = org(f, teams)
    teams.remove(CHANNEL, status=status)
    jobs = DigestJobs(f, ORG, poster(teams, f))
    with caplog.at_level(logging.ERROR, logger="kpibot.scheduler"):
        out = {o.subscription_id: o for o in jobs.run_due(MONDAY)}
    assert out[b].status == "broken" and out[b].detail == error
    assert out[n].status == "posted"
    with f() as s:
        broken = [x for x in subs.active_subscriptions(s, include_broken=True) if x.broken]
    assert [x.id for x in broken] == [b] and broken[0].broken_reason.startswith(error)
    # whoever subscribed hears about it in their personal chat with the bot
    (created,) = teams.created
    assert created["members"] == [{"id": SUBSCRIBER}]
    assert created["channelData"]["tenant"]["id"] == TENANT_ID
    (note,) = teams.posted(f"a:1on1-{SUBSCRIBER}")
    card = card_of(note.activity)
    assert_valid_card(card)
    assert "paused that subscription" in json.dumps(card)
    assert "is broken" in caplog.text
    # a broken subscription is not posted to again
    assert jobs.run_due(MONDAY + timedelta(hours=1)) == []
    assert len(teams.posted(CHANNEL)) == 0


def test_an_unclear_post_is_not_repeated_and_the_run_says_why(f, teams, caplog):
    _, b, n = org(f, teams)
    teams.hold_after_post = 1.0  # Teams keeps the post but its answer comes too late
    jobs = DigestJobs(f, ORG, poster(teams, f, timeout=0.3))
    out = jobs.run_due(MONDAY, only=[b])
    assert [o.status for o in out] == ["failed"]
    teams.hold_after_post = 0.0
    assert [r.status for r in runs(f)] == ["failed"]
    with caplog.at_level(logging.WARNING, logger="kpibot.scheduler"):
        (again,) = jobs.run_due(MONDAY.replace(minute=5), only=[b])
    assert again.status == "skipped" and "cannot tell" in (again.detail or "")
    assert len(teams.posted(CHANNEL)) == 1  # once, never twice
    (run,) = runs(f)
    assert run.status == "skipped" and "cannot appear twice" in (run.detail or "")
    assert jobs.run_due(MONDAY.replace(minute=10), only=[b]) == []
    assert len(teams.posted(CHANNEL)) == 1
    assert n not in {r.subscription_id for r in runs(f)}


def test_a_crash_between_post_and_record_never_posts_twice(f, teams):
    """A process claimed the digest, posted it and died before recording it: the next
    scheduler, on the same database, settles the run without posting again."""
    ids = setup_org(f)
    b = teams_subscribe(f, teams, ids["berlin"], CHANNEL)
    opts = SchedulerOptions()
    due = datetime(2026, 10, 26, 8, 0, tzinfo=UTC)  # Monday 09:00 Berlin
    claim = digest_runs.claim_digest(f, b, "2026-W43", "dead-process", due, opts.claim_ttl)
    assert claim is not None
    poster(teams, f).post(CHANNEL, {"type": "message", "text": "digest"}, key="k")
    later = due + opts.claim_ttl + timedelta(minutes=1)
    (out,) = DigestJobs(f, ORG, poster(teams, f), holder="new-process").run_due(later)
    assert out.status == "skipped"
    assert len(teams.posted(CHANNEL)) == 1
    # posting it by hand (someone has looked at the channel) is still possible
    with f() as s:
        (sub,) = subs.active_subscriptions(s)
    period = subscription_schedule(sub.kind, None, BERLIN_TEAM.digests).period(
        due, BERLIN_TEAM.zone
    )
    assert period.key == "2026-W43"
    # settled as skipped, a post by hand posts it on purpose
    by_hand = DigestJobs(f, ORG, poster(teams, f), holder="by-hand")
    again = by_hand.post(sub, BERLIN_TEAM, period, later, manual=True)
    assert again.status == "posted"
    assert len(teams.posted(CHANNEL)) == 2


def test_by_hand_an_unclear_post_is_first_settled_then_posted_on_purpose(f, teams):
    ids = setup_org(f)
    teams_subscribe(f, teams, ids["berlin"], CHANNEL)
    with f() as s:
        (sub,) = subs.active_subscriptions(s)
    period = subscription_schedule(sub.kind, None, BERLIN_TEAM.digests).period(
        MONDAY, BERLIN_TEAM.zone
    )
    teams.hold_after_post = 1.0  # the answer to the post is lost
    jobs = DigestJobs(f, ORG, poster(teams, f, timeout=0.3))
    assert jobs.post(sub, BERLIN_TEAM, period, MONDAY, manual=True).status == "failed"
    teams.hold_after_post = 0.0
    # asked again: it may have arrived, so it is settled, and the answer says how to insist
    second = jobs.post(sub, BERLIN_TEAM, period, MONDAY, manual=True)
    assert second.status == "skipped" and "by hand once more" in (second.detail or "")
    assert len(teams.posted(CHANNEL)) == 1
    third = jobs.post(sub, BERLIN_TEAM, period, MONDAY, manual=True)
    assert third.status == "posted"
    assert len(teams.posted(CHANNEL)) == 2
    assert jobs.post(sub, BERLIN_TEAM, period, MONDAY, manual=True).status == "done"


def test_the_monthly_digest_posts_its_chart_in_the_thread(f, teams):
    ids = setup_org(f)
    teams_subscribe(f, teams, ids["berlin"], CHANNEL, kind="monthly")
    first = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    (out,) = DigestJobs(f, ORG, poster(teams, f)).run_due(first)
    assert out.status == "posted"
    digest, chart = teams.posted(CHANNEL)
    assert card_of(digest.activity)["body"][0]["text"] == "Monthly lagging indicators · berlin"
    assert chart.conversation == f"{CHANNEL};messageid={digest.activity_id}"
    (image,) = chart.activity["attachments"]
    assert image["contentType"] == "image/png"
    assert image["contentUrl"].startswith("data:image/png;base64,iVBOR")


# --- reminders ------------------------------------------------------------------------------


MORNING = datetime(2026, 10, 26, 8, 5, tzinfo=UTC)  # 09:05 in Berlin


def test_a_reminder_reaches_the_owners_personal_chat_once(f, teams):
    ids = setup_org(f)
    add_teams_item(f, ids["berlin"], OWNER, date(2026, 10, 27))
    jobs = DigestJobs(f, ORG, poster(teams, f))
    assert jobs.send_reminders(MORNING) == 1
    (created,) = teams.created
    assert created["members"] == [{"id": OWNER}] and created["isGroup"] is False
    assert created["bot"]["id"] == f"28:{APP_ID}"
    assert created["channelData"]["tenant"]["id"] == TENANT_ID == created["tenantId"]
    (dm,) = teams.posted(f"a:1on1-{OWNER}")
    card = card_of(dm.activity)
    assert_valid_card(card)
    text = json.dumps(card, ensure_ascii=False)
    assert "due **tomorrow**" in text and r"Slow \\*reviews\\*" in text
    assert jobs.send_reminders(MORNING.replace(minute=30)) == 0
    other = DigestJobs(f, ORG, poster(teams, f), holder="another-process")
    assert other.send_reminders(MORNING.replace(hour=11)) == 0
    assert len(teams.posted(f"a:1on1-{OWNER}")) == 1
    with f() as s:
        (run,) = s.scalars(select(ReminderRun)).all()
    assert (run.platform, run.owner, run.status) == ("teams", OWNER, "posted")
    assert run.message_ts == dm.activity_id


def test_an_unreachable_owner_is_recorded_not_retried_forever(f, teams, caplog):
    ids = setup_org(f)
    add_teams_item(f, ids["berlin"], OWNER, date(2026, 10, 27))
    teams.unreachable(OWNER)
    jobs = DigestJobs(f, ORG, poster(teams, f))
    with caplog.at_level(logging.WARNING, logger="kpibot.scheduler"):
        assert jobs.send_reminders(MORNING) == 0
    assert "gave up reminding" in caplog.text
    with f() as s:
        (run,) = s.scalars(select(ReminderRun)).all()
    assert run.status == "skipped" and "user_unreachable" in (run.detail or "")
    for minutes in (30, 59):
        assert jobs.send_reminders(MORNING.replace(minute=minutes)) == 0
    assert len(teams.created) == 1 and teams.posted() == []


def test_a_reminder_without_a_known_tenant_is_given_up(f, teams):
    ids = setup_org(f)
    add_teams_item(f, ids["berlin"], OWNER, date(2026, 10, 27))
    jobs = DigestJobs(f, ORG, poster(teams, f, tenant=None))
    assert jobs.send_reminders(MORNING) == 0
    with f() as s:
        (run,) = s.scalars(select(ReminderRun)).all()
    assert run.status == "skipped" and "TEAMS_TENANT_ID" in (run.detail or "")
    assert teams.created == []


def test_slack_and_teams_owners_each_get_their_reminder_on_their_platform(f, teams):
    ids = setup_org(f)
    add_teams_item(f, ids["berlin"], OWNER, date(2026, 10, 27))
    add_item(f, ids["berlin"], "UOWNER01", date(2026, 10, 27))
    with SchedulerSlack() as slack:
        jobs = DigestJobs(f, ORG, {"slack": poster_for(slack), "teams": poster(teams, f)})
        assert jobs.send_reminders(MORNING) == 2
        assert [m["channel"] for m in slack.posts()] == ["DOWNER01"]
    assert len(teams.posted(f"a:1on1-{OWNER}")) == 1
    with f() as s:
        got = sorted((r.platform, r.owner) for r in s.scalars(select(ReminderRun)))
    assert got == [("slack", "UOWNER01"), ("teams", OWNER)]


# --- both platforms in one process ----------------------------------------------------------


def test_the_process_posts_where_it_is_configured(f, teams):
    ids = setup_org(f)
    slack_sub = subscribe(f, ids["berlin"], "CBERLIN1", "weekly", BEFORE)
    teams_sub = teams_subscribe(f, teams, ids["berlin"], CHANNEL)
    with SchedulerSlack() as slack:
        slack.add_channel("CBERLIN1")
        env = {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_API_URL": slack.api_url,
            "TEAMS_APP_ID": APP_ID,
            "TEAMS_APP_PASSWORD": APP_PASSWORD,
            "TEAMS_TOKEN_URL": teams.token_url,
            "TEAMS_API_URL": teams.service_url,
        }
        both = make_posters(load_env_settings(env, dotenv_path=None), f)
        assert sorted(both) == ["slack", "teams"]
        teams_only = {k: v for k, v in env.items() if not k.startswith("SLACK")}
        assert sorted(make_posters(load_env_settings(teams_only, dotenv_path=None), f)) == ["teams"]
        slack_only = {k: v for k, v in env.items() if k.startswith("SLACK")}
        assert sorted(make_posters(load_env_settings(slack_only, dotenv_path=None), f)) == ["slack"]
        # a Teams-only process leaves the Slack subscription to a process that can post there
        only = DigestJobs(f, ORG, make_posters(load_env_settings(teams_only, dotenv_path=None), f))
        statuses = {o.subscription_id: o.status for o in only.run_due(MONDAY)}
        assert statuses == {slack_sub: "failed", teams_sub: "posted"}
        out = DigestJobs(f, ORG, both).run_due(MONDAY.replace(minute=1))
        assert [(o.subscription_id, o.status) for o in out] == [(slack_sub, "posted")]
        assert len(slack.posts("CBERLIN1")) == 1
    assert len(teams.posted(CHANNEL)) == 1
    with pytest.raises(KpibotError, match="TEAMS_APP_PASSWORD is not set"):
        make_posters(Settings(teams_app_id=APP_ID), f)
    with pytest.raises(KpibotError, match="SLACK_BOT_TOKEN is not set"):
        make_posters(Settings(), f)


def test_a_refused_app_password_never_reaches_the_log_or_the_error(f, teams, caplog):
    secret = "wrong-secret-not-to-be-shown"
    p = TeamsPoster(
        Connector(APP_ID, secret, teams.token_url),
        service_url=teams.service_url,
        tenant=TENANT_ID,
        policy=fast(max_attempts=2),
        sleep=lambda s: None,
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(TeamsNotPosted) as exc:
        p.post(CHANNEL, {"type": "message", "text": "hi"}, key="k")
    assert exc.value.unsent
    assert secret not in str(exc.value) and secret not in caplog.text and secret not in repr(p)
    assert teams.posted() == []


def test_no_attempt_starts_after_the_claims_deadline(f, teams):
    with pytest.raises(TeamsNotPosted, match="time ran out"):
        poster(teams, f).post(CHANNEL, {"type": "message", "text": "late"}, key="k", deadline=0.0)
    assert teams.requests_to("POST", r"/v3/conversations/.*") == []


# --- digest cards ---------------------------------------------------------------------------


def test_digest_cards_are_valid_adaptive_cards_under_28_kb(tmp_path):
    for demo in load_demo(tmp_path):
        team = demo.config.team("payments")
        for kind, period in (
            ("weekly", last_complete_week(NOW, team.zone)),
            ("monthly", last_complete_month(NOW, team.zone)),
        ):
            with demo.factory() as s:
                digest = build_digest(s, team, kind, period, NOW)
            card = adaptive.digest(digest)
            assert_valid_card(card)
            title = "Weekly leading" if kind == "weekly" else "Monthly lagging"
            assert card["body"][0]["text"] == f"{title} indicators · payments"
            assert len(card["body"]) > 4
            # as in Slack, the digest says how fresh its data is
            assert any(b.get("text", "").startswith("data as of") for b in card["body"]), card[
                "body"
            ]


def test_a_huge_digest_is_cut_stays_valid_and_makes_no_markup():
    start = datetime(2026, 10, 18, 22, tzinfo=UTC)
    period = PeriodInfo("2026-W43", "week 43", start, start + timedelta(days=7), "Europe/Berlin")
    waiting = tuple(
        WaitingPR(
            "acme/api",
            i,
            "[x](https://evil.example) **" + "t" * 300,
            "https://github.com/acme/api/pull/1",
            datetime(2026, 10, 1),
        )
        for i in range(400)
    )
    items = tuple(
        ActionItemView(
            i, "o" * 200, "r" * 200, OWNER, date(2026, 10, 1), None, None, None, None, True
        )
        for i in range(100)
    )
    card = adaptive.digest(WeeklyDigest("berlin", period, (), None, waiting, items))
    assert_valid_card(card)
    text = json.dumps(card)
    assert "and 3" in text and "more" in text
    assert "[x](https://evil" not in text
    assert r"\\[x\\](https://evil.example)" in text
    assert "[acme/api#0](https://github.com/acme/api/pull/1)" in text


def test_the_scheduler_service_posts_once_across_a_restart_and_a_429(f, teams):
    """The real scheduler (lease, tick) with the posters of a Teams-only process, stopped and
    started again as a new instance on the same database."""
    from bot.scheduler.service import SchedulerService

    _, b, n = org(f, teams)
    env = {
        "TEAMS_APP_ID": APP_ID,
        "TEAMS_APP_PASSWORD": APP_PASSWORD,
        "TEAMS_TOKEN_URL": teams.token_url,
        "TEAMS_API_URL": teams.service_url,
        "TEAMS_TENANT_ID": TENANT_ID,
    }
    settings = load_env_settings(env, dotenv_path=None)
    teams.rate_limit(retry_after=0, times=1)
    clock = [MONDAY]
    first = SchedulerService(
        settings, f, ORG, make_posters(settings, f), clock=lambda: clock[0], holder="first"
    )
    assert first.tick()
    assert sorted(a.conversation for a in teams.posted()) == sorted([CHANNEL, OTHER])
    first.stop()  # releases the lease
    clock[0] = MONDAY + timedelta(minutes=30)
    second = SchedulerService(
        settings, f, ORG, make_posters(settings, f), clock=lambda: clock[0], holder="second"
    )
    assert second.tick()
    second.stop()
    assert len(teams.posted()) == 2
    assert {(r.subscription_id, r.status, r.claimed_by) for r in runs(f)} == {
        (b, "posted", "first"),
        (n, "posted", "first"),
    }


def test_kpibot_digest_post_reaches_a_teams_channel(
    tmp_path, db_url, f, teams, monkeypatch, capsys
):
    from bot.surfaces.cli import main

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "kpibot.yml"
    path.write_text(
        "teams:\n  - name: berlin\n    timezone: Europe/Berlin\n    repos: [acme/berlin-api]\n"
    )
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "TEAMS_TENANT_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "DATABASE_URL": db_url,
        "KPIBOT_CONFIG": str(path),
        "TEAMS_APP_ID": APP_ID,
        "TEAMS_APP_PASSWORD": APP_PASSWORD,
        "TEAMS_TOKEN_URL": teams.token_url,
        "TEAMS_API_URL": teams.service_url,
    }.items():
        monkeypatch.setenv(name, value)
    ids = setup_org(f, ORG)
    teams_subscribe(f, teams, ids["berlin"], CHANNEL)
    argv = ["digest", "weekly", "--team", "berlin", "--period", "2026-W46", "--post"]
    assert main([*argv, "--now", "2026-11-20T12:00:00Z"]) == 0
    out = capsys.readouterr().out
    assert f"posted the weekly digest of berlin for 2026-W46 to {CHANNEL}" in out
    assert main([*argv, "--now", "2026-11-20T12:05:00Z"]) == 0
    assert "was posted before" in capsys.readouterr().out
    (posted,) = teams.posted(CHANNEL)
    assert_valid_card(card_of(posted.activity))


def test_a_reminder_to_a_personal_chat_that_is_gone_is_given_up_at_once(f, teams):
    ids = setup_org(f)
    add_teams_item(f, ids["berlin"], OWNER, date(2026, 10, 27))
    teams.remove(f"a:1on1-{OWNER}", status=403)  # the person blocked the bot
    jobs = DigestJobs(f, ORG, poster(teams, f))
    assert jobs.send_reminders(MORNING) == 0
    assert jobs.send_reminders(MORNING.replace(minute=45)) == 0
    with f() as s:
        (run,) = s.scalars(select(ReminderRun)).all()
    assert run.status == "skipped" and run.attempts == 1 and "bot_removed" in (run.detail or "")
    assert teams.posted() == []


def test_a_broken_teams_subscription_is_described_in_teams_words():
    from bot.scheduler.commands import describe
    from bot.scheduler.jobs import Outcome

    teams = Outcome(
        1,
        "19:c@thread.tacv2",
        "payments",
        "weekly",
        "2026-W46",
        "broken",
        detail="the bot was removed",
        platform="teams",
    )
    line, ok = describe(teams)
    assert not ok and "add kpibot to the team in Teams again" in line
    slack = Outcome(1, "C1", "payments", "weekly", "2026-W46", "broken", detail="not_in_channel")
    assert "invite the bot to the channel" in describe(slack)[0]
