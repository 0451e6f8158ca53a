"""Teams made of people in Slack: App Home and team resolution from membership, the e-mail
look-up done once, and `/kpi teams` with each team's definition, over signed requests to the
real app against the fake Slack."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.settings import parse_config
from bot.store.models import Person
from bot.store.session import make_engine, session_factory
from tests import slack_harness as sh

slack_server, slack = sh.slack_server, sh.slack

CONFIG = f"""
people:
  - {{github: carol, slack: U0CAROL}}
teams:
  - name: payments
    timezone: Europe/Berlin
    channel: {sh.PAY_CHANNEL}
    repos: [acme/payments-api]
    members: [{{github: alice, slack: U0ALICE}}, {{github: bob, email: bob@acme.io}}]
  - name: mobile
    timezone: America/New_York
    repos: [acme/mobile-app]
    members: [carol]
    paths: ["app/**", "libs/ui/**"]
"""


@pytest.fixture
def kpi(db_url: str, slack, tmp_path: Any):
    config, problems = parse_config(CONFIG)
    assert config is not None, problems
    yield from sh.make_harness(db_url, slack, tmp_path, config)


def _home(kpi, user: str) -> str:
    before = len(kpi.slack.calls_to("views.publish"))
    r = kpi.event({"type": "app_home_opened", "user": user, "channel": "D0", "tab": "home"})
    assert r.status_code == 200
    return kpi.slack.wait_for("views.publish", before + 1)[-1].text_of()


def test_app_home_lists_the_users_teams_from_membership(kpi):
    text = _home(kpi, "U0ALICE")
    assert "*payments*:" in text and "*mobile*:" not in text
    assert "Showing every team" not in text
    text = _home(kpi, "U0CAROL")  # from the top-level identity mapping
    assert "*mobile*:" in text and "*payments*:" not in text


def test_the_email_is_looked_up_once_and_kept(kpi, db_url):
    kpi.slack.add_user("U0BOB", email="bob@acme.io")
    text = _home(kpi, "U0BOB")
    assert "*payments*:" in text and "Showing every team" not in text
    lookups = kpi.slack.calls_to("users.lookupByEmail")
    assert [c.args.get("email") for c in lookups] == ["bob@acme.io"]
    _home(kpi, "U0BOB")
    _home(kpi, "U0ALICE")
    assert len(kpi.slack.calls_to("users.lookupByEmail")) == 1  # cached in the store
    eng = make_engine(db_url)
    with session_factory(eng)() as s:
        bob = s.scalars(select(Person).where(Person.github == "bob")).one()
        assert bob.slack_user == "U0BOB" and bob.slack_lookup_at is not None
    eng.dispose()


def test_an_unknown_email_is_asked_once_too(kpi):
    # bob@acme.io is no one in this workspace: the answer (nobody) is kept as well
    _home(kpi, "U0ALICE")
    _home(kpi, "U0ALICE")
    assert len(kpi.slack.calls_to("users.lookupByEmail")) == 1


def test_team_resolution_uses_membership_and_a_user_in_no_team_is_asked(kpi):
    _, url = kpi.command("cycle-time", channel=sh.OTHER_CHANNEL, user="U0CAROL")
    assert "mobile" in kpi.answer(url).text_of()
    _, url = kpi.command("cycle-time", channel=sh.OTHER_CHANNEL, user="U0NEW")
    ans = kpi.answer(url)
    assert "Which team?" in ans.text_of()
    text = _home(kpi, "U0NEW")
    assert "Showing every team" in text and "lists you as a member" in text


def test_teams_shows_members_and_definition(kpi):
    _, url = kpi.command("teams")
    text = kpi.answer(url).text_of()
    assert "*payments* · 1 repo · 2 members · Europe/Berlin" in text
    assert "*mobile* · 1 repo · 1 member · paths `app/**`, `libs/ui/**` · America/New_York" in text
