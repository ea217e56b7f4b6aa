"""The weights registry: immutable versions, their evaluations, and the alias history.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "weights_versions",
        sa.Column("version", sa.String(40), primary_key=True),
        sa.Column("weights", sa.JSON, nullable=False),
        sa.Column("features", sa.JSON, nullable=False),
        sa.Column("parent", sa.String(40)),
        sa.Column("dataset_version", sa.String(80)),
        sa.Column("code_version", sa.String(40), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("fit", sa.JSON, nullable=False),
    )
    op.create_table(
        "weights_evaluations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("version", sa.String(40), nullable=False, index=True),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("production", sa.String(40), nullable=False),
        sa.Column("dataset_version", sa.String(80)),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("checks", sa.JSON, nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
    )
    op.create_table(
        "alias_moves",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alias", sa.String(20), nullable=False, index=True),
        sa.Column("day", sa.String(10)),
        sa.Column("effective_day", sa.String(10), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("from_version", sa.String(40)),
        sa.Column("to_version", sa.String(40)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("forced", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("evidence", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("alias_moves")
    op.drop_table("weights_evaluations")
    op.drop_table("weights_versions")
