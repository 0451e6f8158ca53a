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


def unknown(session, dep) -> bool:
    return session.scalar(select(Deployment.contents_unknown).where(Deployment.id == dep.id))


def test_a_deployed_commit_missing_from_the_graph_has_unknown_contents(session):
    """Contents are never guessed from merge times: a deployment of a commit the graph does
    not have credits no PR, and neither does the next one (its path back is unknown)."""
    setup_team(session)
    commit(session, "a0", [], T("2026-10-31 09:00"))
    commit(session, "a1", ["a0"], T("2026-11-01 10:00"))
    p1 = pr(session, merge_sha="a1", created=T("2026-11-01 00:00"), merged=T("2026-11-01 10:00"))
    p2 = pr(session, merge_sha="a2", created=T("2026-11-02 09:00"), merged=T("2026-11-02 09:57"))
    d0 = deployment(session, sha="a1", finished=T("2026-11-01 12:00"))
    e1 = deployment(
        session, sha="e1", started=T("2026-11-02 09:55"), finished=T("2026-11-02 10:00")
    )
    d2 = deployment(session, sha="a1", finished=T("2026-11-03 10:00"))
    rid = repo(session).id
    assert derive_repository(session, rid, ENVS) == 3
    assert contents(session, d0) == {p1.id}
    assert contents(session, e1) == set() and unknown(session, e1)
    # d2's path back to e1 is not known either (and it is no rollback of anything)
    assert contents(session, d2) == set() and unknown(session, d2)
    assert not unknown(session, d0)
    assert rolled_back_at(session, d0) is None

    # a later sync fetches e1's history: both are recomputed without --full
    commit(session, "a2", ["a1"], T("2026-11-02 09:57"))
    commit(session, "e1", ["a2"], T("2026-11-02 09:58"))
    assert derive_repository(session, rid, ENVS) == 2
    assert contents(session, e1) == {p2.id} and not unknown(session, e1)
    # d2 deploys a1, a strict ancestor of e1: a rollback, containing nothing
    assert contents(session, d2) == set() and not unknown(session, d2)
    assert rolled_back_at(session, e1) == T("2026-11-03 10:00")
    assert derive_repository(session, rid, ENVS) == 0


def test_a_path_back_across_the_edge_of_the_graph_is_unknown(session):
    r"""a0 - a1 ------- m2 - a3      m2 merges f1, whose parent fx the graph does not have
             /
    fx - f1
    """
    setup_team(session)
    commit(session, "a0", [], T("2026-11-01 09:00"))
    commit(session, "a1", ["a0"], T("2026-11-02 09:00"))
    commit(session, "f1", ["fx"], T("2026-11-02 10:00"))
    commit(session, "m2", ["a1", "f1"], T("2026-11-03 09:00"))
    commit(session, "a3", ["m2"], T("2026-11-04 09:00"))
    p_m = pr(session, merge_sha="m2", created=T("2026-11-02 09:00"), merged=T("2026-11-03 09:00"))
    p_a3 = pr(session, merge_sha="a3", created=T("2026-11-04 08:00"), merged=T("2026-11-04 09:00"))
    d1 = deployment(session, sha="a1", finished=T("2026-11-02 12:00"))
    d2 = deployment(session, sha="a3", finished=T("2026-11-04 12:00"))
    rid = repo(session).id
    derive_repository(session, rid, ENVS)
    assert not unknown(session, d1)
    # fx may bring anything (PRs merged long ago, or a1 itself): unknown, no credit at all
    assert unknown(session, d2) and contents(session, d2) == set()
    assert p_m.id not in contents(session, d1)

    commit(session, "fx", ["a0"], T("2026-11-01 10:00"))
    assert derive_repository(session, rid, ENVS) == 1
    assert contents(session, d2) == {p_m.id, p_a3.id} and not unknown(session, d2)


def test_first_deployment_whose_lookback_crosses_the_edge_is_unknown(session):
    setup_team(session)
    commit(session, "b1", ["b0"], T("2026-10-30 12:00"))  # b0 (its parent) is not stored
    commit(session, "b2", ["b1"], T("2026-11-02 12:00"))
    pr(session, merge_sha="b2", created=T("2026-11-02 10:00"), merged=T("2026-11-02 12:00"))
    d = deployment(session, sha="b2", finished=T("2026-11-02 12:00"))
    derive_repository(session, repo(session).id, ENVS)
    assert unknown(session, d) and contents(session, d) == set()


def test_release_branch_contents_hotfix_and_rollback(session):
    r"""main:     a0 - a1 - a2 - a3
                        \
    release/1:           r1 - h1      (r1 cuts the release, h1 a hotfix PR into release/1)

    D1 deploys a2 (main), D2 r1, D3 h1, D4 r1 again (rolls D3 back), D5 a3.
    """
    setup_team(session)
    commit(session, "a0", [], T("2026-11-01 09:00"))
    commit(session, "a1", ["a0"], T("2026-11-02 09:00"))
    commit(session, "a2", ["a1"], T("2026-11-03 09:00"))
    commit(session, "r1", ["a1"], T("2026-11-03 10:00"))
    commit(session, "h1", ["r1"], T("2026-11-04 09:00"))
    commit(session, "a3", ["a2"], T("2026-11-04 10:00"))
    p = {
        n: pr(session, merge_sha=sha, created=T(at) - 2 * HOUR_TD, merged=T(at), base=base)
        for n, sha, at, base in [
            ("A1", "a1", "2026-11-02 09:00", "main"),
            ("A2", "a2", "2026-11-03 09:00", "main"),
            ("H1", "h1", "2026-11-04 09:00", "release/1"),
            ("A3", "a3", "2026-11-04 10:00", "main"),
        ]
    }
    d1 = deployment(session, sha="a2", finished=T("2026-11-03 12:00"))
    d2 = deployment(session, sha="r1", finished=T("2026-11-03 14:00"))
    d3 = deployment(session, sha="h1", finished=T("2026-11-04 11:00"))
    d4 = deployment(session, sha="r1", finished=T("2026-11-04 12:00"))
    d5 = deployment(session, sha="a3", finished=T("2026-11-05 12:00"))
    assert derive_repository(session, repo(session).id, ENVS) == 5
    assert contents(session, d1) == {p["A1"].id, p["A2"].id}
    assert contents(session, d2) == set()  # r1 brings no PR; a2 is not in the release
    assert contents(session, d3) == {p["H1"].id}  # the hotfix only, not A3 merged before
    assert contents(session, d4) == set()  # a strict ancestor of h1: a rollback
    assert contents(session, d5) == {p["A2"].id, p["A3"].id}  # a3 ^r1: a3, a2
    assert rolled_back_at(session, d3) == T("2026-11-04 12:00")
    assert [rolled_back_at(session, d) for d in (d1, d2, d4, d5)] == [None] * 4
    assert not any(unknown(session, d) for d in (d1, d2, d3, d4, d5))


def test_unknown_contents_are_never_judged_a_rollback(session):
    setup_team(session)
    commit(session, "c0", [], T("2026-11-01 09:00"))
    commit(session, "c1", ["c0"], T("2026-11-01 10:00"))
    d0 = deployment(session, sha="c1", finished=T("2026-11-02 10:00"))
    deployment(session, sha="zz", finished=T("2026-11-03 10:00"))  # unknown commit
    # c0 is an ancestor of c1, but the path back to zz is unknown: no judgement
    d2 = deployment(session, sha="c0", finished=T("2026-11-04 10:00"))
    derive_repository(session, repo(session).id, ENVS)
    assert unknown(session, d2)
    assert rolled_back_at(session, d0) is None


def test_graph_difference_and_ancestry(session):
    setup_team(session)
    _history(session)
    g = load_graph(session, repo(session).id)
    assert g.difference("a4", "a3") == {"a4", "m1", "f2", "f1"}
    assert g.difference("a4", "f2") == {"a4", "m1", "a3"}
    assert g.difference("a3", "a4") == set()
    assert g.difference("a3", "a3") == set()
    assert g.reachable("a2") == {"a2", "a1", "a0"}
    # a base or head the graph does not have: unknown, not "everything reachable"
    assert g.difference("a2", "unknown") is None
    assert g.difference("unknown", "a2") is None
    assert g.reachable("unknown") is None
    assert g.generation["a0"] == 1 and g.generation["m1"] == 6  # 1 + gen(f2) = 1 + 5
    assert g.is_strict_ancestor("f1", "a4")
    assert g.is_strict_ancestor("a0", "m1")
    assert not g.is_strict_ancestor("a4", "a4")
    assert not g.is_strict_ancestor("f1", "a3")
    assert not g.is_strict_ancestor("a4", "a0")
    assert not g.is_strict_ancestor("nope", "a4")


def test_difference_is_unknown_when_the_base_side_leaves_the_graph(session):
    """r2's parent rx (a release-branch commit forked from a1) is not stored: whether a1 and a0
    are reachable from r2 cannot be told, so a2 ^r2 is unknown, not {a2, a1, a0}."""
    setup_team(session)
    commit(session, "a0", [], T("2026-11-01 09:00"))
    commit(session, "a1", ["a0"], T("2026-11-02 09:00"))
    commit(session, "a2", ["a1"], T("2026-11-03 09:00"))
    commit(session, "r2", ["rx"], T("2026-11-03 10:00"))
    g = load_graph(session, repo(session).id)
    assert g.difference("a2", "r2") is None
    assert g.difference("r2", "a2") is None
    assert g.difference("a2", "a1") == {"a2"}
    g.add([("rx", ["a1"], T("2026-11-02 12:00"))])
    assert g.difference("a2", "r2") == {"a2"}
    assert g.difference("r2", "a2") == {"r2", "rx"}
    assert g.is_strict_ancestor("a1", "r2")
