"""deployments: contents_unknown (the commit graph does not know a deployment's contents)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 06:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("contents_unknown", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    # contents were computed with a fallback that guessed them from merge times: compute
    # every deployment again at the next sync
    op.execute("UPDATE deployments SET contents_computed_at = NULL")


def downgrade() -> None:
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_column("contents_unknown")
