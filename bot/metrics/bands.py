"""DORA performance bands, 2023 and 2021 editions (METRICS.md, DORA performance bands)."""

from __future__ import annotations

H = 3600.0
D = 86400.0
MONTH_DAYS = 30.4375
HALF_YEAR_DAYS = 182.625

EDITIONS = (2023, 2021)


def deploy_frequency_band(
    median_days_per_week: float, deploy_days: int, period_days: float, edition: int
) -> str:
    per_month = deploy_days / (period_days / MONTH_DAYS) if period_days > 0 else 0.0
    per_half_year = deploy_days / (period_days / HALF_YEAR_DAYS) if period_days > 0 else 0.0
    if edition == 2021:
        if median_days_per_week >= 5:
            return "elite"
        if per_month >= 1:
            return "high"
        if per_half_year >= 1:
            return "medium"
        return "low"
    if median_days_per_week >= 5:
        return "elite"
    if median_days_per_week >= 1:
        return "high"
    if per_month >= 1:
        return "medium"
    return "low"


def lead_time_band(seconds: float, edition: int) -> str:
    cuts = (1 * H, 7 * D, 180 * D) if edition == 2021 else (1 * D, 7 * D, 30 * D)
    if seconds < cuts[0]:
        return "elite"
    if seconds < cuts[1]:
        return "high"
    if seconds < cuts[2]:
        return "medium"
    return "low"


def change_failure_band(rate: float, edition: int) -> str:
    cuts = (0.15, 0.20, 0.30) if edition == 2021 else (0.05, 0.10, 0.15)
    if rate <= cuts[0]:
        return "elite"
    if rate <= cuts[1]:
        return "high"
    if rate <= cuts[2]:
        return "medium"
    return "low"


def restore_band(seconds: float, edition: int) -> str:
    if seconds < 1 * H:
        return "elite"
    if seconds < 1 * D:
        return "high"
    if seconds < 7 * D:
        return "medium"
    return "low"
