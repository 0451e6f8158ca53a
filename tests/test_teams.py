"""The Microsoft Teams surface over real HTTP: signed activities to ``POST /api/messages``
(tokens signed RS256 with the fake Bot Framework's key, checked by the Teams SDK against the
fake's OpenID metadata and JWKS), answers posted back to the fake connector with an app token
from the fake's token endpoint, and every card checked against the official Adaptive Card 1.5
schema. Plus the TEAMS_* settings and the Adaptive Card renderer on its own."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from sqlalchemy import func, select

from bot.chat import answers as ans
from bot.chat.workers import ReportWorkers
from bot.renderers import adaptive
from bot.settings import (
    load_env_settings,
)
from bot.store.models import ChannelTeam
from bot.surfaces.http import HttpApp, Server
from bot.teams import answers as teams_answers
from bot.teams.app import TeamsSurface, command_text
from bot.teams.auth import ActivityAuth
from tests.demo_org import NOW, DemoOrg, load_demo
from tests.fakes.server import FakeResponse
from tests.fakes.teams import APP_ID, APP_PASSWORD, TENANT_ID, FakeTeams, new_key

SCHEMA_PATH = Path(__file__).parent / "data" / "adaptive-cards" / "adaptive-card-1.5.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft6Validator(SCHEMA)


def assert_valid_card(card: dict[str, Any]) -> None:
    """Valid against the Adaptive Card 1.5 schema, version 1.5, at most 28 KB. Teams' own
    ``msteams`` property (outside the schema) may only carry mentions shown in the card."""
    teams = card.get("msteams")
    if teams is not None:
        assert set(teams) == {"entities"} and teams["entities"], teams
        shown = json.dumps(card["body"], ensure_ascii=False)
        for e in teams["entities"]:
            assert e["type"] == "mention" and e["mentioned"]["id"] and e["mentioned"]["name"]
            assert e["text"].startswith("<at>") and json.dumps(e["text"])[1:-1] in shown, e
    schema_part = {k: v for k, v in card.items() if k != "msteams"}
    errors = sorted(VALIDATOR.iter_errors(schema_part), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.5"
    assert len(json.dumps(card, ensure_ascii=False).encode("utf-8")) <= 28 * 1024


def card_text(card: dict[str, Any]) -> str:
    return json.dumps(card, ensure_ascii=False)


# --- the renderer ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def org(tmp_path_factory, pg_schema_url) -> Iterator[DemoOrg]:
    yield from load_demo(tmp_path_factory.mktemp("teams-demo"), pg_schema_url)


def _service(org: DemoOrg):
    surface = TeamsSurface(
        load_env_settings({"TEAMS_APP_ID": APP_ID}, dotenv_path=None),
        org.factory,
        org.config,
        clock=lambda: NOW,
    )
    return surface.service


@pytest.mark.parametrize(
    "words",
    [
        "cycle-time payments",
        "lead-time mobile last-month",
        "first-review platform 2026-W46",
        "review-coverage payments",
        "cfr mobile",
        "dora payments",
        "health platform",
        "help",
    ],
)
def test_every_card_is_a_valid_adaptive_card_1_5(org, words):
    from bot.chat.grammar import parse

    svc = _service(org)
    answer = svc.dispatch(parse(words, svc.team_names()), words, "29:u", "19:c")
    assert not isinstance(answer, ans.Problem), answer
    card = teams_answers.card(answer)
    assert_valid_card(card)


def test_metric_card_has_the_slack_cards_content(org):
    svc = _service(org)
    card = teams_answers.card(ans.CardAnswer(svc.card("payments", "cycle-time", None)))
    assert_valid_card(card)
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert {"Value (p50)", "n", "p75 / p90", "Target", "Trend"} <= set(facts)
    assert facts["Target"].endswith(("on target", "off target"))
    text = card_text(card)
    assert "Phases (p50):" in text and "Last 8 periods:" in text
    verbs = [a.get("verb") or a["data"]["verb"] for a in card["actions"]]
    assert verbs == ["share_card", "how_computed", "log_action", "show_chart"]
    types = [a["type"] for a in card["actions"]]
    # Log action opens a dialog: only an Action.Submit with msteams task/fetch can
    assert types == ["Action.Execute", "Action.Execute", "Action.Submit", "Action.Execute"]
    assert card["actions"][2]["data"]["msteams"] == {"type": "task/fetch"}
    assert card["actions"][0]["data"] == {"m": "cycle-time", "t": "payments", "p": "28d"}


def test_dora_card_has_bands(org):
    svc = _service(org)
    from bot.chat.grammar import parse

    answer = svc.dispatch(parse("dora payments", ["payments"]), "", "u", None)
    assert isinstance(answer, ans.DoraAnswer)
    card = teams_answers.card(answer)
    assert_valid_card(card)
    assert card["body"][0]["text"] == "DORA keys · payments"
    lines = [b["text"] for b in card["body"][2:-1]]
    assert len(lines) == len(answer.card.cards) == 4
    assert card["body"][-1]["text"] == "data as of 2026-11-20 00:00 UTC"  # the demo's end
    for line, key in zip(lines, answer.card.cards, strict=True):
        assert f"**{key.name}**" in line
        assert key.band and f" · {key.band} · " in line


@pytest.mark.parametrize(
    ("words", "said", "tries"),
    [
        ("cycletime", "start with a KPI (like **cycle-time**)", "**@kpibot cycle-time**"),
        ("payments", "e.g. **@kpibot cycle-time payments**", "**@kpibot health payments**"),
        ("action", "**action** needs **add**: **@kpibot action add** opens", "**@kpibot actions**"),
        ("team", r"needs **set \\<team\\>**", "**@kpibot teams**"),
        (
            "subscribe daily",
            "**@kpibot subscribe weekly** (leading",
            "**@kpibot subscribe monthly**",
        ),
        ("ct *bold*", r"I don't know '\\*bold\\*' here: **cycle-time** takes", "**@kpibot help**"),
    ],
)
def test_grammar_errors_are_worded_for_teams(words, said, tries):
    from bot.chat.grammar import ParseError, parse

    with pytest.raises(ParseError) as err:
        parse(words, ["payments", "mobile"], teams_answers.TeamsVoice())
    card = teams_answers.problem(str(err.value), err.value.suggestions)
    assert_valid_card(card)
    text = card_text(card)
    assert said in text and "Did you mean: " in text and tries in text
    assert "/kpi" not in text and "`" not in text and "&lt;" not in text


def test_oversized_card_is_cut_with_a_note_and_stays_valid():
    body = [adaptive.text(f"line {i} " + "x" * 400) for i in range(200)]
    card = adaptive.card(body)
    assert_valid_card(card)
    assert len(card["body"]) < 200
    assert card["body"][-1]["text"].endswith("more items not shown (the card is too long)")
    left = int(card["body"][-1]["text"].split()[0])
    assert left == 200 - (len(card["body"]) - 1)


def test_source_strings_cannot_become_links_or_emphasis():
    assert adaptive.escape("[click](https://evil.example) **x** <at>y</at>") == (
        r"\[click\](https://evil.example) \*\*x\*\* \<at\>y\</at\>"
    )


def test_bot_mention_is_stripped_from_channel_messages():
    with FakeTeams() as fake:
        activity = fake.activity("cycle-time  payments")
        assert command_text(activity) == "cycle-time payments"
        assert command_text(fake.activity("health", mention=False)) == "health"
        # another person's mention stays part of the text
        other = fake.activity("<at>Ann</at> health")
        assert command_text(other) == "<at>Ann</at> health"


# --- over HTTP ------------------------------------------------------------------------------


class Running:
    def __init__(self, teams: FakeTeams, server: Server, surface: TeamsSurface) -> None:
        self.teams = teams
        self.server = server
        self.surface = surface

    def post(
        self, activity: Any, token: str | None = None, *, raw: bytes | None = None
    ) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        body = raw if raw is not None else json.dumps(activity).encode()
        return httpx.post(f"{self.server.url}/api/messages", content=body, headers=headers)


def _running(org: DemoOrg, env: dict[str, str], **surface: Any) -> Iterator[Running]:
    with FakeTeams() as teams:
        settings = load_env_settings(
            {
                "TEAMS_APP_ID": APP_ID,
                "TEAMS_APP_PASSWORD": APP_PASSWORD,
                "TEAMS_OPENID_URL": teams.openid_url,
                "TEAMS_TOKEN_URL": teams.token_url,
                "TEAMS_API_URL": teams.service_url,
                **env,
            },
            dotenv_path=None,
        )
        teams_surface = TeamsSurface(
            settings, org.factory, org.config, clock=lambda: NOW, **surface
        )
        http_app = HttpApp()
        teams_surface.install(http_app)
        try:
            with Server(http_app, host="127.0.0.1", port=0, threads=4) as server:
                yield Running(teams, server, teams_surface)
        finally:
            teams_surface.close()


@pytest.fixture
def bot(org) -> Iterator[Running]:
    yield from _running(org, {})


@pytest.fixture
def one_tenant_bot(org) -> Iterator[Running]:
    yield from _running(org, {"TEAMS_TENANT_ID": TENANT_ID})


def _posted_card(sent) -> dict[str, Any]:
    assert sent.method == "POST"
    (attachment,) = sent.activity["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    return attachment["content"]


def test_channel_report_command_posts_the_card_to_the_conversation(bot):
    activity = bot.teams.activity("cycle-time payments")
    r = bot.post(activity, bot.teams.token())
    assert r.status_code == 200
    (sent,) = bot.teams.wait_sent(1)
    assert sent.conversation == "19:channel@thread.tacv2"
    assert sent.activity["replyToId"] == activity["id"]
    card = _posted_card(sent)
    assert_valid_card(card)
    assert card["body"][0]["text"] == "Cycle time · payments"
    # the outbound call carried an app token from the token endpoint
    (token_call,) = bot.teams.requests_to("POST", r"/botframework\.com/oauth2/v2\.0/token")
    assert token_call.form()["client_id"] == APP_ID
    (post,) = bot.teams.requests_to("POST", r"/v3/conversations/.*/activities")
    assert post.headers["authorization"].startswith("Bearer outbound-")


def test_personal_chat_plain_text_and_the_token_is_reused(bot):
    asked = []
    for words in ("dora mobile", "health platform"):
        activity = bot.teams.activity(
            words, conversation="a:personal-1", conversation_type="personal", mention=False
        )
        asked.append(activity["id"])
        assert bot.post(activity, bot.teams.token()).status_code == 200
    # answered as they are ready: each is a reply to its message
    sent = sorted(bot.teams.wait_sent(2), key=lambda s: asked.index(s.activity["replyToId"]))
    assert [s.conversation for s in sent] == ["a:personal-1", "a:personal-1"]
    assert "DORA keys · mobile" in card_text(_posted_card(sent[0]))
    assert "Health · platform" in card_text(_posted_card(sent[1]))
    for s in sent:
        assert_valid_card(_posted_card(s))
    assert len(bot.teams.requests_to("POST", r"/botframework\.com/oauth2/v2\.0/token")) == 1


def test_unknown_word_answers_did_you_mean(bot):
    assert bot.post(bot.teams.activity("cycletime"), bot.teams.token()).status_code == 200
    card = _posted_card(bot.teams.wait_sent(1)[0])
    assert_valid_card(card)
    text = card_text(card)
    assert "Did you mean" in text and "@kpibot cycle-time" in text


def test_help_lists_the_commands_in_teams_words(bot):
    assert bot.post(bot.teams.activity("help"), bot.teams.token()).status_code == 200
    card = _posted_card(bot.teams.wait_sent(1)[0])
    assert_valid_card(card)
    text = card_text(card)
    assert "@kpibot dora" in text and "cycle-time" in text and "/kpi" not in text


def test_team_set_from_teams_is_stored_for_the_teams_conversation(bot, org):
    activity = bot.teams.activity("team set mobile", conversation="19:map-me@thread.tacv2")
    assert bot.post(activity, bot.teams.token()).status_code == 200
    assert bot.teams.wait_sent(1)
    with org.factory() as s:
        row = s.scalars(
            select(ChannelTeam).where(ChannelTeam.channel_id == "19:map-me@thread.tacv2")
        ).one()
        assert row.platform == "teams"
        s.delete(row)
        s.commit()


def _mappings(org) -> int:
    with org.factory() as s:
        return int(s.scalar(select(func.count()).select_from(ChannelTeam)) or 0)


@pytest.mark.parametrize(
    "case",
    [
        "no token",
        "not bearer",
        "forged",
        "expired",
        "wrong audience",
        "wrong issuer",
        "unknown key",
    ],
)
def test_unauthenticated_activity_gets_401_and_nothing_changes(bot, org, case):
    t = bot.teams
    tokens = {
        "no token": None,
        "not bearer": "",
        "forged": t.token(key=new_key()),
        "expired": t.token(expires_in=-3600),  # beyond the 5 minutes of clock skew allowed
        "wrong audience": t.token(audience="another-bot"),
        "wrong issuer": t.token(issuer="https://evil.example"),
        "unknown key": t.token(kid="not-a-key"),
    }
    before = _mappings(org)
    activity = t.activity("team set payments", conversation="19:attack@thread.tacv2")
    if case == "not bearer":
        r = httpx.post(
            f"{bot.server.url}/api/messages",
            json=activity,
            headers={"Authorization": f"Basic {APP_PASSWORD}"},
        )
    else:
        r = bot.post(activity, tokens[case])
    assert r.status_code == 401
    assert _mappings(org) == before
    assert t.sent == []
    assert t.requests_to("POST", r"/v3/conversations/.*") == []


def test_token_for_another_service_url_gets_401(bot, org):
    t = bot.teams
    activity = t.activity("team set payments", conversation="19:x@thread.tacv2")
    token = t.token(service_url="https://smba.trafficmanager.net/emea/")
    before = _mappings(org)
    assert bot.post(activity, token).status_code == 401
    assert _mappings(org) == before and t.sent == []


def test_unauthenticated_body_is_never_parsed(bot):
    # a body that is not even JSON, without a token: 401 (not 400), nothing posted
    assert bot.post(None, None, raw=b"\xff{not json").status_code == 401
    # the same body with a valid token is refused as malformed
    assert bot.post(None, bot.teams.token(), raw=b"\xff{not json").status_code == 400
    assert bot.post([1, 2], bot.teams.token()).status_code == 400
    assert bot.teams.sent == []


def test_other_tenant_gets_403_and_nothing_changes(one_tenant_bot, org):
    t = one_tenant_bot.teams
    before = _mappings(org)
    activity = t.activity("team set payments", conversation="19:y@thread.tacv2", tenant="other")
    assert one_tenant_bot.post(activity, t.token()).status_code == 403
    assert _mappings(org) == before and t.sent == []
    # the configured tenant is answered
    assert one_tenant_bot.post(t.activity("help"), t.token()).status_code == 200
    assert len(t.wait_sent(1)) == 1


def test_connector_failure_is_logged_not_a_500(bot, caplog):
    bot.teams.fail("POST", r"/v3/conversations/.*", FakeResponse.json({}, status=503))
    assert bot.post(bot.teams.activity("help"), bot.teams.token()).status_code == 200
    deadline = time.monotonic() + 10
    while "posting the answer to Teams failed" not in caplog.text:
        assert time.monotonic() < deadline, "the failed post was not logged"
        time.sleep(0.02)
    assert APP_PASSWORD not in caplog.text


def test_connector_sends_updates_and_deletes_with_one_app_token():
    from bot.teams.connector import Connector, ConnectorError

    with FakeTeams() as teams:
        c = Connector(APP_ID, APP_PASSWORD, teams.token_url)
        aid = c.send(teams.service_url, "19:c@thread.tacv2", {"type": "message", "text": "a"})
        c.update(teams.service_url, "19:c@thread.tacv2", aid, {"type": "message", "text": "b"})
        c.delete(teams.service_url, "19:c@thread.tacv2", aid)
        assert [(s.method, s.activity_id) for s in teams.sent] == [
            ("POST", aid),
            ("PUT", aid),
            ("DELETE", aid),
        ]
        assert teams.sent[1].activity["text"] == "b"
        assert len(teams.requests_to("POST", r"/botframework\.com/oauth2/v2\.0/token")) == 1
        wrong = Connector(APP_ID, "not-the-password", teams.token_url)
        with pytest.raises(ConnectorError, match="token endpoint answered 401") as err:
            wrong.send(teams.service_url, "19:c@thread.tacv2", {"type": "message"})
        assert "not-the-password" not in str(err.value)


def test_http_mode_serves_api_messages_only_with_the_app_password(org):
    from bot.errors import ConfigError
    from bot.teams.app import install

    http_app = HttpApp()
    with_secret = load_env_settings(
        {"TEAMS_APP_ID": APP_ID, "TEAMS_APP_PASSWORD": APP_PASSWORD}, dotenv_path=None
    )
    install(http_app, with_secret, org.factory, org.config)
    assert ("POST", "/api/messages") in http_app.routes
    assert ("POST", "/api/messages") in http_app.verifiers
    without = load_env_settings({"TEAMS_APP_ID": APP_ID}, dotenv_path=None)
    with pytest.raises(ConfigError, match="TEAMS_APP_PASSWORD is not set"):
        install(HttpApp(), without, org.factory, org.config)


def test_echoed_words_read_as_typed_and_make_no_markup(bot):
    activity = bot.teams.activity("<b>x</b> now")
    assert bot.post(activity, bot.teams.token()).status_code == 200
    card = _posted_card(bot.teams.wait_sent(1)[0])
    assert_valid_card(card)
    first = card["body"][0]["text"]
    assert r"'\<b\>x\</b\>'" in first and "&lt;" not in first


def test_lists_are_answered_as_cards(bot, org):
    conv = "19:lists@thread.tacv2"
    cards = []
    for words in ("teams", "team set payments", "subscriptions", "actions payments all"):
        activity = bot.teams.activity(words, conversation=conv)
        assert bot.post(activity, bot.teams.token()).status_code == 200
        cards.append(_posted_card(bot.teams.wait_sent(len(cards) + 1)[-1]))  # one at a time
    for c in cards:
        assert_valid_card(c)
    teams_text = card_text(cards[0])
    assert "**payments**" in teams_text and "**mobile**" in teams_text
    assert "not available" not in card_text(cards[1])
    assert "receives no digests" in card_text(cards[2])
    assert cards[3]["body"][0]["text"] == "Action items · payments"
    with org.factory() as s:
        row = s.scalars(select(ChannelTeam).where(ChannelTeam.channel_id == conv)).one()
        s.delete(row)
        s.commit()


# --- answered after the acknowledgement -----------------------------------------------------


class CountingAuth(ActivityAuth):
    """The real token check, counting how often a request's token is validated."""

    def __init__(self, app_id: str, openid_url: str) -> None:
        super().__init__(app_id, openid_url)
        self.validations = 0

    def claims(self, authorization: str | None, service_url: str | None = None) -> dict[str, Any]:
        self.validations += 1
        return super().claims(authorization, service_url)


def test_each_request_token_is_validated_once(bot):
    auth = CountingAuth(APP_ID, bot.teams.openid_url)
    bot.surface.auth = auth
    assert bot.post(bot.teams.activity("help"), bot.teams.token()).status_code == 200
    assert bot.post(bot.teams.activity("health"), bot.teams.token()).status_code == 200
    assert len(bot.teams.wait_sent(2)) == 2
    assert auth.validations == 2
    # a token for another connector is still refused, from that one validation's claims
    other = bot.teams.token(service_url="https://smba.trafficmanager.net/emea/")
    assert bot.post(bot.teams.activity("help"), other).status_code == 401
    assert auth.validations == 3


@pytest.fixture(scope="module")
def workers(org) -> Iterator[ReportWorkers]:
    pool = ReportWorkers(org.url, org.config, 1)
    pool.warm_up()
    yield pool
    pool.close()


@pytest.fixture
def pooled(org, workers) -> Iterator[Running]:
    workers.max_waiting = 16
    yield from _running(org, {}, workers=workers)


def test_reports_are_acknowledged_at_once_and_posted_from_the_workers(pooled, workers):
    t = pooled.teams
    before = sum(workers.computed_in.values())
    workers.pool.submit(time.sleep, 1.5)  # the only worker is busy for a while
    started = time.monotonic()
    r = pooled.post(t.activity("cycle-time payments"), t.token())
    acked = time.monotonic() - started
    assert r.status_code == 200 and acked < 1.0
    assert t.sent == []  # acknowledged before the card exists
    (sent,) = t.wait_sent(1, timeout=60)
    card = _posted_card(sent)
    assert_valid_card(card)
    assert card["body"][0]["text"] == "Cycle time · payments"
    assert time.monotonic() - started >= 1.0  # it waited for the worker
    assert sum(workers.computed_in.values()) == before + 1
    assert os.getpid() not in workers.computed_in
    # what is not a report is answered without the workers
    assert pooled.post(t.activity("teams"), t.token()).status_code == 200
    assert "**payments**" in card_text(_posted_card(t.wait_sent(2)[1]))
    assert sum(workers.computed_in.values()) == before + 1


def test_a_full_pool_answers_busy_and_starts_nothing(pooled, workers):
    t = pooled.teams
    workers.pool.submit(time.sleep, 1.0)
    job = workers.submit(time.sleep, NOW, 1.0)  # the only worker's next report
    workers.max_waiting = 0  # nothing more may wait
    refused = workers.refused
    r = pooled.post(t.activity("dora payments"), t.token())
    assert r.status_code == 200
    card = _posted_card(t.wait_sent(1)[0])
    assert_valid_card(card)
    assert card_text(card).count("try again in a minute") == 1
    assert workers.refused == refused + 1
    job.result(timeout=30)


def _typed(usage: Any) -> str:
    """A grammar entry as a person would type it, its required words filled in."""
    import re as _re

    required = [a.split("|")[0] for a in _re.sub(r"\[[^]]*\]", "", usage.args).split()]
    words = " ".join([usage.words, *required])
    return words.replace("<team>", "payments").replace("<kpi>", "cfr")


def test_every_command_of_the_grammar_is_answered_in_teams_with_a_valid_card(bot, org):
    """Each command the help and the app's menu offer, sent as a Teams message over HTTP,
    gets one schema-valid card that is an answer, not an error."""
    from bot.chat import grammar
    from bot.store.models import DigestSubscription

    conversation = "19:every-command@thread.tacv2"
    typed = [_typed(u) for u in grammar.COMMANDS] + ["help", "home"]
    try:
        for i, words in enumerate(typed, start=1):
            activity = bot.teams.activity(words, conversation=conversation)
            assert bot.post(activity, bot.teams.token()).status_code == 200
            sent = bot.teams.wait_sent(i, timeout=60)
            assert len(sent) == i, f"no answer to {words!r}"
            card = _posted_card(sent[-1])
            assert_valid_card(card)
            text = card_text(card)
            assert ans.OOPS not in text, words
            assert "not available" not in text, words
    finally:
        with org.factory() as s:
            for model in (DigestSubscription, ChannelTeam):
                for row in s.scalars(select(model).where(model.channel_id == conversation)):
                    s.delete(row)
            s.commit()
