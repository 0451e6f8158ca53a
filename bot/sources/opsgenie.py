"""Opsgenie incidents (Incident API v1) of a team's services, as the team's incidents.

``incidents: {source: opsgenie, services: [<service id>, ...]}`` in kpibot.yml: an incident
whose ``impactedServices`` include one of them is the team's. started = ``impactStartDate``
(else ``createdAt``), resolved = ``impactEndDate`` (else ``updatedAt`` of a resolved or closed
incident). Pages of 100 by ``offset``, sorted by creation, each committed with its cursor;
incremental runs ask for ``createdAt`` after the oldest incident still open at the last run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.errors import ConfigError, KpibotError
from bot.settings import OpsgenieIncidents, Settings, TeamConfig
from bot.sources.pagerduty import next_cursor, team_id, team_services
from bot.sources.rest import RestClient
from bot.sources.timestamps import iso_utc
from bot.store.records import IncidentRecord
from bot.store.session import unit_of_work, utc
from bot.store.writes import get_cursor, set_cursor, upsert_incidents

PAGE_SIZE = 100
MARGIN = timedelta(hours=1)
RESOLVED = frozenset({"resolved", "closed"})


class OpsgeniePayloadError(KpibotError, ValueError):
    """An Opsgenie payload is not shaped as expected."""


@dataclass(frozen=True)
class OpsgenieIncident:
    record: IncidentRecord
    services: frozenset[str]
    created: datetime
    open: bool


def _time(value: Any, what: str) -> datetime:
    return iso_utc(value, what, OpsgeniePayloadError)


def parse_incident(payload: Any) -> OpsgenieIncident:
    if not isinstance(payload, Mapping):
        raise OpsgeniePayloadError("incident: expected an object")
    iid = payload.get("id")
    if not isinstance(iid, str) or not iid:
        raise OpsgeniePayloadError("incident: missing field 'id'")
    what = f"incident {iid}"
    status = str(payload.get("status") or "").lower()
    created = _time(payload.get("createdAt"), f"{what}.createdAt")
    started = created
    if payload.get("impactStartDate"):
        started = _time(payload["impactStartDate"], f"{what}.impactStartDate")
    resolved = None
    if payload.get("impactEndDate"):
        resolved = _time(payload["impactEndDate"], f"{what}.impactEndDate")
    elif status in RESOLVED and payload.get("updatedAt"):
        resolved = _time(payload["updatedAt"], f"{what}.updatedAt")
    services = payload.get("impactedServices") or []
    if not isinstance(services, list):
        raise OpsgeniePayloadError(f"{what}.impactedServices: expected a list")
    raw_links = payload.get("links")
    links: Mapping[str, Any] = raw_links if isinstance(raw_links, Mapping) else {}
    tiny = payload.get("tinyId")
    message = str(payload.get("message") or "")
    return OpsgenieIncident(
        record=IncidentRecord(
            source="opsgenie",
            provider_id=iid,
            title=f"#{tiny} {message}".strip() if tiny else message,
            started_at=started,
            resolved_at=resolved,
            url=links.get("web") if isinstance(links.get("web"), str) else None,
        ),
        services=frozenset(str(s) for s in services),
        created=created,
        open=status not in RESOLVED,
    )


def parse_page(body: Any) -> tuple[list[OpsgenieIncident], bool]:
    """(incidents, has_next) of one ``GET /v1/incidents`` page."""
    if not isinstance(body, Mapping) or not isinstance(body.get("data"), list):
        raise OpsgeniePayloadError("incident list: expected an object with 'data'")
    raw_paging = body.get("paging")
    paging: Mapping[str, Any] = raw_paging if isinstance(raw_paging, Mapping) else {}
    return [parse_incident(i) for i in body["data"]], bool(paging.get("next"))


class OpsgenieClient(RestClient):
    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        if not settings.opsgenie_api_key:
            raise ConfigError(
                "Opsgenie is not configured: set OPSGENIE_API_KEY (an API integration key with "
                "read access; OPSGENIE_API_URL=https://api.eu.opsgenie.com for the EU) in the "
                "environment or .env"
            )
        super().__init__(
            "Opsgenie",
            settings.opsgenie_api_url,
            {"Authorization": f"GenieKey {settings.opsgenie_api_key}"},
            hint="check OPSGENIE_API_KEY (an API key with read access) and OPSGENIE_API_URL",
            **kwargs,
        )

    def incident_pages(self, since: datetime | None) -> Iterator[list[OpsgenieIncident]]:
        offset = 0
        query = ""
        if since is not None:
            query = f"createdAt>{int(since.replace(tzinfo=UTC).timestamp() * 1000)}"
        while True:
            params = {
                "query": query,
                "offset": offset,
                "limit": PAGE_SIZE,
                "sort": "createdAt",
                "order": "asc",
            }
            page, has_next = parse_page(self.get("/v1/incidents", params))
            yield page
            offset += len(page)
            if not has_next or not page:
                return


def sync_team(
    settings: Settings,
    sessions: sessionmaker[Session],
    team: TeamConfig,
    *,
    full: bool,
    report: Callable[[str], None],
    now: datetime | None = None,
    client: OpsgenieClient | None = None,
) -> int:
    """Store the Opsgenie incidents of the team's services; returns how many were stored."""
    if not isinstance(team.incidents, OpsgenieIncidents):
        return 0
    services = set(team_services(team))
    scope = ",".join(sorted(services))[:255]
    at = utc(now) if now is not None else utc(datetime.now(UTC))
    with unit_of_work(sessions) as s:
        cursor = get_cursor(s, "opsgenie", scope, "incidents")
    since = None if full or not cursor else datetime.fromisoformat(cursor) - MARGIN
    own = client is None
    og = client or OpsgenieClient(settings)
    stored = 0
    seen: list[tuple[datetime, bool]] = []
    try:
        for page in og.incident_pages(since):
            mine = [i for i in page if i.services & services]
            # other services' open incidents must not hold the cursor back
            seen += [(i.created, i.open and i in mine) for i in page]
            with unit_of_work(sessions) as s:
                if mine:
                    tid = team_id(s, team)
                    stored += len(upsert_incidents(s, tid, [i.record for i in mine]))
                mark = next_cursor(seen, None)
                if mark is not None:
                    set_cursor(s, "opsgenie", scope, "incidents", mark.isoformat(), at)
            report(f"{team.name}: {stored} Opsgenie incidents stored")
    finally:
        if own:
            og.close()
    return stored
