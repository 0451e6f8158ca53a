"""What the core answers a chat request with: report objects, lists, prompts and errors,
never a platform's message format. Each surface renders these (Slack: Block Kit)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from bot.chat.items import ItemRow, TeamRow
from bot.metrics.registry import MetricSpec
from bot.reports.agreements import AgreementsReport
from bot.reports.cards import DoraCard, Health, MetricCard
from bot.reports.digests import MonthlyDigest, WeeklyDigest
from bot.reports.freshness import SourceStatus
from bot.store.subscriptions import Subscription

OOPS = (
    "Something went wrong on my side while answering that. Please try again; if it keeps "
    "happening, ask whoever runs kpibot to look at its log."
)
BUSY = (
    "I'm busy answering a lot of other requests right now, so I didn't start on this one. "
    "Please try again in a minute."
)


@dataclass(frozen=True)
class Notice:
    """A sentence (a write's outcome), worded with the surface's :class:`~bot.chat.voice.Voice`."""

    text: str


@dataclass(frozen=True)
class Refused:
    """A refused change: what was refused and who may make it."""

    text: str


@dataclass(frozen=True)
class Problem:
    """Input that could not be answered, with "did you mean" commands when there are some."""

    text: str
    suggestions: tuple[str, ...] = ()


@dataclass(frozen=True)
class AskTeam:
    """No team could be resolved: ask, offering every team for ``command`` (the text typed)."""

    command: str
    teams: tuple[str, ...]


@dataclass(frozen=True)
class Help:
    channel_team: str | None
    teams: tuple[str, ...]


@dataclass(frozen=True)
class CardAnswer:
    card: MetricCard


@dataclass(frozen=True)
class DoraAnswer:
    card: DoraCard


@dataclass(frozen=True)
class HealthAnswer:
    health: Health


@dataclass(frozen=True)
class DigestPreview:
    kind: str  # weekly | monthly
    digest: WeeklyDigest | MonthlyDigest


@dataclass(frozen=True)
class ItemList:
    items: tuple[ItemRow, ...]
    team: str
    include_done: bool
    today: date


@dataclass(frozen=True)
class TeamList:
    rows: tuple[TeamRow, ...]
    channel_team: str | None


@dataclass(frozen=True)
class SubscriptionList:
    conversation: str
    subscriptions: tuple[Subscription, ...]
    when: dict[int, str] = field(default_factory=dict)  # subscription id -> "every Mon at 09:00"


@dataclass(frozen=True)
class Definition:
    spec: MetricSpec
    target: str | None
    #: for a team counting this KPI in business hours: its working time, as words
    business_hours: str | None = None


@dataclass(frozen=True)
class AgreementsAnswer:
    """``agreements [team]``: the team's working agreements and the PRs in breach now."""

    report: AgreementsReport


@dataclass(frozen=True)
class Home:
    """A person's own view (Slack's App Home, a Teams personal tab)."""

    user: str
    healths: tuple[Health, ...]
    items: tuple[ItemRow, ...]
    subscriptions: tuple[Subscription, ...]
    today: date
    note: str | None = None


@dataclass(frozen=True)
class StatusAnswer:
    """``status [team]``: every source of a team, its data as of, last error and next run."""

    status: SourceStatus


Answer = (
    Notice
    | Refused
    | Problem
    | AskTeam
    | Help
    | CardAnswer
    | DoraAnswer
    | HealthAnswer
    | DigestPreview
    | ItemList
    | TeamList
    | SubscriptionList
    | Definition
    | StatusAnswer
    | AgreementsAnswer
)


def digest_details_command(team: str, period_label: str) -> str:
    """The command a weekly digest's *Details* button answers, on every platform: the
    team's health over the digest's period."""
    return f"health {team} {period_label}".strip()
