"""Campaign tuning: the suggestions made and the owners' decisions on them.

Revision ID: 0002_tuning
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_tuning"
down_revision = "0001"
branch_labels = ("tuning",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tuning_suggestions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("campaign_id", sa.String(120), nullable=False, index=True),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("parameter", sa.String(60), nullable=False),
        sa.Column("kpi", sa.String(40), nullable=False),
        sa.Column("baseline", sa.Float, nullable=False),
        sa.Column("expected", sa.Float, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
    )
    op.create_table(
        "tuning_decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "suggestion_id", sa.String(40), sa.ForeignKey("tuning_suggestions.id"), nullable=False, index=True
        ),
        sa.Column("decision", sa.String(10), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tuning_decisions")
    op.drop_table("tuning_suggestions")
