"""The core's answers (:mod:`bot.chat.answers`) as Adaptive Cards, and the Teams way of
wording the core's sentences (:class:`TeamsVoice`: ``**bold**``, ``@kpibot <command>``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

from microsoft_teams.cards import Action, ActionSet, CardElement, ExecuteAction

from bot.chat import answers as ans
from bot.chat.grammar import COMMANDS
from bot.chat.items import ItemRow, TeamRow
from bot.chat.voice import Voice
from bot.renderers import adaptive
from bot.renderers import format as fmt
from bot.renderers.adaptive import Card, escape
from bot.renderers.format import team_definition
from bot.store.subscriptions import Subscription

MENTION = "@kpibot"
TEAM = escape("<team>")
HELP_HINT = f"{MENTION} help lists every command and metric."
NOT_YET = (
    "{what} from Teams is not available yet: for now, use kpibot in Slack (or the kpibot "
    "command line) for it."
)

USAGE: tuple[tuple[str, str], ...] = (
    *((f"{MENTION} {u.words} {u.args}".strip(), u.description) for u in COMMANDS),
    (f"{MENTION} home", "your teams, your open items (in your personal chat with kpibot)"),
)


class TeamsVoice(Voice):
    """``names``: a person's display name from their AAD object id, when kpibot has seen it
    (the roster's cache); a refusal names people by it, never by the raw id, and by their
    role alone when the name is not known."""

    platform = "teams"

    def __init__(self, names: Callable[[str], str | None] | None = None) -> None:
        self.names = names or (lambda user_id: None)

    def user(self, user_id: str) -> str:
        name = self.names(user_id) if user_id else None
        return escape(name) if name else "someone"

    def person(self, role: str, user_id: str | None) -> str:
        name = self.names(user_id) if user_id else None
        return f"{role} ({escape(name)})" if name else role

    def bold(self, text: str) -> str:
        return f"**{text}**"

    def command(self, text: str) -> str:
        return f"**{escape(self.typed(text))}**"

    def conversation(self, conversation_id: str) -> str:
        # a Teams conversation id (19:...@thread.tacv2) means nothing to a person, and the
        # answer is shown in that conversation
        return "this conversation"

    def typed(self, text: str) -> str:
        return f"{MENTION} {text}".strip()

    def code(self, text: str) -> str:
        return f"**{escape(text)}**"

    def echo(self, text: str) -> str:
        return escape(text)


def problem(text: str, suggestions: Sequence[str] = ()) -> Card:
    """A problem worded for Teams (the grammar's and the core's sentences come worded by
    :class:`TeamsVoice`), with its suggested commands shown as typed."""
    return adaptive.problem(text, [escape(s) for s in suggestions], help_hint=HELP_HINT)


def help_card(channel_team: str | None, teams: Sequence[str]) -> Card:
    where = (
        f"This conversation's team: **{escape(channel_team)}**."
        if channel_team
        else f"This conversation has no team yet: {MENTION} team set {escape('<team>')} maps it."
    )
    usage = [(escape(u), escape(d)) for u, d in USAGE]
    return adaptive.help_card(usage, channel_team, teams, where)


def sentence(text: str) -> str:
    """A notice starting with a capital, unless its first word is a name kept as written
    (``acme/api#1``, ``payments-api``)."""
    first = text.split(" ", 1)[0]
    if any(c in first for c in "/#_-.@") or not first.islower():
        return text
    return text[:1].upper() + text[1:]


def card(answer: ans.Answer) -> Card:
    """The Adaptive Card for a core answer."""
    match answer:
        case ans.Notice(text) | ans.Refused(text):
            return adaptive.message(sentence(text))
        case ans.Problem(text, suggestions):
            return problem(text, suggestions)
        case ans.AskTeam(command, teams):
            return adaptive.choose(
                "Which team? This conversation has no team and you're in none I know of. "
                f"Name one (e.g. {MENTION} {escape(command)} {escape(teams[0]) if teams else ''})"
                f" or map this conversation once: {MENTION} team set {escape('<team>')}.",
                [(t, {"text": command, "team": t}) for t in teams],
            )
        case ans.Help(channel_team, teams):
            return help_card(channel_team, teams)
        case ans.CardAnswer(metric):
            return adaptive.metric_card(metric)
        case ans.DoraAnswer(d):
            return adaptive.dora(d)
        case ans.HealthAnswer(h):
            return adaptive.health(h)
        case ans.DigestPreview(_, digest):
            return adaptive.digest(digest)
        case ans.TeamList(rows, channel_team):
            return team_list(rows, channel_team)
        case ans.SubscriptionList(_, subs, when):
            return subscription_list(subs, when)
        case ans.ItemList(items, team, include_done, today):
            return item_list(items, team, include_done, today)
        case ans.Definition(spec, target, business_hours):
            return adaptive.definition(spec, target, business_hours)
        case ans.StatusAnswer(status):
            return adaptive.source_status(status)
        case ans.AgreementsAnswer(report):
            return adaptive.agreements(report)
    return adaptive.message(NOT_YET.format(what=f"This answer ({type(answer).__name__})"))


def team_list(rows: Sequence[TeamRow], channel_team: str | None) -> Card:
    lines = []
    for r in rows:
        mark = " ← this conversation" if r.name == channel_team else ""
        mapped = plural_conversations(len(r.channels))
        what = escape(team_definition(r.repos, r.members, r.github_team, r.paths))
        lines.append(f"- **{escape(r.name)}** · {what} · {escape(r.timezone)} · {mapped}{mark}")
    return adaptive.card(
        [
            adaptive.title("Teams"),
            adaptive.text("\n".join(lines) or "No teams configured in kpibot.yml."),
            adaptive.note(f"Map this conversation to a team: {MENTION} team set {TEAM}"),
        ]
    )


def plural_conversations(n: int) -> str:
    return "no conversation" if n == 0 else f"{n} conversation{'s' if n > 1 else ''}"


def subscription_list(subs: Sequence[Subscription], when: dict[int, str]) -> Card:
    if not subs:
        return adaptive.message("This conversation receives no digests.")
    lines = []
    for sub in subs:
        at = when.get(sub.id) or sub.schedule or "at the team's time"
        broken = f" · ⚠️ not posting: {escape(sub.broken_reason or '')}" if sub.broken else ""
        lines.append(f"- **{sub.kind}** digest of **{escape(sub.team)}**, {escape(at)}{broken}")
    return adaptive.card(
        [adaptive.title("Digests posted in this conversation"), adaptive.text("\n".join(lines))]
    )


def item_state(i: ItemRow, today: date) -> str:
    if i.completed_on:
        return f"✅ done {i.completed_on.isoformat()}"
    if i.overdue(today):
        return f"⚠️ **overdue** (due {i.due_on.isoformat()})"
    return f"due {i.due_on.isoformat()}"


def item_buttons(i: ItemRow, scope: str) -> ActionSet:
    """*Mark done* (or *Reopen*) and *Edit* for one item; ``scope`` (``open``, ``all``,
    ``home``) says which card to show again after the change."""
    data = {"item": i.id, "scope": scope}
    actions: list[Action] = [
        ExecuteAction(title="Reopen", verb="item_reopen", data=data)
        if i.completed_on
        else ExecuteAction(title="Mark done", verb="item_done", data=data),
    ]
    if scope != "home":
        actions.append(adaptive.dialog_button("Edit", "item_edit", {"item": i.id}))
    return ActionSet(actions=actions)


def item_list(items: Sequence[ItemRow], team: str, include_done: bool, today: date) -> Card:
    which = "Action items" if include_done else "Open action items"
    body: list[CardElement] = [adaptive.title(f"{which} · {escape(team)}")]
    if not items:
        body.append(adaptive.text("None."))
    scope = "all" if include_done else "open"
    for i in items:
        kpi = f" · {escape(i.kpi)}" if i.kpi else ""
        body.append(
            adaptive.text(
                f"**{escape(i.opportunity)}**\n\n→ {escape(i.resolution)}\n\n"
                f"{item_state(i, today)}{kpi}",
                separator=True,
            )
        )
        body.append(item_buttons(i, scope))
    body.append(
        adaptive.note(
            f"{MENTION} action add logs a new one · {MENTION} actions all shows done ones"
        )
    )
    return adaptive.card(
        body, [adaptive.dialog_button("Log an action item", "action_add", {"t": team})]
    )


def open_dialog(team: str | None, kpi: str | None) -> Card:
    """The answer to ``action add``: a message cannot open a dialog in Teams, so a card
    whose button does."""
    data = {k: v for k, v in (("t", team), ("m", kpi)) if v}
    return adaptive.card(
        [
            adaptive.title("Log an action item"),
            adaptive.text(
                "An improvement action with an owner and a due date"
                + (f" for **{escape(team)}**" if team else "")
                + ": the form opens in a dialog."
            ),
        ],
        [adaptive.dialog_button("Open the form", "action_add", data)],
    )


def home_card(home: ans.Home) -> Card:
    """A person's own view in their personal chat with kpibot (Slack's App Home): their
    teams' health, their open items with *Mark done*, their teams' digests."""
    body: list[CardElement] = [
        adaptive.title("kpibot"),
        adaptive.note(f"{MENTION} help lists commands."),
    ]
    if home.note:
        body.append(adaptive.note(home.note))
    body.append(adaptive.text("**Your teams' health**", separator=True))
    if not home.healths:
        body.append(adaptive.text("No teams yet: kpibot.yml defines them."))
    for h in home.healths:
        line = " · ".join(
            f"{adaptive.STATUS_MARK[c.status]} {c.name}" for c in h.cards if c.status != "no data"
        )
        body.append(
            adaptive.text(
                f"**{escape(h.team)}**: {adaptive.health_line(h)} · "
                f"{escape(fmt.period(h.period))}\n\n{line}"
            )
        )
    body.append(adaptive.text(f"**Your open action items ({len(home.items)})**", separator=True))
    if not home.items:
        body.append(adaptive.text(f"Nothing open. {MENTION} action add logs one."))
    for i in home.items:
        kpi = f" · {escape(i.kpi)}" if i.kpi else ""
        body.append(
            adaptive.text(
                f"**{escape(i.opportunity)}** · {escape(i.team)}\n\n→ {escape(i.resolution)}"
                f"\n\n{item_state(i, home.today)}{kpi}"
            )
        )
        body.append(item_buttons(i, "home"))
    body.append(adaptive.text("**Digests of your teams**", separator=True))
    if home.subscriptions:
        body.append(
            adaptive.text(
                "\n".join(
                    f"- **{s.kind}** digest of **{escape(s.team)}**"
                    + (" · ⚠️ not posting" if s.broken else "")
                    for s in home.subscriptions
                )
            )
        )
    else:
        body.append(adaptive.text("None yet."))
    return adaptive.card(body)


def item_confirmation(i: ItemRow, by: str, owner: str, *, edited: bool = False) -> Card:
    """Posted in the conversation once an item is saved (``by``, ``owner``: names)."""
    verb = "updated" if edited else "logged"
    kpi = f" · baseline {escape(fmt.baseline(i.kpi, i.baseline))}" if i.kpi else ""
    return adaptive.card(
        [
            adaptive.text(
                f"{escape(by)} {verb} an action item for **{escape(i.team)}**: "
                f"{escape(i.opportunity)} → {escape(i.resolution)} · owner {escape(owner)} · "
                f"due {i.due_on.isoformat()}{kpi}"
            )
        ]
    )
