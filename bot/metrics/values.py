"""The value of one KPI over one period, in base units (seconds, fractions, lines)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MetricValue:
    n: int
    value: float | None
    p50: float | None = None
    p75: float | None = None
    p90: float | None = None
    breakdown: dict[str, Any] | None = None
    # for the deployment-frequency band: distinct deployment days in the period
    extra: dict[str, Any] = field(default_factory=dict)
    # a value although nothing was counted: the source was watched and saw none (deployment
    # frequency 0 once the team has any recorded deployment, METRICS.md)
    measured: bool = False

    @property
    def has_data(self) -> bool:
        return self.value is not None and (self.n > 0 or self.measured)


NO_DATA = MetricValue(0, None)
