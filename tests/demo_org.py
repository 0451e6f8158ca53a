"""The demo organisation loaded once into a SQLite file of its own (or into the test run's
PostgreSQL schema), for the tests that read it (golden files, charts, the chat surfaces):
``kpibot demo --as-of 2026-11-20``, read at 2026-11-20 12:00 UTC."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from bot import demo
from bot.metrics.engine import TeamEngine
from bot.settings import Config
from bot.store.session import make_engine, session_factory
from tests.conftest import create_schema, empty

AS_OF = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


@dataclass
class DemoOrg:
    factory: sessionmaker[Session]
    config: Config
    url: str = ""  # the database's URL

    def engine(self, session: Session, team: str) -> TeamEngine:
        return TeamEngine(session, self.config.team(team))


def load_demo(root: Path, pg_url: str | None = None) -> Iterator[DemoOrg]:
    """The demo in a SQLite file in ``root``, or with ``pg_url`` (the ``pg_schema_url``
    fixture: set when the run is on PostgreSQL) in that schema, emptied before and after."""
    url = pg_url or f"sqlite:///{root / 'demo.db'}"
    if pg_url:
        empty(pg_url)
    else:
        create_schema(url)
    eng = make_engine(url)
    factory = session_factory(eng)
    config = demo.demo_config()
    with factory() as s:
        demo.load(s, config, AS_OF)
        s.commit()
    try:
        yield DemoOrg(factory, config, url)
    finally:
        eng.dispose()
        if pg_url:
            empty(pg_url)
