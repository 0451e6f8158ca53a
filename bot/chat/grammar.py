"""The ``/kpi`` grammar (PRODUCT.md): text in, a :class:`Command` out, or a :class:`ParseError`
that says what was not understood and what was probably meant.

Pure: no chat platform, no database; every chat surface parses with it. Team names are
passed in; period words are checked for their shape here and resolved (in the team's time
zone) by the caller.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.chat.voice import SlashCommand, Voice
from bot.errors import KpibotError, suggest
from bot.metrics import registry
from bot.metrics.periods import NAMED, looks_like_period
from bot.scheduler.schedule import BadSchedule, parse_schedule
from bot.settings import parse_target

MAX_ECHO = 40  # characters of an unknown word repeated back to the user
SLASH = SlashCommand()  # the wording of errors when the caller names no voice

DIGEST_WORDS = {"weekly": "weekly", "leading": "weekly", "monthly": "monthly", "lagging": "monthly"}
KEYWORDS = (
    "help",
    "dora",
    "health",
    "weekly",
    "leading",
    "monthly",
    "lagging",
    "action",
    "actions",
    "subscribe",
    "unsubscribe",
    "subscriptions",
    "teams",
    "team",
    "alert",
    "status",
    "agreements",
)
PERIOD_EXAMPLES = (*NAMED, "28d", "90d", "2026-W46", "2026-10", "2026-Q3")


@dataclass(frozen=True)
class Usage:
    """One command of the grammar as a person types it after the bot's name: ``words`` (the
    command itself), ``args`` (its optional and required words) and what it answers."""

    words: str
    args: str
    description: str
    menu: bool = True  # in the Teams app's command menu


# The commands people are offered (help cards; those with ``menu`` also in the Teams app's
# command menu, which shows at most 12 per scope). `help` is what an empty command answers,
# so it is not listed.
COMMANDS: tuple[Usage, ...] = (
    Usage("cycle-time", "[team] [period]", "a metric card (any KPI id or alias)"),
    Usage("dora", "[team] [period]", "the four DORA keys with bands"),
    Usage("health", "[team]", "every KPI against its target"),
    Usage("weekly", "[team] [period]", "preview the weekly digest (leading indicators)"),
    Usage("monthly", "[team] [period]", "preview the monthly digest (DORA, predictability)"),
    Usage("action add", "[team] [kpi]", "log an improvement action item"),
    Usage("actions", "[team] [all]", "open (or all) action items"),
    Usage("agreements", "[team]", "the team's working agreements and the PRs in breach now"),
    Usage(
        "subscribe",
        "weekly|monthly [team] [day HH:MM]",
        "post that digest here (at the team's time, or e.g. tue 10:00, 15 08:30)",
    ),
    Usage("unsubscribe", "[weekly|monthly] [team]", "stop posting a digest here"),
    Usage("subscriptions", "", "the digests posted here"),
    Usage("status", "[team]", "every data source: data as of, last error, next run"),
    Usage("teams", "", "list the teams", menu=False),
    Usage("team set", "<team>", "map this conversation to a team", menu=False),
    Usage(
        "alert on",
        "<kpi> [team]",
        "alert the team's conversations when a KPI goes off target or recovers",
        menu=False,
    ),
    Usage("alert off", "<kpi> [team]", "stop a KPI's threshold alert", menu=False),
    Usage(
        "alert preview",
        "<kpi> [target] [team]",
        "how often a target would have alerted in the last 90 days",
        menu=False,
    ),
)
MENU: tuple[Usage, ...] = tuple(u for u in COMMANDS if u.menu)
_MENTION = re.compile(r"^<([@#!])([^>|]*)(?:\|[^>]*)?>$")


@dataclass(frozen=True)
class Command:
    """One parsed ``/kpi`` request.

    ``kind``: help, card, dora, health, digest, action_add, actions, subscribe, unsubscribe,
    subscriptions, teams, team_set, alert_set, alert_preview, status, agreements.
    """

    kind: str
    metric: str | None = None  # card: a registry id; action_add: the KPI to pre-fill
    team: str | None = None  # as configured (canonical case)
    period: str | None = None  # a period word, lower case
    digest: str | None = None  # weekly | monthly
    all: bool = False  # actions: include completed items
    schedule: str | None = None  # subscribe: the channel's own time, "tue 10:00" / "15 08:30"
    enabled: bool = False  # alert_set: on (True) or off
    target: str | None = None  # alert_preview: the target to try, as typed ("<= 10%", "4h")


class ParseError(KpibotError):
    """Input that is not part of the grammar; ``suggestions`` are complete commands to try."""

    def __init__(self, message: str, suggestions: Sequence[str] = ()) -> None:
        super().__init__(message)
        # aliases resolve to the same command ("cycletime" is near `cycle-time` and `ct`):
        # each command is suggested once, in the order found
        self.suggestions = list(dict.fromkeys(suggestions))


def echo(word: str, voice: Voice = SLASH) -> str:
    """A user's word made safe to repeat: short, no mentions or markup (``voice``'s)."""
    w = word if len(word) <= MAX_ECHO else word[: MAX_ECHO - 1] + "…"
    return voice.echo(w)


def _describe(word: str, v: Voice) -> str:
    m = _MENTION.match(word)
    if m:
        what = {"@": "a user mention", "#": "a channel mention", "!": "a special mention"}
        return what[m.group(1)]
    return f"'{echo(word, v)}'"


def parse(text: str, teams: Sequence[str], voice: Voice | None = None) -> Command:
    """Parse the text after ``/kpi`` (or after the bot's mention); ``teams`` are the
    configured team names. Errors are worded in ``voice`` (default: the ``/kpi`` slash
    command in Slack's mrkdwn)."""
    v = voice or SLASH
    words = text.split()
    if not words:
        return Command("help")
    head, rest = words[0].lower(), words[1:]
    if head in ("help", "?", "-h", "--help", "usage"):
        return Command("help")
    if head == "dora":
        return _with_args("dora", rest, teams, v)
    if head == "health":
        return _with_args("health", rest, teams, v)
    if head in DIGEST_WORDS:
        cmd = _with_args("digest", rest, teams, v, cmd_words=head)
        return Command("digest", team=cmd.team, period=cmd.period, digest=DIGEST_WORDS[head])
    if head == "action":
        return _action(rest, teams, v)
    if head == "actions":
        return _with_args("actions", rest, teams, v, allow_all=True, allow_period=False)
    if head == "agreements":
        return _with_args("agreements", rest, teams, v, allow_period=False)
    if head in ("subscribe", "unsubscribe"):
        return _subscription(head, rest, teams, v)
    if head == "subscriptions":
        _no_more(rest, "subscriptions", v)
        return Command("subscriptions")
    if head == "teams":
        _no_more(rest, "teams", v)
        return Command("teams")
    if head == "team":
        return _team_set(rest, teams, v)
    if head == "alert":
        return _alert(rest, teams, v)
    if head == "status":
        return _with_args("status", rest, teams, v, allow_period=False)
    try:
        spec = registry.resolve(head)
    except KpibotError:
        pass
    else:
        cmd = _with_args("card", rest, teams, v, cmd_words=spec.id)
        return Command("card", metric=spec.id, team=cmd.team, period=cmd.period)
    if _resolve_team(head, teams) is not None:
        team = _resolve_team(head, teams)
        raise ParseError(
            f"{_describe(words[0], v)} is a team; say which KPI first, e.g. "
            f"{v.command(f'cycle-time {team}')} or {v.command(f'health {team}')}.",
            [v.typed(f"health {team}"), v.typed(f"cycle-time {team}"), v.typed(f"dora {team}")],
        )
    hits = suggest(head, [*KEYWORDS, *registry.all_names()])
    example = [v.typed(_complete(h)) for h in hits] or [
        v.typed("help"),
        v.typed("cycle-time"),
        v.typed("health"),
    ]
    raise ParseError(
        f"I don't know {_describe(words[0], v)}: start with a KPI (like {v.code('cycle-time')}) "
        f"or a command (like {v.code('health')}, {v.code('dora')}, {v.code('actions')}).",
        example,
    )


def _complete(word: str) -> str:
    if word == "action":
        return "action add"
    if word == "team":
        return "team set <team>"
    if word == "alert":
        return "alert on <kpi>"
    if word in ("subscribe", "unsubscribe"):
        return f"{word} weekly"
    try:
        return registry.resolve(word).id
    except KpibotError:
        return word


def _resolve_team(word: str, teams: Sequence[str]) -> str | None:
    lw = word.lower()
    for t in teams:
        if t.lower() == lw:
            return t
    return None


def _no_more(rest: list[str], what: str, v: Voice) -> None:
    if rest:
        raise ParseError(
            f"{v.code(what)} takes no more words (got {_describe(rest[0], v)}).",
            [v.typed(what), v.typed("help")],
        )


def _unknown_arg(
    word: str,
    cmd_words: str,
    teams: Sequence[str],
    allow_period: bool,
    allow_all: bool,
    v: Voice,
) -> ParseError:
    pool = (
        list(teams)
        + (list(PERIOD_EXAMPLES) if allow_period else [])
        + (["all"] if allow_all else [])
    )
    hits = suggest(word, pool) if not _MENTION.match(word) else []
    wants = (
        "a team"
        + (" or a period" if allow_period else "")
        + (f" or {v.code('all')}" if allow_all else "")
    )
    team_list = ", ".join(teams) or "(none configured)"
    periods = f" Periods: {', '.join(PERIOD_EXAMPLES)}." if allow_period else ""
    return ParseError(
        f"I don't know {_describe(word, v)} here: {v.code(cmd_words)} takes {wants}. "
        f"Teams: {team_list}.{periods}",
        [v.typed(f"{cmd_words} {h}") for h in hits] or [v.typed(cmd_words), v.typed("help")],
    )


def _with_args(
    kind: str,
    rest: list[str],
    teams: Sequence[str],
    v: Voice,
    *,
    allow_period: bool = True,
    allow_all: bool = False,
    cmd_words: str | None = None,
) -> Command:
    words = cmd_words or kind
    team: str | None = None
    period: str | None = None
    all_items = False
    for w in rest:
        lw = w.lower()
        t = _resolve_team(w, teams)
        if t is not None and team is None:
            team = t
        elif allow_period and period is None and looks_like_period(lw):
            period = lw
        elif allow_all and lw == "all" and not all_items:
            all_items = True
        elif t is not None or (allow_period and looks_like_period(lw)):
            raise ParseError(
                f"{_describe(w, v)}: give at most one team and one period.", [v.typed(words)]
            )
        else:
            raise _unknown_arg(w, words, teams, allow_period, allow_all, v)
    return Command(kind, team=team, period=period, all=all_items)


def _action(rest: list[str], teams: Sequence[str], v: Voice) -> Command:
    if not rest or rest[0].lower() != "add":
        got = f" (got {_describe(rest[0], v)})" if rest else ""
        raise ParseError(
            f"{v.code('action')} needs {v.code('add')}{got}: {v.command('action add')} opens "
            f"the action-item form; {v.command('actions')} lists them.",
            [v.typed("action add"), v.typed("actions")],
        )
    team: str | None = None
    metric: str | None = None
    for w in rest[1:]:
        t = _resolve_team(w, teams)
        if t is not None and team is None:
            team = t
            continue
        try:
            spec = registry.resolve(w)
        except KpibotError:
            spec = None
        if spec is not None and metric is None:
            metric = spec.id
            continue
        hits = suggest(w, [*teams, *registry.all_names()]) if not _MENTION.match(w) else []
        raise ParseError(
            f"I don't know {_describe(w, v)} here: {v.code('action add')} takes an optional "
            "team and KPI.",
            [v.typed(f"action add {h}") for h in hits] or [v.typed("action add")],
        )
    return Command("action_add", team=team, metric=metric)


def _subscription(head: str, rest: list[str], teams: Sequence[str], v: Voice) -> Command:
    kind = "subscribe" if head == "subscribe" else "unsubscribe"
    digest = DIGEST_WORDS.get(rest[0].lower()) if rest else None
    if digest is None:
        if kind == "unsubscribe" and (not rest or _resolve_team(rest[0], teams)):
            cmd = _with_args(kind, rest, teams, v, allow_period=False)
            return Command(kind, team=cmd.team)
        got = f" (got {_describe(rest[0], v)})" if rest else ""
        raise ParseError(
            f"say which digest{got}: {v.command(f'{kind} weekly')} (leading indicators, "
            f"Mondays) or {v.command(f'{kind} monthly')} (DORA and predictability, on the 1st).",
            [v.typed(f"{kind} weekly"), v.typed(f"{kind} monthly")],
        )
    words = f"{kind} {digest}"
    args, schedule = rest[1:], None
    if kind == "subscribe":
        args, schedule = _schedule_words(digest, args, words, v)
    cmd = _with_args(kind, args, teams, v, allow_period=False, cmd_words=words)
    return Command(kind, team=cmd.team, digest=digest, schedule=schedule)


_CLOCK = re.compile(r"^\d{1,2}:\d{2}$")


def _schedule_words(
    digest: str, args: list[str], words: str, v: Voice
) -> tuple[list[str], str | None]:
    """Take an optional ``[at] <day> <HH:MM>`` off a subscribe command: a weekday for the
    weekly digest (``tue 10:00``), a day of the month 1-28 for the monthly one (``15 08:30``).
    """
    clock = next((i for i, w in enumerate(args) if _CLOCK.match(w)), None)
    if clock is None:
        return args, None
    example = f"{words} {'tue 10:00' if digest == 'weekly' else '15 08:30'}"
    if clock == 0:
        raise ParseError(f"say the day before the time: {v.command(example)}.", [v.typed(example)])
    start = clock - 1
    if start > 0 and args[start - 1].lower() == "at":
        start -= 1
    try:
        schedule = parse_schedule(digest, f"{args[clock - 1]} {args[clock]}").text
    except BadSchedule as exc:
        raise ParseError(f"{exc}: {v.command(example)}.", [v.typed(example)]) from exc
    return args[:start] + args[clock + 1 :], schedule


def _team_set(rest: list[str], teams: Sequence[str], v: Voice) -> Command:
    if not rest or rest[0].lower() != "set":
        got = f" (got {_describe(rest[0], v)})" if rest else ""
        raise ParseError(
            f"{v.code('team')} needs {v.code('set <team>')}{got}: "
            f"{v.command('team set payments')} maps this channel to a team; "
            f"{v.command('teams')} lists them.",
            [v.typed(f"team set {teams[0]}" if teams else "team set <team>"), v.typed("teams")],
        )
    if len(rest) != 2:
        raise ParseError(
            f"{v.code('team set')} takes exactly one team name. Teams: "
            + (", ".join(teams) or "(none)"),
            [v.typed(f"team set {t}") for t in teams[:3]] or [v.typed("teams")],
        )
    team = _resolve_team(rest[1], teams)
    if team is None:
        hits = suggest(rest[1], teams) if not _MENTION.match(rest[1]) else []
        raise ParseError(
            f"unknown team {_describe(rest[1], v)}. Teams: {', '.join(teams) or '(none)'}.",
            [v.typed(f"team set {h}") for h in hits or teams[:3]] or [v.typed("teams")],
        )
    return Command("team_set", team=team)


def _alert(rest: list[str], teams: Sequence[str], v: Voice) -> Command:
    """``alert on|off <kpi> [team]``, ``alert preview <kpi> [target] [team]``."""
    usage = (
        f"{v.command('alert on|off <kpi> [team]')} or "
        f"{v.command('alert preview <kpi> [target] [team]')}"
    )
    verb = rest[0].lower() if rest else ""
    if verb not in ("on", "off", "preview"):
        got = f" (got {_describe(rest[0], v)})" if rest else ""
        raise ParseError(
            f"{v.code('alert')} needs {v.code('on')}, {v.code('off')} or "
            f"{v.code('preview')}{got}: {usage}.",
            [v.typed("alert on cfr"), v.typed("alert preview cfr")],
        )
    words = f"alert {verb}"
    if len(rest) < 2:
        raise ParseError(
            f"say which KPI: {v.command(f'{words} <kpi>')}, e.g. "
            f"{v.command(f'{words} first-review')}.",
            [v.typed(f"{words} first-review"), v.typed(f"{words} cfr")],
        )
    try:
        spec = registry.resolve(rest[1])
    except KpibotError:
        hits = suggest(rest[1], registry.all_names()) if not _MENTION.match(rest[1]) else []
        raise ParseError(
            f"I don't know the KPI {_describe(rest[1], v)}. KPIs: {', '.join(registry.BY_ID)}.",
            [v.typed(f"{words} {_complete(h)}") for h in hits] or [v.typed(f"{words} cfr")],
        ) from None
    words = f"{words} {spec.id}"
    team: str | None = None
    target: list[str] = []
    for w in rest[2:]:
        t = _resolve_team(w, teams)
        if t is not None and team is None:
            team = t
        elif verb == "preview" and t is None and team is None:
            target.append(w)  # "<=" "10%" may come as two words
        else:
            raise _unknown_arg(w, words, teams, False, False, v)
    if verb != "preview":
        return Command("alert_set", metric=spec.id, team=team, enabled=verb == "on")
    typed = " ".join(target) or None
    if typed is not None:
        try:
            parse_target(typed, spec)
        except ValueError as exc:
            example = "10%" if spec.kind is registry.Kind.RATIO else "4h"
            why = v.echo(str(exc))
            raise ParseError(
                f"{why}: {v.command(f'{words} <= {example}')}.", [v.typed(f"{words} <= {example}")]
            ) from None
    return Command("alert_preview", metric=spec.id, team=team, target=typed)
