"""Fault injection on the storage side: damaged files, killed writers, a full disk, hostile text.

Each fault is real: bytes flipped on disk, a writer process killed with SIGKILL mid-write, a
1 MiB tmpfs filled up (or a file-size limit, ``RLIMIT_FSIZE``, in a child process), NUL and
over-long text written through the ORM to SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.storage.conftest import pg_schema_url
from vision.errors import DamagedFileError, OutOfSpaceError
from vision.storage import Store
from vision.storage.blobs import BlobStore
from vision.storage.cleanup import DEFAULT_GRACE_S, collect_leftovers, referenced_digests
from vision.storage.models import Clip, Dog

AFTER_GRACE = DEFAULT_GRACE_S + 60  # seconds: "the next start", once the grace period is over


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _junk(blobs: BlobStore, referenced: set[str]) -> list[str]:
    """Everything in the store but referenced blobs and their two-letter folders."""
    out = []
    for p in blobs.root.rglob("*"):
        rel = p.relative_to(blobs.root)
        if p.is_dir() and len(rel.parts) == 1 and len(p.name) == 2:
            continue
        if p.is_file() and len(rel.parts) == 2 and "".join(rel.parts) in referenced:
            continue
        out.append(str(rel))
    return sorted(out)


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "data")


@pytest.fixture
def dog(store) -> Dog:
    owner = store.create_user("owner@example.org", "Olga", "owner", "correct horse")
    return store.create_dog(owner, "Rex")


def _done_clip(store: Store, dog: Dog, tag: str) -> Clip:
    """A finished clip whose video, report and overlay are stored (and named by its row)."""
    video = store.blobs.put_bytes(f"video {tag}".encode() * 1000)
    report = store.blobs.put_bytes(json.dumps({"clip": tag}).encode())
    overlay = store.blobs.put_bytes(f"overlay {tag}".encode() * 500)
    with store.session() as s:
        clip = Clip(
            dog_id=dog.id,
            recorded_on=dt.date(2026, 1, 1),
            video_sha256=video,
            report_sha256=report,
            overlay_sha256=overlay,
            status="done",
        )
        s.add(clip)
        s.flush()
        return clip


# --- integrity on read -----------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["flipped", "truncated", "missing", "emptied"])
def test_a_damaged_report_is_named_and_the_dogs_other_clips_still_read(store, dog, damage):
    damaged, other = _done_clip(store, dog, "week 1"), _done_clip(store, dog, "week 2")
    p = store.blobs.path(damaged.report_sha256)
    data = p.read_bytes()
    if damage == "flipped":
        p.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    elif damage == "truncated":
        p.write_bytes(data[: len(data) // 2])
    elif damage == "missing":
        p.unlink()
    else:
        p.write_bytes(b"")
    with pytest.raises(DamagedFileError) as e:
        store.report(damaged)
    assert str(e.value) == "the stored report for this clip is damaged"
    assert str(store.data_dir) not in str(e.value) and damaged.report_sha256 not in str(e.value)
    assert store.report(other) == {"clip": "week 2"}
    assert store.blobs.read_bytes(damaged.video_sha256, "video")  # the clip's own video is fine
    assert store.blobs.verified_path(damaged.overlay_sha256, "overlay").is_file()


def test_a_damaged_video_is_reported_as_the_video(store, dog):
    clip = _done_clip(store, dog, "w")
    with open(store.blobs.path(clip.video_sha256), "r+b") as fh:
        fh.seek(10)
        fh.write(b"\xff\xfe")
    with pytest.raises(DamagedFileError, match="^the stored video for this clip is damaged$"):
        store.blobs.verified_path(clip.video_sha256, "video")


def test_a_damaged_blob_is_repaired_by_storing_its_bytes_again(store, dog):
    clip = _done_clip(store, dog, "w")
    report = json.dumps({"clip": "w"}).encode()
    store.blobs.path(clip.report_sha256).write_bytes(b"garbage")
    with pytest.raises(DamagedFileError):
        store.report(clip)
    assert store.blobs.put_bytes(report) == clip.report_sha256  # e.g. a re-analysis
    assert store.report(clip) == {"clip": "w"}


# --- crash leftovers ------------------------------------------------------------------------------


def test_a_writer_killed_mid_blob_leaves_junk_that_the_next_start_removes(store, dog, blob_writer):
    kept = _done_clip(store, dog, "stored before the crash")
    referenced = referenced_digests(store.engine)
    proc, _ = blob_writer(store.blobs.root)
    _kill(proc)
    junk = _junk(store.blobs, referenced)
    assert len(junk) == 1 and junk[0].startswith(".incoming-")  # the fault is real
    assert (store.blobs.root / junk[0]).stat().st_size >= 2 << 20
    res = collect_leftovers(store, now=time.time() + AFTER_GRACE)
    assert res.incoming == 1 and res.bytes_freed >= 2 << 20
    assert _junk(store.blobs, referenced) == []
    for sha in referenced:
        assert store.blobs.is_intact(sha)
    assert store.report(kept) == {"clip": "stored before the crash"}


def test_a_job_killed_mid_write_leaves_a_scratch_folder_an_orphan_and_a_partial_file(store, dog, blob_writer):
    _done_clip(store, dog, "a")
    referenced = referenced_digests(store.engine)
    proc, _ = blob_writer(store.blobs.root, mode="scratch+orphan")
    _kill(proc)
    junk = _junk(store.blobs, referenced)
    top = {j.split("/")[0] for j in junk}
    assert len([j for j in top if j.startswith(".incoming-")]) == 1  # the fault is real:
    assert len([j for j in top if j.startswith(".scratch-")]) == 1  # all three leftovers are there
    orphans = [j for j in junk if not j.startswith(".")]
    assert len(orphans) == 1 and store.blobs.read_bytes(orphans[0].replace("/", ""))
    res = collect_leftovers(store, now=time.time() + AFTER_GRACE)
    assert (res.incoming, res.scratch, res.orphans) == (1, 1, 1)
    assert _junk(store.blobs, referenced) == []
    assert all(store.blobs.is_intact(sha) for sha in referenced)


def test_an_upload_killed_after_storing_but_before_its_row_leaves_an_orphan_that_goes(store, dog, blob_writer):
    _done_clip(store, dog, "a")
    referenced = referenced_digests(store.engine)
    proc, go = blob_writer(store.blobs.root, chunks=3)
    go.touch()
    sha = proc.communicate()[0].strip()  # stored; the server dies before recording the clip
    assert store.blobs.is_intact(sha) and sha not in referenced
    assert collect_leftovers(store).orphans == 0  # a fresh blob may be about to get its row
    res = collect_leftovers(store, now=time.time() + AFTER_GRACE)
    assert res.orphans == 1 and not store.blobs.exists(sha)
    assert _junk(store.blobs, referenced) == []


def test_cleanup_while_a_writer_is_running_takes_nothing_from_it(store, dog, blob_writer):
    _done_clip(store, dog, "a")
    proc, go = blob_writer(store.blobs.root, mode="scratch", chunks=4)
    try:
        # even long after, by the clock given: the live writer's file and folder are locked
        res = collect_leftovers(store, now=time.time() + 100 * AFTER_GRACE)
        assert res.removed == 0 and res.kept_live == 2
    finally:
        go.touch()
    sha = proc.communicate()[0].strip()
    assert proc.returncode == 0
    assert store.blobs.is_intact(sha) and store.blobs.verify(sha) is None
    with store.session() as s:  # the job records its result: nothing was lost on the way
        s.add(Clip(dog_id=dog.id, recorded_on=dt.date(2026, 1, 2), video_sha256=sha))
    assert collect_leftovers(store, now=time.time() + AFTER_GRACE).removed == 0
    assert _junk(store.blobs, referenced_digests(store.engine)) == []


# --- a full disk ----------------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path) -> Iterator[Path]:
    """A 1 MiB tmpfs (needs root and mount rights; skipped otherwise)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {r.stderr.strip() or r.returncode}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_is_out_of_space_leaves_nothing_and_the_retry_succeeds(tiny_disk):
    blobs = BlobStore(tiny_disk / "blobs")
    first = blobs.put_bytes(b"a stored report" * 1000)
    filler = tiny_disk / "filler"
    with open(filler, "wb") as fh, pytest.raises(OSError):
        while True:
            fh.write(b"\0" * 65536)  # fill what is left
    data = os.urandom(300_000)
    with pytest.raises(OutOfSpaceError, match="^the server is out of space$") as e:
        blobs.put_bytes(data)
    assert isinstance(e.value.__cause__, OSError)
    assert [p.name for p in blobs.root.iterdir() if p.name.startswith(".")] == []  # no partial file
    assert blobs.read_bytes(first) == b"a stored report" * 1000
    filler.unlink()  # space is freed: the same write now succeeds, nothing to repair
    sha = blobs.put_bytes(data)
    assert blobs.read_bytes(sha) == data


def test_a_full_disk_inside_a_scratch_folder_is_out_of_space(tiny_disk):
    blobs = BlobStore(tiny_disk / "blobs")
    with pytest.raises(OutOfSpaceError), blobs.scratch_dir() as d:
        (d / "overlay.mp4").write_bytes(os.urandom(2 << 20))
    assert list(blobs.root.iterdir()) == []


def test_copying_out_to_a_full_disk_is_out_of_space(tiny_disk, tmp_path):
    blobs = BlobStore(tmp_path / "blobs")
    sha = blobs.put_bytes(os.urandom(2 << 20))
    with pytest.raises(OutOfSpaceError):
        blobs.copy_to(sha, tiny_disk / "tracks.nc", "tracks")
    assert not (tiny_disk / "tracks.nc").exists()


FSIZE_CHILD = textwrap.dedent(
    """
    import io, os, resource, signal, sys
    from vision.storage.blobs import BlobStore
    from vision.errors import OutOfSpaceError
    blobs = BlobStore(sys.argv[1])
    kept = blobs.put_bytes(b"small")
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
    try:
        blobs.put_stream(io.BytesIO(os.urandom(3 << 20)))
    except OutOfSpaceError as exc:
        print(exc, type(exc.__cause__).__name__, exc.__cause__.errno, kept)
    """
)


def test_a_file_size_limit_is_out_of_space_too(tmp_path):
    root = tmp_path / "blobs"
    out = subprocess.run([sys.executable, "-c", FSIZE_CHILD, str(root)], capture_output=True, text=True, check=True)
    words = out.stdout.split()
    assert " ".join(words[:6]) == "the server is out of space" and words[6] == "OSError"
    assert int(words[7]) == 27  # EFBIG
    blobs = BlobStore(root)
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []
    assert list(blobs.digests()) == [words[8]] and blobs.read_bytes(words[8]) == b"small"


# --- hostile text -----------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def db_store(request, tmp_path) -> Iterator[Store]:
    if request.param == "sqlite":
        yield Store(tmp_path / "data")
        return
    with pg_schema_url() as url:
        st = Store(tmp_path / "data", db_url=url)
        yield st
        st.engine.dispose()


def test_nul_and_overlong_text_are_stored_cleaned_on_both_databases(db_store):
    owner = db_store.create_user("o@example.org", "O", "owner", "correct horse")
    dog = db_store.create_dog(owner, "R\x00ex", notes="x" * 50_000)
    with db_store.session() as s:
        s.add(Clip(dog_id=dog.id, recorded_on=dt.date(2026, 1, 1), video_sha256="c" * 64, original_name="\x00" * 9))
    with db_store.session() as s:
        d = s.scalars(select(Dog)).one()
        c = s.scalars(select(Clip)).one()
        assert (d.name, len(d.notes), c.original_name) == ("Rex", 10_000, "")
