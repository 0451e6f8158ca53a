"""The Slack facts behind permissions: the admin and workspace look-up cache (users.info on
the fake) and the workspace a request came from."""

from __future__ import annotations

from slack_sdk import WebClient

from bot.slack.permissions import AdminCache, request_workspace
from tests import slack_harness as sh
from tests.fakes.slack import BOT_TOKEN, TEAM_ID

slack_server, slack = sh.slack_server, sh.slack


def test_admin_cache(slack):
    slack.add_user("U0ADMIN", admin=True)
    t = [0.0]
    cache = AdminCache(
        WebClient(token=BOT_TOKEN, base_url=slack.api_url), ttl=60, clock=lambda: t[0]
    )
    assert cache.is_admin("U0ADMIN") and cache.is_admin("U0ADMIN")
    assert not cache.is_admin("U0PLAIN")
    assert len(slack.calls_to("users.info")) == 2
    t[0] = 61.0
    assert cache.is_admin("U0ADMIN")
    assert len(slack.calls_to("users.info")) == 3
    slack.slack_error("users.info", "user_not_found")
    assert not cache.is_admin("U0GONE")


def test_workspace_of_a_user_and_failed_lookups(slack):
    slack.add_user("U0GUEST", team="T0PARTNER")
    cache = AdminCache(WebClient(token=BOT_TOKEN, base_url=slack.api_url))
    assert cache.workspace("U0GUEST") == "T0PARTNER"
    assert cache.workspace("U0LOCAL") == TEAM_ID
    slack.slack_error("users.info", "user_not_found")
    assert cache.workspace("U0NOBODY") is None


def test_request_workspace_prefers_the_users_own():
    # Slack Connect: the channel's host is one workspace, the user's is another
    assert request_workspace({"team": {"id": "T0HOST"}, "user": {"team_id": "T0X"}}) == "T0X"
    assert request_workspace({"team_id": "T0HOST", "user_team": "T0X"}) == "T0X"
    assert request_workspace({"team_id": "T0HOST"}) == "T0HOST"
    assert request_workspace({"team": {"id": "T0HOST"}, "user": {"id": "U1"}}) == "T0HOST"
    assert request_workspace({}) is None
