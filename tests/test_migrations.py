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


def test_0006_stores_unknown_contents_and_recomputes_every_deployment(tmp_path):
    """Contents computed before 0006 may come from the merged-PR fallback: all are computed
    again at the next sync; the new column starts false."""
    eng = make_engine(f"sqlite:///{tmp_path / 'm4.db'}")
    try:
        upgrade(eng, "0005")
        with eng.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO repositories (id, full_name, provider, default_branch) "
                    "VALUES (1, 'acme/api', 'github', 'main')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO deployments (id, repository_id, source, provider_id, "
                    "environment, commit_sha, status, finished_at, contents_computed_at) VALUES "
                    "(1, 1, 'webhook', 'd1', 'production', 'abc1234', 'success', "
                    "'2026-11-02 10:00:00', '2026-11-02 10:00:00')"
                )
            )
        upgrade(eng)
        assert current_revision(eng) == "0006"
        with eng.connect() as conn:
            row = conn.execute(
                text("SELECT contents_computed_at, contents_unknown FROM deployments")
            ).one()
        assert row[0] is None and not row[1]
    finally:
        eng.dispose()
