"""each pull request's first review, first approval and counted lines, kept with it

Revision ID: 0013_pr_summary
Revises: 0012_team_membership
Create Date: 2026-12-03 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_pr_summary"
down_revision = "0012_team_membership"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pull_requests") as b:
        b.add_column(sa.Column("first_review_at", sa.DateTime(), nullable=True))
        b.add_column(sa.Column("first_review_by", sa.String(255), nullable=True))
        b.add_column(sa.Column("first_approval_at", sa.DateTime(), nullable=True))
        b.add_column(sa.Column("first_approval_by", sa.String(255), nullable=True))
        b.add_column(sa.Column("counted_lines", sa.Integer(), nullable=True))
    # the PRs stored so far: computed with the rule every later write applies
    from bot.store.pr_summary import refresh_all

    refresh_all(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("pull_requests") as b:
        b.drop_column("counted_lines")
        b.drop_column("first_approval_by")
        b.drop_column("first_approval_at")
        b.drop_column("first_review_by")
        b.drop_column("first_review_at")
