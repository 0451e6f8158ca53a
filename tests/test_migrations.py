"""Alembic migrations build exactly the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from bot.store.migrate import alembic_config, current_revision, upgrade
from bot.store.models import Base
from bot.store.session import make_engine, normalise_url
from tests.conftest import PG_URL


@contextmanager
def _pg_schema_url() -> Iterator[str]:
    schema = f"kpibot_m_{uuid.uuid4().hex[:8]}"
    admin = make_engine(normalise_url(PG_URL))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in PG_URL else "?"
        yield f"{normalise_url(PG_URL)}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _check(url: str) -> None:
    eng = make_engine(url)
    try:
        upgrade(eng)
        assert current_revision(eng) is not None
        with eng.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], diff
        names = set(inspect(eng).get_table_names())
        assert set(Base.metadata.tables) <= names
        idx = {i["name"] for i in inspect(eng).get_indexes("pull_requests")}
        assert "ix_pull_requests_repo_merged" in idx
        upgrade(eng)  # running it again changes nothing
    finally:
        eng.dispose()


def test_sqlite_upgrade_matches_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    _check(url)
    eng = make_engine(url)
    with eng.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
    eng.dispose()


if PG_URL.startswith("postgres"):

    def test_postgres_upgrade_matches_models():
        with _pg_schema_url() as url:
            _check(url)


def test_0006_stores_unknown_contents_and_recomputes_every_deployment(tmp_path):
    """Contents computed before 0006 may come from the merged-PR fallback: all are computed
    again at the next sync; the new column starts false."""
    eng = make_engine(f"sqlite:///{tmp_path / 'm4.db'}")
    try:
        upgrade(eng, "0005")
        with eng.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO repositories (id, full_name, provider, default_branch) "
                    "VALUES (1, 'acme/api', 'github', 'main')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO deployments (id, repository_id, source, provider_id, "
                    "environment, commit_sha, status, finished_at, contents_computed_at) VALUES "
                    "(1, 1, 'webhook', 'd1', 'production', 'abc1234', 'success', "
                    "'2026-11-02 10:00:00', '2026-11-02 10:00:00')"
                )
            )
        upgrade(eng, "0006")
        assert current_revision(eng) == "0006"
        with eng.connect() as conn:
            row = conn.execute(
                text("SELECT contents_computed_at, contents_unknown FROM deployments")
            ).one()
        assert row[0] is None and not row[1]
    finally:
        eng.dispose()


def _check_0007(url: str) -> None:
    """Mappings, subscriptions and action items of before 0007 are Slack's; afterwards a
    Teams conversation with the same id keeps its own mapping and subscription, and the
    downgrade drops only the Teams rows."""
    eng = make_engine(url)
    try:
        upgrade(eng, "0006")
        with eng.begin() as conn:
            conn.execute(text("INSERT INTO teams (id, name, timezone) VALUES (1, 'core', 'UTC')"))
            conn.execute(
                text(
                    "INSERT INTO channel_teams (channel_id, team_id, set_by) VALUES ('C1', 1, 'U1')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO digest_subscriptions (id, channel_id, team_id, kind, created_by, "
                    "created_at, active) VALUES (1, 'C1', 1, 'weekly', 'U1', "
                    "'2026-11-02 10:00:00', true)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO action_items (id, team_id, opportunity, resolution, owner, "
                    "due_on, created_by, created_at) VALUES (1, 1, 'o', 'r', 'U1', "
                    "'2026-12-01', 'U1', '2026-11-02 10:00:00')"
                )
            )
        upgrade(eng, "0007")
        assert current_revision(eng) == "0007"
        long_id = "19:" + "x" * 200 + "@thread.tacv2"
        with eng.begin() as conn:
            assert conn.execute(text("SELECT platform, channel_id FROM channel_teams")).all() == [
                ("slack", "C1")
            ]
            assert conn.execute(
                text("SELECT platform, channel_id FROM digest_subscriptions")
            ).all() == [("slack", "C1")]
            assert conn.execute(text("SELECT platform FROM action_items")).all() == [("slack",)]
            for sub_id, channel in ((2, "C1"), (3, long_id)):
                conn.execute(
                    text(
                        "INSERT INTO channel_teams (platform, channel_id, team_id) "
                        "VALUES ('teams', :c, 1)"
                    ),
                    {"c": channel},
                )
                conn.execute(
                    text(
                        "INSERT INTO digest_subscriptions (id, platform, channel_id, team_id, "
                        "kind, created_at, active) VALUES (:i, 'teams', :c, 1, 'weekly', "
                        "'2026-11-02 10:00:00', true)"
                    ),
                    {"i": sub_id, "c": channel},
                )
        with pytest.raises(IntegrityError), eng.begin() as conn:  # the key is (platform, channel)
            conn.execute(
                text(
                    "INSERT INTO digest_subscriptions (id, platform, channel_id, team_id, kind, "
                    "created_at, active) VALUES (4, 'slack', 'C1', 1, 'weekly', "
                    "'2026-11-02 10:00:00', true)"
                )
            )
        command.downgrade(alembic_config(eng), "0006")
        with eng.connect() as conn:
            assert conn.execute(text("SELECT channel_id FROM channel_teams")).all() == [("C1",)]
            assert conn.execute(text("SELECT id FROM digest_subscriptions")).all() == [(1,)]
        upgrade(eng)
        with eng.connect() as conn:
            assert conn.execute(text("SELECT platform FROM channel_teams")).all() == [("slack",)]
    finally:
        eng.dispose()


def test_0007_keys_conversations_by_platform_sqlite(tmp_path):
    _check_0007(f"sqlite:///{tmp_path / 'm7.db'}")


if PG_URL.startswith("postgres"):

    def test_0007_keys_conversations_by_platform_postgres():
        with _pg_schema_url() as url:
            _check_0007(url)


def _check_0008(url: str) -> None:
    """Reminder runs of before 0008 are Slack's; afterwards a Teams owner (a long Azure AD
    id) has runs of their own, subscriptions keep a conversation reference, and the downgrade
    drops only the Teams runs."""
    eng = make_engine(url)
    try:
        upgrade(eng, "0007")
        with eng.begin() as conn:
            conn.execute(text("INSERT INTO teams (id, name, timezone) VALUES (1, 'core', 'UTC')"))
            conn.execute(
                text(
                    "INSERT INTO reminder_runs (id, team_id, owner, day, status, claimed_at, "
                    "attempts) VALUES (1, 1, 'U1', '2026-12-01', 'posted', "
                    "'2026-12-01 09:00:00', 1)"
                )
            )
        upgrade(eng, "0008_teams_delivery")
        assert current_revision(eng) == "0008_teams_delivery"
        owner = "aad-" + "0" * 36 + "-" + "x" * 60
        with eng.begin() as conn:
            assert conn.execute(text("SELECT platform, owner FROM reminder_runs")).all() == [
                ("slack", "U1")
            ]
            for run_id, who in ((2, "U1"), (3, owner)):  # the key is (platform, team, owner, day)
                conn.execute(
                    text(
                        "INSERT INTO reminder_runs (id, platform, team_id, owner, day, status, "
                        "claimed_at, attempts, message_ts) VALUES (:i, 'teams', 1, :o, "
                        "'2026-12-01', 'posted', '2026-12-01 09:00:00', 1, :ts)"
                    ),
                    {"i": run_id, "o": who, "ts": "1:" + "y" * 120},
                )
            conn.execute(
                text(
                    "INSERT INTO digest_subscriptions (id, platform, channel_id, team_id, kind, "
                    "created_at, active, service_url, tenant_id) VALUES (1, 'teams', "
                    "'19:c@thread.tacv2', 1, 'weekly', '2026-11-02 10:00:00', true, "
                    "'https://smba.trafficmanager.net/emea/', 'tenant-1')"
                )
            )
        with pytest.raises(IntegrityError), eng.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO reminder_runs (id, platform, team_id, owner, day, status, "
                    "claimed_at, attempts) VALUES (4, 'slack', 1, 'U1', '2026-12-01', 'claimed', "
                    "'2026-12-01 09:00:00', 1)"
                )
            )
        command.downgrade(alembic_config(eng), "0007")
        with eng.connect() as conn:
            assert conn.execute(text("SELECT id, owner FROM reminder_runs")).all() == [(1, "U1")]
            assert conn.execute(text("SELECT id FROM digest_subscriptions")).all() == [(1,)]
        upgrade(eng)
        with eng.connect() as conn:
            assert conn.execute(text("SELECT platform FROM reminder_runs")).all() == [("slack",)]
    finally:
        eng.dispose()


def test_0008_keys_reminders_by_platform_sqlite(tmp_path):
    _check_0008(f"sqlite:///{tmp_path / 'm8.db'}")


if PG_URL.startswith("postgres"):

    def test_0008_keys_reminders_by_platform_postgres():
        with _pg_schema_url() as url:
            _check_0008(url)


def _check_0009(url: str) -> None:
    """0009 adds the agreement, exclusion and notice tables on top of 0007 and drops them
    again on the way down."""
    eng = make_engine(url)
    try:
        upgrade(eng, "0007")
        assert "agreement_breaches" not in set(inspect(eng).get_table_names())
        upgrade(eng, "0009_agreements")
        assert current_revision(eng) == "0009_agreements"
        names = set(inspect(eng).get_table_names())
        assert {"agreement_breaches", "pull_request_exclusions", "notice_runs"} <= names
        command.downgrade(alembic_config(eng), "0008_teams_delivery")
        names = set(inspect(eng).get_table_names())
        assert not {"agreement_breaches", "pull_request_exclusions", "notice_runs"} & names
    finally:
        eng.dispose()


def test_0009_agreements_sqlite(tmp_path):
    _check_0009(f"sqlite:///{tmp_path / 'm9.db'}")


if PG_URL.startswith("postgres"):

    def test_0009_agreements_postgres():
        with _pg_schema_url() as url:
            _check_0009(url)


def _check_0012(url: str) -> None:
    """0012 adds team membership, people and each such team's PRs, and drops them again."""
    eng = make_engine(url)
    tables = {"team_members", "people", "team_pull_requests"}
    try:
        upgrade(eng, "0011_source_health")
        assert not tables & set(inspect(eng).get_table_names())
        upgrade(eng, "0012_team_membership")
        assert current_revision(eng) == "0012_team_membership"
        assert tables <= set(inspect(eng).get_table_names())
        assert "population" in {c["name"] for c in inspect(eng).get_columns("teams")}
        command.downgrade(alembic_config(eng), "0011_source_health")
        assert not tables & set(inspect(eng).get_table_names())
        assert "population" not in {c["name"] for c in inspect(eng).get_columns("teams")}
    finally:
        eng.dispose()


def test_0012_team_membership_sqlite(tmp_path):
    _check_0012(f"sqlite:///{tmp_path / 'm12.db'}")


if PG_URL.startswith("postgres"):

    def test_0012_team_membership_postgres():
        with _pg_schema_url() as url:
            _check_0012(url)
