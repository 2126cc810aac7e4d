"""Text at the database boundary: NUL stripped and lengths capped, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import String, Text, inspect, select

from tests.storage.conftest import pg_schema_url
from vision.storage import Store
from vision.storage.models import Base, Clip, Dog, DogShare, Review, User
from vision.storage.text import TEXT_CAP, clean_values, exact_text, free_text, sanitize


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request, tmp_path) -> Iterator[Store]:
    """A fresh store on SQLite, then on PostgreSQL (skipped with a reason when none is configured)."""
    if request.param == "sqlite":
        store = Store(tmp_path / "data", db_url=f"sqlite:///{tmp_path / 'h.db'}")
        yield store
        store.engine.dispose()
        return
    with pg_schema_url() as url:
        store = Store(tmp_path / "data", db_url=url)
        yield store
        store.engine.dispose()


def test_sanitize_strips_nul_and_unencodable_surrogates():
    assert sanitize("Re\x00x\x00") == "Rex"
    assert sanitize("caf\u00e9 \U0001f415") == "caf\u00e9 \U0001f415"
    assert sanitize("a\ud800b") == "a\ufffdb"
    assert sanitize("") == ""


def test_free_text_is_cut_to_the_column_and_exact_text_refused():
    dog = Dog()
    assert free_text(dog, "name", "x" * 500) == "x" * 120
    assert free_text(dog, "notes", "n" * (TEXT_CAP + 5)) == "n" * TEXT_CAP
    assert free_text(dog, "name", None) is None
    with pytest.raises(TypeError):
        free_text(dog, "name", 5)  # type: ignore[arg-type]
    user = User()
    assert exact_text(user, "email", "a\x00@b.org") == "a@b.org"
    with pytest.raises(ValueError, match="^the e-mail address is longer than 254 characters$"):
        exact_text(user, "email", "a" * 250 + "@b.org")
    with pytest.raises(ValueError, match="the status is longer than 16"):
        Clip(status="s" * 17)


def test_every_text_column_has_a_validator():
    missing = []
    for mapper in Base.registry.mappers:
        checked = set(mapper.validators.keys())
        for col in mapper.columns:
            if isinstance(col.type, (String, Text)) and col.key not in checked:
                missing.append(f"{mapper.class_.__name__}.{col.key}")
    assert missing == []


def test_core_statement_values_are_cleaned_like_attributes():
    vals = clean_values(Clip, {"message": "m\x00" * 300, "error": "e\x00", "progress": 0.5, "status": "done"})
    assert vals == {"message": "m" * 255, "error": "e", "progress": 0.5, "status": "done"}
    with pytest.raises(ValueError, match="the status is longer than 16"):
        clean_values(Clip, {"status": "s" * 20})


def test_validators_run_when_an_attribute_is_set():
    clip = Clip(original_name="walk\x00.mp4")
    assert clip.original_name == "walk.mp4"
    clip.message = "m" * 1000
    assert clip.message == "m" * 255
    clip.error = "boom\x00" * 5000
    assert clip.error == ("boom" * 5000)[:TEXT_CAP]


def test_hostile_text_is_stored_the_same_on_both_databases(any_store):
    store = any_store
    owner = store.create_user("owner@example.org", "Ol\x00ga" + "a" * 300, "owner", "correct horse")
    vet = store.create_user("vet@example.org", "Dr V", "vet", "stethoscope")
    with store.session() as s:  # a NUL in a key is stripped too (the ORM path; Store strips case)
        s.add(User(email="nu\x00l@example.org", name="N", role="owner\x00", password_hash="h"))
    dog = store.create_dog(owner, "Rex\x00" + "x" * 200, "Col\x00lie", notes="lim\x00ps " * 3000)
    with store.session() as s:
        clip = Clip(
            dog_id=dog.id,
            recorded_on=dt.date(2026, 1, 5),
            video_sha256="a" * 64,
            original_name="\x00" + "n" * 400 + ".mp4",
            message="\x00queued",
            error="Traceback\x00" * 2000,
        )
        s.add(clip)
        s.flush()
        s.add(DogShare(dog_id=dog.id, vet_id=vet.id))  # a vet edits reviews of dogs shared with them only
        s.add(Review(clip_id=clip.id, baseline_clip_id=clip.id, vet_id=vet.id, comparison_sha256="b" * 64))
    with store.session() as s:
        review = s.scalars(select(Review)).one()
    store.update_review(vet, review.id, "reviewed", "seen\x00 it " + "z" * 20_000)
    with store.session() as s:  # what the database holds, read back afresh
        u = s.scalars(select(User).where(User.id == owner.id)).one()
        d = s.get(Dog, dog.id)
        c = s.scalars(select(Clip)).one()
        r = s.scalars(select(Review)).one()
        assert d is not None
        stored = (u.name, d.name, d.breed, d.notes, c.original_name, c.message, c.error, r.notes)
        nul = s.scalars(select(User).where(User.name == "N")).one()
        assert (nul.email, nul.role) == ("nul@example.org", "owner")
    assert stored == (
        ("Olga" + "a" * 300)[:120],
        ("Rex" + "x" * 200)[:120],
        "Collie",
        ("limps " * 3000)[:TEXT_CAP],
        ("n" * 400)[:255],
        "queued",
        ("Traceback" * 2000)[:TEXT_CAP],
        ("seen it " + "z" * 20_000)[:TEXT_CAP],
    )
    assert store.authenticate("owner@example.org", "correct horse") is not None
    with pytest.raises(ValueError, match="e-mail address is longer"):
        store.create_user("x" * 260 + "@example.org", "X", "owner", "password1")


def test_the_columns_exist_with_the_lengths_the_validators_use(any_store):
    cols = {c["name"]: c["type"] for c in inspect(any_store.engine).get_columns("dogs")}
    assert getattr(cols["name"], "length", None) == 120
