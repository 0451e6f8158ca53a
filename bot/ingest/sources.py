"""Which sources a team reads (for freshness, ``/kpi status`` and the demo): each source is
one (``source``, ``scope``) pair: ``github`` and a repository (the sync of its pull requests,
commits, deployments and issues), ``github-webhooks`` and a repository (GitHub's webhook
deliveries), ``deployments-webhook`` and a repository, ``incidents-webhook``, ``jira``,
``pagerduty``, ``opsgenie`` and ``github-milestones`` with a team name. The sync and the
webhooks of one repository feed the same records, so either keeps it fresh.

Pure functions over the typed team configuration.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.settings import (
    GitHubIssueIncidents,
    MilestoneSprints,
    TeamConfig,
    WebhookDeployments,
    WebhookIncidents,
)

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
