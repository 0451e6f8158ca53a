"""Freshness (METRICS.md, Agreements and alerts): which sources a team's KPIs are read from,
the *data as of* of a card or digest, and when a source is failing.

Pure: the store's :mod:`bot.store.source_health` holds what happened; these rules decide what
it means.

A source is one (``source``, ``scope``) pair: ``github`` and a repository (the sync of its pull
requests, commits, deployments and issues), ``github-webhooks`` and a repository (GitHub's
webhook deliveries), ``deployments-webhook`` and a repository, ``incidents-webhook``, ``jira``,
``pagerduty``, ``opsgenie`` and ``github-milestones`` with a team name. The sync and the
webhooks of one repository feed the same records, so a repository's data is as fresh as the
later of the two.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.settings import (
    GitHubIssueIncidents,
    MilestoneSprints,
    TeamConfig,
    WebhookDeployments,
    WebhookIncidents,
)

#: consecutive failed runs after which a source's channels are told
FAILURES_TO_NOTICE = 3
#: sync intervals after which a polled source's data is stale
STALE_INTERVALS = 3
#: sources kpibot reads on a schedule (webhooks are sent to it: they cannot fail or be late)
POLLED = frozenset({"github", "jira", "pagerduty", "opsgenie", "github-milestones"})

LABELS = {
    "github": "GitHub sync",
    "github-webhooks": "GitHub webhooks",
    "deployments-webhook": "deployment webhook",
    "incidents-webhook": "incident webhook",
    "jira": "Jira",
    "pagerduty": "PagerDuty",
    "opsgenie": "Opsgenie",
    "github-milestones": "GitHub milestones",
}


@dataclass(frozen=True, order=True)
class SourceKey:
    source: str
    scope: str  # a repository (owner/name) or a team name

    @property
    def label(self) -> str:
        return f"{LABELS.get(self.source, self.source)} ({self.scope})"

    @property
    def polled(self) -> bool:
        return self.source in POLLED


#: one requirement of a KPI: any of these sources keeps it fresh (the latest of them counts)
Group = tuple[SourceKey, ...]


def _repo_groups(repos: Iterable[str]) -> list[Group]:
    return [
        (SourceKey("github", r.lower()), SourceKey("github-webhooks", r.lower())) for r in repos
    ]


def source_groups(team: TeamConfig, kinds: Iterable[str]) -> list[Group]:
    """What the KPIs reading ``kinds`` (``repos``, ``deployments``, ``incidents``,
    ``sprints``: ``MetricSpec.sources``) of ``team`` are read from, in a stable order."""
    out: list[Group] = []
    for kind in dict.fromkeys(kinds):
        if kind == "repos":
            out += _repo_groups(team.repos)
        elif kind == "deployments":
            if isinstance(team.deployments, WebhookDeployments):
                out += [(SourceKey("deployments-webhook", r.lower()),) for r in team.repos]
            else:
                out += _repo_groups(team.repos)
        elif kind == "incidents":
            inc = team.incidents
            if isinstance(inc, GitHubIssueIncidents):
                out += _repo_groups(inc.repos or team.repos)
            elif isinstance(inc, WebhookIncidents):
                out.append((SourceKey("incidents-webhook", team.name),))
            else:
                out.append((SourceKey(inc.source, team.name),))
        elif kind == "sprints" and team.sprints is not None:
            sprints = team.sprints
            if isinstance(sprints, MilestoneSprints):
                out.append((SourceKey("github-milestones", team.name),))
            else:
                out.append((SourceKey(sprints.source, team.name),))
    return list(dict.fromkeys(out))


def team_sources(team: TeamConfig) -> list[SourceKey]:
    """Every source a team's KPIs are read from (``/kpi status``), each once."""
    kinds = ["repos", "deployments", "incidents", "sprints"]
    return list(dict.fromkeys(k for g in source_groups(team, kinds) for k in g))


def data_as_of(
    groups: Iterable[Group], as_of: Mapping[SourceKey, datetime | None]
) -> datetime | None:
    """The oldest *data as of* among ``groups`` (each group as fresh as its latest source);
    None when one of them has never delivered data, or there is none."""
    oldest: datetime | None = None
    seen = False
    for group in groups:
        times = [t for k in group if (t := as_of.get(k)) is not None]
        if not times:
            return None
        latest = max(times)
        oldest = latest if oldest is None else min(oldest, latest)
        seen = True
    return oldest if seen else None


def is_failing(
    key: SourceKey,
    *,
    failures: int,
    last_success: datetime | None,
    now: datetime,
    interval: timedelta | None,
) -> bool:
    """A source is failing when its last ``FAILURES_TO_NOTICE`` runs failed, or when it is
    read on a schedule (``interval``) and its data is older than ``STALE_INTERVALS`` of them."""
    if failures >= FAILURES_TO_NOTICE:
        return True
    if not key.polled or interval is None or last_success is None:
        return False
    return now - last_success > interval * STALE_INTERVALS


def transition(failing_before: bool, failing_now: bool) -> str | None:
    """What to tell the team's channels: ``failing`` when a source starts failing,
    ``recovered`` when it stops, None otherwise."""
    if failing_now and not failing_before:
        return "failing"
    if failing_before and not failing_now:
        return "recovered"
    return None
