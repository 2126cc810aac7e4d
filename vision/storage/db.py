"""The store: database session, migrations, blobs, and the records of users, dogs, clips, shares and reviews.

Every read and write that concerns a dog goes through an access check: an owner
sees only their own dogs; a vet only the dogs shared with them. The store never
analyses: checking an upload, queueing and running its analysis is :mod:`vision.jobs`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, delete, event, select
from sqlalchemy.orm import Session, sessionmaker

from vision.storage.blobs import BlobStore
from vision.storage.models import Clip, Dog, DogShare, LoginSession, Review, User

#: The largest upload accepted, in bytes.
MAX_UPLOAD_BYTES = 500 * 1024 * 1024
ROLES = ("owner", "vet")


def default_data_dir() -> Path:
    """``HINDSIGHT_DATA_DIR`` or the user's data directory."""
    env = os.environ.get("HINDSIGHT_DATA_DIR")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("hindsight", appauthor=False))


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


class Store:
    """Database plus content-addressed files for one Hindsight installation."""

    def __init__(self, data_dir: str | os.PathLike[str] | None = None, db_url: str | None = None) -> None:
        self.data_dir = Path(data_dir) if data_dir else default_data_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.db_url = db_url or os.environ.get("HINDSIGHT_DB_URL") or f"sqlite:///{self.data_dir / 'hindsight.db'}"
        self.blobs = BlobStore(self.data_dir / "blobs")
        connect_args = {"timeout": 30, "check_same_thread": False} if self.db_url.startswith("sqlite") else {}
        self.engine = create_engine(self.db_url, connect_args=connect_args)
        if self.db_url.startswith("sqlite"):

            @event.listens_for(self.engine, "connect")
            def _pragmas(conn, _record):
                cur = conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()

        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)
        self.migrate()

    # --- infrastructure ---------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        cfg.set_main_option("sqlalchemy.url", self.db_url.replace("%", "%%"))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on error."""
        with self.session_factory() as s, s.begin():
            yield s

    def env(self) -> dict[str, str]:
        """Environment for a worker process that must open this same store."""
        return {**os.environ, "HINDSIGHT_DATA_DIR": str(self.data_dir), "HINDSIGHT_DB_URL": self.db_url}

    # --- accounts ---------------------------------------------------------------------------------

    def create_user(self, email: str, name: str, role: str, password: str) -> User:
        """Register a user; the password is stored as an Argon2 hash."""
        from argon2 import PasswordHasher

        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        email = email.strip().lower()
        if "@" not in email or len(password) < 8:
            raise ValueError("an e-mail address and a password of at least 8 characters are needed")
        with self.session() as s:
            if s.scalar(select(User).where(User.email == email)):
                raise ValueError("an account with this e-mail already exists")
            user = User(
                email=email, name=name.strip() or email, role=role, password_hash=PasswordHasher().hash(password)
            )
            s.add(user)
            s.flush()
            return user

    def authenticate(self, email: str, password: str) -> User | None:
        """The user when the password matches, else None."""
        from argon2 import PasswordHasher
        from argon2.exceptions import VerificationError

        with self.session() as s:
            user = s.scalar(select(User).where(User.email == email.strip().lower()))
            if user is None:
                PasswordHasher().hash(password)  # same cost whether or not the account exists
                return None
            try:
                PasswordHasher().verify(user.password_hash, password)
            except VerificationError:
                return None
            return user

    def get_user(self, user_id: int) -> User | None:
        """A user by id."""
        with self.session() as s:
            return s.get(User, user_id)

    def user_by_email(self, email: str) -> User | None:
        """A user by e-mail."""
        with self.session() as s:
            return s.scalar(select(User).where(User.email == email.strip().lower()))

    def set_password(self, user: User, password: str) -> None:
        """Replace a user's password (at least 8 characters) and end every session the user has open."""
        from argon2 import PasswordHasher

        if len(password) < 8:
            raise ValueError("a password of at least 8 characters is needed")
        with self.session() as s:
            row = s.get(User, user.id)
            if row is None:
                raise LookupError("no such user")
            row.password_hash = PasswordHasher().hash(password)
            s.execute(delete(LoginSession).where(LoginSession.user_id == user.id))

    # --- login sessions ---------------------------------------------------------------------------

    def open_session(self, user: User, ttl_s: float, *, now: dt.datetime | None = None) -> str:
        """Start a login session for ``user`` lasting ``ttl_s`` seconds; returns its secret token.

        Only the token's SHA-256 is stored, so the database alone cannot be used to log in. Sessions
        expired for a day or more are removed on the way.
        """
        now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        token = secrets.token_urlsafe(32)
        with self.session() as s:
            s.execute(delete(LoginSession).where(LoginSession.expires_at < now - dt.timedelta(days=1)))
            s.add(
                LoginSession(
                    token_sha256=_token_digest(token),
                    user_id=user.id,
                    created_at=now,
                    expires_at=now + dt.timedelta(seconds=ttl_s),
                )
            )
        return token

    def session_user(self, token: str | None, *, now: dt.datetime | None = None) -> User | None:
        """The user of an open, unexpired session token, else None (unknown, ended, expired or malformed)."""
        if not isinstance(token, str) or not token or len(token) > 128:
            return None
        now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        with self.session() as s:
            row = s.scalar(select(LoginSession).where(LoginSession.token_sha256 == _token_digest(token)))
            if row is None or row.expires_at <= now:
                return None
            return s.get(User, row.user_id)

    def close_session(self, token: str | None) -> None:
        """End a login session (log-out); an unknown token is ignored."""
        if isinstance(token, str) and token:
            with self.session() as s:
                s.execute(delete(LoginSession).where(LoginSession.token_sha256 == _token_digest(token)))

    # --- dogs -------------------------------------------------------------------------------------

    def create_dog(
        self,
        owner: User,
        name: str,
        breed: str = "",
        birth_date: dt.date | None = None,
        weight_kg: float | None = None,
        notes: str = "",
    ) -> Dog:
        """Add a dog to an owner's list."""
        if owner.role != "owner":
            raise PermissionError("only owners add dogs")
        if not name.strip():
            raise ValueError("the dog needs a name")
        with self.session() as s:
            dog = Dog(
                owner_id=owner.id,
                name=name.strip(),
                breed=breed.strip(),
                birth_date=birth_date,
                weight_kg=weight_kg,
                notes=notes,
            )
            s.add(dog)
            s.flush()
            return dog

    def _can_see(self, s: Session, user: User, dog_id: int) -> Dog:
        dog = s.get(Dog, dog_id)
        if dog is None:
            raise PermissionError("no such dog")
        if user.role == "owner" and dog.owner_id == user.id:
            return dog
        if user.role == "vet" and s.scalar(
            select(DogShare).where(DogShare.dog_id == dog_id, DogShare.vet_id == user.id)
        ):
            return dog
        raise PermissionError("this dog is not yours or not shared with you")

    def dogs_for(self, user: User) -> list[Dog]:
        """Dogs a user may see, by name."""
        with self.session() as s:
            if user.role == "owner":
                q = select(Dog).where(Dog.owner_id == user.id)
            else:
                q = select(Dog).join(DogShare, DogShare.dog_id == Dog.id).where(DogShare.vet_id == user.id)
            return list(s.scalars(q.order_by(Dog.name)))

    def get_dog(self, user: User, dog_id: int) -> Dog:
        """A dog, if the user may see it (PermissionError otherwise)."""
        with self.session() as s:
            return self._can_see(s, user, dog_id)

    def share_dog(self, owner: User, dog_id: int, vet_email: str) -> None:
        """Share one of the owner's dogs with a vet."""
        with self.session() as s:
            dog = self._can_see(s, owner, dog_id)
            if owner.role != "owner" or dog.owner_id != owner.id:
                raise PermissionError("only the owner can share a dog")
            vet = s.scalar(select(User).where(User.email == vet_email.strip().lower(), User.role == "vet"))
            if vet is None:
                raise ValueError("no vet with this e-mail")
            if not s.scalar(select(DogShare).where(DogShare.dog_id == dog_id, DogShare.vet_id == vet.id)):
                s.add(DogShare(dog_id=dog_id, vet_id=vet.id))

    def vets_of(self, dog_id: int) -> list[User]:
        """Vets a dog is shared with."""
        with self.session() as s:
            q = select(User).join(DogShare, DogShare.vet_id == User.id).where(DogShare.dog_id == dog_id)
            return list(s.scalars(q))

    # --- clips ------------------------------------------------------------------------------------

    def add_clip(
        self,
        user: User,
        dog_id: int,
        *,
        video_sha256: str,
        size_bytes: int,
        original_name: str,
        recorded_on: dt.date | None,
        pose_source: str = "model",
    ) -> Clip:
        """Record a clip whose video is already in the blob store (checked by the caller).

        :func:`vision.jobs.store_upload` stores and checks an upload, then calls this. With no
        ``recorded_on`` the clip is dated by its upload (today, UTC) and ``recorded_on_known`` is False.

        Raises
        ------
        PermissionError
            The user may not see the dog.
        """
        with self.session() as s:
            self._can_see(s, user, dog_id)
            clip = Clip(
                dog_id=dog_id,
                video_sha256=video_sha256,
                original_name=original_name[:255],
                size_bytes=size_bytes,
                recorded_on=recorded_on or dt.datetime.now(dt.UTC).date(),
                recorded_on_known=recorded_on is not None,
                pose_source=pose_source,
                message="uploaded",
            )
            s.add(clip)
            s.flush()
            return clip

    def clip_with_video(self, user: User, dog_id: int, video_sha256: str) -> Clip | None:
        """The dog's earliest clip of this very video (same SHA-256), if any."""
        with self.session() as s:
            self._can_see(s, user, dog_id)
            q = select(Clip).where(Clip.dog_id == dog_id, Clip.video_sha256 == video_sha256).order_by(Clip.id)
            return s.scalars(q).first()

    def drop_unreferenced(self, sha: str) -> None:
        """Remove a blob that no clip refers to (an upload refused after it was stored)."""
        with self.session() as s:
            used = s.scalar(select(Clip.id).where(Clip.video_sha256 == sha).limit(1))
        if used is None and self.blobs.exists(sha):
            self.blobs.path(sha).unlink()

    def clips_for_dog(self, user: User, dog_id: int) -> list[Clip]:
        """A dog's clips, oldest first."""
        with self.session() as s:
            self._can_see(s, user, dog_id)
            q = select(Clip).where(Clip.dog_id == dog_id).order_by(Clip.recorded_on, Clip.id)
            return list(s.scalars(q))

    def get_clip(self, user: User, clip_id: int) -> Clip:
        """A clip, if the user may see its dog."""
        with self.session() as s:
            clip = s.get(Clip, clip_id)
            if clip is None:
                raise PermissionError("no such clip")
            self._can_see(s, user, clip.dog_id)
            return clip

    def update_clip(self, user: User, clip_id: int, *, recorded_on: dt.date | None = None) -> None:
        """Edit a clip's recording date (the owner only)."""
        with self.session() as s:
            clip = s.get(Clip, clip_id)
            if clip is None:
                raise PermissionError("no such clip")
            if self._can_see(s, user, clip.dog_id).owner_id != user.id:
                raise PermissionError("only the owner can edit a clip")
            if recorded_on:
                clip.recorded_on = recorded_on
                clip.recorded_on_known = True

    def report(self, clip: Clip) -> dict[str, Any] | None:
        """The analysis report of a finished clip (None before one is recorded), checked against its digest.

        Raises
        ------
        DamagedFileError
            The stored report is missing or altered ("the stored report for this clip is damaged").
        """
        if not clip.report_sha256:
            return None
        return json.loads(self.blobs.read_bytes(clip.report_sha256, "report"))

    # --- comparison and review --------------------------------------------------------------------

    def baseline_for(self, clip: Clip, *, min_days: int = 5) -> Clip | None:
        """The dog's latest analysed, usable clip recorded at least ``min_days`` before this one."""
        with self.session() as s:
            q = (
                select(Clip)
                .where(
                    Clip.dog_id == clip.dog_id,
                    Clip.id != clip.id,
                    Clip.status == "done",
                    Clip.usable.is_(True),
                    Clip.recorded_on <= clip.recorded_on - dt.timedelta(days=min_days),
                )
                .order_by(Clip.recorded_on.desc(), Clip.id.desc())
            )
            return s.scalars(q).first()

    def compare(self, before: Clip, after: Clip) -> dict[str, Any] | None:
        """`vision compare` of two analysed clips."""
        from vision.compare import compare_reports

        rb, ra = self.report(before), self.report(after)
        if rb is None or ra is None:
            return None
        return compare_reports(rb, ra)

    def flag_if_changed(self, clip_id: int) -> Review | None:
        """Compare a new clip with its baseline; queue a review for each vet when it is worse."""
        with self.session() as s:
            clip = s.get(Clip, clip_id)
        if clip is None or clip.status != "done":
            return None
        base = self.baseline_for(clip)
        if base is None:
            return None
        result = self.compare(base, clip)
        if not result or not result["flag"]:
            return None
        sha = self.blobs.put_bytes(json.dumps(result).encode())
        review = None
        with self.session() as s:
            for vet in s.scalars(
                select(User).join(DogShare, DogShare.vet_id == User.id).where(DogShare.dog_id == clip.dog_id)
            ):
                existing = s.scalar(select(Review).where(Review.clip_id == clip.id, Review.vet_id == vet.id))
                if existing is None:
                    review = Review(clip_id=clip.id, baseline_clip_id=base.id, vet_id=vet.id, comparison_sha256=sha)
                    s.add(review)
        return review

    def flagged_clips(self, user: User, dog_id: int) -> list[int]:
        """Ids of a dog's clips whose comparison with their baseline was flagged."""
        with self.session() as s:
            self._can_see(s, user, dog_id)
            q = select(Review.clip_id).join(Clip, Clip.id == Review.clip_id).where(Clip.dog_id == dog_id)
            return sorted(set(s.scalars(q)))

    def review_queue(self, vet: User, include_done: bool = False) -> list[Review]:
        """Reviews for a vet, pending first, newest first."""
        if vet.role != "vet":
            raise PermissionError("only vets have a review queue")
        with self.session() as s:
            q = select(Review).where(Review.vet_id == vet.id)
            if not include_done:
                q = q.where(Review.status == "pending")
            q = q.join(DogShare, (DogShare.vet_id == vet.id)).join(
                Clip, (Clip.id == Review.clip_id) & (Clip.dog_id == DogShare.dog_id)
            )
            return list(s.scalars(q.order_by(Review.created_at.desc())))

    def get_review(self, vet: User, review_id: int) -> Review:
        """A review of this vet's."""
        with self.session() as s:
            review = s.get(Review, review_id)
            if review is None or review.vet_id != vet.id:
                raise PermissionError("no such review")
            return review

    def update_review(self, vet: User, review_id: int, status: str, notes: str) -> None:
        """Set a review's status and notes."""
        if status not in ("pending", "reviewed", "needs_visit", "no_concern"):
            raise ValueError("unknown status")
        with self.session() as s:
            review = s.get(Review, review_id)
            if review is None or review.vet_id != vet.id:
                raise PermissionError("no such review")
            review.status, review.notes = status, notes

    def comparison_of(self, review: Review) -> dict[str, Any]:
        """The stored comparison behind a review."""
        return json.loads(self.blobs.read_bytes(review.comparison_sha256, "comparison"))
