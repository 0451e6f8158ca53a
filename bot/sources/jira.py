"""Jira Cloud and Data Center: sprints of a board (from the issues' Sprint-field history) and
incidents (issues of a configured project and type, found with ``/rest/api/2/search/jql`` on
Jira Cloud and ``/rest/api/2/search`` on Data Center).

For every sprint of the board the work *committed* at its start, *added* after its start,
*removed* before its end and *completed* by its end comes from each issue's changelog: the
Sprint field's history gives when the issue was in which sprint, the status history whether it
was done (status category ``done``) when the sprint ended, and the story-point field's history
its estimate when it entered the sprint. Sub-tasks are left out, as in Jira's sprint report.

Parsers are pure and raise :class:`JiraPayloadError` naming the bad field. ``sync_team`` reads
the API page by page (``startAt``), commits each page with its cursor (the latest ``updated``
seen) and is incremental unless ``full``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import ConfigError, KpibotError
from bot.settings import JiraIncidents, JiraSprints, Settings, TeamConfig
from bot.sources.rest import RestClient, SourceError
from bot.sources.timestamps import iso_utc
from bot.store.models import Sprint, Team
from bot.store.records import IncidentRecord, SprintItemRecord, SprintRecord
from bot.store.session import unit_of_work, utc
from bot.store.writes import (
    get_cursor,
    set_cursor,
    store_sprint,
    store_sprint_items,
    upsert_incidents,
)

PAGE_SIZE = 50
#: JQL dates have minute precision in the Jira user's time zone: re-read a day to be safe.
JQL_MARGIN = timedelta(days=1)
#: a full sync (or the first one) reads the issues updated in the last 13 months
HISTORY = timedelta(days=400)
SPRINT_FIELD_TYPE = "com.pyxis.greenhopper.jira:gh-sprint"
POINT_FIELD_NAMES = ("story points", "story point estimate")
ISSUE_FIELDS = ("summary", "issuetype", "status", "created", "updated", "resolutiondate")


class JiraPayloadError(KpibotError, ValueError):
    """A Jira payload is not shaped as expected."""


# --------------------------------------------------------------------------- helpers


def _obj(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise JiraPayloadError(f"{what}: expected an object, got {type(value).__name__}")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise JiraPayloadError(f"{what}: expected a list, got {type(value).__name__}")
    return value


def _req(obj: Mapping[str, Any], key: str, what: str) -> Any:
    if obj.get(key) is None:
        raise JiraPayloadError(f"{what}: missing field '{key}'")
    return obj[key]


def parse_time(value: Any, what: str) -> datetime:
    """A Jira timestamp (``2016-04-11T07:29:03.294-07:00`` or ``...000-0800``) as naive UTC,
    keeping milliseconds (changelog entries and sprint boundaries are close together)."""
    return iso_utc(value, what, JiraPayloadError, keep_fraction=True)


def _opt_time(obj: Mapping[str, Any], key: str, what: str) -> datetime | None:
    value = obj.get(key)
    return None if value in (None, "") else parse_time(value, f"{what}.{key}")


def _points(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


# --------------------------------------------------------------------------- boards, sprints


def parse_sprint(payload: Any) -> SprintRecord | None:
    """An Agile API sprint; ``None`` for a future sprint (it has not started)."""
    s = _obj(payload, "sprint")
    what = f"sprint {s.get('id', '?')}"
    sid = _req(s, "id", what)
    state = str(_req(s, "state", what)).lower()
    started = _opt_time(s, "startDate", what)
    if state == "future" or started is None:
        return None
    ended = _opt_time(s, "completeDate", what) if state == "closed" else None
    if state == "closed" and ended is None:
        ended = _opt_time(s, "endDate", what)
    return SprintRecord(
        provider_id=str(sid),
        name=str(s.get("name") or f"Sprint {sid}"),
        state="closed" if state == "closed" else "active",
        started_at=started,
        ended_at=ended,
    )


def parse_sprint_page(body: Any) -> tuple[list[SprintRecord], bool]:
    """(started sprints, is_last) of ``GET /rest/agile/1.0/board/{id}/sprint``."""
    b = _obj(body, "sprint page")
    values = _list(b.get("values"), "sprint page.values")
    sprints = [s for s in (parse_sprint(v) for v in values) if s is not None]
    is_last = b.get("isLast")
    if is_last is None:
        start = int(b.get("startAt") or 0)
        total = b.get("total")
        is_last = not values or (isinstance(total, int) and start + len(values) >= total)
    return sprints, bool(is_last)


def parse_boards(body: Any) -> dict[int, str]:
    """Board id -> name from ``GET /rest/agile/1.0/board``."""
    b = _obj(body, "board page")
    out = {}
    for v in _list(b.get("values"), "board page.values"):
        board = _obj(v, "board")
        out[int(_req(board, "id", "board"))] = str(board.get("name") or "")
    return out


# --------------------------------------------------------------------------- fields, statuses


@dataclass(frozen=True)
class JiraFields:
    sprint_id: str | None  # e.g. customfield_10020
    points_id: str | None  # e.g. customfield_10016
    points_name: str | None


def parse_fields(body: Any, points_field: str | None = None) -> JiraFields:
    """The Sprint and story-point fields from ``GET /rest/api/2/field``.

    ``points_field`` (a field id or name from kpibot.yml) wins over the built-in names
    ``Story Points`` (company-managed) and ``Story point estimate`` (team-managed).
    """
    sprint_id = None
    by_name: dict[str, tuple[str, str]] = {}
    by_id: dict[str, str] = {}
    for raw in _list(body, "field list"):
        f = _obj(raw, "field")
        fid = str(f.get("id") or "")
        name = str(f.get("name") or "")
        raw_schema = f.get("schema")
        schema: Mapping[str, Any] = raw_schema if isinstance(raw_schema, Mapping) else {}
        if schema.get("custom") == SPRINT_FIELD_TYPE and sprint_id is None:
            sprint_id = fid
        by_name.setdefault(name.lower(), (fid, name))
        by_id[fid] = name
    points: tuple[str, str] | None = None
    if points_field:
        if points_field in by_id:
            points = (points_field, by_id[points_field])
        else:
            points = by_name.get(points_field.lower())
    else:
        for candidate in POINT_FIELD_NAMES:
            if candidate in by_name:
                points = by_name[candidate]
                break
    if sprint_id is None and "sprint" in by_name:
        sprint_id = by_name["sprint"][0]
    return JiraFields(sprint_id, points[0] if points else None, points[1] if points else None)


def parse_statuses(body: Any) -> dict[str, str]:
    """Status id -> status category key (``new``, ``indeterminate``, ``done``)."""
    out = {}
    for raw in _list(body, "status list"):
        s = _obj(raw, "status")
        cat = s.get("statusCategory")
        if s.get("id") is not None and isinstance(cat, Mapping):
            out[str(s["id"])] = str(cat.get("key") or "")
    return out


# --------------------------------------------------------------------------- issues

_SPRINT_STRING_ID = re.compile(r"\bid=(\d+)")


def sprint_ids(value: Any) -> frozenset[str]:
    """Sprint ids in a Sprint field value: Cloud objects, Data Center strings
    (``com.atlassian.greenhopper.service.sprint.Sprint@1a[id=740,...]``) or plain ids."""
    out: set[str] = set()
    for v in value if isinstance(value, list) else [value]:
        if v is None:
            continue
        if isinstance(v, Mapping):
            if v.get("id") is not None:
                out.add(str(v["id"]))
        elif isinstance(v, int) and not isinstance(v, bool):
            out.add(str(v))
        elif isinstance(v, str):
            m = _SPRINT_STRING_ID.search(v)
            out.add(m.group(1) if m else v.strip())
    return frozenset(o for o in out if o)


def _changelog_ids(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    return frozenset(p.strip() for p in str(value).split(",") if p.strip())


@dataclass(frozen=True)
class Change:
    at: datetime
    before: Any
    after: Any


@dataclass
class JiraIssue:
    id: str
    key: str
    title: str
    created: datetime
    updated: datetime | None
    resolved: datetime | None
    subtask: bool
    status_id: str | None
    status_category: str | None
    sprints_now: frozenset[str]
    points_now: float | None
    sprint_changes: list[Change] = field(default_factory=list)
    status_changes: list[Change] = field(default_factory=list)
    point_changes: list[Change] = field(default_factory=list)
    changelog_complete: bool = True


def parse_issue(payload: Any, fields: JiraFields | None = None) -> JiraIssue:
    """An issue (search or Agile API), with its changelog when ``expand=changelog`` was asked."""
    fields = fields or JiraFields(None, None, None)
    i = _obj(payload, "issue")
    key = str(_req(i, "key", "issue"))
    what = f"issue {key}"
    f = _obj(_req(i, "fields", what), f"{what}.fields")
    status = f.get("status") if isinstance(f.get("status"), Mapping) else None
    category = None
    if status is not None and isinstance(status.get("statusCategory"), Mapping):
        category = str(status["statusCategory"].get("key") or "") or None
    raw_type = f.get("issuetype")
    itype: Mapping[str, Any] = raw_type if isinstance(raw_type, Mapping) else {}
    issue = JiraIssue(
        id=str(i.get("id") or key),
        key=key,
        title=str(f.get("summary") or ""),
        created=parse_time(_req(f, "created", what), f"{what}.created"),
        updated=_opt_time(f, "updated", what),
        resolved=_opt_time(f, "resolutiondate", what),
        subtask=bool(itype.get("subtask")),
        status_id=str(status["id"]) if status is not None and status.get("id") else None,
        status_category=category,
        sprints_now=sprint_ids(f.get(fields.sprint_id)) if fields.sprint_id else frozenset(),
        points_now=_points(f.get(fields.points_id)) if fields.points_id else None,
    )
    changelog = i.get("changelog")
    if isinstance(changelog, Mapping):
        histories = _list(changelog.get("histories"), f"{what}.changelog.histories")
        add_histories(issue, histories, fields)
        total = changelog.get("total")
        issue.changelog_complete = not (isinstance(total, int) and total > len(histories))
    return issue


def add_histories(issue: JiraIssue, histories: Sequence[Any], fields: JiraFields) -> None:
    """Add changelog histories (any order) to the issue's field timelines."""
    what = f"issue {issue.key}.changelog"
    for raw in histories:
        h = _obj(raw, what)
        at = parse_time(_req(h, "created", what), f"{what}.created")
        for rawitem in _list(h.get("items"), f"{what}.items"):
            item = _obj(rawitem, f"{what}.items")
            name = str(item.get("field") or "")
            fid = item.get("fieldId")
            if (fields.sprint_id and fid == fields.sprint_id) or name.lower() == "sprint":
                issue.sprint_changes.append(
                    Change(at, _changelog_ids(item.get("from")), _changelog_ids(item.get("to")))
                )
            elif name.lower() == "status" or fid == "status":
                issue.status_changes.append(Change(at, item.get("from"), item.get("to")))
            elif (fields.points_id and fid == fields.points_id) or (
                fields.points_name and name.lower() == fields.points_name.lower()
            ):
                issue.point_changes.append(
                    Change(at, _points(item.get("fromString")), _points(item.get("toString")))
                )
    for changes in (issue.sprint_changes, issue.status_changes, issue.point_changes):
        changes.sort(key=lambda c: c.at)


def _value_at(changes: Sequence[Change], t: datetime, current: Any, *, strict: bool = False) -> Any:
    """A field's value at ``t``: the last change at (or, ``strict``, before) ``t``, else the
    value before the first change, else the current value."""
    last: Any = None
    seen = False
    for c in changes:
        if c.at < t or (not strict and c.at == t):
            last, seen = c.after, True
        else:
            break
    if seen:
        return last
    return changes[0].before if changes else current


def sprint_items(
    issue: JiraIssue,
    sprints: Mapping[str, SprintRecord],
    status_categories: Mapping[str, str],
    now: datetime,
) -> dict[str, SprintItemRecord]:
    """The issue's part in each known sprint it was ever in, keyed by sprint provider id."""
    if issue.subtask:
        return {}
    universe = set(issue.sprints_now)
    for c in issue.sprint_changes:
        universe |= c.before | c.after
    out: dict[str, SprintItemRecord] = {}

    def members(t: datetime, strict: bool = False) -> frozenset[str]:
        if t < issue.created:
            return frozenset()
        return _value_at(issue.sprint_changes, t, issue.sprints_now, strict=strict)

    for pid in universe:
        sprint = sprints.get(pid)
        if sprint is None:
            continue
        start = sprint.started_at
        end = sprint.ended_at or now
        committed = pid in members(start)
        entered: datetime | None = None
        if not committed:
            if start < issue.created < end and pid in members(issue.created):
                entered = issue.created
            for c in issue.sprint_changes:
                if start < c.at < end and pid in c.after and pid not in c.before:
                    entered = c.at if entered is None else min(entered, c.at)
                    break
            if entered is None:
                continue
        in_at_end = pid in members(end, strict=sprint.ended_at is not None)
        status = _value_at(issue.status_changes, end, issue.status_id)
        category = status_categories.get(str(status)) if status is not None else None
        if category is None and status == issue.status_id:
            category = issue.status_category
        since = start if committed or entered is None else entered
        points = _value_at(issue.point_changes, since, issue.points_now)
        out[pid] = SprintItemRecord(
            key=issue.key,
            title=issue.title,
            committed=committed,
            added=not committed,
            removed=not in_at_end,
            completed=in_at_end and category == "done",
            points=points,
        )
    return out


def parse_incident(issue: JiraIssue, base_url: str | None) -> IncidentRecord:
    """A Jira issue used as an incident: started = created, resolved = resolution date."""
    return IncidentRecord(
        source="jira",
        provider_id=issue.id,
        title=f"{issue.key} {issue.title}".strip(),
        started_at=utc(issue.created),
        resolved_at=utc(issue.resolved) if issue.resolved else None,
        url=f"{base_url.rstrip('/')}/browse/{issue.key}" if base_url else None,
    )


def parse_issue_page(body: Any, fields: JiraFields | None = None) -> tuple[list[JiraIssue], int]:
    """(issues, total) of a search or Agile issue page."""
    b = _obj(body, "issue page")
    issues = [parse_issue(i, fields) for i in _list(b.get("issues"), "issue page.issues")]
    total = b.get("total")
    return issues, int(total) if isinstance(total, int) else len(issues)


# --------------------------------------------------------------------------- client


class JiraClient(RestClient):
    """Jira Cloud (email + API token, basic auth) or Data Center (personal access token)."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        if not settings.jira_url or not settings.jira_api_token:
            raise ConfigError(
                "Jira is not configured: set JIRA_URL and JIRA_API_TOKEN (and JIRA_EMAIL for "
                "Jira Cloud) in the environment or .env"
            )
        headers: dict[str, str] = {}
        auth: tuple[str, str] | None = None
        if settings.jira_email:
            auth = (settings.jira_email, settings.jira_api_token)
        else:
            headers["Authorization"] = f"Bearer {settings.jira_api_token}"
        super().__init__(
            "Jira",
            settings.jira_url,
            headers,
            auth=auth,
            hint="check JIRA_EMAIL and JIRA_API_TOKEN (Cloud) or the personal access token "
            "(Data Center), and that the account can browse the board or project",
            **kwargs,
        )
        self.legacy_search = False

    def sprints(self, board: int | str) -> Iterator[SprintRecord]:
        start = 0
        while True:
            body = self.get(
                f"/rest/agile/1.0/board/{board}/sprint",
                {"startAt": start, "maxResults": PAGE_SIZE},
            )
            page, is_last = parse_sprint_page(body)
            yield from page
            values = body.get("values") or []
            if is_last or not values:
                return
            start += len(values)

    def fields(self, points_field: str | None) -> JiraFields:
        return parse_fields(self.get("/rest/api/2/field"), points_field)

    def status_categories(self) -> dict[str, str]:
        return parse_statuses(self.get("/rest/api/2/status"))

    def issue_pages(
        self, path: str, jql: str, fields: JiraFields, *, changelog: bool
    ) -> Iterator[list[JiraIssue]]:
        wanted = list(ISSUE_FIELDS)
        wanted += [f for f in (fields.sprint_id, fields.points_id) if f]
        start = 0
        while True:
            params: dict[str, Any] = {
                "jql": jql,
                "startAt": start,
                "maxResults": PAGE_SIZE,
                "fields": ",".join(wanted),
            }
            if changelog:
                params["expand"] = "changelog"
            issues, total = parse_issue_page(self.get(path, params), fields)
            for issue in issues:
                if changelog and not issue.changelog_complete:
                    self._complete_changelog(issue, fields)
            yield issues
            start += len(issues)
            if not issues or start >= total:
                return

    def search_pages(self, jql: str, fields: JiraFields) -> Iterator[list[JiraIssue]]:
        """Issues matching ``jql``: Jira Cloud's ``/rest/api/2/search/jql`` (token paging; the
        older ``/search`` is gone there), else Data Center's ``/rest/api/2/search``."""
        if self.legacy_search:
            yield from self.issue_pages("/rest/api/2/search", jql, fields, changelog=False)
            return
        wanted = ",".join([*ISSUE_FIELDS, *(f for f in (fields.sprint_id, fields.points_id) if f)])
        token: str | None = None
        while True:
            params: dict[str, Any] = {"jql": jql, "maxResults": PAGE_SIZE, "fields": wanted}
            if token:
                params["nextPageToken"] = token
            try:
                body = self.get("/rest/api/2/search/jql", params)
            except SourceError as exc:
                if token is None and exc.status in (404, 405):
                    self.legacy_search = True
                    yield from self.issue_pages("/rest/api/2/search", jql, fields, changelog=False)
                    return
                raise
            issues, _ = parse_issue_page(body, fields)
            yield issues
            token = body.get("nextPageToken") if isinstance(body, Mapping) else None
            if not issues or not token or (isinstance(body, Mapping) and body.get("isLast")):
                return

    def _complete_changelog(self, issue: JiraIssue, fields: JiraFields) -> None:
        """Cloud returns only the latest 100 histories inline; read them all."""
        issue.sprint_changes.clear()
        issue.status_changes.clear()
        issue.point_changes.clear()
        start = 0
        while True:
            body = _obj(
                self.get(
                    f"/rest/api/2/issue/{issue.key}/changelog",
                    {"startAt": start, "maxResults": 100},
                ),
                "changelog page",
            )
            values = _list(body.get("values"), "changelog page.values")
            add_histories(issue, values, fields)
            start += len(values)
            total = body.get("total")
            if not values or body.get("isLast") or (isinstance(total, int) and start >= total):
                break
        issue.changelog_complete = True


# --------------------------------------------------------------------------- sync


def _jql_time(dt: datetime) -> str:
    return dt.strftime("%Y/%m/%d %H:%M")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _team_id(session: Session, team: TeamConfig) -> int:
    tid = session.scalar(select(Team.id).where(Team.name == team.name))
    if tid is None:
        team_row = Team(name=team.name, timezone=team.timezone)
        session.add(team_row)
        session.flush()
        tid = team_row.id
    return tid


def _since(cursor: str | None, full: bool, now: datetime) -> datetime:
    if full or not cursor:
        return now - HISTORY
    return max(datetime.fromisoformat(cursor) - JQL_MARGIN, now - HISTORY)


def sync_sprints(
    client: JiraClient,
    sessions: sessionmaker[Session],
    team: TeamConfig,
    *,
    full: bool,
    report: Callable[[str], None],
    now: datetime,
) -> int:
    spec = team.sprints
    assert isinstance(spec, JiraSprints)
    board = spec.board
    scope = f"board:{board}"
    stored = 0
    sprints = {s.provider_id: s for s in client.sprints(board)}
    with unit_of_work(sessions) as s:
        tid = _team_id(s, team)
        ids = {pid: store_sprint(s, tid, "jira", sp) for pid, sp in sprints.items()}
        cursor = get_cursor(s, "jira", scope, "sprint-issues")
    stored += len(ids)
    report(f"{team.name}: {len(ids)} sprints of Jira board {board}")
    if not ids:
        return stored
    fields = client.fields(spec.points_field)
    categories = client.status_categories()
    since = _since(cursor, full, now)
    jql = f'updated >= "{_jql_time(since)}" ORDER BY updated ASC'
    seen = 0
    for page in client.issue_pages(
        f"/rest/agile/1.0/board/{board}/issue", jql, fields, changelog=True
    ):
        latest = max((i.updated for i in page if i.updated), default=None)
        with unit_of_work(sessions) as s:
            for issue in page:
                for pid, item in sprint_items(issue, sprints, categories, now).items():
                    stored += store_sprint_items(s, ids[pid], [item])
            if latest is not None:
                prev = get_cursor(s, "jira", scope, "sprint-issues")
                if prev is None or datetime.fromisoformat(prev) < latest:
                    set_cursor(s, "jira", scope, "sprint-issues", latest.isoformat(), now)
        seen += len(page)
        report(f"{team.name}: {seen} issues of Jira board {board} read")
    return stored


def sync_incidents(
    client: JiraClient,
    sessions: sessionmaker[Session],
    team: TeamConfig,
    *,
    full: bool,
    report: Callable[[str], None],
    now: datetime,
    base_url: str | None,
) -> int:
    spec = team.incidents
    assert isinstance(spec, JiraIncidents)
    project, issue_type = spec.project, spec.issue_type
    scope = f"{project}/{issue_type}"
    with unit_of_work(sessions) as s:
        cursor = get_cursor(s, "jira", scope, "incidents")
    since = _since(cursor, full, now)
    jql = f"project = {_quote(str(project))} AND issuetype = {_quote(issue_type)}"
    jql += f' AND updated >= "{_jql_time(since)}"'
    jql += " ORDER BY updated ASC"
    stored = 0
    for page in client.search_pages(jql, JiraFields(None, None, None)):
        latest = max((i.updated for i in page if i.updated), default=None)
        with unit_of_work(sessions) as s:
            tid = _team_id(s, team)
            stored += len(upsert_incidents(s, tid, [parse_incident(i, base_url) for i in page]))
            if latest is not None:
                prev = get_cursor(s, "jira", scope, "incidents")
                if prev is None or datetime.fromisoformat(prev) < latest:
                    set_cursor(s, "jira", scope, "incidents", latest.isoformat(), now)
        report(f"{team.name}: {stored} Jira incidents from {project} stored")
    return stored


def sync_team(
    settings: Settings,
    sessions: sessionmaker[Session],
    team: TeamConfig,
    *,
    full: bool,
    report: Callable[[str], None],
    now: datetime | None = None,
    client: JiraClient | None = None,
) -> int:
    """Sync the team's Jira sprints and/or Jira incidents; returns the records stored."""
    wants_sprints = isinstance(team.sprints, JiraSprints)
    wants_incidents = isinstance(team.incidents, JiraIncidents)
    if not wants_sprints and not wants_incidents:
        return 0
    at = utc(now) if now is not None else utc(datetime.now(UTC))
    own = client is None
    jira = client or JiraClient(settings)
    try:
        stored = 0
        if wants_sprints:
            stored += sync_sprints(jira, sessions, team, full=full, report=report, now=at)
        if wants_incidents:
            stored += sync_incidents(
                jira, sessions, team, full=full, report=report, now=at, base_url=settings.jira_url
            )
        return stored
    finally:
        if own:
            jira.close()


def stored_sprints(session: Session, team_id: int) -> list[Sprint]:
    """The team's Jira sprints in the store, oldest first (for checks and reports)."""
    return list(
        session.scalars(
            select(Sprint)
            .where(Sprint.team_id == team_id, Sprint.source == "jira")
            .order_by(Sprint.started_at)
        )
    )
