"""A scheduler pass computes its digests in the report worker processes side by side, and
``ReportWorkers.map``, which does it, keeps the chat commands' reports from waiting behind a
whole pass."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from bot.chat.workers import ReportWorkers
from bot.scheduler.jobs import DigestJobs, SchedulerOptions, render_digest
from bot.settings import Config, load_config
from bot.store.session import make_engine, session_factory
from bot.store.teams import sync_teams
from bot.surfaces.cli import main
from tests.scheduler_fakes import (
    SchedulerSlack,
    poster_for,
    run_scheduler_until_posted,
    runs,
    scheduler_env,
    subscribe,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # Monday: every weekly digest is due


@pytest.fixture
def demo(tmp_path, db_url, monkeypatch, capsys):
    """The demo organisation (several teams with history), subscribed weekly and monthly."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("KPIBOT_CONFIG", str(tmp_path / "kpibot.yml"))
    assert main(["demo", "--as-of", "2026-11-20"]) == 0
    capsys.readouterr()
    config = load_config(tmp_path / "kpibot.yml")
    eng = make_engine(db_url)
    f = session_factory(eng)
    with f() as s:
        ids = sync_teams(s, config)
        s.commit()
    before = NOW - timedelta(days=60)
    for n, team in enumerate(config.teams):
        subscribe(f, ids[team.name], f"C0WEEK{n:03d}", "weekly", before)
        subscribe(f, ids[team.name], f"C0MON{n:04d}", "monthly", before)
        # a second channel of the same team shares the computed digest
        subscribe(f, ids[team.name], f"C0TWO{n:04d}", "weekly", before)
    yield f, config
    eng.dispose()


def _jobs(f, config: Config, slack: SchedulerSlack, workers: ReportWorkers) -> DigestJobs:
    """The scheduler's digest jobs with every demo subscription due at ``NOW``."""
    return DigestJobs(
        f,
        config,
        poster_for(slack),
        options=SchedulerOptions(grace=timedelta(days=40)),
        workers=workers,
    )


def _posted(slack: SchedulerSlack) -> dict[str, dict[str, object]]:
    """channel -> the digest message posted there (text and blocks)."""
    return {
        m["channel"]: {"text": m["text"], "blocks": m["blocks"]}
        for m in slack.posts()
        if str(((m.get("metadata") or {}).get("event_payload") or {}).get("key")).startswith(
            "digest:"
        )
    }


def test_a_pass_computes_its_digests_in_the_workers_and_posts_what_one_process_would(
    demo, db_url, caplog, monkeypatch
):
    f, config = demo
    caplog.set_level(logging.INFO, logger="kpibot.scheduler")
    from bot.scheduler import jobs as jobs_module

    drawn_here: list[object] = []
    real_charts = jobs_module.digest_charts
    monkeypatch.setattr(
        jobs_module, "digest_charts", lambda d: drawn_here.append(d) or real_charts(d)
    )
    workers = ReportWorkers(db_url, config, 2)
    workers.warm_up()  # both processes ready, so that both take a share
    try:
        with SchedulerSlack() as slack:
            jobs = _jobs(f, config, slack, workers)
            outcomes = jobs.run_due(NOW)
            n_subs = 3 * len(config.teams)
            assert [o.status for o in outcomes] == ["posted"] * n_subs
            # one computation per team and kind (the second weekly channel shares it), all in
            # the worker processes, none here
            assert sum(workers.computed_in.values()) == 2 * len(config.teams)
            assert os.getpid() not in workers.computed_in
            assert len(workers.computed_in) == 2  # both processes took a share
            posted = _posted(slack)
            assert len(posted) == n_subs
            # exactly what computing them here gives
            for o in outcomes:
                team = config.team(o.team)
                sched = jobs.schedule_of(
                    next(s for s in _subs(f) if s.id == o.subscription_id), team
                )
                period = sched.period(sched.latest_fire(NOW, team.zone), team.zone)
                with f() as s:
                    here = render_digest(s, team, o.kind, period, NOW)
                assert json.dumps(posted[o.channel], sort_keys=True) == json.dumps(
                    {"text": here["text"], "blocks": here["blocks"]}, sort_keys=True
                )
            # the monthly digests' charts were drawn in the workers and posted in each thread
            monthly = [o for o in outcomes if o.kind == "monthly"]
            assert len(slack.calls_to("files.completeUploadExternal")) == len(monthly) > 0
            assert all(bytes(b).startswith(b"\x89PNG") for b in slack.uploads.values())
            assert drawn_here == []  # none drawn in the scheduler's process
            # exactly once: the next pass posts nothing and computes nothing
            assert jobs.run_due(NOW + timedelta(minutes=1)) == []
            assert sum(workers.computed_in.values()) == 2 * len(config.teams)
    finally:
        workers.close()
    assert {r.status for r in runs(f)} == {"posted"}
    assert any("report worker processes" in r.getMessage() for r in caplog.records)


def _subs(f):
    from bot.store import subscriptions as subs

    with f() as s:
        return subs.active_subscriptions(s)


def test_digests_the_workers_cannot_compute_are_computed_in_the_scheduler(demo, tmp_path, caplog):
    """Workers on a store they cannot read: every digest fails there, and the pass computes
    each again itself, posting all of them once."""
    f, config = demo
    caplog.set_level(logging.WARNING, logger="kpibot.scheduler")
    broken = f"sqlite:///{tmp_path / 'missing' / 'nowhere.db'}"
    workers = ReportWorkers(broken, config, 2)
    try:
        with SchedulerSlack() as slack:
            jobs = _jobs(f, config, slack, workers)
            outcomes = jobs.run_due(NOW)
            assert [o.status for o in outcomes] == ["posted"] * (3 * len(config.teams))
            assert len(slack.keys()) == 3 * len(config.teams)
    finally:
        workers.close()
    n = 2 * len(config.teams)
    assert any(
        f"{n} of {n} digests failed in the report workers" in r.getMessage() for r in caplog.records
    )


def test_a_pass_stops_computing_when_another_scheduler_took_the_lease(demo, db_url):
    f, config = demo
    workers = ReportWorkers(db_url, config, 1)
    try:
        with SchedulerSlack() as slack:
            jobs = _jobs(f, config, slack, workers)
            asked: list[int] = []

            def lost() -> bool:
                asked.append(1)
                return False

            jobs.keep_alive = lost
            assert jobs.run_due(NOW) == []
            assert slack.keys() == []
            # one computation, then the lease was asked and found lost: no more
            assert sum(workers.computed_in.values()) == 1 and len(asked) == 1
    finally:
        workers.close()


# ------------------------------------------------------------------ ReportWorkers.map


@pytest.fixture
def pool(db_url):
    workers = ReportWorkers(db_url, Config(()), 2)
    workers.warm_up()
    yield workers
    workers.close()


def test_map_gives_each_result_or_exception_in_order(pool):
    now = datetime.now(UTC)
    out = pool.map(int, now, [("1",), ("x",), ("30",), ("0x1f", 16)])
    assert out[0] == 1 and out[2] == 30 and out[3] == 31
    assert isinstance(out[1], ValueError) and "'x'" in str(out[1])
    assert pool.map(int, now, []) == []


def test_a_command_during_a_batch_waits_for_one_computation_not_the_batch(pool):
    now = datetime.now(UTC)
    batch: list[object] = []
    started = threading.Event()

    def run_batch() -> None:
        started.set()
        batch.extend(pool.map(time.sleep, now, [(0.4,)] * 10))  # 2 s of work on 2 processes

    t = threading.Thread(target=run_batch)
    t0 = time.monotonic()
    t.start()
    started.wait()
    time.sleep(0.2)
    asked = time.monotonic()
    answer = pool.submit(os.getpid, now).result(timeout=10)
    waited = time.monotonic() - asked
    t.join(timeout=30)
    total = time.monotonic() - t0
    assert answer in pool.computed_in
    assert batch == [None] * 10
    # it waited for a worker to finish its current computation (0.4 s), not for the 8 left
    assert waited < 0.8 < total, (waited, total)


def test_a_batch_leaves_the_estimate_commands_are_admitted_by(pool):
    """A digest takes several cards' time: the batch's computations occupy the workers but
    do not move the mean time of a report that commands are admitted (or answered busy) by."""
    from bot.chat.workers import FIRST_ESTIMATE

    now = datetime.now(UTC)
    assert pool.map(time.sleep, now, [(0.6,)] * 2) == [None, None]
    assert pool.seconds_per_report == FIRST_ESTIMATE
    pool.submit(time.sleep, now, 0.6).result(timeout=10)  # a command's report counts
    assert pool.seconds_per_report > FIRST_ESTIMATE


def test_map_stops_submitting_when_told(pool):
    now = datetime.now(UTC)
    calls: list[int] = []

    def keep_going() -> bool:
        calls.append(1)
        return False

    out = pool.map(time.sleep, now, [(0.1,)] * 8, keep_going=keep_going)
    done = [r for r in out if r is None]
    left = [r for r in out if isinstance(r, TimeoutError)]
    # the two in flight when it was told finish; nothing else starts
    assert 1 <= len(done) <= 2 and len(done) + len(left) == 8
    assert len(calls) == 1  # asked once: after it said no, nothing more to ask


@pytest.mark.parametrize("count", ["2", "1"])
def test_scheduler_mode_computes_a_pass_in_its_own_worker_processes(tmp_path, db_url, count):
    """``kpibot run --mode scheduler`` as a user runs it: two teams due at once, computed in
    the worker processes it starts (the log says so), each posted once; with
    ``KPIBOT_REPORT_WORKERS=1`` it starts none and computes them itself."""

    from tests.test_scheduler_cli import _due_now_schedule, _week_key

    path = tmp_path / "kpibot.yml"
    path.write_text(
        "teams:\n"
        "  - name: ops\n    timezone: UTC\n    repos: [acme/ops]\n"
        "  - name: web\n    timezone: UTC\n    repos: [acme/web]\n"
    )
    eng = make_engine(db_url)
    f = session_factory(eng)
    with f() as s:
        ids = sync_teams(s, load_config(path))
        s.commit()
    when = _due_now_schedule()
    before = datetime.now(UTC) - timedelta(days=8)
    sids = [
        subscribe(f, ids["ops"], "C0OPS0001", "weekly", before, schedule=when),
        subscribe(f, ids["web"], "C0WEB0001", "weekly", before, schedule=when),
    ]
    with SchedulerSlack() as slack:
        env = scheduler_env(
            db_url,
            slack,
            path,
            KPIBOT_SYNC_INTERVAL="off",
            KPIBOT_LOG_LEVEL="INFO",
            KPIBOT_REPORT_WORKERS=count,
        )
        code, _, err = run_scheduler_until_posted(env, tmp_path, slack, 2, timeout=90)
        keys = slack.keys()
    eng.dispose()
    assert code == 0, err
    assert sorted(keys) == sorted(f"digest:{sid}:{_week_key(when)}" for sid in sids)
    if count == "2":
        assert "computed 2 digests in 2 report worker processes" in err, err
    else:
        assert "report worker" not in err, err


def test_the_number_of_report_workers_from_the_environment():
    from bot.chat.workers import default_count
    from bot.errors import ConfigError
    from bot.settings import Settings, load_env_settings

    s = load_env_settings({"KPIBOT_REPORT_WORKERS": "3"}, dotenv_path=None)
    assert s.report_workers == 3 and default_count(s) == 3
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert Settings().report_workers is None and default_count(Settings()) == cores
    for raw in ("0", "many", "65"):
        with pytest.raises(ConfigError) as exc:
            load_env_settings({"KPIBOT_REPORT_WORKERS": raw}, dotenv_path=None)
        assert (
            str(exc.value)
            == f"KPIBOT_REPORT_WORKERS must be a whole number from 1 to 64, not '{raw}'"
        )


# ------------------------------------------------------------------ threshold alerts


def _alert_rows(f) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    from sqlalchemy import select

    from bot.store.models import AlertEvent, AlertState

    with f() as s:
        states = [
            (r.team_id, r.kpi, r.status, r.crossed_at, r.evaluated_at)
            for r in s.scalars(select(AlertState).order_by(AlertState.team_id, AlertState.kpi))
        ]
        events = [
            (r.team_id, r.kpi, r.evaluated_at, r.crossing, r.value, r.n)
            for r in s.scalars(select(AlertEvent).order_by(AlertEvent.team_id, AlertEvent.kpi))
        ]
    return states, events


def test_the_teams_due_at_once_are_evaluated_in_the_workers_as_one_process_would(demo, db_url):
    """Every demo team alerting on two KPIs, all due at once: the evaluations are computed in
    the worker processes, one team per computation, and the states (and crossings) stored
    are exactly those of an evaluation in one process."""
    from sqlalchemy import delete

    from bot.scheduler.alerts import AlertJobs
    from bot.store.models import AlertEvent, AlertState

    f, config = demo
    from dataclasses import replace

    teams = tuple(
        replace(t, alerts={"cycle-time": True, "review-coverage": True}) for t in config.teams
    )
    alerting = Config(teams)
    later = NOW + timedelta(days=1)  # 09:00 of every team's zone within a day of it

    def evaluate(workers: ReportWorkers | None) -> int:
        jobs = AlertJobs(
            f,
            alerting,
            {},
            holder="test",
            grace=timedelta(days=1),
            claim_ttl=timedelta(minutes=10),
            history_margin=timedelta(hours=1),
            workers=workers,
        )
        return jobs.evaluate(later)

    pool = ReportWorkers(db_url, alerting, 2)
    try:
        found = evaluate(pool)
        assert sum(pool.computed_in.values()) == len(teams)
        assert os.getpid() not in pool.computed_in
        in_workers = _alert_rows(f)
        assert len(in_workers[0]) == 2 * len(teams)
        # stored once: evaluating again the same day computes and stores nothing
        assert evaluate(pool) == 0 and sum(pool.computed_in.values()) == len(teams)
        assert _alert_rows(f) == in_workers
    finally:
        pool.close()
    with f() as s:
        s.execute(delete(AlertEvent))
        s.execute(delete(AlertState))
        s.commit()
    assert evaluate(None) == found
    assert _alert_rows(f) == in_workers


# ------------------------------------------------------------------ working agreements


def _breach_rows(f) -> list[tuple[object, ...]]:
    from sqlalchemy import select

    from bot.store.models import AgreementBreach

    with f() as s:
        return [
            (r.team_id, r.pull_request_id, r.agreement, r.since, r.seen_at, r.status, r.resolved_at)
            for r in s.scalars(
                select(AgreementBreach).order_by(
                    AgreementBreach.team_id,
                    AgreementBreach.pull_request_id,
                    AgreementBreach.agreement,
                )
            )
        ]


def test_the_teams_agreements_are_checked_in_the_workers_as_one_process_would(demo, db_url):
    """Every demo team with the three agreements: a pass checks each team in the worker
    processes (one team per computation; the breaches stored there), and the breaches are
    exactly those a check in one process stores. After a sync every team is checked there
    again."""
    from dataclasses import replace

    from sqlalchemy import delete

    from bot.scheduler.agreements import AgreementJobs
    from bot.settings import Agreements
    from bot.store.models import AgreementBreach

    f, config = demo
    agreed = Config(
        tuple(
            replace(
                t,
                agreements=Agreements(
                    first_review_within=4 * 3600, pr_size_under=400, open_pr_idle_for=3 * 86400
                ),
            )
            for t in config.teams
        )
    )
    pool = ReportWorkers(db_url, agreed, 2)
    try:
        jobs = AgreementJobs(f, agreed, {}, workers=pool)
        jobs.run_due(NOW)
        assert sum(pool.computed_in.values()) == len(agreed.teams)
        assert os.getpid() not in pool.computed_in
        in_workers = _breach_rows(f)
        assert in_workers, "the demo has PRs in breach"
        jobs.run_due(NOW + timedelta(minutes=5))  # checked 5 minutes ago: not again
        assert sum(pool.computed_in.values()) == len(agreed.teams)
        jobs.check_all(NOW + timedelta(minutes=6))  # after a sync: every team, there
        assert sum(pool.computed_in.values()) == 2 * len(agreed.teams)
        assert _breach_rows(f) == in_workers
    finally:
        pool.close()
    with f() as s:
        s.execute(delete(AgreementBreach))
        s.commit()
    AgreementJobs(f, agreed, {}).run_due(NOW)
    assert _breach_rows(f) == in_workers
