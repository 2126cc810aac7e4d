"""Failed logins for the rate limit, and vet invitations.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create both tables (empty: no failures or invitations carry over)."""
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email_sha256", sa.String(64), nullable=False),
        sa.Column("address_sha256", sa.String(64), nullable=True),
        sa.Column("failed_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_login_failures_email_sha256", "login_failures", ["email_sha256"])
    op.create_index("ix_login_failures_address_sha256", "login_failures", ["address_sha256"])
    op.create_index("ix_login_failures_failed_at", "login_failures", ["failed_at"])
    op.create_table(
        "invitations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("dog_id", sa.Integer, sa.ForeignKey("dogs.id", ondelete="CASCADE"), nullable=True),
        sa.Column("invited_by", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("used_at", sa.DateTime, nullable=True),
    )
    op.create_index("ix_invitations_token_sha256", "invitations", ["token_sha256"], unique=True)
    op.create_index("ix_invitations_email", "invitations", ["email"])
    op.create_index("ix_invitations_dog_id", "invitations", ["dog_id"])


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_invitations_dog_id", table_name="invitations")
    op.drop_index("ix_invitations_email", table_name="invitations")
    op.drop_index("ix_invitations_token_sha256", table_name="invitations")
    op.drop_table("invitations")
    op.drop_index("ix_login_failures_failed_at", table_name="login_failures")
    op.drop_index("ix_login_failures_address_sha256", table_name="login_failures")
    op.drop_index("ix_login_failures_email_sha256", table_name="login_failures")
    op.drop_table("login_failures")
