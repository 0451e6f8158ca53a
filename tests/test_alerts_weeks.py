"""Seven simulated weeks of threshold alerts: the scheduler driven hour by hour with an
injected clock against the fake Slack, pull requests written to the store as they merge.
Off target and recovered are posted exactly once per sent crossing, in every channel of the
team, at 09:00 team time (across the DST change); the cool-down keeps a flapping KPI quiet;
a restart mid-way and a process that died after Slack took a post send nothing twice; and
the calibration preview counts exactly the alerts the run sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.metrics import alerts as rule
from bot.metrics.engine import TeamEngine
from bot.metrics.registry import Target
from bot.reports import alerts as alert_reports
from bot.scheduler.jobs import SchedulerOptions
from bot.scheduler.service import SchedulerService
from bot.settings import Config, Settings, TeamConfig
from bot.store import alerts as alerts_store
from bot.store import channels, digest_runs
from bot.store.models import AlertDelivery, AlertEvent
from bot.store.session import session_factory
from tests import factories as fx
from tests.scheduler_fakes import SchedulerSlack, poster_for, setup_org

BERLIN = ZoneInfo("Europe/Berlin")
CONFIGURED, MAPPED = "CPAY00001", "CPAY00002"
TEAM = TeamConfig(
    name="payments",
    timezone="Europe/Berlin",
    channel=CONFIGURED,
    repos=("acme/api",),
    alerts={"first-review": True},
)
ORG = Config((TEAM,))
START = datetime(2026, 10, 1, 0, 0, tzinfo=UTC)
END = datetime(2026, 11, 19, 12, 0, tzinfo=UTC)
RESTART = datetime(2026, 10, 21, 12, 0, tzinfo=UTC)

# how long PRs merged on each day (from Oct 1) waited for their first review: on target
# (< 4h) for two weeks, off for four days, back on for four, off again for four, none for a
# week (n < 5: the status stays), then on target to the end
PLAN = [1] * 14 + [8] * 4 + [1] * 4 + [8] * 4 + [None] * 7 + [1] * 17


def plan() -> list[dict[str, datetime]]:
    """Two PRs a day, merged at 11:00 and 15:00 UTC (after that day's 09:00 evaluation)."""
    prs = []
    for day, wait in enumerate(PLAN):
        if wait is None:
            continue
        for hour in (11, 15):
            merged = START + timedelta(days=day, hours=hour)
            created = merged - timedelta(hours=wait + 1)
            prs.append(
                {"created": created, "reviewed": created + timedelta(hours=wait), "merged": merged}
            )
    return prs


class SimClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def _naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None)


def test_weeks_of_alerts_exactly_once_per_crossing_and_the_preview_agrees(engine):
    f = session_factory(engine)
    ids = setup_org(f, ORG)
    with f() as s:
        channels.set_channel_team(
            s,
            platform="slack",
            channel_id=MAPPED,
            team_id=ids["payments"],
            set_by="U0LEAD",
            now=_naive(START),
        )
        s.commit()
    pending = plan()
    with SchedulerSlack() as slack:
        clock = SimClock(START)
        service = SchedulerService(
            Settings(), f, ORG, poster_for(slack), clock=clock, options=SchedulerOptions()
        )
        service.build(blocking=False)
        posted: list[tuple[str, str, datetime]] = []
        seen = 0
        while clock.now <= END:
            with f() as s:  # the PRs merged by now reach the store, as a sync would bring them
                while pending and pending[0]["merged"] <= clock.now:
                    p = pending.pop(0)
                    fx.pr(
                        s,
                        created=_naive(p["created"]),
                        merged=_naive(p["merged"]),
                        reviews=[("bob", "APPROVED", _naive(p["reviewed"]))],
                    )
                s.commit()
            if clock.now == RESTART:  # a new process after the old one stopped
                service.stop()
                service = SchedulerService(Settings(), f, ORG, poster_for(slack), clock=clock)
                service.build(blocking=False)
            assert service.tick()
            calls = slack.calls_to("chat.postMessage")
            for c in calls[seen:]:
                key = str(((c.args.get("metadata") or {}).get("event_payload") or {}).get("key"))
                posted.append((c.args["channel"], key, clock.now))
            seen = len(calls)
            clock.now += timedelta(hours=1)
        service.stop()

        # every message is an alert, each once per channel, at 09:00 team time
        assert all(key.startswith("alert:") for _, key, _ in posted)
        assert len(posted) == len({(ch, key) for ch, key, _ in posted})
        per_channel = {ch: [k for c, k, _ in posted if c == ch] for ch in (CONFIGURED, MAPPED)}
        assert per_channel[CONFIGURED] == per_channel[MAPPED]
        assert len(set(per_channel[CONFIGURED])) == len(per_channel[CONFIGURED])
        assert len(posted) == 2 * len(per_channel[CONFIGURED])
        assert {at.astimezone(BERLIN).hour for _, _, at in posted} == {9}

        with f() as s:
            events = list(s.scalars(select(AlertEvent).order_by(AlertEvent.evaluated_at)))
            deliveries = list(s.scalars(select(AlertDelivery)))
        assert {d.status for d in deliveries} == {"posted"} and len(deliveries) == len(posted)
        sent = [
            (e.evaluated_at.replace(tzinfo=UTC).astimezone(BERLIN).date().isoformat(), e.crossing)
            for e in events
        ]
        # off target once the 8h waits are most of the 7-day window (Oct 19); the recovery
        # four days later (Oct 23) and the next off target four days after that (Oct 27)
        # fall within the cool-down: silent; the week without PRs (n < 5) keeps the status;
        # the recovery once enough PRs are back (Nov 6) is sent
        assert sent == [("2026-10-19", "off target"), ("2026-11-06", "recovered")]
        texts = [m["text"] for m in slack.posts(CONFIGURED)]
        assert "First review time of payments is off target" in texts[0]
        assert "8.0h (n = 14) over the last 7 days, target &lt; 4.0h" in texts[0]
        assert "recovered: back on target" in texts[1]
        buttons = [
            e
            for m in slack.posts(CONFIGURED)
            for b in m["blocks"]
            if b["type"] == "actions"
            for e in b["elements"]
        ]
        assert {(b["action_id"], b["value"]) for b in buttons} == {
            ("how_computed", "first-review"),
            ("alert_off", '{"m": "first-review", "t": "payments", "p": "7d"}'),
        }

        # the calibration preview, with the same target, over the same data: the same alerts
        with f() as s:
            preview = alert_reports.preview(
                TeamEngine(s, TEAM), "first-review", Target("<", 4 * 3600.0), END
            )
        assert len(preview.sent) == len(events) == len(per_channel[CONFIGURED])
        assert [(c.at, c.kind) for c in preview.sent] == [
            (e.evaluated_at.replace(tzinfo=UTC), e.crossing) for e in events
        ]
        assert preview.silent == 2
        # a looser target would not have fired at all
        with f() as s:
            loose = alert_reports.preview(
                TeamEngine(s, TEAM), "first-review", Target("<", 10 * 3600.0), END
            )
        assert loose.sent == () and loose.silent == 0


def test_a_post_slack_took_before_the_process_died_is_found_not_repeated(engine):
    f = session_factory(engine)
    setup_org(f, ORG)
    day = datetime(2026, 10, 20, 7, 0, tzinfo=UTC)  # 09:00 in Berlin
    with f() as s:
        # quick first reviews merged a week before, slow ones merged since the day before
        for k in range(6):
            for wait, merged in (
                (1, _naive(day) - timedelta(days=8) + timedelta(hours=2 * k + 1)),
                (9, _naive(day) - timedelta(days=1) + timedelta(hours=2 * k + 1)),
            ):
                fx.pr(
                    s,
                    created=merged - timedelta(hours=wait + 1),
                    merged=merged,
                    reviews=[("bob", "APPROVED", merged - timedelta(hours=1))],
                )
        s.commit()
    with SchedulerSlack() as slack:
        clock = SimClock(day - timedelta(days=1))
        service = SchedulerService(Settings(), f, ORG, poster_for(slack), clock=clock)
        assert service.tick()  # the day before: the status the rule starts from (on target)
        clock.now = day
        # the dying process: it evaluated (the crossing is stored), claimed the delivery and
        # Slack took the post, but it never recorded it
        service.alerts.evaluate(day)
        with f() as s:
            event = s.scalars(select(AlertEvent)).one()
        assert event.crossing == "off target"
        claim = digest_runs.claim_alert(
            f, event.id, "slack", CONFIGURED, "dead-holder", day, timedelta(minutes=10)
        )
        assert claim is not None
        poster_for(slack).post(CONFIGURED, {"text": "off target"}, key=f"alert:{event.id}")
        # while its claim is fresh nothing is posted; after it went stale the post is found
        clock.now = day + timedelta(minutes=5)
        assert service.tick()
        clock.now = day + timedelta(minutes=11)
        assert service.tick()
        assert len(slack.calls_to("chat.postMessage")) == 1
        with f() as s:
            delivery = s.scalars(select(AlertDelivery)).one()
        assert (delivery.status, delivery.attempts) == ("posted", 2)
        # and the next days bring nothing new
        for hours in range(1, 48):
            clock.now = day + timedelta(hours=hours)
            assert service.tick()
        assert len(slack.calls_to("chat.postMessage")) == 1
        service.stop()


def test_an_evaluation_stored_by_another_process_first_is_not_stored_again(engine):
    f = session_factory(engine)
    tid = setup_org(f, ORG)["payments"]
    day = datetime(2026, 10, 20, 7, 0, tzinfo=UTC)
    target = Target("<", 4 * 3600.0)
    with f() as s:
        before = alerts_store.state(s, tid, "first-review")
    start = rule.State(rule.ON, None)
    assert alerts_store.record(f, tid, "first-review", before, start, day, None) is None
    with f() as s:
        before = alerts_store.state(s, tid, "first-review")
    after, crossing = rule.step(before.state, rule.OFF, day + timedelta(days=1))
    assert crossing is not None and crossing.sent
    sent = (crossing.kind, 5 * 3600.0, 9, target)
    # two processes read the same state and both found the crossing: it is stored once
    first = alerts_store.record(f, tid, "first-review", before, after, crossing.at, sent)
    second = alerts_store.record(f, tid, "first-review", before, after, crossing.at, sent)
    assert first is not None and second is None
    with f() as s:
        assert len(list(s.scalars(select(AlertEvent)))) == 1
        assert alerts_store.state(s, tid, "first-review").state == rule.State(rule.OFF, crossing.at)
