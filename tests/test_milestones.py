"""GitHub milestones as sprints: a small fake GitHub REST API on loopback (milestones, issues,
issue events with Link paging), ``milestones.sync_team``, then predictability and scope creep
checked by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from bot.settings import Settings, TeamConfig
from bot.sources import milestones
from bot.sources.github_client import GitHubClient
from bot.store.models import Sprint, SprintItem
from bot.store.session import session_factory
from tests.factories import setup_team
from tests.fakes.server import FakeRequest, FakeResponse, FakeServer
from tests.helpers import engine as team_engine
from tests.helpers import period

NOW = datetime(2026, 11, 20, 9, 0)
REPO = "acme/api"
TEAM = TeamConfig(name="payments", repos=(REPO,), sprints={"source": "github-milestones"})


def ts(s: str) -> str:
    return datetime.fromisoformat(s).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeGitHubMilestones(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.milestones: list[dict[str, Any]] = []
        self.issues: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        base = r"/repos/acme/api"
        self.route("GET", base + r"/milestones", lambda r: self.paged(r, self.milestones))
        self.route("GET", base + r"/issues", self.list_issues)
        self.route("GET", base + r"/issues/events", self.list_events)

    def milestone(
        self, number: int, title: str, created: str, due: str | None, state: str = "open"
    ):
        m = {
            "id": 1000 + number,
            "number": number,
            "title": title,
            "state": state,
            "created_at": ts(created),
            "due_on": ts(due) if due else None,
            "closed_at": ts(due) if state == "closed" and due else None,
        }
        self.milestones.append(m)
        return m

    def issue(self, number: int, created: str, milestone: str | None, closed: str | None = None,
              *, pr: bool = False) -> dict[str, Any]:  # fmt: skip
        ms = next((m for m in self.milestones if m["title"] == milestone), None)
        i: dict[str, Any] = {
            "id": 5000 + number,
            "number": number,
            "title": f"Issue {number}",
            "state": "closed" if closed else "open",
            "created_at": ts(created),
            "closed_at": ts(closed) if closed else None,
            "milestone": ms,
            "labels": [],
        }
        if pr:
            i["pull_request"] = {"url": f"https://api.github.com/repos/acme/api/pulls/{number}"}
        self.issues.append(i)
        return i

    def event(self, number: int, kind: str, title: str, at: str) -> None:
        issue = next(i for i in self.issues if i["number"] == number)
        self.events.append(
            {
                "id": 9000 + len(self.events),
                "event": kind,
                "created_at": ts(at),
                "milestone": {"title": title},
                "issue": issue,
            }
        )

    def paged(self, req: FakeRequest, items: list[Any]) -> FakeResponse:
        if req.headers.get("authorization") != "Bearer gh-token":
            return FakeResponse.json({"message": "Bad credentials"}, 401)
        per = int(req.arg("per_page", "30") or 30)
        page = int(req.arg("page", "1") or 1)
        chunk = items[(page - 1) * per : page * per]
        headers = {}
        if page * per < len(items):
            query = "&".join(f"{k}={v[-1]}" for k, v in req.query.items() if k != "page")
            headers["Link"] = f'<{self.url}{req.path}?{query}&page={page + 1}>; rel="next"'
        return FakeResponse.json(chunk, headers=headers)

    def list_issues(self, req: FakeRequest) -> FakeResponse:
        number = int(req.arg("milestone") or 0)
        items = [i for i in self.issues if (i["milestone"] or {}).get("number") == number]
        return self.paged(req, items)

    def list_events(self, req: FakeRequest) -> FakeResponse:
        newest_first = sorted(self.events, key=lambda e: e["created_at"], reverse=True)
        return self.paged(req, newest_first)


@pytest.fixture
def fake() -> Iterator[FakeGitHubMilestones]:
    with FakeGitHubMilestones() as gh:
        gh.milestone(1, "Sprint 1", "2026-09-20 10:00", "2026-10-09 07:00", state="closed")
        gh.milestone(2, "Sprint 2", "2026-09-22 10:00", "2026-10-23 07:00")
        gh.milestone(3, "Backlog", "2026-01-01 10:00", None)
        gh.milestone(4, "Sprint 3", "2026-10-01 10:00", "2026-12-04 07:00")
        gh.milestone(5, "Sprint 4", "2026-10-15 10:00", "2026-12-18 07:00")
        gh.issue(1, "2026-09-21 09:00", "Sprint 1", "2026-10-05 12:00")
        gh.event(1, "milestoned", "Sprint 1", "2026-09-22 09:00")
        gh.issue(2, "2026-09-21 09:00", "Sprint 2", "2026-10-20 12:00")
        gh.event(2, "milestoned", "Sprint 1", "2026-09-22 09:00")
        gh.event(2, "demilestoned", "Sprint 1", "2026-10-09 08:00")
        gh.event(2, "milestoned", "Sprint 2", "2026-10-09 08:00")
        gh.issue(3, "2026-09-23 09:00", None)
        gh.event(3, "milestoned", "Sprint 1", "2026-09-23 09:00")
        gh.event(3, "demilestoned", "Sprint 1", "2026-10-01 09:00")
        gh.issue(4, "2026-10-02 09:00", "Sprint 1", "2026-10-08 12:00")
        gh.event(4, "milestoned", "Sprint 1", "2026-10-02 09:00")
        gh.issue(5, "2026-09-30 09:00", "Sprint 2", "2026-10-22 12:00")
        gh.event(5, "milestoned", "Sprint 2", "2026-09-30 09:00")
        gh.issue(6, "2026-09-30 09:00", "Sprint 2", "2026-10-21 12:00")
        gh.event(6, "milestoned", "Sprint 2", "2026-09-30 09:00")
        gh.issue(7, "2026-09-30 09:00", "Backlog")
        gh.event(7, "milestoned", "Sprint 2", "2026-10-01 09:00")
        gh.event(7, "milestoned", "Backlog", "2026-10-03 09:00")
        gh.issue(8, "2026-10-01 09:00", "Sprint 2", pr=True)
        gh.issue(9, "2026-10-01 09:00", "Sprint 2")
        gh.event(9, "milestoned", "Sprint 2", "2026-10-01 09:00")
        gh.issue(10, "2026-10-01 09:00", "Sprint 2")  # created in it: no event
        gh.issue(11, "2025-01-01 09:00", None)
        gh.event(11, "milestoned", "Backlog", "2025-01-02 09:00")  # long before any sprint
        gh.event(11, "demilestoned", "Backlog", "2025-01-03 09:00")
        gh.event(11, "milestoned", "Backlog", "2025-01-04 09:00")
        gh.event(11, "demilestoned", "Backlog", "2025-01-05 09:00")
        yield gh


def run(fake: FakeGitHubMilestones, engine) -> tuple[int, list[str]]:
    settings = Settings(github_token="gh-token", github_api_url=fake.url)
    client = GitHubClient.from_settings(settings, backoff=0.01, sleep=lambda s: None)
    messages: list[str] = []
    try:
        n = milestones.sync_team(
            settings, session_factory(engine), TEAM, full=False, report=messages.append,
            now=NOW, client=client,
        )  # fmt: skip
    finally:
        client.close()
    return n, messages


def test_milestones_as_sprints(fake, session, engine, monkeypatch):
    setup_team(session, TEAM)
    monkeypatch.setattr(milestones, "PER_PAGE", 3)
    n, messages = run(fake, engine)
    assert n > 0 and "4 milestones of acme/api" in messages[-1]
    sprints = {s.name: s for s in session.scalars(select(Sprint))}
    assert set(sprints) == {"Sprint 1", "Sprint 2", "Sprint 3", "Sprint 4"}
    # Sprint 1 starts one median milestone length before its due date: the gaps between due
    # dates are 14, 42 and 14 days, so 14 days
    assert sprints["Sprint 1"].started_at == datetime(2026, 9, 25, 7, 0)
    assert sprints["Sprint 2"].started_at == datetime(2026, 10, 9, 7, 0)
    assert (sprints["Sprint 3"].state, sprints["Sprint 3"].ended_at) == ("active", None)
    rows = session.execute(
        select(Sprint.name, SprintItem.key, SprintItem.committed, SprintItem.removed,
               SprintItem.completed).join(Sprint).order_by(Sprint.name, SprintItem.key)
    ).all()  # fmt: skip
    got = {(r[0], r[1]): (r[2], r[3], r[4]) for r in rows}
    assert got == {
        ("Sprint 1", "#1"): (True, False, True),
        ("Sprint 1", "#2"): (True, False, False),  # carried over after the due date
        ("Sprint 1", "#3"): (True, True, False),
        ("Sprint 1", "#4"): (False, False, True),  # added after the start
        ("Sprint 2", "#10"): (True, False, False),
        ("Sprint 2", "#2"): (False, False, True),  # joined after Sprint 2 started
        ("Sprint 2", "#5"): (True, False, True),
        ("Sprint 2", "#6"): (True, False, True),
        ("Sprint 2", "#9"): (True, False, False),
    }
    eng = team_engine(session, TEAM)
    pred = eng.value("predictability", period("2026-10"))
    # committed: S1 #1 #2 #3, S2 #5 #6 #9 #10 -> 7; completed #1, #5, #6 -> 3 / 7
    assert pred.value == pytest.approx(3 / 7)
    assert pred.breakdown["basis"] == "items"
    # added after start: S1 #4, S2 #2 -> 2 / 7
    assert eng.value("scope-creep", period("2026-10")).value == pytest.approx(2 / 7)
    # issue events are read newest first only back to the earliest sprint start
    pages = [r.arg("page") for r in fake.requests_to("GET", r"/repos/acme/api/issues/events")]
    assert len(pages) < (len(fake.events) + 2) // 3


def test_rerun_changes_nothing(fake, session, engine):
    setup_team(session, TEAM)
    run(fake, engine)
    before = session.execute(
        select(SprintItem.key, SprintItem.completed).order_by(SprintItem.id)
    ).all()
    run(fake, engine)
    session.expire_all()
    after = session.execute(
        select(SprintItem.key, SprintItem.completed).order_by(SprintItem.id)
    ).all()
    assert after == before


def test_bad_token_says_what_to_check(fake, session, engine):
    from bot.sources.github_client import GitHubAuthError

    setup_team(session, TEAM)
    settings = Settings(github_token="wrong", github_api_url=fake.url)
    with pytest.raises(GitHubAuthError) as err:
        milestones.sync_team(settings, session_factory(engine), TEAM, full=False,
                             report=lambda m: None, now=NOW)  # fmt: skip
    assert "wrong" not in str(err.value)


def _ms(number: int, due: str | None, created: str = "2026-01-01T00:00:00") -> milestones.Milestone:
    return milestones.Milestone(
        number=number,
        title=f"M{number}",
        state="open",
        created_at=datetime.fromisoformat(created),
        due_on=datetime.fromisoformat(due) if due else None,
        closed_at=None,
    )


def test_milestone_starts_at_the_previous_due_date_and_the_first_one_median_length_before():
    now = datetime(2026, 12, 1)
    out = milestones.sprints_of(
        [
            _ms(3, "2026-10-29T00:00:00"),  # 14 days after M2
            _ms(1, "2026-10-01T00:00:00"),
            _ms(2, "2026-10-15T00:00:00", created="2026-10-10T00:00:00"),  # 14 days after M1
            _ms(4, "2026-11-26T00:00:00"),  # 28 days after M3
            _ms(5, None),  # no due date: not a sprint
        ],
        now,
    )
    assert sorted(out) == ["M1", "M2", "M3", "M4"]
    # gaps 14, 14, 28 days: median 14 days, so M1 starts 14 days before its due date
    assert out["M1"].started_at == datetime(2026, 9, 17)
    # M2 was created after M1's due date; it still starts at M1's due date
    assert out["M2"].started_at == datetime(2026, 10, 1)
    assert out["M3"].started_at == datetime(2026, 10, 15)
    assert out["M4"].started_at == datetime(2026, 10, 29)
    assert out["M4"].ended_at == datetime(2026, 11, 26)


def test_single_milestone_starts_when_it_was_created():
    out = milestones.sprints_of(
        [_ms(1, "2026-10-01T00:00:00", "2026-09-20T00:00:00")], datetime(2026, 12, 1)
    )
    assert out["M1"].started_at == datetime(2026, 9, 20)
