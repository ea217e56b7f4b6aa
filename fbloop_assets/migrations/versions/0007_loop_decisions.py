"""The loop's decisions: one per loop day and deciding stage, replayed when the day runs again.

Revision ID: 0007_loop_decisions
Revises: 0001
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_loop_decisions"
down_revision = "0001"
branch_labels = ("loop_decisions",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loop_decisions",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("stage", sa.String(40), primary_key=True),
        sa.Column("decided_at", sa.String(40), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("candidate", sa.String(40)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("before", sa.JSON, nullable=False),
        sa.Column("after", sa.JSON, nullable=False),
        sa.Column("moves", sa.JSON, nullable=False),
        sa.Column("checks", sa.JSON, nullable=False),
        sa.Column("review", sa.JSON),
        sa.Column("notes", sa.JSON, nullable=False),
        sa.Column("history_upto", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("loop_decisions")
