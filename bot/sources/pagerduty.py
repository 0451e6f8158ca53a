"""PagerDuty incidents of a team's services (REST API v2), as the team's incidents.

``incidents: {source: pagerduty, services: [PABC123, ...]}`` in kpibot.yml names the services;
their incidents are the team's. started = ``created_at``, resolved = ``resolved_at`` (or the
last status change of a resolved incident). The list is read in windows of at most 179 days
(PagerDuty's ``since``/``until`` limit) with ``offset`` paging, one committed page at a time.
Incremental runs start from the oldest incident still open at the last run (or the newest one
seen), so resolutions of earlier incidents are picked up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import ConfigError, KpibotError
from bot.settings import OpsgenieIncidents, PagerDutyIncidents, Settings, TeamConfig
from bot.sources.rest import RestClient
from bot.sources.timestamps import iso_utc
from bot.store.models import Team
from bot.store.records import IncidentRecord
from bot.store.session import unit_of_work, utc
from bot.store.writes import get_cursor, set_cursor, upsert_incidents

PAGE_SIZE = 100
WINDOW = timedelta(days=179)
#: how far back a full sync reads
HISTORY = timedelta(days=365)
MARGIN = timedelta(hours=1)


class PagerDutyPayloadError(KpibotError, ValueError):
    """A PagerDuty payload is not shaped as expected."""


@dataclass(frozen=True)
class PagerDutyIncident:
    record: IncidentRecord
    service_id: str | None
    open: bool


def _time(value: Any, what: str) -> datetime:
    return iso_utc(value, what, PagerDutyPayloadError)


def parse_incident(payload: Any) -> PagerDutyIncident:
    """One incident of ``GET /incidents``."""
    if not isinstance(payload, Mapping):
        raise PagerDutyPayloadError("incident: expected an object")
    iid = payload.get("id")
    if not isinstance(iid, str) or not iid:
        raise PagerDutyPayloadError("incident: missing field 'id'")
    what = f"incident {iid}"
    status = str(payload.get("status") or "")
    created = _time(payload.get("created_at"), f"{what}.created_at")
    resolved = None
    if payload.get("resolved_at"):
        resolved = _time(payload["resolved_at"], f"{what}.resolved_at")
    elif status == "resolved" and payload.get("last_status_change_at"):
        resolved = _time(payload["last_status_change_at"], f"{what}.last_status_change_at")
    service = payload.get("service")
    service_id = str(service["id"]) if isinstance(service, Mapping) and service.get("id") else None
    number = payload.get("incident_number")
    title = str(payload.get("title") or payload.get("summary") or "")
    if number is not None and not title.startswith("["):
        title = f"#{number} {title}".strip()
    return PagerDutyIncident(
        record=IncidentRecord(
            source="pagerduty",
            provider_id=iid,
            title=title,
            started_at=created,
            resolved_at=resolved,
            url=payload.get("html_url") if isinstance(payload.get("html_url"), str) else None,
        ),
        service_id=service_id,
        open=status != "resolved",
    )


def parse_page(body: Any) -> tuple[list[PagerDutyIncident], bool]:
    """(incidents, more) of one ``GET /incidents`` page."""
    if not isinstance(body, Mapping) or not isinstance(body.get("incidents"), list):
        raise PagerDutyPayloadError("incident list: expected an object with 'incidents'")
    return [parse_incident(i) for i in body["incidents"]], bool(body.get("more"))


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class PagerDutyClient(RestClient):
    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        if not settings.pagerduty_api_token:
            raise ConfigError(
                "PagerDuty is not configured: set PAGERDUTY_API_TOKEN (a read-only REST API "
                "key) in the environment or .env"
            )
        super().__init__(
            "PagerDuty",
            settings.pagerduty_api_url,
            {
                "Authorization": f"Token token={settings.pagerduty_api_token}",
                "Accept": "application/vnd.pagerduty+json;version=2",
            },
            hint="check PAGERDUTY_API_TOKEN (a REST API key with read access)",
            **kwargs,
        )

    def incident_pages(
        self, services: Sequence[str], since: datetime, until: datetime
    ) -> Iterator[list[PagerDutyIncident]]:
        start = since
        while start < until:
            end = min(start + WINDOW, until)
            offset = 0
            while True:
                params: list[tuple[str, Any]] = [("service_ids[]", s) for s in services]
                params += [
                    ("since", _iso(start)),
                    ("until", _iso(end)),
                    ("time_zone", "UTC"),
                    ("sort_by", "created_at:asc"),
                    ("limit", PAGE_SIZE),
                    ("offset", offset),
                ]
                page, more = parse_page(self.get("/incidents", params))
                yield page
                offset += len(page)
                if not more or not page:
                    break
            start = end


def team_services(team: TeamConfig) -> list[str]:
    spec = team.incidents
    if not isinstance(spec, PagerDutyIncidents | OpsgenieIncidents) or not spec.services:
        raise ConfigError(
            f"incidents of team '{team.name}': source '{spec.source}' needs "
            "'services: [<service id>, ...]' in kpibot.yml"
        )
    return list(spec.services)


def team_id(session: Session, team: TeamConfig) -> int:
    tid = session.scalar(select(Team.id).where(Team.name == team.name))
    if tid is None:
        row = Team(name=team.name, timezone=team.timezone)
        session.add(row)
        session.flush()
        tid = row.id
    return tid


def next_cursor(
    incidents: Sequence[tuple[datetime, bool]], previous: datetime | None
) -> datetime | None:
    """Where the next run starts: the oldest still-open incident, else the newest one seen."""
    if not incidents:
        return previous
    open_ = [t for t, is_open in incidents if is_open]
    return min(open_) if open_ else max(t for t, _ in incidents)


def sync_team(
    settings: Settings,
    sessions: sessionmaker[Session],
    team: TeamConfig,
    *,
    full: bool,
    report: Callable[[str], None],
    now: datetime | None = None,
    client: PagerDutyClient | None = None,
) -> int:
    """Store the PagerDuty incidents of the team's services; returns how many were stored."""
    if not isinstance(team.incidents, PagerDutyIncidents):
        return 0
    services = team_services(team)
    scope = ",".join(sorted(services))[:255]
    at = utc(now) if now is not None else utc(datetime.now(UTC))
    with unit_of_work(sessions) as s:
        cursor = get_cursor(s, "pagerduty", scope, "incidents")
    since = at - HISTORY
    if cursor and not full:
        since = max(since, datetime.fromisoformat(cursor) - MARGIN)
    own = client is None
    pd = client or PagerDutyClient(settings)
    stored = 0
    seen: list[tuple[datetime, bool]] = []
    wanted = set(services)
    try:
        for page in pd.incident_pages(services, since, at):
            mine = [i for i in page if i.service_id is None or i.service_id in wanted]
            seen += [(i.record.started_at, i.open) for i in mine]
            with unit_of_work(sessions) as s:
                stored += len(upsert_incidents(s, team_id(s, team), [i.record for i in mine]))
                # the run is resumable from the oldest open incident seen so far
                mark = next_cursor(seen, None)
                if mark is not None:
                    set_cursor(s, "pagerduty", scope, "incidents", mark.isoformat(), at)
            report(f"{team.name}: {stored} PagerDuty incidents stored")
    finally:
        if own:
            pd.close()
    return stored
