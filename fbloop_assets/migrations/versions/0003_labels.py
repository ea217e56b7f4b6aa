"""The label store: reviewers, append-only label events (labels and retractions), import rejects.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = ("labels",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reviewers",
        sa.Column("reviewer_id", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    )
    op.create_table(
        "label_events",
        sa.Column("event_id", sa.String(120), primary_key=True),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("label_id", sa.String(120), nullable=False),
        sa.Column("reviewer_id", sa.String(120), nullable=False, index=True),
        sa.Column("recommendation_id", sa.String(200), nullable=False, index=True),
        sa.Column("label_value", sa.String(12)),
        sa.Column("confidence", sa.Float),
        sa.Column("comment", sa.Text),
        sa.Column("origin", sa.String(60), nullable=False),
        sa.Column("labeled_at", sa.String(40), nullable=False),
        sa.Column("recorded_at", sa.String(40), nullable=False),
        sa.Column("recorded_day", sa.String(10), nullable=False, index=True),
        # one label event per label id and at most one retraction of it: imports stay idempotent
        sa.UniqueConstraint("kind", "label_id", name="uq_label_events_kind_label"),
    )
    op.create_table(
        "label_rejects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("reject_key", sa.String(120), nullable=False, unique=True),
        sa.Column("file", sa.String(400), nullable=False),
        sa.Column("file_row", sa.Integer),
        sa.Column("reason_code", sa.String(40), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("record", sa.Text),
        sa.Column("recorded_at", sa.String(40), nullable=False),
        sa.Column("recorded_day", sa.String(10), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("label_rejects")
    op.drop_table("label_events")
    op.drop_table("reviewers")
