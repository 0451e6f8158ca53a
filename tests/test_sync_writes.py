"""Idempotent upserts of bot.store.writes on the real test database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from bot.store import writes
from bot.store.derive import derive_repository
from bot.store.models import (
    Commit,
    Deployment,
    DeploymentPullRequest,
    Incident,
    PullRequest,
    PullRequestFile,
    Review,
    Team,
)
from bot.store.records import DeploymentRecord, FileRecord, PullRequestRecord, ReviewRecord

T0 = datetime(2026, 11, 2, 9, 0, 0)


def pr(number: int, **kw) -> PullRequestRecord:
    base = dict(
        number=number,
        title=f"PR {number}",
        url=None,
        author_login="alice",
        author_is_bot=False,
        state="merged",
        is_draft=False,
        was_draft=False,
        created_at=T0,
        updated_at=T0.replace(hour=12),
        ready_at=None,
        merged_at=T0.replace(hour=12),
        closed_at=T0.replace(hour=12),
        merge_commit_sha=f"{number:040x}",
        base_ref="main",
        head_ref=f"b{number}",
        additions=10,
        deletions=2,
        changed_files=2,
        labels=("x",),
        reviews=(ReviewRecord("r1", "bob", False, "APPROVED", T0.replace(hour=10), False),),
        files=(FileRecord("a.py", 8, 1), FileRecord("b.lock", 2, 1)),
    )
    base.update(kw)
    return PullRequestRecord(**base)


def counts(session) -> tuple[int, ...]:
    return tuple(
        session.scalar(select(func.count()).select_from(m))
        for m in (PullRequest, Review, PullRequestFile, Commit, Deployment, Incident)
    )


def test_pull_requests_reviews_files_are_upserted_once(session):
    rid = writes.upsert_repository(session, "acme/api", provider_id="7", default_branch="main")
    assert writes.upsert_repository(session, "ACME/api") == rid
    ids = writes.upsert_pull_requests(session, rid, [pr(1), pr(2)])
    session.commit()
    first = counts(session)
    assert first[:3] == (2, 2, 4)
    # the same page again, then a changed PR: same rows, new values
    writes.upsert_pull_requests(session, rid, [pr(1), pr(2)])
    changed = pr(
        2,
        title="renamed",
        reviews=(
            ReviewRecord("r1", "bob", False, "DISMISSED", T0.replace(hour=10), True),
            ReviewRecord("r2", "carol", False, "APPROVED", T0.replace(hour=11), False),
        ),
        files=(FileRecord("c.py", 1, 1),),
    )
    assert writes.upsert_pull_requests(session, rid, [changed]) == {2: ids[2]}
    session.commit()
    assert counts(session)[:3] == (2, 3, 3)
    row = session.get(PullRequest, ids[2])
    assert row is not None and row.title == "renamed" and row.labels == "x"
    states = session.execute(
        select(Review.provider_id, Review.state, Review.dismissed)
        .where(Review.pull_request_id == ids[2])
        .order_by(Review.provider_id)
    ).all()
    assert [tuple(s) for s in states] == [("r1", "DISMISSED", True), ("r2", "APPROVED", False)]


def test_a_page_read_before_a_newer_event_does_not_overwrite_it(session):
    """The rule of ``bot.ingest.rules.pull_request_delivery_wins`` holds for the sync's
    batched writes as for a webhook's: an older page of a PR stored after a newer event
    changes nothing but what no payload takes away."""
    rid = writes.upsert_repository(session, "acme/api")
    newer = pr(3, title="retitled after the merge", updated_at=T0.replace(hour=14))
    (pid,) = writes.upsert_pull_requests(session, rid, [newer]).values()
    older = pr(
        3,
        title="PR 3",
        state="open",
        merged_at=None,
        closed_at=None,
        merge_commit_sha=None,
        updated_at=T0.replace(hour=11),
        ready_at=T0.replace(hour=9, minute=30),
        was_draft=True,
    )
    writes.upsert_pull_requests(session, rid, [older])
    session.commit()
    session.expire_all()
    row = session.get(PullRequest, pid)
    assert row is not None
    assert (row.title, row.state, row.merged_at, row.updated_at) == (
        "retitled after the merge",
        "merged",
        T0.replace(hour=12),
        T0.replace(hour=14),
    )
    assert (row.ready_at, row.was_draft) == (T0.replace(hour=9, minute=30), True)
    # a newer page takes over again, a merge time it lacks included (never undone)
    writes.upsert_pull_requests(
        session, rid, [pr(3, title="final", merged_at=None, updated_at=T0.replace(hour=15))]
    )
    session.commit()
    session.expire_all()
    row = session.get(PullRequest, pid)
    assert row is not None and (row.title, row.merged_at) == ("final", T0.replace(hour=12))


def test_deployments_commits_and_derive(session):
    rid = writes.upsert_repository(session, "acme/api")
    a, b, c = "a" * 40, "b" * 40, "c" * 40
    writes.upsert_commits(
        session,
        rid,
        [
            writes.CommitRecord(a, (), T0, T0),
            writes.CommitRecord(b, (a,), T0.replace(hour=12), T0.replace(hour=12)),
            writes.CommitRecord(c, (b,), T0.replace(hour=14), T0.replace(hour=14)),
        ],
    )
    writes.upsert_pull_requests(
        session,
        rid,
        [pr(1, merge_commit_sha=b), pr(2, merge_commit_sha=c, merged_at=T0.replace(hour=14))],
    )
    dep = DeploymentRecord(
        "deployment",
        "11",
        "production",
        b,
        "main",
        "success",
        T0.replace(hour=13),
        T0.replace(hour=13, minute=5),
        None,
    )
    ids = writes.upsert_deployments(session, rid, [dep])
    assert writes.upsert_deployment(session, rid, dep) == ids["11"]
    assert derive_repository(session, rid, ["production"]) == 1
    session.commit()
    links = session.execute(select(DeploymentPullRequest.pull_request_id)).scalars().all()
    assert len(links) == 1
    # same record again: nothing to recompute; a changed status: recomputed
    writes.upsert_deployments(session, rid, [dep])
    assert derive_repository(session, rid, ["production"]) == 0
    later = DeploymentRecord(
        "deployment",
        "12",
        "production",
        c,
        "main",
        "success",
        T0.replace(hour=15),
        T0.replace(hour=15, minute=5),
        None,
    )
    writes.upsert_deployments(session, rid, [later])
    assert derive_repository(session, rid, ["production"]) == 1
    session.commit()
    assert session.scalar(select(func.count()).select_from(DeploymentPullRequest)) == 2
    # the same PRs and commits again change nothing; a PR newly merged before the last
    # deployment makes it (and only what follows) be recomputed
    writes.upsert_pull_requests(session, rid, [pr(1, merge_commit_sha=b)])
    at14 = T0.replace(hour=14)
    writes.upsert_commits(session, rid, [writes.CommitRecord(c, (b,), at14, at14)])
    assert derive_repository(session, rid, ["production"]) == 0
    writes.upsert_pull_requests(
        session, rid, [pr(3, merge_commit_sha=None, merged_at=T0.replace(hour=14, minute=30))]
    )
    assert derive_repository(session, rid, ["production"]) == 1
    # a release whose tag is unresolved has no commit: skipped, not failed
    rel = DeploymentRecord("release", "9", "production", None, "v1", "success", None, T0, None)
    assert writes.upsert_deployments(session, rid, [rel]) == {}
    assert counts(session)[3:5] == (3, 2)


def test_incidents_are_keyed_by_source_and_provider_id(session):
    team = Team(name="payments")
    session.add(team)
    session.flush()
    rec = writes.IncidentRecord("github-issues", "acme/api#5", "Outage", T0)
    iid = writes.upsert_incident(session, team.id, rec)
    resolved = writes.IncidentRecord(
        "github-issues", "acme/api#5", "Outage", T0, T0.replace(hour=10), commit_sha="abc1234"
    )
    assert writes.upsert_incidents(session, team.id, [resolved, resolved]) == {"acme/api#5": iid}
    session.commit()
    row = session.get(Incident, iid)
    assert row is not None and row.resolved_at == T0.replace(hour=10)
    assert row.commit_sha == "abc1234"
    assert counts(session)[5] == 1
