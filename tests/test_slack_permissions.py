"""Who may change an action item, and the admin look-up cache (users.info on the fake)."""

from __future__ import annotations

from datetime import date

from slack_sdk import WebClient

from bot.slack.blocks import ItemRow
from bot.slack.permissions import AdminCache, may_change, not_allowed_text
from tests import slack_harness as sh
from tests.fakes.slack import BOT_TOKEN

slack_server, slack = sh.slack_server, sh.slack
ITEM = ItemRow(1, "payments", "o", "r", "U0OWNER", date(2026, 12, 1), None, None, None, "U0MAKER")


def test_owner_creator_and_admin_may_change():
    assert may_change(ITEM, "U0OWNER", False)
    assert may_change(ITEM, "U0MAKER", False)
    assert may_change(ITEM, "U0OTHER", True)
    assert not may_change(ITEM, "U0OTHER", False)
    assert "<@U0OWNER>" in not_allowed_text(ITEM) and "<@U0MAKER>" in not_allowed_text(ITEM)


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
