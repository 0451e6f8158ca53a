"""Under load: report worker processes that die are replaced, a burst beyond the waiting
bound is answered busy in the ack, and the HTTP server takes more connections than waitress's
default of 100. Everything goes through HTTP mode with signed requests and real processes."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from bot.errors import ConfigError
from bot.settings import Settings, load_env_settings
from bot.slack.listeners.common import BUSY
from bot.slack.workers import ReportWorkers
from bot.surfaces.http import HttpApp, Server
from tests import slack_harness as sh
from tests.fakes.slack import FakeSlack

slack_server, slack = sh.slack_server, sh.slack


@contextmanager
def served(db_url: str, fake: FakeSlack, tmp_path: Any, workers: int) -> Iterator[sh.Harness]:
    """The app in HTTP mode with ``workers`` report worker processes."""
    yield from sh.make_harness(db_url, fake, tmp_path, report_workers=workers)


def _workers(h: sh.Harness) -> ReportWorkers:
    assert h.app.workers is not None
    return h.app.workers


def _in_workers(w: ReportWorkers) -> int:
    return sum(w.computed_in.values())


def test_a_killed_worker_is_replaced_and_its_reports_computed_again(
    slack, db_url, tmp_path, caplog
):
    caplog.set_level(logging.WARNING, logger="kpibot.slack")
    with served(db_url, slack, tmp_path, workers=2) as h:
        w = _workers(h)
        _, url = h.command("ct last-month")
        first = h.answer(url, timeout=30)
        assert "Cycle time · payments" in first.text_of()
        old = set(w.pids())
        assert len(old) == 2 and os.getpid() not in old
        assert _in_workers(w) == 1 and set(w.computed_in) <= old
        # buttons and App Home compute their cards in the workers too
        h.click("share_card", '{"m": "pr-size", "t": "payments", "p": "28d"}')
        assert "PR size · payments" in slack.wait_for("chat.postMessage")[0].text_of()
        h.event({"type": "app_home_opened", "user": "U0ALICE", "tab": "home"})
        assert "Your teams' health" in slack.wait_for("views.publish")[0].text_of()
        assert _in_workers(w) == 3 and set(w.computed_in) <= old

        # both workers busy, a report waiting for them: kill one worker for real
        for _ in range(2):
            w.pool.submit(time.sleep, 2)
        r, url = h.command("pr-size last-month")
        assert r.status_code == 200 and r.text == ""
        os.kill(sorted(old)[0], signal.SIGKILL)
        second = h.answer(url, timeout=60)
        assert "PR size · payments" in second.text_of()
        new = set(w.pids())
        assert w.rebuilds == 1 and new and not new & old
        assert _in_workers(w) == 4 and w.computed_in.keys() - old <= new

        # the next commands are answered by the new pool, without another rebuild
        for text, title in (("ct", "Cycle time · payments"), ("dora", "payments")):
            _, url = h.command(text)
            assert title in h.answer(url, timeout=30).text_of()
        assert w.rebuilds == 1 and _in_workers(w) == 6
        assert sum(n for pid, n in w.computed_in.items() if pid in new) == 3

        # a worker killed while idle: the pool is broken before the next submission
        pool = w.pool
        os.kill(w.pids()[0], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not getattr(pool, "_broken", False) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert getattr(pool, "_broken", False)
        _, url = h.command("ct last-month")
        assert h.answer(url, timeout=60).blocks == first.blocks
        assert w.rebuilds == 2 and _in_workers(w) == 7
        assert os.getpid() not in w.computed_in

    died = [r for r in caplog.records if "report worker process died" in r.getMessage()]
    assert len(died) == 2
    assert not [r for r in caplog.records if "in-process" in r.getMessage()]


def test_reports_beyond_the_waiting_bound_are_answered_busy_in_the_ack(
    slack, db_url, tmp_path, caplog
):
    caplog.set_level(logging.WARNING, logger="kpibot.slack")
    with served(db_url, slack, tmp_path, workers=1) as h:
        w = _workers(h)
        assert w.max_waiting == 16  # WAITING_PER_WORKER per worker process
        w.max_waiting = 1  # one computing, one waiting
        w.pool.submit(time.sleep, 3)  # the only worker is busy
        r1, url1 = h.command("ct")
        r2, url2 = h.command("pr-size", user="U0BOB")
        t0 = time.monotonic()
        r3, url3 = h.command("dora", user="U0CAROL")
        busy_ack = time.monotonic() - t0
        assert r1.text == "" and r2.text == ""
        assert r3.status_code == 200
        body: dict[str, Any] = r3.json()
        assert body["response_type"] == "ephemeral" and body["text"] == BUSY
        assert "try again in a minute" in BUSY
        assert busy_ack < 2.0  # answered at once, not after the reports ahead of it
        r3b, url3b = h.command("health", user="U0DAVE")
        assert r3b.json()["text"] == BUSY and w.refused == 2
        # the admitted ones are answered from the worker once it is free
        assert "Cycle time · payments" in h.answer(url1, timeout=30).text_of()
        assert "PR size · payments" in h.answer(url2, timeout=30).text_of()
        assert h.answers(url3) == h.answers(url3b) == []  # the busy ones were never started
        assert _in_workers(w) == 2
        # with the queue drained, commands are admitted again
        r4, url4 = h.command("dora", user="U0CAROL")
        assert r4.text == ""
        assert "DORA" in h.answer(url4, timeout=30).text_of()
        assert w.waiting == 0 and h.answers(url3) == []
    logged = [r.getMessage() for r in caplog.records]
    assert len([m for m in logged if "answering busy until" in m]) == 1  # one line per spell
    assert len([m for m in logged if "take reports again (2 refused so far)" in m]) == 1


def test_reports_that_would_wait_past_the_budget_are_answered_busy(slack, db_url, tmp_path):
    with served(db_url, slack, tmp_path, workers=1) as h:
        w = _workers(h)
        assert w.answer_budget == 1.8
        w.seconds_per_report = 0.8  # as if each report took 0.8 s
        w.pool.submit(time.sleep, 3)  # the only worker is busy
        # ct goes to the pool at once (it counts no report in flight); pr-size would wait
        # behind none: ready in about 0.8 s; first-review behind one: about 1.6 s <= 1.8 s
        urls = [h.command(text)[1] for text in ("ct", "pr-size", "first-review")]
        r, busy_url = h.command("dora")  # two ahead and its own: about 2.4 s > 1.8 s
        assert r.json()["text"] == BUSY
        for url, title in zip(urls, ("Cycle time", "PR size", "First review"), strict=True):
            assert title in h.answer(url, timeout=30).text_of()
        assert h.answers(busy_url) == [] and w.refused == 1
        assert w.seconds_per_report < 1.0  # measured: these reports take far less


def test_more_connections_than_waitress_default_are_served():
    """Waitress accepts 100 connections by default; a burst of Slack commands opened more and
    the rest waited until the client gave up."""
    with Server(HttpApp(health=lambda: {"database": "ok"}), host="127.0.0.1", port=0) as server:
        host, port = "127.0.0.1", server.port
        idle = [socket.create_connection((host, port), timeout=5) for _ in range(150)]
        try:
            time.sleep(0.3)  # let the server accept them all
            r = httpx.get(server.url + "/healthz", timeout=5)
            assert r.status_code == 200 and r.json()["database"] == "ok"
        finally:
            for s in idle:
                s.close()


def test_http_threads_and_connections_from_the_environment():
    env = {"KPIBOT_HTTP_THREADS": "64", "KPIBOT_HTTP_CONNECTIONS": "2000"}
    s = load_env_settings(env, dotenv_path=None)
    assert (s.http_threads, s.http_connections) == (64, 2000)
    assert (Settings().http_threads, Settings().http_connections) == (64, 500)
    for name, raw in (("KPIBOT_HTTP_THREADS", "0"), ("KPIBOT_HTTP_CONNECTIONS", "lots")):
        with pytest.raises(ConfigError) as exc:
            load_env_settings({name: raw}, dotenv_path=None)
        assert str(exc.value) == f"{name} must be a whole number from 1 to " + (
            "1000, not '0'" if raw == "0" else "10000, not 'lots'"
        )


WORKERS_THEN_WAIT = """
import sys, time
from bot.settings import Config
from bot.slack.workers import ReportWorkers
from tests.slack_harness import TEAMS

if __name__ == "__main__":
    workers = ReportWorkers(sys.argv[1], Config(TEAMS), 2)
    workers.warm_up()
    print(" ".join(map(str, workers.pids())), flush=True)
    time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads process states from /proc")
def test_workers_end_when_the_serving_process_is_killed(db_url, tmp_path):
    script = tmp_path / "serve_workers.py"
    script.write_text(WORKERS_THEN_WAIT)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.Popen(
        [sys.executable, str(script), db_url],
        cwd=root,
        env={**os.environ, "PYTHONPATH": root},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in pids if _alive(p)]
