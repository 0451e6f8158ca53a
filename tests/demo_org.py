"""The demo organisation loaded once into a SQLite file of its own, for the tests that read
it (golden files, charts): ``kpibot demo --as-of 2026-11-20``, read at 2026-11-20 12:00 UTC."""

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
from tests.conftest import create_schema

AS_OF = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


@dataclass
class DemoOrg:
    factory: sessionmaker[Session]
    config: Config

    def engine(self, session: Session, team: str) -> TeamEngine:
        return TeamEngine(session, self.config.team(team))


def load_demo(root: Path) -> Iterator[DemoOrg]:
    url = f"sqlite:///{root / 'demo.db'}"
    create_schema(url)
    eng = make_engine(url)
    factory = session_factory(eng)
    config = demo.demo_config()
    with factory() as s:
        demo.load(s, config, AS_OF)
        s.commit()
    yield DemoOrg(factory, config)
    eng.dispose()
