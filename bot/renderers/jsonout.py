"""JSON rendering (PRODUCT.md: durations in seconds, rates as fractions, ISO 8601 UTC times).

Numbers are rounded here, at the source, by ``bot.renderers.format``: durations to whole
seconds, every other number (fractions, lines, rates) to 4 decimals, still in base units.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from bot.metrics.registry import BY_ID, Kind
from bot.renderers import format as fmt
from bot.reports.cards import DoraCard, Health, MetricCard, PeriodInfo
from bot.reports.digests import ActionItemView, MonthlyDigest, WeeklyDigest
from bot.reports.freshness import SourceStatus


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_or_none(dt: datetime | None) -> str | None:
    return iso(dt) if dt is not None else None


def period(p: PeriodInfo) -> dict[str, Any]:
    """``in_progress``: the period had not ended; ``end`` is then when it was computed."""
    return {
        "label": p.label,
        "start": iso(p.start),
        "end": iso(p.end),
        "in_progress": p.in_progress,
    }


def card(c: MetricCard) -> dict[str, Any]:
    """The one object of ``kpibot report --format json``, the keys PRODUCT.md lists.

    ``change``: the trend's change, relative (``0.29`` = +29 %) or, for a rate KPI
    (``change_unit`` ``"points"``), the difference of the two fractions (``0.07`` = +7 pp).
    """
    k = c.kind
    out = {
        "metric": c.metric,
        "team": c.team,
        "period": period(c.period),
        "n": c.n,
        "value": fmt.json_number(k, c.value),
        "unit": c.unit,
        "p50": fmt.json_number(k, c.p50),
        "p75": fmt.json_number(k, c.p75),
        "p90": fmt.json_number(k, c.p90),
        "target": {"op": c.target.op, "value": fmt.json_number(k, c.target.value)},
        "status": c.status,
        "previous": {"n": c.previous_n, "value": fmt.json_number(k, c.previous_value)},
        "trend": c.trend,
        "change": fmt.json_number(None, c.change),
        "change_unit": "points" if k is Kind.RATIO else "relative",
        "band": c.band,
        "breakdown": fmt.json_breakdown(c.breakdown),
        "so_far": c.period.in_progress,
        "data_as_of": _iso_or_none(c.data_as_of),
        "excluded": c.excluded,
    }
    if c.time_basis is not None:  # a team with working hours: business_hours or calendar
        out["time_basis"] = c.time_basis
    return out


def _kpi_number(kpi: str | None, v: float | None) -> float | int | None:
    return fmt.json_number(BY_ID[kpi].kind if kpi in BY_ID else None, v)


def dora(d: DoraCard) -> dict[str, Any]:
    return {
        "team": d.team,
        "period": period(d.period),
        "edition": d.edition,
        "metrics": [card(c) for c in d.cards],
        "data_as_of": _iso_or_none(d.data_as_of),
    }


def health(h: Health) -> dict[str, Any]:
    return {
        "team": h.team,
        "period": period(h.period),
        "on_target": h.on_target,
        "with_data": h.with_data,
        "metrics": [card(c) for c in h.cards],
        "no_source": [{"metric": n.metric, "missing": list(n.missing)} for n in h.no_source],
        "data_as_of": _iso_or_none(h.data_as_of),
        "excluded": h.excluded,
    }


def _day(d: date | None) -> str | None:
    return d.isoformat() if d else None


def item(i: ActionItemView) -> dict[str, Any]:
    return {
        "id": i.id,
        "opportunity": i.opportunity,
        "resolution": i.resolution,
        "owner": i.owner,
        "due_on": _day(i.due_on),
        "completed_on": _day(i.completed_on),
        "kpi": i.kpi,
        "baseline": _kpi_number(i.kpi, i.baseline),
        "after": _kpi_number(i.kpi, i.after),
        "overdue": i.overdue,
    }


def weekly(d: WeeklyDigest) -> dict[str, Any]:
    return {
        "digest": "weekly",
        "team": d.team,
        "period": period(d.period),
        "metrics": [card(c) for c in d.cards],
        "biggest_phase": (
            {"phase": d.biggest_phase[0], "p50": fmt.json_number(Kind.DURATION, d.biggest_phase[1])}
            if d.biggest_phase
            else None
        ),
        "waiting_for_review": [
            {
                "repository": w.repository,
                "number": w.number,
                "title": w.title,
                "url": w.url,
                "waiting_since": iso(w.waiting_since),
            }
            for w in d.waiting
        ],
        "open_action_items": [item(i) for i in d.open_items],
        "data_as_of": _iso_or_none(d.data_as_of),
    }


def monthly(d: MonthlyDigest) -> dict[str, Any]:
    return {
        "digest": "monthly",
        "team": d.team,
        "period": period(d.period),
        "edition": d.edition,
        "metrics": [card(c) for c in (*d.dora, d.predictability, d.scope_creep)],
        "three_month": {
            k: [{"label": p.label, "value": _kpi_number(k, p.value), "n": p.n} for p in v]
            for k, v in d.three_month.items()
        },
        "completed_action_items": [item(i) for i in d.completed_items],
        "overdue_action_items": [item(i) for i in d.overdue_items],
        "data_as_of": _iso_or_none(d.data_as_of),
    }


def source_status(st: SourceStatus) -> dict[str, Any]:
    """``kpibot status --json``."""
    return {
        "team": st.team,
        "data_as_of": _iso_or_none(st.data_as_of),
        "sources": [
            {
                "source": s.source,
                "scope": s.scope,
                "label": s.label,
                "status": "failing" if s.failing else "ok",
                "last_success": _iso_or_none(s.last_success),
                "last_error": s.last_error,
                "last_error_at": _iso_or_none(s.last_error_at),
                "failures": s.failures,
                "next_run": _iso_or_none(s.next_run),
                "polled": s.polled,
            }
            for s in st.sources
        ],
    }
