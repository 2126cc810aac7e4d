"""One analysis run: claim the clip, keep its heartbeat, analyse, write the results once.

A run holds the clip by its ``worker_id`` (a lease). Every write of a run (progress, heartbeat,
results, failure) is a conditional update that matches only while the run still holds the lease,
so a run that was taken over (its heartbeat stopped for longer than the stale timeout) or
cancelled writes nothing more. Results are content-addressed blobs recorded in one final
transaction: a run killed at any point leaves the upload intact and no half results.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vision.errors import HindsightInputError, OutOfSpaceError
from vision.jobs.settings import JobSettings
from vision.storage.db import Store
from vision.storage.models import Clip
from vision.storage.text import clean_values

log = logging.getLogger(__name__)

#: Clip statuses, as :func:`vision.jobs.job_status` reports them.
STATUSES = ("uploaded", "queued", "running", "done", "failed", "interrupted")
#: Progress callbacks closer together than this (seconds) are not written, except the last.
PROGRESS_EVERY_S = 0.5


class LeaseLost(Exception):
    """The run no longer holds its clip: it was taken over by another worker or cancelled."""


@dataclass(frozen=True)
class RunOutcome:
    """How one call of :func:`run_job` ended.

    Attributes
    ----------
    clip_id
        The clip.
    outcome
        ``"done"`` (results recorded), ``"failed"`` (final; error kept), ``"retry"`` (this run
        failed, the clip is queued again for a later attempt), ``"skipped"`` (the clip was not
        queued: another run holds it, it is done, or it was cancelled), ``"lost"`` (the run lost
        its lease midway and wrote nothing), ``"released"`` (the worker was stopped; the clip is
        queued again and this run does not count as an attempt).
    message
        One line for the log.
    """

    clip_id: int
    outcome: str
    message: str = ""


def db_now(s: Session) -> dt.datetime:
    """The database server's current UTC time (naive), so that hosts with skewed clocks agree.

    SQLite is local to one machine: its time is this process's clock.
    """
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy import func

        value = s.scalar(select(func.timezone("UTC", func.clock_timestamp())))
        if isinstance(value, dt.datetime):
            return value.replace(tzinfo=None)
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def worker_identity() -> str:
    """``host:pid:token``, unique to one run (the token tells two runs in one process apart)."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _held(clip_id: int, worker_id: str) -> Any:
    return (Clip.id == clip_id) & (Clip.worker_id == worker_id) & (Clip.status == "running")


def claim(store: Store, clip_id: int, worker_id: str) -> bool:
    """Take a queued clip for this run (``queued`` -> ``running``, one more attempt); False if not queued."""
    with store.session() as s:
        now = db_now(s)
        taken = s.execute(
            update(Clip)
            .where(Clip.id == clip_id, Clip.status == "queued")
            .values(
                status="running",
                worker_id=worker_id,
                worker_pid=os.getpid(),
                heartbeat_at=now,
                started_at=now,
                attempts=Clip.attempts + 1,
                progress=0.0,
                message="starting",
            )
            .execution_options(synchronize_session=False)
        )
        return bool(taken.rowcount == 1)  # type: ignore[attr-defined]


def touch(store: Store, clip_id: int, worker_id: str, *, progress: float | None = None, message: str = "") -> bool:
    """Write the heartbeat (and progress, 0..1, with its message) while the run holds the clip."""
    with store.session() as s:
        values: dict[str, Any] = {"heartbeat_at": db_now(s)}
        if progress is not None:
            values.update(progress=progress, message=message[:255])
        done = s.execute(
            update(Clip).where(_held(clip_id, worker_id)).values(**values).execution_options(synchronize_session=False)
        )
        return bool(done.rowcount == 1)  # type: ignore[attr-defined]


def _release(store: Store, clip_id: int, worker_id: str, settings: JobSettings, message: str, *, retry: bool) -> bool:
    """Hand the clip back to the queue (``running`` -> ``queued``) while the run holds it.

    With ``retry`` the run counts as an attempt (it failed); without, it does not (the worker stopped).
    """
    with store.session() as s:
        values: dict[str, Any] = {
            "status": "queued",
            "worker_id": None,
            "queued_at": db_now(s),
            "progress": 0.0,
            "message": message[:255],
        }
        if not retry:
            values["attempts"] = Clip.attempts - 1
        done = s.execute(
            update(Clip).where(_held(clip_id, worker_id)).values(**values).execution_options(synchronize_session=False)
        )
        return bool(done.rowcount == 1)  # type: ignore[attr-defined]


def _fail(store: Store, clip_id: int, worker_id: str, error: str) -> bool:
    with store.session() as s:
        done = s.execute(
            update(Clip)
            .where(_held(clip_id, worker_id))
            .values(status="failed", error=error[:2000], message="analysis failed", finished_at=db_now(s))
            .execution_options(synchronize_session=False)
        )
        return bool(done.rowcount == 1)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class _Results:
    report: dict[str, Any]
    report_sha256: str
    overlay_sha256: str
    tracks_sha256: str


def _analyse(
    store: Store,
    video_sha256: str,
    rendered_tracks_sha256: str | None,
    backend: Any | None,
    progress: Callable[[float, str], None],
) -> _Results:
    """The analysis of a stored clip: :func:`vision.analysis.analyze_path`, then the overlay; results stored."""
    from vision.analysis import analyze_path
    from vision.io import load_poses, save_poses
    from vision.overlay import render_overlay
    from vision.pose.replay import ReplayBackend

    with store.blobs.scratch_dir() as tmp:
        video = store.blobs.verified_path(video_sha256, "video")
        if rendered_tracks_sha256:  # demo clips: the same pipeline, fed the keypoints they were drawn from
            nc = store.blobs.copy_to(rendered_tracks_sha256, Path(tmp) / "rendered.nc", "tracks")
            backend = ReplayBackend(load_poses(nc))
        result = analyze_path(video, backend=backend, progress=progress)
        result.report["source"]["file"] = "upload"
        progress(0.97, "drawing the overlay")
        overlay = render_overlay(
            video,
            result.tracks,
            result.events,
            Path(tmp) / "overlay.mp4",
            muscle=result.report["metrics"].get("muscle"),
        )
        tracks_sha256 = ""  # a demo clip keeps the tracks it was drawn from: none stored that no row would name
        if not rendered_tracks_sha256:
            tracks_sha256 = store.blobs.put_file(save_poses(result.tracks, Path(tmp) / "tracks.nc"))
        return _Results(
            report=result.report,
            report_sha256=store.blobs.put_bytes(json.dumps(result.report, indent=1).encode()),
            overlay_sha256=store.blobs.put_file(overlay),
            tracks_sha256=tracks_sha256,
        )


def _record(store: Store, clip_id: int, worker_id: str, results: _Results, keep_tracks: bool) -> bool:
    """Record the results in one transaction, only while the run holds the clip."""
    r = results.report
    values: dict[str, Any] = {
        "report_sha256": results.report_sha256,
        "overlay_sha256": results.overlay_sha256,
        "usable": bool(r["quality"]["usable"]),
        "hind_asymmetry_pct": r["metrics"]["symmetry"]["hind_asymmetry_pct"],
        "weaker_side": r["metrics"]["symmetry"]["weaker_side"],
        "bunny_hop_flag": r["metrics"]["bunny_hop"]["flag"],
        "wobble_flag": r["metrics"]["wobble"]["flag"],
        "status": "done",
        "progress": 1.0,
        "message": "analysed",
        "error": "",
    }
    if not keep_tracks:
        values["tracks_sha256"] = results.tracks_sha256
    values = clean_values(Clip, values)  # a Core update bypasses the ORM validators
    with store.session() as s:
        now = db_now(s)
        done = s.execute(
            update(Clip)
            .where(_held(clip_id, worker_id))
            .values(**values, heartbeat_at=now, finished_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(done.rowcount == 1)  # type: ignore[attr-defined]


def run_job(
    store: Store,
    clip_id: int,
    settings: JobSettings | None = None,
    *,
    worker_id: str | None = None,
    backend: Any | None = None,
) -> RunOutcome:
    """Run the analysis of one queued clip in this process and record its results.

    Parameters
    ----------
    store
        The store holding the clip.
    clip_id
        A clip whose status is ``queued``; any other status returns ``"skipped"`` at once (so a
        duplicate queue message is harmless).
    settings
        Attempts, retry delay and heartbeat interval (default: from the environment).
    worker_id
        The lease name (default: a new :func:`worker_identity`).
    backend
        A pose backend to use instead of the keypoint model (tests, replays).

    Returns
    -------
    RunOutcome
        What happened; the clip's row says the same. Bad input (an unreadable video, no dog)
        fails at once; other errors, a full disk included, are tried again until
        ``settings.max_attempts`` runs have failed, then the clip ends ``failed`` with the error
        kept. The upload is kept in every case.

    Raises
    ------
    KeyboardInterrupt
        The worker was told to stop now: the clip is first handed back to the queue
        (``"released"``, not counted as an attempt).
    """
    settings = settings or JobSettings.from_env()
    worker_id = worker_id or worker_identity()
    if not claim(store, clip_id, worker_id):
        return RunOutcome(clip_id, "skipped", "not queued")
    with store.session() as s:
        clip = s.get(Clip, clip_id)
        assert clip is not None
        video_sha, pose_source, attempts = clip.video_sha256, clip.pose_source, clip.attempts
        rendered_tracks = clip.tracks_sha256 if pose_source == "rendered" else None
    log.info("clip %s: attempt %s by %s", clip_id, attempts, worker_id)
    lost = threading.Event()
    finished = threading.Event()

    def heartbeat() -> None:  # keeps the lease through long quiet steps (decoding, the model's first load)
        while not finished.wait(settings.heartbeat_s):
            try:
                if not touch(store, clip_id, worker_id):
                    lost.set()
                    return
            except Exception:  # noqa: BLE001 - a database hiccup: the next beat tries again
                log.exception("clip %s: heartbeat not written", clip_id)

    beat = threading.Thread(target=heartbeat, name=f"heartbeat-{clip_id}", daemon=True)
    beat.start()
    last = [0.0]

    def progress(fraction: float, message: str) -> None:
        if lost.is_set():
            raise LeaseLost
        if time.monotonic() - last[0] < PROGRESS_EVERY_S and fraction < 1:
            return
        last[0] = time.monotonic()
        if not touch(store, clip_id, worker_id, progress=0.95 * fraction, message=message):
            lost.set()
            raise LeaseLost

    try:
        results = _analyse(store, video_sha, rendered_tracks, backend, progress)
    except LeaseLost:
        return RunOutcome(clip_id, "lost", "taken over or cancelled; nothing written")
    except KeyboardInterrupt:
        _release(store, clip_id, worker_id, settings, "its worker stopped; waiting for another", retry=False)
        raise
    except OutOfSpaceError as exc:
        return _after_failure(store, clip_id, worker_id, settings, attempts, str(exc))
    except HindsightInputError as exc:
        _fail(store, clip_id, worker_id, str(exc))
        return RunOutcome(clip_id, "failed", str(exc))
    except Exception as exc:  # noqa: BLE001 - the job records any failure and stays retryable
        log.exception("clip %s: analysis failed", clip_id)
        return _after_failure(
            store, clip_id, worker_id, settings, attempts, f"internal error: {type(exc).__name__}: {exc}"
        )
    finally:
        finished.set()
    if not _record(store, clip_id, worker_id, results, keep_tracks=rendered_tracks is not None):
        return RunOutcome(clip_id, "lost", "taken over or cancelled before the results were recorded")
    store.flag_if_changed(clip_id)
    return RunOutcome(clip_id, "done", "analysed")


def _after_failure(
    store: Store, clip_id: int, worker_id: str, settings: JobSettings, attempts: int, error: str
) -> RunOutcome:
    """Queue the clip again while attempts remain, else fail it; the error is kept either way."""
    if attempts >= settings.max_attempts:
        _fail(store, clip_id, worker_id, error)
        return RunOutcome(clip_id, "failed", error)
    with store.session() as s:
        s.execute(
            update(Clip)
            .where(_held(clip_id, worker_id))
            .values(error=error[:2000])
            .execution_options(synchronize_session=False)
        )
    note = f"attempt {attempts} of {settings.max_attempts} failed; trying again"
    if not _release(store, clip_id, worker_id, settings, note, retry=True):
        return RunOutcome(clip_id, "lost", error)
    return RunOutcome(clip_id, "retry", error)
