"""Microsoft Teams delivery: conversation references of subscriptions, reminders per platform

A Teams subscription keeps the reference the scheduler needs to post proactively: the
connector's service URL and the tenant of the conversation. Reminder runs are keyed by
(platform, team, owner, day) with owner ids long enough for Teams (Azure AD object ids);
existing runs are Slack's. Recorded message ids widen for Teams activity ids.

Revision ID: 0008_teams_delivery
Revises: 0007
Create Date: 2026-12-03 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_teams_delivery"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("digest_subscriptions") as b:
        b.add_column(sa.Column("service_url", sa.String(512), nullable=True))
        b.add_column(sa.Column("tenant_id", sa.String(64), nullable=True))
    with op.batch_alter_table("digest_runs") as b:
        b.alter_column("message_ts", type_=sa.String(255), existing_nullable=True)
    with op.batch_alter_table("reminder_runs") as b:
        b.add_column(sa.Column("platform", sa.String(16), server_default="slack", nullable=False))
        b.alter_column("owner", type_=sa.String(255), existing_nullable=False)
        b.alter_column("message_ts", type_=sa.String(255), existing_nullable=True)
        b.drop_constraint("uq_reminder_runs_key", type_="unique")
        b.create_unique_constraint("uq_reminder_runs_key", ["platform", "team_id", "owner", "day"])


def downgrade() -> None:
    # Teams reminders have no place in the Slack-only key
    op.execute("DELETE FROM reminder_runs WHERE platform <> 'slack'")
    with op.batch_alter_table("reminder_runs") as b:
        b.drop_constraint("uq_reminder_runs_key", type_="unique")
        b.create_unique_constraint("uq_reminder_runs_key", ["team_id", "owner", "day"])
        b.drop_column("platform")
        b.alter_column("owner", type_=sa.String(32), existing_nullable=False)
        b.alter_column("message_ts", type_=sa.String(32), existing_nullable=True)
    with op.batch_alter_table("digest_runs") as b:
        b.alter_column("message_ts", type_=sa.String(32), existing_nullable=True)
    with op.batch_alter_table("digest_subscriptions") as b:
        b.drop_column("tenant_id")
        b.drop_column("service_url")
