"""The HTTP suggestion API: service tokens (SHA-256 of each token, its scope) and the slate log.

Revision ID: 0011_service_api
Revises: 0001
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_service_api"
down_revision = "0001"
branch_labels = ("service_api",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("scope", sa.String(20), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(120), nullable=False),
        sa.Column("revoked_at", sa.String(40)),
    )
    op.create_table(
        "slate_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("recommendation_id", sa.String(120), nullable=False, unique=True),
        sa.Column("request_id", sa.String(80), nullable=False, index=True),
        sa.Column("campaign_id", sa.String(120), nullable=False),
        sa.Column("creator_id", sa.String(120), nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("propensity", sa.Float, nullable=False),
        sa.Column("weights_version", sa.String(40), nullable=False),
        sa.Column("served_at", sa.String(40), nullable=False),
        sa.Column("served_day", sa.String(10), nullable=False, index=True),
        sa.Column("client", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("slate_log")
    op.drop_table("service_tokens")
