"""Benchmark: business-hours PR-timeline KPIs over 200,000 pull requests.

    python bench/bench_business_hours.py [--prs 200000] [--repeat 3]

Builds (from a seeded ``random.Random``) a year of merged and deployed PRs with reviews and
computes cycle time, first review time and lead time over all of them at once, in calendar
time and in business hours (mon-fri 09:00-17:00 with the country's holidays) for a team in
Berlin (``DE-BE``) and one in New York (``US-NY``). Prints each figure with its target and
PASS/FAIL (exit status 1 when one fails). Target: business hours cost under 3 times calendar
time (whose cost is building the timelines), whatever the machine.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.metrics import lagging, leading  # noqa: E402
from bot.metrics.business import BusinessClock  # noqa: E402
from bot.metrics.timeline import PRFacts  # noqa: E402
from bot.settings import WorkingHours  # noqa: E402

TARGET_RATIO = 3.0


def prs(n: int, seed: int = 7) -> list[PRFacts]:
    rnd = random.Random(seed)
    start = datetime(2025, 12, 1)
    out = []
    for i in range(n):
        created = start + timedelta(seconds=rnd.randrange(365 * 86400))
        first = created - timedelta(seconds=rnd.randrange(3 * 86400))
        ready = created + timedelta(seconds=rnd.randrange(6 * 3600)) if rnd.random() < 0.2 else None
        review = created + timedelta(seconds=rnd.randrange(1, 4 * 86400))
        merged = review + timedelta(seconds=rnd.randrange(1, 3 * 86400))
        deployed = merged + timedelta(seconds=rnd.randrange(1, 2 * 86400))
        out.append(
            PRFacts(
                i,
                1,
                i,
                f"PR {i}",
                f"dev{i % 40}",
                created,
                merged,
                ready=ready,
                first_commit=first,
                first_review=review if rnd.random() < 0.9 else None,
                approved=review,
                deployed=deployed,
            )
        )
    return out


def measure(population: list[PRFacts], clock: BusinessClock | None, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        leading.cycle_time(population, clock)
        leading.first_review(population, clock)
        lagging.lead_time(population, 0, clock)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prs", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    population = prs(args.prs)
    calendar = measure(population, None, args.repeat)
    print(f"{args.prs:,} PRs, 3 KPIs, calendar time: {calendar:.2f} s")
    failed = False
    for zone, code in (("Europe/Berlin", "DE-BE"), ("America/New_York", "US-NY")):
        hours = WorkingHours(calendars=(code,))
        clock = BusinessClock.of(hours, ZoneInfo(zone))
        business = measure(population, clock, args.repeat)
        ok = business < TARGET_RATIO * calendar
        failed |= not ok
        extra = (business - calendar) / (3 * args.prs) * 1e6
        print(
            f"{args.prs:,} PRs, 3 KPIs, business hours in {zone} ({code}): {business:.2f} s "
            f"({business / calendar:.1f}x calendar, +{extra:.1f} µs per PR timeline; target "
            f"< {TARGET_RATIO:.0f}x) {'PASS' if ok else 'FAIL'}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
