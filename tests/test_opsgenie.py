"""Opsgenie: parsers on Opsgenie-shaped incidents, then end to end against a fake Opsgenie on
loopback: sync, MTTR by hand, team mapping by impacted service, paging, incremental cursor."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import func, select

from bot.settings import Settings, TeamConfig
from bot.sources import opsgenie
from bot.sources.rest import SourceError
from bot.store.models import Incident
from bot.store.session import session_factory
from tests.factories import T, setup_team
from tests.fakes.opsgenie import FakeOpsgenie
from tests.helpers import engine as team_engine
from tests.helpers import period

NOW = datetime(2026, 11, 20, 9, 0)
TEAM = TeamConfig(
    name="payments",
    repos=("acme/api",),
    incidents={"source": "opsgenie", "services": ["svc-pay"]},
)


@pytest.fixture
def fake() -> Iterator[FakeOpsgenie]:
    with FakeOpsgenie() as srv:
        srv.add(1, ["svc-pay"], "2026-10-05 08:00", "2026-10-05 08:10")  # 10 min
        srv.add(2, ["svc-web", "svc-pay"], "2026-10-12 08:00", "2026-10-12 09:00")  # 60 min
        srv.add(3, ["svc-pay"], "2026-10-19 08:00", "2026-10-19 12:00", impact_end=False)  # 4 h
        srv.add(4, ["svc-web"], "2026-10-20 08:00", "2026-10-20 08:05")  # not the team's
        srv.add(5, ["svc-pay"], "2026-10-30 08:00")  # open
        yield srv


def run(fake: FakeOpsgenie, engine, *, full: bool = False, key: str = "og-key"):
    settings = Settings(opsgenie_api_key=key, opsgenie_api_url=fake.url)
    client = opsgenie.OpsgenieClient(settings, backoff=0.01, sleep=lambda s: None)
    try:
        return opsgenie.sync_team(
            settings, session_factory(engine), TEAM, full=full, report=lambda m: None,
            now=NOW, client=client,
        )  # fmt: skip
    finally:
        client.close()


def test_parse_incident_shapes():
    inc = opsgenie.parse_incident(
        {
            "id": "8a3f-1",
            "tinyId": "17",
            "message": "Checkout down",
            "status": "closed",
            "createdAt": "2026-10-05T08:00:00.123Z",
            "updatedAt": "2026-10-05T09:00:00Z",
            "impactedServices": ["svc-pay"],
        }
    )
    assert (inc.record.title, inc.open) == ("#17 Checkout down", False)
    assert inc.record.resolved_at == datetime(2026, 10, 5, 9, 0)
    with pytest.raises(opsgenie.OpsgeniePayloadError, match="impactedServices"):
        opsgenie.parse_incident(
            {"id": "x", "createdAt": "2026-10-05T08:00:00Z", "impactedServices": "svc"}
        )


def test_sync_maps_by_service_and_mttr(fake, session, engine, monkeypatch):
    setup_team(session, TEAM)
    monkeypatch.setattr(opsgenie, "PAGE_SIZE", 2)
    assert run(fake, engine) == 4
    assert len(fake.requests_to("GET", "/v1/incidents")) == 3
    mttr = team_engine(session, TEAM).value("mttr", period("2026-10"))
    # 10 min, 60 min, 240 min -> p50 60 min
    assert (mttr.n, mttr.value) == (3, pytest.approx(3600.0))
    assert session.scalar(select(func.count()).select_from(Incident)) == 4


def test_incremental_query_from_the_oldest_open_incident(fake, session, engine):
    setup_team(session, TEAM)
    run(fake, engine)
    fake.requests.clear()
    fake.incidents[-1].update(status="resolved", impactEndDate="2026-10-30T10:00:00.000Z")
    run(fake, engine)
    query = fake.requests_to("GET", "/v1/incidents")[0].arg("query")
    expected = int(datetime(2026, 10, 30, 7, 0, tzinfo=opsgenie.UTC).timestamp() * 1000)
    assert query == f"createdAt>{expected}"
    session.expire_all()
    inc5 = session.scalars(select(Incident).where(Incident.provider_id == "og-0005")).one()
    assert inc5.resolved_at == T("2026-10-30 10:00")


def test_bad_key_is_reported_without_the_key(fake, session, engine):
    setup_team(session, TEAM)
    with pytest.raises(SourceError) as err:
        run(fake, engine, key="leaky-key")
    assert "OPSGENIE_API_KEY" in str(err.value) and "leaky-key" not in str(err.value)
