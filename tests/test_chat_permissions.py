"""The permission model every chat surface calls (bot.chat.permissions)."""

from __future__ import annotations

import pytest

from bot.chat.permissions import (
    Actor,
    NotAllowed,
    check_workspace,
    may_change_item,
    may_change_subscription,
    may_map_channel,
    same_workspace,
)

HOME = "T0HOME"


def actor(user: str, *, admin: bool = False, tenant: str | None = HOME) -> Actor:
    return Actor(platform="slack", user_id=user, tenant_id=tenant, is_admin=admin)


def test_requests_from_another_workspace_are_refused():
    check_workspace(actor("U1"), HOME)
    for tenant in ("T0ELSEWHERE", None):
        with pytest.raises(NotAllowed, match="another organisation"):
            check_workspace(actor("U1", tenant=tenant, admin=True), HOME)
    check_workspace(actor("U1", tenant="T0ANY"), None)  # home not known: nothing to check
    assert same_workspace(HOME, HOME) and not same_workspace("T0X", HOME)
    assert not same_workspace(None, HOME)  # an owner who could not be looked up


def test_item_owner_creator_admin_and_leads_may_change_it():
    item = {"owner": "U0OWNER", "creator": "U0MAKER", "leads": ("U0LEAD",)}
    assert may_change_item(actor("U0OWNER"), **item)
    assert may_change_item(actor("U0MAKER"), **item)
    assert may_change_item(actor("U0LEAD"), **item)
    assert may_change_item(actor("U0OTHER", admin=True), **item)
    assert not may_change_item(actor("U0OTHER"), **item)


def test_subscription_changes():
    assert may_change_subscription(actor("U0SUB"), created_by="U0SUB", leads=())
    assert not may_change_subscription(actor("U0OTHER"), created_by="U0SUB", leads=())
    assert may_change_subscription(actor("U0LEAD"), created_by="U0SUB", leads=["U0LEAD"])
    assert may_change_subscription(actor("U0OTHER", admin=True), created_by="U0SUB", leads=())
    # made from the command line: only admins and leads
    assert not may_change_subscription(actor("U0OTHER"), created_by=None, leads=())
    assert may_change_subscription(actor("U0LEAD"), created_by=None, leads=("U0LEAD",))


def test_channel_mapping():
    assert may_map_channel(actor("U0ANY"), mapped=False, mapped_by=None, leads=())
    assert may_map_channel(actor("U0MAP"), mapped=True, mapped_by="U0MAP", leads=())
    assert not may_map_channel(actor("U0ANY"), mapped=True, mapped_by="U0MAP", leads=())
    assert not may_map_channel(actor("U0ANY"), mapped=True, mapped_by=None, leads=())
    assert may_map_channel(actor("U0LEAD"), mapped=True, mapped_by="U0MAP", leads=("U0LEAD",))
    assert may_map_channel(actor("U0ANY", admin=True), mapped=True, mapped_by="U0MAP", leads=())


def test_the_module_knows_no_chat_platform():
    from pathlib import Path

    import bot.chat.permissions as mod

    source = Path(mod.__file__).read_text(encoding="utf-8")
    assert "slack_sdk" not in source and "slack_bolt" not in source and "bot.slack" not in source
