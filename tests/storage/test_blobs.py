"""The content-addressed store: atomic writes, every read checked against the hash."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from vision.errors import DamagedFileError, HindsightInputError
from vision.storage.blobs import INCOMING_PREFIX, SCRATCH_PREFIX, BlobStore, is_digest


@pytest.fixture
def blobs(tmp_path):
    return BlobStore(tmp_path / "blobs")


def _junk(store: BlobStore) -> list[str]:
    return sorted(p.name for p in store.root.iterdir() if p.name.startswith("."))


def _flip_byte(path, at=0):
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def test_put_names_the_file_by_its_hash_and_reads_it_back(blobs):
    data = b"report bytes" * 1000
    sha = blobs.put_bytes(data)
    assert sha == hashlib.sha256(data).hexdigest() and is_digest(sha)
    assert blobs.path(sha) == blobs.root / sha[:2] / sha[2:]
    assert blobs.read_bytes(sha) == data
    assert blobs.put_bytes(data) == sha  # the same bytes again: one file
    assert list(blobs.digests()) == [sha]
    assert _junk(blobs) == []


@pytest.mark.parametrize("bad", ["", "x" * 64, "A" * 64, "../" + "a" * 61])
def test_path_refuses_anything_but_a_digest(blobs, bad):
    with pytest.raises(ValueError):
        blobs.path(bad)


@pytest.mark.parametrize("kind", ["report", "video", "overlay", "tracks", "comparison", "file"])
def test_an_altered_blob_is_damaged_on_every_read(blobs, tmp_path, kind):
    sha = blobs.put_bytes(b"x" * 5000)
    _flip_byte(blobs.path(sha), 100)
    with pytest.raises(DamagedFileError) as e:
        blobs.read_bytes(sha, kind)
    assert e.value.kind == kind and e.value.reason == "mismatch" and e.value.sha256 == sha
    msg = str(e.value)
    assert msg.startswith("the stored") or msg == "a stored file is damaged"
    assert "damaged" in msg and str(blobs.root) not in msg and "/" not in msg and sha not in msg
    with pytest.raises(DamagedFileError, match="damaged"):
        blobs.verified_path(sha, kind)
    dest = tmp_path / "out.bin"
    with pytest.raises(DamagedFileError):
        blobs.copy_to(sha, dest, kind)
    assert not dest.exists()  # no half-checked copy is left for a caller to use
    assert not blobs.is_intact(sha)


def test_the_report_message_is_the_one_the_page_shows(blobs):
    sha = blobs.put_bytes(b"{}")
    blobs.path(sha).unlink()
    with pytest.raises(DamagedFileError, match="^the stored report for this clip is damaged$") as e:
        blobs.read_bytes(sha, "report")
    assert e.value.reason == "missing"
    assert isinstance(e.value, HindsightInputError)  # shown as one line wherever input errors are


def test_a_missing_blob_is_damaged_on_every_read(blobs, tmp_path):
    sha = blobs.put_bytes(b"gone")
    blobs.path(sha).unlink()
    for read in (
        lambda: blobs.read_bytes(sha, "video"),
        lambda: blobs.verified_path(sha, "video"),
        lambda: blobs.copy_to(sha, tmp_path / "o", "video"),
        lambda: blobs.verify(sha, "video"),
    ):
        with pytest.raises(DamagedFileError, match="^the stored video for this clip is damaged$"):
            read()
    assert not (tmp_path / "o").exists()


def test_a_blob_replaced_by_a_folder_is_damaged_not_a_crash(blobs):
    sha = blobs.put_bytes(b"abc")
    blobs.path(sha).unlink()
    blobs.path(sha).mkdir()
    with pytest.raises(DamagedFileError):
        blobs.read_bytes(sha)
    with pytest.raises(DamagedFileError):
        blobs.verified_path(sha)


def test_verified_path_notices_a_change_after_a_first_good_check(blobs):
    sha = blobs.put_bytes(b"v" * 4096)
    p = blobs.verified_path(sha, "overlay")
    st = p.stat()
    _flip_byte(p, 7)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with the old mtime put back
    assert p.stat().st_size == st.st_size and p.stat().st_mtime_ns == st.st_mtime_ns
    with pytest.raises(DamagedFileError):
        blobs.verified_path(sha, "overlay")


def test_truncated_blob_is_damaged(blobs):
    sha = blobs.put_bytes(b"0123456789" * 100)
    with open(blobs.path(sha), "r+b") as fh:
        fh.truncate(500)
    with pytest.raises(DamagedFileError):
        blobs.read_bytes(sha, "overlay")


def test_storing_the_same_bytes_again_repairs_a_damaged_blob(blobs):
    data = b"the original upload" * 50
    sha = blobs.put_bytes(data)
    _flip_byte(blobs.path(sha))
    assert not blobs.is_intact(sha)
    assert blobs.put_stream(io.BytesIO(data)) == (sha, len(data))
    assert blobs.read_bytes(sha) == data
    assert _junk(blobs) == []


def test_an_intact_duplicate_is_kept_and_refreshed(blobs):
    sha = blobs.put_bytes(b"same")
    p = blobs.path(sha)
    os.utime(p, (1_000_000, 1_000_000))
    inode = p.stat().st_ino
    blobs.put_bytes(b"same")
    assert p.stat().st_ino == inode  # not rewritten
    assert p.stat().st_mtime > 1_000_000  # but fresh, so a concurrent cleanup keeps it


def test_over_the_size_limit_leaves_nothing(blobs):
    with pytest.raises(ValueError, match="larger than 1 MB"):
        blobs.put_stream(io.BytesIO(b"x" * (3 << 20)), max_bytes=1 << 20)
    assert list(blobs.root.iterdir()) == []


def test_copy_to_returns_the_checked_copy(blobs, tmp_path):
    data = os.urandom(3 << 20)
    sha = blobs.put_bytes(data)
    out = blobs.copy_to(sha, tmp_path / "copy.bin")
    assert out.read_bytes() == data


def test_scratch_dir_is_inside_the_store_and_removed(blobs):
    with blobs.scratch_dir() as d:
        assert d.parent == blobs.root and d.name.startswith(SCRATCH_PREFIX)
        (d / "overlay.mp4").write_bytes(b"o")
        sha = blobs.put_file(d / "overlay.mp4")
    assert not d.exists() and blobs.read_bytes(sha) == b"o"
    with pytest.raises(RuntimeError), blobs.scratch_dir() as d2:
        raise RuntimeError("analysis failed")
    assert not d2.exists()
    assert _junk(blobs) == []


def test_incoming_files_carry_the_writer_pid(blobs):
    class Spy(io.BytesIO):
        seen: list[str] = []

        def read(self, n=-1):
            Spy.seen = [p.name for p in blobs.root.iterdir() if p.name.startswith(INCOMING_PREFIX)]
            return super().read(n)

    blobs.put_stream(Spy(b"abc"))
    assert len(Spy.seen) == 1 and Spy.seen[0].startswith(f"{INCOMING_PREFIX}{os.getpid()}-")
    assert _junk(blobs) == []
