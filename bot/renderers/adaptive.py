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
from collections.abc import Mapping, Sequence
from typing import Any, Final

from microsoft_teams.cards import (
    Action,
    ActionSet,
    AdaptiveCard,
    CardElement,
    ExecuteAction,
    Fact,
    FactSet,
    Image,
    Mention,
    MentionedEntity,
    OpenUrlAction,
    SubmitAction,
    TeamsCardProperties,
    TextBlock,
    TextInput,
)

from bot.metrics import registry
from bot.metrics.registry import BY_ID, Kind
from bot.renderers import format as fmt
from bot.renderers.mrkdwn import GITHUB_COM, Links
from bot.reports.agreements import AgreementsReport
from bot.reports.alerts import Alert
from bot.reports.cards import PHASE_KEYS, DoraCard, Health, MetricCard
from bot.reports.digests import ActionItemView, MonthlyDigest, WeeklyDigest
from bot.reports.freshness import SourceNotice, SourceStatus

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


def card(
    body: Sequence[CardElement],
    actions: Sequence[Action] = (),
    *,
    msteams: TeamsCardProperties | None = None,
) -> Card:
    """A 1.5 card as JSON, cut to :data:`MAX_CARD_BYTES`; ``msteams``: Teams' own properties
    (the entities of its ``<at>`` mentions)."""
    model = AdaptiveCard(
        version=VERSION, body=list(body), actions=list(actions) or None, msteams=msteams
    )
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


def metric_card(c: MetricCard, *, buttons: bool = True, shared_by: str | None = None) -> Card:
    """``shared_by``: the name of the person who shared the card in the conversation."""
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
    body.append(note(fmt.as_of(c.data_as_of)))
    if shared_by:
        body.append(note(f"Shared by {escape(shared_by)}"))
    actions: list[Action] = []
    if buttons:
        data = card_data(c)
        actions = [
            ExecuteAction(title="Share in channel", verb="share_card", data=data),
            ExecuteAction(title="How is this computed?", verb="how_computed", data=data),
            dialog_button("Log action", "log_action", data),
            ExecuteAction(title="Show chart", verb="show_chart", data=data),
        ]
    return card(body, actions)


def dialog_button(title: str, verb: str, data: dict[str, Any] | None = None) -> SubmitAction:
    """A button that opens a dialog (Teams' task module: an ``Action.Submit`` whose data says
    ``msteams: {type: task/fetch}``; an ``Action.Execute`` cannot open one). The dialog is
    asked for with ``verb`` and ``data``."""
    return SubmitAction(
        title=title, data={**(data or {}), "verb": verb, "msteams": {"type": "task/fetch"}}
    )


def back_button(c_data: dict[str, str]) -> ExecuteAction:
    return ExecuteAction(title="Back to the card", verb="show_card", data=c_data)


def definition(
    spec: registry.MetricSpec,
    target_text: str | None,
    business_hours: str | None,
    back: dict[str, str] | None = None,
) -> Card:
    """How a KPI is computed (the Block Kit definition's content); ``back``: the metric
    card's data, for a button that shows the card again."""
    direction = "lower is better" if spec.lower_is_better else "higher is better"
    facts = (
        f"Unit: {spec.unit} · {direction} · {spec.cadence} indicator"
        + (" · DORA key" if spec.dora else "")
        + (f" · target {escape(target_text)}" if target_text else "")
    )
    body: list[CardElement] = [title(f"How {spec.name} is computed"), text(escape(spec.definition))]
    if business_hours:
        body.append(
            text(
                "For this team in **business hours**: only working time counts, "
                f"{escape(business_hours)}."
            )
        )
    body.append(note(facts))
    return card(body, [back_button(back)] if back else [])


def chart(c: MetricCard, urls: Sequence[tuple[str, str]], alt: str, notice: str = "") -> Card:
    """A card's charts by URL (``urls``: (image URL, title)), the data in words below them,
    and a button back to the card."""
    body: list[CardElement] = [title(f"{c.name} · {escape(c.team)}")]
    for url, what in urls:
        body.append(Image(url=url, alt_text=what[:200], size="Stretch"))
    if notice:
        body.append(note(notice))
    body.append(note(escape(alt)))
    return card(body, [back_button(card_data(c))])


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
    body.append(note(fmt.as_of(d.data_as_of)))
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
    body.append(note(fmt.as_of(h.data_as_of)))
    excluded = fmt.excluded(h.excluded)
    if excluded:
        body.append(note(excluded))
    return card(body)


# --- digests --------------------------------------------------------------------------------


def link(url: str | None, label: str, links: Links) -> str:
    """``label`` linked to ``url`` when ``links`` allows it; otherwise the label and the URL
    as text. Both are source strings: escaped here."""
    if url and links.allows(url) and not any(ch in url for ch in "()[]"):
        return f"[{escape(label)}]({url})"
    if url:
        return f"{escape(label)} ({escape(url)})"
    return escape(label)


def _item_line(i: ActionItemView) -> str:
    due = f"due {i.due_on.isoformat()}" + (" **overdue**" if i.overdue else "")
    kpi = f" · {escape(i.kpi)}" if i.kpi else ""
    return f"- {escape(i.opportunity)} → {escape(i.resolution)} · {due}{kpi}"


LIST_CHARS = 6000  # a digest's list beyond this says how many more it has


def _list(heading: str, lines: Sequence[str], empty: str) -> TextBlock:
    """A heading and its lines; a long list is cut, with how many lines are not shown."""
    shown: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) > LIST_CHARS and shown:
            break
        shown.append(line)
        used += len(line) + 1
    if len(shown) < len(lines):
        shown.append(f"- … and {len(lines) - len(shown)} more")
    return text(f"**{heading}**\n\n" + ("\n".join(shown) if shown else empty), separator=True)


def digest_ref(d: WeeklyDigest | MonthlyDigest) -> dict[str, str]:
    """What a digest's buttons carry to find it again: team, kind and period."""
    kind = "weekly" if isinstance(d, WeeklyDigest) else "monthly"
    return {"t": d.team, "k": kind, "p": d.period.label}


def weekly(d: WeeklyDigest, links: Links = GITHUB_COM) -> Card:
    """The weekly leading digest; ``links``: which source URLs may be links. Its buttons
    are Slack's: *Log action* (the action-item dialog for the team) and *Details* (the
    team's health over the week, in place of the digest for the person who asks)."""
    body: list[CardElement] = [
        title(f"Weekly leading indicators · {escape(d.team)}"),
        note(f"{escape(fmt.period(d.period))} · team time zone {escape(d.period.timezone)}"),
    ]
    body += [text(card_line(c)) for c in d.cards]
    if d.biggest_phase:
        phase, secs = d.biggest_phase
        body.append(note(f"Biggest cycle-time phase: **{phase}**, {fmt.duration(secs)} p50"))
    waiting = [
        f"- {link(w.url, f'{w.repository}#{w.number}', links)} {escape(w.title)}" for w in d.waiting
    ]
    body.append(_list(f"PRs waiting for review ({len(d.waiting)})", waiting, "None 🎉"))
    body.append(
        _list(
            f"Open action items ({len(d.open_items)}, {len(d.overdue_items)} overdue)",
            [_item_line(i) for i in d.open_items],
            "None",
        )
    )
    body.append(note(fmt.as_of(d.data_as_of)))
    actions: list[Action] = [
        dialog_button("Log action", "log_action", {"t": d.team}),
        ExecuteAction(title="Details", verb="digest_details", data=digest_ref(d)),
    ]
    return card(body, actions)


def back_to_digest(ref: dict[str, str]) -> ExecuteAction:
    return ExecuteAction(title="Back to the digest", verb="show_digest", data=ref)


def with_actions(c: Card, actions: Sequence[Action]) -> Card:
    """``c`` with ``actions`` added after its own buttons."""
    more = [a.model_dump(by_alias=True, exclude_none=True) for a in actions]
    return limit({**c, "actions": [*c.get("actions", []), *more]})


def monthly(d: MonthlyDigest) -> Card:
    """The monthly lagging digest (its DORA chart is posted beside it)."""
    body: list[CardElement] = [
        title(f"Monthly lagging indicators · {escape(d.team)}"),
        note(
            f"{escape(fmt.period(d.period))} · DORA {d.edition} bands · team time zone "
            f"{escape(d.period.timezone)}"
        ),
    ]
    for c in (*d.dora, d.predictability, d.scope_creep):
        three = d.three_month.get(c.metric)
        spark = f" · 3 months {fmt.sparkline([p.value for p in three])}" if three else ""
        body.append(text(card_line(c) + spark))
    done = []
    for i in d.completed_items:
        kind = BY_ID[i.kpi].kind if i.kpi in BY_ID else None
        moved = (
            f" · {escape(i.kpi or '')}: {fmt.value(kind, i.baseline)} → {fmt.value(kind, i.after)}"
            if kind is not None
            else ""
        )
        done.append(f"- {escape(i.opportunity)} → {escape(i.resolution)}{moved}")
    body.append(_list(f"Completed this month ({len(done)})", done, "None"))
    body.append(
        _list(
            f"Overdue action items ({len(d.overdue_items)})",
            [_item_line(i) for i in d.overdue_items],
            "None",
        )
    )
    body.append(note(fmt.as_of(d.data_as_of)))
    return card(body)


def digest(d: WeeklyDigest | MonthlyDigest, links: Links = GITHUB_COM) -> Card:
    """Either digest as an Adaptive Card."""
    return weekly(d, links) if isinstance(d, WeeklyDigest) else monthly(d)


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


# --- threshold alerts -----------------------------------------------------------------------


def alert_data(a: Alert) -> dict[str, str]:
    """What an alert's button carries: the metric and team, as a card's (:func:`card_data`)."""
    return {"m": a.kpi, "t": a.team, "p": f"{a.window_days}d"}


def alert(a: Alert) -> Card:
    """A threshold alert for the team's conversation; *How is this computed?* is the verb a
    metric card's button uses, *Turn this alert off* is answered by
    :func:`bot.teams.alerts.alert_off`."""
    mark = STATUS_MARK["off target" if a.crossing == "off target" else "on target"]
    return card(
        [
            TextBlock(
                text=f"{mark} {escape(fmt.alert_headline(a))}",
                wrap=True,
                size="Medium",
                weight="Bolder",
            ),
            FactSet(
                facts=[
                    Fact(title="Value", value=fmt.value(a.kind, a.value)),
                    Fact(title="n", value=str(a.n)),
                    Fact(title="Target", value=fmt.target(a.kind, a.target)),
                    Fact(title="Status", value=a.crossing),
                ]
            ),
            note(escape(f"{fmt.alert_detail(a)}. {fmt.alert_when(a)}")),
        ],
        [
            ExecuteAction(title="How is this computed?", verb="how_computed", data=alert_data(a)),
            ExecuteAction(title="Turn this alert off", verb="alert_off", data=alert_data(a)),
        ],
    )


def source_notice(n: SourceNotice) -> Card:
    """A source's freshness notice (it fails, or works again) as an Adaptive Card."""
    head, lines = fmt.notice(n)
    mark = "✅" if n.kind == "recovered" else "⚠️"
    return card([title(f"{mark} {escape(head)}"), *(text(escape(line)) for line in lines)])


def source_status(st: SourceStatus) -> Card:
    """``status``: every source of a team, its data as of, last error and next run."""
    body: list[CardElement] = [
        title(f"Data sources · {escape(st.team)}"),
        note(fmt.as_of(st.data_as_of)),
    ]
    if not st.sources:
        body.append(text("This team reads no source yet: add repos to it in kpibot.yml."))
    for s in st.sources:
        body.append(text(("⚠️ " if s.failing else "✅ ") + escape(fmt.source_line(s))))
        if s.last_error:
            body.append(note(escape(s.last_error)))
    return card(body)


# --- working agreements ---------------------------------------------------------------------

#: the ``Action.Execute`` verbs of an agreement line (handlers: ``bot.teams.agreements``)
AGREEMENT_SNOOZE = "agreement_snooze"
AGREEMENT_EXCLUDE = "agreement_exclude"
MAX_AGREEMENT_LINES = 20


def author_mention(login: str | None, mentions: Mapping[str, str]) -> tuple[str, Mention | None]:
    """`` · by <at>login</at>`` and its mention entity when the identity mapping knows the
    author's Teams id (``mentions``: GitHub login -> Microsoft Entra object id), else
    `` · by login`` as plain text; nothing when the author is unknown."""
    if not login:
        return "", None
    shown = escape(login)
    user = mentions.get(login)
    if not user:
        return f" · by {shown}", None
    tag = f"<at>{shown}</at>"
    return f" · by {tag}", Mention(text=tag, mentioned=MentionedEntity(id=user, name=login))


def agreements(
    report: AgreementsReport, *, buttons: bool = True, mentions: Mapping[str, str] | None = None
) -> Card:
    """A nudge, a roll-up or the ``agreements`` answer as a card: the PRs in breach grouped
    by agreement, each with its author (an ``<at>`` mention with its ``msteams.entities``
    entry for those ``mentions`` knows) and *Open PR*, *Snooze 1 day* and *Exclude from
    metrics*."""
    mentions = mentions or {}
    entities: dict[str, Mention] = {}
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
        who, entity = author_mention(line.author, mentions)
        if entity is not None:
            entities.setdefault(entity.text or "", entity)
        body.append(
            text(f"- {escape(line.repository)}#{line.number} {escape(line.title)} · {measure}{who}")
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
    out = card(
        body, msteams=TeamsCardProperties(entities=list(entities.values())) if entities else None
    )
    if entities:  # a long card may have lost lines: only the mentions it still shows
        rendered = json.dumps(out["body"], ensure_ascii=False)
        kept = [e for e in out["msteams"]["entities"] if json.dumps(e["text"])[1:-1] in rendered]
        if kept:
            out["msteams"]["entities"] = kept
        else:
            out.pop("msteams")
    return out


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
