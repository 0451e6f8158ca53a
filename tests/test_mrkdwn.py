"""Source-provided strings in chat messages: escaped for Slack mrkdwn, and links only to the
configured providers' web hosts; text and JSON keep them intact as data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.metrics.engine import TeamEngine, WaitingPR
from bot.metrics.periods import last_complete_week
from bot.renderers import blocks, jsonout, text
from bot.renderers.mrkdwn import GITHUB_COM, Links, escape, github_web_host, link
from bot.reports.digests import WeeklyDigest, build_weekly
from bot.scheduler.jobs import reminder_text, render_digest
from bot.settings import Settings
from bot.slack import blocks as kit
from bot.store.models import ActionItem
from tests.test_blocks import PERIOD, card, item
from tests.test_webhooks import CONFIG, gh, octokit
from tests.test_webhooks import server as server  # the webhook routes on loopback

EVIL_TITLE = "<!channel> <https://evil.example|click>"
EVIL_URL = "https://evil.example/x"
NOW = datetime(2019, 5, 20, 12, 0, tzinfo=UTC)  # the recorded PRs were opened on 15 May 2019


def _opened(number: int, title: str, html_url: str) -> bytes:
    body = json.loads(octokit("pull_request/opened.payload.json"))
    body["number"] = body["pull_request"]["number"] = number
    body["pull_request"]["title"] = title
    body["pull_request"]["html_url"] = html_url
    body["pull_request"]["id"] += number
    body["pull_request"]["node_id"] += str(number)
    return json.dumps(body).encode()


def _mrkdwn_texts(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn":
            yield node
        for v in node.values():
            yield from _mrkdwn_texts(v)
    elif isinstance(node, list):
        for v in node:
            yield from _mrkdwn_texts(v)


def _assert_inert(message: dict[str, Any]) -> str:
    """No special mention and no link to a foreign host in any text Slack reads as mrkdwn (the
    mrkdwn text objects and the top-level ``text``), and every mrkdwn text object is verbatim
    (Slack makes no link or mention out of its plain text). Returns those texts, joined."""
    texts = list(_mrkdwn_texts(message))
    assert all(t.get("verbatim") is True for t in texts)
    raw = "\n".join([message.get("text", ""), *(t["text"] for t in texts)])
    assert "<!" not in raw  # <!channel>, <!here>, <!everyone>, <!subteam^…>
    assert "<https://evil.example" not in raw and "<http:" not in raw
    return raw


def test_a_webhook_pr_with_a_channel_mention_and_foreign_link_is_posted_inert(server, session):
    evil = gh(server, "pull_request", _opened(7, EVIL_TITLE, EVIL_URL))
    assert evil.status_code == 200, evil.text
    fine = gh(
        server,
        "pull_request",
        _opened(8, "Tidy & <format>", "https://github.com/Codertocat/Hello-World/pull/8"),
    )
    assert fine.status_code == 200, fine.text
    session.expire_all()
    team = CONFIG.team("payments")
    period = last_complete_week(NOW, ZoneInfo("UTC"))

    # what the scheduler posts in the channel
    message = render_digest(session, team, "weekly", period, NOW, Links.of(Settings()))
    raw = _assert_inert(message)
    waiting = next(
        t["text"] for t in _mrkdwn_texts(message) if t["text"].startswith("*PRs waiting")
    )
    assert (
        "• Codertocat/Hello-World#7 (https://evil.example/x) "
        "&lt;!channel&gt; &lt;https://evil.example|click&gt;"
    ) in waiting
    assert (
        "• <https://github.com/Codertocat/Hello-World/pull/8|Codertocat/Hello-World#8> "
        "Tidy &amp; &lt;format&gt;"
    ) in waiting
    assert raw.count("<https://") == 1

    # text and JSON keep the strings as data
    digest = build_weekly(TeamEngine(session, team), period, NOW.replace(tzinfo=None))
    assert f"Codertocat/Hello-World#7 {EVIL_TITLE}" in text.weekly(digest)
    as_json = {w["number"]: w for w in jsonout.weekly(digest)["waiting_for_review"]}
    assert (as_json[7]["title"], as_json[7]["url"]) == (EVIL_TITLE, EVIL_URL)
    assert as_json[8]["title"] == "Tidy & <format>"


def test_links_go_only_to_the_configured_providers_web_hosts():
    assert github_web_host("https://api.github.com") == "github.com"
    assert github_web_host("https://ghe.acme.io/api/v3") == "ghe.acme.io"
    links = Links.of(
        Settings(
            github_api_url="https://ghe.acme.io/api/v3",
            jira_url="https://acme.atlassian.net",
            pagerduty_api_url="https://api.eu.pagerduty.com",
            opsgenie_api_url="https://api.eu.opsgenie.com",
        )
    )
    for url in (
        "https://ghe.acme.io/acme/api/pull/3",
        "https://acme.atlassian.net/browse/OPS-12",
        "https://acme.eu.pagerduty.com/incidents/PABC123",
        "https://acme.app.eu.opsgenie.com/alert/detail/1-2-3/details",
        "https://ghe.acme.io:443/acme/api/pull/3?a=1&b=2",
    ):
        assert links.allows(url), url
    for url in (
        "https://github.com/acme/api/pull/3",  # not this installation's GitHub
        "http://ghe.acme.io/acme/api/pull/3",  # not https
        "https://ghe.acme.io.evil.example/x",
        "https://evil.example/ghe.acme.io",
        "https://ghe.acme.io@evil.example/x",
        "https://ghe.acme.io\\@evil.example/x",
        "https://evil.example\\.ghe.acme.io/x",
        "https://user:pw@ghe.acme.io/x",
        "https://ghe.acme.io:8443/x",
        "https://ghe.acme.io/x|<!channel>",
        "https://ghe.acme.io/x>",
        "https://ghe.acme.io/x y",
        "javascript:alert(1)",
        "https://pagerduty.com.evil.example/x",
        "",
        None,
    ):
        assert not links.allows(url), url
    # the defaults: github.com, PagerDuty and Opsgenie account hosts, no Jira
    default = Links.of(Settings())
    assert default.allows("https://github.com/acme/api/pull/3")
    assert default.allows("https://acme.pagerduty.com/incidents/P1")
    assert default.allows("https://acme.app.opsgenie.com/alert/detail/1")
    assert not default.allows("https://acme.atlassian.net/browse/OPS-12")
    # a link's URL and text are escaped; a refused URL is plain text
    assert link("https://github.com/a/b?x=1&y=2", "a/b#1", default) == (
        "<https://github.com/a/b?x=1&amp;y=2|a/b#1>"
    )
    assert link(EVIL_URL, "a/b#1", default) == "a/b#1 (https://evil.example/x)"
    assert link(None, "<!here>", default) == "&lt;!here&gt;"


def test_ghes_pr_links_in_the_weekly_digest():
    prs = (
        WaitingPR(
            "acme/api", 3, "GHES", "https://ghe.acme.io/acme/api/pull/3", datetime(2026, 11, 1)
        ),
        WaitingPR(
            "acme/api", 4, "dotcom", "https://github.com/acme/api/pull/4", datetime(2026, 11, 1)
        ),
    )
    d = WeeklyDigest("payments", PERIOD, (card("cycle-time"),), None, prs, ())
    ghes = Links.of(Settings(github_api_url="https://ghe.acme.io/api/v3"))
    raw = _assert_inert(blocks.weekly(d, ghes))
    assert "<https://ghe.acme.io/acme/api/pull/3|acme/api#3>" in raw
    assert "acme/api#4 (https://github.com/acme/api/pull/4)" in raw
    raw = _assert_inert(blocks.weekly(d, GITHUB_COM))  # the default: github.com
    assert "acme/api#3 (https://ghe.acme.io/acme/api/pull/3)" in raw
    assert "<https://github.com/acme/api/pull/4|acme/api#4>" in raw


def test_team_names_action_items_and_user_ids_are_escaped_in_every_slack_message():
    team = "<!here> team"
    c = card("cycle-time")
    c = type(c)(**{**c.__dict__, "team": team})
    shared = kit.shared_card_payload(c, "U1")
    _assert_inert(shared)
    assert escape(team) in shared["text"]
    _assert_inert(kit.card_payload(c))
    forged = "U1>|<!channel"
    row = kit.ItemRow(
        1, team, EVIL_TITLE, "<!everyone>", forged, date(2026, 11, 1), None, None, None, "U2"
    )
    for payload in (
        kit.actions_payload([row], team, False, date(2026, 11, 20)),
        kit.item_confirmation(row, forged),
        kit.which_team_payload("ct", [team]),
        kit.teams_payload([kit.TeamRow(team, "UTC", 1, ("C1", "<!channel>"))], None),
        kit.home_view(
            user=forged, healths=(), items=[row], subscriptions=(), today=date(2026, 11, 20)
        ),
        kit.help_payload(team, [team]),
    ):
        raw = _assert_inert(payload)
        assert "<@U1>|" not in raw and "&lt;!" in raw  # shown, escaped
    weekly = blocks.weekly(WeeklyDigest(team, PERIOD, (c,), None, (), (item(1, EVIL_TITLE),)))
    raw = _assert_inert(weekly)
    assert escape(team) in weekly["text"]
    assert escape(EVIL_TITLE) in raw


def test_reminders_escape_the_team_and_the_items():
    it = ActionItem(
        opportunity=EVIL_TITLE, resolution="<!here>", kpi=None, due_on=date(2026, 11, 1)
    )
    out = reminder_text("<!channel> team", [it], date(2026, 11, 20))
    assert "<!" not in out and "<https" not in out
    assert "&lt;!channel&gt; team" in out
