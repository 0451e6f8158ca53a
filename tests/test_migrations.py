"""Alembic migrations build exactly the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from bot.store.migrate import current_revision, upgrade
from bot.store.models import Base
from bot.store.session import make_engine, normalise_url
from tests.conftest import PG_URL


def _check(url: str) -> None:
    eng = make_engine(url)
    try:
        upgrade(eng)
        assert current_revision(eng) is not None
        with eng.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], diff
        names = set(inspect(eng).get_table_names())
        assert set(Base.metadata.tables) <= names
        idx = {i["name"] for i in inspect(eng).get_indexes("pull_requests")}
        assert "ix_pull_requests_repo_merged" in idx
        upgrade(eng)  # running it again changes nothing
    finally:
        eng.dispose()


def test_sqlite_upgrade_matches_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    _check(url)
    eng = make_engine(url)
    with eng.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
    eng.dispose()


if PG_URL.startswith("postgres"):

    def test_postgres_upgrade_matches_models():
        schema = f"kpibot_m_{uuid.uuid4().hex[:8]}"
        admin = make_engine(normalise_url(PG_URL))
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            sep = "&" if "?" in PG_URL else "?"
            _check(f"{normalise_url(PG_URL)}{sep}options=-csearch_path%3D{schema}")
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
