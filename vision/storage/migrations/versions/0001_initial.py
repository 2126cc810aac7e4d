"""Initial schema: users, dogs, shares, clips, reviews.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the tables."""
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_users_email", "users", ["email"], unique=True)
    op.create_table(
        "dogs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("breed", sa.String(120), nullable=False),
        sa.Column("birth_date", sa.Date, nullable=True),
        sa.Column("weight_kg", sa.Float, nullable=True),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_dogs_owner_id", "dogs", ["owner_id"])
    op.create_table(
        "dog_shares",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dog_id", sa.Integer, sa.ForeignKey("dogs.id"), nullable=False),
        sa.Column("vet_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("dog_id", "vet_id"),
    )
    op.create_index("ix_dog_shares_dog_id", "dog_shares", ["dog_id"])
    op.create_index("ix_dog_shares_vet_id", "dog_shares", ["vet_id"])
    op.create_table(
        "clips",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dog_id", sa.Integer, sa.ForeignKey("dogs.id"), nullable=False),
        sa.Column("video_sha256", sa.String(64), nullable=False),
        sa.Column("original_name", sa.String(255), nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("recorded_on", sa.Date, nullable=False),
        sa.Column("uploaded_at", sa.DateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("message", sa.String(255), nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("worker_pid", sa.Integer, nullable=True),
        sa.Column("heartbeat_at", sa.DateTime, nullable=True),
        sa.Column("report_sha256", sa.String(64), nullable=True),
        sa.Column("overlay_sha256", sa.String(64), nullable=True),
        sa.Column("tracks_sha256", sa.String(64), nullable=True),
        sa.Column("usable", sa.Boolean, nullable=True),
        sa.Column("hind_asymmetry_pct", sa.Float, nullable=True),
        sa.Column("weaker_side", sa.String(8), nullable=True),
        sa.Column("bunny_hop_flag", sa.Boolean, nullable=True),
        sa.Column("wobble_flag", sa.Boolean, nullable=True),
        sa.Column("pose_source", sa.String(32), nullable=False),
    )
    op.create_index("ix_clips_dog_id", "clips", ["dog_id"])
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("clip_id", sa.Integer, sa.ForeignKey("clips.id"), nullable=False),
        sa.Column("baseline_clip_id", sa.Integer, sa.ForeignKey("clips.id"), nullable=False),
        sa.Column("vet_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("comparison_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("clip_id", "vet_id"),
    )
    op.create_index("ix_reviews_clip_id", "reviews", ["clip_id"])
    op.create_index("ix_reviews_vet_id", "reviews", ["vet_id"])


def downgrade() -> None:
    """Drop the tables."""
    for table in ("reviews", "clips", "dog_shares", "dogs", "users"):
        op.drop_table(table)
