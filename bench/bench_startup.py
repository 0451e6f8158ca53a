"""Start-up: how long `kpibot report cycle-time` takes as a user runs it, beside its floors.

    python bench/bench_startup.py [--runs N] [--database-url URL]

Loads the demo organisation (``kpibot demo --as-of 2026-11-20``) into a temporary directory
(an SQLite file there, or with a ``postgresql://`` URL a schema of its own, dropped at the
end), then runs each command below ``--runs`` times (default 10) as a new process, as a user
would, after one run that is not counted (it writes the bytecode Python caches, as a first
run of an installed kpibot does):

- ``python -c pass``: the interpreter starting;
- the floor of any command that reads the store through SQLAlchemy's ORM: importing
  ``sqlalchemy.orm`` and the store's dialect, connecting and running one query;
- importing pydantic, PyYAML and python-dotenv, which reading the configuration needs;
- ``kpibot --help`` and ``kpibot report cycle-time``.

Prints the fastest and median wall time and the fastest CPU time of each (CPU time, what the
process costs, moves less with the machine's other work than wall time), what the report
takes over its ORM floor, and the machine's speed. Exits 1 when the report's fastest wall
time is 0.2 s or more.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.benchdb import scratch, speed_line

AS_OF = "2026-11-20"
TARGET_SECONDS = 0.2


@dataclass(frozen=True)
class Timing:
    label: str
    walls: list[float]
    cpus: list[float]

    @property
    def best(self) -> float:
        return min(self.walls)

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    @property
    def best_cpu(self) -> float:
        return min(self.cpus)


def kpibot_command() -> list[str]:
    """The ``kpibot`` script beside this interpreter (what a user runs), else ``-m bot``."""
    script = Path(sys.executable).with_name("kpibot")
    if script.is_file():
        return [str(script)]
    found = shutil.which("kpibot")
    return [found] if found else [sys.executable, "-m", "bot"]


def user_environment(database_url: str | None) -> dict[str, str]:
    """This environment without kpibot's own settings (the demo directory's ``kpibot.yml``
    and store are the ones read) and with bytecode caching on, as on a user's machine."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KPIBOT_") and k not in ("DATABASE_URL", "PYTHONDONTWRITEBYTECODE")
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def run_once(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (user and system) of one run of ``cmd``; fails on an error."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-400:]}"
        )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(label: str, cmd: list[str], cwd: Path, env: dict[str, str], runs: int) -> Timing:
    run_once(cmd, cwd, env)  # writes the bytecode caches; not counted
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(runs):
        wall, cpu = run_once(cmd, cwd, env)
        walls.append(wall)
        cpus.append(cpu)
    return Timing(label, walls, cpus)


def orm_floor_code(url: str) -> str:
    """Python that does what every store-reading command must: import SQLAlchemy's ORM and
    the store's dialect, connect and run one query."""
    return (
        "import sqlalchemy, sqlalchemy.orm\n"
        f"engine = sqlalchemy.create_engine({url!r})\n"
        "with engine.connect() as conn:\n"
        "    conn.execute(sqlalchemy.text('SELECT count(*) FROM pull_requests')).scalar()\n"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10, help="counted runs of each command")
    ap.add_argument(
        "--database-url",
        help="load the demo into this database instead (postgresql://...: in a schema of "
        "its own, dropped at the end)",
    )
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    kpibot = kpibot_command()
    with (
        tempfile.TemporaryDirectory() as tmp,
        scratch(args.database_url, Path(tmp) / "kpibot.db") as store,
    ):
        cwd = Path(tmp)
        env = user_environment(None if store.is_sqlite else store.url)
        run_once([*kpibot, "demo", "--as-of", AS_OF], cwd, env)
        py = sys.executable

        def timed(label: str, cmd: list[str]) -> Timing:
            return measure(label, cmd, cwd, env, args.runs)

        print(f"start-up on {store.label}; {args.runs} runs each after one uncounted run")
        timings = [
            timed("interpreter (python -c pass)", [py, "-c", "pass"]),
            timed(
                "floor: SQLAlchemy ORM import, connect, one query",
                [py, "-c", orm_floor_code(store.url)],
            ),
            timed("import pydantic, yaml, dotenv", [py, "-c", "import pydantic, yaml, dotenv"]),
            timed("kpibot --help", [*kpibot, "--help"]),
            timed("kpibot report cycle-time", [*kpibot, "report", "cycle-time"]),
        ]
    width = max(len(t.label) for t in timings)
    print(f"{'':{width}}  wall best  wall p50  cpu best")
    for t in timings:
        print(f"{t.label:{width}}  {t.best:8.3f}s {t.median:8.3f}s {t.best_cpu:8.3f}s")
    floor, report = timings[1], timings[-1]
    print(
        f"report over its ORM floor: {report.best - floor.best:.3f} s wall "
        f"({report.best_cpu - floor.best_cpu:.3f} s CPU)"
    )
    print(speed_line())
    if report.best >= TARGET_SECONDS:
        print(
            f"over target: kpibot report cycle-time took {report.best:.3f} s at best "
            f"(target {TARGET_SECONDS} s; the ORM floor alone took {floor.best:.3f} s)"
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
