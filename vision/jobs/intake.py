"""Uploads: store the file, check that it is a video of the right length, record the clip (once per dog)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import BinaryIO

from vision.errors import HindsightInputError, OutOfSpaceError
from vision.storage.db import MAX_UPLOAD_BYTES, Store
from vision.storage.models import Clip, User


@dataclass(frozen=True)
class Upload:
    """A stored upload.

    Attributes
    ----------
    clip
        The clip's row.
    already_there
        True when the dog already had a clip of these very bytes: that clip is returned and
        nothing new is recorded.
    """

    clip: Clip
    already_there: bool


def store_upload(
    store: Store,
    user: User,
    dog_id: int,
    stream: BinaryIO,
    original_name: str,
    recorded_on: dt.date | None = None,
    *,
    pose_source: str = "model",
    max_bytes: int = MAX_UPLOAD_BYTES,
) -> Upload:
    """Store an upload (content-addressed) after checking that it is a video; queue nothing.

    Parameters
    ----------
    recorded_on
        The recording date; default: the video's own metadata, else none: the clip is dated by its
        upload and marked so (``Clip.recorded_on_known`` False).
    max_bytes
        The largest upload accepted.

    Raises
    ------
    PermissionError
        The user may not see the dog.
    HindsightInputError
        Oversized, empty, not a video, corrupt, too short or too long (one plain line);
        nothing is left behind.
    """
    from vision.video import check_duration, probe, recorded_date

    store.get_dog(user, dog_id)
    try:
        sha, size = store.blobs.put_stream(stream, max_bytes=max_bytes)
    except OutOfSpaceError:
        raise  # "the server is out of space": the same upload can be retried once space is freed
    except ValueError as exc:
        raise HindsightInputError(str(exc)) from exc
    if size == 0:
        store.drop_unreferenced(sha)
        raise HindsightInputError("the file is empty")
    existing = store.clip_with_video(user, dog_id, sha)
    if existing is not None:
        return Upload(existing, already_there=True)
    path = store.blobs.path(sha)
    try:
        check_duration(probe(path))
    except HindsightInputError as exc:
        store.drop_unreferenced(sha)
        raise HindsightInputError(str(exc).replace(path.name, "the upload")) from exc
    when = recorded_on or recorded_date(path)
    clip = store.add_clip(
        user,
        dog_id,
        video_sha256=sha,
        size_bytes=size,
        original_name=original_name,
        recorded_on=when,
        pose_source=pose_source,
    )
    return Upload(clip, already_there=False)
