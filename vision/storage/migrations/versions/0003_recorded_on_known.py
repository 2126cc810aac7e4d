"""Whether a clip's recording date is known (from the video or its owner) or only its upload date.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the column; existing clips keep the date they were given as known."""
    with op.batch_alter_table("clips") as batch:
        batch.add_column(sa.Column("recorded_on_known", sa.Boolean, nullable=False, server_default=sa.true()))


def downgrade() -> None:
    """Drop it."""
    with op.batch_alter_table("clips") as batch:
        batch.drop_column("recorded_on_known")
