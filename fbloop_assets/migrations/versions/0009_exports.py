"""The export audit: every training export written (or refused), by whom, when, with what.

Revision ID: 0009_exports
Revises: 0001
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_exports"
down_revision = "0001"
branch_labels = ("exports",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("exported_at", sa.String(40), nullable=False, index=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("via", sa.String(200), nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("file", sa.String(1000), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("detail", sa.String(2000), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("exports")
