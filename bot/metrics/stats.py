"""Percentiles and trends (METRICS.md, Aggregation)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

TREND_MIN_N = 5
TREND_MIN_CHANGE = 0.10  # relative change
TREND_MIN_POINTS = 0.05  # rate KPIs: 5 percentage points


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy 'linear', SQL PERCENTILE_CONT)."""
    n = len(sorted_values)
    if n == 0:
        return None
    p = q * (n - 1)
    lo = math.floor(p)
    hi = math.ceil(p)
    return sorted_values[lo] + (p - lo) * (sorted_values[hi] - sorted_values[lo])


@dataclass(frozen=True)
class Summary:
    n: int
    p50: float | None
    p75: float | None
    p90: float | None


def summarise(values: Iterable[float]) -> Summary:
    v = sorted(values)
    return Summary(len(v), percentile(v, 0.5), percentile(v, 0.75), percentile(v, 0.9))


def median(values: Iterable[float]) -> float | None:
    return percentile(sorted(values), 0.5)


@dataclass(frozen=True)
class Trend:
    direction: str  # better | worse | flat | not enough data
    # relative change (current - previous) / |previous|; for a rate KPI (``points``) the
    # difference current - previous of the two fractions (0.07 = 7 percentage points)
    change: float | None
    points: bool = False


def trend(
    current: float | None,
    n_current: int,
    previous: float | None,
    n_previous: int,
    lower_is_better: bool,
    points: bool = False,
) -> Trend:
    """METRICS.md, Aggregation: better or worse only when both periods have ``n >= 5`` and the
    change is at least 10 % (``points``: at least 5 percentage points)."""
    change: float | None = None
    if current is not None and previous is not None:
        if points:
            change = current - previous
        elif previous != 0:
            change = (current - previous) / abs(previous)
        elif current == 0:
            change = 0.0
    if n_current < TREND_MIN_N or n_previous < TREND_MIN_N or current is None or previous is None:
        return Trend("not enough data", change, points)
    threshold = TREND_MIN_POINTS if points else TREND_MIN_CHANGE
    if change is None:  # previous was 0 and current is not
        moved_up = current > previous
    elif round(abs(change), 9) < threshold:  # 0.95 - 0.90 is 0.0499999...: 5 points
        return Trend("flat", change, points)
    else:
        moved_up = change > 0
    better = (not moved_up) if lower_is_better else moved_up
    return Trend("better" if better else "worse", change, points)
