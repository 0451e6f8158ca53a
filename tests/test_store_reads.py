"""How the store is read: connection settings, read queries that follow the period along
indexes instead of walking a team's whole history, and the engine's fast paths."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session

from bot.metrics.engine import with_deployed_or_size
from bot.metrics.lagging import (
    MIN_SHA,
    ContainedPR,
    DeploymentFacts,
    IncidentFacts,
    RevertFacts,
    attribute_failures,
)
from bot.metrics.timeline import PRFacts
from bot.settings import TeamConfig
from bot.store import queries as q
from bot.store.session import make_engine
from tests.conftest import create_schema
from tests.factories import T, deployment, incident, pr, setup_team
from tests.helpers import contain, engine, period, team_id


class _Connecting(Exception):
    pass


def _connect_params(url: str) -> dict[str, Any]:
    """The keyword arguments the engine hands the driver, caught before it connects."""
    eng = make_engine(url)
    seen: dict[str, Any] = {}

    @event.listens_for(eng, "do_connect")
    def _catch(_dialect: Any, _rec: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        seen.update(cparams)
        raise _Connecting

    with pytest.raises(_Connecting):
        eng.connect()
    eng.dispose()
    return seen


def test_postgresql_connections_run_without_jit_and_with_ssd_page_costs():
    params = _connect_params("postgresql://kpibot@127.0.0.1:1/kpibot")
    assert params["options"] == "-c jit=off -c random_page_cost=1.1"


def test_postgresql_options_in_the_url_are_kept_beside_jit_off():
    params = _connect_params("postgresql://kpibot@127.0.0.1:1/kpibot?options=-csearch_path%3Dx")
    assert params["options"] == "-csearch_path=x -c jit=off -c random_page_cost=1.1"


def test_the_test_database_runs_with_the_engine_settings(engine: Engine):
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            assert conn.execute(text("SHOW jit")).scalar_one() == "off"
            assert conn.execute(text("SHOW random_page_cost")).scalar_one() == "1.1"
            # the URL's own options (the test schema) still apply
            assert (
                conn.execute(text("SELECT current_schema()")).scalar_one().startswith("kpibot_t_")
            )
        else:
            assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"


def _sqlite_plan(tmp_path: Path, stmt: Any) -> list[str]:
    url = f"sqlite:///{tmp_path / 'plan.db'}"
    create_schema(url)
    eng = make_engine(url)
    with eng.connect() as conn:
        compiled = stmt.compile(eng, compile_kwargs={"literal_binds": True})
        rows = conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")).all()
    eng.dispose()
    return [r[-1] for r in rows]


def test_the_period_selections_read_only_the_periods_rows(tmp_path: Path):
    """The PRs merged or deployed in a period are found from the period's merges and
    deployments by index ranges: no scan and no per-PR look-up over the team's history."""
    start, end = datetime(2026, 10, 1), datetime(2026, 11, 1)
    merged = _sqlite_plan(tmp_path, q.merged_pr_ids([1, 2], start, end))
    deployed = _sqlite_plan(tmp_path, q.deployed_pr_ids([1, 2], ["production"], start, end))
    text_plan = "\n".join(merged + deployed)
    assert "CORRELATED" not in text_plan, text_plan
    assert not [p for p in merged + deployed if p.startswith("SCAN")], text_plan
    assert any(
        "ix_pull_requests_repo_merged" in p and "merged_at>" in p and "merged_at<" in p
        for p in merged
    ), text_plan
    assert any(
        "ix_deployments_repo_finished" in p and "finished_at>" in p and "finished_at<" in p
        for p in deployed
    ), text_plan


def _statements(session: Session, fn: Any) -> list[str]:
    seen: list[str] = []
    bind = session.get_bind()

    def _record(_conn: Any, _cur: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(bind, "before_cursor_execute", _record)
    try:
        fn()
    finally:
        event.remove(bind, "before_cursor_execute", _record)
    return seen


def _team_with_history(session: Session) -> TeamConfig:
    team = setup_team(session, TeamConfig(name="payments", repos=("acme/api",)))
    a = pr(
        session,
        number=1,
        created=T("2026-11-02 08:00"),
        merged=T("2026-11-03 08:00"),
        merge_sha="a" * 40,
        reviews=[("bob", "APPROVED", T("2026-11-02 12:00"))],
    )
    b = pr(
        session,
        number=2,
        created=T("2026-10-01 08:00"),
        merged=T("2026-10-02 08:00"),
        merge_sha="b" * 40,
    )
    dep = deployment(session, sha="a" * 40, finished=T("2026-11-04 08:00"))
    contain(session, dep, a, b)
    incident(
        session, team_id(session), started=T("2026-11-04 09:00"), resolved=T("2026-11-04 10:00")
    )
    session.commit()
    return team


def test_a_leading_kpi_reads_only_the_merged_prs(session: Session):
    """Their first review and approval come with them (``bot.store.pr_summary``): no KPI
    of a team under the default bot rule reads the reviews."""
    team = _team_with_history(session)
    eng = engine(session, team)
    reads = _statements(session, lambda: eng.value("cycle-time", period("2026-W45")))
    tables = " ".join(reads)
    assert "pull_requests" in tables and "FROM reviews" not in tables, reads
    # the team's row is read once, for the PRs a lead excluded (which choose the population)
    for other in ("deployments", "deployment_pull_requests", "incidents", "sprint"):
        assert f"FROM {other}" not in tables and f"JOIN {other}" not in tables, reads
    assert sum("FROM teams" in r for r in reads) == 1
    assert eng.value("cycle-time", period("2026-W45")).n == 1


def test_no_kpi_reads_the_reviews_under_the_default_bot_rule(session: Session):
    team = _team_with_history(session)
    eng = engine(session, team)
    w45 = period("2026-W45")
    reads = _statements(
        session,
        lambda: [
            eng.value(k, w45)
            for k in ("pr-size", "merge-frequency", "review-coverage", "first-review", "lead-time")
        ],
    )
    assert reads and not [r for r in reads if "FROM reviews" in r], reads
    assert eng.value("review-coverage", w45).value == 1.0  # bob approved the one PR
    assert [p.approved for p in eng.merged_prs(w45)] == [T("2026-11-02 12:00")]
    assert eng.value("first-review", w45).n == 1


def test_a_team_whose_own_bot_patterns_name_a_stored_reviewer_reads_that_prs_reviews(
    session: Session,
):
    """``exclude_authors: [bob]``: bob's approval was the stored first one; for this team it
    is a bot's, so the PR's reviews are read again (once per span) under its rule."""
    _team_with_history(session)
    team = TeamConfig(name="payments", repos=("acme/api",), exclude_authors=("bob",))
    eng = engine(session, team)
    w45 = period("2026-W45")
    reads = _statements(session, lambda: eng.value("review-coverage", w45))
    assert sum("FROM reviews" in r for r in reads) == 1, reads
    assert eng.value("review-coverage", w45).value == 0.0
    assert [(p.first_review, p.approved) for p in eng.merged_prs(w45)] == [(None, None)]
    reads = _statements(session, lambda: eng.value("first-review", w45))
    assert not [r for r in reads if "FROM reviews" in r], reads


def test_lagging_kpis_load_deployments_and_then_every_population(session: Session):
    team = _team_with_history(session)
    eng = engine(session, team)
    w45 = period("2026-W45")
    assert eng.value("cycle-time", w45).n == 1
    lead = eng.value("lead-time", w45)  # both PRs: b merged in October, deployed in W45
    assert lead.n == 2
    assert eng.value("deploy-frequency", w45).n == 1
    assert eng.value("mttr", w45).n == 1
    assert eng.value("cycle-time", w45).n == 1


def test_lead_time_reads_again_only_the_deployed_prs_merged_before_the_span(
    session: Session, monkeypatch: pytest.MonkeyPatch
):
    """Lead time alone still reads the span's merged PRs first and reuses them: only the PR
    merged before the span (b, in October) is read by id."""
    team = _team_with_history(session)
    eng = engine(session, team)
    asked: list[list[int]] = []
    real = q.pr_ids

    def pr_ids(ids: Any) -> Any:
        asked.append(list(ids))
        return real(ids)

    monkeypatch.setattr(q, "pr_ids", pr_ids)
    assert eng.value("lead-time", period("2026-W45")).n == 2
    b = session.scalar(text("SELECT id FROM pull_requests WHERE number = 2"))
    assert asked == [[b]]


def test_a_pr_counts_for_lead_time_where_its_first_production_deployment_finished(
    session: Session,
):
    """Read from the period's deployments: a PR deployed again in a later period (a redeploy,
    a deployment of a later commit that contains it too) is counted in the period of its first
    successful production deployment only; failed runs and other environments before it do
    not count as its first."""
    team = setup_team(session, TeamConfig(name="payments", repos=("acme/api",)))
    early = pr(session, number=1, created=T("2026-10-26 08:00"), merged=T("2026-10-27 08:00"))
    late = pr(session, number=2, created=T("2026-10-27 08:00"), merged=T("2026-10-28 08:00"))
    staged = deployment(session, sha="s" * 40, env="staging", finished=T("2026-10-29 08:00"))
    failed = deployment(session, sha="f" * 40, status="failure", finished=T("2026-10-30 08:00"))
    first = deployment(session, sha="a" * 40, finished=T("2026-10-30 09:00"))  # W44
    again = deployment(session, sha="b" * 40, finished=T("2026-11-03 08:00"))  # W45
    contain(session, staged, early, late)
    contain(session, failed, late)
    contain(session, first, early)
    contain(session, again, early, late)
    session.commit()
    eng = engine(session, team)
    w44, w45 = period("2026-W44"), period("2026-W45")
    eng.prefetch([w44, w45])
    assert [p.number for p in eng.deployed_prs(w44)] == [1]
    assert [p.number for p in eng.deployed_prs(w45)] == [2]
    assert eng.deployed_prs(w44)[0].deployed == T("2026-10-30 09:00")
    # a fresh engine on W45 alone finds the earlier deployment all the same
    only_w45 = engine(session, team)
    assert [(p.number, p.deployed) for p in only_w45.deployed_prs(w45)] == [
        (2, T("2026-11-03 08:00"))
    ]
    assert only_w45.value("lead-time", w45).n == 1


def test_the_engines_fast_copy_of_pr_facts_keeps_every_field():
    values = {f.name: object() for f in fields(PRFacts)}
    p = PRFacts(**values)  # type: ignore[arg-type]
    when, size = object(), object()
    assert with_deployed_or_size(p, deployed=when) == replace(p, deployed=when)  # type: ignore[arg-type]
    assert with_deployed_or_size(p, size=size) == replace(p, size=size)  # type: ignore[arg-type]


def test_deploy_frequency_and_lead_time_read_no_incidents_or_reverts(session: Session):
    team = _team_with_history(session)
    eng = engine(session, team)
    w45 = period("2026-W45")

    def both() -> None:
        assert eng.value("deploy-frequency", w45).n == 1
        assert eng.value("lead-time", w45).n == 2

    reads = " ".join(_statements(session, both))
    assert "FROM deployments" in reads
    assert "incidents" not in reads and "LIKE" not in reads, reads
    recovery = eng.value("recovery-time", w45)  # the incident 1 h after the deployment
    assert (recovery.n, recovery.value) == (1, 7200.0)  # resolved 2 h after it finished
    assert eng.value("mttr", w45).n == 1


def _brute_force_target(deps, contained, sha):  # type: ignore[no-untyped-def]
    """The deployment an incident's SHA names, by comparing it with every SHA shipped."""
    shipped = [(d.sha.lower(), d) for d in deps] + [
        (pr.merge_sha.lower(), d) for d in deps for pr in contained.get(d.id, ()) if pr.merge_sha
    ]
    hits = [d for s, d in shipped if s.startswith(sha) or sha.startswith(s)]
    return min(hits, key=lambda d: (d.finished, d.id)).id if hits else None


@pytest.mark.parametrize(
    "sha",
    ["abcdef1", "ABCDEF1234", "abcdef1234567", "1234567890", "12345678ff", "fedcba9", "0000000"],
)
def test_incident_shas_name_the_deployment_that_first_shipped_them(sha: str):
    """The SHA look-up (prefixes both ways, deployed and contained commits) picks the same
    deployment as comparing the incident's SHA with every shipped SHA."""
    t0 = datetime(2026, 11, 2, 9)
    deps = [
        DeploymentFacts(1, 1, "abcdef1234567890", "success", t0),
        DeploymentFacts(2, 1, "abcdef1299999999", "success", t0 + timedelta(hours=1)),
        DeploymentFacts(3, 1, "fedcba9876543210", "success", t0 + timedelta(hours=2)),
        DeploymentFacts(4, 1, "ffff000011112222", "success", t0 + timedelta(hours=3)),
    ]
    contained = {
        3: [ContainedPR("short merge SHA", "1234567"), ContainedPR("no SHA", None)],
        4: [ContainedPR("full merge SHA", "abcdef1234567890aaaa")],
    }
    incident = IncidentFacts(9, t0 + timedelta(days=1), None, commit_sha=sha)
    got = attribute_failures(deps, [incident], [], contained, timedelta(hours=72))
    assert got.incident_deployment.get(9) == _brute_force_target(deps, contained, sha.lower())


def test_failure_attribution_reads_only_the_contained_prs_the_rules_look_for(session: Session):
    """Reverts (by title and by revert branch) and incidents naming merge SHAs (a prefix in
    upper case, a longer SHA, a SHA no PR has): the engine reads only the contained PRs they
    name, and attributes exactly as the rules do over every contained PR."""
    team = setup_team(session, TeamConfig(name="payments", repos=("acme/api",)))
    t0 = T("2026-11-02 08:00")
    shas = ["abc1234" + "0" * 33, "def5678" + "1" * 33, "0123456" + "2" * 33]
    prs = []
    for n in range(1, 31):
        sha = shas[n % 3] if n <= 3 else f"{n:040x}"
        prs.append(
            pr(
                session,
                number=n,
                title=f"Change {n}",
                created=t0 + timedelta(hours=n),
                merged=t0 + timedelta(hours=n + 1),
                merge_sha=sha,
            )
        )
    deps = []
    for k in range(6):  # five PRs per deployment
        dep = deployment(session, sha=f"{k + 100:040x}", finished=t0 + timedelta(hours=6 + 5 * k))
        contain(session, dep, *prs[5 * k : 5 * k + 5])
        deps.append(dep)
    # reverts: of "Change 8" by title, of #12 by GitHub's revert branch
    pr(
        session,
        number=40,
        title='Revert "Change 8"',
        created=t0 + timedelta(hours=30),
        merged=t0 + timedelta(hours=31),
    )
    pr(
        session,
        number=41,
        title="Back out the cache",
        created=t0 + timedelta(hours=30),
        merged=t0 + timedelta(hours=32),
        head_branch="revert-12-cache",
    )
    tid = team_id(session)
    incident(session, tid, started=t0 + timedelta(hours=40), resolved=None, sha="DEF5678")
    incident(session, tid, started=t0 + timedelta(hours=41), resolved=None, sha=shas[0] + "ff")
    incident(session, tid, started=t0 + timedelta(hours=42), resolved=None, sha="9999999")
    session.commit()

    eng = engine(session, team)
    eng.prefetch([period("2026-W45"), period("2026-W46")])
    reads = _statements(session, lambda: eng._attribution)
    contents = [r for r in reads if "deployment_pull_requests" in r and "title" in r]
    assert contents, reads
    got = eng._attribution

    # the rules over every contained PR
    runs = eng._runs
    every = q.contained_rows(
        session,
        [d.id for d in runs],
        titles=[p.title for p in prs],
        numbers=[],
        shas=[],
        min_sha=MIN_SHA,
    )
    assert len(every) == 30
    contained: dict[int, list[ContainedPR]] = {}
    for dep_id, title, merge_sha, number in every:
        contained.setdefault(dep_id, []).append(ContainedPR(title, merge_sha, number))
    reverts = [
        RevertFacts(r.repository_id, r.title, r.merged_at, r.head_branch)
        for r in q.revert_rows(
            session, eng.repo_ids, t0 - timedelta(days=30), t0 + timedelta(days=30)
        )
    ]
    want = attribute_failures(runs, eng._incidents, reverts, contained, eng.window)
    assert got == want
    assert set(got.failed) == {deps[0].id, deps[1].id, deps[2].id}  # SHAs and both reverts
    # what was read: the named PRs only (2 reverted, 3 named by SHA), not all 30
    named = q.contained_rows(
        session,
        [d.id for d in runs],
        titles=["Change 8"],
        numbers=[12],
        shas=["def5678", shas[0] + "ff", "9999999"],
        min_sha=MIN_SHA,
    )
    assert sorted(r[3] for r in named) == [1, 3, 8, 12]


def test_lead_time_counts_only_merged_prs_of_the_teams_repositories_a_deployment_links(
    session: Session,
):
    """The span's deployed PRs are read without a look-up of each PR: a link the commit-graph
    walk would never write (an open PR, another repository's PR) still counts for nothing."""
    setup_team(session, TeamConfig(name="web", repos=("acme/web",)))
    team = setup_team(session, TeamConfig(name="payments", repos=("acme/api",)))
    merged = pr(session, number=1, created=T("2026-11-02 08:00"), merged=T("2026-11-02 10:00"))
    still_open = pr(session, number=2, created=T("2026-11-02 08:00"), merged=None)
    elsewhere = pr(
        session,
        number=3,
        created=T("2026-11-02 08:00"),
        merged=T("2026-11-02 09:00"),
        repository="acme/web",
    )
    dep = deployment(session, sha="a" * 40, finished=T("2026-11-03 08:00"))
    contain(session, dep, merged, still_open, elsewhere)
    eng = engine(session, team)
    w45 = period("2026-W45")
    assert [p.number for p in eng.deployed_prs(w45)] == [1]
    assert eng.value("lead-time", w45).n == 1


def test_pr_rows_of_a_selection_of_the_prs_themselves_read_them_without_a_look_up(
    session: Session,
):
    """``pr_rows`` applies a selection of ``pull_requests.id`` from ``pull_requests`` alone
    (``merged_pr_ids``, ids) as its own WHERE clause, not as ``id IN (subquery)``: the same
    rows, one index range instead of a primary-key look-up per PR. Selections of other
    tables or joins stay subqueries."""
    from sqlalchemy import select

    from bot.store.models import PullRequest

    _team_with_history(session)
    pr(session, number=3, created=T("2026-11-05 08:00"), merged=None)  # open: never a row
    session.commit()
    start, end = datetime(2026, 9, 1), datetime(2026, 12, 1)
    repo = session.scalar(select(PullRequest.repository_id))
    assert repo is not None
    own = q.merged_pr_ids([repo], start, end)
    all_ids = select(PullRequest.id).where(PullRequest.number > 0)
    for selection, expected in ((own, 2), (all_ids, 2)):
        reads = _statements(session, lambda s=selection: q.pr_rows(session, s))
        assert len(reads) == 1 and reads[0].count("FROM pull_requests") == 1, reads
        flat = q.pr_rows(session, selection)
        # DISTINCT keeps the same selection a subquery
        nested = q.pr_rows(session, selection.distinct())
        assert [tuple(r) for r in flat] == [tuple(r) for r in nested] and len(flat) == expected
    # a selection through another table is kept as a subquery
    tid = team_id(session)
    other = q.team_merged_pr_ids(tid, start, end)
    reads = _statements(session, lambda: q.pr_rows(session, other))
    assert "IN (SELECT team_pull_requests.pull_request_id" in " ".join(reads).replace("\n", " ")
    for kept in (own.limit(1), own.distinct()):
        reads = _statements(session, lambda k=kept: q.pr_rows(session, k))
        assert reads[0].count("FROM pull_requests") == 2, reads
