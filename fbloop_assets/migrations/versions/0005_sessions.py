"""Reviewers' sign-in sessions: the SHA-256 of each session token, its reviewer, an absolute expiry.

Revision ID: 0005_sessions
Revises: 0001
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_sessions"
down_revision = "0001"
branch_labels = ("sessions",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reviewer_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("reviewer_id", sa.String(64), nullable=False, index=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("expires_at", sa.String(40), nullable=False, index=True),
        sa.Column("flash", sa.JSON),
    )


def downgrade() -> None:
    op.drop_table("reviewer_sessions")
