from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Deterministic property tests: the same examples on every run and in CI (no flaky reds).
settings.register_profile(
    "hindsight", derandomize=True, deadline=None, max_examples=10, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("hindsight")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FOREVER_DOG = SHARED / "data" / "videos" / "forever_dog"
ANIMALPOSE = SHARED / "data" / "animalpose"


def need_shared(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} is not present (../shared holds third-party data, absent on a fresh clone)")


@pytest.fixture
def forever_dog() -> Path:
    need_shared(FOREVER_DOG / "dog.mp4")
    return FOREVER_DOG


# A writer that stores a blob of ``chunks`` MiB from a slow source. After two chunks are on disk
# it creates ``ready`` and then waits for ``go`` (forever if never created: it is killed there).
# With ``orphan`` it first stores a small report that no row will ever name, and with ``scratch``
# it works inside a scratch folder holding a half-drawn overlay, like an analysis job.
WRITER = textwrap.dedent(
    """
    import os, sys, time
    from vision.storage.blobs import BlobStore
    root, ready, go, chunks, mode = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    blobs = BlobStore(root)

    class Slow:
        n = 0
        def read(self, size):
            Slow.n += 1
            if Slow.n == 3:
                open(ready, "w").close()
                while not os.path.exists(go):
                    time.sleep(0.01)
            return os.urandom(1 << 20) if Slow.n <= chunks else b""

    def write():
        if "orphan" in mode:
            blobs.put_bytes(b'{"report": "of a job that never finished"}')
        print(blobs.put_stream(Slow())[0], flush=True)

    if "scratch" in mode:
        with blobs.scratch_dir() as d:
            (d / "overlay.mp4").write_bytes(os.urandom(200_000))
            write()
    else:
        write()
    """
)


@pytest.fixture
def blob_writer(tmp_path) -> Callable[..., tuple[subprocess.Popen, Path]]:
    """``blob_writer(blob_root, mode="plain", chunks=6)``: a process mid-way through storing a blob.

    Returns once two MiB are on disk and the rest is still to come, as ``(process, go)``: touching
    ``go`` lets it finish (it prints the digest); SIGKILL leaves a crash's leftovers.
    """
    started: list[subprocess.Popen] = []

    def start(root: Path, mode: str = "plain", chunks: int = 6) -> tuple[subprocess.Popen, Path]:
        tag = f"{mode}-{time.monotonic_ns()}"
        ready, go = tmp_path / f"ready-{tag}", tmp_path / f"go-{tag}"
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(root), str(ready), str(go), str(chunks), mode],
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        deadline = time.monotonic() + 120  # a wait for the child, not a timing assertion
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"writer did not start (exit {proc.returncode})")
            time.sleep(0.01)
        return proc, go

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
