"""A fake Jira (Cloud shapes) on loopback: boards' sprints and issues, fields, statuses, search
and paginated changelogs, checking basic auth and honouring ``startAt``/``maxResults``.

JQL understood: ``project = "X"``, ``issuetype = "Y"``, ``updated >= "yyyy/MM/dd HH:mm"`` (UTC)
joined by AND, and a trailing ``ORDER BY updated ASC``.
"""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import Any

from tests.fakes.server import FakeRequest, FakeResponse, FakeServer

SPRINT_FIELD = "customfield_10020"
POINTS_FIELD = "customfield_10016"

STATUSES = [
    {"id": "10000", "name": "To Do", "statusCategory": {"id": 2, "key": "new", "name": "To Do"}},
    {
        "id": "3",
        "name": "In Progress",
        "statusCategory": {"id": 4, "key": "indeterminate", "name": "In Progress"},
    },
    {"id": "10001", "name": "Done", "statusCategory": {"id": 3, "key": "done", "name": "Done"}},
]
FIELDS = [
    {"id": "summary", "name": "Summary", "custom": False, "schema": {"type": "string"}},
    {
        "id": SPRINT_FIELD,
        "name": "Sprint",
        "custom": True,
        "schema": {
            "type": "array",
            "items": "json",
            "custom": "com.pyxis.greenhopper.jira:gh-sprint",
        },
    },
    {
        "id": POINTS_FIELD,
        "name": "Story point estimate",
        "custom": True,
        "schema": {"type": "number", "custom": "com.pyxis.greenhopper.jira:jsw-story-points"},
    },
]


def jira_time(s: str) -> str:
    """'2026-10-05 08:00' (UTC) -> Jira's '2026-10-05T08:00:00.000+0000'."""
    return datetime.fromisoformat(s).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def status(sid: str) -> dict[str, Any]:
    return next(s for s in STATUSES if s["id"] == sid)


class FakeJira(FakeServer):
    def __init__(
        self,
        email: str = "bot@example.com",
        token: str = "jira-token",
        *,
        data_center: bool = False,
    ) -> None:
        """Jira Cloud (basic auth, ``/search/jql`` with page tokens, the old ``/search`` gone)
        or, ``data_center``, Jira Data Center (a personal access token, only ``/search``)."""
        super().__init__()
        self.data_center = data_center
        if data_center:
            self.auth = f"Bearer {token}"
        else:
            self.auth = "Basic " + base64.b64encode(f"{email}:{token}".encode()).decode()
        self.sprints: dict[int, list[dict[str, Any]]] = {}
        self.board_issues: dict[int, list[dict[str, Any]]] = {}
        self.issues: list[dict[str, Any]] = []  # for /rest/api/2/search
        self.inline_histories = 100  # Cloud returns at most this many histories inline
        self.route("GET", r"/rest/agile/1.0/board/(?P<board>\d+)/sprint", self.list_sprints)
        self.route("GET", r"/rest/agile/1.0/board/(?P<board>\d+)/issue", self.list_board_issues)
        self.route("GET", r"/rest/api/2/field", lambda r: self.guard(r, lambda: FIELDS))
        self.route("GET", r"/rest/api/2/status", lambda r: self.guard(r, lambda: STATUSES))
        self.route("GET", r"/rest/api/2/search", self.search)
        if not data_center:
            self.route("GET", r"/rest/api/2/search/jql", self.search_jql)
        self.route("GET", r"/rest/api/2/issue/(?P<key>[A-Z]+-\d+)/changelog", self.changelog)

    # ------------------------------------------------------------------ building data

    def add_issue(
        self,
        board: int | None,
        key: str,
        *,
        created: str,
        updated: str,
        status_id: str = "10000",
        sprints: list[int] | None = None,
        points: float | None = None,
        histories: list[dict[str, Any]] | None = None,
        subtask: bool = False,
        summary: str | None = None,
        project: str = "AP",
        issue_type: str = "Story",
        resolved: str | None = None,
    ) -> dict[str, Any]:
        """An issue; ``histories`` are ``{"at": "...", "items": [...]}`` entries."""
        number = len(self.issues) + sum(len(v) for v in self.board_issues.values()) + 1
        issue = {
            "id": str(10000 + number),
            "key": key,
            "self": f"{self.url}/rest/api/2/issue/{10000 + number}",
            "fields": {
                "summary": summary or f"Work item {key}",
                "issuetype": {"id": "10001", "name": issue_type, "subtask": subtask},
                "project": {"key": project},
                "status": status(status_id),
                "created": jira_time(created),
                "updated": jira_time(updated),
                "resolutiondate": jira_time(resolved) if resolved else None,
                SPRINT_FIELD: [
                    {"id": s, "name": f"Sprint {s}", "state": "closed", "boardId": board}
                    for s in (sprints or [])
                ]
                or None,
                POINTS_FIELD: points,
            },
            "_histories": [
                {"id": str(i + 1), "created": jira_time(h["at"]), "items": h["items"]}
                for i, h in enumerate(histories or [])
            ],
            "_updated": datetime.fromisoformat(updated),
        }
        if board is None:
            self.issues.append(issue)
        else:
            self.board_issues.setdefault(board, []).append(issue)
        return issue

    # ------------------------------------------------------------------ serving

    def guard(self, req: FakeRequest, answer: Any) -> FakeResponse:
        if req.headers.get("authorization") != self.auth:
            return FakeResponse.json(
                {"errorMessages": ["You are not authenticated."], "errors": {}}, status=401
            )
        return FakeResponse.json(answer())

    def _page(self, req: FakeRequest, items: list[Any]) -> tuple[list[Any], int, int]:
        start = int(req.arg("startAt", "0") or 0)
        size = int(req.arg("maxResults", "50") or 50)
        return items[start : start + size], start, size

    def list_sprints(self, req: FakeRequest) -> FakeResponse:
        board = int(req.params["board"])
        if board not in self.sprints:
            return FakeResponse.json(
                {"errorMessages": [f"Board {board} does not exist."]}, status=404
            )

        def answer() -> dict[str, Any]:
            page, start, size = self._page(req, self.sprints[board])
            return {
                "maxResults": size,
                "startAt": start,
                "isLast": start + len(page) >= len(self.sprints[board]),
                "values": page,
            }

        return self.guard(req, answer)

    def _matches(self, issue: dict[str, Any], jql: str) -> bool:
        where = re.split(r"\s*ORDER BY", jql, flags=re.I)[0].strip()
        if not where:
            return True
        for clause in re.split(r"\s+AND\s+", where):
            m = re.fullmatch(r'(\w+)\s*(=|>=)\s*"([^"]*)"', clause.strip())
            assert m, f"fake Jira cannot read JQL clause {clause!r}"
            name, _, value = m.groups()
            f = issue["fields"]
            if name == "project" and f["project"]["key"] != value:
                return False
            if name == "issuetype" and f["issuetype"]["name"] != value:
                return False
            if name == "updated" and issue["_updated"] < datetime.strptime(value, "%Y/%m/%d %H:%M"):
                return False
        return True

    def _render(self, issue: dict[str, Any], req: FakeRequest) -> dict[str, Any]:
        wanted = (req.arg("fields") or "").split(",")
        out = {
            "id": issue["id"],
            "key": issue["key"],
            "self": issue["self"],
            "fields": {k: v for k, v in issue["fields"].items() if k in wanted or not wanted[0]},
        }
        if "changelog" in (req.arg("expand") or ""):
            hist = issue["_histories"]
            out["changelog"] = {
                "startAt": 0,
                "maxResults": self.inline_histories,
                "total": len(hist),
                "histories": hist[-self.inline_histories :],
            }
        return out

    def _issue_page(self, req: FakeRequest, issues: list[dict[str, Any]]) -> dict[str, Any]:
        jql = req.arg("jql", "") or ""
        matching = sorted((i for i in issues if self._matches(i, jql)), key=lambda i: i["_updated"])
        page, start, size = self._page(req, matching)
        return {
            "expand": "schema,names",
            "startAt": start,
            "maxResults": size,
            "total": len(matching),
            "issues": [self._render(i, req) for i in page],
        }

    def list_board_issues(self, req: FakeRequest) -> FakeResponse:
        board = int(req.params["board"])
        return self.guard(req, lambda: self._issue_page(req, self.board_issues.get(board, [])))

    def search(self, req: FakeRequest) -> FakeResponse:
        if not self.data_center:
            return FakeResponse.json(
                {"errorMessages": ["The requested API has been removed. Please migrate to the "
                                   "/rest/api/3/search/jql API."]},
                status=410,
            )  # fmt: skip
        return self.guard(req, lambda: self._issue_page(req, self.issues))

    def search_jql(self, req: FakeRequest) -> FakeResponse:
        def answer() -> dict[str, Any]:
            jql = req.arg("jql", "") or ""
            matching = sorted(
                (i for i in self.issues if self._matches(i, jql)), key=lambda i: i["_updated"]
            )
            start = int(req.arg("nextPageToken") or 0)
            size = int(req.arg("maxResults", "50") or 50)
            page = matching[start : start + size]
            out: dict[str, Any] = {
                "issues": [self._render(i, req) for i in page],
                "isLast": start + len(page) >= len(matching),
            }
            if not out["isLast"]:
                out["nextPageToken"] = str(start + size)
            return out

        return self.guard(req, answer)

    def changelog(self, req: FakeRequest) -> FakeResponse:
        key = req.params["key"]
        every = self.issues + [i for v in self.board_issues.values() for i in v]
        issue = next((i for i in every if i["key"] == key), None)
        if issue is None:
            return FakeResponse.json({"errorMessages": ["Issue does not exist"]}, status=404)

        def answer() -> dict[str, Any]:
            page, start, size = self._page(req, issue["_histories"])
            return {
                "startAt": start,
                "maxResults": size,
                "total": len(issue["_histories"]),
                "isLast": start + len(page) >= len(issue["_histories"]),
                "values": page,
            }

        return self.guard(req, answer)


def sprint_change(before: str, after: str) -> dict[str, Any]:
    return {
        "field": "Sprint",
        "fieldtype": "custom",
        "fieldId": SPRINT_FIELD,
        "from": before,
        "fromString": None,
        "to": after,
        "toString": None,
    }


def status_change(before: str, after: str) -> dict[str, Any]:
    return {
        "field": "status",
        "fieldtype": "jira",
        "fieldId": "status",
        "from": before,
        "fromString": status(before)["name"],
        "to": after,
        "toString": status(after)["name"],
    }


def points_change(before: float | None, after: float | None) -> dict[str, Any]:
    return {
        "field": "Story point estimate",
        "fieldtype": "custom",
        "fieldId": POINTS_FIELD,
        "from": None,
        "fromString": None if before is None else str(before),
        "to": None,
        "toString": None if after is None else str(after),
    }


def sprint_payload(
    sid: int, name: str, state: str, start: str | None = None, complete: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"id": sid, "name": name, "state": state, "originBoardId": 12}
    if start:
        out["startDate"] = jira_time(start)
        out["endDate"] = jira_time(complete or start)
    if complete:
        out["completeDate"] = jira_time(complete)
    return out
