"""Keep the teams and repositories of kpibot.yml in the store (the file is the source of truth)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bot.settings import Config
from bot.store import population
from bot.store.models import Repository, Team, TeamRepository


def sync_teams(session: Session, config: Config, now: datetime | None = None) -> dict[str, int]:
    """Upsert every configured team and repository; returns team name -> id.

    Teams removed from the file keep their rows (their action items and history stay), but
    lose their repository links. Membership from ``members:`` is recorded with ``now`` (see
    :func:`bot.store.population.record_members`), the identity mapping stored, and the PRs
    of teams defined by people or paths selected again where their definition changed.
    """
    ids: dict[str, int] = {}
    for tc in config.teams:
        team = session.scalar(select(Team).where(Team.name == tc.name))
        if team is None:
            team = Team(name=tc.name, timezone=tc.timezone)
            session.add(team)
            session.flush()
        else:
            team.timezone = tc.timezone
        ids[tc.name] = team.id
        wanted: set[int] = set()
        for full_name in tc.repos:
            repo = session.scalar(
                select(Repository).where(func.lower(Repository.full_name) == full_name.lower())
            )
            if repo is None:
                repo = Repository(full_name=full_name)
                session.add(repo)
                session.flush()
            wanted.add(repo.id)
        have = set(
            session.scalars(
                select(TeamRepository.repository_id).where(TeamRepository.team_id == team.id)
            )
        )
        for rid in wanted - have:
            session.add(TeamRepository(team_id=team.id, repository_id=rid))
        if have - wanted:
            session.execute(
                delete(TeamRepository).where(
                    TeamRepository.team_id == team.id,
                    TeamRepository.repository_id.in_(list(have - wanted)),
                )
            )
    session.flush()
    population.sync_people(session, config.people)
    for tc in config.teams:
        population.sync_team(session, tc, ids[tc.name], now)
    session.flush()
    return ids


def production_envs_by_repo(session: Session, config: Config) -> dict[int, set[str]]:
    """Repository id -> the production environments of every team that lists it."""
    out: dict[int, set[str]] = {}
    for tc in config.teams:
        for full_name in tc.repos:
            rid = session.scalar(
                select(Repository.id).where(func.lower(Repository.full_name) == full_name.lower())
            )
            if rid is not None:
                out.setdefault(rid, set()).update(tc.production_environments)
    return out
