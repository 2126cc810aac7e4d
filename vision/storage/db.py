"""The store: database session, migrations, blobs, and the records of users, dogs, clips, shares and reviews.

Every read and write that concerns a dog goes through an access check: an owner
sees only their own dogs; a vet only the dogs shared with them. The store never
analyses: checking an upload, queueing and running its analysis is :mod:`vision.jobs`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, delete, event, select
from sqlalchemy.orm import Session, sessionmaker

import vision.storage.accounts as accounts
from vision.storage.blobs import BlobStore
from vision.storage.models import Clip, Dog, DogShare, LoginSession, Review, User
from vision.storage.text import sanitize

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
        """Register a user (the operator's command); the password is stored as an Argon2 hash.

        Raises
        ------
        ValueError
            An unknown role, a malformed e-mail, a password outside 8-256 characters
            (:func:`vision.storage.accounts.check_password`), or "an account with this e-mail already exists".
        """
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        with self.session() as s:
            user = self._new_user(s, email, name, role, password)
            if user is None:
                raise ValueError("an account with this e-mail already exists")
            return user

    def _new_user(self, s: Session, email: str, name: str, role: str, password: str) -> User | None:
        """Add a user in ``s``; None (after hashing all the same) when the e-mail has an account."""
        from argon2 import PasswordHasher

        email = accounts.check_email(email)
        accounts.check_password(password)
        password_hash = PasswordHasher().hash(password)
        if s.scalar(select(User).where(User.email == email)):
            return None
        user = User(email=email, name=name.strip() or email, role=role, password_hash=password_hash)
        s.add(user)
        s.flush()
        return user

    def sign_up_owner(self, email: str, name: str, password: str) -> None:
        """Create an owner account, telling nobody whether the e-mail already had one.

        An e-mail with an account is left as it is, silently and at the same cost, so the sign-up form
        cannot be used to find out who has an account.

        Raises
        ------
        ValueError
            A malformed e-mail or a password outside 8-256 characters (one line for the user).
        """
        with self.session() as s:
            self._new_user(s, email, name, "owner", password)

    def authenticate(
        self, email: str, password: str, *, address: str | None = None, now: dt.datetime | None = None
    ) -> User | None:
        """The user when the password matches, else None; rate-limited per e-mail and per client ``address``.

        Each failure is counted (:mod:`vision.storage.accounts`); a success clears the e-mail's failures and
        makes the shares of a vet's open invitations live. ``address`` is None for a local connection: then
        only the per-e-mail limit applies.

        Raises
        ------
        TooManyAttempts
            Too many failures for the e-mail or the address in the last 15 minutes: the password is not
            checked ("Too many failed attempts for this account; try again in N minutes.").
        """
        from argon2 import PasswordHasher
        from argon2.exceptions import VerificationError

        now = now or accounts.utcnow()
        key = sanitize(email.strip().lower()) if isinstance(email, str) else ""
        with self.session() as s:
            accounts.refuse_if_locked(s, key, address, now)
            user = s.scalar(select(User).where(User.email == key)) if len(key) <= 254 else None
            ok = False
            if not isinstance(password, str) or len(password) > accounts.MAX_PASSWORD:
                pass  # never hashed: longer than any password can be
            elif user is None:
                PasswordHasher().hash(password)  # same cost whether or not the account exists
            else:
                try:
                    ok = PasswordHasher().verify(user.password_hash, password)
                except VerificationError:
                    ok = False
            if not ok or user is None:
                accounts.record_failure(s, key, address, now)
                return None
            accounts.clear_failures(s, key)
            accounts.accept_open_invitations(s, user, now)
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
        """Replace a user's password (8 to 256 characters) and end every session the user has open."""
        from argon2 import PasswordHasher

        accounts.check_password(password)
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
                    token_sha256=accounts.digest(token),
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
            row = s.scalar(select(LoginSession).where(LoginSession.token_sha256 == accounts.digest(token)))
            if row is None or row.expires_at <= now:
                return None
            return s.get(User, row.user_id)

    def close_session(self, token: str | None) -> None:
        """End a login session (log-out); an unknown token is ignored."""
        if isinstance(token, str) and token:
            with self.session() as s:
                s.execute(delete(LoginSession).where(LoginSession.token_sha256 == accounts.digest(token)))

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

    def _owned(self, s: Session, owner: User, dog_id: int) -> Dog:
        dog = self._can_see(s, owner, dog_id)
        if owner.role != "owner" or dog.owner_id != owner.id:
            raise PermissionError("only the owner can share a dog")
        return dog

    def share_dog(self, owner: User, dog_id: int, vet_email: str, *, now: dt.datetime | None = None) -> str:
        """Invite a vet to see one of the owner's dogs; returns the invitation's secret token (``?invite=TOKEN``).

        The same happens whether or not the e-mail has an account, so the owner learns nothing from it:
        an invitation (14 days, one use) is made, and when a vet has the e-mail the share is live at once.
        An owner's e-mail gets no share, ever. Only the token's SHA-256 is stored.

        Raises
        ------
        PermissionError
            The dog is not this owner's.
        ValueError
            A malformed e-mail.
        """
        email = accounts.check_email(vet_email)
        with self.session() as s:
            self._owned(s, owner, dog_id)
            return accounts.make_invitation(s, email, now or accounts.utcnow(), dog_id=dog_id, invited_by=owner.id)

    def invite_vet(self, email: str, *, now: dt.datetime | None = None) -> str:
        """An operator's invitation of a vet with no dog (``hindsight users invite``); returns its secret token."""
        email = accounts.check_email(email)
        with self.session() as s:
            return accounts.make_invitation(s, email, now or accounts.utcnow())

    def invitation_email(self, token: str | None, *, now: dt.datetime | None = None) -> str | None:
        """The invited e-mail of an open (unused, unexpired) invitation token, else None."""
        with self.session() as s:
            row = accounts.open_invitation(s, token, now or accounts.utcnow())
            return row.email if row else None

    def accept_invitation(self, token: str, name: str, password: str, *, now: dt.datetime | None = None) -> None:
        """Use an invitation: a vet account for the invited e-mail when it has none, and the dog's share goes live.

        When the e-mail already has a vet account the share goes live and the password given is ignored;
        when it has an owner account nothing is shared. The caller is told none of this (no return value).

        Raises
        ------
        ValueError
            The token is not an open invitation (:data:`vision.storage.accounts.INVALID_INVITATION`), or
            the password is outside 8-256 characters.
        """
        now = now or accounts.utcnow()
        accounts.check_password(password)
        with self.session() as s:
            row = accounts.open_invitation(s, token, now)
            if row is None:
                raise ValueError(accounts.INVALID_INVITATION)
            user = self._new_user(s, row.email, name, "vet", password) or s.scalar(
                select(User).where(User.email == row.email)
            )
            if user is not None and user.role == "vet":
                accounts.accept_open_invitations(s, user, now)
            row.used_at = now

    def unshare_dog(self, owner: User, dog_id: int, vet_email: str) -> None:
        """Stop sharing a dog with the vet of ``vet_email`` and withdraw its invitations to this dog.

        The vet no longer sees the dog, its clips or its reviews. Nothing happens for an e-mail the dog
        was not shared with.

        Raises
        ------
        PermissionError
            The dog is not this owner's.
        """
        email = vet_email.strip().lower()
        with self.session() as s:
            self._owned(s, owner, dog_id)
            accounts.unshare(s, dog_id, email)

    def shares_of(self, owner: User, dog_id: int, *, now: dt.datetime | None = None) -> list[accounts.ShareEntry]:
        """Who the owner's dog is shared with or invited to see, by e-mail (:class:`~.accounts.ShareEntry`)."""
        with self.session() as s:
            self._owned(s, owner, dog_id)
            return accounts.shares_of(s, dog_id, now or accounts.utcnow())

    def vets_of(self, dog_id: int) -> list[User]:
        """Vets a dog is shared with (live shares only)."""
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
        """A review of this vet's, while the dog is shared with the vet (PermissionError otherwise)."""
        with self.session() as s:
            return self._own_review(s, vet, review_id)

    def _own_review(self, s: Session, vet: User, review_id: int) -> Review:
        """The vet's review while its dog is still shared with the vet (PermissionError otherwise)."""
        review = s.get(Review, review_id)
        clip = s.get(Clip, review.clip_id) if review is not None and review.vet_id == vet.id else None
        if review is None or clip is None or vet.role != "vet":
            raise PermissionError("no such review")
        try:
            self._can_see(s, vet, clip.dog_id)
        except PermissionError:
            raise PermissionError("no such review") from None
        return review

    def update_review(self, vet: User, review_id: int, status: str, notes: str) -> None:
        """Set a review's status and notes (the vet's own, while the dog is shared with the vet)."""
        if status not in ("pending", "reviewed", "needs_visit", "no_concern"):
            raise ValueError("unknown status")
        with self.session() as s:
            review = self._own_review(s, vet, review_id)
            review.status, review.notes = status, notes

    def comparison_of(self, review: Review) -> dict[str, Any]:
        """The stored comparison behind a review."""
        return json.loads(self.blobs.read_bytes(review.comparison_sha256, "comparison"))
