"""Engines and sessions.

``DATABASE_URL`` defaults to ``sqlite:///kpibot.db``. SQLite runs in WAL mode with a busy
timeout so that the bot, a sync and the scheduler can share one file. ``postgresql://`` URLs
use psycopg 3.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import DatabaseNotReady, KpibotError

SQLITE_BUSY_TIMEOUT_MS = 10_000


def normalise_url(url: str) -> str:
    """Map the plain driver names users write onto the drivers kpibot ships with."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


#: database backends kpibot runs on (SQLite embedded, PostgreSQL through psycopg 3)
SUPPORTED_BACKENDS = ("sqlite", "postgresql")
_URL_EXAMPLES = "sqlite:///kpibot.db or postgresql://user:password@host:5432/kpibot"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """The engine for ``DATABASE_URL``; a URL kpibot cannot use is a :class:`KpibotError`
    naming the variable, what is supported and what to write (never the URL itself, which
    may hold a password)."""
    sa_url = _parse_url(url)
    try:
        if sa_url.get_backend_name() == "sqlite":
            engine = create_engine(
                sa_url,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
                **kwargs,
            )
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(
                sa_url, pool_pre_ping=True, connect_args=_postgresql_args(sa_url), **kwargs
            )
    except (ImportError, NoSuchModuleError) as exc:  # a driver named in the URL is missing
        missing = getattr(exc, "name", None)
        what = f" (Python module '{missing}' is missing)" if missing else ""
        raise KpibotError(
            f"DATABASE_URL asks for the database driver '{sa_url.drivername}', which is not "
            f"installed{what}: write the URL without a driver ({_URL_EXAMPLES}); kpibot ships "
            "with SQLite and psycopg 3 for PostgreSQL"
        ) from exc
    return engine


def _parse_url(url: str) -> URL:
    try:
        sa_url = make_url(normalise_url(url))
    except Exception as exc:  # sqlalchemy raises ArgumentError/ValueError with the URL in it
        raise KpibotError(
            "DATABASE_URL is not a database URL kpibot can read: kpibot supports sqlite and "
            f"postgresql; set it to e.g. {_URL_EXAMPLES}"
        ) from exc
    backend = sa_url.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise KpibotError(
            f"DATABASE_URL is a '{backend}' database, which kpibot does not support: kpibot "
            f"supports sqlite and postgresql; set DATABASE_URL to e.g. {_URL_EXAMPLES}"
        )
    return sa_url


#: planner settings for every PostgreSQL connection. A report runs a few short queries whose
#: plans are estimated above ``jit_above_cost``, so JIT compilation would start for each and
#: cost more (10-20 ms) than the query itself. ``random_page_cost`` 1.1 (the usual value for
#: SSDs and a cached working set; the default 4.0 models spinning disks) lets the planner
#: follow the indexes to a period's few thousand rows instead of hashing whole tables.
POSTGRESQL_OPTIONS = "-c jit=off -c random_page_cost=1.1"


def _postgresql_args(sa_url: URL) -> dict[str, Any]:
    """libpq ``options`` for the connection: :data:`POSTGRESQL_OPTIONS` after the URL's own
    (``?options=-csearch_path%3D...`` keeps working: connect args would replace it)."""
    own = sa_url.query.get("options")
    if isinstance(own, tuple):
        own = " ".join(own)
    return {"options": f"{own} {POSTGRESQL_OPTIONS}" if own else POSTGRESQL_OPTIONS}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One session per unit of work: committed on success, rolled back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def require_schema(engine: Engine) -> None:
    """Fail with advice when the database has not been initialised."""
    if not inspect(engine).has_table("pull_requests"):
        raise DatabaseNotReady(
            "the database has no kpibot tables yet: run 'kpibot db upgrade' "
            "(or 'kpibot demo' to load demo data)"
        )


def utc(dt: datetime) -> datetime:
    """A naive UTC datetime with second precision, as the store keeps them."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt.replace(microsecond=0)


def aware(dt: datetime) -> datetime:
    """A stored (naive UTC) datetime as an aware one."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt
