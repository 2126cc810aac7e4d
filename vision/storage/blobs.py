"""Content-addressed file store: files are named by their SHA-256, written atomically."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO


class BlobStore:
    """Files under ``root/ab/cdef...`` keyed by SHA-256; user-supplied names never reach a path."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        """Where a blob lives (it may not exist)."""
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / sha256[:2] / sha256[2:]

    def exists(self, sha256: str) -> bool:
        """True when the blob is stored."""
        return self.path(sha256).is_file()

    def put_stream(self, stream: BinaryIO, max_bytes: int | None = None) -> tuple[str, int]:
        """Store a stream; return ``(sha256, size)``. Raises ValueError when over ``max_bytes``."""
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(1 << 20):
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
            if target.exists():
                os.unlink(tmp_name)
            else:
                os.replace(tmp_name, target)
            return sha, size
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise

    def put_bytes(self, data: bytes) -> str:
        """Store bytes; return their SHA-256."""
        import io

        return self.put_stream(io.BytesIO(data))[0]

    def put_file(self, path: str | os.PathLike[str]) -> str:
        """Store a copy of a file; return its SHA-256."""
        with open(path, "rb") as fh:
            return self.put_stream(fh)[0]

    def read_bytes(self, sha256: str) -> bytes:
        """The blob's content."""
        return self.path(sha256).read_bytes()

    def copy_to(self, sha256: str, dest: str | os.PathLike[str]) -> Path:
        """Copy a blob out to ``dest``."""
        shutil.copyfile(self.path(sha256), dest)
        return Path(dest)
