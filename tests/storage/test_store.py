from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import inspect, select, text

from vision.storage.models import Clip
from vision.synthetic import generate, render_video


def _add(store, user, dog_id, video):
    """A clip row for a video put in the blob store (the checks of an upload are vision.jobs')."""
    with video.open("rb") as fh:
        sha, size = store.blobs.put_stream(fh)
    return store.add_clip(
        user, dog_id, video_sha256=sha, size_bytes=size, original_name=video.name, recorded_on=dt.date(2026, 1, 5)
    )


@pytest.fixture(scope="module")
def small_video(tmp_path_factory):
    clip = generate(duration_s=6, frame_size=(320, 180), body_length_px=96, seed=3)
    p = tmp_path_factory.mktemp("v") / "walk.mp4"
    render_video(clip, str(p))
    return p, clip


def test_migrations_create_schema_and_are_idempotent(store):
    s = store
    tables = set(inspect(s.engine).get_table_names())
    assert {
        "users",
        "dogs",
        "dog_shares",
        "clips",
        "reviews",
        "login_sessions",
        "login_failures",
        "invitations",
        "alembic_version",
    } <= tables
    s.migrate()  # second run is a no-op
    with s.engine.connect() as c:
        assert c.exec_driver_sql("select version_num from alembic_version").scalar() == "0005"
    columns = {c["name"] for c in inspect(s.engine).get_columns("clips")}
    assert {"attempts", "worker_id", "queued_at", "started_at", "finished_at", "recorded_on_known"} <= columns
    assert {c["name"] for c in inspect(s.engine).get_columns("login_sessions")} >= {"token_sha256", "expires_at"}
    # the ORM tables and the migrated schema agree, column for column
    from vision.storage.models import Base

    for table in Base.metadata.sorted_tables:
        assert {c.name for c in table.columns} == {c["name"] for c in inspect(s.engine).get_columns(table.name)}


def test_passwords_are_hashed_and_checked(store, people):
    owner = people[0]
    assert owner.password_hash.startswith("$argon2")
    assert "correct horse" not in owner.password_hash
    assert store.authenticate("owner@example.org", "correct horse").id == owner.id
    assert store.authenticate("owner@example.org", "wrong") is None
    assert store.authenticate("nobody@example.org", "x") is None
    with pytest.raises(ValueError):
        store.create_user("owner@example.org", "dup", "owner", "whatever123")


def test_access_rules(store, people, small_video):
    owner, other, vet, dog = people
    assert [d.name for d in store.dogs_for(owner)] == ["Rex"]
    assert store.dogs_for(other) == [] and store.dogs_for(vet) == []
    with pytest.raises(PermissionError):
        store.get_dog(other, dog.id)
    with pytest.raises(PermissionError):
        store.get_dog(vet, dog.id)
    clip = _add(store, owner, dog.id, small_video[0])
    with pytest.raises(PermissionError):
        _add(store, other, dog.id, small_video[0])
    with pytest.raises(PermissionError):
        store.get_clip(other, clip.id)
    with pytest.raises(PermissionError):
        store.share_dog(other, dog.id, "vet@example.org")
    store.share_dog(owner, dog.id, "vet@example.org")
    assert [d.name for d in store.dogs_for(vet)] == ["Rex"]
    assert store.get_clip(vet, clip.id).id == clip.id
    with pytest.raises(PermissionError):
        store.create_dog(vet, "Not mine")


def test_the_same_video_is_found_per_dog(store, people, small_video):
    owner, other, _, dog = people
    clip = _add(store, owner, dog.id, small_video[0])
    assert store.clip_with_video(owner, dog.id, clip.video_sha256).id == clip.id
    theirs = store.create_dog(other, "Fido")
    assert store.clip_with_video(other, theirs.id, clip.video_sha256) is None
    with pytest.raises(PermissionError):
        store.clip_with_video(other, dog.id, clip.video_sha256)


def test_storage_keeps_records_and_never_runs_jobs(store):
    for name in ("start_analysis", "refresh_stale", "run_analysis"):
        assert not hasattr(store, name)


def test_demo_clips_analyse_and_flag(store, people, small_video, tmp_path):
    from vision.demo import ensure_demo

    info = ensure_demo(store, weeks=6, size=(320, 180))
    owner = store.user_by_email(info["owner"])
    clips = store.clips_for_dog(owner, info["dog_id"])
    assert [c.status for c in clips] == ["done"] * 6
    assert clips[-1].weaker_side == "left"
    vet = store.user_by_email(info["vet"])
    queue = store.review_queue(vet)
    assert len(queue) == 1 and queue[0].clip_id == clips[-1].id
    comparison = store.comparison_of(queue[0])
    assert comparison["flag"] and "hind_asymmetry_pct" in comparison["worse"]
    report = store.report(clips[-1])
    assert json.loads(json.dumps(report))["quality"]["usable"]
    with store.session() as s:
        assert s.scalar(select(Clip).where(Clip.id == clips[0].id)).report_sha256
    ensure_demo(store, weeks=6, size=(320, 180))  # idempotent
    assert len(store.clips_for_dog(owner, info["dog_id"])) == 6


def test_login_sessions_end_on_logout_password_change_and_expiry(store, people):
    owner, _, vet, _ = people
    now = dt.datetime(2026, 1, 1, 12, 0)
    token = store.open_session(owner, 3600, now=now)
    assert store.session_user(token, now=now + dt.timedelta(seconds=1)).id == owner.id
    assert store.session_user(token, now=now + dt.timedelta(seconds=3601)) is None  # expired
    assert store.session_user(token[:-1] + ("A" if token[-1] != "A" else "B")) is None  # altered
    for junk in (None, "", "garbage", "x" * 10_000, "\x00", 5):
        assert store.session_user(junk) is None
    live, other = store.open_session(owner, 3600), store.open_session(vet, 3600)
    store.close_session(live)  # a log-out ends that browser's session only
    assert store.session_user(live) is None and store.session_user(other).id == vet.id
    first, second = store.open_session(owner, 3600), store.open_session(owner, 3600)
    store.set_password(owner, "a brand new password")  # a password change ends all of the user's sessions
    assert store.session_user(first) is None and store.session_user(second) is None
    assert store.authenticate("owner@example.org", "a brand new password").id == owner.id
    assert store.authenticate("owner@example.org", "correct horse") is None
    assert store.session_user(other).id == vet.id
    with store.session() as s:  # only digests are stored, never a usable token
        digests = s.execute(text("select token_sha256 from login_sessions")).scalars().all()
    assert other not in digests and all(len(d) == 64 for d in digests)


def test_a_clip_without_a_recording_date_is_dated_by_its_upload_and_marked(store, people, tmp_path):
    owner, _, _, dog = people
    video = tmp_path / "undated.mp4"
    video.write_bytes(b"not analysed here")
    sha = store.blobs.put_file(video)
    clip = store.add_clip(owner, dog.id, video_sha256=sha, size_bytes=17, original_name="undated.mp4", recorded_on=None)
    assert clip.recorded_on_known is False
    assert clip.recorded_on == dt.datetime.now(dt.UTC).date()
    store.update_clip(owner, clip.id, recorded_on=dt.date(2026, 1, 3))
    again = store.get_clip(owner, clip.id)
    assert again.recorded_on == dt.date(2026, 1, 3) and again.recorded_on_known is True
