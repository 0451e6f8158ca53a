"""Deployment contents and rollbacks from the commit graph (bot.store.derive).

METRICS.md, Deployments: a deployment contains the commits reachable from its commit but not
from the previous successful production deployment of the same repository; the first one
contains only reachable commits committed in the 7 days before it finished. Rollback: a later
successful production deployment of the same repository deploys a strict ancestor.
"""

import pytest
from sqlalchemy import select

from bot.store.derive import derive_repository, load_graph
from bot.store.models import Deployment, DeploymentPullRequest
from tests.factories import T, commit, deployment, pr, repo, setup_team
from tests.helpers import HOUR, engine, period

ENVS = ["production", "prod"]


def contents(session, dep) -> set[int]:
    return set(
        session.scalars(
            select(DeploymentPullRequest.pull_request_id).where(
                DeploymentPullRequest.deployment_id == dep.id
            )
        )
    )


def rolled_back_at(session, dep):
    return session.scalar(select(Deployment.rolled_back_at).where(Deployment.id == dep.id))


def _history(session):
    """a0 - a1 - a2 - a3 ------- m1 - a4      (main)
    \\         /
     f1 - f2               (feature branch, merged by m1)
    """
    commit(session, "a0", [], T("2026-10-01 09:00"))
    commit(session, "a1", ["a0"], T("2026-11-01 09:00"))
    commit(session, "a2", ["a1"], T("2026-11-02 09:00"))
    commit(session, "f1", ["a2"], T("2026-11-03 08:00"))
    commit(session, "f2", ["f1"], T("2026-11-03 09:00"))
    commit(session, "a3", ["a2"], T("2026-11-03 10:00"))
    commit(session, "m1", ["a3", "f2"], T("2026-11-04 09:00"))
    commit(session, "a4", ["m1"], T("2026-11-05 09:00"))
    prs = {}
    for name, sha, merged in [
        ("P0", "a0", "2026-10-01 09:00"),
        ("P1", "a1", "2026-11-01 09:00"),
        ("P2", "a2", "2026-11-02 09:00"),
        ("P3", "a3", "2026-11-03 10:00"),  # squash-merged
        ("P4", "m1", "2026-11-04 09:00"),  # merged with a merge commit
        ("P5", "a4", "2026-11-05 09:00"),
        ("P6", "zz", "2026-11-04 10:00"),  # its merge commit is not in the graph
    ]:
        prs[name] = pr(
            session, title=name, merge_sha=sha, created=T(merged) - 2 * HOUR_TD, merged=T(merged)
        )
    return prs


HOUR_TD = T("2026-01-01 01:00") - T("2026-01-01 00:00")


def test_contents_and_rollback_from_the_commit_graph(session):
    team = setup_team(session)
    prs = _history(session)
    ids = {k: v.id for k, v in prs.items()}
    d1 = deployment(session, sha="a3", finished=T("2026-11-03 12:00"))  # the first one
    failed = deployment(session, sha="a4", finished=T("2026-11-05 10:00"), status="failure")
    staging = deployment(session, sha="a4", finished=T("2026-11-05 11:00"), env="staging")
    d2 = deployment(session, sha="a4", finished=T("2026-11-05 12:00"))
    d3 = deployment(session, sha="a3", finished=T("2026-11-06 12:00"))  # back to a3
    d4 = deployment(session, sha="a4", finished=T("2026-11-07 12:00"), env="prod")
    assert derive_repository(session, repo(session).id, ENVS) == 4

    # d1: reachable from a3 and committed since Oct 27 12:00: a3, a2, a1 (a0 is older)
    assert contents(session, d1) == {ids["P1"], ids["P2"], ids["P3"]}
    # d2: a3..a4 = a4, m1, f2, f1 -> the merge commit m1 brings P4
    assert contents(session, d2) == {ids["P4"], ids["P5"]}
    # d3 deploys an ancestor of d2's commit: contains nothing, and rolls d2 back
    assert contents(session, d3) == set()
    assert rolled_back_at(session, d2) == T("2026-11-06 12:00")
    # d4 re-deploys a4 over a3: contains P4 and P5 again; nothing rolls d1, d3, d4 back
    assert contents(session, d4) == {ids["P4"], ids["P5"]}
    for d in (d1, d3, d4):
        assert rolled_back_at(session, d) is None
    # failed and staging runs are not derived
    assert contents(session, failed) == contents(session, staging) == set()
    session.commit()

    # the engine: t_deployed is the first successful production deployment containing a PR
    eng = engine(session, team)
    w45 = period("2026-W45")
    deployed = {p.number: p.deployed for p in eng.deployed_prs(w45)}
    assert deployed == {
        prs["P1"].number: T("2026-11-03 12:00"),
        prs["P2"].number: T("2026-11-03 12:00"),
        prs["P3"].number: T("2026-11-03 12:00"),
        prs["P4"].number: T("2026-11-05 12:00"),
        prs["P5"].number: T("2026-11-05 12:00"),
    }
    lt = eng.value("lead-time", w45)
    # leads (created = merged - 2 h, no first commit): 2 + (deployed - merged):
    # P1 2 + 51 = 53 h, P2 2 + 27 = 29 h, P3 2 + 2 = 4 h, P4 2 + 27 = 29 h, P5 2 + 3 = 5 h
    # sorted 4, 5, 29, 29, 53 -> median 29 h
    assert lt.n == 5
    assert lt.value == 29 * HOUR
    cfr = eng.value("change-failure-rate", w45)
    # d2 rolled back 24 h after it finished: 1 failed of d1..d4; 1 failed run of 5 runs
    assert (cfr.n, cfr.value) == (4, 0.25)
    assert cfr.breakdown["by_rollback"] == 1
    assert cfr.breakdown["deploy_failure_share"] == pytest.approx(1 / 5)


def test_rerun_is_idempotent_and_full_recomputes(session):
    setup_team(session)
    prs = _history(session)
    d1 = deployment(session, sha="a3", finished=T("2026-11-03 12:00"))
    d2 = deployment(session, sha="a4", finished=T("2026-11-05 12:00"))
    rid = repo(session).id
    assert derive_repository(session, rid, ENVS) == 2
    assert derive_repository(session, rid, ENVS) == 0  # nothing new
    assert derive_repository(session, rid, ENVS, full=True) == 2
    assert contents(session, d2) == {prs["P4"].id, prs["P5"].id}
    assert len(contents(session, d1)) == 3
    # a new deployment: only it is computed
    d3 = deployment(session, sha="a4", finished=T("2026-11-06 12:00"))
    assert derive_repository(session, rid, ENVS) == 1
    assert contents(session, d3) == set()  # same commit as d2
    assert contents(session, d2) == {prs["P4"].id, prs["P5"].id}


def test_first_deployment_lookback_is_seven_days(session):
    setup_team(session)
    commit(session, "b0", [], T("2026-10-26 11:59:59"))
    commit(session, "b1", ["b0"], T("2026-10-26 12:00"))
    commit(session, "b2", ["b1"], T("2026-11-02 12:00"))
    p0 = pr(session, merge_sha="b0", created=T("2026-10-26 10:00"), merged=T("2026-10-26 12:00"))
    p1 = pr(session, merge_sha="b1", created=T("2026-10-26 10:00"), merged=T("2026-10-26 12:00"))
    p2 = pr(session, merge_sha="b2", created=T("2026-11-02 10:00"), merged=T("2026-11-02 12:00"))
    d = deployment(session, sha="b2", finished=T("2026-11-02 12:00"))
    derive_repository(session, repo(session).id, ENVS)
    # since = finished - 7 days = Oct 26 12:00: b1 is inside, b0 one second too old
    assert contents(session, d) == {p1.id, p2.id}
    assert p0.id not in contents(session, d)


def test_repositories_do_not_share_contents_or_rollbacks(session):
    from bot.settings import TeamConfig

    setup_team(session, TeamConfig(name="payments", repos=("acme/api", "acme/web")))
    commit(session, "c0", [], T("2026-11-02 09:00"))
    commit(session, "c1", ["c0"], T("2026-11-02 10:00"))
    commit(session, "c0", [], T("2026-11-02 09:00"), repository="acme/web")
    p = pr(session, merge_sha="c1", created=T("2026-11-02 09:00"), merged=T("2026-11-02 10:00"))
    d_api = deployment(session, sha="c1", finished=T("2026-11-02 12:00"))
    # deploys an ancestor of c1, but in another repository: no rollback of d_api
    d_web = deployment(session, sha="c0", finished=T("2026-11-03 12:00"), repository="acme/web")
    derive_repository(session, repo(session).id, ENVS)
    derive_repository(session, repo(session, "acme/web").id, ENVS)
    assert contents(session, d_api) == {p.id}
    assert contents(session, d_web) == set()
    assert rolled_back_at(session, d_api) is None


def test_incremental_derive_keeps_the_earliest_rollback(session):
    r"""c0 - c1 - c3      D0 deploys c3, D1 c1 (rolls D0 back), D2 c2, later D3 c0.
                \
                 c2
    """
    setup_team(session)
    commit(session, "c0", [], T("2026-11-01 09:00"))
    commit(session, "c1", ["c0"], T("2026-11-01 10:00"))
    commit(session, "c3", ["c1"], T("2026-11-01 11:00"))
    commit(session, "c2", ["c1"], T("2026-11-01 12:00"))
    d0 = deployment(session, sha="c3", finished=T("2026-11-02 10:00"))
    d1 = deployment(session, sha="c1", finished=T("2026-11-03 10:00"))
    d2 = deployment(session, sha="c2", finished=T("2026-11-04 10:00"))
    rid = repo(session).id
    derive_repository(session, rid, ENVS)
    assert rolled_back_at(session, d0) == T("2026-11-03 10:00")
    assert rolled_back_at(session, d1) is None
    assert rolled_back_at(session, d2) is None

    d3 = deployment(session, sha="c0", finished=T("2026-11-05 10:00"))
    assert derive_repository(session, rid, ENVS) == 1
    # d3 deploys an ancestor of all three; d0 was already rolled back by d1 (the earliest)
    assert rolled_back_at(session, d0) == T("2026-11-03 10:00")
    assert rolled_back_at(session, d1) == T("2026-11-05 10:00")
    assert rolled_back_at(session, d2) == T("2026-11-05 10:00")
    assert rolled_back_at(session, d3) is None
    # the same as a full recomputation
    derive_repository(session, rid, ENVS, full=True)
    assert [rolled_back_at(session, d) for d in (d0, d1, d2, d3)] == [
        T("2026-11-03 10:00"),
        T("2026-11-05 10:00"),
        T("2026-11-05 10:00"),
        None,
    ]


def test_incremental_derive_leaves_older_rollbacks_alone(session):
    """c0 - c1 - c2 - c3 - c4: X0 c2 (day 0), X1 c1 (day 1), X2 c0 (day 20), X3 c3 (day 35),
    then X4 c4 (day 36) derived incrementally."""
    setup_team(session)
    for i in range(5):
        commit(session, f"c{i}", [f"c{i - 1}"] if i else [], T("2026-09-01 00:00"))
    day = lambda n: T("2026-10-01 12:00") + n * 24 * HOUR_TD  # noqa: E731
    xs = [
        deployment(session, sha=sha, finished=day(n))
        for sha, n in [("c2", 0), ("c1", 1), ("c0", 20), ("c3", 35)]
    ]
    rid = repo(session).id
    derive_repository(session, rid, ENVS)
    expected = [day(1), day(20), None, None]  # X2 would also roll X0 back, but X1 came first
    assert [rolled_back_at(session, x) for x in xs] == expected
    xs.append(deployment(session, sha="c4", finished=day(36)))
    assert derive_repository(session, rid, ENVS) == 1
    assert [rolled_back_at(session, x) for x in xs] == [*expected, None]


def test_rollback_lookback_is_thirty_days(session):
    setup_team(session)
    commit(session, "c0", [], T("2026-10-01 09:00"))
    commit(session, "c1", ["c0"], T("2026-10-01 10:00"))
    d0 = deployment(session, sha="c1", finished=T("2026-10-01 12:00"))
    d1 = deployment(session, sha="c0", finished=T("2026-11-01 12:00"))  # 31 days later
    derive_repository(session, repo(session).id, ENVS)
    assert rolled_back_at(session, d0) is None
    assert rolled_back_at(session, d1) is None


def test_without_the_commit_graph_merged_prs_stand_in(session):
    setup_team(session)
    q_old = pr(session, created=T("2026-10-20 00:00"), merged=T("2026-10-20 10:00"))
    q_dev = pr(session, base="develop", created=T("2026-11-01 00:00"), merged=T("2026-11-01 10:00"))
    q1 = pr(session, created=T("2026-11-01 00:00"), merged=T("2026-11-01 10:00"))
    e1 = deployment(
        session, sha="e1", started=T("2026-11-02 09:55"), finished=T("2026-11-02 10:00")
    )
    # merged while e1 was running (after its commit was chosen): not in e1
    q2 = pr(session, created=T("2026-11-02 09:00"), merged=T("2026-11-02 09:57"))
    q3 = pr(session, created=T("2026-11-02 14:00"), merged=T("2026-11-02 15:00"))
    e2 = deployment(
        session, sha="e2", started=T("2026-11-03 09:55"), finished=T("2026-11-03 10:00")
    )
    q4 = pr(session, created=T("2026-11-03 09:00"), merged=T("2026-11-03 09:58"))
    derive_repository(session, repo(session).id, ENVS)
    # e1: the first: merged into main in [Oct 26 10:00, started Nov 2 09:55]
    assert contents(session, e1) == {q1.id}
    assert q_old.id not in contents(session, e1) and q_dev.id not in contents(session, e1)
    # e2: merged after e1 started, up to e2's start; every PR lands in exactly one deployment
    assert contents(session, e2) == {q2.id, q3.id}
    assert q4.id not in contents(session, e1) | contents(session, e2)


def test_graph_difference_and_ancestry(session):
    setup_team(session)
    _history(session)
    g = load_graph(session, repo(session).id)
    assert g.difference("a4", "a3") == {"a4", "m1", "f2", "f1"}
    assert g.difference("a4", "f2") == {"a4", "m1", "a3"}
    assert g.difference("a3", "a4") == set()
    assert g.difference("a3", "a3") == set()
    assert g.difference("a2", None) == {"a2", "a1", "a0"}
    assert g.difference("a2", "unknown") == {"a2", "a1", "a0"}
    assert g.generation["a0"] == 1 and g.generation["m1"] == 6  # 1 + gen(f2) = 1 + 5
    assert g.is_strict_ancestor("f1", "a4")
    assert g.is_strict_ancestor("a0", "m1")
    assert not g.is_strict_ancestor("a4", "a4")
    assert not g.is_strict_ancestor("f1", "a3")
    assert not g.is_strict_ancestor("a4", "a0")
    assert not g.is_strict_ancestor("nope", "a4")
