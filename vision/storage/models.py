"""ORM tables."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Date, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint, true
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from vision.storage.text import exact_text, free_text


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    """Declarative base of every table."""


class User(Base):
    """An owner or a vet (or physiotherapist) who logs in."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16))  # "owner" or "vet"
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)

    @validates("name")
    def _free_text(self, key: str, value: str | None) -> str | None:
        return free_text(self, key, value)

    @validates("email", "role", "password_hash")
    def _exact_text(self, key: str, value: str | None) -> str | None:
        return exact_text(self, key, value)


class LoginSession(Base):
    """A logged-in browser: the SHA-256 of its random token (the token itself is never stored) and its expiry.

    Logging out deletes the row, and so does a password change for all of the user's rows, so a copied
    or left-behind cookie stops working at once, on every dashboard host.
    """

    __tablename__ = "login_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)

    @validates("token_sha256")
    def _exact_text(self, key: str, value: str | None) -> str | None:
        return exact_text(self, key, value)


class LoginFailure(Base):
    """A failed login: the SHA-256 of the e-mail tried and of the client's address, never either in clear.

    Counted by :mod:`vision.storage.accounts` for the login rate limit; rows older than its window are pruned.
    """

    __tablename__ = "login_failures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email_sha256: Mapped[str] = mapped_column(String(64), index=True)
    address_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    failed_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)

    @validates("email_sha256", "address_sha256")
    def _exact_text(self, key: str, value: str | None) -> str | None:
        return exact_text(self, key, value)


class Invitation(Base):
    """A vet invitation: the SHA-256 of its random token, the invited e-mail, the dog it shares (if any).

    One use (``used_at``), and it expires. Made by the owner sharing a dog or by an operator (no dog).
    """

    __tablename__ = "invitations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    dog_id: Mapped[int | None] = mapped_column(ForeignKey("dogs.id", ondelete="CASCADE"), nullable=True, index=True)
    invited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)

    @validates("token_sha256", "email")
    def _exact_text(self, key: str, value: str | None) -> str | None:
        return exact_text(self, key, value)


class Dog(Base):
    """A dog and its owner."""

    __tablename__ = "dogs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    breed: Mapped[str] = mapped_column(String(120), default="")
    birth_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    weight_kg: Mapped[float | None] = mapped_column(Float, nullable=True)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    clips: Mapped[list[Clip]] = relationship(back_populates="dog", order_by="Clip.recorded_on")

    @validates("name", "breed", "notes")
    def _free_text(self, key: str, value: str | None) -> str | None:
        return free_text(self, key, value)


class DogShare(Base):
    """An owner shares a dog with a vet."""

    __tablename__ = "dog_shares"
    __table_args__ = (UniqueConstraint("dog_id", "vet_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dog_id: Mapped[int] = mapped_column(ForeignKey("dogs.id"), index=True)
    vet_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class Clip(Base):
    """An uploaded video and the state of its analysis.

    Files (video, report, overlay, tracks) live in the content-addressed blob store,
    referenced by SHA-256; the uploaded file name is kept only as metadata.
    """

    __tablename__ = "clips"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dog_id: Mapped[int] = mapped_column(ForeignKey("dogs.id"), index=True)
    video_sha256: Mapped[str] = mapped_column(String(64))
    original_name: Mapped[str] = mapped_column(String(255), default="")
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    recorded_on: Mapped[dt.date] = mapped_column(Date)  # the upload's date when recorded_on_known is False
    #: False when neither the video nor its owner gave a recording date: ``recorded_on`` is then the upload date.
    recorded_on_known: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    uploaded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    status: Mapped[str] = mapped_column(
        String(16), default="uploaded"
    )  # uploaded queued running done failed interrupted
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(String(255), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    worker_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    report_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    overlay_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    tracks_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    usable: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    hind_asymmetry_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    weaker_side: Mapped[str | None] = mapped_column(String(8), nullable=True)
    bunny_hop_flag: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    wobble_flag: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    pose_source: Mapped[str] = mapped_column(String(32), default="model")  # "model" or "rendered" (demo clips)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # analysis runs started (vision.jobs)
    worker_id: Mapped[str | None] = mapped_column(String(160), nullable=True)  # "host:pid:token" holding the job
    queued_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)  # UTC, database clock
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)  # UTC, database clock
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)  # UTC, database clock
    dog: Mapped[Dog] = relationship(back_populates="clips")

    @validates("original_name", "message", "error")
    def _free_text(self, key: str, value: str | None) -> str | None:
        return free_text(self, key, value)

    @validates(
        "video_sha256",
        "status",
        "report_sha256",
        "overlay_sha256",
        "tracks_sha256",
        "weaker_side",
        "pose_source",
        "worker_id",
    )
    def _exact_text(self, key: str, value: str | None) -> str | None:
        return exact_text(self, key, value)


class Review(Base):
    """A flagged change waiting for (or given) a vet's review."""

    __tablename__ = "reviews"
    __table_args__ = (UniqueConstraint("clip_id", "vet_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clip_id: Mapped[int] = mapped_column(ForeignKey("clips.id"), index=True)
    baseline_clip_id: Mapped[int] = mapped_column(ForeignKey("clips.id"))
    vet_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending reviewed needs_visit no_concern
    notes: Mapped[str] = mapped_column(Text, default="")
    comparison_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, onupdate=_now)

    @validates("notes")
    def _free_text(self, key: str, value: str | None) -> str | None:
        return free_text(self, key, value)

    @validates("status", "comparison_sha256")
    def _exact_text(self, key: str, value: str | None) -> str | None:
        return exact_text(self, key, value)
