"""Plain-text rendering for the terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.metrics.registry import BY_ID
from bot.renderers import format as fmt
from bot.reports.cards import PHASE_KEYS, DoraCard, Health, MetricCard

if TYPE_CHECKING:  # a metric card's text loads no digest or action-item module
    from bot.reports.digests import ActionItemView, MonthlyDigest, WeeklyDigest
    from bot.reports.freshness import SourceStatus

STATUS = {"on target": "✓ on target", "off target": "✗ off target", "no data": "– no data"}


def _breakdown_lines(card: MetricCard) -> list[str]:
    b = card.breakdown or {}
    out: list[str] = []
    if card.metric in PHASE_KEYS and card.n:
        keys = PHASE_KEYS[card.metric]
        shown = fmt.durations([b.get(k) for k in keys])
        parts = [f"{k} {v}" for k, v in zip(keys, shown, strict=True)]
        out.append("  phases (p50): " + " · ".join(parts))
        if b.get("merged_without_review"):
            out.append(f"  merged without review: {b['merged_without_review']}")
    elif card.metric == "pr-size" and card.n:
        out.append(
            f"  over 400 lines: {fmt.percent(b.get('over_400_share'))} "
            f"({b.get('over_400')} {fmt.plural(b.get('over_400') or 0, 'PR')})"
        )
    elif card.metric == "first-review" and b.get("without_review"):
        out.append(f"  merged without review (not counted): {b['without_review']}")
    elif card.metric == "review-coverage" and card.n:
        out.append(f"  approved before merge: {b.get('approved')} of {card.n}")
    elif card.metric == "merge-frequency" and card.n:
        out.append(
            f"  {b.get('merged')} merged {fmt.plural(b.get('merged') or 0, 'PR')}, "
            f"{b.get('authors')} {fmt.plural(b.get('authors') or 0, 'author')}, "
            f"{fmt.number(b.get('weeks') or 0)} {fmt.plural(b.get('weeks') or 0, 'week')}"
        )
    elif card.metric == "deploy-frequency" and card.n:
        out.append(
            f"  {fmt.number(b.get('deployments_per_week') or 0)} deployments/week, "
            f"{b.get('deploy_days')} deployment {fmt.plural(b.get('deploy_days') or 0, 'day')}"
        )
    elif card.metric == "change-failure-rate" and (card.n or b.get("deploy_failure_share")):
        out.append(
            f"  failed: {b.get('failed', 0)} (incident {b.get('by_incident', 0)}, rollback "
            f"{b.get('by_rollback', 0)}, revert {b.get('by_revert', 0)}); unsuccessful runs: "
            f"{fmt.percent(b.get('deploy_failure_share'))}"
        )
    elif card.metric in ("predictability", "scope-creep") and card.n:
        out.append(
            f"  by {b.get('basis')}"
            + (
                f" over {b['sprints']} {fmt.plural(b['sprints'], 'sprint')}"
                if "sprints" in b
                else ""
            )
        )
    unknown = fmt.unknown_contents(card.metric, card.breakdown)
    if unknown:
        out.append(f"  {unknown}")
    return out


def card(c: MetricCard) -> str:
    head = fmt.with_basis(c, f"{c.name} · {c.team} · {fmt.period(c.period)}")
    lines = [head]
    if c.status == "no data":
        lines.append(f"  no data (n = 0) · target {fmt.target(c.kind, c.target)}")
    else:
        lines.append(f"  {fmt.spread(c.kind, c.value, c.p75, c.p90)} · n = {c.n}")
        lines.append(f"  target {fmt.target(c.kind, c.target)} · {STATUS[c.status]}")
    lines.append(f"  trend {fmt.card_trend(c)} · {fmt.previous(c)}")
    if c.band:
        lines.append(f"  DORA {c.edition}: {c.band}")
    lines.extend(_breakdown_lines(c))
    excluded = fmt.excluded(c.excluded)
    if excluded:
        lines.append(f"  {excluded}")
    if c.sparkline:
        spark = fmt.sparkline([p.value for p in c.sparkline])
        lines.append(f"  last {len(c.sparkline)} periods: {spark}")
    lines.append(f"  {fmt.as_of(c.data_as_of)}")
    return "\n".join(lines)


def dora(d: DoraCard) -> str:
    lines = [f"DORA · {d.team} · {fmt.period(d.period)} · edition {d.edition}"]
    for c in d.cards:
        band = c.band or "no data"
        lines.append(
            f"  {c.name:<24} {fmt.value(c.kind, c.value):>16}  n = {c.n:<5} {band}"
            f"{fmt.business_hours(c)}"
        )
    lines.append(f"  {fmt.as_of(d.data_as_of)}")
    return "\n".join(lines)


def health(h: Health) -> str:
    lines = [
        f"Health · {h.team} · {fmt.period(h.period)}: {h.on_target} of {h.with_data} "
        "KPIs with data on target"
    ]
    width = max((len(c.name) for c in h.cards), default=24)
    for c in h.cards:
        lines.append(
            f"  {STATUS[c.status]:<13} {c.name:<{width}} {fmt.value(c.kind, c.value):>16}  "
            f"target {fmt.target(c.kind, c.target)}{fmt.business_hours(c)}"
        )
    lines += [f"  – {line}" for line in fmt.no_source(h.no_source)]
    lines.append(f"  {fmt.as_of(h.data_as_of)}")
    excluded = fmt.excluded(h.excluded)
    if excluded:
        lines.append(f"  {excluded}")
    return "\n".join(lines)


def _item(i: ActionItemView) -> str:
    due = f"due {i.due_on.isoformat()}" + (" (overdue)" if i.overdue else "")
    kpi = f" [{i.kpi}]" if i.kpi else ""
    return f"  • {i.opportunity} → {i.resolution} · owner {i.owner} · {due}{kpi}"


def weekly(d: WeeklyDigest) -> str:
    lines = [f"Weekly leading indicators · {d.team} · {fmt.period(d.period)}", ""]
    for c in d.cards:
        lines.append(
            f"  {STATUS[c.status]:<13} {c.name:<18} {fmt.value(c.kind, c.value):>16}  "
            f"n = {c.n:<4} trend {fmt.card_trend(c)}{fmt.business_hours(c)}"
        )
    if d.biggest_phase:
        phase, secs = d.biggest_phase
        lines += ["", f"Biggest cycle-time phase: {phase}, {fmt.duration(secs)} p50"]
    lines += ["", f"PRs waiting for review ({len(d.waiting)}):"]
    lines += [f"  • {w.repository}#{w.number} {w.title}" for w in d.waiting] or ["  none"]
    lines += ["", f"Open action items ({len(d.open_items)}, {len(d.overdue_items)} overdue):"]
    lines += [_item(i) for i in d.open_items] or ["  none"]
    lines += ["", fmt.as_of(d.data_as_of)]
    return "\n".join(lines)


def monthly(d: MonthlyDigest) -> str:
    lines = [
        f"Monthly lagging indicators · {d.team} · {fmt.period(d.period)} · DORA {d.edition}",
        "",
    ]
    for c in (*d.dora, d.predictability, d.scope_creep):
        band = f" · {c.band}" if c.band else ""
        three = d.three_month.get(c.metric)
        spark = f" · 3 months {fmt.sparkline([p.value for p in three])}" if three else ""
        lines.append(
            f"  {c.name:<32} {fmt.value(c.kind, c.value):>16}  n = {c.n:<4}"
            f"{band} · trend {fmt.card_trend(c)}{spark}{fmt.business_hours(c)}"
        )
    lines += ["", f"Action items completed this month ({len(d.completed_items)}):"]
    for i in d.completed_items:
        kind = BY_ID[i.kpi].kind if i.kpi in BY_ID else None
        moved = ""
        if kind is not None:
            moved = f" · {i.kpi}: {fmt.value(kind, i.baseline)} → {fmt.value(kind, i.after)}"
        lines.append(f"  • {i.opportunity} → {i.resolution}{moved}")
    if not d.completed_items:
        lines.append("  none")
    lines += ["", f"Overdue action items ({len(d.overdue_items)}):"]
    lines += [_item(i) for i in d.overdue_items] or ["  none"]
    lines += ["", fmt.as_of(d.data_as_of)]
    return "\n".join(lines)


def source_status(st: SourceStatus) -> str:
    """``kpibot status``: every source of a team, one per line."""
    lines = [f"Data sources of {st.team} ({fmt.as_of(st.data_as_of)})"]
    if not st.sources:
        lines.append("  none: add repos to the team in kpibot.yml")
    for s in st.sources:
        lines.append(f"  {fmt.source_line(s)}")
        if s.last_error:
            lines.append(f"    last error: {s.last_error}")
    return "\n".join(lines)
