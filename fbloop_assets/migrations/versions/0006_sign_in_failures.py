"""Failed sign-ins (name tried, client address, time): what the sign-in throttle counts.

Revision ID: 0006_sign_in_failures
Revises: 0001
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_sign_in_failures"
down_revision = "0001"
branch_labels = ("sign_in_failures",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_failures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("failed_at", sa.String(40), nullable=False, index=True),
    )
    op.create_index("ix_sign_in_failures_account", "sign_in_failures", ["account", "failed_at"])
    op.create_index("ix_sign_in_failures_client", "sign_in_failures", ["client", "failed_at"])


def downgrade() -> None:
    op.drop_table("sign_in_failures")
