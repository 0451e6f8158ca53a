"""Each pull request's first review, first approval and counted lines, kept with it by every
write path (``bot.store.pr_summary``), and the rules they follow (``bot.ingest.rules``:
``first_reviews``, ``counted_lines``): the numbers are the same as reading the reviews and
files, whatever the team's bot rule and ignored paths."""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from bot.ingest.rules import FirstReviews, counted_lines, first_reviews
from bot.metrics.patterns import BotFilter, PathFilter
from bot.settings import DEFAULT_IGNORE_PATHS, TeamConfig
from bot.store import pr_summary
from bot.store import queries as q
from bot.store.migrate import alembic_config, current_revision, upgrade
from bot.store.models import PullRequest, PullRequestFile
from bot.store.records import FileRecord, PullRequestRecord, ReviewRecord
from bot.store.session import make_engine
from bot.store.writes import upsert_pull_requests, upsert_repository, upsert_reviews
from tests.conftest import PG_URL
from tests.factories import T, pr, setup_team
from tests.helpers import engine, period, review
from tests.test_migrations import _pg_schema_url

NO_BOTS = BotFilter(())


def _lines(session: Session, pr_id: int) -> int | None:
    session.expire_all()
    return session.scalar(select(PullRequest.counted_lines).where(PullRequest.id == pr_id))


def _stored(session: Session, pr_id: int) -> tuple[object, ...]:
    session.expire_all()
    row = session.execute(
        select(
            PullRequest.first_review_at,
            PullRequest.first_review_by,
            PullRequest.first_approval_at,
            PullRequest.first_approval_by,
        ).where(PullRequest.id == pr_id)
    ).one()
    return tuple(row)


# --- the rule ------------------------------------------------------------------------------


def test_the_first_review_is_the_earliest_by_someone_else_who_is_not_a_bot():
    at = T("2026-11-02 09:00")
    rows = [
        (1, "Alice", False, "COMMENTED", at, False),  # the author, whatever the case
        (1, "renovate[bot]", True, "APPROVED", at + timedelta(minutes=1), False),
        (1, "carol", False, "PENDING", at + timedelta(minutes=2), False),  # not submitted
        (1, "dave", False, "COMMENTED", None, False),  # no time: never submitted
        (1, "bob", False, "APPROVED", at + timedelta(minutes=3), True),  # dismissed later
        (1, "erin", False, "APPROVED", at + timedelta(minutes=4), False),
        (2, "bob", False, "CHANGES_REQUESTED", at, False),
    ]
    got = first_reviews(rows, {1: "alice", 2: "carol"}, BotFilter(()))
    assert got == {
        1: FirstReviews(at + timedelta(minutes=3), "bob", at + timedelta(minutes=4), "erin"),
        2: FirstReviews(at, "bob", None, None),
    }
    # a pattern makes an account a bot; a PR not asked for is left out
    assert first_reviews(rows, {1: "alice"}, BotFilter(("b*",))) == {
        1: FirstReviews(at + timedelta(minutes=4), "erin", at + timedelta(minutes=4), "erin")
    }


def test_counted_lines_leave_out_ignored_paths_and_generated_files():
    rows = [
        (1, "src/a.py", 10, 5, False),
        (1, "package-lock.json", 900, 100, False),
        (1, "gen/x.pb.go", 300, 0, True),
        (2, "docs/readme.md", 4, 0, False),
    ]
    assert counted_lines(rows, PathFilter(DEFAULT_IGNORE_PATHS)) == {1: 15, 2: 4}
    assert counted_lines(rows, PathFilter(("docs/**",))) == {1: 1015, 2: 0}


# --- every write path keeps it ---------------------------------------------------------------


def test_reviews_added_changed_and_deleted_through_the_orm_refresh_it(session: Session):
    setup_team(session)
    p = pr(session, created=T("2026-11-02 08:00"), merged=T("2026-11-03 08:00"))
    session.commit()
    assert _stored(session, p.id) == (None, None, None, None)
    late = review(session, p, "bob", "APPROVED", T("2026-11-02 12:00"))
    assert _stored(session, p.id) == (T("2026-11-02 12:00"), "bob", T("2026-11-02 12:00"), "bob")
    early = review(session, p, "carol", "COMMENTED", T("2026-11-02 10:00"))
    assert _stored(session, p.id)[:2] == (T("2026-11-02 10:00"), "carol")
    late.dismissed = True  # the approval is dismissed: no approval left
    session.flush()
    assert _stored(session, p.id) == (T("2026-11-02 10:00"), "carol", None, None)
    session.delete(early)
    session.flush()
    assert _stored(session, p.id) == (T("2026-11-02 12:00"), "bob", None, None)
    # the PR's author changes to bob: his review is no longer someone else's
    p.author_login = "Bob"
    session.commit()
    assert _stored(session, p.id) == (None, None, None, None)


def test_a_pr_loaded_in_the_session_sees_its_new_summary(session: Session):
    setup_team(session)
    p = pr(
        session,
        created=T("2026-11-02 08:00"),
        merged=T("2026-11-03 08:00"),
        reviews=[("bob", "APPROVED", T("2026-11-02 12:00"))],
    )
    assert p.first_approval_by == "bob"  # expired by the flush, loaded again
    review(session, p, "carol", "APPROVED", T("2026-11-02 11:00"))
    assert (p.first_approval_at, p.first_approval_by) == (T("2026-11-02 11:00"), "carol")


def test_files_added_changed_and_deleted_through_the_orm_refresh_the_counted_lines(
    session: Session,
):
    setup_team(session)
    p = pr(session, created=T("2026-11-02 08:00"), merged=T("2026-11-03 08:00"))
    session.commit()
    assert _lines(session, p.id) is None  # no files: the provider's total stands
    src = PullRequestFile(pull_request_id=p.id, path="src/a.py", additions=10, deletions=2)
    lock = PullRequestFile(pull_request_id=p.id, path="yarn.lock", additions=500, deletions=9)
    session.add_all([src, lock])
    session.flush()
    assert _lines(session, p.id) == 12
    src.generated = True
    session.flush()
    assert _lines(session, p.id) == 0
    session.delete(src)
    session.delete(lock)
    session.commit()
    assert _lines(session, p.id) is None


def _record(
    number: int, author: str, *reviews: ReviewRecord, files: tuple[FileRecord, ...] = ()
) -> PullRequestRecord:
    at = T("2026-11-02 08:00")
    return PullRequestRecord(
        number=number,
        title=f"PR {number}",
        url=None,
        author_login=author,
        author_is_bot=False,
        state="merged",
        is_draft=False,
        was_draft=False,
        created_at=at,
        updated_at=at,
        ready_at=None,
        merged_at=at + timedelta(days=1),
        closed_at=at + timedelta(days=1),
        merge_commit_sha="a" * 40,
        base_ref="main",
        head_ref="feature",
        additions=1,
        deletions=1,
        changed_files=1,
        reviews=reviews,
        files=files,
    )


def _review(pid: str, who: str, state: str, at: str, dismissed: bool = False) -> ReviewRecord:
    return ReviewRecord(pid, who, who.endswith("[bot]"), state, T(at), dismissed)


def test_the_store_writes_keep_it_whatever_order_reviews_arrive_in(session: Session):
    """A sync page, then a late webhook delivery of an earlier review, then a dismissal."""
    rid = upsert_repository(session, "acme/api")
    ids = upsert_pull_requests(
        session,
        rid,
        [
            _record(
                1,
                "alice",
                _review("r2", "bob", "APPROVED", "2026-11-02 12:00"),
                _review("r0", "ci[bot]", "APPROVED", "2026-11-02 09:00"),
            )
        ],
    )
    pid = ids[1]
    assert _stored(session, pid) == (T("2026-11-02 12:00"), "bob", T("2026-11-02 12:00"), "bob")
    upsert_reviews(session, pid, [_review("r1", "carol", "COMMENTED", "2026-11-02 10:00")])
    assert _stored(session, pid)[:2] == (T("2026-11-02 10:00"), "carol")
    upsert_reviews(session, pid, [_review("r2", "bob", "APPROVED", "2026-11-02 12:00", True)])
    assert _stored(session, pid) == (T("2026-11-02 10:00"), "carol", None, None)
    # the PR delivered again without reviews keeps them (reviews are never removed)
    upsert_pull_requests(session, rid, [_record(1, "alice")])
    assert _stored(session, pid) == (T("2026-11-02 10:00"), "carol", None, None)
    # its files: counted outside the default ignored paths; a delivery with files replaces
    upsert_pull_requests(
        session,
        rid,
        [_record(1, "alice", files=(FileRecord("src/a.py", 3, 4), FileRecord("go.sum", 80, 2)))],
    )
    assert _lines(session, pid) == 7
    upsert_pull_requests(session, rid, [_record(1, "alice")])  # no files: kept
    assert _lines(session, pid) == 7
    upsert_pull_requests(session, rid, [_record(1, "alice", files=(FileRecord("b.py", 1, 1),))])
    assert _lines(session, pid) == 2
    # carol turns out to be its author: bob's review (its approval dismissed) is the first
    upsert_pull_requests(session, rid, [_record(1, "CAROL")])
    assert _stored(session, pid) == (T("2026-11-02 12:00"), "bob", None, None)


# --- the numbers: the same as reading the reviews ---------------------------------------------


@pytest.mark.parametrize(("own", "paths"), [((), ()), (("bob", "q*"), ("docs/**",))])
def test_every_pr_fact_equals_the_rules_over_its_reviews_and_files(
    session: Session, own: tuple[str, ...], paths: tuple[str, ...]
):
    """Random reviews (authors, bots by flag and by pattern, pending, dismissed, ties) and
    files, for a team under the default bot rule and paths and one with its own: each merged
    PR's first review, approval and size in the engine are the rules' over its stored rows."""
    rng = random.Random(20261203)
    setup_team(session)
    team = TeamConfig(name="payments", repos=("acme/api",), exclude_authors=own, ignore_paths=paths)
    files = ["src/a.py", "docs/x.md", "poetry.lock", "vendor/lib/x.go", "web/app.min.js"]
    people = ["alice", "bob", "carol", "Quinn", "dependabot[bot]", "copilot-x", "ALICE"]
    start = T("2026-11-02 08:00")
    bots = BotFilter(team.bot_patterns)
    humans = 0
    for n in range(1, 121):
        created = start + timedelta(hours=rng.randint(0, 100))
        reviews = []
        for _ in range(rng.randint(0, 5)):
            at = created + timedelta(minutes=rng.choice([0, 30, 30, 90, 600]))
            state = rng.choice(["COMMENTED", "APPROVED", "APPROVED", "CHANGES_REQUESTED"])
            reviews.append((rng.choice(people), state, at, rng.random() < 0.2))
        author = rng.choice(people[:4])
        humans += not bots(author)
        pr(
            session,
            number=n,
            author=author,
            files=[(f, rng.randint(0, 50), rng.randint(0, 9)) for f in files if rng.random() < 0.5],
            created=created,
            merged=created + timedelta(days=2),
            reviews=reviews,  # type: ignore[arg-type]
        )
    session.commit()
    eng = engine(session, team)
    prs = eng.merged_prs(period("2026-11"))
    assert len(prs) == humans and humans >= 50
    authors = {p.id: (p.author or "").lower() for p in prs}
    expected = first_reviews(q.review_rows(session, q.pr_ids(sorted(authors))), authors, bots)
    ids = q.pr_ids(sorted(authors))
    sizes = counted_lines(q.file_rows(session, ids), PathFilter(team.path_patterns))
    none = FirstReviews()
    for p in prs:
        want = expected.get(p.id, none)
        assert (p.first_review, p.approved) == (want.review_at, want.approval_at), p.number
        assert p.size == sizes.get(p.id, 15), p.number  # the factory's total: 10 + 5
    assert any(p.approved for p in prs) and any(p.first_review is None for p in prs)
    assert len({p.size for p in prs}) > 20


# --- stores from before the summary ---------------------------------------------------------


def _check_0013(url: str) -> None:
    eng = make_engine(url)
    try:
        upgrade(eng, "0012_team_membership")
        with eng.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO repositories (id, full_name, provider, default_branch) "
                    "VALUES (1, 'acme/api', 'github', 'main')"
                )
            )
            for pid, author in ((1, "alice"), (2, "bob"), (3, "carol")):
                conn.execute(
                    text(
                        "INSERT INTO pull_requests (id, repository_id, number, title, "
                        "author_login, author_is_bot, state, is_draft, was_draft, created_at, "
                        "merged_at, base_branch, additions, deletions) VALUES (:id, 1, :id, "
                        "'t', :a, false, 'merged', false, false, :c, :m, 'main', 1, 1)"
                    ),
                    {
                        "id": pid,
                        "a": author,
                        "c": datetime(2026, 11, 2),
                        "m": datetime(2026, 11, 3),
                    },
                )
            for rid, (pid, who, state, hour, bot) in enumerate(
                [
                    (1, "bob", "COMMENTED", 9, False),
                    (1, "carol", "APPROVED", 10, False),
                    (1, "alice", "APPROVED", 8, False),
                    (2, "renovate[bot]", "APPROVED", 8, True),
                ]
            ):
                conn.execute(
                    text(
                        "INSERT INTO reviews (id, pull_request_id, provider_id, author_login, "
                        "author_is_bot, state, submitted_at, dismissed) VALUES (:id, :pr, :pid, "
                        ":who, :bot, :st, :at, false)"
                    ),
                    {
                        "id": rid + 1,
                        "pr": pid,
                        "pid": f"r{rid}",
                        "who": who,
                        "bot": bot,
                        "st": state,
                        "at": datetime(2026, 11, 2, hour),
                    },
                )
            for fid, (pid, path, lines) in enumerate(
                [(1, "src/a.py", 7), (1, "poetry.lock", 900), (3, "dist/app.js", 5)]
            ):
                conn.execute(
                    text(
                        "INSERT INTO pull_request_files (id, pull_request_id, path, additions, "
                        "deletions, generated) VALUES (:id, :pr, :path, :n, 0, false)"
                    ),
                    {"id": fid + 1, "pr": pid, "path": path, "n": lines},
                )
        upgrade(eng)
        assert current_revision(eng) == "0013_pr_summary"
        with eng.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT id, first_review_by, first_approval_by, counted_lines "
                    "FROM pull_requests ORDER BY id"
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            (1, "bob", "carol", 7),
            (2, None, None, None),
            (3, None, None, 0),
        ]
        command.downgrade(alembic_config(eng), "0012_team_membership")
        cols = {c["name"] for c in inspect(eng).get_columns("pull_requests")}
        assert not cols & set(pr_summary.COLUMNS)
    finally:
        eng.dispose()


def test_0013_computes_the_summary_of_every_stored_pr_sqlite(tmp_path):
    _check_0013(f"sqlite:///{tmp_path / 'm13.db'}")


if PG_URL.startswith("postgres"):

    def test_0013_computes_the_summary_of_every_stored_pr_postgres():
        with _pg_schema_url() as url:
            _check_0013(url)


def test_the_default_rules_the_stored_summary_follows_are_the_ones_it_was_computed_with():
    """Stores hold summaries computed under these defaults (migration 0013). Changing either
    tuple makes them stale: add a migration that calls ``pr_summary.refresh_all`` again, then
    update the fingerprint here."""
    fingerprint = hashlib.sha256(
        repr((pr_summary.DEFAULT_BOTS.patterns, pr_summary.DEFAULT_PATHS)).encode()
    ).hexdigest()[:16]
    assert fingerprint == "b5afa69039af4dad"
