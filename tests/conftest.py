"""Test databases: a fresh SQLite file per test by default, or PostgreSQL when
``KPIBOT_TEST_DATABASE_URL`` names one (each test run gets its own schema, emptied per test).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from bot.store.migrate import alembic_config
from bot.store.models import Base
from bot.store.session import make_engine, normalise_url, session_factory

PG_URL = os.environ.get("KPIBOT_TEST_DATABASE_URL", "")
FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


def create_schema(url: str) -> None:
    """The schema as ``kpibot db upgrade`` leaves it (faster than running every migration)."""
    from alembic import command

    eng = make_engine(url)
    Base.metadata.create_all(eng)
    command.stamp(alembic_config(eng), "head")
    eng.dispose()


def fixtures_dir() -> Path:
    """The recorded payloads beside the checkout; skip (or fail on CI) when missing."""
    if not FIXTURES.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"recorded fixtures missing at {FIXTURES}")
        pytest.skip(f"recorded fixtures not found at {FIXTURES}")
    return FIXTURES


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str | None]:
    if not PG_URL.startswith("postgres"):
        yield None
        return
    base = normalise_url(PG_URL)
    schema = f"kpibot_t_{uuid.uuid4().hex[:10]}"
    admin = make_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # the database must be there when asked for
        pytest.fail(f"PostgreSQL at {PG_URL} is not reachable: {exc}")
    sep = "&" if "?" in base else "?"
    url = f"{base}{sep}options=-csearch_path%3D{schema}"
    create_schema(url)
    yield url
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def db_url(tmp_path: Path, pg_schema_url: str | None) -> Iterator[str]:
    if pg_schema_url is None:
        url = f"sqlite:///{tmp_path / 'kpibot-test.db'}"
        create_schema(url)
        yield url
        return
    empty(pg_schema_url)
    yield pg_schema_url


def empty(url: str) -> None:
    """Delete every row of the PostgreSQL schema at ``url`` (identities restarted)."""
    eng = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with eng.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    eng.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    s = session_factory(engine)()
    yield s
    s.rollback()
    s.close()
