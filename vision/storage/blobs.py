"""Content-addressed file store: files named by their SHA-256, written atomically, verified on read.

Layout under ``root``:

``ab/cdef...``
    the blob whose SHA-256 is ``abcdef...``;
``.incoming-<pid>-*``
    a blob being written: synced, then renamed to its digest, so a blob exists whole or not at
    all. The writer holds an exclusive ``flock`` on it until the rename, so a crashed writer's
    file is told from a live one by the lock, whatever its age;
``.scratch-<pid>-*/``
    a scratch folder (:meth:`BlobStore.scratch_dir`), locked the same way through its ``.lock`` file;
``.trash-*``
    a blob that :meth:`BlobStore.collect` is removing (present only while it runs or if it crashed).

Reads (:meth:`BlobStore.read_bytes`, :meth:`BlobStore.copy_to`, :meth:`BlobStore.verified_path`)
check the content against its digest and raise :class:`~vision.errors.DamagedFileError` for a
missing or altered blob; a full disk while writing raises :class:`~vision.errors.OutOfSpaceError`.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from vision.errors import DamagedFileError, OutOfSpaceError

INCOMING_PREFIX = ".incoming-"
SCRATCH_PREFIX = ".scratch-"
TRASH_PREFIX = ".trash-"
_LOCK_NAME = ".lock"
_CHUNK = 1 << 20
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def is_digest(text: str) -> bool:
    """True for a lower-case SHA-256 hex digest (64 characters ``0-9a-f``)."""
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def is_out_of_space(exc: BaseException) -> bool:
    """True for :class:`OutOfSpaceError` or an ``OSError`` meaning the disk, quota or size limit is full."""
    return isinstance(exc, OutOfSpaceError) or (isinstance(exc, OSError) and exc.errno in _NO_SPACE)


def _no_space(exc: BaseException) -> OutOfSpaceError | None:
    """A new :class:`OutOfSpaceError` to raise instead of ``exc`` when it means a full disk, else None."""
    if is_out_of_space(exc) and not isinstance(exc, OutOfSpaceError):
        return OutOfSpaceError()
    return None


class BlobStore:
    """Files under ``root/ab/cdef...`` keyed by SHA-256; user-supplied names never reach a path.

    Parameters
    ----------
    root
        The store's folder (created when absent).

    Notes
    -----
    :meth:`read_bytes` and :meth:`copy_to` hash the very bytes they hand out. :meth:`verify` and
    :meth:`verified_path` hash the file once and then trust it while its size, inode, mtime and
    ctime stay the same (remembered per process), since a player reads a 500 MB video by path
    on every page view; any write to the file, even one that restores its mtime, changes its ctime.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._verified: dict[str, tuple[int, ...]] = {}
        self._lock = threading.Lock()

    def path(self, sha256: str) -> Path:
        """Where a blob lives; it may not exist and is not checked (see :meth:`verified_path`).

        Raises
        ------
        ValueError
            ``sha256`` is not a lower-case SHA-256 hex digest.
        """
        if not is_digest(sha256):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / sha256[:2] / sha256[2:]

    def exists(self, sha256: str) -> bool:
        """True when the blob's file is present (its content is not checked)."""
        return self.path(sha256).is_file()

    # --- writing ----------------------------------------------------------------------------------

    def put_stream(self, stream: BinaryIO, max_bytes: int | None = None) -> tuple[str, int]:
        """Store a stream; return ``(sha256, size)``.

        The bytes go to a locked ``.incoming-*`` file, are synced, then renamed to their digest.
        When the blob is already stored its mtime is refreshed first (so that :meth:`collect`
        keeps it while the caller records a reference to it); it is kept when it verifies and
        replaced when it is damaged, so storing the same bytes again repairs a damaged blob.

        Raises
        ------
        ValueError
            The stream is longer than ``max_bytes``; nothing is left behind.
        OutOfSpaceError
            The disk or quota is full; nothing is left behind.
        """
        digest = hashlib.sha256()
        size = 0
        try:
            fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=f"{INCOMING_PREFIX}{os.getpid()}-")
        except OSError as exc:
            if (err := _no_space(exc)) is not None:
                raise err from exc
            raise
        try:
            with os.fdopen(fd, "wb") as out:  # the lock lives as long as this descriptor
                _lock(out.fileno(), blocking=True)
                while chunk := stream.read(_CHUNK):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise ValueError(f"file is larger than {max_bytes // (1 << 20)} MB")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
                sha = digest.hexdigest()
                target = self.path(sha)
                target.parent.mkdir(parents=True, exist_ok=True)
                if self._refresh(target) and self._hash_ok(sha, target):
                    os.unlink(tmp_name)
                else:
                    os.replace(tmp_name, target)
                    self._forget(sha)
            return sha, size
        except BaseException as exc:
            with suppress(FileNotFoundError):
                os.unlink(tmp_name)
            if (err := _no_space(exc)) is not None:
                raise err from exc
            raise

    def put_bytes(self, data: bytes) -> str:
        """Store bytes; return their SHA-256 (see :meth:`put_stream`)."""
        return self.put_stream(io.BytesIO(data))[0]

    def put_file(self, path: str | os.PathLike[str]) -> str:
        """Store a copy of a file; return its SHA-256 (see :meth:`put_stream`)."""
        with open(path, "rb") as fh:
            return self.put_stream(fh)[0]

    @contextmanager
    def scratch_dir(self) -> Iterator[Path]:
        """A locked scratch folder inside the store, removed on exit.

        A process killed inside the block leaves the folder unlocked, and :meth:`collect`
        removes it once it is older than the grace period. An ``OSError`` meaning a full disk
        raised inside the block leaves it as :class:`OutOfSpaceError`.

        Yields
        ------
        Path
            An empty folder on the store's filesystem (so files in it can be stored cheaply).
        """
        path: Path | None = None
        try:
            path = Path(tempfile.mkdtemp(dir=self.root, prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
            lock_fd = os.open(path / _LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o600)
        except OSError as exc:
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)
            if (err := _no_space(exc)) is not None:
                raise err from exc
            raise
        try:
            _lock(lock_fd, blocking=True)
            yield path
        except OSError as exc:
            if (err := _no_space(exc)) is not None:
                raise err from exc
            raise
        finally:
            shutil.rmtree(path, ignore_errors=True)
            os.close(lock_fd)

    # --- reading, always verified -----------------------------------------------------------------

    def verify(self, sha256: str, kind: str = "file") -> None:
        """Check that a blob is present and matches its digest.

        Parameters
        ----------
        kind
            What the blob is for (``"video"``, ``"report"``, ``"overlay"``, ``"tracks"``,
            ``"comparison"``), naming it in the error's message.

        Raises
        ------
        DamagedFileError
            The blob is missing (``reason="missing"``) or altered (``reason="mismatch"``).
        """
        p = self.path(sha256)
        if not p.is_file():
            self._forget(sha256)
            raise DamagedFileError(kind, sha256=sha256, reason="missing")
        if not self._hash_ok(sha256, p):
            raise DamagedFileError(kind, sha256=sha256, reason="mismatch")

    def is_intact(self, sha256: str) -> bool:
        """True when the blob is present and matches its digest."""
        try:
            self.verify(sha256)
        except DamagedFileError:
            return False
        return True

    def verified_path(self, sha256: str, kind: str = "file") -> Path:
        """The blob's path after :meth:`verify` (for readers that need a path: players, decoders)."""
        self.verify(sha256, kind)
        return self.path(sha256)

    def read_bytes(self, sha256: str, kind: str = "file") -> bytes:
        """The blob's content, checked against its digest.

        Raises
        ------
        DamagedFileError
            Missing or altered; ``kind`` names the file in the message (see :meth:`verify`).
        """
        try:
            data = self.path(sha256).read_bytes()
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise DamagedFileError(kind, sha256=sha256, reason="missing") from exc
        if hashlib.sha256(data).hexdigest() != sha256:
            self._forget(sha256)
            raise DamagedFileError(kind, sha256=sha256, reason="mismatch")
        return data

    def copy_to(self, sha256: str, dest: str | os.PathLike[str], kind: str = "file") -> Path:
        """Copy a blob out to ``dest``, checking it while copying.

        Raises
        ------
        DamagedFileError
            Missing or altered; ``dest`` is removed.
        OutOfSpaceError
            ``dest``'s disk is full; ``dest`` is removed.
        """
        out = Path(dest)
        digest = hashlib.sha256()
        try:
            fin = self.path(sha256).open("rb")
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise DamagedFileError(kind, sha256=sha256, reason="missing") from exc
        try:
            with fin, out.open("wb") as fout:
                while chunk := fin.read(_CHUNK):
                    digest.update(chunk)
                    fout.write(chunk)
        except OSError as exc:
            out.unlink(missing_ok=True)
            if (err := _no_space(exc)) is not None:
                raise err from exc
            raise
        if digest.hexdigest() != sha256:
            out.unlink(missing_ok=True)
            self._forget(sha256)
            raise DamagedFileError(kind, sha256=sha256, reason="mismatch")
        return out

    # --- housekeeping -----------------------------------------------------------------------------

    def digests(self) -> Iterator[str]:
        """Every stored blob's digest, from the file names (contents not checked)."""
        for sub in sorted(self.root.iterdir()):
            if len(sub.name) == 2 and sub.is_dir():
                for f in sub.iterdir():
                    if is_digest(sub.name + f.name) and f.is_file():
                        yield sub.name + f.name

    def collect(
        self,
        referenced: set[str],
        *,
        grace_s: float,
        now: float | None = None,
        remove_orphans: bool = True,
    ) -> dict[str, int]:
        """Remove crash leftovers and unreferenced blobs older than ``grace_s`` seconds.

        Removed: unlocked ``.incoming-*`` files (partial uploads), unlocked ``.scratch-*``
        folders whose newest entry is old, old ``.trash-*`` files and, when ``remove_orphans``,
        blobs whose digest is not in ``referenced``. Safe beside live writers: a file being
        written or a scratch folder in use is locked by its process; a blob just stored (or
        stored again, see :meth:`put_stream`) has a fresh mtime; an orphan is first renamed
        to ``.trash-*`` and its age checked again there, so a writer that refreshes or
        re-creates it meanwhile is never undone. ``referenced`` must be read from the database
        *before* this is called.

        Parameters
        ----------
        referenced
            Digests that rows of the database refer to; those blobs are always kept.
        grace_s
            Minimum age (seconds since the last modification) of anything removed.
        now
            The current time (``time.time()`` when None).
        remove_orphans
            False keeps every blob and removes only the leftovers.

        Returns
        -------
        dict
            Counts removed: ``incoming``, ``scratch``, ``orphans``, ``trash``, ``bytes`` (freed),
            and ``kept_live`` (locked leftovers of running writers, kept).
        """
        cutoff = (time.time() if now is None else now) - grace_s
        done = {"incoming": 0, "scratch": 0, "orphans": 0, "trash": 0, "bytes": 0, "kept_live": 0}
        for f in sorted(self.root.iterdir()):
            name = f.name
            if name.startswith(INCOMING_PREFIX):
                freed = _remove_unlocked_file(f, cutoff)
                if freed is None:
                    done["kept_live"] += 1
                elif freed >= 0:
                    done["incoming"] += 1
                    done["bytes"] += freed
            elif name.startswith(SCRATCH_PREFIX) and f.is_dir():
                freed = _remove_unlocked_dir(f, cutoff)
                if freed is None:
                    done["kept_live"] += 1
                elif freed >= 0:
                    done["scratch"] += 1
                    done["bytes"] += freed
            elif name.startswith(TRASH_PREFIX):
                freed = _unlink_if_old(f, cutoff)
                if freed >= 0:
                    done["trash"] += 1
                    done["bytes"] += freed
        if remove_orphans:
            for sha in list(self.digests()):
                if sha not in referenced:
                    freed = self._remove_orphan(sha, cutoff)
                    if freed >= 0:
                        done["orphans"] += 1
                        done["bytes"] += freed
        return done  # the two-letter folders stay: a writer may be about to rename into one

    # --- internals --------------------------------------------------------------------------------

    def _remove_orphan(self, sha: str, cutoff: float) -> int:
        """Remove an old blob; return the bytes freed, or -1 when it was kept or already gone."""
        target = self.path(sha)
        try:
            if target.stat().st_mtime >= cutoff:
                return -1
            trash = self.root / f"{TRASH_PREFIX}{uuid.uuid4().hex}"
            os.rename(target, trash)  # a writer arriving now finds no blob and stores its own
        except FileNotFoundError:
            return -1
        try:  # another cleanup pass may remove an old trash file at any moment: then it is gone
            st = trash.stat()
            if st.st_mtime >= cutoff:  # refreshed by a writer just before the rename: put it back
                with suppress(FileExistsError):  # never over a copy that a writer has stored meanwhile
                    os.link(trash, target)
                trash.unlink()
                return -1
            trash.unlink()
        except FileNotFoundError:
            return -1
        self._forget(sha)
        return st.st_size

    def _refresh(self, target: Path) -> bool:
        """Touch an existing blob (True), or report that there is none (False)."""
        try:
            os.utime(target)
        except FileNotFoundError:
            return False
        return target.is_file()

    def _hash_ok(self, sha256: str, p: Path) -> bool:
        try:
            st = p.stat()
        except FileNotFoundError:
            return False
        key = (st.st_size, st.st_ino, st.st_dev, st.st_mtime_ns, st.st_ctime_ns)
        with self._lock:
            if self._verified.get(sha256) == key:
                return True
        digest = hashlib.sha256()
        try:
            with p.open("rb") as fh:
                while chunk := fh.read(_CHUNK):
                    digest.update(chunk)
        except (FileNotFoundError, IsADirectoryError):
            return False
        ok = digest.hexdigest() == sha256
        with self._lock:
            if ok:
                self._verified[sha256] = key
            else:
                self._verified.pop(sha256, None)
        return ok

    def _forget(self, sha256: str) -> None:
        with self._lock:
            self._verified.pop(sha256, None)


def _lock(fd: int, *, blocking: bool) -> bool:
    """Take an exclusive ``flock`` on ``fd``; False when another open file holds it (non-blocking).

    Where ``flock`` does not exist (Windows) or the filesystem refuses locks (``ENOLCK`` on some
    network mounts) nothing is locked and True is returned: leftovers are then told from live
    files by age alone.
    """
    if sys.platform == "win32":
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
            return True
        raise
    return True


def _unlink_if_old(f: Path, cutoff: float) -> int:
    """Remove ``f`` when its mtime is before ``cutoff``; the bytes freed, or -1 when kept or gone."""
    try:
        st = f.stat()
        if st.st_mtime >= cutoff:
            return -1
        f.unlink()
        return st.st_size
    except FileNotFoundError:
        return -1


def _remove_unlocked_file(f: Path, cutoff: float) -> int | None:
    """Remove an old file no process has locked: bytes freed, -1 when young or gone, None when locked."""
    try:
        fd = os.open(f, os.O_RDONLY)
    except (FileNotFoundError, IsADirectoryError):
        return -1
    try:
        if not _lock(fd, blocking=False):
            return None
        return _unlink_if_old(f, cutoff)
    finally:
        os.close(fd)


def _remove_unlocked_dir(d: Path, cutoff: float) -> int | None:
    """Remove a scratch folder whose lock is free and whose newest entry is old (see above)."""
    fd: int | None = None
    try:
        try:
            fd = os.open(d / _LOCK_NAME, os.O_RDONLY)
        except FileNotFoundError:
            fd = None  # killed between creating the folder and its lock file: age alone decides
        if fd is not None and not _lock(fd, blocking=False):
            return None
        newest, size = d.stat().st_mtime, 0
        for entry in d.rglob("*"):
            try:
                st = entry.lstat()
            except FileNotFoundError:
                continue
            newest = max(newest, st.st_mtime)
            size += st.st_size if entry.is_file() else 0
        if newest >= cutoff:
            return -1
        shutil.rmtree(d, ignore_errors=True)
        return size if not d.exists() else -1
    except FileNotFoundError:
        return -1
    finally:
        if fd is not None:
            os.close(fd)
