"""Every /kpi command of the grammar, as signed slash commands over HTTP on loopback."""

from __future__ import annotations

from tests import slack_harness as sh

slack_server, slack, kpi = sh.slack_server, sh.slack, sh.kpi
PAY_CHANNEL, OTHER_CHANNEL = sh.PAY_CHANNEL, sh.OTHER_CHANNEL


def test_help_is_answered_in_the_ack(kpi):
    r, _ = kpi.command("")
    assert r.status_code == 200
    body = r.json()
    assert body["response_type"] == "ephemeral"
    text = str(body["blocks"])
    assert "cycle-time" in text and "`ct`" in text and "payments" in text
    assert "This channel's team: *payments*" in text


def test_metric_card_with_alias(kpi):
    r, url = kpi.command("ct last-month")
    assert r.status_code == 200 and r.text == ""
    ans = kpi.answer(url)
    assert ans.args["response_type"] == "ephemeral"
    text = ans.text_of()
    assert "Cycle time · payments" in text
    assert "p75 / p90" in text and "Target" in text and "Trend" in text
    assert "Last 8 periods" in text and "Phases (p50)" in text
    ids = [e["action_id"] for b in ans.blocks if b["type"] == "actions" for e in b["elements"]]
    assert ids == ["share_card", "how_computed", "log_action", "show_chart"]


def _text(kpi, cmd, **kw):
    r, url = kpi.command(cmd, **kw)
    assert r.status_code == 200
    if r.text:
        body = r.json()
        assert body["response_type"] == "ephemeral"
        return " ".join([body["text"], str(body["blocks"])])
    ans = kpi.answer(url)
    assert ans.args.get("response_type") == "ephemeral"
    return ans.text_of()


def test_card_for_named_team_and_period(kpi):
    text = _text(kpi, "cycle-time mobile 2026-W46")
    assert "Cycle time · mobile" in text and "week 2026-W46" in text
    assert "no data (n = 0)" in text


def test_dora_health_and_digest_previews(kpi):
    dora = _text(kpi, "dora payments last-month")
    assert "DORA keys · payments" in dora and "2023 edition" in dora
    health = _text(kpi, "health")
    assert "Health · payments" in health and " on target" in health
    for word, title in (
        ("weekly", "Weekly leading indicators"),
        ("leading", "Weekly leading indicators"),
        ("monthly", "Monthly lagging indicators"),
        ("lagging mobile", "Monthly lagging indicators · mobile"),
    ):
        text = _text(kpi, word)
        assert title in text and "Preview of the" in text


def test_teams_and_team_set_maps_the_channel(kpi):
    teams = _text(kpi, "teams")
    assert "payments" in teams and "mobile" in teams and f"<#{PAY_CHANNEL}>" in teams
    done = _text(kpi, "team set mobile", channel=OTHER_CHANNEL)
    assert "now belongs to *mobile*" in done
    assert "Cycle time · mobile" in _text(kpi, "ct", channel=OTHER_CHANNEL)
    assert "This channel's team: *mobile*" in _text(kpi, "help", channel=OTHER_CHANNEL)
    # a Slack mapping wins over kpibot.yml
    _text(kpi, "team set mobile", channel=PAY_CHANNEL)
    assert "Cycle time · mobile" in _text(kpi, "ct", channel=PAY_CHANNEL)


def test_subscribe_list_and_unsubscribe(kpi, db_url):
    from bot.store import subscriptions
    from bot.store.session import make_engine, session_factory

    assert "will now receive the weekly digest of *payments*" in _text(kpi, "subscribe weekly")
    assert "already receives" in _text(kpi, "subscribe weekly")
    assert "monthly digest of *mobile*" in _text(kpi, "subscribe monthly mobile")
    listing = _text(kpi, "subscriptions")
    assert "*weekly* digest of *payments*, every Mon at 09:00" in listing
    assert "*monthly* digest of *mobile*, on day 1 of each month at 09:00" in listing
    eng = make_engine(db_url)
    with session_factory(eng)() as s:
        subs = subscriptions.active_subscriptions(s)
        assert {(x.channel_id, x.team, x.kind, x.schedule) for x in subs} == {
            (PAY_CHANNEL, "payments", "weekly", None),  # the team's times in kpibot.yml
            (PAY_CHANNEL, "mobile", "monthly", None),
        }
    # a channel's own time replaces the team's, and is what the scheduler reads
    said = _text(kpi, "subscribe weekly at wed 07:30")
    assert "already receives the weekly digest of *payments* every Wed at 07:30" in said
    assert "every Wed at 07:30" in _text(kpi, "subscriptions")
    assert "day before the time" in _text(kpi, "subscribe weekly 07:30")
    with session_factory(eng)() as s:
        schedules = {x.kind: x.schedule for x in subscriptions.active_subscriptions(s)}
        assert schedules == {"weekly": "wed 07:30", "monthly": None}
    assert "Stopped the weekly digest of payments" in _text(kpi, "unsubscribe weekly")
    assert "Nothing to stop" in _text(kpi, "unsubscribe weekly")
    assert "Stopped the monthly digest of mobile" in _text(kpi, "unsubscribe")
    assert "receives no digests" in _text(kpi, "subscriptions")
    eng.dispose()


def test_no_team_known_asks_which_and_the_pick_reruns(kpi):
    r, url = kpi.command("pr-size 90d", channel=OTHER_CHANNEL, user="U0NEW")
    ans = kpi.answer(url)
    assert "Which team?" in ans.text_of()
    picks = next(b for b in ans.blocks if b.get("block_id") == "pick_team")["elements"]
    assert [p["text"]["text"] for p in picks] == ["payments", "mobile"]
    r, url2 = kpi.click(
        picks[1]["action_id"], picks[1]["value"], user="U0NEW", channel=OTHER_CHANNEL
    )
    assert r.status_code == 200
    again = kpi.answer(url2)
    assert again.args["replace_original"] is True
    assert "PR size · mobile" in again.text_of() and "last 90 days" in again.text_of()


def test_the_users_only_team_is_the_default(kpi):
    r = kpi.submit(team="mobile", kpi=None, owner="U0MOBI", user="U0MOBI")
    assert r.status_code == 200
    assert "Cycle time · mobile" in _text(kpi, "ct", channel=OTHER_CHANNEL, user="U0MOBI")


def test_actions_lists_open_and_all(kpi):
    assert "No open action items" in _text(kpi, "actions")
    kpi.submit(opportunity="Slow reviews")
    kpi.submit(opportunity="Big PRs", kpi="pr-size")
    text = _text(kpi, "actions payments")
    assert "Open action items · payments" in text and "Slow reviews" in text and "Big PRs" in text
    assert "All action items · payments" in _text(kpi, "actions all")


def test_unknown_words_get_suggestions_in_the_ack(kpi):
    for cmd, hint in (
        ("cyle-time", "/kpi cycle-time"),
        ("ct paymnts", "/kpi cycle-time payments"),
        ("payments", "/kpi health payments"),
        ("subscribe daily", "/kpi subscribe weekly"),
        ("team set nobody", "/kpi team set payments"),
        ("action remove", "/kpi action add"),
    ):
        r, _url = kpi.command(cmd)
        body = r.json()
        assert body["response_type"] == "ephemeral", cmd
        assert hint in str(body["blocks"]), (cmd, body)
    assert not kpi.slack.calls_to("response_url")


def test_bad_period_is_explained_after_the_ack(kpi):
    text = _text(kpi, "ct 2026-W60")
    assert "2026 has no ISO week 60" in text and "Valid periods" in text


def test_action_add_opens_the_modal_then_adds_the_baseline(kpi):
    r, _url = kpi.command("action add ct")
    assert r.status_code == 200
    opened = kpi.slack.wait_for("views.open")[0]
    assert opened.args["trigger_id"].startswith("trigger-")
    view = opened.view
    assert view["callback_id"] == "action_item"
    by_id = {b["block_id"]: b for b in view["blocks"] if "block_id" in b}
    assert by_id["team"]["element"]["initial_option"]["value"] == "payments"
    assert by_id["kpi"]["element"]["initial_option"]["value"] == "cycle-time"
    assert by_id["owner"]["element"]["initial_user"] == "U0ALICE"
    updated = kpi.slack.wait_for("views.update")[0]
    assert updated.args["view_id"] == opened.view.get("id") or updated.args["view_id"]
    assert "Baseline when logged: Cycle time:" in updated.text_of()
