"""One call for an upload page or a batch import: room checked, upload stored, analysis queued."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import BinaryIO

from vision.jobs.intake import store_upload
from vision.jobs.queue import JobQueue
from vision.jobs.service import JobStatus, check_queue_room, enqueue_analysis, job_status
from vision.jobs.settings import JobSettings
from vision.storage.db import MAX_UPLOAD_BYTES, Store
from vision.storage.models import User


@dataclass(frozen=True)
class Submission:
    """An upload handed in for analysis.

    Attributes
    ----------
    clip_id
        The clip (the existing one when ``already_there``).
    already_there
        The dog already had a clip of this very file; no second clip or job was made.
    job
        The clip's analysis status after the call.
    """

    clip_id: int
    already_there: bool
    job: JobStatus


def submit_upload(
    store: Store,
    user: User,
    dog_id: int,
    stream: BinaryIO,
    original_name: str,
    recorded_on: dt.date | None = None,
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    settings: JobSettings | None = None,
    queue: JobQueue | None = None,
) -> Submission:
    """Store an upload and queue its analysis.

    Raises
    ------
    PermissionError
        The user may not see the dog, or is not its owner.
    QueueFullError
        The owner already has the most analyses waiting that are allowed; checked before the
        upload is read, so nothing is stored.
    HindsightInputError
        The upload is not a usable video (see :func:`vision.jobs.store_upload`); nothing is stored.
    """
    settings = settings or JobSettings.from_env()
    dog = store.get_dog(user, dog_id)
    if dog.owner_id != user.id:
        raise PermissionError("only the dog's owner uploads its clips")
    check_queue_room(store, user.id, settings)
    upload = store_upload(store, user, dog_id, stream, original_name, recorded_on, max_bytes=max_bytes)
    if upload.already_there:
        return Submission(upload.clip.id, True, job_status(store, upload.clip.id, settings=settings))
    job = enqueue_analysis(store, user, upload.clip.id, settings=settings, queue=queue)
    return Submission(upload.clip.id, False, job)
