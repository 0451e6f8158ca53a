"""The chat-neutral core with teams made of people, on both platforms: a user's teams come
from membership (through the identity mapping) before any guess, App Home and the Teams
personal view (``ChatService.home``) follow, and a person known only by e-mail gets their id
once."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.chat.service import ChatService, NeedTeam
from bot.chat.voice import Voice
from bot.settings import parse_config
from bot.store.session import session_factory
from bot.teams.answers import team_list

NOW = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
CONFIG, _ = parse_config(
    """
people:
  - {github: dana, teams: "29:1dana-aad", email: dana@acme.io}
teams:
  - name: payments
    repos: [acme/pay]
    members: [{github: alice, slack: U0ALICE, teams: "29:1alice-aad"}, dana]
  - name: mobile
    repos: [acme/app]
    members: [dana]
    paths: ["app/**"]
  - name: web
    repos: [acme/web]
"""
)


class TeamsVoice(Voice):
    platform = "teams"


class SlackVoice(Voice):
    platform = "slack"


def _service(engine, voice: Voice) -> ChatService:
    assert CONFIG is not None
    return ChatService(session_factory(engine), CONFIG, lambda: NOW, voice)


def test_user_teams_come_from_membership_on_each_platform(engine):
    slack, teams = _service(engine, SlackVoice()), _service(engine, TeamsVoice())
    assert slack.user_teams("U0ALICE") == ["payments"]
    assert teams.user_teams("29:1alice-aad") == ["payments"]
    assert teams.user_teams("29:1dana-aad") == ["mobile", "payments"]
    assert slack.user_teams("29:1alice-aad") == []  # ids of one platform only
    assert slack.resolve_team(None, None, "U0ALICE") == "payments"


def test_home_shows_the_members_teams_and_asks_nobody_else(engine):
    teams = _service(engine, TeamsVoice())
    home = teams.home("29:1dana-aad")
    assert [h.team for h in home.healths] == ["mobile", "payments"] and home.note is None
    stranger = teams.home("29:1stranger")
    assert stranger.note is not None and "lists you as a member" in stranger.note
    try:
        teams.resolve_team(None, None, "29:1stranger")
    except NeedTeam:
        pass
    else:
        raise AssertionError("a user in no team of several is asked which team")


def test_email_look_up_is_stored_once(engine):
    slack = _service(engine, SlackVoice())
    pending = slack.emails_to_look_up()
    assert [email for _, email in pending] == ["dana@acme.io"]
    slack.store_looked_up(pending[0][0], "U0DANA")
    assert slack.emails_to_look_up() == []
    assert slack.user_teams("U0DANA") == ["mobile", "payments"]
    assert slack.chat_user("Dana") == "U0DANA"


def test_teams_card_names_each_teams_definition(engine):
    answer = _service(engine, TeamsVoice()).teams(None)
    text = json.dumps(team_list(answer.rows, answer.channel_team), ensure_ascii=False)
    assert "**payments** · 1 repo · 2 members" in text
    assert "**mobile** · 1 repo · 1 member · path app/" in text
    assert "**web** · all PRs of 1 repo" in text


def test_the_teams_surface_resolves_a_member_and_lists_definitions(engine):
    """Through the Teams surface's own service: a member's command goes to their team, a
    stranger is asked which team, and the `teams` card (valid Adaptive Card 1.5) names each
    team's members and paths."""
    from bot.chat import answers as ans
    from bot.chat.grammar import parse
    from bot.settings import load_env_settings
    from bot.teams import answers as teams_answers
    from bot.teams.app import TeamsSurface
    from tests.fakes.teams import APP_ID
    from tests.test_teams import assert_valid_card

    assert CONFIG is not None
    surface = TeamsSurface(
        load_env_settings({"TEAMS_APP_ID": APP_ID}, dotenv_path=None),
        session_factory(engine),
        CONFIG,
        clock=lambda: NOW,
    )
    svc = surface.service
    mine = svc.dispatch(
        parse("cycle-time", svc.team_names()), "cycle-time", "29:1alice-aad", "19:c"
    )
    assert isinstance(mine, ans.CardAnswer) and mine.card.team == "payments"
    asked = svc.dispatch(parse("cycle-time", svc.team_names()), "cycle-time", "29:1nobody", "19:c")
    assert isinstance(asked, ans.AskTeam)
    listing = svc.dispatch(parse("teams", svc.team_names()), "teams", "29:1nobody", "19:c")
    card = teams_answers.card(listing)
    assert_valid_card(card)
    assert "**mobile** · 1 repo · 1 member · path app/\\\\*\\\\*" in json.dumps(
        card, ensure_ascii=False
    )
