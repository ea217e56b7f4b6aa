"""Erasures and consent withdrawals: an append-only record per subject, by keyed pseudonym only.

The rows are also the suppression list ingestion applies. Triggers refuse UPDATE and DELETE, so
the record stays append-only whoever holds a connection.

Revision ID: 0010_erasures
Revises: 0001
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_erasures"
down_revision = "0001"
branch_labels = ("erasures",)
depends_on = None

_PG_FUNCTION = """
CREATE FUNCTION subject_erasures_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'subject_erasures is append-only';
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "subject_erasures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("pseudonym", sa.String(64), nullable=False, index=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("recorded_at", sa.String(40), nullable=False),
        sa.Column("reason", sa.String(2000), nullable=False),
        sa.Column("touched", sa.JSON, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER subject_erasures_append_only BEFORE UPDATE OR DELETE ON subject_erasures"
            " FOR EACH ROW EXECUTE FUNCTION subject_erasures_append_only()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER subject_erasures_no_{event.lower()} BEFORE {event} ON subject_erasures"
                " BEGIN SELECT RAISE(ABORT, 'subject_erasures is append-only'); END"
            )


def downgrade() -> None:
    op.drop_table("subject_erasures")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS subject_erasures_append_only()")
