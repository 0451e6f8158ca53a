"""The health view lists every KPI of the registry the team has a source for, and names the
ones without a source configured."""

import json

from bot.metrics import registry
from bot.renderers import jsonout, text
from bot.reports.cards import build_health, configured_sources
from bot.settings import TeamConfig
from bot.slack import blocks
from tests.factories import setup_team
from tests.helpers import engine, period


def test_health_lists_every_kpi_when_every_source_is_configured(session):
    team = setup_team(
        session,
        TeamConfig(name="payments", repos=("acme/api",), sprints={"source": "jira", "board": 12}),
    )
    h = build_health(engine(session, team), period("2026-W45"))
    # recovery time and scope creep too (the view showed 10 of the 12)
    assert [c.metric for c in h.cards] == [m.id for m in registry.METRICS]
    assert h.no_source == ()
    assert "no source configured" not in text.health(h)


def test_health_names_the_kpis_without_a_source(session):
    team = setup_team(session)  # repos, default deployments and incidents, no sprints
    assert configured_sources(team) == {"repos", "deployments", "incidents"}
    h = build_health(engine(session, team), period("2026-W45"))
    shown = {c.metric for c in h.cards}
    assert shown == {m.id for m in registry.METRICS} - {"predictability", "scope-creep"}
    assert [(n.metric, n.missing) for n in h.no_source] == [
        ("predictability", ("sprints",)),
        ("scope-creep", ("sprints",)),
    ]
    line = (
        "Delivery predictability and Scope creep: no source configured, add sprints to the "
        "team in kpibot.yml"
    )
    assert line in text.health(h)
    assert line in json.dumps(blocks.health_payload(h))
    assert jsonout.health(h)["no_source"] == [
        {"metric": "predictability", "missing": ["sprints"]},
        {"metric": "scope-creep", "missing": ["sprints"]},
    ]


def test_sources_a_team_has():
    # deployments and incidents always have a source (GitHub's by default); sprints only when
    # the team names one
    bare = TeamConfig(name="payments", repos=("acme/api",))
    assert configured_sources(bare) == {"repos", "deployments", "incidents"}
    milestones = TeamConfig(
        name="payments", repos=("acme/api",), sprints={"source": "github-milestones"}
    )
    assert configured_sources(milestones) == {"repos", "deployments", "incidents", "sprints"}
