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


# --- leads in kpibot.yml ----------------------------------------------------------------------

LEADS = """\
defaults:
  leads: [U0BOSS]
teams:
  - name: payments
    repos: [acme/payments]
    leads: [U0PAYLEAD, W0GRIDLEAD]
  - name: mobile
    repos: [acme/mobile]
"""


def test_leads_from_defaults_and_teams():
    from bot.settings import parse_config

    config, problems = parse_config(LEADS)
    assert problems == [] and config is not None
    assert config.team("payments").leads == ("U0PAYLEAD", "W0GRIDLEAD")  # the team's own
    assert config.team("mobile").leads == ("U0BOSS",)  # from defaults


def test_a_lead_that_is_not_a_user_id_is_reported_with_its_line():
    from bot.settings import parse_config

    text = (
        "teams:\n  - name: payments\n    leads: [U0PAYLEAD, alice]\n    repos: [acme/pay]\n"
        "  - name: mobile\n    repos: [acme/mobile]\n"
    )
    config, problems = parse_config(text, "kpibot.yml")
    assert config is None
    assert problems == [
        "kpibot.yml:3: lead 'alice' in team 'payments' is neither a Slack member id (e.g. "
        "U0123ABCD, from the person's profile -> Copy member ID) nor a Microsoft Teams user's "
        "object id (a GUID, from Microsoft Entra admin center -> Users -> the person -> Object "
        "ID); not a name"
    ]
    _, problems = parse_config("teams:\n  - name: payments\n    leads: {a: b}\n    repos: [a/b]\n")
    assert problems and ":3: leads must be a list" in problems[0]
