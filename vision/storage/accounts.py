"""Account rules: the password length, the login rate limit, vet invitations and the owner's list of shares.

The functions here run inside one of the store's transactions (a SQLAlchemy ``Session``) and are called
by :class:`vision.storage.Store`, the facade the pages and the command line use. Nothing here tells a
caller whether an e-mail has an account: the login limit counts e-mails that have none, and an
invitation is made whether or not a vet (or anyone) has the invited e-mail.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
import secrets
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from vision.storage.models import DogShare, Invitation, LoginFailure, User

MIN_PASSWORD, MAX_PASSWORD = 8, 256
PASSWORD_RULE = f"a password needs at least {MIN_PASSWORD} and at most {MAX_PASSWORD} characters"
#: Failed logins are counted over this window; older ones are pruned.
FAILURE_WINDOW = dt.timedelta(minutes=15)
#: Failed logins in the window after which an e-mail, or a client address, is refused.
MAX_FAILURES_PER_ACCOUNT, MAX_FAILURES_PER_ADDRESS = 5, 20
#: How long an invitation link stays valid.
INVITATION_TTL = dt.timedelta(days=14)
INVALID_INVITATION = "This invitation link is not valid: it has expired, was used or was withdrawn."


class TooManyAttempts(PermissionError):
    """A login refused (its password unchecked) after too many failures; the message is one line for the user.

    Attributes
    ----------
    retry_after_s : float
        Seconds until an attempt is accepted again.
    """

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclasses.dataclass(frozen=True)
class ShareEntry:
    """One row of an owner's list of who a dog is shared with.

    ``state`` is ``"invited"`` while an invitation to ``email`` is open (whether or not a vet has that
    e-mail, so the list never tells the owner which e-mails have accounts), else ``"shared"``.
    """

    email: str
    state: str
    valid_until: dt.datetime | None


def utcnow() -> dt.datetime:
    """Now, UTC, naive (as the database stores it)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def digest(text: str) -> str:
    """Hex SHA-256 of ``text`` (UTF-8; unencodable characters replaced)."""
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def check_password(password: str) -> None:
    """Refuse a password shorter than :data:`MIN_PASSWORD` or longer than :data:`MAX_PASSWORD` characters.

    Raises
    ------
    ValueError
        With :data:`PASSWORD_RULE`.
    """
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValueError(PASSWORD_RULE)


def check_email(email: str) -> str:
    """The e-mail address trimmed and lower-cased.

    Raises
    ------
    ValueError
        Not an address ("an e-mail address is needed, like name@example.org") or longer than 254 characters.
    """
    email = email.strip().lower() if isinstance(email, str) else ""
    local, _, domain = email.partition("@")
    if not local or not domain or any(c.isspace() for c in email):
        raise ValueError("an e-mail address is needed, like name@example.org")
    if len(email) > 254:
        raise ValueError("the e-mail address is longer than 254 characters")
    return email


# --- login rate limit --------------------------------------------------------------------------------


def _wait_minutes(times: list[dt.datetime], limit: int, now: dt.datetime) -> tuple[int, float] | None:
    """Minutes (rounded up) and seconds until fewer than ``limit`` of ``times`` fall in the window, or None."""
    if len(times) < limit:
        return None
    times = sorted(times)
    free_at = times[len(times) - limit] + FAILURE_WINDOW
    seconds = max((free_at - now).total_seconds(), 1.0)
    return max(1, math.ceil(seconds / 60)), seconds


def refuse_if_locked(s: Session, email: str, address: str | None, now: dt.datetime) -> None:
    """Raise :class:`TooManyAttempts` when ``email``, or ``address``, has too many failures in the window.

    The e-mail is counted whether or not it has an account, so the refusal tells nothing about it.
    """
    since = now - FAILURE_WINDOW
    checks: list[tuple[Any, str, int, str]] = [
        (LoginFailure.email_sha256, email, MAX_FAILURES_PER_ACCOUNT, "for this account")
    ]
    if address:
        checks.append((LoginFailure.address_sha256, address, MAX_FAILURES_PER_ADDRESS, "from this address"))
    for column, value, limit, where in checks:
        failed = select(LoginFailure.failed_at).where(column == digest(value), LoginFailure.failed_at > since)
        wait = _wait_minutes(list(s.scalars(failed)), limit, now)
        if wait:
            raise TooManyAttempts(f"Too many failed attempts {where}; try again in {wait[0]} minutes.", wait[1])


def record_failure(s: Session, email: str, address: str | None, now: dt.datetime) -> None:
    """Count a failed login of ``email`` from ``address`` (both stored as SHA-256); prune failures out of the window."""
    s.execute(delete(LoginFailure).where(LoginFailure.failed_at <= now - FAILURE_WINDOW))
    s.add(LoginFailure(email_sha256=digest(email), address_sha256=digest(address) if address else None, failed_at=now))


def clear_failures(s: Session, email: str) -> None:
    """Forget the failed logins of ``email`` (after a successful login)."""
    s.execute(delete(LoginFailure).where(LoginFailure.email_sha256 == digest(email)))


def failure_count(s: Session) -> int:
    """Rows in the failure table (for checks and tests)."""
    return int(s.scalar(select(func.count()).select_from(LoginFailure)) or 0)


# --- invitations -------------------------------------------------------------------------------------


def make_invitation(
    s: Session, email: str, now: dt.datetime, *, dog_id: int | None = None, invited_by: int | None = None
) -> str:
    """Record an invitation of ``email`` (to see ``dog_id``, if given) and return its secret token.

    Only the token's SHA-256 is stored. When a vet already has this e-mail the dog's share is live at
    once. Invitations expired for 30 days or more are removed on the way.
    """
    s.execute(delete(Invitation).where(Invitation.expires_at < now - dt.timedelta(days=30)))
    token = secrets.token_urlsafe(32)
    s.add(
        Invitation(
            token_sha256=digest(token),
            email=email,
            dog_id=dog_id,
            invited_by=invited_by,
            created_at=now,
            expires_at=now + INVITATION_TTL,
        )
    )
    vet = s.scalar(select(User).where(User.email == email, User.role == "vet"))
    if vet is not None and dog_id is not None:
        share(s, dog_id, vet.id)
    return token


def open_invitation(s: Session, token: str | None, now: dt.datetime) -> Invitation | None:
    """The unused, unexpired invitation of ``token``, else None (unknown, used, withdrawn, expired or malformed)."""
    if not isinstance(token, str) or not token or len(token) > 128:
        return None
    row = s.scalar(select(Invitation).where(Invitation.token_sha256 == digest(token)))
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    return row


def share(s: Session, dog_id: int, vet_id: int) -> None:
    """Make a dog's share with a vet live (nothing when it already is)."""
    if not s.scalar(select(DogShare).where(DogShare.dog_id == dog_id, DogShare.vet_id == vet_id)):
        s.add(DogShare(dog_id=dog_id, vet_id=vet_id))


def accept_open_invitations(s: Session, vet: User, now: dt.datetime) -> None:
    """Use every open invitation to the vet's e-mail: each invited dog's share becomes live."""
    if vet.role != "vet":
        return
    q = select(Invitation).where(
        Invitation.email == vet.email, Invitation.used_at.is_(None), Invitation.expires_at > now
    )
    for row in s.scalars(q):
        if row.dog_id is not None:
            share(s, row.dog_id, vet.id)
        row.used_at = now


def shares_of(s: Session, dog_id: int, now: dt.datetime) -> list[ShareEntry]:
    """Who a dog is shared with or whose invitation is open, one row per e-mail, by e-mail."""
    rows: dict[str, ShareEntry] = {}
    vets = s.scalars(select(User).join(DogShare, DogShare.vet_id == User.id).where(DogShare.dog_id == dog_id))
    for vet in vets:
        rows[vet.email] = ShareEntry(vet.email, "shared", None)
    open_rows = s.scalars(
        select(Invitation).where(Invitation.dog_id == dog_id, Invitation.used_at.is_(None), Invitation.expires_at > now)
    )
    for inv in open_rows:
        current = rows.get(inv.email)
        until = max(inv.expires_at, current.valid_until or inv.expires_at) if current else inv.expires_at
        rows[inv.email] = ShareEntry(inv.email, "invited", until)
    return [rows[k] for k in sorted(rows)]


def unshare(s: Session, dog_id: int, email: str) -> None:
    """End the dog's share with the vet of ``email`` and withdraw every invitation of ``email`` to this dog."""
    vet = s.scalar(select(User).where(User.email == email, User.role == "vet"))
    if vet is not None:
        s.execute(delete(DogShare).where(DogShare.dog_id == dog_id, DogShare.vet_id == vet.id))
    s.execute(delete(Invitation).where(Invitation.dog_id == dog_id, Invitation.email == email))
