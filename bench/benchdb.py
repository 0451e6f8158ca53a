"""Where a benchmark's store lives: an SQLite file, or a schema of a PostgreSQL database.

Every benchmark takes ``--database-url``. With a ``postgresql://`` URL nothing is created in
the database's ``public`` schema:

- without ``--reuse`` the run builds its store in a schema of its own
  (``kpibot_bench_<random>``) and drops it when it ends;
- with ``--reuse`` it uses the schema ``kpibot_bench`` (``--schema`` names another), builds it
  when it holds no complete build and keeps it for the next run. Remove it with
  ``DROP SCHEMA kpibot_bench CASCADE``.

A ``sqlite:///PATH`` URL is the same as ``--db PATH``.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from bot.store.session import make_engine, normalise_url

REUSED_SCHEMA = "kpibot_bench"


def add_arguments(ap: argparse.ArgumentParser, default_db: Path) -> None:
    """``--db``, ``--database-url``, ``--schema`` and ``--reuse``."""
    ap.add_argument(
        "--db",
        type=Path,
        default=default_db,
        help="SQLite file to build and measure (default: %(default)s)",
    )
    ap.add_argument(
        "--database-url",
        help="measure on this database instead (postgresql://...: in a schema of its own, "
        "see --schema; never in public)",
    )
    ap.add_argument(
        "--schema",
        default=None,
        help=f"PostgreSQL schema reused with --reuse (default: {REUSED_SCHEMA}); without "
        "--reuse each run builds a schema of its own and drops it",
    )
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="skip building when the store already holds a complete benchmark build",
    )


@dataclass(frozen=True)
class BenchStore:
    """The store of one run: ``url`` for the engines, ``label`` for the figures."""

    url: str
    label: str
    backend: str  # "sqlite" | "postgresql"
    path: Path | None = None
    admin_url: str | None = None
    schema: str | None = None
    keep: bool = True

    @property
    def is_sqlite(self) -> bool:
        return self.backend == "sqlite"

    def create(self) -> None:
        """An empty store: the SQLite file removed, or the schema dropped and created."""
        if self.path is not None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
            return
        with self._admin() as admin, admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))

    def exists(self) -> bool:
        if self.path is not None:
            return self.path.is_file()
        with self._admin() as admin, admin.connect() as conn:
            return bool(
                conn.execute(
                    text("SELECT count(*) FROM pg_namespace WHERE nspname = :s"),
                    {"s": self.schema},
                ).scalar_one()
            )

    def read_mark(self, engine: Engine) -> int:
        """The build mark written when a build completed (0: none)."""
        if not self.exists():
            return 0
        with engine.connect() as conn:
            if self.is_sqlite:
                return int(conn.execute(text("PRAGMA user_version")).scalar_one())
            comment = conn.execute(
                text(
                    "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace "
                    "WHERE nspname = :s"
                ),
                {"s": self.schema},
            ).scalar_one_or_none()
        return int(comment) if comment and str(comment).isdigit() else 0

    def write_mark(self, conn: Connection, mark: int) -> None:
        if self.is_sqlite:
            conn.execute(text(f"PRAGMA user_version = {int(mark)}"))
        else:
            conn.execute(text(f"COMMENT ON SCHEMA \"{self.schema}\" IS '{int(mark)}'"))

    def size_mb(self, engine: Engine) -> float:
        if self.path is not None:
            return self.path.stat().st_size / 1e6
        with engine.connect() as conn:
            size = conn.execute(
                text(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = :s AND c.relkind = 'r'"
                ),
                {"s": self.schema},
            ).scalar_one()
        return float(size) / 1e6

    def drop(self) -> None:
        """Drop a run's own schema (a kept store, or an SQLite file, stays)."""
        if self.keep or self.schema is None:
            return
        with self._admin() as admin, admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))

    def _admin(self) -> _Disposing:
        assert self.admin_url is not None
        return _Disposing(make_engine(self.admin_url))


class _Disposing:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __enter__(self) -> Engine:
        return self.engine

    def __exit__(self, *_: object) -> None:
        self.engine.dispose()


def store_of(args: argparse.Namespace) -> BenchStore:
    """The store the arguments name (``--database-url`` wins over ``--db``)."""
    url: str | None = getattr(args, "database_url", None)
    if not url or url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1]) if url else args.db
        path = path.resolve()
        return BenchStore(f"sqlite:///{path}", f"SQLite {path}", "sqlite", path=path)
    reuse = bool(getattr(args, "reuse", False))
    named: str | None = getattr(args, "schema", None)
    return _postgresql(url, named or (REUSED_SCHEMA if reuse else None), keep=reuse or bool(named))


def _postgresql(url: str, schema: str | None, keep: bool) -> BenchStore:
    base = normalise_url(url)
    if not base.startswith("postgresql"):
        raise SystemExit("--database-url must be a sqlite:/// or postgresql:// URL")
    if "options=" in base:
        raise SystemExit("--database-url: leave out options=; the schema comes from --schema")
    schema = schema or f"kpibot_bench_{uuid.uuid4().hex[:8]}"
    if not schema.replace("_", "").isalnum():
        raise SystemExit("--schema: letters, digits and _ only")
    sep = "&" if "?" in base else "?"
    host = base.split("@")[-1]
    return BenchStore(
        f"{base}{sep}options=-csearch_path%3D{schema}",
        f"PostgreSQL {host}, schema {schema}" + ("" if keep else " (dropped at the end)"),
        "postgresql",
        admin_url=base,
        schema=schema,
        keep=keep,
    )


@contextmanager
def scratch(url: str | None, sqlite_path: Path) -> Iterator[BenchStore]:
    """A fresh, empty store for one run: the SQLite file at ``sqlite_path`` (or ``url``'s),
    or for a PostgreSQL ``url`` a schema of its own, dropped when the run ends."""
    if not url or url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1]) if url else sqlite_path
        store = BenchStore(f"sqlite:///{path.resolve()}", f"SQLite {path}", "sqlite", path=path)
        store.create()
        yield store
        return
    store = _postgresql(url, None, keep=False)
    store.create()
    try:
        yield store
    finally:
        store.drop()


def machine_speed() -> float:
    """Milliseconds this machine takes for a fixed pure-Python workload (the fastest of 5):
    the kind of work a report does (datetimes, tuples, dicts, sorting) and none of the
    database's. Printed beside the figures so runs on different machines, or on a shared
    machine at different times, can be compared: a machine whose CPU time is shared with
    others takes longer for this and for the reports alike."""
    import time as _time
    from datetime import datetime, timedelta

    def workload() -> int:
        base = datetime(2026, 1, 1)
        rows = [
            (i, base + timedelta(minutes=i * 37 % 100_003), f"r{i % 97}") for i in range(60_000)
        ]
        by: dict[str, list[float]] = {}
        for _i, t, key in rows:
            by.setdefault(key, []).append((t - base).total_seconds())
        return sum(len(sorted(v)) for v in by.values())

    best = float("inf")
    for _ in range(5):
        t0 = _time.perf_counter()
        workload()
        best = min(best, _time.perf_counter() - t0)
    return best * 1000


def speed_line(label: str = "machine speed") -> str:
    return (
        f"{label}: reference workload {machine_speed():.0f} ms (bench/benchdb.py machine_speed; "
        "figures scale with it)"
    )
