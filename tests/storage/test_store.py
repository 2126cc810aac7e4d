from __future__ import annotations

import datetime as dt
import io
import json
import os
import signal
import time

import numpy as np
import pytest
from sqlalchemy import inspect, select

from vision.errors import HindsightInputError
from vision.storage import Store
from vision.storage.models import Clip
from vision.synthetic import generate, render_video
from vision.video import write_video


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "data")


@pytest.fixture
def people(store):
    owner = store.create_user("Owner@Example.org", "Olga", "owner", "correct horse")
    other = store.create_user("other@example.org", "Otto", "owner", "battery staple")
    vet = store.create_user("vet@example.org", "Dr V", "vet", "stethoscope")
    dog = store.create_dog(owner, "Rex", "Collie")
    return owner, other, vet, dog


@pytest.fixture(scope="module")
def small_video(tmp_path_factory):
    clip = generate(duration_s=6, frame_size=(320, 180), body_length_px=96, seed=3)
    p = tmp_path_factory.mktemp("v") / "walk.mp4"
    render_video(clip, str(p))
    return p, clip


def test_migrations_create_schema_and_are_idempotent(tmp_path):
    s = Store(tmp_path / "d")
    tables = set(inspect(s.engine).get_table_names())
    assert {"users", "dogs", "dog_shares", "clips", "reviews", "alembic_version"} <= tables
    s.migrate()  # second run is a no-op
    with s.engine.connect() as c:
        assert c.exec_driver_sql("select version_num from alembic_version").scalar() == "0001"


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
    with small_video[0].open("rb") as fh:
        clip = store.add_clip(owner, dog.id, fh, "walk.mp4")
    with pytest.raises(PermissionError):
        store.get_clip(other, clip.id)
    with pytest.raises(PermissionError):
        store.share_dog(other, dog.id, "vet@example.org")
    store.share_dog(owner, dog.id, "vet@example.org")
    assert [d.name for d in store.dogs_for(vet)] == ["Rex"]
    assert store.get_clip(vet, clip.id).id == clip.id
    with pytest.raises(PermissionError):
        store.create_dog(vet, "Not mine")


def test_upload_is_content_addressed_and_name_never_a_path(store, people, small_video):
    owner, _, _, dog = people
    hostile = "../../etc/passwd; rm -rf ~.mp4"
    with small_video[0].open("rb") as fh:
        clip = store.add_clip(owner, dog.id, fh, hostile)
    path = store.blobs.path(clip.video_sha256)
    assert path.is_file() and path.read_bytes() == small_video[0].read_bytes()
    assert clip.original_name == hostile
    assert all(".." not in p.name and "passwd" not in p.name for p in store.data_dir.rglob("*"))


@pytest.mark.parametrize("content,msg", [(b"", "empty"), (b"plain text, not a video", "not a readable video")])
def test_bad_uploads_leave_nothing_behind(store, people, content, msg):
    owner, _, _, dog = people
    before = sorted(p for p in store.blobs.root.rglob("*") if p.is_file())
    with pytest.raises(HindsightInputError, match=msg):
        store.add_clip(owner, dog.id, io.BytesIO(content), "x.mp4")
    assert sorted(p for p in store.blobs.root.rglob("*") if p.is_file()) == before
    assert store.clips_for_dog(owner, dog.id) == []


def test_oversized_and_too_short_uploads(store, people, tmp_path):
    owner, _, _, dog = people
    with pytest.raises(HindsightInputError, match="larger than"):
        store.add_clip(owner, dog.id, io.BytesIO(b"x" * (3 << 20)), "big.mp4", max_bytes=2 << 20)
    short = write_video(tmp_path / "s.mp4", [np.zeros((32, 32, 3), np.uint8)] * 5, 30)
    with short.open("rb") as fh, pytest.raises(HindsightInputError, match="too short"):
        store.add_clip(owner, dog.id, fh, "s.mp4")
    assert not [p for p in store.blobs.root.rglob("*") if p.is_file()]


def test_background_analysis_runs_in_a_worker_process(store, people, small_video):
    owner, _, _, dog = people
    with small_video[0].open("rb") as fh:
        clip = store.add_clip(owner, dog.id, fh, "walk.mp4", dt.date(2026, 1, 5))
    # no keypoint model is needed to exercise the job machinery: a missing/unknown dog fails cleanly
    os.environ["HINDSIGHT_MODEL"] = str(store.data_dir / "missing.onnx")
    try:
        store.start_analysis(owner, clip.id, wait=True)
    finally:
        del os.environ["HINDSIGHT_MODEL"]
    done = store.get_clip(owner, clip.id)
    assert done.status == "failed" and "model" in done.error
    assert store.blobs.exists(done.video_sha256)  # the upload is kept for a retry


def test_interrupted_job_is_detected_and_upload_kept(store, people, small_video):
    owner, _, _, dog = people
    with small_video[0].open("rb") as fh:
        clip = store.add_clip(owner, dog.id, fh, "walk.mp4")
    with store.session() as s:
        c = s.get(Clip, clip.id)
        c.status, c.worker_pid = "running", 2**22 + 12345  # a process that does not exist
    assert store.refresh_stale() == 1
    c = store.get_clip(owner, clip.id)
    assert c.status == "interrupted" and store.blobs.exists(c.video_sha256)


def test_killed_worker_leaves_no_half_results(store, people, small_video):
    owner, _, _, dog = people
    with small_video[0].open("rb") as fh:
        clip = store.add_clip(owner, dog.id, fh, "walk.mp4")
    store.start_analysis(owner, clip.id)
    pid = store.get_clip(owner, clip.id).worker_pid
    time.sleep(0.3)
    try:
        os.killpg(os.getpgid(pid), signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
    store.refresh_stale()
    c = store.get_clip(owner, clip.id)
    assert c.status in ("interrupted", "failed")
    assert c.report_sha256 is None
    assert store.blobs.exists(c.video_sha256)


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
