"""source health and freshness notices

How each source fares (last success, last error, consecutive failures, next run) and the
notices posted to a team's conversations when a source fails or recovers.

Revision ID: 0011_source_health
Revises: 0007
Create Date: 2026-12-03 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_source_health"
down_revision = "0010_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_health",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=255), nullable=False),
        sa.Column("last_success_at", sa.DateTime(), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(), nullable=True),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_run_at", sa.DateTime(), nullable=True),
        sa.Column("failing", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("episode", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("source", "scope", name=op.f("pk_source_health")),
    )
    op.create_table(
        "source_notice_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=255), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("channel_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.Column("posted_at", sa.DateTime(), nullable=True),
        sa.Column("message_ts", sa.String(length=255), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_notice_runs")),
        sa.UniqueConstraint(
            "source",
            "scope",
            "episode",
            "kind",
            "platform",
            "channel_id",
            name="uq_source_notice_runs_key",
        ),
    )


def downgrade() -> None:
    op.drop_table("source_notice_runs")
    op.drop_table("source_health")
