"""The job system's settings, read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

from vision.errors import HindsightInputError


def _number(name: str, default: float, minimum: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise HindsightInputError(f"{name} must be a number, not {raw[:40]!r}") from exc
    if value < minimum:
        raise HindsightInputError(f"{name} must be at least {minimum:g}")
    return value


@dataclass(frozen=True)
class JobSettings:
    """How jobs are queued, retried and taken over.

    Attributes
    ----------
    queue_url
        ``HINDSIGHT_QUEUE_URL``: ``redis://host:port/db`` (or ``rediss://``) for a queue that many
        machines share; empty for the embedded queue, a SQLite file in the data folder.
    max_attempts
        ``HINDSIGHT_JOB_ATTEMPTS`` (default 3): analysis runs of one clip before it ends ``failed``;
        a run counts when a worker starts it, whether it then fails or its worker dies.
    retry_delay_s
        ``HINDSIGHT_JOB_RETRY_DELAY_S`` (default 10 s): wait before a failed run is tried again.
    heartbeat_s
        ``HINDSIGHT_JOB_HEARTBEAT_S`` (default 5 s): how often a running job writes its heartbeat.
    stale_after_s
        ``HINDSIGHT_JOB_STALE_S`` (default 60 s): a running job whose heartbeat is older than this
        (by the database's clock) has lost its worker and is queued again. Must exceed
        ``2 * heartbeat_s``.
    max_queued_per_owner
        ``HINDSIGHT_MAX_QUEUED_PER_OWNER`` (default 10): an owner's clips waiting or running at once.
    autostart_worker
        ``HINDSIGHT_AUTOSTART_WORKER`` (default on with the embedded queue, off with Redis): queueing a
        job starts a local worker process when none is running on this data folder.
    autostart_idle_exit_s
        ``HINDSIGHT_AUTOSTART_IDLE_EXIT_S`` (default 300 s): such a worker stops after this long with
        no clip queued or running.
    """

    queue_url: str = ""
    max_attempts: int = 3
    retry_delay_s: float = 10.0
    heartbeat_s: float = 5.0
    stale_after_s: float = 60.0
    max_queued_per_owner: int = 10
    autostart_worker: bool = True
    autostart_idle_exit_s: float = 300.0

    @property
    def embedded(self) -> bool:
        """True for the embedded (SQLite) queue."""
        return not self.queue_url

    @classmethod
    def from_env(cls) -> JobSettings:
        """The settings from ``HINDSIGHT_*`` variables (see the attributes).

        Raises
        ------
        HindsightInputError
            A variable is malformed (one line naming it).
        """
        url = os.environ.get("HINDSIGHT_QUEUE_URL", "").strip()
        if url and not url.startswith(("redis://", "rediss://", "unix://")):
            raise HindsightInputError("HINDSIGHT_QUEUE_URL must be a redis:// URL, or unset for the embedded queue")
        heartbeat = _number("HINDSIGHT_JOB_HEARTBEAT_S", 5.0, 0.1)
        stale = _number("HINDSIGHT_JOB_STALE_S", 60.0, 0.5)
        if stale <= 2 * heartbeat:
            raise HindsightInputError("HINDSIGHT_JOB_STALE_S must exceed twice HINDSIGHT_JOB_HEARTBEAT_S")
        autostart = os.environ.get("HINDSIGHT_AUTOSTART_WORKER", "").strip().lower()
        return cls(
            queue_url=url,
            max_attempts=int(_number("HINDSIGHT_JOB_ATTEMPTS", 3, 1)),
            retry_delay_s=_number("HINDSIGHT_JOB_RETRY_DELAY_S", 10.0, 0.0),
            heartbeat_s=heartbeat,
            stale_after_s=stale,
            max_queued_per_owner=int(_number("HINDSIGHT_MAX_QUEUED_PER_OWNER", 10, 1)),
            autostart_worker=(autostart not in ("0", "no", "false", "off")) if autostart else not url,
            autostart_idle_exit_s=_number("HINDSIGHT_AUTOSTART_IDLE_EXIT_S", 300.0, 0.5),
        )
