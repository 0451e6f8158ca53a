"""manifest.yml creates everything the app uses in one paste."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_manifest_has_what_the_app_uses():
    m = yaml.safe_load((ROOT / "manifest.yml").read_text())
    (cmd,) = [c for c in m["features"]["slash_commands"] if c["command"] == "/kpi"]
    assert cmd["should_escape"] is True and cmd["url"].endswith("/slack/events")
    assert m["features"]["app_home"]["home_tab_enabled"] is True
    assert m["settings"]["interactivity"]["is_enabled"] is True
    assert m["settings"]["interactivity"]["request_url"].endswith("/slack/events")
    assert "app_home_opened" in m["settings"]["event_subscriptions"]["bot_events"]
    assert m["settings"]["socket_mode_enabled"] is True
    scopes = set(m["oauth_config"]["scopes"]["bot"])
    # chat.postMessage/postEphemeral, DMs, users.info, files upload v2, conversations.info
    assert {"commands", "chat:write", "im:write", "users:read", "files:write"} <= scopes
    assert {"channels:read", "groups:read"} <= scopes
    # a subscribed public channel is joined, so the scheduler can read its history
    assert {"channels:join", "channels:history", "groups:history"} <= scopes


def test_procfile_runs_http_mode_on_port():
    lines = (ROOT / "Procfile").read_text().splitlines()
    web = next(line for line in lines if line.startswith("web:"))
    assert "kpibot run --mode http --port $PORT" in web
