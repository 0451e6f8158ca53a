"""Adaptive Card rendering (Microsoft Teams), from the same report objects as the Block Kit
renderer, built with the Teams SDK's typed card models (``microsoft-teams-cards``).

Cards are schema version 1.5 and at most :data:`MAX_CARD_BYTES` of JSON: a bigger card loses
body elements from its end and says how many with a note, never fails. Source-provided
strings (team names, user input echoed back) go through :func:`escape`, so markdown in them
(``**``, ``[text](url)``) is shown as typed and never becomes a link or emphasis.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Final

from microsoft_teams.cards import (
    ActionSet,
    AdaptiveCard,
    CardElement,
    ExecuteAction,
    Fact,
    FactSet,
    OpenUrlAction,
    TextBlock,
    TextInput,
)

from bot.metrics import registry
from bot.metrics.registry import Kind
from bot.renderers import format as fmt
from bot.reports.agreements import AgreementsReport
from bot.reports.cards import PHASE_KEYS, DoraCard, Health, MetricCard

VERSION: Final = "1.5"
MAX_CARD_BYTES = 28 * 1024  # Teams refuses messages over ~28 KB
CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"

Card = dict[str, Any]
STATUS_MARK = {"on target": "✅", "off target": "⚠️", "no data": "❔"}

_MARKDOWN = re.compile(r"([\\`*_\[\]<>~])")  # emphasis, links, code, HTML-like tags


def escape(text: str) -> str:
    """``text`` shown as typed in a TextBlock: markdown characters backslash-escaped."""
    return _MARKDOWN.sub(r"\\\1", text)


def text(s: str, **kw: Any) -> TextBlock:
    return TextBlock(text=s, wrap=True, **kw)


def title(s: str) -> TextBlock:
    return TextBlock(text=s, wrap=True, size="Large", weight="Bolder")


def note(s: str) -> TextBlock:
    return TextBlock(text=s, wrap=True, is_subtle=True, size="Small", spacing="Small")


def card(body: Sequence[CardElement], actions: Sequence[ExecuteAction] = ()) -> Card:
    """A 1.5 card as JSON, cut to :data:`MAX_CARD_BYTES`."""
    model = AdaptiveCard(version=VERSION, body=list(body), actions=list(actions) or None)
    dumped: Card = model.model_dump(by_alias=True, exclude_none=True)
    dumped["$schema"] = "http://adaptivecards.io/schemas/adaptive-card.json"
    return limit(dumped)


def size(c: Card) -> int:
    return len(json.dumps(c, ensure_ascii=False).encode("utf-8"))


def limit(c: Card, max_bytes: int = MAX_CARD_BYTES) -> Card:
    """Drop body elements from the end until the card fits; the last one says how many."""
    if size(c) <= max_bytes:
        return c
    body = list(c.get("body", []))
    kept = dict(c)
    while body:
        body.pop()
        left = len(c["body"]) - len(body)
        tail = note(f"{left} more item{'s' if left > 1 else ''} not shown (the card is too long)")
        kept["body"] = [*body, tail.model_dump(by_alias=True, exclude_none=True)]
        if size(kept) <= max_bytes:
            return kept
    kept.pop("actions", None)
    return kept


# --- metric cards ---------------------------------------------------------------------------


def _phases(c: MetricCard) -> str | None:
    b = c.breakdown or {}
    if c.metric not in PHASE_KEYS or not c.n:
        return None
    keys = PHASE_KEYS[c.metric]
    known = {k: b.get(k) for k in keys if isinstance(b.get(k), (int, float))}
    biggest = max(known, key=lambda k: known[k] or 0) if known else None
    parts = [
        f"**{k} {v}**" if k == biggest else f"{k} {v}"
        for k, v in zip(keys, fmt.durations([b.get(k) for k in keys]), strict=True)
    ]
    line = "**Phases (p50):** " + " · ".join(parts)
    if b.get("merged_without_review"):
        line += f"\n\nMerged without review: {b['merged_without_review']}"
    return line


def _sparkline(c: MetricCard) -> str | None:
    if not c.sparkline:
        return None
    values = [p.value for p in c.sparkline]
    first, last = c.sparkline[0].label, c.sparkline[-1].label
    return (
        f"Last {len(values)} periods: {fmt.sparkline(values)} · {escape(first)} to "
        f"{escape(last)} · “·” = no data"
    )


def card_data(c: MetricCard) -> dict[str, str]:
    """What a card's buttons carry: the metric, team and period word."""
    return {"m": c.metric, "t": c.team, "p": c.period.label}


def metric_facts(c: MetricCard) -> list[Fact]:
    kind = c.kind
    if c.status == "no data":
        facts = [Fact(title="Value", value="no data (n = 0)")]
    else:
        label = "Value (p50)" if c.p50 is not None else "Value"
        facts = [Fact(title=label, value=fmt.value(kind, c.value))]
    facts.append(Fact(title="n", value=str(c.n)))
    if c.p75 is not None and kind is not Kind.RATIO:
        p75, p90 = fmt.detail(kind, c.value, c.p75, c.p90)
        facts.append(Fact(title="p75 / p90", value=f"{p75} / {p90}"))
    facts.append(
        Fact(
            title="Target",
            value=f"{fmt.target(kind, c.target)} {STATUS_MARK[c.status]} {c.status}",
        )
    )
    facts.append(Fact(title="Trend", value=f"{fmt.card_trend(c)} ({fmt.previous(c)})"))
    if c.band:
        facts.append(Fact(title=f"DORA {c.edition} band", value=c.band))
    return facts


def metric_card(c: MetricCard, *, buttons: bool = True) -> Card:
    body: list[CardElement] = [
        title(f"{c.name} · {escape(c.team)}"),
        note(
            fmt.with_basis(
                c, f"{escape(fmt.period(c.period))} · team time zone {c.period.timezone}"
            )
        ),
        FactSet(facts=metric_facts(c)),
    ]
    phases = _phases(c)
    if phases:
        body.append(text(phases))
    unknown = fmt.unknown_contents(c.metric, c.breakdown)
    if unknown:
        body.append(note(unknown))
    excluded = fmt.excluded(c.excluded)
    if excluded:
        body.append(note(excluded))
    spark = _sparkline(c)
    if spark:
        body.append(note(spark))
    actions: list[ExecuteAction] = []
    if buttons:
        data = card_data(c)
        actions = [
            ExecuteAction(title="Share in channel", verb="share_card", data=data),
            ExecuteAction(title="How is this computed?", verb="how_computed", data=data),
            ExecuteAction(title="Log action", verb="log_action", data=data),
            ExecuteAction(title="Show chart", verb="show_chart", data=data),
        ]
    return card(body, actions)


def card_line(c: MetricCard) -> str:
    band = f" · {c.band}" if c.band else ""
    return (
        f"{STATUS_MARK[c.status]} **{c.name}**: {fmt.value(c.kind, c.value)} (n = {c.n})"
        f"{fmt.business_hours(c)} · "
        f"target {fmt.target(c.kind, c.target)}{band} · trend {fmt.card_trend(c)}"
    )


def dora(d: DoraCard) -> Card:
    body: list[CardElement] = [
        title(f"DORA keys · {escape(d.team)}"),
        note(f"{escape(fmt.period(d.period))} · DORA {d.edition} edition bands"),
    ]
    body += [text(card_line(c)) for c in d.cards]
    return card(body)


def health_line(h: Health) -> str:
    return f"{h.on_target} of {h.with_data} on target" + (
        f" ({len(h.cards) - h.with_data} without data)" if h.with_data < len(h.cards) else ""
    )


def health(h: Health) -> Card:
    body: list[CardElement] = [
        title(f"Health · {escape(h.team)}"),
        text(f"**{escape(h.team)}: {health_line(h)}** · {escape(fmt.period(h.period))}"),
    ]
    body += [text(card_line(c)) for c in h.cards]
    body += [note(line) for line in fmt.no_source(h.no_source)]
    excluded = fmt.excluded(h.excluded)
    if excluded:
        body.append(note(excluded))
    return card(body)


# --- help, errors, notices ------------------------------------------------------------------


def help_card(
    usage: Sequence[tuple[str, str]], channel_team: str | None, teams: Sequence[str], where: str
) -> Card:
    """``usage``: (how to type it, what it gives) rows, worded by the surface; ``where``:
    the sentence about this conversation's team."""
    metrics = "\n".join(
        f"- **{m.id}**" + (f" ({', '.join(m.aliases)})" if m.aliases else "") + f": {m.name}"
        for m in registry.METRICS
    )
    body: list[CardElement] = [
        title("kpibot: your team's delivery KPIs"),
        FactSet(facts=[Fact(title=u, value=d) for u, d in usage]),
        text("**Metrics**\n\n" + metrics),
        note(
            f"{where} Periods: 28d (default), 90d, last-week, this-week, last-month, "
            "this-month, 2026-W46, 2026-10, 2026-Q3."
        ),
        note(f"Teams: {escape(', '.join(teams) or '(none configured)')}"),
    ]
    return card(body)


def problem(message: str, suggestions: Sequence[str] = (), help_hint: str = "") -> Card:
    """A clear error with "did you mean" commands (already worded for the surface)."""
    body: list[CardElement] = [text(f"🤔 {message}")]
    if suggestions:
        body.append(text("Did you mean: " + " · ".join(f"**{s}**" for s in suggestions[:5])))
    if help_hint:
        body.append(note(help_hint))
    return card(body)


def message(s: str) -> Card:
    """One sentence (a notice, a refusal) as a card."""
    return card([text(s)])


def choose(prompt: str, options: Sequence[tuple[str, dict[str, str]]]) -> Card:
    """A question with one button per option (title, data)."""
    return card(
        [text(prompt)],
        [ExecuteAction(title=t, verb="pick", data=data) for t, data in options[:6]],
    )


# --- working agreements ---------------------------------------------------------------------

#: the ``Action.Execute`` verbs of an agreement line (handlers: ``bot.teams.agreements``)
AGREEMENT_SNOOZE = "agreement_snooze"
AGREEMENT_EXCLUDE = "agreement_exclude"
MAX_AGREEMENT_LINES = 20


def agreements(report: AgreementsReport, *, buttons: bool = True) -> Card:
    """A nudge, a roll-up or the ``agreements`` answer as a card: the PRs in breach grouped
    by agreement, each with *Open PR*, *Snooze 1 day* and *Exclude from metrics*."""
    body: list[CardElement] = [
        title(f"{fmt.AGREEMENT_TITLES[report.kind]} · {escape(report.team)}")
    ]
    if report.kind == "list":
        agreed = [fmt.agreement(k, v, report.business_hours) for k, v in report.agreements]
        body.append(
            text(
                "**Agreed:** "
                + (
                    ", ".join(agreed)
                    if agreed
                    else "no working agreements yet (agreements: in kpibot.yml)"
                )
            )
        )
    limits = dict(report.agreements)
    current = None
    shown = report.lines[:MAX_AGREEMENT_LINES]
    for line in shown:
        if line.agreement != current:
            current = line.agreement
            rule = fmt.agreement(current, limits.get(current, line.limit), report.business_hours)
            body.append(text(f"**{escape(rule)}**", spacing="Medium"))
        measure = fmt.breach_measure(
            line.agreement, line.measured, report.business_hours, line.snoozed_until
        )
        body.append(
            text(f"- {escape(line.repository)}#{line.number} {escape(line.title)} · {measure}")
        )
        if buttons:
            data = {"t": line.team, "pr": line.pr_id}
            actions: list[Any] = []
            if line.url and line.url.startswith("https://"):
                actions.append(OpenUrlAction(title="Open PR", url=line.url))
            actions.append(ExecuteAction(title="Snooze 1 day", verb=AGREEMENT_SNOOZE, data=data))
            actions.append(
                ExecuteAction(title="Exclude from metrics", verb=AGREEMENT_EXCLUDE, data=data)
            )
            body.append(ActionSet(actions=actions))
    if len(report.lines) > len(shown):
        body.append(note(f"{len(report.lines) - len(shown)} more not shown"))
    if report.kind == "list" and not report.lines and report.agreements:
        body.append(text("No open PR is in breach 🎉"))
    if report.snoozed:
        body.append(note(fmt.snoozed_note(report.snoozed)))
    if report.folded:
        body.append(text("**Held back this week (noise budget)**", spacing="Medium"))
        body += [text(f"- {escape(t)}") for t in report.folded]
    return card(body)


def exclude_dialog(data: dict[str, Any]) -> Card:
    """Asks a lead why a PR should be left out of the metrics; *Exclude* sends the reason
    with the button's data (verb ``agreement_exclude``)."""
    return card(
        [
            title("Exclude from metrics"),
            text(
                "The PR will count for none of the team's KPIs and never be in breach of an "
                "agreement again. Your name and reason are recorded."
            ),
            TextInput(
                id="reason",
                label="Why?",
                is_multiline=True,
                is_required=True,
                max_length=500,
                error_message="Say why the PR should be left out",
            ),
        ],
        [ExecuteAction(title="Exclude", verb=AGREEMENT_EXCLUDE, data=data)],
    )
