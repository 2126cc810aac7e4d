"""Crash-leftover collection: what is removed, and what is always kept."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import time

import pytest

from vision.storage import Store
from vision.storage.blobs import INCOMING_PREFIX, SCRATCH_PREFIX, TRASH_PREFIX, BlobStore
from vision.storage.cleanup import (
    collect_blob_leftovers,
    collect_leftovers,
    digest_columns,
    referenced_digests,
    start_background_cleanup,
)
from vision.storage.models import Clip

HOUR = 3600.0


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "data")


def _age(path, seconds):
    t = time.time() - seconds
    os.utime(path, (t, t))


def _clip_referencing(store: Store, **digests: str) -> int:
    owner = store.user_by_email("o@example.org") or store.create_user("o@example.org", "O", "owner", "password1")
    dog = store.create_dog(owner, "Rex")
    with store.session() as s:
        clip = Clip(dog_id=dog.id, recorded_on=dt.date(2026, 1, 1), **digests)
        s.add(clip)
        s.flush()
        return clip.id


def _files(blobs: BlobStore) -> set[str]:
    return {str(p.relative_to(blobs.root)) for p in blobs.root.rglob("*") if p.is_file()}


def test_every_digest_column_is_read():
    cols = set(digest_columns())
    assert {
        ("clips", "video_sha256"),
        ("clips", "report_sha256"),
        ("clips", "overlay_sha256"),
        ("clips", "tracks_sha256"),
        ("reviews", "comparison_sha256"),
    } <= cols


def test_referenced_blobs_are_kept_however_old_and_orphans_go(store):
    b = store.blobs
    video, report, orphan = b.put_bytes(b"video"), b.put_bytes(b"report"), b.put_bytes(b"orphan")
    _clip_referencing(store, video_sha256=video, report_sha256=report)
    for sha in (video, report, orphan):
        _age(b.path(sha), 10 * HOUR)
    assert referenced_digests(store.engine) == {video, report}
    res = collect_leftovers(store, grace_s=HOUR)
    assert (res.orphans, res.bytes_freed, res.orphans_skipped) == (1, len(b"orphan"), False)
    assert b.read_bytes(video) == b"video" and b.read_bytes(report) == b"report"
    assert not b.exists(orphan)


def test_young_orphans_are_kept(store):
    sha = store.blobs.put_bytes(b"just stored, row not yet committed")
    _clip_referencing(store, video_sha256=store.blobs.put_bytes(b"v"))
    res = collect_leftovers(store, grace_s=HOUR)
    assert res.orphans == 0 and store.blobs.exists(sha)


def test_nothing_is_deleted_when_the_database_names_none_of_the_blobs(store):
    shas = [store.blobs.put_bytes(bytes([i])) for i in range(3)]
    for sha in shas:
        _age(store.blobs.path(sha), 10 * HOUR)
    res = collect_leftovers(store, grace_s=HOUR)  # an empty database beside a full store
    assert res.orphans_skipped and res.orphans == 0
    assert all(store.blobs.is_intact(s) for s in shas)


def test_unlocked_old_incoming_and_scratch_go_locked_ones_stay(tmp_path):
    b = BlobStore(tmp_path / "blobs")
    dead = b.root / f"{INCOMING_PREFIX}999999-dead"
    dead.write_bytes(b"partial")
    _age(dead, 2 * HOUR)
    live = b.root / f"{INCOMING_PREFIX}{os.getpid()}-live"
    live.write_bytes(b"being written")
    _age(live, 2 * HOUR)  # a slow writer: old mtime, but its lock is held
    fd = os.open(live, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    young = b.root / f"{INCOMING_PREFIX}1-young"
    young.write_bytes(b"y")
    stale_dir = b.root / f"{SCRATCH_PREFIX}999999-x"
    (stale_dir / "sub").mkdir(parents=True)
    (stale_dir / ".lock").touch()
    (stale_dir / "sub" / "overlay.mp4").write_bytes(b"o" * 10)
    for p in (stale_dir / "sub" / "overlay.mp4", stale_dir / "sub", stale_dir / ".lock", stale_dir):
        _age(p, 2 * HOUR)
    trash = b.root / f"{TRASH_PREFIX}abc"
    trash.write_bytes(b"t")
    _age(trash, 2 * HOUR)
    try:
        with b.scratch_dir() as in_use:
            for p in (in_use, in_use / ".lock"):
                _age(p, 2 * HOUR)
            done = b.collect(set(), grace_s=HOUR)
            assert in_use.exists()
    finally:
        os.close(fd)
    assert (done["incoming"], done["scratch"], done["trash"], done["kept_live"]) == (1, 1, 1, 2)
    assert not dead.exists() and not stale_dir.exists() and not trash.exists()
    assert live.exists() and young.exists()
    assert done["bytes"] == len(b"partial") + 10 + 1


def test_a_scratch_folder_with_a_recent_file_is_kept(tmp_path):
    b = BlobStore(tmp_path / "blobs")
    d = b.root / f"{SCRATCH_PREFIX}999999-y"
    d.mkdir()
    _age(d, 2 * HOUR)
    (d / "tracks.nc").write_bytes(b"n")  # written a moment ago (no lock file: killed before making it)
    _age(d, 2 * HOUR)
    assert b.collect(set(), grace_s=HOUR)["scratch"] == 0 and d.exists()
    _age(d / "tracks.nc", 2 * HOUR)
    assert b.collect(set(), grace_s=HOUR)["scratch"] == 1 and not d.exists()


def _racing_writer(monkeypatch, before=None, after=None):
    """Run a writer's step once, just before or just after collect renames an orphan to the trash."""
    real_rename, fired = os.rename, []

    def rename(src, dst, *a, **kw):
        if fired or not os.path.basename(str(dst)).startswith(TRASH_PREFIX):
            return real_rename(src, dst, *a, **kw)
        fired.append(src)
        if before:
            before()
        out = real_rename(src, dst, *a, **kw)
        if after:
            after()
        return out

    monkeypatch.setattr(os, "rename", rename)
    return fired


def test_a_blob_refreshed_by_a_writer_just_before_the_trash_step_is_put_back(tmp_path, monkeypatch):
    b = BlobStore(tmp_path / "blobs")
    data = b"stored again by an upload"
    sha = b.put_bytes(data)
    _age(b.path(sha), 2 * HOUR)
    fired = _racing_writer(monkeypatch, before=lambda: b.put_bytes(data))
    done = b.collect(set(), grace_s=HOUR)
    assert fired and done["orphans"] == 0
    assert b.read_bytes(sha) == data
    assert not [p for p in b.root.iterdir() if p.name.startswith(TRASH_PREFIX)]


def test_a_blob_stored_again_while_in_the_trash_is_kept(tmp_path, monkeypatch):
    b = BlobStore(tmp_path / "blobs")
    data = b"an upload of the same video"
    sha = b.put_bytes(data)
    _age(b.path(sha), 2 * HOUR)
    fired = _racing_writer(monkeypatch, after=lambda: b.put_bytes(data))  # finds no blob, stores its own
    done = b.collect(set(), grace_s=HOUR)
    assert fired and done["orphans"] == 1  # the old copy went, the new one stays
    assert b.read_bytes(sha) == data and b.path(sha).stat().st_mtime > time.time() - HOUR
    assert not [p for p in b.root.iterdir() if p.name.startswith(TRASH_PREFIX)]


def test_two_cleanup_passes_at_once_remove_an_orphan_once(tmp_path, monkeypatch):
    b = BlobStore(tmp_path / "blobs")
    sha = b.put_bytes(b"an old orphan")
    _age(b.path(sha), 2 * HOUR)
    other: list[dict[str, int]] = []
    fired = _racing_writer(monkeypatch, after=lambda: other.append(b.collect(set(), grace_s=HOUR)))
    done = b.collect(set(), grace_s=HOUR)  # the other pass removes our trash file under us
    assert fired and other[0]["trash"] == 1 and done["orphans"] == 0
    assert not b.exists(sha) and list(b.root.glob(".*")) == []


def test_cleanup_is_idempotent_and_leaves_the_folders(store):
    sha = store.blobs.put_bytes(b"o")
    _clip_referencing(store, video_sha256=store.blobs.put_bytes(b"kept"))
    _age(store.blobs.path(sha), 2 * HOUR)
    assert collect_leftovers(store, grace_s=HOUR).orphans == 1
    again = collect_blob_leftovers(store.engine, store.blobs, grace_s=HOUR)
    assert again.removed == 0 and again.bytes_freed == 0
    assert store.blobs.path(sha).parent.is_dir()


def test_background_cleanup_runs_a_pass_at_once(store):
    keep = store.blobs.put_bytes(b"kept")
    _clip_referencing(store, video_sha256=keep)
    orphan = store.blobs.put_bytes(b"orphan")
    _age(store.blobs.path(orphan), 2 * HOUR)
    stop = start_background_cleanup(store, interval_s=HOUR, grace_s=HOUR)
    try:
        deadline = time.monotonic() + 60
        while store.blobs.exists(orphan) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
    assert not store.blobs.exists(orphan) and store.blobs.is_intact(keep)
