"""Environment settings and the kpibot.yml team configuration, validated into typed objects.

``load_env_settings`` reads the environment (and a ``.env`` file in the working directory);
``load_config`` reads ``kpibot.yml`` and reports every problem with its line and a hint;
``load_team_config`` reads the configuration the settings name: the file in
``KPIBOT_CONFIG``, or the YAML text of ``KPIBOT_CONFIG_YAML`` itself (for deployments that ship
no file), validated the same way.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import yaml
from dotenv import dotenv_values
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.errors import ConfigError, did_you_mean
from bot.metrics import registry
from bot.metrics.registry import Kind, Target

# --- environment ---------------------------------------------------------------------------

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_SLACK_HOOKS_URL = "https://hooks.slack.com/"
# Microsoft Teams (Bot Framework): the connector base, the OpenID metadata whose keys sign
# inbound activities, and the OAuth client-credentials endpoint for outbound calls
DEFAULT_TEAMS_API_URL = "https://smba.trafficmanager.net/teams/"
DEFAULT_TEAMS_OPENID_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
DEFAULT_TEAMS_TOKEN_URL = "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token"

SECRET_FIELDS = {
    "slack_bot_token",
    "slack_app_token",
    "slack_signing_secret",
    "github_token",
    "jira_api_token",
    "webhook_secret",
    "pagerduty_api_token",
    "opsgenie_api_key",
    "teams_app_password",
}


def secret_values(settings: Settings) -> list[str]:
    """The configured secrets, to take out of any text kpibot stores or shows."""
    return [v for name in sorted(SECRET_FIELDS) if (v := getattr(settings, name, None))]


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///kpibot.db"
    config_path: str = "kpibot.yml"
    config_yaml: str | None = None  # the whole kpibot.yml, from KPIBOT_CONFIG_YAML
    slack_bot_token: str | None = None
    slack_app_token: str | None = None
    slack_signing_secret: str | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    slack_hooks_url: str | None = None  # see hooks_url()
    github_token: str | None = None
    github_api_url: str = "https://api.github.com"
    jira_url: str | None = None
    jira_email: str | None = None
    jira_api_token: str | None = None
    webhook_secret: str | None = None
    port: int = 3000
    pagerduty_api_token: str | None = None
    pagerduty_api_url: str = "https://api.pagerduty.com"
    opsgenie_api_key: str | None = None
    opsgenie_api_url: str = "https://api.opsgenie.com"
    http_threads: int = 64  # HTTP mode: requests served at once
    http_connections: int = 500  # HTTP mode: open connections before new ones wait
    report_workers: int | None = None  # report worker processes; None: one per core
    teams_app_id: str | None = None
    teams_app_password: str | None = None
    teams_tenant_id: str | None = None  # set: only this tenant may use the bot
    teams_api_url: str = DEFAULT_TEAMS_API_URL
    teams_openid_url: str = DEFAULT_TEAMS_OPENID_URL
    teams_token_url: str = DEFAULT_TEAMS_TOKEN_URL
    teams_admins: tuple[str, ...] = ()  # AAD object ids of kpibot's admins in Teams
    public_url: str | None = None  # the public https address of HTTP mode (Teams charts)

    def __repr__(self) -> str:  # secrets never reach logs
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and value:
                value = "***"
            parts.append(f"{f.name}={value!r}")
        return "Settings(" + ", ".join(parts) + ")"

    __str__ = __repr__

    def hooks_url(self) -> str:
        """Where Slack's response URLs live (the only place kpibot posts them to):
        ``SLACK_HOOKS_URL`` when set; else Slack's ``https://hooks.slack.com/``; else, when
        ``SLACK_API_URL`` points elsewhere (a proxy, a test fake), that server's root."""
        if self.slack_hooks_url:
            return self.slack_hooks_url
        if self.slack_api_url.rstrip("/") == DEFAULT_SLACK_API_URL.rstrip("/"):
            return DEFAULT_SLACK_HOOKS_URL
        parts = urlsplit(self.slack_api_url)
        return f"{parts.scheme}://{parts.netloc}/"


SLACK_CREDENTIALS = ("slack_bot_token", "slack_app_token", "slack_signing_secret")
NO_PLATFORM = (
    "no chat platform is set up (SLACK_BOT_TOKEN is not set, nor TEAMS_APP_ID): for Slack set "
    "SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN for Socket Mode), for "
    "Microsoft Teams TEAMS_APP_ID and TEAMS_APP_PASSWORD; either platform alone is enough "
    "(see README, Configuration)"
)


def chat_platforms(settings: Settings) -> tuple[str, ...]:
    """The chat platforms kpibot serves and posts to: ``slack`` when any Slack credential is
    set, ``teams`` when ``TEAMS_APP_ID`` is; either alone is enough, neither is a
    :class:`ConfigError` saying what to set for each."""
    platforms = tuple(
        name
        for name, on in (
            ("slack", any(getattr(settings, f) for f in SLACK_CREDENTIALS)),
            ("teams", bool(settings.teams_app_id)),
        )
        if on
    )
    if not platforms:
        raise ConfigError(NO_PLATFORM)
    return platforms


ENV_NAMES = {
    "database_url": "DATABASE_URL",
    "config_path": "KPIBOT_CONFIG",
    "config_yaml": "KPIBOT_CONFIG_YAML",
    "slack_bot_token": "SLACK_BOT_TOKEN",
    "slack_app_token": "SLACK_APP_TOKEN",
    "slack_signing_secret": "SLACK_SIGNING_SECRET",
    "slack_api_url": "SLACK_API_URL",
    "slack_hooks_url": "SLACK_HOOKS_URL",
    "github_token": "GITHUB_TOKEN",
    "github_api_url": "GITHUB_API_URL",
    "jira_url": "JIRA_URL",
    "jira_email": "JIRA_EMAIL",
    "jira_api_token": "JIRA_API_TOKEN",
    "webhook_secret": "KPIBOT_WEBHOOK_SECRET",
    "port": "PORT",
    "pagerduty_api_token": "PAGERDUTY_API_TOKEN",
    "pagerduty_api_url": "PAGERDUTY_API_URL",
    "opsgenie_api_key": "OPSGENIE_API_KEY",
    "opsgenie_api_url": "OPSGENIE_API_URL",
    "http_threads": "KPIBOT_HTTP_THREADS",
    "http_connections": "KPIBOT_HTTP_CONNECTIONS",
    "report_workers": "KPIBOT_REPORT_WORKERS",
    "teams_app_id": "TEAMS_APP_ID",
    "teams_app_password": "TEAMS_APP_PASSWORD",
    "teams_tenant_id": "TEAMS_TENANT_ID",
    "teams_api_url": "TEAMS_API_URL",
    "teams_openid_url": "TEAMS_OPENID_URL",
    "teams_token_url": "TEAMS_TOKEN_URL",
    "teams_admins": "TEAMS_ADMINS",
    "public_url": "KPIBOT_PUBLIC_URL",
}
COUNT_LIMITS = {"http_threads": 1000, "http_connections": 10_000, "report_workers": 64}
TEAMS_URLS = {
    "teams_api_url": DEFAULT_TEAMS_API_URL,
    "teams_openid_url": DEFAULT_TEAMS_OPENID_URL,
    "teams_token_url": DEFAULT_TEAMS_TOKEN_URL,
}


def load_env_settings(
    environ: Mapping[str, str] | None = None, dotenv_path: str | Path | None = ".env"
) -> Settings:
    """Settings from the environment; a ``.env`` file fills in what the environment lacks."""
    env: dict[str, str] = {}
    if dotenv_path is not None and Path(dotenv_path).is_file():
        env.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    env.update(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    for attr, name in ENV_NAMES.items():
        raw = env.get(name)
        if raw is None or raw == "":
            continue
        if attr == "port":
            if not raw.isdigit() or not 0 < int(raw) < 65536:
                raise ConfigError(f"PORT must be a port number (1-65535), not '{raw}'")
            values[attr] = int(raw)
        elif attr == "slack_hooks_url" and not re.match(r"https?://[^/\s]+/?", raw):
            raise ConfigError(
                f"SLACK_HOOKS_URL must be the URL Slack's response URLs start with, such as "
                f"https://hooks.slack.com/, not '{raw}'"
            )
        elif attr in TEAMS_URLS and not re.match(r"https?://[^/\s]+", raw):
            raise ConfigError(
                f"{name} must be an http(s) URL, such as {TEAMS_URLS[attr]}, not '{raw}'"
            )
        elif attr == "teams_admins":
            values[attr] = tuple(x.strip() for x in raw.split(",") if x.strip())
        elif attr == "public_url":
            if not re.match(r"https?://[^/\s]+(/\S*)?$", raw.strip()):
                raise ConfigError(
                    f"KPIBOT_PUBLIC_URL must be the public address of kpibot's HTTP mode, such "
                    f"as https://kpibot.example.com, not '{raw}'"
                )
            values[attr] = raw.strip().rstrip("/")
        elif attr in COUNT_LIMITS:
            top = COUNT_LIMITS[attr]
            if not raw.strip().isdigit() or not 0 < int(raw) <= top:
                raise ConfigError(f"{name} must be a whole number from 1 to {top}, not '{raw}'")
            values[attr] = int(raw)
        else:
            values[attr] = raw
    if "config_path" in values and "config_yaml" in values:
        raise ConfigError(
            "KPIBOT_CONFIG and KPIBOT_CONFIG_YAML are both set: keep one (KPIBOT_CONFIG names "
            "a kpibot.yml file, KPIBOT_CONFIG_YAML holds its contents)"
        )
    return Settings(**values)


# --- units ---------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|hours?|d|days?|w|weeks?)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """``48h``, ``30m``, ``2d``, ``1w``, ``90s``, ``1.5h`` -> seconds."""
    m = _DURATION.match(str(text).lower())
    if not m:
        raise ValueError(f"'{text}' is not a duration: write e.g. 30m, 4h, 2d or 1w")
    return float(m.group(1)) * _UNIT_SECONDS[m.group(2)[0]]


def parse_target(text: Any, spec: registry.MetricSpec) -> Target:
    """A target value with optional operator and unit, checked against the metric's kind."""
    raw = str(text).strip()
    m = re.match(r"^(<=|>=|<|>)?\s*(.+)$", raw)
    assert m is not None
    op = m.group(1) or spec.target.op
    body = m.group(2).strip()
    kind = spec.kind
    if kind is Kind.DURATION:
        value = parse_duration(body)
    elif kind is Kind.RATIO:
        if body.endswith("%"):
            value = _number(body[:-1]) / 100
        else:
            value = _number(body)
            if value > 1:
                raise ValueError(f"'{raw}' for {spec.id}: write a percentage like 95% or 0.95")
        if not 0 <= value <= 1:
            raise ValueError(f"'{raw}' for {spec.id} must be between 0% and 100%")
    else:
        body = re.sub(r"\s*(lines?|per week|/week|/wk)$", "", body)
        value = _number(body)
    return Target(op, value)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"'{text}' is not a number") from None


# --- kpibot.yml ----------------------------------------------------------------------------

DEFAULT_PRODUCTION = ("production", "prod")
DEFAULT_EXCLUDE_AUTHORS = (
    "*[bot]",
    "dependabot*",
    "renovate*",
    "github-actions*",
    "snyk-*",
    "*-bot",
    "*-bot-*",
    "*_bot",
    "*_bot_*",
    "copilot*",
    "coderabbit*",
)
DEFAULT_IGNORE_PATHS = (
    "*.lock",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "pnpm-lock.yaml",
    "go.sum",
    "vendor/**",
    "node_modules/**",
    "dist/**",
    "*.min.js",
    "*.snap",
)
USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")  # a Slack member id
SWITCH_WORDS = {"on": True, "off": False, "true": True, "false": False, "yes": True, "no": False}
AAD_OBJECT_ID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")  # Teams
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# --- where a team's deployments, incidents and sprints come from ---------------------------
#
# Each is a pydantic model discriminated by ``source``, normalised once here (a scalar where a
# list is allowed becomes a one-item tuple, PagerDuty's ``service`` joins ``services``), so no
# other module reads the raw YAML mapping.


def _as_tuple(value: Any) -> Any:
    """A scalar written where a list is allowed is a list of one (``labels: incident``)."""
    if value is None:
        return ()
    if isinstance(value, str | int | float):
        return (str(value),)
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return value


class _Source(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GitHubDeployments(_Source):
    """GitHub Deployments of the team's repositories, in its production environments."""

    source: Literal["github-deployments"] = "github-deployments"


class WorkflowDeployments(_Source):
    """Runs of one GitHub Actions workflow (by file name), optionally on one branch only."""

    source: Literal["workflow"] = "workflow"
    workflow: str = Field(min_length=1)
    branch: str | None = None


class ReleaseDeployments(_Source):
    """Published GitHub releases."""

    source: Literal["releases"] = "releases"


class WebhookDeployments(_Source):
    """Deployments sent to ``/webhooks/deployments`` only."""

    source: Literal["webhook"] = "webhook"


DeploymentSource = Annotated[
    GitHubDeployments | WorkflowDeployments | ReleaseDeployments | WebhookDeployments,
    Field(discriminator="source"),
]


class GitHubIssueIncidents(_Source):
    """GitHub issues carrying one of ``labels``, in ``repos`` (default: the team's repos)."""

    source: Literal["github-issues"] = "github-issues"
    labels: tuple[str, ...] = ("incident",)
    repos: tuple[str, ...] = ()

    @field_validator("labels", "repos", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _as_tuple(value)

    @field_validator("labels")
    @classmethod
    def _some_label(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return value or ("incident",)


class JiraIncidents(_Source):
    source: Literal["jira"] = "jira"
    project: str = Field(min_length=1)
    issue_type: str = "Incident"


class _ServiceIncidents(_Source):
    services: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _join_service(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "service" in data:
            data = dict(data)
            one = _as_tuple(data.pop("service"))
            data["services"] = (*_as_tuple(data.get("services")), *one)
        return data

    @field_validator("services", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _as_tuple(value)


class PagerDutyIncidents(_ServiceIncidents):
    source: Literal["pagerduty"] = "pagerduty"


class OpsgenieIncidents(_ServiceIncidents):
    source: Literal["opsgenie"] = "opsgenie"


class WebhookIncidents(_Source):
    """Incidents sent to ``/webhooks/incidents`` only."""

    source: Literal["webhook"] = "webhook"


IncidentSource = Annotated[
    GitHubIssueIncidents
    | JiraIncidents
    | PagerDutyIncidents
    | OpsgenieIncidents
    | WebhookIncidents,
    Field(discriminator="source"),
]


class JiraSprints(_Source):
    source: Literal["jira"] = "jira"
    board: str = Field(min_length=1)
    points_field: str | None = None

    @field_validator("board", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


class MilestoneSprints(_Source):
    """GitHub milestones with a due date, in ``repos`` (default: the team's repos)."""

    source: Literal["github-milestones"] = "github-milestones"
    repos: tuple[str, ...] = ()

    @field_validator("repos", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _as_tuple(value)


SprintSource = Annotated[JiraSprints | MilestoneSprints, Field(discriminator="source")]

#: section -> source name -> its model
SOURCE_MODELS: dict[str, dict[str, type[_Source]]] = {
    "deployments": {
        "github-deployments": GitHubDeployments,
        "workflow": WorkflowDeployments,
        "releases": ReleaseDeployments,
        "webhook": WebhookDeployments,
    },
    "incidents": {
        "github-issues": GitHubIssueIncidents,
        "jira": JiraIncidents,
        "pagerduty": PagerDutyIncidents,
        "opsgenie": OpsgenieIncidents,
        "webhook": WebhookIncidents,
    },
    "sprints": {"jira": JiraSprints, "github-milestones": MilestoneSprints},
}
DEPLOYMENTS: TypeAdapter[DeploymentSource] = TypeAdapter(DeploymentSource)
INCIDENTS: TypeAdapter[IncidentSource] = TypeAdapter(IncidentSource)
SPRINTS: TypeAdapter[SprintSource] = TypeAdapter(SprintSource)
_SOURCE_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    "deployments": DEPLOYMENTS,
    "incidents": INCIDENTS,
    "sprints": SPRINTS,
}
#: what to write when a source's required key is missing or empty: (section, source, key) -> hint
_MISSING_HINTS = {
    ("deployments", "workflow", "workflow"): "source 'workflow' needs 'workflow: deploy.yml' "
    "(the workflow file name)",
    ("incidents", "jira", "project"): "source 'jira' needs 'project: <key>' (and optionally "
    "'issue_type', default Incident)",
    ("incidents", "pagerduty", "services"): "source 'pagerduty' needs 'services: [<service "
    "id>, ...]' (the services whose incidents are the team's)",
    ("incidents", "opsgenie", "services"): "source 'opsgenie' needs 'services: [<service "
    "id>, ...]' (the services whose incidents are the team's)",
    ("sprints", "jira", "board"): "source 'jira' needs 'board: <board id>'",
}


def source_config(what: str, raw: Any) -> Any:
    """A ``deployments``, ``incidents`` or ``sprints`` mapping as its typed object (an object
    already typed is returned as it is); raises ``pydantic.ValidationError``."""
    if raw is None or isinstance(raw, _Source):
        return raw
    return _SOURCE_ADAPTERS[what].validate_python(raw)


class WorkingHours(BaseModel):
    """A team's working time (METRICS.md, Time: business hours): the weekdays worked
    (0 = Monday), the working hours as seconds after local midnight, holidays as dates and as
    country calendars (``DE``, ``DE-BE``, ``US-NY``, from the ``holidays`` package)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    days: tuple[int, ...] = (0, 1, 2, 3, 4)
    start: int = 9 * 3600
    end: int = 17 * 3600
    holidays: tuple[date, ...] = ()
    calendars: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _hours_in_order(self) -> WorkingHours:
        if not 0 <= self.start < self.end <= 86400:
            raise ValueError("working hours must start before they end, within one day")
        return self


def parse_work_days(text: str) -> tuple[int, ...]:
    """``mon-fri``, ``sun-thu``, ``mon,wed,fri`` or ``mon-thu, sat`` -> weekday numbers."""
    out: list[int] = []
    for part in re.split(r"[,\s]+", text.strip().lower()):
        if not part:
            continue
        first, _, last = part.partition("-")
        a, b = first[:3], (last or first)[:3]
        if a not in WEEKDAYS or b not in WEEKDAYS:
            raise ValueError(f"'{text}' is not a list of days: write e.g. mon-fri or mon,tue,thu")
        i, j = WEEKDAYS.index(a), WEEKDAYS.index(b)
        while True:  # a range may wrap around the week (sun-thu)
            if i not in out:
                out.append(i)
            if i == j:
                break
            i = (i + 1) % 7
    if not out:
        raise ValueError("no working days: write e.g. mon-fri")
    return tuple(sorted(out))


def parse_work_hours(text: str) -> tuple[int, int]:
    """``09:00-17:00`` -> seconds after midnight (``24:00`` may end the day)."""
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text)
    if not m:
        raise ValueError(f"'{text}' is not a span of hours: write e.g. \"09:00-17:00\"")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    start, end = h1 * 3600 + m1 * 60, h2 * 3600 + m2 * 60
    if h1 > 23 or m1 > 59 or m2 > 59 or end > 86400:
        raise ValueError(f"'{text}' is not a span of hours: times go from 00:00 to 24:00")
    if end <= start:
        raise ValueError(f"'{text}': the working hours must end after they start, on one day")
    return start, end


def holiday_calendar_problem(code: str) -> str | None:
    """Why ``code`` (``DE``, ``DE-BE``, ``US-NY``) is not a country calendar the ``holidays``
    package has, or None when it is one."""
    import holidays  # only when a configuration names a calendar

    supported = holidays.list_supported_countries()
    country, _, sub = code.partition("-")
    country = country.upper()
    if country not in supported:
        hint = did_you_mean(country, supported)
        return (
            f"'{code}' is neither a date (YYYY-MM-DD) nor a country code the holiday calendars "
            f"know: use an ISO country code such as DE, or DE-BE for a subdivision.{hint}"
        )
    subs = [str(s) for s in supported[country]]
    if sub and sub.upper() not in {s.upper() for s in subs}:
        hint = did_you_mean(sub.upper(), subs)
        return (
            f"'{code}': {country} has no subdivision '{sub}'.{hint} "
            f"Subdivisions: {', '.join(subs)}."
        )
    return None


class Agreements(BaseModel):
    """A team's working agreements (METRICS.md, Agreements and alerts): durations in seconds
    (working time when the team has business hours), the size in lines; None: not agreed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    first_review_within: float | None = None
    pr_size_under: int | None = None
    open_pr_idle_for: float | None = None

    @property
    def any(self) -> bool:
        return any(
            v is not None
            for v in (self.first_review_within, self.pr_size_under, self.open_pr_idle_for)
        )


#: the agreement keys of ``kpibot.yml``, in the order messages list them
AGREEMENT_KEYS = ("first_review_within", "pr_size_under", "open_pr_idle_for")
DEFAULT_EXCLUDE_LABELS = ("kpi-exclude",)
DEFAULT_NOISE_BUDGET = 5


@dataclass(frozen=True)
class DigestTimes:
    weekly_day: int = 0  # Monday
    weekly_time: tuple[int, int] = (9, 0)
    monthly_day: int = 1
    monthly_time: tuple[int, int] = (9, 0)


@dataclass(frozen=True)
class TeamConfig:
    name: str
    timezone: str = "UTC"
    channel: str | None = None
    repos: tuple[str, ...] = ()
    branches: tuple[str, ...] = ()
    production_environments: tuple[str, ...] = DEFAULT_PRODUCTION
    deployments: DeploymentSource = field(default_factory=GitHubDeployments)
    incidents: IncidentSource = field(default_factory=GitHubIssueIncidents)
    sprints: SprintSource | None = None
    exclude_authors: tuple[str, ...] = ()
    ignore_paths: tuple[str, ...] = ()
    targets: Mapping[str, Target] = field(default_factory=dict)
    digests: DigestTimes = DigestTimes()
    dora_edition: int = 2023
    attribution_window: float = 72 * 3600.0
    leads: tuple[str, ...] = ()  # chat user ids who may change the team's channels and items
    working_hours: WorkingHours | None = None  # business hours; None: calendar time
    # threshold alerts: KPI id -> on/off as kpibot.yml says (``/kpi alert on|off`` overrides)
    alerts: Mapping[str, bool] = field(default_factory=dict)
    agreements: Agreements = field(default_factory=Agreements)
    #: PRs with one of these labels count for none of the team's KPIs
    exclude_labels: tuple[str, ...] = DEFAULT_EXCLUDE_LABELS
    #: kpibot alerts and nudges a channel receives per week; the rest fold into the roll-up
    noise_budget: int = DEFAULT_NOISE_BUDGET
    #: GitHub logins (lower case) of the team's people; with ``github_team``, synced from GitHub
    members: tuple[str, ...] = ()
    github_team: str | None = None  # "org/team-slug"
    paths: tuple[str, ...] = ()  # .gitignore-style: the monorepo folders that are the team's
    line: int | None = None

    def __post_init__(self) -> None:
        # a mapping (as written in YAML, or by a caller) becomes its typed object
        for what in ("deployments", "incidents", "sprints"):
            object.__setattr__(self, what, source_config(what, getattr(self, what)))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def bot_patterns(self) -> tuple[str, ...]:
        return DEFAULT_EXCLUDE_AUTHORS + self.exclude_authors

    @property
    def path_patterns(self) -> tuple[str, ...]:
        return DEFAULT_IGNORE_PATHS + self.ignore_paths

    def target_for(self, metric_id: str) -> Target:
        return self.targets.get(metric_id, registry.BY_ID[metric_id].target)

    @property
    def has_members(self) -> bool:
        """Whether the team is defined by its people (``members`` or ``github_team``)."""
        return bool(self.members) or self.github_team is not None

    @property
    def selects_prs(self) -> bool:
        """Whether the team's PRs are a selection of its repositories' (by people or paths:
        METRICS.md, Which PRs are a team's), kept per PR in the store."""
        return self.has_members or bool(self.paths)


@dataclass(frozen=True)
class Person:
    """One person's accounts: the GitHub login (lower case) and, where known, the Slack
    member id, the Teams (Azure AD) object id and the e-mail address."""

    github: str
    slack: str | None = None
    teams: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Config:
    teams: tuple[TeamConfig, ...]
    path: str = "kpibot.yml"
    #: identity mapping: who is who on GitHub and in chat (from ``people:`` and the mappings
    #: written in ``members``)
    people: tuple[Person, ...] = ()

    def team_names(self) -> list[str]:
        return [t.name for t in self.teams]

    def team(self, name: str) -> TeamConfig:
        from bot.errors import UnknownTeam

        for t in self.teams:
            if t.name.lower() == name.lower():
                return t
        raise UnknownTeam(
            f"unknown team '{name}'.{did_you_mean(name, self.team_names())} "
            f"Teams in {self.path}: {', '.join(self.team_names()) or '(none)'}."
        )


TEAM_KEYS = {
    "name",
    "timezone",
    "channel",
    "repos",
    "branches",
    "production_environments",
    "deployments",
    "incidents",
    "sprints",
    "exclude_authors",
    "ignore_paths",
    "targets",
    "digests",
    "dora_edition",
    "attribution_window",
    "leads",
    "working_hours",
    "alerts",
    "agreements",
    "exclude_labels",
    "noise_budget",
    "members",
    "github_team",
    "paths",
}
DEFAULTABLE_KEYS = TEAM_KEYS - {"name", "channel", "repos", "members", "github_team", "paths"}
TOP_KEYS = {"teams", "defaults", "people"}
PERSON_KEYS = ("github", "slack", "teams", "email")
GITHUB_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")
GITHUB_TEAM = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class _Checker:
    """Walks the YAML node tree, collecting problems with their line numbers."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[str] = []
        self.people: list[Person] = []  # identity mappings met so far, in file order

    def add(self, node: yaml.Node | None, message: str) -> None:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        self.problems.append(f"{self.path}{line}: {message}")

    # node helpers -------------------------------------------------------------------------
    def mapping(self, node: yaml.Node, what: str) -> list[tuple[yaml.ScalarNode, yaml.Node]] | None:
        if not isinstance(node, yaml.MappingNode):
            self.add(node, f"{what} must be a mapping (key: value lines)")
            return None
        seen: dict[str, yaml.Node] = {}
        out = []
        for k, v in node.value:
            if not isinstance(k, yaml.ScalarNode):
                self.add(k, f"{what} has a key that is not a plain word")
                continue
            if k.value in seen:
                self.add(k, f"duplicate key '{k.value}' in {what}")
            seen[k.value] = v
            out.append((k, v))
        return out

    def scalar(self, node: yaml.Node, what: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag.endswith(":null"):
            self.add(node, f"{what} must be a single value")
            return None
        return str(node.value)

    def str_list(self, node: yaml.Node, what: str) -> tuple[str, ...] | None:
        if isinstance(node, yaml.ScalarNode) and not node.tag.endswith(":null"):
            return (str(node.value),)
        if not isinstance(node, yaml.SequenceNode):
            self.add(node, f"{what} must be a list, e.g. [a, b]")
            return None
        out = []
        for item in node.value:
            s = self.scalar(item, f"each entry of {what}")
            if s is not None:
                out.append(s)
        return tuple(out)

    # sections -----------------------------------------------------------------------------
    def team(self, node: yaml.Node, defaults: dict[str, Any], index: int) -> TeamConfig | None:
        pairs = self.mapping(node, f"team #{index + 1}")
        if pairs is None:
            return None
        values: dict[str, Any] = dict(defaults)
        name_node = next((v for k, v in pairs if k.value == "name"), None)
        name = self.scalar(name_node, "name") if name_node is not None else None
        label = f"team '{name}'" if name else f"team #{index + 1}"
        if name_node is None:
            self.add(node, f"{label} has no 'name'")
        elif name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", name):
            self.add(
                name_node, f"team name '{name}' may use only letters, digits, '-', '_' and '.'"
            )
            name = None
        for k, v in pairs:
            self.team_key(k, v, values, label, allowed=TEAM_KEYS)
        repos_node = next((v for k, v in pairs if k.value == "repos"), None)
        if name is not None and (repos_node is None or values.get("repos") == ()):
            # every KPI but predictability, scope creep and time to restore comes from the
            # team's repositories, and deployments of every source (webhooks included) are
            # matched to teams by repository: a team without repos could show almost nothing
            self.add(
                repos_node or node,
                f"{label} has no repos: its pull-request KPIs and deployments come from its "
                "GitHub repositories; add e.g. 'repos: [acme/payments-api]' (owner/name)",
            )
        if name is None:
            return None
        values["name"] = name
        values["line"] = node.start_mark.line + 1
        return TeamConfig(**values)

    def team_key(
        self,
        k: yaml.ScalarNode,
        v: yaml.Node,
        values: dict[str, Any],
        label: str,
        allowed: set[str],
    ) -> None:
        key = k.value
        if key not in allowed:
            hint = did_you_mean(key, allowed)
            extra = "" if hint else f" Allowed: {', '.join(sorted(allowed))}."
            self.add(k, f"unknown key '{key}' in {label}.{hint}{extra}")
            return
        if key == "name":
            return
        if key == "timezone":
            tz = self.scalar(v, "timezone")
            if tz is not None:
                if _valid_zone(tz):
                    values[key] = tz
                else:
                    hint = did_you_mean(tz, _zone_names())
                    self.add(
                        v,
                        f"unknown time zone '{tz}' in {label}: use an IANA name such as "
                        f"Europe/Berlin or America/New_York.{hint}",
                    )
        elif key == "channel":
            ch = self.scalar(v, "channel")
            if ch is not None:
                if not re.fullmatch(r"[CGD][A-Z0-9]{6,}", ch):
                    self.add(
                        v,
                        f"channel '{ch}' in {label} is not a Slack channel id: use the id "
                        "(e.g. C0123456789, from the channel's details), not its name",
                    )
                else:
                    values[key] = ch
        elif key == "repos":
            repos = self.str_list(v, "repos")
            if repos is not None:
                for r in repos:
                    if not re.fullmatch(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+", r):
                        self.add(v, f"repo '{r}' in {label} must be written owner/name")
                values[key] = repos
        elif key in (
            "branches",
            "production_environments",
            "exclude_authors",
            "ignore_paths",
            "exclude_labels",
        ):
            items = self.str_list(v, key)
            if items is not None:
                values[key] = items
        elif key in ("deployments", "incidents", "sprints"):
            typed = self.source(v, key, label)
            if typed is not None:
                values[key] = typed
        elif key == "targets":
            values[key] = self.targets(v, label)
        elif key == "digests":
            values[key] = self.digests(v, label)
        elif key == "alerts":
            values[key] = self.alerts(v, label)
        elif key == "dora_edition":
            ed = self.scalar(v, "dora_edition")
            if ed is not None:
                if ed in ("2023", "2021"):
                    values[key] = int(ed)
                else:
                    self.add(v, f"dora_edition of {label} must be 2023 or 2021, not '{ed}'")
        elif key == "leads":
            ids = self.str_list(v, key)
            if ids is not None:
                bad = [u for u in ids if not (USER_ID.fullmatch(u) or AAD_OBJECT_ID.fullmatch(u))]
                for u in bad:
                    self.add(
                        v,
                        f"lead '{u}' in {label} is neither a Slack member id (e.g. U0123ABCD, "
                        "from the person's profile -> Copy member ID) nor a Microsoft Teams "
                        "user's object id (a GUID, from Microsoft Entra admin center -> Users "
                        "-> the person -> Object ID); not a name",
                    )
                if not bad:
                    # object ids compare as Teams sends them: lower case
                    values[key] = tuple(u.lower() if AAD_OBJECT_ID.fullmatch(u) else u for u in ids)
        elif key == "members":
            logins = self.members(v, label)
            if logins is not None:
                values[key] = logins
        elif key == "github_team":
            slug = self.scalar(v, key)
            if slug is not None:
                if GITHUB_TEAM.fullmatch(slug):
                    values[key] = slug.lower()
                else:
                    self.add(
                        v,
                        f"github_team of {label} must be written org/team-slug (as in GitHub's "
                        f"team URL, e.g. acme/payments), not '{slug}'",
                    )
        elif key == "paths":
            items = self.str_list(v, key)
            if items is not None:
                if not [p for p in items if p.strip()]:
                    self.add(v, f"paths of {label} is empty: leave it out, or list folders")
                else:
                    values[key] = tuple(p.strip() for p in items if p.strip())
        elif key == "working_hours":
            wh = self.working_hours(v, label)
            if wh is not None:
                values[key] = wh
        elif key == "agreements":
            ag = self.agreements(v, label)
            if ag is not None:
                values[key] = ag
        elif key == "noise_budget":
            nb = self.scalar(v, key)
            if nb is not None:
                if re.fullmatch(r"\d{1,3}", nb.strip()):
                    values[key] = int(nb)
                else:
                    self.add(
                        v,
                        f"noise_budget of {label} must be a whole number of alerts and nudges "
                        f"per channel and week (e.g. 5; 0 sends every one in the roll-up), "
                        f"not '{nb}'",
                    )
        elif key == "attribution_window":
            w = self.scalar(v, key)
            if w is not None:
                try:
                    values[key] = parse_duration(w)
                except ValueError as exc:
                    self.add(v, f"attribution_window of {label}: {exc}")

    def members(self, node: yaml.Node, label: str) -> tuple[str, ...] | None:
        """``members: [alice, {github: bob, slack: U0123, email: bob@acme.io}]``: the GitHub
        logins (lower case); each mapping also goes to the identity mapping."""
        items = node.value if isinstance(node, yaml.SequenceNode) else None
        if items is None:
            self.add(node, f"members of {label} must be a list, e.g. [alice, bob]")
            return None
        out: list[str] = []
        for item in items:
            if isinstance(item, yaml.MappingNode):
                person = self.person(item, f"a member of {label}")
                if person is not None:
                    out.append(person.github)
                continue
            login = self.scalar(item, f"each member of {label}")
            if login is None:
                continue
            if not GITHUB_LOGIN.fullmatch(login):
                self.add(item, f"member '{login}' of {label} is not a GitHub login")
                continue
            out.append(login.lower())
        return tuple(dict.fromkeys(out))

    def person(self, node: yaml.Node, what: str) -> Person | None:
        """``{github: alice, slack: U0123, teams: <AAD object id>, email: alice@acme.io}``."""
        pairs = self.mapping(node, what)
        if pairs is None:
            return None
        values: dict[str, str] = {}
        ok = True
        for k, v in pairs:
            if k.value not in PERSON_KEYS:
                hint = did_you_mean(k.value, PERSON_KEYS)
                self.add(
                    k,
                    f"unknown key '{k.value}' in {what}.{hint} Allowed: {', '.join(PERSON_KEYS)}.",
                )
                ok = False
                continue
            raw = self.scalar(v, f"{k.value} of {what}")
            if raw is None:
                ok = False
                continue
            raw = raw.strip()
            bad = {
                "github": None if GITHUB_LOGIN.fullmatch(raw) else "is not a GitHub login",
                "slack": None
                if USER_ID.fullmatch(raw)
                else "is not a Slack member id (e.g. U0123ABCD, from the profile)",
                "teams": None if re.fullmatch(r"[A-Za-z0-9:_.-]{1,128}", raw) else "is not an id",
                "email": None if EMAIL.fullmatch(raw) else "is not an e-mail address",
            }[k.value]
            if bad is not None:
                self.add(v, f"{k.value} '{raw}' of {what} {bad}")
                ok = False
                continue
            values[k.value] = raw.lower() if k.value in ("github", "email") else raw
        if "github" not in values:
            if ok:
                self.add(node, f"{what} needs 'github: <login>' (the login its PRs are by)")
            return None
        if not ok:
            return None
        person = Person(**values)
        self.people.append(person)
        return person

    def source(self, node: yaml.Node, what: str, label: str) -> Any | None:
        """A ``deployments``, ``incidents`` or ``sprints`` section as its typed object, every
        problem reported on its line (unknown keys with the chosen source's keys as hints)."""
        raw: dict[str, Any] = {}
        key_nodes: dict[str, yaml.Node] = {}
        source_node: yaml.Node = node
        if isinstance(node, yaml.ScalarNode):
            raw["source"] = node.value
        else:
            pairs = self.mapping(node, f"{what} of {label}")
            if pairs is None:
                return None
            for k, v in pairs:
                key_nodes[k.value] = k
                if k.value == "source":
                    source_node = v
                if isinstance(v, yaml.SequenceNode):
                    raw[k.value] = list(self.str_list(v, k.value) or ())
                else:
                    raw[k.value] = self.scalar(v, k.value)
        models = SOURCE_MODELS[what]
        src = raw.get("source")
        if src not in models:
            hint = did_you_mean(str(src), models)
            self.add(
                source_node,
                f"{what} source of {label} must be one of {', '.join(models)}, not '{src}'.{hint}",
            )
            return None
        allowed = set(models[src].model_fields)
        if "services" in allowed:
            allowed.add("service")  # one service, joined to services
        for key in [k for k in raw if k not in allowed]:
            hint = did_you_mean(key, allowed) or (
                f" Keys of source '{src}': {', '.join(sorted(allowed))}."
            )
            self.add(key_nodes.get(key, node), f"unknown key '{key}' in {what} of {label}.{hint}")
            del raw[key]
        try:
            return source_config(what, raw)
        except ValidationError as exc:
            for err in exc.errors():
                field_name = str(err["loc"][-1]) if err["loc"] else "source"
                needs = _MISSING_HINTS.get((what, str(src), field_name))
                if needs is not None and err["type"] in (
                    "missing",
                    "string_too_short",
                    "too_short",
                ):
                    message = f"{what} of {label}: {needs}"
                else:
                    message = f"{what} of {label}: '{field_name}' {err['msg'].lower()}"
                self.add(key_nodes.get(field_name, node), message)
            return None

    def working_hours(self, node: yaml.Node, label: str) -> WorkingHours | None:
        """``working_hours: {days: mon-fri, hours: "09:00-17:00", holidays: [...]}``; every
        problem on its line. ``holidays`` takes dates and country calendars (``DE-BE``)."""
        pairs = self.mapping(node, f"working_hours of {label}")
        if pairs is None:
            return None
        values: dict[str, Any] = {}
        ok = True
        allowed = ("days", "hours", "holidays")
        for k, v in pairs:
            what = f"working_hours.{k.value} of {label}"
            if k.value == "days":
                raw = self.scalar(v, what) if not isinstance(v, yaml.SequenceNode) else None
                if isinstance(v, yaml.SequenceNode):
                    raw = ",".join(self.str_list(v, what) or ())
                if raw is None:
                    ok = False
                    continue
                try:
                    values["days"] = parse_work_days(raw)
                except ValueError as exc:
                    self.add(v, f"{what}: {exc}")
                    ok = False
            elif k.value == "hours":
                raw = self.scalar(v, what)
                if raw is None:
                    ok = False
                    continue
                try:
                    values["start"], values["end"] = parse_work_hours(raw)
                except ValueError as exc:
                    self.add(v, f"{what}: {exc}")
                    ok = False
            elif k.value == "holidays":
                items = v.value if isinstance(v, yaml.SequenceNode) else [v]
                dates: list[date] = []
                calendars: list[str] = []
                for item in items:
                    raw = self.scalar(item, f"each entry of {what}")
                    if raw is None:
                        ok = False
                        continue
                    raw = raw.strip()
                    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
                        try:
                            dates.append(date.fromisoformat(raw))
                        except ValueError:
                            self.add(item, f"{what}: '{raw}' is not a date (YYYY-MM-DD)")
                            ok = False
                        continue
                    problem = holiday_calendar_problem(raw)
                    if problem is not None:
                        self.add(item, f"{what}: {problem}")
                        ok = False
                    else:
                        calendars.append(raw.upper())
                values["holidays"] = tuple(sorted(set(dates)))
                values["calendars"] = tuple(dict.fromkeys(calendars))
            else:
                hint = did_you_mean(k.value, allowed)
                self.add(
                    k,
                    f"unknown key '{k.value}' in working_hours of {label}.{hint} "
                    "Allowed: days, hours, holidays.",
                )
                ok = False
        return WorkingHours(**values) if ok else None

    def metric(self, key: yaml.ScalarNode, where: str) -> registry.MetricSpec | None:
        """The KPI a key names (id or alias); None, with a problem and a hint, for another."""
        try:
            return registry.resolve(key.value)
        except Exception:
            hint = did_you_mean(key.value, registry.all_names()) or (
                " Metrics: " + ", ".join(registry.BY_ID) + "."
            )
            self.add(key, f"unknown metric '{key.value}' in {where}.{hint}")
            return None

    def agreements(self, node: yaml.Node, label: str) -> Agreements | None:
        """``agreements: {first_review_within: 4h, pr_size_under: 400, open_pr_idle_for: 3d}``;
        every problem on its line."""
        pairs = self.mapping(node, f"agreements of {label}")
        if pairs is None:
            return None
        values: dict[str, Any] = {}
        ok = True
        for k, v in pairs:
            what = f"agreements.{k.value} of {label}"
            if k.value not in AGREEMENT_KEYS:
                hint = did_you_mean(k.value, AGREEMENT_KEYS)
                self.add(
                    k,
                    f"unknown key '{k.value}' in agreements of {label}.{hint} "
                    f"Allowed: {', '.join(AGREEMENT_KEYS)}.",
                )
                ok = False
                continue
            raw = self.scalar(v, what)
            if raw is None:
                ok = False
                continue
            if k.value == "pr_size_under":
                body = re.sub(r"\s*lines?$", "", raw.strip().lower())
                if not re.fullmatch(r"\d{1,7}", body) or int(body) < 1:
                    self.add(v, f"{what} must be a number of lines, e.g. 400, not '{raw}'")
                    ok = False
                    continue
                values[k.value] = int(body)
                continue
            try:
                seconds = parse_duration(raw)
            except ValueError as exc:
                self.add(v, f"{what}: {exc}")
                ok = False
                continue
            if seconds <= 0:
                self.add(v, f"{what} must be longer than 0, e.g. 4h")
                ok = False
                continue
            values[k.value] = seconds
        return Agreements(**values) if ok else None

    def targets(self, node: yaml.Node, label: str) -> dict[str, Target]:
        out: dict[str, Target] = {}
        pairs = self.mapping(node, f"targets of {label}")
        for k, v in pairs or []:
            spec = self.metric(k, f"targets of {label}")
            if spec is None:
                continue
            raw = self.scalar(v, f"target for {spec.id}")
            if raw is None:
                continue
            try:
                out[spec.id] = parse_target(raw, spec)
            except ValueError as exc:
                self.add(v, f"target for {spec.id} in {label}: {exc}")
        return out

    def alerts(self, node: yaml.Node, label: str) -> dict[str, bool]:
        """``alerts: {cfr: on, first-review: off}``: KPI ids or aliases, each on or off."""
        out: dict[str, bool] = {}
        for k, v in self.mapping(node, f"alerts of {label}") or []:
            spec = self.metric(k, f"alerts of {label}")
            if spec is None:
                continue
            raw = self.scalar(v, f"alerts.{k.value}")
            if raw is None:
                continue
            word = raw.strip().lower()
            if word not in SWITCH_WORDS:
                self.add(v, f"alerts.{k.value} of {label} must be on or off, not '{raw}'")
                continue
            out[spec.id] = SWITCH_WORDS[word]
        return out

    def digests(self, node: yaml.Node, label: str) -> DigestTimes:
        pairs = self.mapping(node, f"digests of {label}")
        d = DigestTimes()
        weekly_day, weekly_time = d.weekly_day, d.weekly_time
        monthly_day, monthly_time = d.monthly_day, d.monthly_time
        for k, v in pairs or []:
            raw = self.scalar(v, f"digests.{k.value}")
            if raw is None:
                continue
            if k.value == "weekly":
                m = re.fullmatch(r"([a-z]{3})\w*\s+(\d{1,2}):(\d{2})", raw.strip().lower())
                if not m or m.group(1) not in WEEKDAYS or not _valid_time(m):
                    self.add(
                        v, f"digests.weekly of {label} must look like 'mon 09:00', not '{raw}'"
                    )
                else:
                    weekly_day = WEEKDAYS.index(m.group(1))
                    weekly_time = (int(m.group(2)), int(m.group(3)))
            elif k.value == "monthly":
                m = re.fullmatch(r"(\d{1,2})\s+(\d{1,2}):(\d{2})", raw.strip())
                if not m or not 1 <= int(m.group(1)) <= 28 or not _valid_time(m):
                    self.add(
                        v,
                        f"digests.monthly of {label} must look like '1 09:00' (day 1-28, "
                        f"then the time), not '{raw}'",
                    )
                else:
                    monthly_day = int(m.group(1))
                    monthly_time = (int(m.group(2)), int(m.group(3)))
            else:
                hint = did_you_mean(k.value, ["weekly", "monthly"])
                self.add(
                    k,
                    f"unknown key '{k.value}' in digests of {label}.{hint} "
                    "Allowed: weekly, monthly.",
                )
        return DigestTimes(weekly_day, weekly_time, monthly_day, monthly_time)


def _valid_time(m: re.Match[str]) -> bool:
    return int(m.group(2)) < 24 and int(m.group(3)) < 60


def _valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, IsADirectoryError):
        return False
    return True


_ZONES: list[str] = []


def _zone_names() -> list[str]:
    if not _ZONES:
        _ZONES.extend(sorted(available_timezones()))
    return _ZONES


def _compose(text: str) -> yaml.Node | None:
    """The YAML node tree, composed by libyaml when PyYAML has it (same nodes, tags and lines,
    several times faster); text it rejects is composed again by the pure-Python parser, so a
    broken file reports the same problem either way."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return yaml.compose(text, Loader=fast)
        except yaml.YAMLError:
            pass
    return yaml.compose(text)


def parse_config(text: str, path: str = "kpibot.yml") -> tuple[Config | None, list[str]]:
    """Parse kpibot.yml text into a Config, with every problem found (empty when valid)."""
    c = _Checker(path)
    try:
        root = _compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return None, [f"{path}{line}: not valid YAML ({problem}); check indentation and quotes"]
    if root is None:
        return None, [f"{path}: the file is empty; it needs a 'teams:' list (see README)"]
    pairs = c.mapping(root, "the file")
    if pairs is None:
        return None, c.problems
    teams_node = None
    defaults: dict[str, Any] = {}
    for k, v in pairs:
        if k.value == "teams":
            teams_node = v
        elif k.value == "defaults":
            for dk, dv in c.mapping(v, "defaults") or []:
                c.team_key(dk, dv, defaults, "defaults", allowed=DEFAULTABLE_KEYS)
        elif k.value == "people":
            if not isinstance(v, yaml.SequenceNode):
                c.add(v, "'people' must be a list of {github: ..., slack: ..., email: ...}")
            else:
                for item in v.value:
                    c.person(item, "an entry of people")
        else:
            c.add(
                k,
                f"unknown top-level key '{k.value}'.{did_you_mean(k.value, TOP_KEYS)} "
                "Allowed: teams, defaults, people.",
            )
    teams: list[TeamConfig] = []
    if teams_node is None:
        c.add(root, "no 'teams:' list; add at least one team with a name and its repos")
    elif not isinstance(teams_node, yaml.SequenceNode):
        c.add(teams_node, "'teams' must be a list of teams, each starting with '- name: ...'")
    else:
        if not teams_node.value:
            c.add(teams_node, "'teams' is empty; add at least one team")
        seen: dict[str, int] = {}
        for i, tn in enumerate(teams_node.value):
            team = c.team(tn, defaults, i)
            if team is None:
                continue
            key = team.name.lower()
            if key in seen:
                c.add(tn, f"duplicate team '{team.name}' (first defined on line {seen[key]})")
                continue
            seen[key] = tn.start_mark.line + 1
            teams.append(team)
    people = merge_people(c.people)
    if isinstance(people, str):
        c.add(root, people)
    if c.problems:
        return None, sorted(c.problems, key=_line_of)
    assert not isinstance(people, str)
    return Config(tuple(teams), path, people), []


def merge_people(found: list[Person]) -> tuple[Person, ...] | str:
    """One identity per GitHub login, the accounts written for it in any place combined; a
    problem (str) when one login is given two different accounts of a kind."""
    merged: dict[str, Person] = {}
    for p in found:
        have = merged.get(p.github)
        if have is None:
            merged[p.github] = p
            continue
        values = {}
        for key in PERSON_KEYS[1:]:
            a, b = getattr(have, key), getattr(p, key)
            if a is not None and b is not None and a != b:
                return f"'{p.github}' is given two {key} accounts: {a} and {b}"
            values[key] = a if a is not None else b
        merged[p.github] = Person(p.github, **values)
    return tuple(merged.values())


def _line_of(problem: str) -> int:
    m = re.match(r".*?:(\d+): ", problem)
    return int(m.group(1)) if m else 0


CONFIG_YAML_LABEL = "KPIBOT_CONFIG_YAML"


def load_config(path: str | Path) -> Config:
    return _config_or_error(*_read_config_file(path))


def config_source(settings: Settings, path: str | Path | None = None) -> tuple[str, str]:
    """The team configuration's text and the name its problems are reported under: the file
    at ``path`` when given, else ``KPIBOT_CONFIG_YAML``'s text when set (problems are
    ``KPIBOT_CONFIG_YAML:<line>``), else the file at ``KPIBOT_CONFIG``."""
    if path is None and settings.config_yaml:
        return settings.config_yaml, CONFIG_YAML_LABEL
    return _read_config_file(path or settings.config_path)


def load_team_config(settings: Settings, path: str | Path | None = None) -> Config:
    """The team configuration of :func:`config_source`, validated."""
    return _config_or_error(*config_source(settings, path))


def _read_config_file(path: str | Path) -> tuple[str, str]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(
            f"no team configuration at {p}: run 'kpibot demo' to create a sample, or set "
            "KPIBOT_CONFIG to your kpibot.yml (or KPIBOT_CONFIG_YAML to its contents)"
        )
    return p.read_text(encoding="utf-8"), str(path)


def has_team_config(settings: Settings) -> bool:
    return bool(settings.config_yaml) or Path(settings.config_path).is_file()


def _config_or_error(text: str, label: str) -> Config:
    config, problems = parse_config(text, label)
    if config is None:
        more = (
            f" (and {len(problems) - 1} more; run 'kpibot config check')"
            if len(problems) > 1
            else ""
        )
        raise ConfigError(problems[0] + more, problems)
    return config
