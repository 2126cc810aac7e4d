"""Job columns on clips: attempts, the worker holding the job, and when it was queued, started and finished.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the columns (existing clips: no attempts, no worker) and an index on the status."""
    with op.batch_alter_table("clips") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("worker_id", sa.String(160), nullable=True))
        batch.add_column(sa.Column("queued_at", sa.DateTime, nullable=True))
        batch.add_column(sa.Column("started_at", sa.DateTime, nullable=True))
        batch.add_column(sa.Column("finished_at", sa.DateTime, nullable=True))
    op.create_index("ix_clips_status", "clips", ["status"])


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_clips_status", table_name="clips")
    with op.batch_alter_table("clips") as batch:
        for name in ("finished_at", "started_at", "queued_at", "worker_id", "attempts"):
            batch.drop_column(name)
