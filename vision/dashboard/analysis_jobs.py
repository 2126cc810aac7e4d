"""The dashboard's door to analysis jobs (:mod:`vision.jobs`).

Hand in an upload, retry or repeat an analysis, take over analyses whose worker died, and read where one stands.
"""

from __future__ import annotations

import datetime as dt
from typing import BinaryIO

from vision.jobs import JobStatus, Submission, enqueue_analysis, job_status, requeue_stale, submit_upload
from vision.storage import Store
from vision.storage.models import User

__all__ = ["JobStatus", "Submission", "reanalyse", "refresh", "start", "state", "submit"]


def submit(
    store: Store, user: User, dog_id: int, stream: BinaryIO, name: str, recorded_on: dt.date | None
) -> Submission:
    """Store an upload and queue its analysis; ``already_there`` when the dog has a clip of this very file.

    Raises HindsightInputError (an unusable file, or a full queue) and PermissionError.
    """
    return submit_upload(store, user, dog_id, stream, name, recorded_on)


def start(store: Store, user: User, clip_id: int) -> JobStatus:
    """Queue (or retry) the analysis of a clip."""
    return enqueue_analysis(store, user, clip_id)


def reanalyse(store: Store, user: User, clip_id: int) -> JobStatus:
    """Queue a new analysis of a clip (done, failed or damaged); its old results stay until the new ones are in."""
    return enqueue_analysis(store, user, clip_id, again=True)


def refresh(store: Store) -> None:
    """Queue again the analyses whose worker died."""
    requeue_stale(store)


def state(store: Store, user: User, clip_id: int) -> JobStatus:
    """Where the analysis of a clip stands: status, progress, queue position and time to go."""
    return job_status(store, clip_id, user)
