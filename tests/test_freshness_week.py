"""Fresh data, simulated: the scheduler syncs hourly against the fake GitHub on loopback and
posts to the fake Slack. GitHub answers 401 three times: one notice per conversation; a
restart in the middle posts nothing twice; GitHub works again: one recovery notice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.scheduler.jobs import SchedulerOptions
from bot.scheduler.service import SchedulerService
from bot.settings import Settings, load_config
from bot.store import channels
from bot.store.models import SourceHealth, SourceNoticeRun
from bot.store.session import session_factory
from tests.fakes.github import FakeGitHub
from tests.scheduler_fakes import SchedulerSlack, poster_for, setup_org, subscribe
from tests.test_sync_e2e import CONFIG, TOKEN, dataset

START = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


class SimClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def map_channel(f: sessionmaker[Session], channel: str, team_id: int) -> None:
    """``/kpi team set`` in a Slack channel."""
    with f() as s:
        channels.set_channel_team(
            s,
            platform="slack",
            channel_id=channel,
            team_id=team_id,
            set_by="U1",
            now=datetime(2026, 11, 19, 12, 0),
        )
        s.commit()


def _notices(slack: SchedulerSlack) -> list[tuple[str, str, str]]:
    out = []
    for m in slack.posts():
        key = str(((m.get("metadata") or {}).get("event_payload") or {}).get("key"))
        if key.startswith("notice:"):
            out.append((m["channel"], key, m["text"]))
    return out


def test_three_failed_syncs_post_one_notice_and_one_recovery_across_a_restart(tmp_path, engine):
    path = tmp_path / "kpibot.yml"
    path.write_text(CONFIG)
    config = load_config(path)
    f = session_factory(engine)
    ids = setup_org(f, config)
    # the team's conversations: one mapped to it, one subscribed to its digest
    map_channel(f, "CPAY0001", ids["payments"])
    subscribe(f, ids["payments"], "CPAY0002", "weekly", START)

    with FakeGitHub([dataset()], token=TOKEN) as gh, SchedulerSlack() as slack:
        settings = Settings(config_path=str(path), github_token=TOKEN, github_api_url=gh.url)
        clock = SimClock(START)
        opts = SchedulerOptions(sync_every=timedelta(hours=1))

        def service() -> SchedulerService:
            svc = SchedulerService(
                settings, f, config, poster_for(slack), clock=clock, options=opts
            )
            svc.build(blocking=False)
            return svc

        svc = service()
        timeline: list[tuple[datetime, int]] = []
        for hour in range(12):
            clock.now = START + timedelta(hours=hour)
            if hour == 2:
                gh.token = "ghp_rotated_elsewhere"  # the configured token no longer works
            if hour == 5:
                # a restart while the source is failing: the new process owes nothing
                svc.stop()
                svc = service()
            if hour == 8:
                gh.token = TOKEN  # the token is fixed
            assert svc.tick()
            svc.fire_sync()
            assert svc.tick()
            timeline.append((clock.now, len(_notices(slack))))

        notices = _notices(slack)
        keys = sorted((c, k) for c, k, _ in notices)
        assert keys == [
            ("CPAY0001", "notice:github:acme/api:1:failing"),
            ("CPAY0001", "notice:github:acme/api:1:recovered"),
            ("CPAY0002", "notice:github:acme/api:1:failing"),
            ("CPAY0002", "notice:github:acme/api:1:recovered"),
        ]
        # the failing notice came with the third failed sync (hours 2, 3, 4), the recovery
        # with the first good one (hour 8); nothing in between, nothing after
        counts = dict(timeline)
        assert counts[START + timedelta(hours=3)] == 0
        assert counts[START + timedelta(hours=4)] == 2
        assert counts[START + timedelta(hours=7)] == 2
        assert counts[START + timedelta(hours=8)] == 4
        assert counts[START + timedelta(hours=11)] == 4
        failing = next(t for _, k, t in notices if k.endswith("failing"))
        assert "GitHub sync (acme/api) failed 3 times in a row" in failing
        assert "401" in failing and "GITHUB_TOKEN" in failing
        assert "data as of 2026-11-20 07:00 UTC" in failing  # the last good sync
        recovered = next(t for _, k, t in notices if k.endswith("recovered"))
        assert "works again" in recovered and "data as of 2026-11-20 14:00 UTC" in recovered
        for m in slack.posts():
            assert TOKEN not in str(m) and "ghp_rotated" not in str(m)
        with f() as s:
            runs = list(s.scalars(select(SourceNoticeRun)))
            assert {r.status for r in runs} == {"posted"} and len(runs) == 4
            row = s.get(SourceHealth, ("github", "acme/api"))
            assert row is not None and row.failures == 0 and not row.failing
            assert row.last_success_at == datetime(2026, 11, 20, 17, 0)
            assert row.next_run_at == datetime(2026, 11, 20, 18, 0)
            assert row.last_error is not None and TOKEN not in row.last_error
        svc.stop()


def test_a_claimed_notice_whose_process_died_after_posting_is_found_not_reposted(tmp_path, engine):
    """Claim, post, record: a process killed after Slack accepted the notice (and before it
    was recorded) leaves a claim; the next process finds the message and posts nothing."""
    path = tmp_path / "kpibot.yml"
    path.write_text(CONFIG)
    config = load_config(path)
    f = session_factory(engine)
    ids = setup_org(f, config)
    subscribe(f, ids["payments"], "CPAY0003", "weekly", START)
    with FakeGitHub([dataset()], token="another") as gh, SchedulerSlack() as slack:
        settings = Settings(config_path=str(path), github_token=TOKEN, github_api_url=gh.url)
        clock = SimClock(START)
        opts = SchedulerOptions(sync_every=timedelta(hours=1))
        svc = SchedulerService(settings, f, config, poster_for(slack), clock=clock, options=opts)
        svc.build(blocking=False)
        assert svc.tick()
        for hour in range(3):
            clock.now = START + timedelta(hours=hour)
            svc.fire_sync()
        assert len(_notices(slack)) == 1
        # make it look as if the recording never happened: the claim is left behind
        with f() as s:
            run = s.scalars(select(SourceNoticeRun)).one()
            run.status = "claimed"
            run.claimed_at = datetime(2026, 11, 20, 8, 0)
            s.commit()
        svc.stop()
        clock.now = START + timedelta(hours=3)
        again = SchedulerService(settings, f, config, poster_for(slack), clock=clock, options=opts)
        again.build(blocking=False)
        assert again.tick()
        assert len(_notices(slack)) == 1
        with f() as s:
            assert s.scalars(select(SourceNoticeRun)).one().status == "posted"
        again.stop()


def test_notices_go_to_the_configured_channel_unless_a_mapping_gave_it_away(engine):
    from bot.scheduler.jobs import DigestJobs
    from bot.settings import Config, TeamConfig
    from bot.store import source_health

    pay = TeamConfig(name="payments", channel="CCONF001", repos=("acme/api",))
    web = TeamConfig(name="web", channel="CCONF002", repos=("acme/web",))
    shared = TeamConfig(name="shared", channel="CCONF003", repos=("acme/api",))
    config = Config((pay, web, shared))
    f = session_factory(engine)
    ids = setup_org(f, config)
    map_channel(f, "CCONF001", ids["web"])  # payments' configured channel, given to web
    subscribe(f, ids["payments"], "CSUB0001", "weekly", START)
    subscribe(f, ids["shared"], "CSUB0001", "monthly", START)
    for hour in range(3):
        source_health.record(f, "github", "acme/api", START + timedelta(hours=hour), "boom")
    with SchedulerSlack() as slack:
        jobs = DigestJobs(f, config, poster_for(slack), options=SchedulerOptions())
        assert jobs.send_notices(START + timedelta(hours=3), evaluate=True) == 2
        assert jobs.send_notices(START + timedelta(hours=4), evaluate=True) == 0
        # CCONF001 is web's now; CSUB0001 hears once though two of its teams read acme/api
        assert sorted(c for c, _, _ in _notices(slack)) == ["CCONF003", "CSUB0001"]
