"""JSON rendering (PRODUCT.md: durations in seconds, rates as fractions, ISO 8601 UTC times)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from bot.reports.cards import DoraCard, Health, MetricCard, PeriodInfo
from bot.reports.digests import ActionItemView, MonthlyDigest, WeeklyDigest


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def period(p: PeriodInfo) -> dict[str, Any]:
    """``in_progress``: the period had not ended; ``end`` is then when it was computed."""
    return {
        "label": p.label,
        "start": iso(p.start),
        "end": iso(p.end),
        "in_progress": p.in_progress,
    }


def card(c: MetricCard) -> dict[str, Any]:
    """The one object of ``kpibot report --format json``, the keys PRODUCT.md lists."""
    return {
        "metric": c.metric,
        "team": c.team,
        "period": period(c.period),
        "n": c.n,
        "value": c.value,
        "unit": c.unit,
        "p50": c.p50,
        "p75": c.p75,
        "p90": c.p90,
        "target": {"op": c.target.op, "value": c.target.value},
        "status": c.status,
        "previous": {"n": c.previous_n, "value": c.previous_value},
        "trend": c.trend,
        "band": c.band,
        "breakdown": c.breakdown,
        "so_far": c.period.in_progress,
    }


def dora(d: DoraCard) -> dict[str, Any]:
    return {
        "team": d.team,
        "period": period(d.period),
        "edition": d.edition,
        "metrics": [card(c) for c in d.cards],
    }


def health(h: Health) -> dict[str, Any]:
    return {
        "team": h.team,
        "period": period(h.period),
        "on_target": h.on_target,
        "with_data": h.with_data,
        "metrics": [card(c) for c in h.cards],
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
        "baseline": i.baseline,
        "after": i.after,
        "overdue": i.overdue,
    }


def weekly(d: WeeklyDigest) -> dict[str, Any]:
    return {
        "digest": "weekly",
        "team": d.team,
        "period": period(d.period),
        "metrics": [card(c) for c in d.cards],
        "biggest_phase": (
            {"phase": d.biggest_phase[0], "p50": d.biggest_phase[1]} if d.biggest_phase else None
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
    }


def monthly(d: MonthlyDigest) -> dict[str, Any]:
    return {
        "digest": "monthly",
        "team": d.team,
        "period": period(d.period),
        "edition": d.edition,
        "metrics": [card(c) for c in (*d.dora, d.predictability, d.scope_creep)],
        "three_month": {
            k: [{"label": p.label, "value": p.value, "n": p.n} for p in v]
            for k, v in d.three_month.items()
        },
        "completed_action_items": [item(i) for i in d.completed_items],
        "overdue_action_items": [item(i) for i in d.overdue_items],
    }
