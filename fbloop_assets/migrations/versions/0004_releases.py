"""Held-back feedback released by an analyst: which day, which guard, whose rows, who and why.

Revision ID: 0004_releases
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_releases"
down_revision = "0001"
branch_labels = ("releases",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "held_back_releases",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("day", sa.String(10), nullable=False, index=True),
        sa.Column("guard", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(120), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("held_back_releases")
