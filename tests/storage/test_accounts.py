"""Accounts on a real store: the password cap, the login rate limit, neutral sign-up, vet invitations, unsharing."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from sqlalchemy import select, text

from vision.storage.accounts import (
    INVALID_INVITATION,
    MAX_FAILURES_PER_ACCOUNT,
    MAX_FAILURES_PER_ADDRESS,
    PASSWORD_RULE,
    TooManyAttempts,
)
from vision.storage.models import Invitation, Review, User

T0 = dt.datetime(2026, 12, 7, 12, 0)


def _at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def _fail(store, email: str, n: int, *, address: str | None = None, start: float = 0.0) -> None:
    """``n`` wrong passwords for ``email``, one a second from minute ``start``; each must be an ordinary refusal."""
    for i in range(n):
        assert store.authenticate(email, f"wrong password {i}", address=address, now=_at(start + i / 60)) is None


# --- the password cap ---------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 7, 257, 10_000])
def test_a_password_outside_8_to_256_characters_is_refused_everywhere(store, people, length):
    owner = people[0]
    bad = "p" * length
    for call in (
        lambda: store.create_user("new@example.org", "N", "owner", bad),
        lambda: store.sign_up_owner("new2@example.org", "N", bad),
        lambda: store.set_password(owner, bad),
        lambda: store.accept_invitation(store.invite_vet("v2@example.org"), "V", bad),
    ):
        with pytest.raises(ValueError) as err:
            call()
        assert str(err.value) == PASSWORD_RULE
    assert store.user_by_email("new@example.org") is None and store.user_by_email("new2@example.org") is None
    assert store.authenticate("owner@example.org", "correct horse").id == owner.id  # unchanged


def test_the_bounds_themselves_are_accepted_and_a_huge_login_password_is_not_hashed(store):
    for n in (8, 256):
        store.create_user(f"p{n}@example.org", "P", "owner", "x" * n)
        assert store.authenticate(f"p{n}@example.org", "x" * n) is not None
    started = time.perf_counter()
    assert store.authenticate("p8@example.org", "x" * 1_000_000) is None
    assert time.perf_counter() - started < 1.0  # refused by length, not run through Argon2


# --- the login rate limit -----------------------------------------------------------------------------


def test_five_failures_lock_the_account_without_checking_the_password(store, people):
    owner, other, _, _ = people
    _fail(store, "owner@example.org", MAX_FAILURES_PER_ACCOUNT)
    with pytest.raises(TooManyAttempts) as err:  # the right password, refused all the same
        store.authenticate("Owner@Example.org ", "correct horse", now=_at(0.1))
    assert str(err.value) == "Too many failed attempts for this account; try again in 15 minutes."
    with pytest.raises(TooManyAttempts, match="try again in 5 minutes"):
        store.authenticate("owner@example.org", "correct horse", now=_at(10))
    assert store.authenticate("other@example.org", "battery staple", now=_at(1)).id == other.id  # others unaffected
    assert store.authenticate("owner@example.org", "correct horse", now=_at(15.2)).id == owner.id  # window over


def test_an_e_mail_without_an_account_is_locked_the_same_way(store, people):
    _fail(store, "nobody@example.org", MAX_FAILURES_PER_ACCOUNT)
    with pytest.raises(TooManyAttempts) as nobody:
        store.authenticate("nobody@example.org", "anything at all", now=_at(1))
    _fail(store, "owner@example.org", MAX_FAILURES_PER_ACCOUNT)
    with pytest.raises(TooManyAttempts) as somebody:
        store.authenticate("owner@example.org", "correct horse", now=_at(1))
    assert str(nobody.value) == str(somebody.value)  # the refusal tells nothing about the account


def test_a_success_clears_the_accounts_failures(store, people):
    owner = people[0]
    _fail(store, "owner@example.org", MAX_FAILURES_PER_ACCOUNT - 1)
    assert store.authenticate("owner@example.org", "correct horse", now=_at(1)).id == owner.id
    _fail(store, "owner@example.org", MAX_FAILURES_PER_ACCOUNT - 1, start=2)  # 8 failures in the window, 4 since
    assert store.authenticate("owner@example.org", "correct horse", now=_at(3)).id == owner.id
    _fail(store, "owner@example.org", MAX_FAILURES_PER_ACCOUNT, start=4)
    with pytest.raises(TooManyAttempts):
        store.authenticate("owner@example.org", "correct horse", now=_at(5))


def test_twenty_failures_from_one_address_lock_that_address_only(store, people):
    owner = people[0]
    attacker = "203.0.113.9"
    for i in range(MAX_FAILURES_PER_ADDRESS):  # one guess each at 20 e-mails: no account reaches its own limit
        _fail(store, f"guess{i}@example.org", 1, address=attacker, start=i / 10)
    with pytest.raises(TooManyAttempts) as err:
        store.authenticate("owner@example.org", "correct horse", address=attacker, now=_at(3))
    assert str(err.value) == "Too many failed attempts from this address; try again in 12 minutes."  # 1st at 0
    assert store.authenticate("owner@example.org", "correct horse", address="198.51.100.7", now=_at(3)).id == owner.id
    assert store.authenticate("owner@example.org", "correct horse", address=None, now=_at(3)).id == owner.id
    assert store.authenticate("owner@example.org", "correct horse", address=attacker, now=_at(17)).id == owner.id


def test_failures_are_stored_as_digests_and_old_ones_pruned(store, people):
    _fail(store, "owner@example.org", 3, address="203.0.113.9")
    with store.session() as s:
        rows = s.execute(text("select email_sha256, address_sha256 from login_failures")).all()
    assert len(rows) == 3
    dump = json.dumps([list(r) for r in rows])
    assert "owner" not in dump and "203.0.113" not in dump and all(len(r[0]) == 64 == len(r[1]) for r in rows)
    _fail(store, "other@example.org", 1, start=60)  # an hour later: the old rows go
    with store.session() as s:
        assert s.execute(text("select count(*) from login_failures")).scalar() == 1


# --- sign-up ------------------------------------------------------------------------------------------


def test_sign_up_is_the_same_whether_or_not_the_e_mail_has_an_account(store, people):
    _, _, vet, _ = people
    assert store.sign_up_owner("fresh@example.org", "Fresh", "a good password") is None
    assert store.user_by_email("fresh@example.org").role == "owner"
    assert store.sign_up_owner("vet@example.org", "Impostor", "impostor password") is None  # no error, no change
    again = store.user_by_email("vet@example.org")
    assert (again.role, again.name, again.password_hash) == ("vet", "Dr V", vet.password_hash)
    assert store.authenticate("vet@example.org", "impostor password") is None
    with pytest.raises(ValueError, match="e-mail address is needed"):
        store.sign_up_owner("not an address", "X", "a good password")
    with pytest.raises(ValueError, match="already exists"):  # the operator's command keeps its clear error
        store.create_user("vet@example.org", "Dup", "vet", "whatever123")


# --- invitations --------------------------------------------------------------------------------------


def test_an_invitation_makes_the_vet_account_and_the_share_once(store, people):
    owner, _, _, dog = people
    token = store.share_dog(owner, dog.id, "New.Vet@Example.org", now=T0)
    assert store.vets_of(dog.id) == []  # no vet yet
    assert [(e.email, e.state) for e in store.shares_of(owner, dog.id, now=T0)] == [("new.vet@example.org", "invited")]
    assert store.invitation_email(token, now=_at(1)) == "new.vet@example.org"
    store.accept_invitation(token, "Dr <b>New</b>", "vet password 1", now=_at(2))
    vet = store.authenticate("new.vet@example.org", "vet password 1")
    assert vet.role == "vet" and vet.name == "Dr <b>New</b>"  # stored as typed, shown as plain text
    assert [d.id for d in store.dogs_for(vet)] == [dog.id]
    assert [(e.email, e.state) for e in store.shares_of(owner, dog.id, now=_at(3))] == [
        ("new.vet@example.org", "shared")
    ]
    with pytest.raises(ValueError) as err:  # one use
        store.accept_invitation(token, "Again", "another password", now=_at(3))
    assert str(err.value) == INVALID_INVITATION
    assert store.invitation_email(token, now=_at(3)) is None
    with store.session() as s:  # only the token's digest is kept
        assert token not in json.dumps(s.execute(text("select token_sha256 from invitations")).scalars().all())


def test_an_invitation_expires_after_14_days(store, people):
    owner, _, _, dog = people
    token = store.share_dog(owner, dog.id, "late@example.org", now=T0)
    later = T0 + dt.timedelta(days=14, seconds=1)
    assert store.invitation_email(token, now=T0 + dt.timedelta(days=13)) == "late@example.org"
    assert store.invitation_email(token, now=later) is None
    with pytest.raises(ValueError, match="not valid"):
        store.accept_invitation(token, "Late", "late password", now=later)
    assert store.user_by_email("late@example.org") is None
    assert store.shares_of(owner, dog.id, now=later) == []
    for junk in ("", "x" * 10_000, "garbage", "\x00"):
        assert store.invitation_email(junk) is None


def test_sharing_with_a_known_vet_is_live_at_once_and_looks_the_same_to_the_owner(store, people):
    owner, _, vet, dog = people
    known = store.share_dog(owner, dog.id, "vet@example.org", now=T0)
    unknown = store.share_dog(owner, dog.id, "nobody@example.org", now=T0)
    assert isinstance(known, str) and isinstance(unknown, str) and known != unknown
    assert [d.id for d in store.dogs_for(vet)] == [dog.id]  # live at once
    entries = store.shares_of(owner, dog.id, now=T0)
    assert [(e.email, e.state) for e in entries] == [("nobody@example.org", "invited"), ("vet@example.org", "invited")]
    store.authenticate("vet@example.org", "stethoscope", now=_at(1))  # the vet logs in: the invitation is used
    states = {e.email: e.state for e in store.shares_of(owner, dog.id, now=_at(2))}
    assert states == {"nobody@example.org": "invited", "vet@example.org": "shared"}
    with pytest.raises(ValueError, match="not valid"):
        store.accept_invitation(known, "Someone", "their password", now=_at(2))
    assert store.authenticate("vet@example.org", "stethoscope") is not None  # the link changed nothing


def test_an_invitation_to_an_owners_e_mail_shares_nothing(store, people):
    owner, other, _, dog = people
    token = store.share_dog(owner, dog.id, "other@example.org", now=T0)
    assert store.dogs_for(other) == []
    store.accept_invitation(token, "Otto the vet", "otto vet password", now=_at(1))  # no error: neutral
    again = store.user_by_email("other@example.org")
    assert (again.role, again.name, again.password_hash) == ("owner", "Otto", other.password_hash)
    assert store.dogs_for(again) == [] and store.vets_of(dog.id) == []
    with pytest.raises(PermissionError):
        store.get_dog(again, dog.id)
    with store.session() as s:
        assert s.scalar(select(Invitation.used_at).where(Invitation.email == "other@example.org")) is not None


def test_nobody_makes_themselves_a_vet_or_shares_a_dog_not_theirs(store, people):
    owner, other, vet, dog = people
    with pytest.raises(PermissionError):
        store.share_dog(other, dog.id, "friend@example.org")
    with pytest.raises(PermissionError):
        store.share_dog(vet, dog.id, "friend@example.org")
    with pytest.raises(PermissionError):
        store.unshare_dog(other, dog.id, "vet@example.org")
    with pytest.raises(ValueError, match="e-mail address is needed"):
        store.share_dog(owner, dog.id, "no at sign")
    store.sign_up_owner("wannabe@example.org", "Wannabe", "a good password")
    assert store.user_by_email("wannabe@example.org").role == "owner"
    token = store.invite_vet("operator.vet@example.org", now=T0)  # the operator's invitation, no dog
    store.accept_invitation(token, "Dr Op", "operator vet pw", now=_at(1))
    made = store.user_by_email("operator.vet@example.org")
    assert made.role == "vet" and store.dogs_for(made) == []


# --- unsharing ----------------------------------------------------------------------------------------


def _clip_and_review(store, owner, vet, dog):
    sha = store.blobs.put_bytes(b"a video, not analysed here")
    clip = store.add_clip(owner, dog.id, video_sha256=sha, size_bytes=26, original_name="w.mp4", recorded_on=None)
    comparison = store.blobs.put_bytes(json.dumps({"flag": True}).encode())
    with store.session() as s:
        review = Review(clip_id=clip.id, baseline_clip_id=clip.id, vet_id=vet.id, comparison_sha256=comparison)
        s.add(review)
        s.flush()
        return clip, review.id


def test_after_unsharing_the_vet_sees_no_dog_clip_or_review(store, people):
    owner, _, vet, dog = people
    store.share_dog(owner, dog.id, "vet@example.org")
    clip, review_id = _clip_and_review(store, owner, vet, dog)
    assert store.get_clip(vet, clip.id).id == clip.id and [r.id for r in store.review_queue(vet)] == [review_id]
    store.update_review(vet, review_id, "reviewed", "seen")
    store.unshare_dog(owner, dog.id, " VET@example.org ")
    assert store.dogs_for(vet) == [] and store.vets_of(dog.id) == [] and store.shares_of(owner, dog.id) == []
    for call in (
        lambda: store.get_dog(vet, dog.id),
        lambda: store.get_clip(vet, clip.id),
        lambda: store.clips_for_dog(vet, dog.id),
        lambda: store.flagged_clips(vet, dog.id),
        lambda: store.get_review(vet, review_id),
        lambda: store.update_review(vet, review_id, "no_concern", "changed after revocation"),
    ):
        with pytest.raises(PermissionError):
            call()
    assert store.review_queue(vet) == [] and store.review_queue(vet, include_done=True) == []
    with store.session() as s:  # the vet's notes are kept, only hidden
        assert s.scalar(select(Review.notes).where(Review.id == review_id)) == "seen"
    store.share_dog(owner, dog.id, "vet@example.org")  # sharing again shows them again
    assert store.get_review(vet, review_id).notes == "seen"


def test_stop_sharing_withdraws_a_pending_invitation(store, people):
    owner, _, _, dog = people
    token = store.share_dog(owner, dog.id, "pending@example.org", now=T0)
    store.unshare_dog(owner, dog.id, "pending@example.org")
    assert store.shares_of(owner, dog.id, now=T0) == []
    with pytest.raises(ValueError, match="not valid"):
        store.accept_invitation(token, "Pending", "pending password", now=_at(1))
    assert store.user_by_email("pending@example.org") is None
    store.unshare_dog(owner, dog.id, "never-invited@example.org")  # nothing to stop: no error, nothing told
    with store.session() as s:
        assert s.scalars(select(User).where(User.role == "vet")).all()[0].email == "vet@example.org"
