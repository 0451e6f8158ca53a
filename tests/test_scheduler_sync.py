"""The scheduler's periodic sync: the real ``sync_all`` against the fake GitHub on loopback."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from bot.scheduler.jobs import SchedulerOptions
from bot.scheduler.service import SchedulerService
from bot.settings import Settings, load_config
from bot.store.models import PullRequest
from bot.store.session import session_factory
from tests.fakes.github import FakeGitHub
from tests.scheduler_fakes import SchedulerSlack, poster_for, setup_org
from tests.test_sync_e2e import CONFIG, TOKEN, dataset

NOW = datetime(2026, 11, 20, tzinfo=UTC)


def _service(tmp_path, engine, slack, github_url: str) -> SchedulerService:
    path = tmp_path / "kpibot.yml"
    path.write_text(CONFIG)
    config = load_config(path)
    f = session_factory(engine)
    setup_org(f, config)
    settings = Settings(config_path=str(path), github_token=TOKEN, github_api_url=github_url)
    return SchedulerService(
        settings,
        f,
        config,
        poster_for(slack),
        clock=lambda: NOW,
        options=SchedulerOptions(sync_every=timedelta(minutes=30)),
    )


def test_the_sync_job_runs_the_incremental_sync_in_the_active_scheduler(tmp_path, engine):
    with FakeGitHub([dataset()], token=TOKEN) as gh, SchedulerSlack() as slack:
        service = _service(tmp_path, engine, slack, gh.url)
        sched = service.build(blocking=False)
        job = sched.get_job("sync")
        assert job is not None and job.trigger.interval == timedelta(minutes=30)
        assert service.fire_sync() is False  # not the active scheduler yet: nothing runs
        assert gh.requests == []
        assert service.tick()
        assert service.fire_sync() is True
        with session_factory(engine)() as s:
            assert s.scalar(select(func.count(PullRequest.id))) == 5
        first = len(gh.requests)
        assert service.fire_sync() is True  # incremental: only what changed (nothing)
        assert 0 < len(gh.requests) - first < first


def test_a_failing_sync_is_logged_and_the_scheduler_goes_on(tmp_path, engine, caplog):
    with FakeGitHub([dataset()], token="another-token") as gh, SchedulerSlack() as slack:
        service = _service(tmp_path, engine, slack, gh.url)
        service.build(blocking=False)
        assert service.tick()
        with caplog.at_level(logging.WARNING, logger="kpibot.scheduler"):
            assert service.fire_sync() is False
        assert "periodic sync" in caplog.text
        assert TOKEN not in caplog.text
        assert service.tick()  # still working
