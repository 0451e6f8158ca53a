"""working agreements: breaches announced once, PRs excluded by a lead, proactive notices

``agreement_breaches``: each PR in breach of each agreement of a team, announced at most once.
``pull_request_exclusions``: PRs a lead left out of a team's KPIs, with who and why.
``notice_runs``: every proactive message per conversation (the weekly noise budget and the
notices folded into the next roll-up).

Revision ID: 0009_agreements
Revises: 0007
Create Date: 2026-12-03 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_agreements"
down_revision = "0008_teams_delivery"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pull_request_exclusions",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("pull_request_id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("excluded_by", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("excluded_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name="fk_pull_request_exclusions_team_id_teams",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pull_request_id"],
            ["pull_requests.id"],
            name="fk_pull_request_exclusions_pull_request_id_pull_requests",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("team_id", "pull_request_id", name="pk_pull_request_exclusions"),
    )
    op.create_table(
        "agreement_breaches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("pull_request_id", sa.Integer(), nullable=False),
        sa.Column("agreement", sa.String(32), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("announced_at", sa.DateTime(), nullable=True),
        sa.Column("notice_key", sa.String(200), nullable=True),
        sa.Column("snoozed_until", sa.DateTime(), nullable=True),
        sa.Column("snoozed_by", sa.String(255), nullable=True),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name="fk_agreement_breaches_team_id_teams",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pull_request_id"],
            ["pull_requests.id"],
            name="fk_agreement_breaches_pull_request_id_pull_requests",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_agreement_breaches"),
        sa.UniqueConstraint(
            "team_id", "pull_request_id", "agreement", name="uq_agreement_breaches_key"
        ),
    )
    op.create_index(
        "ix_agreement_breaches_team_resolved", "agreement_breaches", ["team_id", "resolved_at"]
    )
    op.create_table(
        "notice_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("channel_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("week", sa.String(10), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("rolled_up_at", sa.DateTime(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.Column("posted_at", sa.DateTime(), nullable=True),
        sa.Column("message_ts", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_notice_runs"),
        sa.UniqueConstraint("platform", "channel_id", "kind", "key", name="uq_notice_runs_key"),
    )
    op.create_index(
        "ix_notice_runs_channel_week", "notice_runs", ["platform", "channel_id", "week"]
    )


def downgrade() -> None:
    op.drop_index("ix_notice_runs_channel_week", table_name="notice_runs")
    op.drop_table("notice_runs")
    op.drop_index("ix_agreement_breaches_team_resolved", table_name="agreement_breaches")
    op.drop_table("agreement_breaches")
    op.drop_table("pull_request_exclusions")
