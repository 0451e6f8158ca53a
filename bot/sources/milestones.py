"""GitHub milestones as sprints, for teams without Jira (``sprints: {source: github-milestones}``).

A milestone with a due date is a sprint of its repository. It *starts* at the due date of the
repository's previous milestone (by due date; for the first one, one median milestone length --
the median gap between consecutive due dates -- before its own; with a single milestone, when it
was created); it *ends* at its due date. Work items are the issues (not pull requests) ever in
it, from the repository's ``milestoned``/``demilestoned`` issue events and the issues in it
now: *committed* when in the milestone at its start, *added* when they joined later, *removed*
when they left before the due date, *completed* when in it at the due date and closed by then.
GitHub issues carry no story points, so predictability counts items.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.settings import MilestoneSprints, Settings, TeamConfig
from bot.sources.github import GitHubPayloadError, parse_timestamp
from bot.sources.github_client import GitHubClient
from bot.sources.pagerduty import team_id
from bot.store.records import SprintItemRecord, SprintRecord
from bot.store.session import unit_of_work, utc
from bot.store.writes import store_sprint, store_sprint_items

PER_PAGE = 100


@dataclass(frozen=True)
class Milestone:
    number: int
    title: str
    state: str
    created_at: datetime
    due_on: datetime | None
    closed_at: datetime | None


@dataclass
class IssueHistory:
    number: int
    title: str
    created_at: datetime
    closed_at: datetime | None
    milestone_now: str | None
    # (time, milestone title, True for milestoned / False for demilestoned), oldest first
    events: list[tuple[datetime, str, bool]] = field(default_factory=list)


def _obj(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise GitHubPayloadError(f"{what}: expected an object, got {type(value).__name__}")
    return value


def _opt_ts(obj: Mapping[str, Any], key: str, what: str) -> datetime | None:
    value = obj.get(key)
    return None if value is None else parse_timestamp(value, f"{what}.{key}")


def parse_milestone(payload: Any) -> Milestone:
    m = _obj(payload, "milestone")
    what = f"milestone {m.get('number', '?')}"
    number = m.get("number")
    if not isinstance(number, int):
        raise GitHubPayloadError(f"{what}: missing field 'number'")
    return Milestone(
        number=number,
        title=str(m.get("title") or ""),
        state=str(m.get("state") or "open"),
        created_at=parse_timestamp(m.get("created_at"), f"{what}.created_at"),
        due_on=_opt_ts(m, "due_on", what),
        closed_at=_opt_ts(m, "closed_at", what),
    )


def _issue(payload: Any) -> IssueHistory | None:
    i = _obj(payload, "issue")
    if i.get("pull_request") is not None:
        return None
    what = f"issue #{i.get('number', '?')}"
    number = i.get("number")
    if not isinstance(number, int):
        raise GitHubPayloadError(f"{what}: missing field 'number'")
    ms = i.get("milestone")
    return IssueHistory(
        number=number,
        title=str(i.get("title") or ""),
        created_at=parse_timestamp(i.get("created_at"), f"{what}.created_at"),
        closed_at=_opt_ts(i, "closed_at", what) if i.get("state") == "closed" else None,
        milestone_now=str(ms["title"]) if isinstance(ms, Mapping) and ms.get("title") else None,
    )


def collect_issues(
    milestone_issues: Iterable[Any], events: Iterable[Any]
) -> dict[int, IssueHistory]:
    """Issue histories from the issues in milestones now and the repository's issue events."""
    out: dict[int, IssueHistory] = {}
    for raw in milestone_issues:
        issue = _issue(raw)
        if issue is not None:
            out[issue.number] = issue
    for raw in events:
        e = _obj(raw, "issue event")
        kind = e.get("event")
        if kind not in ("milestoned", "demilestoned"):
            continue
        ms = e.get("milestone")
        if not isinstance(ms, Mapping) or not ms.get("title") or e.get("issue") is None:
            continue
        number = _obj(e["issue"], "issue event.issue").get("number")
        issue = out.get(number) if isinstance(number, int) else None
        if issue is None:
            issue = _issue(e["issue"])
            if issue is None:
                continue
            out[issue.number] = issue
        at = parse_timestamp(e.get("created_at"), "issue event.created_at")
        issue.events.append((at, str(ms["title"]), kind == "milestoned"))
    for issue in out.values():
        issue.events.sort(key=lambda x: x[0])
    return out


def sprints_of(milestones: Sequence[Milestone], now: datetime) -> dict[str, SprintRecord]:
    """Milestone title -> its sprint (milestones without a due date are not sprints)."""
    dated = sorted(
        (m for m in milestones if m.due_on is not None), key=lambda m: m.due_on or m.created_at
    )
    out: dict[str, SprintRecord] = {}
    dues = [m.due_on for m in dated if m.due_on is not None]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(dues) if b > a]
    previous: datetime | None = None
    if gaps:
        previous = dues[0] - timedelta(seconds=statistics.median(gaps))
    for m in dated:
        assert m.due_on is not None
        start = m.created_at if previous is None else previous
        previous = m.due_on
        if start >= m.due_on:  # two milestones due at the same time: the later one's own span
            start = min(m.created_at, m.due_on)
        ended = m.due_on <= now or m.state == "closed"
        out[m.title] = SprintRecord(
            provider_id=str(m.number),
            name=m.title,
            state="closed" if ended else "active",
            started_at=start,
            ended_at=m.due_on if ended else None,
        )
    return out


def milestone_at(issue: IssueHistory, t: datetime) -> str | None:
    """The title of the milestone the issue was in at ``t`` (an issue has at most one)."""
    if t < issue.created_at:
        return None
    if issue.events:
        _, first_title, first_added = issue.events[0]
        value = None if first_added else first_title
    else:
        value = issue.milestone_now
    for at, name, added in issue.events:
        if at > t:
            break
        if added:
            value = name
        elif value == name:
            value = None
    return value


def milestone_items(
    issue: IssueHistory, sprints: Mapping[str, SprintRecord], now: datetime
) -> dict[str, SprintItemRecord]:
    """The issue's part in each milestone-sprint it was ever in, keyed by milestone title."""
    titles = {name for _, name, _ in issue.events}
    if issue.milestone_now:
        titles.add(issue.milestone_now)
    out: dict[str, SprintItemRecord] = {}
    for title in titles:
        sprint = sprints.get(title)
        if sprint is None:
            continue
        start, end = sprint.started_at, sprint.ended_at or now
        committed = milestone_at(issue, start) == title
        joined = [
            at for at, name, added in issue.events if name == title and added and start < at <= end
        ]
        if not committed and not joined:
            born_in = milestone_at(issue, issue.created_at) == title
            if not (start < issue.created_at <= end and born_in):
                continue
        at_end = milestone_at(issue, end) == title
        out[title] = SprintItemRecord(
            key=f"#{issue.number}",
            title=issue.title,
            committed=committed,
            added=not committed,
            removed=not at_end,
            completed=at_end and issue.closed_at is not None and issue.closed_at <= end,
            points=None,
        )
    return out


def sync_team(
    settings: Settings,
    sessions: sessionmaker[Session],
    team: TeamConfig,
    *,
    full: bool,
    report: Callable[[str], None],
    now: datetime | None = None,
    client: GitHubClient | None = None,
) -> int:
    """Store the team's milestones as sprints with their issues; returns the records stored.

    Milestones are few and their history is re-read every run (``full`` changes nothing).
    """
    spec = team.sprints
    if not isinstance(spec, MilestoneSprints):
        return 0
    repos = list(spec.repos or team.repos)
    at = utc(now) if now is not None else utc(datetime.now(UTC))
    own = client is None
    gh = client or GitHubClient.from_settings(settings)
    stored = 0
    try:
        for full_name in repos:
            milestones = [
                parse_milestone(m)
                for page in gh.paginate(
                    f"/repos/{full_name}/milestones",
                    {"state": "all", "per_page": PER_PAGE, "sort": "due_on"},
                    repo=full_name,
                )
                for m in (page.body or [])
            ]
            sprints = sprints_of(milestones, at)
            if not sprints:
                report(f"{team.name}: {full_name} has no milestones with a due date")
                continue
            members: list[Any] = []
            for m in milestones:
                if m.title in sprints:
                    for page in gh.paginate(
                        f"/repos/{full_name}/issues",
                        {"milestone": m.number, "state": "all", "per_page": PER_PAGE},
                        repo=full_name,
                    ):
                        members.extend(page.body or [])
            horizon = min(s.started_at for s in sprints.values())
            events: list[Any] = []
            for page in gh.paginate(
                f"/repos/{full_name}/issues/events", {"per_page": PER_PAGE}, repo=full_name
            ):
                body = page.body or []
                events.extend(body)
                oldest = [e.get("created_at") for e in body if isinstance(e, Mapping)]
                if oldest and all(
                    isinstance(t, str) and parse_timestamp(t, "event") < horizon for t in oldest
                ):
                    break
            issues = collect_issues(members, events)
            with unit_of_work(sessions) as s:
                tid = team_id(s, team)
                ids = {
                    title: store_sprint(
                        s, tid, "github-milestones",
                        SprintRecord(f"{full_name}#{sp.provider_id}", sp.name, sp.state,
                                     sp.started_at, sp.ended_at),
                    )
                    for title, sp in sprints.items()
                }  # fmt: skip
                stored += len(ids)
                for issue in issues.values():
                    for title, item in milestone_items(issue, sprints, at).items():
                        stored += store_sprint_items(s, ids[title], [item])
            report(
                f"{team.name}: {len(sprints)} milestones of {full_name} with {len(issues)} issues"
            )
    finally:
        if own:
            gh.close()
    return stored
