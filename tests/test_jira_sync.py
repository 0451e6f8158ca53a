"""End to end: a fake Jira on loopback, ``jira.sync_team``, then predictability, scope creep,
MTTR and CFR from the store, against values computed by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import func, select

from bot.errors import ConfigError
from bot.settings import Settings, TeamConfig
from bot.sources import jira
from bot.sources.rest import SourceError
from bot.store.models import Incident, Sprint, SprintItem
from bot.store.session import session_factory
from tests.factories import T, deployment, setup_team
from tests.fakes.jira import (
    FakeJira,
    points_change,
    sprint_change,
    sprint_payload,
    status_change,
)
from tests.fakes.server import FakeResponse
from tests.helpers import engine as team_engine
from tests.helpers import period

NOW = datetime(2026, 11, 20, 9, 0)
TEAM = TeamConfig(
    name="payments",
    repos=("acme/api",),
    sprints={"source": "jira", "board": "12"},
    incidents={"source": "jira", "project": "OPS", "issue_type": "Incident"},
)
DONE, TODO, DOING = "10001", "10000", "3"


def build_board(fake: FakeJira) -> None:
    fake.sprints[12] = [
        sprint_payload(101, "S1", "closed", "2026-10-05 08:00", "2026-10-16 16:00"),
        sprint_payload(102, "S2", "closed", "2026-10-19 08:00", "2026-10-30 16:00"),
        sprint_payload(103, "S3", "active", "2026-11-02 08:00"),
        sprint_payload(104, "S4", "future"),
    ]
    add = fake.add_issue
    # S1 -------------------------------------------------------------------------------
    add(12, "AP-1", created="2026-10-01 09:00", updated="2026-10-10 10:00", status_id=DONE,
        sprints=[101], points=3, histories=[
            {"at": "2026-10-02 10:00", "items": [sprint_change("", "101")]},
            {"at": "2026-10-10 10:00", "items": [status_change(TODO, DONE)]},
        ])  # fmt: skip
    add(12, "AP-2", created="2026-10-01 09:00", updated="2026-10-25 10:00", status_id=DONE,
        sprints=[101, 102], points=5, histories=[
            {"at": "2026-10-02 10:00", "items": [sprint_change("", "101")]},
            {"at": "2026-10-16 16:00", "items": [sprint_change("101", "101, 102")]},
            {"at": "2026-10-25 10:00", "items": [status_change(TODO, DONE)]},
        ])  # fmt: skip
    add(12, "AP-3", created="2026-10-06 09:00", updated="2026-10-12 10:00", status_id=DONE,
        sprints=[101], points=2, histories=[
            {"at": "2026-10-07 10:00", "items": [sprint_change("", "101")]},
            {"at": "2026-10-12 10:00", "items": [status_change(TODO, DONE)]},
        ])  # fmt: skip
    # created in S1 directly (no sprint change), re-estimated 8 -> 13, then removed
    add(12, "AP-4", created="2026-10-01 09:00", updated="2026-10-09 10:00", status_id=TODO,
        sprints=[], points=13, histories=[
            {"at": "2026-10-08 10:00", "items": [points_change(8, 13)]},
            {"at": "2026-10-09 10:00", "items": [sprint_change("101", "")]},
        ])  # fmt: skip
    add(
        12,
        "AP-5",
        created="2026-10-01 09:00",
        updated="2026-10-10 10:00",
        status_id=DONE,
        sprints=[101],
        points=8,
        subtask=True,
    )
    # S2 -------------------------------------------------------------------------------
    add(12, "AP-6", created="2026-10-14 09:00", updated="2026-10-29 10:00", status_id=DONE,
        sprints=[102], points=3, histories=[
            {"at": "2026-10-18 10:00", "items": [sprint_change("", "102")]},
            {"at": "2026-10-29 10:00", "items": [status_change(TODO, DONE)]},
        ])  # fmt: skip
    add(12, "AP-7", created="2026-10-14 09:00", updated="2026-10-31 10:00", status_id=DONE,
        sprints=[102], points=2, histories=[
            {"at": "2026-10-18 10:00", "items": [sprint_change("", "102")]},
            {"at": "2026-10-31 10:00", "items": [status_change(TODO, DONE)]},
        ])  # fmt: skip
    add(12, "AP-8", created="2026-10-20 09:00", updated="2026-10-30 16:00", status_id=TODO,
        sprints=[102, 103], points=1, histories=[
            {"at": "2026-10-21 10:00", "items": [sprint_change("", "102")]},
            {"at": "2026-10-30 16:00", "items": [sprint_change("102", "102, 103")]},
        ])  # fmt: skip
    add(12, "AP-9", created="2026-10-14 09:00", updated="2026-11-03 10:00", status_id=DONE,
        sprints=[102], points=3, histories=[
            {"at": "2026-10-18 10:00", "items": [sprint_change("", "102")]},
            {"at": "2026-10-22 10:00", "items": [status_change(TODO, DONE)]},
            {"at": "2026-10-28 10:00", "items": [status_change(DONE, DOING)]},
            {"at": "2026-11-03 10:00", "items": [status_change(DOING, DONE)]},
        ])  # fmt: skip


def build_incidents(fake: FakeJira) -> None:
    add = fake.add_issue
    add(
        None,
        "OPS-1",
        created="2026-10-10 10:00",
        updated="2026-10-10 10:30",
        resolved="2026-10-10 10:30",
        project="OPS",
        issue_type="Incident",
        summary="Checkout 500s",
    )
    add(
        None,
        "OPS-2",
        created="2026-10-20 12:00",
        updated="2026-10-20 14:00",
        resolved="2026-10-20 14:00",
        project="OPS",
        issue_type="Incident",
    )
    add(
        None,
        "OPS-3",
        created="2026-10-25 09:00",
        updated="2026-10-25 09:00",
        project="OPS",
        issue_type="Incident",
    )
    # another project's incident and an OPS task are not the team's incidents
    add(
        None,
        "WEB-1",
        created="2026-10-11 10:00",
        updated="2026-10-11 10:00",
        resolved="2026-10-11 12:00",
        project="WEB",
        issue_type="Incident",
    )
    add(None, "OPS-4", created="2026-10-11 10:00", updated="2026-10-11 10:00",
        resolved="2026-10-11 12:00", project="OPS", issue_type="Task")  # fmt: skip


@pytest.fixture
def fake() -> Iterator[FakeJira]:
    with FakeJira() as srv:
        build_board(srv)
        build_incidents(srv)
        yield srv


def settings_for(fake: FakeJira, token: str = "jira-token") -> Settings:
    return Settings(jira_url=fake.url, jira_email="bot@example.com", jira_api_token=token)


def run(settings: Settings, engine, *, full: bool = False, **kw) -> tuple[int, list[str]]:
    messages: list[str] = []
    client = jira.JiraClient(settings, backoff=0.01, sleep=lambda s: None, **kw)
    n = jira.sync_team(
        settings,
        session_factory(engine),
        TEAM,
        full=full,
        report=messages.append,
        now=NOW,
        client=client,
    )
    client.close()
    return n, messages


def test_sync_then_predictability_scope_creep_mttr_cfr(fake, session, engine):
    setup_team(session, TEAM)
    n, messages = run(settings_for(fake), engine)
    assert n > 0
    assert any("3 sprints of Jira board 12" in m for m in messages)
    # the first sync reads the issues updated in the last 400 days
    first = fake.requests_to("GET", r"/rest/agile/1.0/board/12/issue")[0].arg("jql")
    assert first == 'updated >= "2025/10/16 09:00" ORDER BY updated ASC'
    sprints = session.scalars(select(Sprint).order_by(Sprint.provider_id)).all()
    assert [(s.provider_id, s.state) for s in sprints] == [
        ("101", "closed"),
        ("102", "closed"),
        ("103", "active"),
    ]
    assert sprints[2].ended_at is None
    # Hand-computed, October (sprints S1 and S2 ended in it), by story points:
    #   S1 committed AP-1 3, AP-2 5, AP-4 8 (points at start; removed later) -> 16, done AP-1 3
    #   S2 committed AP-2 5, AP-6 3, AP-7 2 (done after the end), AP-9 3 (reopened) -> 13,
    #      done AP-2 5 + AP-6 3 = 8
    #   predictability = 11 / 29; added after start: AP-3 2 (S1), AP-8 1 (S2) -> creep 3 / 29
    deployment(session, sha="a" * 40, finished=T("2026-10-10 09:00"))  # OPS-1 an hour later
    deployment(session, sha="b" * 40, finished=T("2026-10-15 09:00"))
    deployment(session, sha="c" * 40, finished=T("2026-10-20 11:00"))  # OPS-2 an hour later
    deployment(session, sha="d" * 40, finished=T("2026-10-28 09:00"))
    eng = team_engine(session, TEAM)
    oct_ = period("2026-10")
    pred = eng.value("predictability", oct_)
    assert pred.n == 7
    assert pred.value == pytest.approx(11 / 29)
    assert pred.breakdown == {"sprints": 2, "basis": "points", "committed": 29.0, "completed": 11.0}
    creep = eng.value("scope-creep", oct_)
    assert creep.value == pytest.approx(3 / 29)
    # incidents: OPS-1 30 min, OPS-2 2 h resolved in October; OPS-3 still open
    mttr = eng.value("mttr", oct_)
    assert (mttr.n, mttr.value) == (2, pytest.approx(4500.0))
    # OPS-3 started 4.9 days after the latest deployment: outside the 72 h window
    cfr = eng.value("change-failure-rate", oct_)
    assert (cfr.n, cfr.value) == (4, pytest.approx(0.5))
    titles = set(session.scalars(select(Incident.title)))
    assert titles == {"OPS-1 Checkout 500s", "OPS-2 Work item OPS-2", "OPS-3 Work item OPS-3"}


def test_second_sync_is_incremental_and_changes_nothing(fake, session, engine):
    setup_team(session, TEAM)
    run(settings_for(fake), engine)
    before = session.execute(
        select(SprintItem.key, SprintItem.committed, SprintItem.completed).order_by(SprintItem.id)
    ).all()
    fake.requests.clear()
    run(settings_for(fake), engine)
    board_calls = fake.requests_to("GET", r"/rest/agile/1.0/board/12/issue")
    jql = board_calls[0].arg("jql") or ""
    # the latest issue update seen was 2026-11-03 10:00; one day of margin
    assert jql.startswith('updated >= "2026/11/02 10:00"')
    search = fake.requests_to("GET", r"/rest/api/2/search/jql")[0].arg("jql") or ""
    assert search == (
        'project = "OPS" AND issuetype = "Incident" AND updated >= "2026/10/24 09:00" '
        "ORDER BY updated ASC"
    )
    session.expire_all()
    after = session.execute(
        select(SprintItem.key, SprintItem.committed, SprintItem.completed).order_by(SprintItem.id)
    ).all()
    assert after == before
    assert session.scalar(select(func.count()).select_from(Incident)) == 3


def test_pages_truncated_changelogs_and_retries(fake, session, engine):
    setup_team(session, TEAM)
    fake.inline_histories = 1  # forces the paginated changelog endpoint
    fake.fail(
        "GET", r"/rest/agile/1.0/board/12/sprint", FakeResponse.json({}, 429, {"Retry-After": "0"})
    )
    fake.fail("GET", r"/rest/agile/1.0/board/12/issue", FakeResponse.json({}, 503), times=2)
    fake.fail("GET", r"/rest/api/2/search/jql", drop=True)
    old_page = jira.PAGE_SIZE
    jira.PAGE_SIZE = 3
    try:
        run(settings_for(fake), engine)
    finally:
        jira.PAGE_SIZE = old_page
    assert len(fake.requests_to("GET", r"/rest/api/2/issue/AP-\d+/changelog")) >= 7
    starts = [r.arg("startAt") for r in fake.requests_to("GET", r"/rest/agile/1.0/board/12/issue")]
    assert starts[-3:] == ["0", "3", "6"]
    tokens = [r.arg("nextPageToken") for r in fake.requests_to("GET", r"/rest/api/2/search/jql")]
    assert tokens == [None, None]  # the dropped request is asked again
    assert session.scalar(select(func.count()).select_from(Incident)) == 3
    eng = team_engine(session, TEAM)
    assert eng.value("predictability", period("2026-10")).value == pytest.approx(11 / 29)


def test_items_basis_when_a_committed_item_has_no_points(fake, session, engine):
    setup_team(session, TEAM)
    fake.add_issue(12, "AP-10", created="2026-10-01 09:00", updated="2026-10-03 09:00",
                   sprints=[101], points=None)  # fmt: skip
    run(settings_for(fake), engine)
    pred = team_engine(session, TEAM).value("predictability", period("2026-10"))
    # items: S1 AP-1 done, AP-2, AP-4, AP-10; S2 AP-2 done, AP-6 done, AP-7, AP-9 -> 3 / 8
    assert pred.breakdown["basis"] == "items"
    assert pred.value == pytest.approx(3 / 8)


def test_bad_credentials_and_missing_configuration(fake, session, engine):
    setup_team(session, TEAM)
    with pytest.raises(SourceError) as err:
        run(settings_for(fake, token="wrong-secret"), engine)
    assert "HTTP 401" in str(err.value)
    assert "JIRA_API_TOKEN" in str(err.value)
    assert "wrong-secret" not in str(err.value)
    assert session.scalar(select(func.count()).select_from(Sprint)) == 0
    with pytest.raises(ConfigError, match="JIRA_URL"):
        jira.JiraClient(Settings())
    fake.sprints.pop(12)
    with pytest.raises(SourceError, match="404"):
        run(settings_for(fake), engine)


def test_server_errors_give_up_with_advice(fake, session, engine):
    setup_team(session, TEAM)
    fake.fail("GET", r"/rest/agile/1.0/board/12/sprint", FakeResponse.json({}, 502), times=10)
    with pytest.raises(SourceError, match=r"after 3 attempts \(HTTP 502\)"):
        run(settings_for(fake), engine, retries=2)


def test_data_center_with_a_personal_access_token(session, engine):
    with FakeJira(token="dc-pat", data_center=True) as dc:
        build_board(dc)
        build_incidents(dc)
        setup_team(session, TEAM)
        settings = Settings(jira_url=dc.url, jira_api_token="dc-pat")
        run(settings, engine)
        assert dc.requests[0].headers["authorization"] == "Bearer dc-pat"
        # no /search/jql on Data Center: the classic search is used from then on
        assert len(dc.requests_to("GET", r"/rest/api/2/search/jql")) == 1
        assert dc.requests_to("GET", r"/rest/api/2/search")
    eng = team_engine(session, TEAM)
    assert eng.value("predictability", period("2026-10")).value == pytest.approx(11 / 29)
    assert eng.value("mttr", period("2026-10")).n == 2


def test_cloud_search_pages_by_token(fake, session, engine, monkeypatch):
    setup_team(session, TEAM)
    monkeypatch.setattr(jira, "PAGE_SIZE", 2)
    run(settings_for(fake), engine)
    tokens = [r.arg("nextPageToken") for r in fake.requests_to("GET", r"/rest/api/2/search/jql")]
    assert tokens == [None, "2"]
    assert not fake.requests_to("GET", r"/rest/api/2/search")
    assert session.scalar(select(func.count()).select_from(Incident)) == 3
