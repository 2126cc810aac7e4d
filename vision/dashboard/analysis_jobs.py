"""The dashboard's door to analysis jobs: store an upload, start or retry its analysis, and read its state.

Uses :mod:`vision.jobs` when it provides the job functions, else the store's own job methods.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, BinaryIO

from vision.storage import Store
from vision.storage.models import Clip, User


@dataclass(frozen=True)
class JobState:
    """A clip's analysis as the pages show it.

    Attributes
    ----------
    status
        The clip's status (``uploaded``, ``queued``, ``running``, ``done``, ``failed``, ``interrupted``).
    progress
        0..1.
    message
        What the job is doing, or why it failed.
    queue_position
        1 for the next job to run, None when not waiting or not known.
    eta_s
        Seconds until done, None when not known.
    """

    status: str
    progress: float
    message: str
    queue_position: int | None = None
    eta_s: float | None = None


def _jobs() -> Any | None:
    try:
        import vision.jobs as jobs
    except ImportError:
        return None
    return jobs if hasattr(jobs, "enqueue_analysis") else None


def store_upload(
    store: Store, user: User, dog_id: int, stream: BinaryIO, name: str, recorded_on: dt.date | None
) -> Clip:
    """Store an uploaded video as a new clip of the dog (raises HindsightInputError for an unusable file)."""
    jobs = _jobs()
    if jobs is not None and hasattr(jobs, "store_upload"):
        return jobs.store_upload(store, user, dog_id, stream, name, recorded_on)
    legacy: Any = store
    return legacy.add_clip(user, dog_id, stream, name, recorded_on)


def start(store: Store, user: User, clip_id: int) -> None:
    """Queue (or retry) the analysis of a clip."""
    jobs = _jobs()
    if jobs is not None:
        jobs.enqueue_analysis(store, user, clip_id)
        return
    legacy: Any = store
    legacy.start_analysis(user, clip_id)


def refresh(store: Store) -> None:
    """Mark analyses whose worker died (only needed by the store's own job methods)."""
    legacy: Any = store
    if _jobs() is None and hasattr(legacy, "refresh_stale"):
        legacy.refresh_stale()


def state(store: Store, clip: Clip) -> JobState:
    """The analysis state of a clip, with its queue position and time to go when the job system knows them."""
    jobs = _jobs()
    if jobs is not None and hasattr(jobs, "job_status"):
        found: Any = jobs.job_status(store, clip.id)
        if found is not None:
            get = found.get if isinstance(found, dict) else lambda k, d=None: getattr(found, k, d)
            return JobState(
                status=str(get("status", clip.status)),
                progress=float(get("progress", clip.progress) or 0.0),
                message=str(get("message", clip.message) or ""),
                queue_position=get("queue_position"),
                eta_s=get("eta_s", get("eta")),
            )
    return JobState(clip.status, float(clip.progress or 0.0), clip.message or "")
