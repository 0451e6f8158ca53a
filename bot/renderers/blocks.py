"""Slack Block Kit rendering. Slack's limits are enforced here, by truncating with a note and
never by failing: 50 blocks per message, 100 per view, 3000 characters per section text,
150 characters per header, 10 fields per section.

Source-provided strings go through ``bot.renderers.mrkdwn`` (``escape``, ``link``) and every
mrkdwn text object is ``verbatim``: Slack makes no link or mention out of plain text in it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bot.metrics.registry import BY_ID
from bot.renderers import format as fmt
from bot.renderers import mrkdwn
from bot.renderers.mrkdwn import GITHUB_COM, Links, escape
from bot.reports.agreements import AgreementsReport, BreachLine
from bot.reports.alerts import Alert
from bot.reports.cards import MetricCard
from bot.reports.digests import ActionItemView, MonthlyDigest, WeeklyDigest
from bot.reports.freshness import SourceNotice

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000

Block = dict[str, Any]
STATUS_ICON = {
    "on target": ":white_check_mark:",
    "off target": ":warning:",
    "no data": ":grey_question:",
}


def _clip(s: str, limit: int, more: str = "…") -> str:
    return s if len(s) <= limit else s[: limit - len(more)] + more


def _mrkdwn(text: str) -> dict[str, Any]:
    # verbatim: no automatic links or mentions from plain text (a URL or "@channel" in a
    # source string); our own <url|text>, <@U…> and <#C…> still work
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def header(s: str) -> Block:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": _clip(s, MAX_HEADER_TEXT), "emoji": True},
    }


def section(markdown: str, more_url: str | None = None) -> Block:
    if len(markdown) > MAX_SECTION_TEXT:
        tail = f"… <{more_url}|more>" if more_url else "… (truncated)"
        markdown = markdown[: MAX_SECTION_TEXT - len(tail)] + tail
    return {"type": "section", "text": _mrkdwn(markdown)}


def fields(items: list[str]) -> Block:
    return {
        "type": "section",
        "fields": [_mrkdwn(_clip(f, MAX_FIELD_TEXT)) for f in items[:MAX_FIELDS]],
    }


def context(markdown: str) -> Block:
    return {"type": "context", "elements": [_mrkdwn(_clip(markdown, 3000))]}


def divider() -> Block:
    return {"type": "divider"}


def limit_blocks(
    blocks: list[Block], limit: int = MAX_MESSAGE_BLOCKS, more_url: str | None = None
) -> list[Block]:
    """Keep at most ``limit`` blocks; the last one says what was left out."""
    if len(blocks) <= limit:
        return blocks
    left = len(blocks) - (limit - 1)
    note = f"{left} more item{'s' if left > 1 else ''} not shown"
    if more_url:
        note += f": <{more_url}|see all>"
    return [*blocks[: limit - 1], context(note)]


def card_line(c: MetricCard) -> str:
    band = f" · {c.band}" if c.band else ""
    return (
        f"{STATUS_ICON[c.status]} *{c.name}*: {fmt.value(c.kind, c.value)} "
        f"(n = {c.n}){fmt.business_hours(c)} · target {fmt.target(c.kind, c.target)}{band} · "
        f"trend {fmt.card_trend(c)}"
    )


def _item_line(i: ActionItemView) -> str:
    due = f"due {i.due_on.isoformat()}" + (" *overdue*" if i.overdue else "")
    kpi = f" · {i.kpi}" if i.kpi else ""
    owner = mrkdwn.user(i.owner)
    return f"• {escape(i.opportunity)} → {escape(i.resolution)} · {owner} · {due}{kpi}"


def _list_section(title: str, lines: list[str], empty: str) -> Block:
    body = "\n".join(lines) if lines else empty
    return section(f"*{title}*\n{body}")


def weekly(d: WeeklyDigest, links: Links = GITHUB_COM) -> dict[str, Any]:
    """``links``: which source URLs may be links (default: github.com)."""
    blocks: list[Block] = [
        header(f"Weekly leading indicators · {d.team}"),
        context(f"{fmt.period(d.period)} · team time zone {d.period.timezone}"),
    ]
    blocks.extend(section(card_line(c)) for c in d.cards)
    if d.biggest_phase:
        phase, secs = d.biggest_phase
        blocks.append(context(f"Biggest cycle-time phase: *{phase}*, {fmt.duration(secs)} p50"))
    blocks.append(divider())
    waiting = [
        f"• {mrkdwn.link(w.url, f'{w.repository}#{w.number}', links)} {escape(w.title)}"
        for w in d.waiting
    ]
    blocks.append(
        _list_section(f"PRs waiting for review ({len(d.waiting)})", waiting, "None :tada:")
    )
    blocks.append(
        _list_section(
            f"Open action items ({len(d.open_items)}, {len(d.overdue_items)} overdue)",
            [_item_line(i) for i in d.open_items],
            "None",
        )
    )
    blocks.append(context(fmt.as_of(d.data_as_of)))
    blocks.append(
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Log action"},
                    "action_id": "log_action",
                    "value": f"{d.team}|",
                },
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Details"},
                    "action_id": "digest_details",
                    "value": f"{d.team}|weekly|{d.period.label}",
                },
            ],
        }
    )
    summary = ", ".join(f"{c.name} {fmt.value(c.kind, c.value)}" for c in d.cards)
    label = fmt.period_label(d.period)
    return {
        "text": f"Weekly leading indicators for {escape(d.team)}, {label}: {summary}",
        "blocks": limit_blocks(blocks),
    }


def monthly(d: MonthlyDigest) -> dict[str, Any]:
    blocks: list[Block] = [
        header(f"Monthly lagging indicators · {d.team}"),
        context(
            f"{fmt.period(d.period)} · DORA {d.edition} bands · team time zone {d.period.timezone}"
        ),
    ]
    for c in (*d.dora, d.predictability, d.scope_creep):
        three = d.three_month.get(c.metric)
        spark = f" · 3 months `{fmt.sparkline([p.value for p in three])}`" if three else ""
        blocks.append(section(card_line(c) + spark))
    blocks.append(divider())
    done = []
    for i in d.completed_items:
        kind = BY_ID[i.kpi].kind if i.kpi in BY_ID else None
        moved = (
            f" · {i.kpi}: {fmt.value(kind, i.baseline)} → {fmt.value(kind, i.after)}"
            if kind is not None
            else ""
        )
        done.append(f"• {escape(i.opportunity)} → {escape(i.resolution)}{moved}")
    blocks.append(_list_section(f"Completed this month ({len(done)})", done, "None"))
    blocks.append(
        _list_section(
            f"Overdue action items ({len(d.overdue_items)})",
            [_item_line(i) for i in d.overdue_items],
            "None",
        )
    )
    blocks.append(context(fmt.as_of(d.data_as_of)))
    summary = ", ".join(f"{c.name} {fmt.value(c.kind, c.value)}" for c in d.dora)
    label = fmt.period_label(d.period)
    return {
        "text": f"Monthly lagging indicators for {escape(d.team)}, {label}: {summary}",
        "blocks": limit_blocks(blocks),
    }


def digest(d: WeeklyDigest | MonthlyDigest, links: Links = GITHUB_COM) -> dict[str, Any]:
    """Either digest as Block Kit (``text`` fallback and ``blocks``)."""
    return weekly(d, links) if isinstance(d, WeeklyDigest) else monthly(d)


def alert(a: Alert) -> dict[str, Any]:
    """A threshold alert for the team's channel: what crossed, its value, n and target;
    *How is this computed?* (answered like a card's button) and *Turn this alert off*."""
    icon = STATUS_ICON["off target" if a.crossing == "off target" else "on target"]
    headline = escape(fmt.alert_headline(a))
    return {
        "text": escape(f"{fmt.alert_headline(a)}: {fmt.alert_detail(a)}"),
        "blocks": [
            section(f"{icon} *{headline}*\n{escape(fmt.alert_detail(a))}"),
            context(escape(fmt.alert_when(a))),
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "How is this computed?"},
                        "action_id": "how_computed",
                        "value": a.kpi,
                    },
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Turn this alert off"},
                        "action_id": "alert_off",
                        "value": json.dumps({"m": a.kpi, "t": a.team, "p": f"{a.window_days}d"}),
                    },
                ],
            },
        ],
    }


def source_notice(n: SourceNotice) -> dict[str, Any]:
    """A source's freshness notice (it fails, or works again) as Block Kit."""
    head, lines = fmt.notice(n)
    mark = ":white_check_mark:" if n.kind == "recovered" else ":warning:"
    body = "\n".join(escape(line) for line in lines)
    return {
        "text": f"{escape(head)}. {' '.join(escape(line) for line in lines)}",
        "blocks": [section(f"{mark} *{escape(head)}*\n{body}")],
    }


# --- working agreements ---------------------------------------------------------------------

#: the action ids of an agreement line's buttons (the Slack listeners route on them)
AGREEMENT_SNOOZE = "agreement_snooze"
AGREEMENT_EXCLUDE = "agreement_exclude"
AGREEMENT_OPEN = "agreement_open"
#: PR lines with buttons in one message (2 blocks each, within Slack's 50)
MAX_AGREEMENT_LINES = 20


def agreement_value(team: str, pr_id: int) -> str:
    """What an agreement line's buttons carry: the team and the PR's id."""
    return json.dumps({"t": team, "pr": pr_id}, separators=(",", ":"))


def author_mention(login: str | None, mentions: Mapping[str, str]) -> str:
    """`` · by <@U…>`` when the identity mapping knows the author's Slack id, else
    `` · by <login>`` (escaped); nothing when the author is unknown."""
    if not login:
        return ""
    user = mentions.get(login)
    return f" · by {mrkdwn.user(user) if user else escape(login)}"


def _breach_line(
    line: BreachLine, links: Links, business_hours: bool, mentions: Mapping[str, str]
) -> str:
    ref = f"{line.repository}#{line.number}"
    measure = fmt.breach_measure(line.agreement, line.measured, business_hours, line.snoozed_until)
    who = author_mention(line.author, mentions)
    return f"• {mrkdwn.link(line.url, ref, links)} {escape(line.title)} · {measure}{who}"


def agreements(
    report: AgreementsReport,
    links: Links = GITHUB_COM,
    *,
    buttons: bool = True,
    mentions: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A nudge, a roll-up or the ``/kpi agreements`` answer: the PRs in breach grouped by
    agreement, each with its author (``mentions``: GitHub login -> Slack id, for those the
    identity mapping knows) and *Open PR*, *Snooze 1 day* and *Exclude from metrics*."""
    mentions = mentions or {}
    blocks: list[Block] = [header(f"{fmt.AGREEMENT_TITLES[report.kind]} · {report.team}")]
    if report.kind == "list":
        agreed = [fmt.agreement(k, v, report.business_hours) for k, v in report.agreements]
        blocks.append(
            section(
                "*Agreed:* "
                + (", ".join(agreed) if agreed else "no working agreements yet")
                + ("" if agreed else " (`agreements:` in kpibot.yml)")
            )
        )
    shown = report.lines[:MAX_AGREEMENT_LINES]
    limits = dict(report.agreements)
    current = None
    for line in shown:
        if line.agreement != current:
            current = line.agreement
            rule = fmt.agreement(current, limits.get(current, line.limit), report.business_hours)
            blocks.append(context(f"*{escape(rule)}*"))
        blocks.append(section(_breach_line(line, links, report.business_hours, mentions)))
        if buttons:
            value = agreement_value(line.team, line.pr_id)
            elements: list[Block] = []
            if line.url and links.allows(line.url):
                elements.append(
                    {
                        "type": "button",
                        "action_id": f"{AGREEMENT_OPEN}:{line.pr_id}:{line.agreement}",
                        "text": {"type": "plain_text", "text": "Open PR"},
                        "url": line.url,
                    }
                )
            elements.append(
                {
                    "type": "button",
                    "action_id": f"{AGREEMENT_SNOOZE}:{line.pr_id}:{line.agreement}",
                    "text": {"type": "plain_text", "text": "Snooze 1 day"},
                    "value": value,
                }
            )
            elements.append(
                {
                    "type": "button",
                    "action_id": f"{AGREEMENT_EXCLUDE}:{line.pr_id}:{line.agreement}",
                    "text": {"type": "plain_text", "text": "Exclude from metrics"},
                    "value": value,
                }
            )
            blocks.append({"type": "actions", "elements": elements})
    if len(report.lines) > len(shown):
        blocks.append(context(f"{len(report.lines) - len(shown)} more not shown"))
    if report.kind == "list" and not report.lines and report.agreements:
        blocks.append(section("No open PR is in breach :tada:"))
    if report.snoozed:
        blocks.append(context(fmt.snoozed_note(report.snoozed)))
    if report.folded:
        blocks.append(
            section(
                "*Held back this week (noise budget)*\n"
                + "\n".join(f"• {escape(t)}" for t in report.folded)
            )
        )
    n = len(report.lines)
    fallback = {
        "nudge": f"{n} PR{'s' if n != 1 else ''} of {report.team} missed a working agreement",
        "rollup": f"{n} PR{'s' if n != 1 else ''} of {report.team} still open against its "
        "working agreements",
        "list": f"Working agreements of {report.team}: {n} in breach",
    }[report.kind]
    return {"text": escape(fallback), "blocks": limit_blocks(blocks)}
