"""The queue engine: Huey, on a SQLite file in the data folder (embedded) or on Redis (shared by many hosts).

The queue carries only clip ids. The clip's row in the database is the job's truth (status,
attempts, lease, heartbeat); a queue message for a clip that is not ``queued`` any more is
skipped, so a message delivered twice, or re-sent by :func:`vision.jobs.requeue_stale`, never
runs an analysis twice.
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from vision.jobs.runner import run_job, worker_identity
from vision.jobs.settings import JobSettings
from vision.storage.db import Store

log = logging.getLogger(__name__)

#: The Huey instance's name (the Redis key prefix and the SQLite queue's name).
QUEUE_NAME = "hindsight"
#: The task's registered name.
TASK_NAME = "hindsight.analyse_clip"
#: The embedded queue's file in the data folder.
EMBEDDED_QUEUE_FILE = "queue.db"
#: Every worker on a data folder holds a shared lock on this file; no holder means no worker.
WORKERS_LOCK_FILE = "workers.lock"
#: :func:`ensure_local_worker` starts no second worker this soon after the first (seconds).
AUTOSTART_SPACING_S = 15.0


class JobQueue:
    """Huey bound to one store: ``submit`` a clip id, and the task that workers run for it.

    Parameters
    ----------
    store
        The store whose clips the jobs analyse (workers open the same database and blobs).
    settings
        Queue URL, attempts and retry delay (default: from the environment).
    """

    def __init__(self, store: Store, settings: JobSettings | None = None) -> None:
        from huey import RedisHuey, SqliteHuey
        from huey.exceptions import RetryTask

        self.store = store
        self.settings = settings or JobSettings.from_env()
        if self.settings.embedded:
            self.huey: Any = SqliteHuey(
                QUEUE_NAME, filename=str(store.data_dir / EMBEDDED_QUEUE_FILE), results=False, utc=True
            )
        else:
            self.huey = RedisHuey(QUEUE_NAME, url=self.settings.queue_url, results=False, utc=True)
        queue_settings = self.settings

        @self.huey.task(name=TASK_NAME)
        def analyse_clip(clip_id: int) -> None:
            try:
                outcome = run_job(self.store, clip_id, queue_settings, worker_id=worker_identity())
            except KeyboardInterrupt:
                self.submit(clip_id, autostart=False)  # the clip was handed back: give it a message
                raise
            log.info("clip %s: %s %s", clip_id, outcome.outcome, outcome.message)
            if outcome.outcome == "retry":
                raise RetryTask(f"clip {clip_id}: {outcome.message}", delay=queue_settings.retry_delay_s)

        self._task = analyse_clip

    def submit(self, clip_id: int, *, autostart: bool = True) -> None:
        """Put a message for the clip on the queue (the clip's row must already say ``queued``).

        With the embedded queue, a local worker is started when none runs (see :func:`ensure_local_worker`).
        """
        self._task(clip_id)
        if autostart and self.settings.embedded and self.settings.autostart_worker:
            ensure_local_worker(self.store, idle_exit_s=self.settings.autostart_idle_exit_s)

    def waiting_clip_ids(self) -> set[int]:
        """Clip ids with a message waiting on the queue or scheduled for a retry."""
        tasks = list(self.huey.pending()) + list(self.huey.scheduled())
        return {int(t.args[0]) for t in tasks if getattr(t, "name", "").endswith("analyse_clip") and t.args}

    def waiting_count(self) -> int:
        """Messages waiting on the queue (retries scheduled for later not counted)."""
        return int(self.huey.pending_count())

    def flush(self) -> None:
        """Drop every message (tests and benchmarks start from an empty queue)."""
        self.huey.flush()


def workers_lock_path(store: Store) -> Path:
    """The lock file every worker on this data folder holds (shared)."""
    return store.data_dir / WORKERS_LOCK_FILE


def hold_worker_lock(store: Store) -> int:
    """Take the shared workers' lock for this process's lifetime; return its file descriptor."""
    fd = os.open(workers_lock_path(store), os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def local_worker_running(store: Store) -> bool:
    """True when some process on this machine holds the workers' lock of this data folder."""
    fd = os.open(workers_lock_path(store), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock taken here
    return False


def ensure_local_worker(store: Store, *, idle_exit_s: float = 300.0) -> bool:
    """Start ``python -m vision.jobs.worker`` in the background unless a worker runs on this data folder.

    The started worker stops after ``idle_exit_s`` seconds with no clip queued or running; its output
    goes to ``worker.log`` in the data folder. Returns True when a worker was started.
    """
    if local_worker_running(store):
        return False
    stamp = store.data_dir / "worker.started"
    try:
        if time.time() - stamp.stat().st_mtime < AUTOSTART_SPACING_S:
            return False
    except FileNotFoundError:
        pass
    stamp.touch()
    with open(store.data_dir / "worker.log", "ab") as out:
        subprocess.Popen(
            [sys.executable, "-m", "vision.jobs.worker", "--idle-exit", str(idle_exit_s)],
            env=store.env(),
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return True
