"""teams made of people and paths: membership history, identities, each team's PRs, and
an index of the PRs that may be reverts

Revision ID: 0012_team_membership
Revises: 0007
Create Date: 2026-12-03 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_team_membership"
down_revision = "0011_source_health"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("teams") as b:
        b.add_column(sa.Column("population", sa.String(64), nullable=True))
    op.create_table(
        "team_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("login", sa.String(255), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=True),
        sa.Column("until", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name="fk_team_members_team_id_teams", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_team_members"),
    )
    op.create_index("ix_team_members_team_login", "team_members", ["team_id", "login"])
    op.create_index("ix_team_members_login", "team_members", ["login"])
    op.create_table(
        "people",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("github", sa.String(255), nullable=False),
        sa.Column("slack_user", sa.String(255), nullable=True),
        sa.Column("teams_user", sa.String(255), nullable=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("slack_configured", sa.Boolean(), nullable=False),
        sa.Column("slack_lookup_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_people"),
        sa.UniqueConstraint("github", name="uq_people_github"),
    )
    op.create_index("ix_people_slack_user", "people", ["slack_user"])
    op.create_index("ix_people_teams_user", "people", ["teams_user"])
    op.create_table(
        "team_pull_requests",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("pull_request_id", sa.Integer(), nullable=False),
        sa.Column("merged_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name="fk_team_pull_requests_team_id_teams",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pull_request_id"],
            ["pull_requests.id"],
            name="fk_team_pull_requests_pull_request_id_pull_requests",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("team_id", "pull_request_id", name="pk_team_pull_requests"),
    )
    op.create_index(
        "ix_team_pull_requests_team_merged",
        "team_pull_requests",
        ["team_id", "merged_at", "pull_request_id"],
    )
    op.create_index("ix_team_pull_requests_pr", "team_pull_requests", ["pull_request_id"])
    # the PRs that may be reverts, so a monorepo's are read without walking all its PRs
    revert = sa.text("title LIKE 'Revert \"%' OR head_branch LIKE 'revert-%'")
    op.create_index(
        "ix_pull_requests_reverts",
        "pull_requests",
        ["repository_id", "merged_at"],
        sqlite_where=revert,
        postgresql_where=revert,
    )


def downgrade() -> None:
    op.drop_index("ix_pull_requests_reverts", table_name="pull_requests")
    op.drop_table("team_pull_requests")
    op.drop_table("people")
    op.drop_table("team_members")
    with op.batch_alter_table("teams") as b:
        b.drop_column("population")
