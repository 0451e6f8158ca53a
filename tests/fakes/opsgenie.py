"""A fake Opsgenie Incident API v1 on loopback: ``GET /v1/incidents`` with a
``createdAt>epoch-ms`` query, ``offset``/``limit`` paging, ``paging.next`` and GenieKey auth."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from tests.fakes.server import FakeRequest, FakeResponse, FakeServer


def og_time(s: str) -> str:
    return datetime.fromisoformat(s).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class FakeOpsgenie(FakeServer):
    def __init__(self, key: str = "og-key") -> None:
        super().__init__()
        self.key = key
        self.incidents: list[dict[str, Any]] = []
        self.route("GET", r"/v1/incidents", self.list_incidents)

    def add(
        self,
        tiny: int,
        services: list[str],
        created: str,
        resolved: str | None = None,
        *,
        impact_end: bool = True,
        status: str | None = None,
    ) -> dict[str, Any]:
        inc: dict[str, Any] = {
            "id": f"og-{tiny:04d}",
            "tinyId": str(tiny),
            "message": "Payments degraded",
            "status": status or ("resolved" if resolved else "open"),
            "tags": [],
            "createdAt": og_time(created),
            "updatedAt": og_time(resolved or created),
            "priority": "P2",
            "impactedServices": services,
            "impactStartDate": og_time(created),
            "links": {"web": f"https://acme.app.opsgenie.com/incident/detail/og-{tiny:04d}"},
        }
        if resolved and impact_end:
            inc["impactEndDate"] = og_time(resolved)
        self.incidents.append(inc)
        return inc

    def list_incidents(self, req: FakeRequest) -> FakeResponse:
        if req.headers.get("authorization") != f"GenieKey {self.key}":
            return FakeResponse.json({"message": "Could not authenticate", "took": 0.0}, 401)
        query = req.arg("query") or ""
        after = None
        if query:
            m = re.fullmatch(r"createdAt>(\d+)", query)
            if not m:
                return FakeResponse.json({"message": f"bad query {query}"}, 422)
            after = datetime.fromtimestamp(int(m.group(1)) / 1000, UTC).replace(tzinfo=None)

        def created(i: dict[str, Any]) -> datetime:
            return datetime.fromisoformat(i["createdAt"].replace("Z", "+00:00")).replace(
                tzinfo=None
            )

        matching = sorted(
            (i for i in self.incidents if after is None or created(i) > after), key=created
        )
        offset = int(req.arg("offset", "0") or 0)
        limit = int(req.arg("limit", "20") or 20)
        page = matching[offset : offset + limit]
        paging: dict[str, str] = {"first": f"{self.url}/v1/incidents?offset=0"}
        if offset + len(page) < len(matching):
            paging["next"] = f"{self.url}/v1/incidents?offset={offset + limit}"
        return FakeResponse.json({"data": page, "paging": paging, "took": 0.01, "requestId": "r"})
