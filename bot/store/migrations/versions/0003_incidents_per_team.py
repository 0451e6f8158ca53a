"""incidents: unique per team, source and provider id (teams sharing a repository)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 20:55:00
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_constraint("uq_incidents_source_provider", type_="unique")
        batch_op.create_unique_constraint(
            "uq_incidents_team_provider", ["team_id", "source", "provider_id"]
        )


def downgrade() -> None:
    # rows of one provider incident stored for several teams keep the lowest id
    op.execute(
        "DELETE FROM incidents WHERE id NOT IN "
        "(SELECT MIN(id) FROM incidents GROUP BY source, provider_id)"
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_constraint("uq_incidents_team_provider", type_="unique")
        batch_op.create_unique_constraint("uq_incidents_source_provider", ["source", "provider_id"])
