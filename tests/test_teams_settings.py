"""The Microsoft Teams environment settings: Microsoft's endpoints by default, each one
pointable elsewhere (a loopback fake), the app password never shown."""

from __future__ import annotations

import pytest

from bot.errors import ConfigError
from bot.settings import (
    DEFAULT_TEAMS_API_URL,
    DEFAULT_TEAMS_OPENID_URL,
    DEFAULT_TEAMS_TOKEN_URL,
    load_env_settings,
)

APP_ID = "00000000-0000-0000-0000-00000000b075"
TENANT_ID = "72f988bf-0000-0000-0000-000000000001"


def test_teams_settings_default_to_microsoft_endpoints():
    s = load_env_settings({}, dotenv_path=None)
    assert s.teams_app_id is None and s.teams_tenant_id is None
    assert s.teams_api_url == DEFAULT_TEAMS_API_URL
    assert s.teams_openid_url == DEFAULT_TEAMS_OPENID_URL
    assert s.teams_token_url == DEFAULT_TEAMS_TOKEN_URL


def test_teams_settings_from_environment_and_password_never_shown():
    s = load_env_settings(
        {
            "TEAMS_APP_ID": APP_ID,
            "TEAMS_APP_PASSWORD": "s3cret-value",
            "TEAMS_TENANT_ID": TENANT_ID,
            "TEAMS_API_URL": "http://127.0.0.1:9/",
            "TEAMS_OPENID_URL": "http://127.0.0.1:9/v1/.well-known/openidconfiguration",
            "TEAMS_TOKEN_URL": "http://127.0.0.1:9/token",
        },
        dotenv_path=None,
    )
    assert (s.teams_app_id, s.teams_tenant_id) == (APP_ID, TENANT_ID)
    assert s.teams_api_url == "http://127.0.0.1:9/"
    assert s.teams_token_url == "http://127.0.0.1:9/token"
    assert "s3cret-value" not in repr(s) and "s3cret-value" not in str(s)


def test_teams_url_setting_that_is_no_url_is_one_clear_line():
    with pytest.raises(ConfigError, match=r"TEAMS_TOKEN_URL must be an http\(s\) URL"):
        load_env_settings({"TEAMS_TOKEN_URL": "login.microsoftonline.com"}, dotenv_path=None)


def test_teams_admins_are_a_comma_separated_list_of_object_ids():
    assert load_env_settings({}, dotenv_path=None).teams_admins == ()
    s = load_env_settings({"TEAMS_ADMINS": " aad-1,aad-2 ,, aad-3 "}, dotenv_path=None)
    assert s.teams_admins == ("aad-1", "aad-2", "aad-3")


def test_public_url_is_checked_and_kept_without_its_trailing_slash():
    assert load_env_settings({}, dotenv_path=None).public_url is None
    s = load_env_settings({"KPIBOT_PUBLIC_URL": "https://kpibot.example.com/"}, dotenv_path=None)
    assert s.public_url == "https://kpibot.example.com"
    with pytest.raises(ConfigError, match="KPIBOT_PUBLIC_URL must be the public address"):
        load_env_settings({"KPIBOT_PUBLIC_URL": "kpibot.example.com"}, dotenv_path=None)


LEAD_OID = "6F1C2A3B-0000-4000-8000-00000000AB01"


def test_leads_may_be_slack_member_ids_or_teams_object_ids():
    from bot.settings import parse_config

    text = f"teams:\n  - name: a\n    repos: [acme/a]\n    leads: [U0123ABCD, {LEAD_OID}]\n"
    config, problems = parse_config(text)
    assert problems == [] and config is not None
    # Teams sends object ids in lower case: the configured one compares as sent
    assert config.team("a").leads == ("U0123ABCD", LEAD_OID.lower())


@pytest.mark.parametrize("lead", ["alice", "6f1c2a3b-0000-4000-8000", "u0123abcd"])
def test_a_lead_that_is_neither_id_is_one_clear_problem(lead):
    from bot.settings import parse_config

    config, problems = parse_config(
        f"teams:\n  - name: a\n    repos: [acme/a]\n    leads: [{lead}]\n"
    )
    assert config is None
    (problem,) = problems
    assert f"lead '{lead}' in team 'a' is neither a Slack member id" in problem
    assert "Microsoft Teams user's object id (a GUID" in problem


def test_a_teams_lead_may_remap_a_conversation(engine):
    from datetime import UTC, datetime

    from bot.chat import answers as ans
    from bot.chat.permissions import Actor, NotAllowed
    from bot.chat.service import ChatService
    from bot.settings import parse_config
    from bot.store.session import session_factory
    from bot.store.teams import sync_teams
    from bot.teams.answers import TeamsVoice

    config, _ = parse_config(
        f"teams:\n  - name: a\n    repos: [acme/a]\n  - name: b\n    repos: [acme/b]\n"
        f"    leads: [{LEAD_OID}]\n"
    )
    assert config is not None
    factory = session_factory(engine)
    with factory() as s:
        sync_teams(s, config)
        s.commit()
    svc = ChatService(factory, config, lambda: datetime(2026, 11, 20, tzinfo=UTC), TeamsVoice())

    def who(user: str) -> Actor:
        return Actor("teams", user, None, False)

    assert isinstance(svc.set_channel_team("19:c", "b", who("aad-mapper")), ans.Notice)
    with pytest.raises(NotAllowed):
        svc.set_channel_team("19:c", "a", who("aad-stranger"))
    assert isinstance(svc.set_channel_team("19:c", "a", who(LEAD_OID.lower())), ans.Notice)
    assert svc.channel_team("19:c") == "a"
