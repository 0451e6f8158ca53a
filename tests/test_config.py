"""kpibot.yml validation: every problem with its line and a hint."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.settings import (
    DEFAULT_EXCLUDE_AUTHORS,
    GitHubIssueIncidents,
    JiraSprints,
    MilestoneSprints,
    PagerDutyIncidents,
    TeamConfig,
    WorkflowDeployments,
    load_config,
    load_env_settings,
    parse_config,
    parse_duration,
)
from bot.surfaces.cli import main

GOOD = """\
teams:
  - name: payments
    timezone: Europe/Berlin
    channel: C0123456789
    repos: [acme/payments-api, acme/payments-web]
    production_environments: [production]
    deployments: {source: workflow, workflow: deploy.yml}
    incidents: {source: github-issues, labels: [incident]}
    sprints: {source: jira, board: 12}
    exclude_authors: ["*[bot]", "release-robot"]
    ignore_paths: ["**/*.lock", "vendor/**"]
    targets: {cycle-time: 48h, first-review: 4h, review-coverage: 95%, pr-size: 300,
              cfr: "<= 10%", df: ">= 3"}
    digests: {weekly: "mon 09:00", monthly: "1 09:00"}
    dora_edition: 2021
    attribution_window: 48h
"""


def test_good_config_parses_every_key():
    config, problems = parse_config(GOOD)
    assert problems == []
    assert config is not None
    t = config.team("PAYMENTS")
    assert t.timezone == "Europe/Berlin"
    assert t.repos == ("acme/payments-api", "acme/payments-web")
    assert t.deployments == WorkflowDeployments(workflow="deploy.yml")
    assert t.incidents == GitHubIssueIncidents(labels=("incident",))
    assert t.sprints == JiraSprints(board="12")
    assert t.target_for("cycle-time").value == 48 * 3600
    assert t.target_for("cycle-time").op == "<"
    assert t.target_for("review-coverage").value == pytest.approx(0.95)
    assert t.target_for("change-failure-rate").op == "<="
    assert t.target_for("change-failure-rate").value == pytest.approx(0.10)
    assert t.target_for("deploy-frequency").value == 3
    assert t.target_for("mttr").value == 3600  # default
    assert t.dora_edition == 2021
    assert t.attribution_window == 48 * 3600
    assert t.digests.weekly_day == 0 and t.digests.monthly_time == (9, 0)
    assert t.bot_patterns[: len(DEFAULT_EXCLUDE_AUTHORS)] == DEFAULT_EXCLUDE_AUTHORS
    assert "release-robot" in t.bot_patterns


def test_sources_are_typed_and_normalised():
    config, problems = parse_config(
        "teams:\n"
        "  - name: a\n    repos: [o/a]\n"
        "    deployments: {source: workflow, workflow: deploy.yml, branch: main}\n"
        "    incidents: {source: github-issues, labels: sev1, repos: o/ops}\n"
        "    sprints: github-milestones\n"
        "  - name: b\n    repos: [o/b]\n"
        "    incidents: {source: pagerduty, service: P1}\n"
    )
    assert problems == [] and config is not None
    a, b = config.team("a"), config.team("b")
    assert a.deployments == WorkflowDeployments(workflow="deploy.yml", branch="main")
    # a scalar where a list is allowed is a list of one
    assert a.incidents == GitHubIssueIncidents(labels=("sev1",), repos=("o/ops",))
    assert a.sprints == MilestoneSprints()
    assert b.incidents == PagerDutyIncidents(services=("P1",))
    # the defaults, and a mapping given by a caller, are typed the same way
    assert TeamConfig(name="c").incidents == GitHubIssueIncidents(labels=("incident",))
    typed = TeamConfig(name="c", incidents={"source": "github-issues", "labels": "x"})
    assert typed.incidents == GitHubIssueIncidents(labels=("x",))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "teams:\n  - name: a\n    repos: [o/a]\n    deployments:\n      source: workflow\n"
            "      workflow: deploy.yml\n      branches: main\n",
            "kpibot.yml:7: unknown key 'branches' in deployments of team 'a'. Did you mean "
            "'branch'?",
        ),
        (
            "teams:\n  - name: a\n    repos: [o/a]\n    incidents:\n      source: pagerduty\n",
            "kpibot.yml:5: incidents of team 'a': source 'pagerduty' needs 'services: [<service "
            "id>, ...]'",
        ),
        (
            "teams:\n  - name: a\n    repos: [o/a]\n    incidents: {source: jira, labels: x}\n",
            "kpibot.yml:4: unknown key 'labels' in incidents of team 'a'.",
        ),
    ],
    ids=["typo", "missing", "other-source"],
)
def test_source_problems_have_their_line_and_hint(text, expected):
    config, problems = parse_config(text, "kpibot.yml")
    assert config is None
    assert any(p.startswith(expected) for p in problems), problems


def test_defaults_apply_to_every_team():
    config, problems = parse_config(
        "defaults:\n  timezone: Asia/Tokyo\n  dora_edition: 2021\n"
        "teams:\n  - name: a\n    repos: [o/a]\n  - name: b\n    timezone: UTC\n    repos: [o/b]\n"
    )
    assert problems == [] and config is not None
    assert config.team("a").timezone == "Asia/Tokyo"
    assert config.team("b").timezone == "UTC"
    assert config.team("b").dora_edition == 2021


BAD = """\
teams:
  - name: payments
    timezon: Europe/Berlin
    timezone: Europe/Berlinn
    repos: [acme]
    targets: {cycle-time: 2 dayz, review-coverage: 150%, velocity: 30}
    digests: {weekly: "someday 9", monthly: "31 09:00"}
    dora_edition: 2020
    deployments: {source: jenkins}
    attribution_window: soon
  - name: payments
  - timezone: UTC
extra: 1
"""


def test_every_problem_has_its_line_and_a_hint():
    config, problems = parse_config(BAD, "kpibot.yml")
    assert config is None
    text = "\n".join(problems)
    expect = [
        ("kpibot.yml:3:", "unknown key 'timezon'", "Did you mean 'timezone'"),
        ("kpibot.yml:4:", "unknown time zone 'Europe/Berlinn'", "Europe/Berlin"),
        ("kpibot.yml:5:", "repo 'acme'", "owner/name"),
        ("kpibot.yml:6:", "target for cycle-time", "30m, 4h"),
        ("kpibot.yml:6:", "review-coverage", "between 0% and 100%"),
        (
            "kpibot.yml:6:",
            "unknown metric 'velocity'",
        ),
        ("kpibot.yml:7:", "digests.weekly", "mon 09:00"),
        ("kpibot.yml:7:", "digests.monthly", "day 1-28"),
        ("kpibot.yml:8:", "dora_edition", "2023 or 2021"),
        ("kpibot.yml:9:", "deployments source", "github-deployments"),
        ("kpibot.yml:10:", "attribution_window"),
        ("kpibot.yml:11:", "duplicate team 'payments'", "line 2"),
        ("kpibot.yml:11:", "team 'payments' has no repos", "repos: ["),
        ("kpibot.yml:12:", "has no 'name'"),
        ("kpibot.yml:13:", "unknown top-level key 'extra'"),
    ]
    for parts in expect:
        assert any(all(p in line for p in parts) for line in problems), (parts, text)
    assert len(problems) == len(expect)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("teams: [\n", "not valid YAML"),
        ("- a\n- b\n", "must be a mapping"),
        ("teams: {}\n", "must be a list"),
        ("teams: []\n", "is empty"),
        ("other: 1\n", "no 'teams:' list"),
        ("teams:\n  - name: a\n    channel: general\n", "not a Slack channel id"),
        ("teams:\n  - name: a b\n", "may use only letters"),
        ("teams:\n  - name: a\n    sprints: {source: jira}\n", "needs 'board"),
        ("teams:\n  - name: a\n    deployments: {source: workflow}\n", "workflow: deploy.yml"),
        (
            "teams:\n  - name: a\n    timezone: Europe/Berlin\n    timezone: UTC\n",
            "duplicate key 'timezone'",
        ),
    ],
)
def test_structural_problems(text, fragment):
    config, problems = parse_config(text)
    assert config is None
    assert any(fragment in p for p in problems), problems


def test_config_check_command(tmp_path: Path, capsys, monkeypatch):
    path = tmp_path / "kpibot.yml"
    path.write_text(BAD)
    monkeypatch.setenv("KPIBOT_CONFIG", str(path))
    assert main(["config", "check"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "15 problems found"
    assert all(line.startswith(str(path)) for line in err[:-1])
    path.write_text(GOOD)
    assert main(["config", "check"]) == 0
    assert "OK, 1 team" in capsys.readouterr().out
    assert main(["config", "check", str(tmp_path / "missing.yml")]) == 2
    assert "no team configuration" in capsys.readouterr().err


def test_load_config_raises_first_problem_with_count(tmp_path: Path):
    path = tmp_path / "kpibot.yml"
    path.write_text(BAD)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "kpibot.yml:3" in str(info.value) and "14 more" in str(info.value)
    assert len(info.value.problems) == 15


def test_durations():
    assert parse_duration("48h") == 172800
    assert parse_duration("30m") == 1800
    assert parse_duration("1.5h") == 5400
    assert parse_duration("2d") == 172800
    assert parse_duration("1w") == 604800
    with pytest.raises(ValueError):
        parse_duration("two days")


def test_env_settings_and_dotenv(tmp_path: Path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("DATABASE_URL=sqlite:///from-dotenv.db\nGITHUB_TOKEN=ghp_secret\nPORT=8080\n")
    s = load_env_settings({"PORT": "9000"}, dotenv)
    assert s.database_url == "sqlite:///from-dotenv.db"
    assert s.port == 9000  # the environment wins over .env
    assert s.github_token == "ghp_secret"
    assert "ghp_secret" not in repr(s) and "ghp_secret" not in str(s)
    assert load_env_settings({}, None).database_url == "sqlite:///kpibot.db"
    with pytest.raises(ConfigError, match="PORT"):
        load_env_settings({"PORT": "http"}, None)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("teams:\n  - name: ops\n    incidents: {source: pagerduty, services: [P1]}\n", 2),
        ("teams:\n  - name: ops\n    timezone: UTC\n    repos: []\n", 4),
        ("defaults:\n  timezone: UTC\nteams:\n  - name: a\n    repos: [o/a]\n  - name: ops\n", 6),
    ],
    ids=["missing", "empty", "second-team"],
)
def test_a_team_without_repos_is_a_problem_with_its_line(tmp_path: Path, capsys, text, line):
    config, problems = parse_config(text, "kpibot.yml")
    assert config is None
    assert problems == [
        f"kpibot.yml:{line}: team 'ops' has no repos: its pull-request KPIs and deployments "
        "come from its GitHub repositories; add e.g. 'repos: [acme/payments-api]' (owner/name)"
    ]
    path = tmp_path / "kpibot.yml"
    path.write_text(text)
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"{path}:{line}: " + problems[0].split(": ", 1)[1], "1 problem found"]


def test_working_hours_parse_in_a_team_and_in_defaults():
    config, problems = parse_config(
        "defaults:\n"
        '  working_hours: {days: mon-fri, hours: "09:00-17:00", holidays: [DE-BE, 2026-12-24]}\n'
        "teams:\n"
        "  - name: a\n    repos: [acme/a]\n"
        "  - name: b\n    repos: [acme/b]\n"
        "    working_hours: {days: sun-thu, hours: 08:30-16:30, holidays: us-ny}\n"
        "  - name: c\n    repos: [acme/c]\n"
    )
    assert problems == []
    assert config is not None
    a = config.team("a").working_hours
    assert a is not None
    assert (a.days, a.start, a.end) == ((0, 1, 2, 3, 4), 9 * 3600, 17 * 3600)
    assert (a.holidays, a.calendars) == ((date(2026, 12, 24),), ("DE-BE",))
    b = config.team("b").working_hours
    assert b is not None
    assert (b.days, b.start, b.end, b.calendars) == ((0, 1, 2, 3, 6), 30600, 59400, ("US-NY",))
    assert TeamConfig(name="x").working_hours is None


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("{days: mon-fry}", ["kpibot.yml:4:", "'mon-fry' is not a list of days", "mon-fri"]),
        ('{hours: "17:00-09:00"}', ["kpibot.yml:4:", "must end after they start"]),
        ('{hours: "9 to 5"}', ["kpibot.yml:4:", '"09:00-17:00"']),
        ('{hours: "09:00-25:00"}', ["kpibot.yml:4:", "00:00 to 24:00"]),
        ("{holidays: [2026-02-30]}", ["kpibot.yml:4:", "'2026-02-30' is not a date"]),
        ("{holidays: [XX]}", ["kpibot.yml:4:", "neither a date", "DE-BE"]),
        ("{holidays: [DE-ZZ]}", ["kpibot.yml:4:", "DE has no subdivision 'ZZ'", "BE"]),
        ("{hollidays: [DE]}", ["kpibot.yml:4:", "unknown key 'hollidays'", "holidays"]),
        ("mon-fri", ["kpibot.yml:4:", "working_hours of team 'a' must be a mapping"]),
    ],
)
def test_working_hours_problems_have_their_line_and_hint(entry, expected):
    text = f"teams:\n  - name: a\n    repos: [acme/a]\n    working_hours: {entry}\n"
    config, problems = parse_config(text)
    assert config is None
    assert len(problems) == 1, problems
    for fragment in expected:
        assert fragment in problems[0]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a: b: c\n", "kpibot.yml:1: not valid YAML (mapping values are not allowed here)"),
        ("teams:\n\t- name: x\n", "kpibot.yml:2: not valid YAML (found character '\\t' that"),
        ("--- a\n--- b\n", "kpibot.yml:2: not valid YAML (but found another document)"),
        ('teams:\n  - {name: "\\x"}\n', "kpibot.yml:2: not valid YAML (expected escape sequence"),
    ],
)
def test_broken_yaml_reads_the_same_with_or_without_libyaml(text, problem):
    """libyaml composes the file when PyYAML has it; what it rejects is reported in the words
    and on the line of the pure-Python parser, as before."""
    config, problems = parse_config(text)
    assert config is None
    assert len(problems) == 1 and problems[0].startswith(problem), problems
    assert problems[0].endswith("; check indentation and quotes")


def _walk(node):
    """(kind, tag, line, column) and scalar value of a node and every node under it, in order
    (what the configuration reads; not the quoting style, which libyaml spells differently)."""
    yield type(node).__name__, node.tag, node.start_mark.line, node.start_mark.column
    if isinstance(node.value, str):
        yield node.value
    else:
        for item in node.value:
            for child in item if isinstance(item, tuple) else (item,):
                yield from _walk(child)


def test_libyaml_and_pure_python_compose_a_config_alike():
    """The demo configuration: the same nodes, tags, values and lines either way."""
    import yaml

    from bot.demo import DEMO_CONFIG
    from bot.settings import _compose

    fast = _compose(DEMO_CONFIG)
    assert fast is not None
    assert list(_walk(fast)) == list(_walk(yaml.compose(DEMO_CONFIG)))
