"""Block Kit for the Slack surface: help, metric cards with buttons, the action-item modal,
action lists, App Home. Pure functions from report data to payloads; Slack's limits (blocks
per message and view, characters per text, options per select) are enforced here by
truncating with a note.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Any

from bot.chat.grammar import COMMANDS
from bot.chat.items import MAX_OPPORTUNITY, MAX_RESOLUTION, ItemRow, TeamRow
from bot.metrics import registry
from bot.metrics.registry import Kind, MetricSpec
from bot.renderers import format as fmt
from bot.renderers import mrkdwn
from bot.renderers.blocks import (
    MAX_MESSAGE_BLOCKS,
    MAX_VIEW_BLOCKS,
    STATUS_ICON,
    Block,
    card_line,
    context,
    divider,
    fields,
    header,
    limit_blocks,
    section,
)
from bot.renderers.mrkdwn import escape
from bot.reports.cards import PHASE_KEYS, DoraCard, Health, MetricCard
from bot.reports.freshness import SourceStatus
from bot.store.subscriptions import Subscription

Payload = dict[str, Any]

MAX_OPTIONS = 100
MAX_OPTION_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_PRIVATE_METADATA = 3000
MAX_TITLE = 24
MODAL_CALLBACK = "action_item"

# block ids of the action-item modal (validation errors point at them; the core's field
# names map to them in bot.slack.listeners.views)
B_TEAM, B_KPI, B_OPPORTUNITY, B_RESOLUTION, B_OWNER, B_DUE = (
    "team",
    "kpi",
    "opportunity",
    "resolution",
    "owner",
    "due",
)


def _clip(s: str, limit: int) -> str:
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _plain(s: str, limit: int = 75) -> dict[str, Any]:
    return {"type": "plain_text", "text": _clip(s, limit), "emoji": True}


def button(
    text: str, action_id: str, value: str, style: str | None = None, url: str | None = None
) -> Block:
    b: Block = {
        "type": "button",
        "text": _plain(text),
        "action_id": action_id,
        "value": value[:MAX_BUTTON_VALUE],
    }
    if style:
        b["style"] = style
    if url:
        b["url"] = url
    return b


def actions(*elements: Block, block_id: str | None = None) -> Block:
    b: Block = {"type": "actions", "elements": list(elements)[:25]}
    if block_id:
        b["block_id"] = block_id
    return b


def message(text: str, blocks: list[Block] | None = None) -> Payload:
    """An ephemeral reply: ``text`` is the notification fallback."""
    return {
        "response_type": "ephemeral",
        "text": _clip(text, 3000),
        "blocks": limit_blocks(blocks if blocks is not None else [section(text)]),
    }


# --- help and errors ------------------------------------------------------------------------

USAGE = tuple((f"`/kpi {escape(f'{u.words} {u.args}'.strip())}`", u.description) for u in COMMANDS)
PERIODS_HELP = (
    "Periods: `28d` (default), `90d`, `last-week`, `this-week`, `last-month`, `this-month`, "
    "`2026-W46`, `2026-10`, `2026-Q3`."
)


def metric_list() -> str:
    lines = []
    for m in registry.METRICS:
        aliases = f" ({', '.join(f'`{a}`' for a in m.aliases)})" if m.aliases else ""
        lines.append(f"• `{m.id}`{aliases}: {m.name}")
    return "\n".join(lines)


def help_payload(
    channel_team: str | None, teams: Sequence[str], note: str | None = None
) -> Payload:
    where = (
        f"This channel's team: *{escape(channel_team)}*."
        if channel_team
        else "This channel has no team yet: `/kpi team set &lt;team&gt;` maps it."
    )
    blocks: list[Block] = []
    if note:
        blocks.append(section(note))
    blocks += [
        header("kpibot: your team's delivery KPIs"),
        section("\n".join(f"{u} · {d}" for u, d in USAGE)),
        section("*Metrics*\n" + metric_list()),
        context(f"{where} {PERIODS_HELP}"),
        context(f"Teams: {escape(', '.join(teams) or '(none configured)')}"),
    ]
    return message(
        "kpibot help: /kpi &lt;metric&gt; [team] [period], dora, health, actions", blocks
    )


def error_payload(
    problem: str, suggestions: Sequence[str] = (), channel_team: str | None = None
) -> Payload:
    """A clear ephemeral error with "did you mean" commands and the short usage."""
    blocks: list[Block] = [section(f":thinking_face: {problem}")]
    if suggestions:
        tries = " · ".join(f"`{escape(s)}`" for s in suggestions[:5])
        blocks.append(section(f"Did you mean: {tries}"))
    blocks.append(context("`/kpi help` lists every command and metric."))
    text = problem + (" Try: " + ", ".join(suggestions[:3]) if suggestions else "")
    return message(text, blocks)


def which_team_payload(command_text: str, teams: Sequence[str]) -> Payload:
    """Ask which team, with one button per team that re-runs the command for it."""
    buttons = [
        button(t, f"pick_team_{i}", json.dumps({"text": command_text, "team": t}))
        for i, t in enumerate(teams[:25])
    ]
    blocks: list[Block] = [
        section(
            "Which team? This channel has no team and you're in none I know of. "
            "Pick one (or map this channel once: `/kpi team set &lt;team&gt;`)."
        )
    ]
    if buttons:
        blocks.append(actions(*buttons, block_id="pick_team"))
    return message("Which team? " + escape(", ".join(teams)), blocks)


# --- metric cards ---------------------------------------------------------------------------


def card_value(card: MetricCard) -> str:
    """The button value that names a card: metric, team and period word."""
    return json.dumps({"m": card.metric, "t": card.team, "p": card.period.label})


def _phases(card: MetricCard) -> str | None:
    b = card.breakdown or {}
    if card.metric not in PHASE_KEYS or not card.n:
        return None
    keys = PHASE_KEYS[card.metric]
    known = {k: b.get(k) for k in keys if isinstance(b.get(k), (int, float))}
    biggest = max(known, key=lambda k: known[k] or 0) if known else None
    parts = []
    for k, v in zip(keys, fmt.durations([b.get(k) for k in keys]), strict=True):
        parts.append(f"*{k} {v}*" if k == biggest else f"{k} {v}")
    line = "*Phases (p50):* " + " · ".join(parts)
    if b.get("merged_without_review"):
        line += f"\nMerged without review: {b['merged_without_review']}"
    return line


def _sparkline(card: MetricCard) -> str | None:
    if not card.sparkline:
        return None
    values = [p.value for p in card.sparkline]
    first, last = card.sparkline[0].label, card.sparkline[-1].label
    return (
        f"Last {len(values)} periods: `{fmt.sparkline(values)}` · {escape(first)} to "
        f"{escape(last)} · `·` = no data"
    )


def card_blocks(
    card: MetricCard, *, shared_by: str | None = None, buttons: bool = True
) -> list[Block]:
    kind = card.kind
    blocks: list[Block] = [
        header(f"{card.name} · {card.team}"),
        context(
            fmt.with_basis(
                card, f"{escape(fmt.period(card.period))} · team time zone {card.period.timezone}"
            )
        ),
    ]
    if card.status == "no data":
        value_text = "*Value*\nno data (n = 0)"
    else:
        # "(p50)" only where the value is a median (not for a share or a rate)
        label = "Value (p50)" if card.p50 is not None else "Value"
        value_text = f"*{label}*\n{fmt.value(kind, card.value)}"
    items = [value_text, f"*n*\n{card.n}"]
    if card.p75 is not None and kind is not Kind.RATIO:
        p75, p90 = fmt.detail(kind, card.value, card.p75, card.p90)
        items.append(f"*p75 / p90*\n{p75} / {p90}")
    items.append(
        f"*Target*\n{fmt.target(kind, card.target)} {STATUS_ICON[card.status]} {card.status}"
    )
    items.append(f"*Trend*\n{fmt.card_trend(card)}\n{fmt.previous(card)}")
    if card.band:
        items.append(f"*DORA {card.edition} band*\n{card.band}")
    blocks.append(fields(items))
    phases = _phases(card)
    if phases:
        blocks.append(section(phases))
    unknown = fmt.unknown_contents(card.metric, card.breakdown)
    if unknown:
        blocks.append(context(unknown))
    excluded = fmt.excluded(card.excluded)
    if excluded:
        blocks.append(context(excluded))
    spark = _sparkline(card)
    if spark:
        blocks.append(context(spark))
    blocks.append(context(fmt.as_of(card.data_as_of)))
    if shared_by:
        who = mrkdwn.user(shared_by)
        blocks.append(context(f"Shared by {who} · `/kpi {card.metric}` for your own"))
    if buttons:
        value = card_value(card)
        row = []
        if not shared_by:
            row.append(button("Share in channel", "share_card", value, style="primary"))
        row += [
            button("How is this computed?", "how_computed", card.metric),
            button("Log action", "log_action", f"{card.team}|{card.metric}"),
            button("Show chart", "show_chart", value),
        ]
        blocks.append(actions(*row, block_id="card_actions"))
    return limit_blocks(blocks)


def card_summary(card: MetricCard) -> str:
    return (
        f"{card.name} for {escape(card.team)}, {fmt.period(card.period)}: "
        f"{fmt.value(card.kind, card.value)}{fmt.business_hours(card)} (n = {card.n}), "
        f"{card.status}"
    )


def card_payload(card: MetricCard) -> Payload:
    return message(card_summary(card), card_blocks(card))


def shared_card_payload(card: MetricCard, user: str) -> dict[str, Any]:
    """The card as posted to the channel for everyone (no Share button, no response_type)."""
    return {"text": card_summary(card), "blocks": card_blocks(card, shared_by=user)}


def definition_payload(
    spec: MetricSpec, target_text: str | None = None, business_hours: str | None = None
) -> Payload:
    """``business_hours``: the team's working time when it counts this KPI in business
    hours (``fmt.working_hours``)."""
    direction = "lower is better" if spec.lower_is_better else "higher is better"
    aliases = ", ".join(f"`{a}`" for a in spec.aliases)
    body = (
        f"*How {spec.name} is computed*\n{spec.definition}\n\n"
        + (
            f"For this team in *business hours*: only working time counts, "
            f"{escape(business_hours)}.\n\n"
            if business_hours
            else ""
        )
        + f"Unit: {spec.unit} · {direction} · {spec.cadence} indicator"
        + (" · DORA key" if spec.dora else "")
        + (f" · target {target_text}" if target_text else "")
        + (f"\nAsk for it with `/kpi {spec.id}`" + (f" (or {aliases})" if aliases else ""))
    )
    return message(f"How {spec.name} is computed: {spec.definition}", [section(body)])


def dora_payload(d: DoraCard) -> Payload:
    blocks: list[Block] = [
        header(f"DORA keys · {d.team}"),
        context(f"{escape(fmt.period(d.period))} · DORA {d.edition} edition bands"),
    ]
    blocks += [section(card_line(c)) for c in d.cards]
    blocks.append(context(fmt.as_of(d.data_as_of)))
    summary = ", ".join(f"{c.name} {fmt.value(c.kind, c.value)}" for c in d.cards)
    return message(f"DORA keys for {escape(d.team)}: {summary}", blocks)


def health_line(h: Health) -> str:
    return f"{h.on_target} of {h.with_data} on target" + (
        f" ({len(h.cards) - h.with_data} without data)" if h.with_data < len(h.cards) else ""
    )


def health_blocks(h: Health, title: bool = True) -> list[Block]:
    blocks: list[Block] = []
    if title:
        blocks.append(header(f"Health · {h.team}"))
    blocks.append(section(f"*{escape(h.team)}: {health_line(h)}* · {escape(fmt.period(h.period))}"))
    blocks += [section(card_line(c)) for c in h.cards]
    blocks += [context(line) for line in fmt.no_source(h.no_source)]
    blocks.append(context(fmt.as_of(h.data_as_of)))
    excluded = fmt.excluded(h.excluded)
    if excluded:
        blocks.append(context(excluded))
    return blocks


def health_payload(h: Health) -> Payload:
    return message(f"Health of {escape(h.team)}: {health_line(h)}", limit_blocks(health_blocks(h)))


def status_payload(st: SourceStatus) -> Payload:
    """``/kpi status``: every source of a team, its data as of, last error and next run."""
    blocks: list[Block] = [
        header(f"Data sources · {st.team}"),
        context(escape(fmt.as_of(st.data_as_of))),
    ]
    if not st.sources:
        blocks.append(section("This team reads no source yet: add `repos` to it in kpibot.yml."))
    for src in st.sources:
        mark = ":warning:" if src.failing else ":white_check_mark:"
        body = f"{mark} {escape(fmt.source_line(src))}"
        if src.last_error:
            body += f"\n_Last error:_ {escape(src.last_error)}"
        blocks.append(section(body))
    failing = len(st.failing)
    summary = (
        f"Data sources of {escape(st.team)}: "
        + (f"{failing} failing" if failing else "all working")
        + f", {fmt.as_of(st.data_as_of)}"
    )
    return message(summary, limit_blocks(blocks))


# --- teams and subscriptions ----------------------------------------------------------------


def teams_payload(rows: Sequence[TeamRow], channel_team: str | None) -> Payload:
    lines = []
    for r in rows:
        ch = ", ".join(mrkdwn.channel(c) for c in r.channels) or "no channel"
        mark = " ← this channel" if r.name == channel_team else ""
        what = escape(
            fmt.team_definition(r.repos, r.members, r.github_team, r.paths, lambda p: f"`{p}`")
        )
        lines.append(f"• *{escape(r.name)}* · {what} · {escape(r.timezone)} · {ch}{mark}")
    blocks = [
        section("*Teams*\n" + ("\n".join(lines) or "No teams configured in kpibot.yml.")),
        context("Map this channel to a team: `/kpi team set <team>`"),
    ]
    return message("Teams: " + escape(", ".join(r.name for r in rows)), blocks)


def subscriptions_payload(
    subs: Sequence[Subscription], channel: str, when: dict[int, str] | None = None
) -> Payload:
    """``when``: subscription id -> when it is posted, in words."""
    if not subs:
        body = (
            f"{mrkdwn.channel(channel)} receives no digests. `/kpi subscribe weekly` posts the "
            "leading indicators every week; `/kpi subscribe monthly` the DORA keys every month."
        )
        return message("No digest subscriptions in this channel.", [section(body)])
    lines = []
    for s in subs:
        at = (when or {}).get(s.id) or s.schedule or "at the team's time"
        broken = f" · :warning: not posting: {escape(s.broken_reason or '')}" if s.broken else ""
        lines.append(f"• *{s.kind}* digest of *{escape(s.team)}*, {escape(at)}{broken}")
    blocks = [
        section(f"*Digests posted in {mrkdwn.channel(channel)}*\n" + "\n".join(lines)),
        context("`/kpi unsubscribe weekly` or `/kpi unsubscribe monthly` stops one."),
    ]
    return message(f"{len(subs)} digest subscription(s) in this channel.", blocks)


# --- action items ---------------------------------------------------------------------------


def baseline_text(kpi: str | None, value: float | None, n: int | None = None) -> str:
    return fmt.baseline(kpi, value, n)


def item_text(i: ItemRow, today: date) -> str:
    if i.completed_on:
        state = f":white_check_mark: done {i.completed_on.isoformat()}"
    elif i.overdue(today):
        state = f":warning: *overdue* (due {i.due_on.isoformat()})"
    else:
        state = f"due {i.due_on.isoformat()}"
    kpi = f" · {baseline_text(i.kpi, i.baseline)} when logged" if i.kpi else ""
    return _clip(
        f"*{escape(i.opportunity)}*\n→ {escape(i.resolution)}\n{mrkdwn.user(i.owner)} · {state} · "
        f"{escape(i.team)}{kpi}",
        2900,
    )


def item_buttons(i: ItemRow, scope: str = "open") -> list[Block]:
    """Mark done / Edit / Reopen; the value says where the list was ("open", "all", "home")
    so it can be redrawn the same way."""
    value = f"{i.id}|{scope}"
    if i.completed_on:
        return [button("Reopen", "item_reopen", value), button("Edit", "item_edit", value)]
    return [
        button("Mark done", "item_done", value, style="primary"),
        button("Edit", "item_edit", value),
    ]


def actions_payload(
    items: Sequence[ItemRow], team: str, include_done: bool, today: date
) -> Payload:
    what = "All" if include_done else "Open"
    blocks: list[Block] = [header(f"{what} action items · {team}")]
    if not items:
        blocks.append(
            section(
                ("No action items yet." if include_done else "No open action items.")
                + " `/kpi action add` logs one."
            )
        )
    per_item = 2
    room = (MAX_MESSAGE_BLOCKS - 3) // per_item
    for i in items[:room]:
        blocks.append(section(item_text(i, today)))
        scope = "all" if include_done else "open"
        blocks.append(actions(*item_buttons(i, scope), block_id=f"item_{i.id}"))
    if len(items) > room:
        blocks.append(
            context(f"{len(items) - room} more item(s) not shown; mark some done or see App Home.")
        )
    blocks.append(context("`/kpi action add` logs a new one · `/kpi actions all` shows done ones"))
    return message(f"{what} action items of {escape(team)}: {len(items)}", limit_blocks(blocks))


def item_confirmation(i: ItemRow, user: str, edited: bool = False) -> dict[str, Any]:
    verb = "updated" if edited else "logged"
    kpi = f" · baseline {baseline_text(i.kpi, i.baseline)}" if i.kpi else ""
    text = (
        f"{mrkdwn.user(user)} {verb} an action item for *{escape(i.team)}*: "
        f"{escape(i.opportunity)} → {escape(i.resolution)} · owner {mrkdwn.user(i.owner)} · "
        f"due {i.due_on.isoformat()}{kpi}"
    )
    return {"text": _clip(text, 3000), "blocks": [section(text)]}


def _option(text: str, value: str) -> dict[str, Any]:
    return {"text": _plain(text, MAX_OPTION_TEXT), "value": value[:150]}


def action_modal(
    *,
    teams: Sequence[str],
    team: str | None,
    kpi: str | None,
    owner: str,
    metadata: dict[str, Any],
    item: ItemRow | None = None,
    baseline: str | None = None,
) -> dict[str, Any]:
    """The action-item modal (new or edit), pre-filled; ``metadata`` rides along as JSON."""
    team_opts = [_option(t, t) for t in teams[:MAX_OPTIONS]]
    kpi_opts = [_option(m.name, m.id) for m in registry.METRICS][:MAX_OPTIONS]
    team_el: Block = {
        "type": "static_select",
        "action_id": "value",
        "placeholder": _plain("Team"),
        "options": team_opts,
    }
    chosen_team = item.team if item else team
    if chosen_team and chosen_team in teams[:MAX_OPTIONS]:
        team_el["initial_option"] = _option(chosen_team, chosen_team)
    kpi_el: Block = {
        "type": "static_select",
        "action_id": "value",
        "placeholder": _plain("Related KPI"),
        "options": kpi_opts,
    }
    chosen_kpi = item.kpi if item else kpi
    if chosen_kpi in registry.BY_ID:
        kpi_el["initial_option"] = _option(registry.BY_ID[chosen_kpi].name, chosen_kpi)
    opp: Block = {
        "type": "plain_text_input",
        "action_id": "value",
        "multiline": True,
        "max_length": MAX_OPPORTUNITY,
        "placeholder": _plain("e.g. PRs wait a day for their first review"),
    }
    res: Block = {
        "type": "plain_text_input",
        "action_id": "value",
        "multiline": True,
        "max_length": MAX_RESOLUTION,
        "placeholder": _plain("e.g. a daily review slot after stand-up"),
    }
    own: Block = {"type": "users_select", "action_id": "value", "initial_user": owner}
    due: Block = {"type": "datepicker", "action_id": "value", "placeholder": _plain("Due by")}
    if item:
        opp["initial_value"] = item.opportunity
        res["initial_value"] = item.resolution
        own["initial_user"] = item.owner
        due["initial_date"] = item.due_on.isoformat()
    blocks: list[Block] = [
        {"type": "input", "block_id": B_TEAM, "label": _plain("Team"), "element": team_el},
        {
            "type": "input",
            "block_id": B_KPI,
            "optional": True,
            "label": _plain("Related KPI"),
            "element": kpi_el,
        },
        {
            "type": "input",
            "block_id": B_OPPORTUNITY,
            "label": _plain("Opportunity / challenge"),
            "element": opp,
        },
        {"type": "input", "block_id": B_RESOLUTION, "label": _plain("Resolution"), "element": res},
        {"type": "input", "block_id": B_OWNER, "label": _plain("Owner"), "element": own},
        {"type": "input", "block_id": B_DUE, "label": _plain("Due by"), "element": due},
    ]
    if baseline:
        blocks.append(context(f"Baseline when logged: {escape(baseline)}"))
    meta = json.dumps(metadata)
    if len(meta) > MAX_PRIVATE_METADATA:
        meta = json.dumps({k: v for k, v in metadata.items() if k != "response_url"})
    return {
        "type": "modal",
        "callback_id": MODAL_CALLBACK,
        "title": _plain("Edit action item" if item else "Log an action item", MAX_TITLE),
        "submit": _plain("Save"),
        "close": _plain("Cancel"),
        "private_metadata": meta,
        "blocks": blocks[:MAX_VIEW_BLOCKS],
    }


# --- App Home -------------------------------------------------------------------------------


def home_view(
    *,
    user: str,
    healths: Sequence[Health],
    items: Sequence[ItemRow],
    subscriptions: Sequence[Subscription],
    today: date,
    note: str | None = None,
) -> dict[str, Any]:
    blocks: list[Block] = [
        header("kpibot"),
        context(f"Hi {mrkdwn.user(user)}. `/kpi help` lists commands."),
    ]
    if note:
        blocks.append(context(note))
    blocks.append(header("Your teams' health"))
    if not healths:
        blocks.append(section("No teams yet: `kpibot.yml` defines them, `/kpi teams` lists them."))
    for h in healths:
        line = " · ".join(
            f"{STATUS_ICON[c.status]} {c.name}" for c in h.cards if c.status != "no data"
        )
        blocks.append(
            section(
                f"*{escape(h.team)}*: {health_line(h)} · {escape(fmt.period(h.period))}\n{line}"
            )
        )
    blocks.append(divider())
    blocks.append(header(f"Your open action items ({len(items)})"))
    if not items:
        blocks.append(section("Nothing open. `/kpi action add` logs one."))
    # keep room for the digests section: header + up to 5 lines + note
    room = (MAX_VIEW_BLOCKS - len(blocks) - 6) // 2
    for i in items[:room]:
        blocks.append(section(item_text(i, today)))
        blocks.append(actions(*item_buttons(i, "home"), block_id=f"home_item_{i.id}"))
    if len(items) > room:
        blocks.append(context(f"{len(items) - room} more open item(s) not shown."))
    blocks.append(divider())
    blocks.append(header("Channel digests you receive"))
    if subscriptions:
        lines = [
            f"• *{s.kind}* digest of *{escape(s.team)}* in {mrkdwn.channel(s.channel_id)}"
            + (" · :warning: not posting" if s.broken else "")
            for s in subscriptions
        ]
        blocks.append(section("\n".join(lines)))
    else:
        blocks.append(section("None. `/kpi subscribe weekly` in a team channel adds one."))
    return {"type": "home", "blocks": limit_blocks(blocks, MAX_VIEW_BLOCKS)}
