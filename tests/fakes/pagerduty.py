"""A fake PagerDuty REST API v2 on loopback: ``GET /incidents`` with ``service_ids[]``,
``since``/``until`` (checked against PagerDuty's 6-month limit), ``offset``/``limit`` paging
and token auth."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.fakes.server import FakeRequest, FakeResponse, FakeServer


def pd_time(s: str) -> str:
    return datetime.fromisoformat(s).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).replace(tzinfo=None)


class FakePagerDuty(FakeServer):
    def __init__(self, token: str = "pd-token") -> None:
        super().__init__()
        self.token = token
        self.incidents: list[dict[str, Any]] = []
        self.route("GET", r"/incidents", self.list_incidents)

    def add(
        self,
        number: int,
        service: str,
        created: str,
        resolved: str | None = None,
        *,
        title: str = "High error rate",
        with_resolved_at: bool = True,
    ) -> dict[str, Any]:
        status = "resolved" if resolved else "triggered"
        inc: dict[str, Any] = {
            "id": f"Q{number:05d}",
            "type": "incident",
            "incident_number": number,
            "title": title,
            "summary": f"[#{number}] {title}",
            "status": status,
            "created_at": pd_time(created),
            "last_status_change_at": pd_time(resolved or created),
            "service": {"id": service, "type": "service_reference", "summary": service},
            "html_url": f"https://acme.pagerduty.com/incidents/Q{number:05d}",
        }
        if resolved and with_resolved_at:
            inc["resolved_at"] = pd_time(resolved)
        self.incidents.append(inc)
        return inc

    def resolve(self, number: int, at: str) -> None:
        inc = next(i for i in self.incidents if i["incident_number"] == number)
        inc.update(status="resolved", resolved_at=pd_time(at), last_status_change_at=pd_time(at))

    def list_incidents(self, req: FakeRequest) -> FakeResponse:
        if req.headers.get("authorization") != f"Token token={self.token}":
            return FakeResponse.json({"error": {"message": "Unauthorized", "code": 2006}}, 401)
        since = _parse(req.arg("since") or "1970-01-01T00:00:00Z")
        until = _parse(req.arg("until") or "2100-01-01T00:00:00Z")
        if until - since > timedelta(days=180):
            return FakeResponse.json(
                {"error": {"message": "Invalid Input Provided", "errors": ["range too long"]}},
                400,
            )
        services = set(req.query.get("service_ids[]", []))
        matching = sorted(
            (
                i
                for i in self.incidents
                if (not services or i["service"]["id"] in services)
                and since <= _parse(i["created_at"]) < until
            ),
            key=lambda i: i["created_at"],
        )
        offset = int(req.arg("offset", "0") or 0)
        limit = int(req.arg("limit", "25") or 25)
        page = matching[offset : offset + limit]
        return FakeResponse.json(
            {
                "incidents": page,
                "limit": limit,
                "offset": offset,
                "total": None,
                "more": offset + len(page) < len(matching),
            }
        )
