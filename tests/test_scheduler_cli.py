"""``kpibot digest --post`` and ``kpibot run --mode scheduler`` as a user runs them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.scheduler.commands import options_from_env, start_in_background
from bot.scheduler.schedule import WEEKDAYS, DailyTime
from bot.settings import Settings, load_config
from bot.store.models import DigestRun, DigestSubscription, SchedulerLease
from bot.store.session import make_engine, session_factory
from bot.surfaces.cli import main
from tests.fakes.slack import BOT_TOKEN
from tests.scheduler_fakes import (
    SchedulerSlack,
    run_scheduler_until_posted,
    scheduler_env,
    setup_org,
    subscribe,
)

ROOT = Path(__file__).resolve().parents[1]
NOW = "2026-11-20T12:00:00Z"


@pytest.fixture
def slack():
    with SchedulerSlack() as s:
        yield s


@pytest.fixture
def demo(tmp_path, db_url, monkeypatch, capsys, slack):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("KPIBOT_CONFIG", str(tmp_path / "kpibot.yml"))
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_API_URL", slack.api_url)
    assert main(["demo", "--as-of", "2026-11-20"]) == 0
    capsys.readouterr()
    return tmp_path


LIGHT = """\
teams:
  - name: payments
    timezone: Europe/Berlin
    repos: [acme/payments-api]
  - name: platform
    timezone: Asia/Tokyo
    repos: [acme/platform-infra]
"""


@pytest.fixture
def light(tmp_path, db_url, monkeypatch, slack):
    """Two teams without history (for requests that are about posting, not content)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db_url)
    path = tmp_path / "kpibot.yml"
    path.write_text(LIGHT)
    monkeypatch.setenv("KPIBOT_CONFIG", str(path))
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_API_URL", slack.api_url)
    eng = make_engine(db_url)
    setup_org(session_factory(eng), load_config(path))
    eng.dispose()
    return tmp_path


def _post(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["digest", *argv, "--post", "--now", NOW])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_post_weekly_and_monthly_with_the_content_product_md_describes_once(demo, slack, capsys):
    code, out, _ = _post(capsys, "weekly", "--team", "payments", "--channel", "C0PAYMENTS")
    assert code == 0
    assert "subscribed C0PAYMENTS to the weekly digest of payments" in out
    assert "posted the weekly digest of payments for 2026-W46 to C0PAYMENTS" in out
    (call,) = slack.calls_to("chat.postMessage")
    text = call.text_of()
    for name in (
        "Cycle time",
        "PR size",
        "First review time",
        "Review coverage",
        "Merge frequency",
    ):
        assert name in text
    assert "Biggest cycle-time phase" in text
    assert "PRs waiting for review" in text and "Open action items" in text
    assert {
        e["action_id"] for b in call.blocks if b["type"] == "actions" for e in b["elements"]
    } == {
        "log_action",
        "digest_details",
    }
    assert call.args["text"].startswith("Weekly leading indicators for payments, 2026-W46")
    # the second time: recorded, not posted again
    code, out, _ = _post(capsys, "weekly", "--team", "payments")
    assert code == 0 and "was posted before" in out
    assert len(slack.calls_to("chat.postMessage")) == 1
    # the monthly lagging digest
    code, out, _ = _post(capsys, "monthly", "--team", "mobile", "--channel", "C0MOBILE1")
    assert code == 0, out
    call = slack.calls_to("chat.postMessage")[-1]
    text = call.text_of()
    for name in (
        "Deployment frequency",
        "Lead time for changes",
        "Change failure rate",
        "Time to restore",
        "Delivery predictability",
        "Scope creep",
    ):
        assert name in text
    assert "DORA 2021 bands" in text and "3 months" in text
    assert "Completed this month" in text and "Overdue action items" in text
    assert len(call.blocks) <= 50


def test_post_goes_to_every_subscribed_channel(light, slack, capsys, db_url):
    eng = make_engine(db_url)
    f = session_factory(eng)
    with f() as s:
        from bot.store.channels import team_ids

        tid = team_ids(s)["platform"]
    for ch in ("C0PLAT001", "C0PLAT002"):
        subscribe(f, tid, ch, "weekly", datetime(2026, 11, 1, tzinfo=UTC))
    code, _, _ = _post(capsys, "weekly", "--team", "platform")
    assert code == 0
    assert sorted(c.args["channel"] for c in slack.calls_to("chat.postMessage")) == [
        "C0PLAT001",
        "C0PLAT002",
    ]
    with f() as s:
        assert sorted(s.scalars(select(DigestRun.status))) == ["posted", "posted"]
    eng.dispose()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["weekly", "--team", "payments"], "no channel is subscribed to the weekly digest"),
        (["weekly", "--channel", "general"], "is not a Slack channel id"),
        (["weekly", "--period", "2026-10"], "a weekly digest covers a week"),
        (["monthly", "--period", "28d"], "a monthly digest covers a month"),
        (["weekly", "--period", "this-week"], "2026-W47 has not ended"),
        (["monthly", "--period", "2026-11"], "2026-11 has not ended"),
    ],
)
def test_bad_post_requests_say_what_to_do_and_post_nothing(light, slack, capsys, argv, message):
    code, _, err = _post(capsys, *argv)
    assert code == 2
    assert message in err
    assert slack.calls_to("chat.postMessage") == []


def test_post_without_a_bot_token_explains(light, slack, capsys, monkeypatch, db_url):
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    code, _, err = _post(capsys, "weekly", "--channel", "C0PAYMENTS")
    assert code == 2 and "SLACK_BOT_TOKEN is not set" in err
    eng = make_engine(db_url)
    with session_factory(eng)() as s:
        assert s.scalars(select(DigestSubscription)).all() == []  # nothing changed
    eng.dispose()


def test_channel_without_post_is_refused(light, capsys):
    assert main(["digest", "weekly", "--channel", "C0PAYMENTS"]) == 2
    assert "--channel goes with --post" in capsys.readouterr().err


def test_a_broken_channel_exits_1_and_says_why(light, slack, capsys):
    slack.archive("C0GONE001")
    code, _, err = _post(capsys, "weekly", "--channel", "C0GONE001")
    assert code == 1
    assert "is_archived" in err and "subscribe again" in err


def test_options_from_env():
    o = options_from_env({}, dotenv_path=None)
    assert o.grace == timedelta(hours=12) and o.sync_every == timedelta(hours=1)
    o = options_from_env(
        {
            "KPIBOT_DIGEST_GRACE": "2h",
            "KPIBOT_SYNC_INTERVAL": "off",
            "KPIBOT_REMINDER_TIME": "08:30",
        },
        dotenv_path=None,
    )
    assert o.grace == timedelta(hours=2) and o.sync_every is None
    assert o.reminder_time == DailyTime(8, 30)
    from bot.errors import KpibotError

    for env, msg in (
        ({"KPIBOT_DIGEST_GRACE": "soon"}, "KPIBOT_DIGEST_GRACE"),
        ({"KPIBOT_SYNC_INTERVAL": "5s"}, "at least 1m"),
        ({"KPIBOT_REMINDER_TIME": "9am"}, "like 09:00"),
    ):
        with pytest.raises(KpibotError, match=msg):
            options_from_env(env, dotenv_path=None)


# --- the real scheduler on the real clock ---------------------------------------------------

CONFIG = """\
teams:
  - name: ops
    timezone: UTC
    repos: [acme/ops]
"""


def _due_now_schedule() -> str:
    """A weekly time a minute ago (UTC), so a digest is due as soon as the scheduler starts."""
    t = datetime.now(UTC) - timedelta(minutes=1)
    return f"{WEEKDAYS[t.weekday()]} {t.hour:02d}:{t.minute:02d}"


def test_run_mode_scheduler_posts_a_due_digest_and_stops_cleanly(tmp_path, db_url, slack):
    path = tmp_path / "kpibot.yml"
    path.write_text(CONFIG)
    eng = make_engine(db_url)
    f = session_factory(eng)
    ids = setup_org(f, load_config(path))
    when = _due_now_schedule()
    sid = subscribe(
        f, ids["ops"], "C0OPS0001", "weekly", datetime.now(UTC) - timedelta(days=8),
        schedule=when,
    )  # fmt: skip
    env = scheduler_env(db_url, slack, path, KPIBOT_SYNC_INTERVAL="off")
    code, out, err = run_scheduler_until_posted(env, tmp_path, slack, 1)
    assert code == 0, err
    assert "kpibot scheduler" in out and "stopped" in out
    assert slack.keys() == [f"digest:{sid}:{_week_key(when)}"]
    with f() as s:
        lease = s.scalar(select(SchedulerLease))
        assert lease is not None and lease.expires_at <= datetime.now(UTC).replace(tzinfo=None)
    assert BOT_TOKEN not in out + err
    eng.dispose()


def _week_key(schedule: str) -> str:
    """The period the digest due at ``schedule`` (in UTC, this week) covers."""
    from bot.scheduler.schedule import parse_schedule

    utc_zone = ZoneInfo("UTC")
    sched = parse_schedule("weekly", schedule)
    fire = sched.latest_fire(datetime.now(UTC), utc_zone)
    return sched.period(fire, utc_zone).key


def test_the_scheduler_inside_kpibot_run_posts_in_the_background(tmp_path, db_url, slack):
    path = tmp_path / "kpibot.yml"
    path.write_text(CONFIG)
    eng = make_engine(db_url)
    f = session_factory(eng)
    ids = setup_org(f, load_config(path))
    subscribe(
        f, ids["ops"], "C0OPS0001", "weekly", datetime.now(UTC) - timedelta(days=8),
        schedule=_due_now_schedule(),
    )  # fmt: skip
    settings = Settings(database_url=db_url, slack_bot_token=BOT_TOKEN, slack_api_url=slack.api_url)
    stop = start_in_background(settings, f, lambda: load_config(path))
    try:
        assert slack.posted.wait(30)
    finally:
        stop()
    assert len(slack.keys()) == 1
    eng.dispose()


def test_the_first_pass_runs_even_when_the_scheduler_starts_late(tmp_path, db_url, slack):
    """A slow start (a busy machine) must not make APScheduler drop the start-up catch-up."""
    path = tmp_path / "kpibot.yml"
    path.write_text(CONFIG)
    eng = make_engine(db_url)
    f = session_factory(eng)
    ids = setup_org(f, load_config(path))
    subscribe(
        f, ids["ops"], "C0OPS0001", "weekly", datetime.now(UTC) - timedelta(days=8),
        schedule=_due_now_schedule(),
    )  # fmt: skip
    from bot.scheduler.service import SchedulerService
    from tests.scheduler_fakes import poster_for

    service = SchedulerService(Settings(), f, load_config(path), poster_for(slack))
    sched = service.build(blocking=False)
    time.sleep(1.5)  # longer than APScheduler's default misfire grace of 1 s
    sched.start()
    try:
        assert slack.posted.wait(20)
    finally:
        service.stop()
    assert len(slack.keys()) == 1
    eng.dispose()


def test_scheduler_mode_without_the_scheduler_is_refused(light, capsys):
    assert main(["run", "--mode", "scheduler", "--no-scheduler"]) == 2
    assert "drop --no-scheduler" in capsys.readouterr().err


def test_scheduler_mode_without_a_bot_token_explains(light, capsys, monkeypatch):
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    assert main(["run", "--mode", "scheduler"]) == 2
    assert "SLACK_BOT_TOKEN is not set" in capsys.readouterr().err
