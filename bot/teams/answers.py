"""The core's answers (:mod:`bot.chat.answers`) as Adaptive Cards, and the Teams way of
wording the core's sentences (:class:`TeamsVoice`: ``**bold**``, ``@kpibot <command>``)."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import date

from microsoft_teams.cards import CardElement

from bot.chat import answers as ans
from bot.chat.items import ItemRow, TeamRow
from bot.chat.voice import Voice
from bot.renderers import adaptive
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
    (f"{MENTION} <metric> [team] [period]", "a metric card, e.g. cycle-time payments last-week"),
    (f"{MENTION} dora [team] [period]", "the four DORA keys with bands"),
    (f"{MENTION} health [team]", "every KPI against its target"),
    (f"{MENTION} weekly · monthly", "preview the weekly leading / monthly lagging digest"),
    (f"{MENTION} actions [team] [all]", "open (or all) action items"),
    (f"{MENTION} teams · team set <team>", "list teams; map this conversation to a team"),
)


class TeamsVoice(Voice):
    platform = "teams"

    def bold(self, text: str) -> str:
        return f"**{text}**"

    def command(self, text: str) -> str:
        return f"**{f'{MENTION} {text}'.strip()}**"


_SLASH_CODE = re.compile(r"`/kpi ?([^`]*)`")


def teams_words(text: str) -> str:
    """A sentence of the command grammar (written for ``/kpi`` in Slack's mrkdwn, where the
    person's echoed words are HTML-escaped) as typed in Teams: ``&lt;`` shown as ``<``."""
    text = html.unescape(text).replace("<", r"\<").replace(">", r"\>")
    text = _SLASH_CODE.sub(lambda m: f"**{f'{MENTION} {m.group(1)}'.strip()}**", text)
    return text.replace("/kpi", MENTION).replace("`", "")


def suggestion(command: str) -> str:
    return escape(teams_words(command))


def problem(text: str, suggestions: Sequence[str] = ()) -> Card:
    return adaptive.problem(
        teams_words(text), [suggestion(s) for s in suggestions], help_hint=HELP_HINT
    )


def help_card(channel_team: str | None, teams: Sequence[str]) -> Card:
    where = (
        f"This conversation's team: **{escape(channel_team)}**."
        if channel_team
        else f"This conversation has no team yet: {MENTION} team set {escape('<team>')} maps it."
    )
    usage = [(escape(u), escape(d)) for u, d in USAGE]
    return adaptive.help_card(usage, channel_team, teams, where)


def card(answer: ans.Answer) -> Card:
    """The Adaptive Card for a core answer."""
    match answer:
        case ans.Notice(text) | ans.Refused(text):
            return adaptive.message(text)
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
        case ans.TeamList(rows, channel_team):
            return team_list(rows, channel_team)
        case ans.SubscriptionList(_, subs, when):
            return subscription_list(subs, when)
        case ans.ItemList(items, team, include_done, today):
            return item_list(items, team, include_done, today)
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


def item_list(items: Sequence[ItemRow], team: str, include_done: bool, today: date) -> Card:
    which = "Action items" if include_done else "Open action items"
    body: list[CardElement] = [adaptive.title(f"{which} · {escape(team)}")]
    if not items:
        body.append(adaptive.text("None."))
    for i in items:
        if i.completed_on:
            state = f"✅ done {i.completed_on.isoformat()}"
        elif i.overdue(today):
            state = f"⚠️ **overdue** (due {i.due_on.isoformat()})"
        else:
            state = f"due {i.due_on.isoformat()}"
        kpi = f" · {escape(i.kpi)}" if i.kpi else ""
        body.append(
            adaptive.text(
                f"**{escape(i.opportunity)}**\n\n→ {escape(i.resolution)}\n\n{state}{kpi}",
                separator=True,
            )
        )
    return adaptive.card(body)
