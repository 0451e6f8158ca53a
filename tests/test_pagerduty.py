"""PagerDuty: parsers on PagerDuty-shaped incidents, then end to end against a fake PagerDuty
on loopback: sync, MTTR and CFR by hand, windows, paging, incremental cursor, errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import func, select

from bot.errors import ConfigError
from bot.settings import Settings, TeamConfig, parse_config
from bot.sources import pagerduty
from bot.sources.rest import SourceError
from bot.store.models import Incident
from bot.store.session import session_factory
from tests.factories import T, deployment, setup_team
from tests.fakes.pagerduty import FakePagerDuty
from tests.fakes.server import FakeResponse
from tests.helpers import engine as team_engine
from tests.helpers import period

NOW = datetime(2026, 11, 20, 9, 0)
TEAM = TeamConfig(
    name="payments",
    repos=("acme/api",),
    incidents={"source": "pagerduty", "services": ["PSVC1", "PSVC2"]},
)


@pytest.fixture
def fake() -> Iterator[FakePagerDuty]:
    with FakePagerDuty() as srv:
        srv.add(1, "PSVC1", "2026-10-10 10:00", "2026-10-10 10:20")  # 20 min
        srv.add(2, "PSVC2", "2026-10-20 12:00", "2026-10-20 13:40", with_resolved_at=False)
        srv.add(3, "PSVC1", "2026-10-27 09:00")  # still open
        srv.add(4, "POTHER", "2026-10-11 10:00", "2026-10-11 18:00")  # another team's service
        srv.add(5, "PSVC1", "2026-03-01 10:00", "2026-03-01 11:00")  # 8 months back
        yield srv


def run(fake: FakePagerDuty, engine, *, full: bool = False, token: str = "pd-token", **kw):
    settings = Settings(pagerduty_api_token=token, pagerduty_api_url=fake.url)
    client = pagerduty.PagerDutyClient(settings, backoff=0.01, sleep=lambda s: None, **kw)
    messages: list[str] = []
    try:
        n = pagerduty.sync_team(
            settings, session_factory(engine), TEAM, full=full, report=messages.append,
            now=NOW, client=client,
        )  # fmt: skip
    finally:
        client.close()
    return n, messages


def test_parse_incident_shapes():
    inc = pagerduty.parse_incident(
        {
            "id": "PT4KHLK",
            "incident_number": 1234,
            "title": "The server is on fire.",
            "status": "resolved",
            "created_at": "2015-10-06T21:30:42Z",
            "last_status_change_at": "2015-10-06T21:38:23Z",
            "service": {"id": "PIJ90N7", "type": "service_reference"},
            "html_url": "https://subdomain.pagerduty.com/incidents/PT4KHLK",
        }
    )
    assert inc.service_id == "PIJ90N7" and inc.open is False
    assert inc.record.title == "#1234 The server is on fire."
    assert inc.record.resolved_at == datetime(2015, 10, 6, 21, 38, 23)
    with pytest.raises(pagerduty.PagerDutyPayloadError, match="created_at"):
        pagerduty.parse_incident({"id": "X", "created_at": "soon"})
    with pytest.raises(pagerduty.PagerDutyPayloadError, match="'incidents'"):
        pagerduty.parse_page({"data": []})


def test_sync_then_mttr_and_cfr(fake, session, engine):
    setup_team(session, TEAM)
    n, messages = run(fake, engine)
    assert n == 4  # #1, #2, #3 and the March one; never POTHER's
    assert messages and "PagerDuty incidents stored" in messages[-1]
    deployment(session, sha="a" * 40, finished=T("2026-10-10 09:30"))  # #1 30 min later
    deployment(session, sha="b" * 40, finished=T("2026-10-14 09:00"))
    deployment(session, sha="c" * 40, finished=T("2026-10-25 09:00"))  # #3 48 h later
    eng = team_engine(session, TEAM)
    oct_ = period("2026-10")
    mttr = eng.value("mttr", oct_)
    # resolved in October: 20 min and 100 min -> p50 60 min
    assert (mttr.n, mttr.value) == (2, pytest.approx(3600.0))
    cfr = eng.value("change-failure-rate", oct_)
    # #1 -> the 10-10 deployment; #2 (10-20) is > 72 h after 10-14; #3 -> the 10-25 one
    assert (cfr.n, cfr.value) == (3, pytest.approx(2 / 3))
    # a full sync reads a year in windows PagerDuty accepts (at most 180 days each)
    windows = {(r.arg("since"), r.arg("until")) for r in fake.requests_to("GET", "/incidents")}
    assert len(windows) == 3
    assert min(w[0] for w in windows) == "2025-11-20T09:00:00Z"


def test_incremental_from_the_oldest_open_incident(fake, session, engine):
    setup_team(session, TEAM)
    run(fake, engine)
    fake.requests.clear()
    fake.resolve(3, "2026-10-27 11:00")
    run(fake, engine)
    since = {r.arg("since") for r in fake.requests_to("GET", "/incidents")}
    assert since == {"2026-10-27T08:00:00Z"}  # incident #3's start, minus an hour
    session.expire_all()
    inc3 = session.scalars(select(Incident).where(Incident.provider_id == "Q00003")).one()
    assert inc3.resolved_at == T("2026-10-27 11:00")
    assert session.scalar(select(func.count()).select_from(Incident)) == 4
    # now nothing is open: the next run starts from the newest incident
    fake.requests.clear()
    run(fake, engine)
    assert {r.arg("since") for r in fake.requests_to("GET", "/incidents")} == {
        "2026-10-27T08:00:00Z"
    }


def test_paging_retries_and_errors(fake, session, engine, monkeypatch):
    setup_team(session, TEAM)
    monkeypatch.setattr(pagerduty, "PAGE_SIZE", 1)
    fake.fail("GET", "/incidents", FakeResponse.json({}, 429, {"Retry-After": "0"}))
    fake.fail("GET", "/incidents", drop=True)
    assert run(fake, engine)[0] == 4
    offsets = [r.arg("offset") for r in fake.requests_to("GET", "/incidents")]
    assert "2" in offsets
    with pytest.raises(SourceError) as err:
        run(fake, engine, token="bad-token")
    assert "HTTP 401" in str(err.value) and "PAGERDUTY_API_TOKEN" in str(err.value)
    assert "bad-token" not in str(err.value)
    with pytest.raises(ConfigError, match="PAGERDUTY_API_TOKEN"):
        pagerduty.PagerDutyClient(Settings())


def test_config_requires_services():
    _, problems = parse_config(
        "teams:\n  - name: a\n    repos: [acme/api]\n    incidents: {source: pagerduty}\n"
    )
    assert problems and "needs 'services:" in problems[0] and ":4:" in problems[0]
