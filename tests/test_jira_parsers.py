"""Jira parsers on the recorded go-jira payloads, and the changelog-based sprint membership."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from bot.sources.jira import (
    JiraFields,
    JiraPayloadError,
    parse_boards,
    parse_fields,
    parse_incident,
    parse_issue,
    parse_issue_page,
    parse_sprint,
    parse_sprint_page,
    parse_statuses,
    sprint_ids,
    sprint_items,
)
from bot.store.records import SprintRecord
from tests.conftest import fixtures_dir
from tests.fakes.jira import (
    FIELDS,
    POINTS_FIELD,
    SPRINT_FIELD,
    STATUSES,
    jira_time,
    points_change,
    sprint_change,
    status_change,
)


def load(name: str) -> Any:
    path = fixtures_dir() / "go-jira" / "testing" / "mock-data" / name
    return json.loads(path.read_text(encoding="utf-8"))


def T(s: str) -> datetime:
    return datetime.fromisoformat(s)


# --------------------------------------------------------------------------- recorded payloads


def test_recorded_sprints_keep_started_ones_in_utc():
    sprints, is_last = parse_sprint_page(load("sprints.json"))
    assert is_last is True
    # two future sprints (no start) are left out
    assert [s.provider_id for s in sprints] == ["740", "776", "807", "832"]
    first = sprints[0]
    assert first.name == "Iteration-10"
    assert first.state == "closed"
    # startDate 2016-04-11T07:29:03.294-07:00, completeDate 2016-04-28T05:08:48.543-07:00
    assert first.started_at == datetime(2016, 4, 11, 14, 29, 3, 294000)
    assert first.ended_at == datetime(2016, 4, 28, 12, 8, 48, 543000)
    active = sprints[-1]
    assert (active.state, active.ended_at) == ("active", None)


def test_recorded_filtered_sprint_and_boards():
    sprints, _ = parse_sprint_page(load("sprints_filtered.json"))
    assert [(s.provider_id, s.state) for s in sprints] == [("832", "active")]
    boards = parse_boards(load("all_boards.json"))
    assert boards[1] == "Test Mobile"
    assert sorted(boards) == [1, 4, 5, 6, 7, 9]


def test_recorded_statuses_map_to_categories():
    categories = parse_statuses(load("all_statuses.json"))
    assert categories
    assert set(categories.values()) <= {"new", "indeterminate", "done", "undefined"}
    assert "done" in categories.values()


def test_recorded_issues_in_sprint():
    fields = JiraFields(sprint_id=None, points_id="customfield_10105", points_name=None)
    issues, total = parse_issue_page(load("issues_in_sprint.json"), fields)
    assert total == 10
    issue = issues[0]
    assert issue.key == "AR-86"
    assert issue.points_now == 13.0
    assert issue.status_category == "new"
    # created 2015-12-02T07:39:15.000-0800, resolved 2015-12-07T14:19:13.000-0800
    assert issue.created == datetime(2015, 12, 2, 15, 39, 15)
    assert issue.resolved == datetime(2015, 12, 7, 22, 19, 13)
    inc = parse_incident(issue, "https://jira.example.com/")
    assert inc.url == "https://jira.example.com/browse/AR-86"
    assert (inc.started_at, inc.resolved_at) == (issue.created, issue.resolved)


# --------------------------------------------------------------------------- shapes


def test_fields_find_sprint_and_points():
    f = parse_fields(FIELDS)
    assert (f.sprint_id, f.points_id, f.points_name) == (
        SPRINT_FIELD,
        POINTS_FIELD,
        "Story point estimate",
    )
    by_name = parse_fields(FIELDS, "story point estimate")
    assert by_name.points_id == POINTS_FIELD
    assert parse_fields(FIELDS, "customfield_99999").points_id is None


def test_sprint_field_values_cloud_and_data_center():
    assert sprint_ids([{"id": 37, "name": "S"}, {"id": 38}]) == {"37", "38"}
    dc = (
        "com.atlassian.greenhopper.service.sprint.Sprint@14b1c359"
        "[id=740,rapidViewId=734,state=CLOSED]"
    )
    assert sprint_ids([dc]) == {"740"}
    assert sprint_ids(None) == frozenset()


def test_bad_payloads_name_the_field():
    with pytest.raises(JiraPayloadError, match="missing field 'state'"):
        parse_sprint({"id": 1})
    with pytest.raises(JiraPayloadError, match=r"issue X-1.created"):
        parse_issue({"key": "X-1", "fields": {"created": "yesterday"}})
    with pytest.raises(JiraPayloadError, match="expected an object"):
        parse_issue_page([1, 2])
    assert parse_sprint({"id": 2, "state": "future", "name": "later"}) is None


# --------------------------------------------------------------------------- membership

FIELDS_IN_USE = JiraFields(SPRINT_FIELD, POINTS_FIELD, "Story point estimate")
CATEGORIES = parse_statuses(STATUSES)
S1 = SprintRecord("101", "S1", "closed", T("2026-10-05 08:00"), T("2026-10-16 16:00"))
S2 = SprintRecord("102", "S2", "closed", T("2026-10-19 08:00"), T("2026-10-30 16:00"))
SPRINTS = {"101": S1, "102": S2}


def issue(
    *,
    created: str = "2026-10-01 09:00",
    sprints: list[int] | None = None,
    status_id: str = "10000",
    points: float | None = 3,
    histories: list[tuple[str, list[dict[str, Any]]]] = (),  # type: ignore[assignment]
    subtask: bool = False,
) -> Any:
    payload = {
        "id": "1",
        "key": "AP-1",
        "fields": {
            "summary": "x",
            "created": jira_time(created),
            "updated": jira_time(created),
            "issuetype": {"subtask": subtask},
            "status": next(s for s in STATUSES if s["id"] == status_id),
            SPRINT_FIELD: [{"id": s} for s in sprints or []],
            POINTS_FIELD: points,
        },
        "changelog": {
            "total": len(histories),
            "histories": [{"created": jira_time(at), "items": items} for at, items in histories],
        },
    }
    return parse_issue(payload, FIELDS_IN_USE)


def items(i: Any) -> dict[str, tuple[bool, bool, bool, bool, float | None]]:
    out = sprint_items(i, SPRINTS, CATEGORIES, T("2026-12-01 00:00"))
    return {k: (v.committed, v.added, v.removed, v.completed, v.points) for k, v in out.items()}


def test_committed_and_done_before_the_end():
    i = issue(
        sprints=[101],
        status_id="10001",
        histories=[
            ("2026-10-02 10:00", [sprint_change("", "101")]),
            ("2026-10-10 10:00", [status_change("10000", "10001")]),
        ],
    )
    assert items(i) == {"101": (True, False, False, True, 3)}


def test_created_in_the_sprint_without_a_sprint_change_is_committed():
    i = issue(sprints=[101])
    assert items(i) == {"101": (True, False, False, False, 3)}


def test_carried_over_then_done_in_the_next_sprint():
    i = issue(
        sprints=[101, 102],
        status_id="10001",
        points=5,
        histories=[
            ("2026-10-02 10:00", [sprint_change("", "101")]),
            ("2026-10-16 16:00", [sprint_change("101", "101, 102")]),
            ("2026-10-25 10:00", [status_change("10000", "10001")]),
        ],
    )
    assert items(i) == {"101": (True, False, False, False, 5), "102": (True, False, False, True, 5)}


def test_added_after_start_with_points_when_it_entered():
    i = issue(
        sprints=[101],
        status_id="10001",
        points=8,
        histories=[
            ("2026-10-06 10:00", [points_change(None, 2)]),
            ("2026-10-07 10:00", [sprint_change("", "101")]),
            ("2026-10-12 10:00", [status_change("10000", "10001")]),
            ("2026-10-13 10:00", [points_change(2, 8)]),
        ],
    )
    assert items(i) == {"101": (False, True, False, True, 2)}


def test_removed_mid_sprint_keeps_points_at_start():
    i = issue(
        sprints=[],
        points=13,
        histories=[
            ("2026-10-08 10:00", [points_change(8, 13)]),
            ("2026-10-09 10:00", [sprint_change("101", "")]),
        ],
    )
    assert items(i) == {"101": (True, False, True, False, 8)}


def test_reopened_before_the_end_is_not_completed():
    i = issue(
        sprints=[102],
        status_id="10001",
        histories=[
            ("2026-10-18 10:00", [sprint_change("", "102")]),
            ("2026-10-22 10:00", [status_change("10000", "10001")]),
            ("2026-10-28 10:00", [status_change("10001", "3")]),
            ("2026-11-03 10:00", [status_change("3", "10001")]),
        ],
    )
    assert items(i) == {"102": (True, False, False, False, 3)}


def test_in_and_out_before_start_and_subtasks_count_for_nothing():
    before = issue(
        sprints=[],
        histories=[
            ("2026-10-02 10:00", [sprint_change("", "101")]),
            ("2026-10-03 10:00", [sprint_change("101", "")]),
        ],
    )
    assert items(before) == {}
    assert items(issue(sprints=[101], subtask=True)) == {}
    # a sprint not on the board is ignored
    assert items(issue(sprints=[999])) == {}


def test_active_sprint_is_judged_now():
    active = SprintRecord("103", "S3", "active", T("2026-11-02 08:00"), None)
    i = issue(
        sprints=[103],
        status_id="10001",
        histories=[("2026-11-01 10:00", [sprint_change("", "103")])],
    )
    out = sprint_items(i, {"103": active}, CATEGORIES, T("2026-11-05 00:00"))
    assert (out["103"].committed, out["103"].completed) == (True, True)


def test_config_checks_jira_keys():
    from bot.settings import parse_config

    base = "teams:\n  - name: a\n    repos: [acme/api]\n"
    config, problems = parse_config(
        base + "    sprints: {source: jira, board: 12, points_field: customfield_10016}\n"
        "    incidents: {source: jira, project: OPS, issue_type: Incident}\n"
    )
    assert problems == []
    assert config is not None and config.teams[0].sprints.points_field == "customfield_10016"
    _, problems = parse_config(base + "    incidents: {source: jira}\n")
    assert len(problems) == 1 and "needs 'project: <key>'" in problems[0]
    _, problems = parse_config(base + "    sprints: {source: jira, bord: 12}\n")
    assert any("unknown key 'bord'" in p for p in problems)
