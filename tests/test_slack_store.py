"""Slack-side state in the store: digest subscriptions and channel mappings."""

from __future__ import annotations

from datetime import datetime

from bot.settings import Config, TeamConfig
from bot.store import channels, subscriptions
from bot.store.models import ActionItem
from bot.store.teams import sync_teams

NOW = datetime(2026, 11, 20, 9, 0)


def _teams(session):
    ids = sync_teams(session, Config((TeamConfig("payments"), TeamConfig("mobile"))))
    session.commit()
    return ids


def test_subscribe_unsubscribe_and_reactivate(session):
    ids = _teams(session)
    sub, created = subscriptions.subscribe(
        session,
        platform="slack",
        channel_id="C1",
        team_id=ids["payments"],
        kind="weekly",
        created_by="U1",
        now=NOW,
    )
    assert created and sub.team == "payments" and sub.active
    _, again = subscriptions.subscribe(
        session,
        platform="slack",
        channel_id="C1",
        team_id=ids["payments"],
        kind="weekly",
        created_by="U1",
        now=NOW,
    )
    assert not again
    subscriptions.subscribe(
        session,
        platform="slack",
        channel_id="C1",
        team_id=ids["mobile"],
        kind="monthly",
        created_by="U1",
        now=NOW,
    )
    assert [
        (s.team, s.kind)
        for s in subscriptions.for_channel(session, platform="slack", channel_id="C1")
    ] == [
        ("mobile", "monthly"),
        ("payments", "weekly"),
    ]
    subscriptions.mark_broken(session, sub.id, "not_in_channel")
    assert [s.kind for s in subscriptions.active_subscriptions(session)] == ["monthly"]
    assert len(subscriptions.active_subscriptions(session, include_broken=True)) == 2
    gone = subscriptions.unsubscribe(session, platform="slack", channel_id="C1", kind="weekly")
    assert [s.team for s in gone] == ["payments"]
    assert [
        s.kind for s in subscriptions.for_channel(session, platform="slack", channel_id="C1")
    ] == ["monthly"]
    back, created = subscriptions.subscribe(
        session,
        platform="slack",
        channel_id="C1",
        team_id=ids["payments"],
        kind="weekly",
        created_by="U2",
        now=NOW,
    )
    assert created and back.id == sub.id and not back.broken
    session.commit()
    assert len(subscriptions.for_channels(session, ["C1", "C9"], platform="slack")) == 2
    assert [s.kind for s in subscriptions.for_team(session, ids["mobile"])] == ["monthly"]


def test_channel_mapping_and_user_teams(session):
    ids = _teams(session)
    assert channels.channel_team(session, platform="slack", channel_id="C1") is None
    channels.set_channel_team(
        session, platform="slack", channel_id="C1", team_id=ids["mobile"], set_by="U1", now=NOW
    )
    assert channels.channel_team(session, platform="slack", channel_id="C1") == "mobile"
    channels.set_channel_team(
        session, platform="slack", channel_id="C1", team_id=ids["payments"], set_by="U1", now=NOW
    )
    assert channels.channel_team(session, platform="slack", channel_id="C1") == "payments"
    assert channels.channels_of_team(session, ids["payments"], platform="slack") == ["C1"]
    session.add(
        ActionItem(
            team_id=ids["mobile"],
            opportunity="o",
            resolution="r",
            owner="U2",
            due_on=NOW.date(),
            created_by="U3",
            created_at=NOW,
        )
    )
    session.commit()
    assert channels.user_teams(session, "U1", platform="slack") == ["payments"]
    assert channels.user_teams(session, "U2", platform="slack") == ["mobile"]
    assert channels.user_teams(session, "U9", platform="slack") == []
    assert channels.team_ids(session) == ids
