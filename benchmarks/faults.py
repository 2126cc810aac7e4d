"""Storage fault injection: each fault for real, then the table of what was recovered, lost and left.

``python benchmarks/faults.py [--markdown]``

Every row starts from a store holding two finished clips (video, report, overlay each), injects
one fault, lets the system react as it does on its own (a verified read, the start-up cleanup
``vision.storage.cleanup.collect_leftovers`` run once the grace period is over, a retry of the
same write), and counts:

* **clear error**: the fault surfaced as Hindsight's one-line error (``DamagedFileError``,
  ``OutOfSpaceError``) or needed none, never as a raw exception or a path;
* **recovered, no manual step**: after the reaction the store is whole again with nobody
  touching a file (a damaged blob counts as recovered when storing its bytes again, as a
  re-analysis or re-upload does, repairs it in place);
* **data lost**: stored files that rows name and that are no longer intact at the end;
* **junk left**: files or folders in the store that no row names, after the next cleanup.

The disk-full row needs root to mount a 1 MiB tmpfs (else it is reported as not run); the
PostgreSQL row needs ``HINDSIGHT_TEST_PG_URL``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, select, text

from vision.errors import DamagedFileError, HindsightInputError, OutOfSpaceError
from vision.storage import Store
from vision.storage.blobs import BlobStore
from vision.storage.cleanup import DEFAULT_GRACE_S, collect_leftovers, referenced_digests
from vision.storage.models import Clip, Dog

LATER = DEFAULT_GRACE_S + 60.0  # "the next start" comes after the grace period

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

FSIZE_CHILD = textwrap.dedent(
    """
    import io, os, resource, signal, sys
    from vision.storage.blobs import BlobStore
    from vision.errors import OutOfSpaceError
    blobs = BlobStore(sys.argv[1])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
    try:
        blobs.put_stream(io.BytesIO(os.urandom(3 << 20)))
        print("stored")
    except OutOfSpaceError as exc:
        print(exc)
    """
)


@dataclass
class Row:
    """One fault's outcome."""

    fault: str
    clear_error: bool | None  # None: no error is due (the fault is invisible to users)
    recovered: bool
    lost: int
    junk: int
    note: str = ""


class NotRun(Exception):
    """The fault cannot be injected on this machine (the message names it and why)."""


# --- helpers ---------------------------------------------------------------------------------------


def _store(work: Path, db_url: str | None = None) -> tuple[Store, Dog, list[Clip]]:
    store = Store(work / "data", db_url=db_url)
    owner = store.create_user("owner@example.org", "Olga", "owner", "correct horse")
    dog = store.create_dog(owner, "Rex")
    clips = []
    for week in (1, 2):
        b = store.blobs
        with store.session() as s:
            clip = Clip(
                dog_id=dog.id,
                recorded_on=dt.date(2026, 1, week),
                video_sha256=b.put_bytes(os.urandom(400_000)),
                report_sha256=b.put_bytes(json.dumps({"week": week}).encode()),
                overlay_sha256=b.put_bytes(os.urandom(100_000)),
                status="done",
            )
            s.add(clip)
            s.flush()
            clips.append(clip)
    return store, dog, clips


def _lost(store: Store) -> int:
    return sum(not store.blobs.is_intact(sha) for sha in referenced_digests(store.engine))


def _junk(blobs: BlobStore, referenced: set[str]) -> int:
    n = 0
    for p in blobs.root.rglob("*"):
        rel = p.relative_to(blobs.root)
        if p.is_dir() and len(rel.parts) == 1 and len(p.name) == 2:
            continue
        if p.is_file() and len(rel.parts) == 2 and "".join(rel.parts) in referenced:
            continue
        if len(rel.parts) == 1 or not rel.parts[0].startswith("."):  # a leftover folder counts once
            n += 1
    return n


def _next_start(store: Store) -> int:
    """Run the start-up cleanup after the grace period; return the junk left."""
    collect_leftovers(store, now=time.time() + LATER)
    return _junk(store.blobs, referenced_digests(store.engine))


def _writer(work: Path, root: Path, mode: str, chunks: int = 6) -> tuple[subprocess.Popen[str], Path]:
    ready, go = work / f"ready-{mode}", work / f"go-{mode}"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), str(ready), str(go), str(chunks), mode],
        stdout=subprocess.PIPE,
        text=True,
    )
    while not ready.exists():
        if proc.poll() is not None:
            raise RuntimeError("writer failed to start")
        time.sleep(0.01)
    return proc, go


def _kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def _one_line(exc: BaseException, store: Store) -> bool:
    msg = str(exc)
    return isinstance(exc, HindsightInputError) and "\n" not in msg and str(store.data_dir) not in msg


# --- faults ----------------------------------------------------------------------------------------


def damaged(kind: str, how: str) -> Callable[[Path], Row]:
    def run(work: Path) -> Row:
        store, _, clips = _store(work)
        clip = clips[0]
        sha = clip.report_sha256 if kind == "report" else clip.video_sha256
        assert sha is not None
        p = store.blobs.path(sha)
        good = p.read_bytes()
        if how == "deleted":
            p.unlink()
        elif how == "truncated":
            p.write_bytes(good[: len(good) // 2])
        else:
            p.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
        try:
            if kind == "report":
                store.report(clip)
            else:
                store.blobs.verified_path(sha, "video")
            clear = False
        except DamagedFileError as exc:
            clear = _one_line(exc, store)
        other_ok = store.report(clips[1]) == {"week": 2}
        store.blobs.put_bytes(good)  # a re-analysis / re-upload stores the same bytes again
        recovered = other_ok and store.blobs.is_intact(sha)
        return Row(
            f"{kind} blob {how}", clear, recovered, _lost(store), _next_start(store), "others readable; re-stored"
        )

    return run


def killed_writer(mode: str, label: str) -> Callable[[Path], Row]:
    def run(work: Path) -> Row:
        store, _, _ = _store(work)
        before = _junk(store.blobs, referenced_digests(store.engine))
        proc, _ = _writer(work, store.blobs.root, mode)
        _kill(proc)
        injected = _junk(store.blobs, referenced_digests(store.engine)) - before
        junk = _next_start(store)
        return Row(label, None, junk == 0 and _lost(store) == 0, _lost(store), junk, f"{injected} leftovers injected")

    return run


def orphan_upload(work: Path) -> Row:
    store, _, _ = _store(work)
    proc, go = _writer(work, store.blobs.root, "plain", chunks=3)
    go.touch()
    sha = proc.communicate()[0].strip()  # stored, then the server dies before the clip row
    kept_young = store.blobs.exists(sha) and collect_leftovers(store).orphans == 0
    junk = _next_start(store)
    return Row(
        "upload killed after storing, before its row",
        None,
        kept_young and junk == 0,
        _lost(store),
        junk,
        "kept while young",
    )


def live_writer(work: Path) -> Row:
    store, dog, _ = _store(work)
    proc, go = _writer(work, store.blobs.root, "scratch", chunks=4)
    took = collect_leftovers(store, now=time.time() + 100 * LATER).removed
    go.touch()
    sha = proc.communicate()[0].strip()
    with store.session() as s:
        s.add(Clip(dog_id=dog.id, recorded_on=dt.date(2026, 1, 9), video_sha256=sha))
    ok = took == 0 and proc.returncode == 0 and store.blobs.is_intact(sha)
    return Row("cleanup while a writer runs", None, ok, _lost(store), _next_start(store), f"{took} taken from it")


def disk_full(work: Path) -> Row:
    mnt = work / "tiny"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode:
        raise NotRun("disk full: cannot mount a tmpfs (needs root)")
    try:
        blobs = BlobStore(mnt / "blobs")
        kept = blobs.put_bytes(b"report" * 1000)
        with open(mnt / "filler", "wb") as fh:
            try:
                while True:
                    fh.write(b"\0" * 65536)
            except OSError:
                pass
        data = os.urandom(300_000)
        try:
            blobs.put_bytes(data)
            clear = False
        except OutOfSpaceError as exc:
            clear = str(exc) == "the server is out of space"
        junk = _junk(blobs, {kept})
        (mnt / "filler").unlink()  # space is freed: the same write is retried
        retried = blobs.put_bytes(data)
        ok = blobs.read_bytes(retried) == data
        return Row("disk full while writing a blob", clear, ok, int(not blobs.is_intact(kept)), junk, "retry succeeds")
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def file_size_limit(work: Path) -> Row:
    root = work / "blobs"
    out = subprocess.run([sys.executable, "-c", FSIZE_CHILD, str(root)], capture_output=True, text=True)
    clear = out.stdout.strip() == "the server is out of space"
    blobs = BlobStore(root)
    retried = blobs.put_stream(io.BytesIO(os.urandom(3 << 20)))[0]  # without the limit
    junk = _junk(blobs, {retried})
    return Row("file-size limit (RLIMIT_FSIZE)", clear, blobs.is_intact(retried), 0, junk, "retry succeeds")


def hostile_text(db: str) -> Callable[[Path], Row]:
    def run(work: Path) -> Row:
        url: str | None = None
        drops: list[Callable[[], None]] = []
        if db == "postgresql":
            base = os.environ.get("HINDSIGHT_TEST_PG_URL")
            if not base:
                raise NotRun("text on PostgreSQL: HINDSIGHT_TEST_PG_URL not set")
            from sqlalchemy.engine import make_url

            schema = f"hs_bench_{uuid.uuid4().hex[:10]}"
            admin = create_engine(base)
            with admin.begin() as c:
                c.execute(text(f'CREATE SCHEMA "{schema}"'))
            url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)

            def drop() -> None:
                with admin.begin() as c:
                    c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()

            drops.append(drop)

        try:
            store, dog, _ = _store(work, url)
            try:
                store.create_dog(
                    store.user_by_email("owner@example.org"),  # type: ignore[arg-type]
                    "Re\x00x" + "x" * 500,
                    "Col\x00lie",
                    notes="\x00" * 10 + "n" * 50_000,
                )
                with store.session() as s:
                    video = store.blobs.put_bytes(b"a video")
                    s.add(Clip(dog_id=dog.id, recorded_on=dt.date(2026, 2, 1), video_sha256=video, error="\x00e" * 9))
                with store.session() as s:
                    d = s.scalars(select(Dog).where(Dog.breed == "Collie")).one()
                    ok = len(d.name) == 120 and "\x00" not in d.name and len(d.notes) == 10_000
                clear: bool | None = None
            except Exception:  # noqa: BLE001 - the row records any failure
                ok, clear = False, False
            lost = _lost(store)
            store.engine.dispose()
            return Row(f"NUL and over-long text ({db})", clear, ok, lost, 0, "cleaned at the ORM boundary")
        finally:
            for undo in drops:
                undo()

    return run


FAULTS: list[Callable[[Path], Row]] = [
    damaged("report", "bytes flipped"),
    damaged("report", "truncated"),
    damaged("report", "deleted"),
    damaged("video", "bytes flipped"),
    killed_writer("plain", "writer SIGKILLed mid-blob (partial upload)"),
    killed_writer("scratch+orphan", "job SIGKILLed mid-write (scratch, orphan, partial)"),
    orphan_upload,
    live_writer,
    disk_full,
    file_size_limit,
    hostile_text("sqlite"),
    hostile_text("postgresql"),
]


def main(argv: list[str] | None = None) -> int:
    """Run every fault and print the table; exit 1 when any row lost data, left junk or did not recover."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args(argv)
    rows: list[Row] = []
    skipped: list[str] = []
    for fault in FAULTS:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                rows.append(fault(Path(tmp)))
            except NotRun as exc:
                skipped.append(str(exc))

    def yn(v: bool | None) -> str:
        return "n/a" if v is None else ("yes" if v else "NO")

    head = ["fault injected", "clear error", "recovered, no manual step", "data lost", "junk left", "note"]
    body = [[r.fault, yn(r.clear_error), yn(r.recovered), str(r.lost), str(r.junk), r.note] for r in rows]
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for b in body:
            print("| " + " | ".join(b) + " |")
    else:
        widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
        for line in [head, ["-" * w for w in widths], *body]:
            print("  ".join(x.ljust(w) for x, w in zip(line, widths, strict=True)).rstrip())
    bad = [r for r in rows if r.lost or r.junk or not r.recovered or r.clear_error is False]
    print(
        f"\n{len(rows)} faults injected, {sum(r.recovered for r in rows)} recovered with no manual step, "
        f"{sum(r.lost for r in rows)} files lost, {sum(r.junk for r in rows)} junk left"
    )
    for s in skipped:
        print(f"not run: {s}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
