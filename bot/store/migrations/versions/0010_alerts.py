"""threshold alerts: settings made in chat, the crossing rule's state, crossings and their
deliveries

Revision ID: 0010_alerts
Revises: 0007
Create Date: 2026-12-03 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_alerts"
down_revision = "0009_agreements"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_settings",
        sa.Column(
            "team_id",
            sa.Integer,
            sa.ForeignKey("teams.id", ondelete="CASCADE", name="fk_alert_settings_team_id_teams"),
            nullable=False,
        ),
        sa.Column("kpi", sa.String(32), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("set_by", sa.String(255)),
        sa.Column("set_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("team_id", "kpi", name="pk_alert_settings"),
    )
    op.create_table(
        "alert_states",
        sa.Column(
            "team_id",
            sa.Integer,
            sa.ForeignKey("teams.id", ondelete="CASCADE", name="fk_alert_states_team_id_teams"),
            nullable=False,
        ),
        sa.Column("kpi", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16)),
        sa.Column("crossed_at", sa.DateTime),
        sa.Column("evaluated_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("team_id", "kpi", name="pk_alert_states"),
    )
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "team_id",
            sa.Integer,
            sa.ForeignKey("teams.id", ondelete="CASCADE", name="fk_alert_events_team_id_teams"),
            nullable=False,
        ),
        sa.Column("kpi", sa.String(32), nullable=False),
        sa.Column("evaluated_at", sa.DateTime, nullable=False),
        sa.Column("crossing", sa.String(16), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("target_op", sa.String(2), nullable=False),
        sa.Column("target_value", sa.Float, nullable=False),
        sa.UniqueConstraint("team_id", "kpi", "evaluated_at", name="uq_alert_events_key"),
    )
    op.create_index("ix_alert_events_evaluated_at", "alert_events", ["evaluated_at"])
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "event_id",
            sa.Integer,
            sa.ForeignKey(
                "alert_events.id",
                ondelete="CASCADE",
                name="fk_alert_deliveries_event_id_alert_events",
            ),
            nullable=False,
        ),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("channel_id", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("claimed_by", sa.String(100)),
        sa.Column("claimed_at", sa.DateTime, nullable=False),
        sa.Column("posted_at", sa.DateTime),
        sa.Column("message_ts", sa.String(255)),
        sa.Column("detail", sa.Text),
        sa.Column("attempts", sa.Integer, server_default="0", nullable=False),
        sa.UniqueConstraint("event_id", "platform", "channel_id", name="uq_alert_deliveries_key"),
    )


def downgrade() -> None:
    op.drop_table("alert_deliveries")
    op.drop_index("ix_alert_events_evaluated_at", table_name="alert_events")
    op.drop_table("alert_events")
    op.drop_table("alert_states")
    op.drop_table("alert_settings")
