"""Teams made of people and paths in the store: membership history, who is who in chat, and
each such team's PRs (``team_pull_requests``), kept current so that a report reads a team's
population along ``(team_id, merged_at)`` instead of filtering a monorepo's PRs.

The rule itself is :class:`bot.ingest.rules.TeamPopulation`; this module applies it when PRs
are written (:func:`refresh`, with the written ids), when a team's definition changes (every
PR of its repositories) and when its membership changes (the PRs of the logins that joined or
left).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from bot.ingest.rules import Populations, TeamPopulation
from bot.settings import Config, TeamConfig
from bot.settings import Person as PersonConfig
from bot.store.models import (
    Person,
    PullRequest,
    PullRequestFile,
    Repository,
    Team,
    TeamMember,
    TeamPullRequest,
)

CHUNK = 2000


def definition_key(team: TeamConfig) -> str | None:
    """Fingerprint of what selects a team's PRs (None: the team counts all its repositories'
    PRs). Membership is not in it: its changes are applied login by login."""
    if not team.selects_prs:
        return None
    raw = json.dumps(
        [
            sorted(r.lower() for r in team.repos),
            team.has_members,
            list(team.paths),
            list(team.path_patterns) if team.paths else [],
        ]
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


# --------------------------------------------------------------------------- membership


def record_members(
    session: Session, team_id: int, source: str, logins: Iterable[str], now: datetime | None
) -> set[str]:
    """Make ``logins`` the current members of ``source`` (``config`` or ``github``), keeping
    the history: a login that joined gets a span from ``now``, one that left has its span
    closed at ``now``. The first list seen for a team and source is taken as always having
    been so (no ``since``); without ``now`` the list replaces the history. Returns the logins
    whose membership changed."""
    wanted = {x.lower() for x in logins}
    rows = list(
        session.scalars(
            select(TeamMember).where(TeamMember.team_id == team_id, TeamMember.source == source)
        )
    )
    first = not rows
    current = {r.login: r for r in rows if r.until is None}
    added = wanted - set(current)
    removed = set(current) - wanted
    for login in sorted(added):
        since = None if first or now is None else now
        session.add(TeamMember(team_id=team_id, login=login, source=source, since=since))
    for login in removed:
        row = current[login]
        if now is None:
            session.delete(row)
        else:
            row.until = now
    if added or removed:
        session.flush()
    return added | removed


def membership(session: Session, team_id: int) -> dict[str, list[Any]]:
    """login -> its membership spans (since, until) of the team, from every source."""
    out: dict[str, list[Any]] = {}
    for login, since, until in session.execute(
        select(TeamMember.login, TeamMember.since, TeamMember.until).where(
            TeamMember.team_id == team_id
        )
    ):
        out.setdefault(login, []).append((since, until))
    return out


def current_members(session: Session, team_id: int) -> set[str]:
    """The logins that are members now (an open span)."""
    return set(
        session.scalars(
            select(TeamMember.login).where(
                TeamMember.team_id == team_id, TeamMember.until.is_(None)
            )
        )
    )


def sync_people(session: Session, people: Sequence[PersonConfig]) -> None:
    """Store the identity mapping; a Slack id looked up by e-mail is kept until the
    configuration gives one (or the address changes)."""
    stored = {p.github: p for p in session.scalars(select(Person))}
    for cfg in people:
        row = stored.get(cfg.github)
        if row is None:
            row = Person(github=cfg.github, slack_configured=False)
            session.add(row)
        if cfg.email != row.email:
            row.email = cfg.email
            row.slack_lookup_at = None  # a new address is looked up again
            if not row.slack_configured:
                row.slack_user = None
        if cfg.slack is not None:
            row.slack_user, row.slack_configured = cfg.slack, True
        elif row.slack_configured:
            row.slack_user, row.slack_configured = None, False
        row.teams_user = cfg.teams
    session.flush()


def emails_to_look_up(session: Session) -> list[tuple[int, str]]:
    """(person id, e-mail) of the people with an address but no Slack id, never looked up."""
    rows = session.execute(
        select(Person.id, Person.email).where(
            Person.email.is_not(None),
            Person.slack_user.is_(None),
            Person.slack_lookup_at.is_(None),
        )
    ).tuples()
    return [(pid, email) for pid, email in rows if email]


def store_lookup(session: Session, person_id: int, slack_user: str | None, at: datetime) -> None:
    """Keep a ``users.lookupByEmail`` answer (None: no such user), so it is asked once."""
    row = session.get(Person, person_id)
    if row is not None:
        row.slack_user = slack_user
        row.slack_lookup_at = at


def user_team_ids(session: Session, platform: str, user: str) -> list[int]:
    """The teams a chat user is a member of now, through the identity mapping."""
    column = Person.slack_user if platform == "slack" else Person.teams_user
    return sorted(
        set(
            session.scalars(
                select(TeamMember.team_id)
                .join(Person, Person.github == TeamMember.login)
                .where(column == user, TeamMember.until.is_(None))
            )
        )
    )


def chat_user_of(session: Session, platform: str, login: str | None) -> str | None:
    """The chat id of a GitHub login on ``platform``, when the identity mapping knows it."""
    if not login:
        return None
    column = Person.slack_user if platform == "slack" else Person.teams_user
    return session.scalar(select(column).where(Person.github == login.lower()))


# --------------------------------------------------------------------------- populations


def _repo_ids(session: Session, team: TeamConfig) -> list[int]:
    names = [r.lower() for r in team.repos]
    if not names:
        return []
    return list(
        session.scalars(select(Repository.id).where(func.lower(Repository.full_name).in_(names)))
    )


def refresh(
    session: Session,
    teams: Sequence[TeamConfig],
    *,
    pr_ids: Collection[int] | None = None,
    authors: Collection[str] | None = None,
) -> int:
    """Recompute which PRs count for ``teams`` (those defined by people or paths; the others
    lose any rows): all their repositories' PRs, or only ``pr_ids``, or only PRs by
    ``authors``. Teams sharing repositories are done in one pass over the PRs and their files
    (a monorepo's are read once, not once per team). Returns the rows written."""
    team_ids = {
        name: tid
        for name, tid in session.execute(
            select(Team.name, Team.id).where(Team.name.in_([t.name for t in teams]))
        ).tuples()
    }
    whole = pr_ids is None and authors is None
    work: list[tuple[int, set[int]]] = []  # (team id, its repositories), by rule index
    rules: list[TeamPopulation] = []
    for team in teams:
        tid = team_ids.get(team.name)
        if tid is None:
            continue
        if not team.selects_prs or whole:
            session.execute(delete(TeamPullRequest).where(TeamPullRequest.team_id == tid))
        if team.selects_prs:
            members = membership(session, tid) if team.has_members else None
            rules.append(TeamPopulation(team, members))
            work.append((tid, set(_repo_ids(session, team))))
    repo_ids = sorted(set().union(*(repos for _, repos in work)))
    if not repo_ids or (authors is not None and not authors):
        return 0
    populations = Populations(rules)
    candidates = {rid: [i for i, (_, repos) in enumerate(work) if rid in repos] for rid in repo_ids}
    base = select(
        PullRequest.id,
        PullRequest.repository_id,
        PullRequest.author_login,
        PullRequest.created_at,
        PullRequest.merged_at,
    ).where(PullRequest.repository_id.in_(repo_ids))
    if authors is not None:
        base = base.where(func.lower(PullRequest.author_login).in_(sorted(authors)))
    written = 0
    for chunk in _pr_chunks(session, base, pr_ids):
        ids = [r[0] for r in chunk]
        files: dict[int, list[tuple[str, bool]]] = {}
        if populations.needs_files:
            for pr, path, generated in session.execute(
                select(
                    PullRequestFile.pull_request_id,
                    PullRequestFile.path,
                    PullRequestFile.generated,
                ).where(PullRequestFile.pull_request_id.in_(ids))
            ):
                files.setdefault(pr, []).append((path, bool(generated)))
        rows = [
            {"team_id": work[i][0], "pull_request_id": pr, "merged_at": merged}
            for pr, repo, author, created, merged in chunk
            for i in populations.teams_of(
                candidates[repo], author, created, merged, files.get(pr, ())
            )
        ]
        if not whole:
            session.execute(
                delete(TeamPullRequest).where(
                    TeamPullRequest.team_id.in_([tid for tid, _ in work]),
                    TeamPullRequest.pull_request_id.in_(ids),
                )
            )
        if rows:
            session.execute(insert(TeamPullRequest), rows)
            written += len(rows)
    return written


def _pr_chunks(session: Session, base: Any, pr_ids: Collection[int] | None) -> Iterable[list[Any]]:
    """The selected PR rows, a chunk of ids at a time (a monorepo's PRs never sit in memory
    at once; only their ids do)."""
    if pr_ids is None:
        pr_ids = list(session.scalars(base.with_only_columns(PullRequest.id)))
    wanted = sorted(pr_ids)
    for i in range(0, len(wanted), CHUNK):
        rows = list(session.execute(base.where(PullRequest.id.in_(wanted[i : i + CHUNK]))))
        if rows:
            yield rows


def teams_of_repository(config: Config, full_name: str) -> tuple[TeamConfig, ...]:
    """The teams defined by people or paths that list the repository."""
    name = full_name.lower()
    return tuple(t for t in config.teams if t.selects_prs and name in (r.lower() for r in t.repos))


def sync_team(session: Session, team: TeamConfig, team_id: int, now: datetime | None) -> None:
    """Bring one team's membership (from ``members:``) and PR selection up to its
    configuration: everything again when the definition changed, else the PRs of the logins
    that joined or left."""
    # the team's row, locked (PostgreSQL): processes starting together do this one at a time
    row = session.execute(select(Team).where(Team.id == team_id).with_for_update()).scalar_one()
    changed = record_members(session, team_id, "config", team.members, now)
    key = definition_key(team)
    if row.population != key:
        refresh(session, [team])
        row.population = key
    elif changed and key is not None:
        refresh(session, [team], authors=changed)


def apply_github_members(
    session: Session, team: TeamConfig, team_id: int, logins: Iterable[str], now: datetime
) -> set[str]:
    """Record the members GitHub lists for the team's ``github_team`` now and recompute the
    PRs of those who joined or left; returns them."""
    changed = record_members(session, team_id, "github", logins, now)
    if changed:
        refresh(session, [team], authors=changed)
    return changed
