"""Chart rendering: the time and size of every chart of the demo organisation.

    python bench/bench_charts.py [--rounds N]

Loads the demo organisation (``kpibot demo``, three teams) into a temporary SQLite file, then
draws, for every team, the trend chart of every KPI (last 28 days), the phase charts of cycle
and lead time, and the DORA chart of the monthly digest, ``--rounds`` times each (default 3).
Prints the median and slowest time per kind of chart (CPU time, what the chart costs, and
wall time, which on a shared machine also holds the other processes' work), the largest PNG,
and the first chart of the process (matplotlib's start-up: font cache, imports) on its own.
Exits 1 when a chart takes 300 ms of CPU or more (after the first) or a PNG is 150 KB or
more.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot import demo
from bot.metrics import registry
from bot.metrics.engine import TeamEngine
from bot.metrics.periods import last_complete_month, parse_period
from bot.renderers import charts
from bot.reports.cards import PHASE_KEYS, MetricCard, build_card
from bot.store.migrate import upgrade
from bot.store.session import make_engine, session_factory

AS_OF = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
MAX_SECONDS = 0.300
MAX_BYTES = 150 * 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="times each chart is drawn")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench-charts.db'}")
        upgrade(engine)
        factory = session_factory(engine)
        config = demo.demo_config()
        jobs: list[tuple[str, str, Callable[[], bytes]]] = []  # (kind, name, draw)
        with factory() as s:
            demo.load(s, config, AS_OF)
            s.commit()
            for team in config.teams:
                eng = TeamEngine(s, team)
                window = parse_period("28d", team.zone, NOW)
                for spec in registry.METRICS:
                    card = build_card(eng, spec.id, window)
                    jobs.append(
                        ("trend", f"{spec.id} · {team.name}", _draw(charts.trend_png, card))
                    )
                    if spec.id in PHASE_KEYS:
                        jobs.append(
                            ("phases", f"{spec.id} · {team.name}", _draw(charts.phase_png, card))
                        )
                month = last_complete_month(NOW, team.zone)
                dora = [build_card(eng, m, month) for m in registry.DORA]
                jobs.append(
                    (
                        "dora",
                        f"dora · {team.name}",
                        lambda d=dora, t=team.name, e=team.dora_edition: charts.dora_png(d, t, e),
                    )
                )
        engine.dispose()

    t0 = time.perf_counter()
    jobs[0][2]()
    first = time.perf_counter() - t0
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    sizes: dict[str, int] = {}
    slowest: dict[str, tuple[float, str]] = {}
    for _ in range(args.rounds):
        for kind, name, draw in jobs:
            t0, c0 = time.perf_counter(), time.process_time()
            png = draw()
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            wall.setdefault(kind, []).append(dt)
            cpu.setdefault(kind, []).append(dc)
            sizes[kind] = max(sizes.get(kind, 0), len(png))
            if dc > slowest.get(kind, (0.0, ""))[0]:
                slowest[kind] = (dc, name)

    print(f"{len(jobs)} charts x {args.rounds} rounds (3 demo teams)")
    print(f"first chart of the process (matplotlib start-up included): {first * 1000:.0f} ms")
    # CPU time is what a chart costs; wall time also holds whatever else the machine runs
    print(
        f"{'chart':<7} {'count':>5}  {'CPU median':>10} {'CPU max':>8}  {'wall median':>11} "
        f"{'wall max':>8}  {'largest PNG':>11}  most CPU"
    )
    failed = False
    for kind, ts in cpu.items():
        worst, name = slowest[kind]
        print(
            f"{kind:<7} {len(ts):>5}  {statistics.median(ts) * 1000:>8.0f}ms "
            f"{worst * 1000:>6.0f}ms  {statistics.median(wall[kind]) * 1000:>9.0f}ms "
            f"{max(wall[kind]) * 1000:>6.0f}ms  {sizes[kind] / 1024:>8.1f} KB  {name}"
        )
        failed |= worst >= MAX_SECONDS or sizes[kind] >= MAX_BYTES
    print(
        f"targets: every chart < {MAX_SECONDS * 1000:.0f} ms of CPU and < "
        f"{MAX_BYTES // 1024} KB: " + ("FAILED" if failed else "met")
    )
    return 1 if failed else 0


def _draw(fn: Callable[[MetricCard], bytes], card: MetricCard) -> Callable[[], bytes]:
    return lambda: fn(card)


if __name__ == "__main__":
    sys.exit(main())
