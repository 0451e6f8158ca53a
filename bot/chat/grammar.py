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

from bot.errors import KpibotError, suggest
from bot.metrics import registry
from bot.metrics.periods import NAMED, looks_like_period
from bot.renderers.mrkdwn import escape
from bot.scheduler.schedule import BadSchedule, parse_schedule

MAX_ECHO = 40  # characters of an unknown word repeated back to the user

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
    "agreements",
)
PERIOD_EXAMPLES = (*NAMED, "28d", "90d", "2026-W46", "2026-10", "2026-Q3")
_MENTION = re.compile(r"^<([@#!])([^>|]*)(?:\|[^>]*)?>$")


@dataclass(frozen=True)
class Command:
    """One parsed ``/kpi`` request.

    ``kind``: help, card, dora, health, digest, action_add, actions, subscribe, unsubscribe,
    subscriptions, teams, team_set, agreements.
    """

    kind: str
    metric: str | None = None  # card: a registry id; action_add: the KPI to pre-fill
    team: str | None = None  # as configured (canonical case)
    period: str | None = None  # a period word, lower case
    digest: str | None = None  # weekly | monthly
    all: bool = False  # actions: include completed items
    schedule: str | None = None  # subscribe: the channel's own time, "tue 10:00" / "15 08:30"


class ParseError(KpibotError):
    """Input that is not part of the grammar; ``suggestions`` are complete commands to try."""

    def __init__(self, message: str, suggestions: Sequence[str] = ()) -> None:
        super().__init__(message)
        # aliases resolve to the same command ("cycletime" is near `cycle-time` and `ct`):
        # each command is suggested once, in the order found
        self.suggestions = list(dict.fromkeys(suggestions))


def echo(word: str) -> str:
    """A user's word made safe to repeat in mrkdwn: short, no mentions or markup."""
    w = word if len(word) <= MAX_ECHO else word[: MAX_ECHO - 1] + "…"
    return escape(w).replace("`", "'")


def _describe(word: str) -> str:
    m = _MENTION.match(word)
    if m:
        what = {"@": "a user mention", "#": "a channel mention", "!": "a special mention"}
        return what[m.group(1)]
    return f"'{echo(word)}'"


def parse(text: str, teams: Sequence[str]) -> Command:
    """Parse the text after ``/kpi``; ``teams`` are the configured team names."""
    words = text.split()
    if not words:
        return Command("help")
    head, rest = words[0].lower(), words[1:]
    if head in ("help", "?", "-h", "--help", "usage"):
        return Command("help")
    if head == "dora":
        return _with_args("dora", rest, teams)
    if head == "health":
        return _with_args("health", rest, teams)
    if head in DIGEST_WORDS:
        cmd = _with_args("digest", rest, teams, cmd_words=head)
        return Command("digest", team=cmd.team, period=cmd.period, digest=DIGEST_WORDS[head])
    if head == "action":
        return _action(rest, teams)
    if head == "actions":
        return _with_args("actions", rest, teams, allow_all=True, allow_period=False)
    if head == "agreements":
        return _with_args("agreements", rest, teams, allow_period=False)
    if head in ("subscribe", "unsubscribe"):
        return _subscription(head, rest, teams)
    if head == "subscriptions":
        _no_more(rest, "subscriptions", "/kpi subscriptions")
        return Command("subscriptions")
    if head == "teams":
        _no_more(rest, "teams", "/kpi teams")
        return Command("teams")
    if head == "team":
        return _team_set(rest, teams)
    try:
        spec = registry.resolve(head)
    except KpibotError:
        pass
    else:
        cmd = _with_args("card", rest, teams, cmd_words=spec.id)
        return Command("card", metric=spec.id, team=cmd.team, period=cmd.period)
    if _resolve_team(head, teams) is not None:
        team = _resolve_team(head, teams)
        raise ParseError(
            f"{_describe(words[0])} is a team; say which KPI first, e.g. "
            f"`/kpi cycle-time {team}` or `/kpi health {team}`.",
            [f"/kpi health {team}", f"/kpi cycle-time {team}", f"/kpi dora {team}"],
        )
    hits = suggest(head, [*KEYWORDS, *registry.all_names()])
    example = [_complete(h) for h in hits] or ["/kpi help", "/kpi cycle-time", "/kpi health"]
    raise ParseError(
        f"I don't know {_describe(words[0])}: start with a KPI (like `cycle-time`) or a command "
        "(like `health`, `dora`, `actions`).",
        example,
    )


def _complete(word: str) -> str:
    if word == "action":
        return "/kpi action add"
    if word == "team":
        return "/kpi team set <team>"
    if word in ("subscribe", "unsubscribe"):
        return f"/kpi {word} weekly"
    try:
        return f"/kpi {registry.resolve(word).id}"
    except KpibotError:
        return f"/kpi {word}"


def _resolve_team(word: str, teams: Sequence[str]) -> str | None:
    lw = word.lower()
    for t in teams:
        if t.lower() == lw:
            return t
    return None


def _no_more(rest: list[str], what: str, usage: str) -> None:
    if rest:
        raise ParseError(
            f"`{what}` takes no more words (got {_describe(rest[0])}).", [usage, "/kpi help"]
        )


def _unknown_arg(
    word: str, cmd_words: str, teams: Sequence[str], allow_period: bool, allow_all: bool
) -> ParseError:
    pool = (
        list(teams)
        + (list(PERIOD_EXAMPLES) if allow_period else [])
        + (["all"] if allow_all else [])
    )
    hits = suggest(word, pool) if not _MENTION.match(word) else []
    wants = "a team" + (" or a period" if allow_period else "") + (" or `all`" if allow_all else "")
    team_list = ", ".join(teams) or "(none configured)"
    periods = f" Periods: {', '.join(PERIOD_EXAMPLES)}." if allow_period else ""
    return ParseError(
        f"I don't know {_describe(word)} here: `{cmd_words}` takes {wants}. "
        f"Teams: {team_list}.{periods}",
        [f"/kpi {cmd_words} {h}" for h in hits] or [f"/kpi {cmd_words}", "/kpi help"],
    )


def _with_args(
    kind: str,
    rest: list[str],
    teams: Sequence[str],
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
                f"{_describe(w)}: give at most one team and one period.", [f"/kpi {words}"]
            )
        else:
            raise _unknown_arg(w, words, teams, allow_period, allow_all)
    return Command(kind, team=team, period=period, all=all_items)


def _action(rest: list[str], teams: Sequence[str]) -> Command:
    if not rest or rest[0].lower() != "add":
        got = f" (got {_describe(rest[0])})" if rest else ""
        raise ParseError(
            f"`action` needs `add`{got}: `/kpi action add` opens the action-item form; "
            "`/kpi actions` lists them.",
            ["/kpi action add", "/kpi actions"],
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
            f"I don't know {_describe(w)} here: `action add` takes an optional team and KPI.",
            [f"/kpi action add {h}" for h in hits] or ["/kpi action add"],
        )
    return Command("action_add", team=team, metric=metric)


def _subscription(head: str, rest: list[str], teams: Sequence[str]) -> Command:
    kind = "subscribe" if head == "subscribe" else "unsubscribe"
    digest = DIGEST_WORDS.get(rest[0].lower()) if rest else None
    if digest is None:
        if kind == "unsubscribe" and (not rest or _resolve_team(rest[0], teams)):
            cmd = _with_args(kind, rest, teams, allow_period=False)
            return Command(kind, team=cmd.team)
        got = f" (got {_describe(rest[0])})" if rest else ""
        raise ParseError(
            f"say which digest{got}: `/kpi {kind} weekly` (leading indicators, Mondays) or "
            f"`/kpi {kind} monthly` (DORA and predictability, on the 1st).",
            [f"/kpi {kind} weekly", f"/kpi {kind} monthly"],
        )
    words = f"{kind} {digest}"
    args, schedule = rest[1:], None
    if kind == "subscribe":
        args, schedule = _schedule_words(digest, args, words)
    cmd = _with_args(kind, args, teams, allow_period=False, cmd_words=words)
    return Command(kind, team=cmd.team, digest=digest, schedule=schedule)


_CLOCK = re.compile(r"^\d{1,2}:\d{2}$")


def _schedule_words(digest: str, args: list[str], words: str) -> tuple[list[str], str | None]:
    """Take an optional ``[at] <day> <HH:MM>`` off a subscribe command: a weekday for the
    weekly digest (``tue 10:00``), a day of the month 1-28 for the monthly one (``15 08:30``).
    """
    clock = next((i for i, w in enumerate(args) if _CLOCK.match(w)), None)
    if clock is None:
        return args, None
    example = "tue 10:00" if digest == "weekly" else "15 08:30"
    if clock == 0:
        raise ParseError(
            f"say the day before the time: `/kpi {words} {example}`.", [f"/kpi {words} {example}"]
        )
    start = clock - 1
    if start > 0 and args[start - 1].lower() == "at":
        start -= 1
    try:
        schedule = parse_schedule(digest, f"{args[clock - 1]} {args[clock]}").text
    except BadSchedule as exc:
        raise ParseError(f"{exc}: `/kpi {words} {example}`.", [f"/kpi {words} {example}"]) from exc
    return args[:start] + args[clock + 1 :], schedule


def _team_set(rest: list[str], teams: Sequence[str]) -> Command:
    if not rest or rest[0].lower() != "set":
        got = f" (got {_describe(rest[0])})" if rest else ""
        raise ParseError(
            f"`team` needs `set <team>`{got}: `/kpi team set payments` maps this channel to a "
            "team; `/kpi teams` lists them.",
            [f"/kpi team set {teams[0]}" if teams else "/kpi team set <team>", "/kpi teams"],
        )
    if len(rest) != 2:
        raise ParseError(
            "`team set` takes exactly one team name. Teams: " + (", ".join(teams) or "(none)"),
            [f"/kpi team set {t}" for t in teams[:3]] or ["/kpi teams"],
        )
    team = _resolve_team(rest[1], teams)
    if team is None:
        hits = suggest(rest[1], teams) if not _MENTION.match(rest[1]) else []
        raise ParseError(
            f"unknown team {_describe(rest[1])}. Teams: {', '.join(teams) or '(none)'}.",
            [f"/kpi team set {h}" for h in hits or teams[:3]] or ["/kpi teams"],
        )
    return Command("team_set", team=team)
