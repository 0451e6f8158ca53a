"""Real processes: killed mid-post and restarted, and two schedulers against one database."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.settings import load_config
from bot.store.models import DigestRun, SchedulerLease
from bot.store.session import session_factory
from tests.fakes.server import FakeResponse
from tests.scheduler_fakes import SchedulerSlack, runs, scheduler_env, setup_org, subscribe

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """\
teams:
  - name: berlin
    timezone: Europe/Berlin
    repos: [acme/berlin-api]
  - name: nyc
    timezone: America/New_York
    repos: [acme/nyc-api]
"""
BEFORE = datetime(2026, 10, 20, 12, tzinfo=UTC)


def _env(db_url: str, slack: SchedulerSlack, config: Path) -> dict[str, str]:
    return scheduler_env(db_url, slack, config, PYTHONPATH=str(ROOT), KPIBOT_LOG_LEVEL="INFO")


@pytest.fixture
def org(tmp_path, engine):
    path = tmp_path / "kpibot.yml"
    path.write_text(CONFIG)
    f = session_factory(engine)
    ids = setup_org(f, load_config(path))
    return path, f, ids


def _digest(env: dict[str, str], cwd: Path, now: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "digest", "weekly", "--team", "berlin", "--post",
         "--now", now],
        env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait(cond, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_killed_between_claiming_and_posting_posts_once_after_restart(org, db_url, tmp_path):
    config, f, ids = org
    sid = subscribe(f, ids["berlin"], "CBERLIN1", "weekly", BEFORE)
    with SchedulerSlack() as slack:
        env = _env(db_url, slack, config)
        # Slack never answers this post (and never keeps it): the process is killed meanwhile
        slack.fail("POST", r"/api/chat\.postMessage", FakeResponse.json({"ok": False}), delay=5)
        proc = _digest(env, tmp_path, "2026-10-26T09:00Z")
        _wait(lambda: slack.requests_to("POST", r"/api/chat\.postMessage"))
        proc.kill()
        proc.wait()
        assert [(r.status, r.attempts) for r in runs(f)] == [("claimed", 1)]
        assert slack.posts() == []
        slack.clear_faults()
        # restarted at once: the claim is still fresh, so nothing is posted (at most once)
        again = subprocess.run(
            [sys.executable, "-m", "bot", "digest", "weekly", "--team", "berlin", "--post",
             "--now", "2026-10-26T09:01Z"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert "being posted by another process" in again.stdout
        assert slack.posts() == []
        # after the claim's lifetime it is taken over: looked for, not found, posted once
        later = subprocess.run(
            [sys.executable, "-m", "bot", "digest", "weekly", "--team", "berlin", "--post",
             "--now", "2026-10-26T09:30Z"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert later.returncode == 0, later.stderr
        assert "posted the weekly digest of berlin for 2026-W43 to CBERLIN1" in later.stdout
        assert slack.keys() == [f"digest:{sid}:2026-W43"]
        assert [(r.status, r.attempts) for r in runs(f)] == [("posted", 2)]


def test_killed_between_posting_and_recording_is_not_posted_again(org, db_url, tmp_path):
    config, f, ids = org
    sid = subscribe(f, ids["berlin"], "CBERLIN1", "weekly", BEFORE)
    with SchedulerSlack() as slack:
        env = _env(db_url, slack, config)
        slack.hold_after_post = 5.0  # Slack has the message; the answer is still on its way
        proc = _digest(env, tmp_path, "2026-10-26T09:00Z")
        assert slack.posted.wait(30)
        proc.kill()
        proc.wait()
        slack.hold_after_post = 0.0
        assert [(r.status, r.message_ts) for r in runs(f)] == [("claimed", None)]
        later = subprocess.run(
            [sys.executable, "-m", "bot", "digest", "weekly", "--team", "berlin", "--post",
             "--now", "2026-10-26T09:30Z"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert later.returncode == 0, later.stderr
        assert "had already been posted" in later.stdout
        assert slack.keys() == [f"digest:{sid}:2026-W43"]
        (run,) = runs(f)
        assert run.status == "posted" and run.message_ts == slack.posts()[0]["ts"]
        # and once recorded, asking again posts nothing
        again = subprocess.run(
            [sys.executable, "-m", "bot", "digest", "weekly", "--team", "berlin", "--post",
             "--now", "2026-10-26T10:30Z"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert "was posted before" in again.stdout
        assert len(slack.calls_to("chat.postMessage")) == 1


def test_two_schedulers_for_a_simulated_week_post_each_digest_once_and_hand_over(
    org, db_url, tmp_path
):
    """Two scheduler processes share a database and a simulated clock (a week in ~7 s).
    The active one is killed after its first post; the other takes over the lease."""
    config, f, ids = org
    expected = {
        subscribe(f, ids["berlin"], "CBERLIN1", "weekly", BEFORE): ["2026-W43", "2026-W44"],
        subscribe(f, ids["berlin"], "CBERLIN1", "monthly", BEFORE): ["2026-10"],
        subscribe(f, ids["nyc"], "CNYC0001", "weekly", BEFORE): ["2026-W43", "2026-W44"],
        subscribe(f, ids["nyc"], "CNYC0002", "monthly", BEFORE): ["2026-10"],
    }
    keys = sorted(f"digest:{s}:{p}" for s, ps in expected.items() for p in ps)
    speed = 7 * 86400 / 7.0
    with SchedulerSlack() as slack:
        env = _env(db_url, slack, config)
        t0 = time.time() + 2.0  # both start on the same simulated timeline
        cmd = [
            sys.executable, "-m", "tests.scheduler_worker", "--db", db_url,
            "--slack", slack.api_url, "--config", str(config),
            # the run goes on into Tuesday night (the grace is 72 h), so that a machine busy
            # with other work still reaches Monday's digests before the run ends: what is
            # checked is that each is posted once, by whichever scheduler holds the lease
            "--start", "2026-10-26T06:00:00+00:00", "--end", "2026-11-03T04:00:00+00:00",
            "--t0", str(t0), "--speed", str(speed),
        ]  # fmt: skip
        procs = [
            subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]  # fmt: skip
        try:
            holders = {}
            for p in procs:
                assert p.stdout is not None
                line = p.stdout.readline().strip()
                assert line.startswith("holder "), line
                holders[line.split()[1]] = p
            assert slack.posted.wait(30), "no digest was posted"
            with f() as s:
                active = s.scalar(select(SchedulerLease.holder))
            victim = holders[active]
            victim.kill()
            victim.wait()
            before_kill = set(slack.keys())
            survivor = next(p for p in procs if p is not victim)
            _out, err = survivor.communicate(timeout=60)
            assert survivor.returncode == 0, err[-3000:]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        assert sorted(slack.keys()) == keys  # every digest exactly once
        with f() as s:
            done = list(s.scalars(select(DigestRun)))
            lease = s.scalar(select(SchedulerLease))
        assert {r.status for r in done} == {"posted"}
        survivor_id = next(h for h, p in holders.items() if p is survivor)
        after_kill = [
            r for r in done if f"digest:{r.subscription_id}:{r.period_key}" not in before_kill
        ]
        assert after_kill, "the kill came after the last digest"
        assert {r.claimed_by for r in after_kill} == {survivor_id}  # it took over
        assert lease is not None and lease.holder == survivor_id and lease.generation >= 2
