"""channel mappings, digest subscriptions and action items keyed by chat platform

A conversation is (platform, conversation id), so a Slack channel and a Microsoft Teams
channel can both map to a team and subscribe to its digests. Existing rows are Slack's.
Conversation and user ids widen to 255 characters (Teams ids are long).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 07:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _platform() -> sa.Column[str]:
    return sa.Column("platform", sa.String(16), server_default="slack", nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("channel_teams") as b:
        b.add_column(_platform())
        b.alter_column("channel_id", type_=sa.String(255), existing_nullable=False)
        b.alter_column("set_by", type_=sa.String(255), existing_nullable=True)
        b.drop_constraint("pk_channel_teams", type_="primary")
        b.create_primary_key("pk_channel_teams", ["platform", "channel_id"])
    with op.batch_alter_table("digest_subscriptions") as b:
        b.add_column(_platform())
        b.alter_column("channel_id", type_=sa.String(255), existing_nullable=False)
        b.alter_column("created_by", type_=sa.String(255), existing_nullable=True)
        b.drop_constraint("uq_digest_subscriptions_key", type_="unique")
        b.create_unique_constraint(
            "uq_digest_subscriptions_key", ["platform", "channel_id", "team_id", "kind"]
        )
    with op.batch_alter_table("action_items") as b:
        b.add_column(_platform())
        b.alter_column("owner", type_=sa.String(255), existing_nullable=False)
        b.alter_column("created_by", type_=sa.String(255), existing_nullable=False)
        b.alter_column("channel_id", type_=sa.String(255), existing_nullable=True)


def downgrade() -> None:
    # Teams rows have no place in the Slack-only schema
    op.execute("DELETE FROM channel_teams WHERE platform <> 'slack'")
    op.execute("DELETE FROM digest_subscriptions WHERE platform <> 'slack'")
    op.execute("DELETE FROM action_items WHERE platform <> 'slack'")
    with op.batch_alter_table("action_items") as b:
        b.drop_column("platform")
        b.alter_column("owner", type_=sa.String(32), existing_nullable=False)
        b.alter_column("created_by", type_=sa.String(32), existing_nullable=False)
        b.alter_column("channel_id", type_=sa.String(32), existing_nullable=True)
    with op.batch_alter_table("digest_subscriptions") as b:
        b.drop_constraint("uq_digest_subscriptions_key", type_="unique")
        b.create_unique_constraint("uq_digest_subscriptions_key", ["channel_id", "team_id", "kind"])
        b.drop_column("platform")
        b.alter_column("channel_id", type_=sa.String(32), existing_nullable=False)
        b.alter_column("created_by", type_=sa.String(32), existing_nullable=True)
    with op.batch_alter_table("channel_teams") as b:
        b.drop_constraint("pk_channel_teams", type_="primary")
        b.create_primary_key("pk_channel_teams", ["channel_id"])
        b.drop_column("platform")
        b.alter_column("channel_id", type_=sa.String(32), existing_nullable=False)
        b.alter_column("set_by", type_=sa.String(32), existing_nullable=True)
