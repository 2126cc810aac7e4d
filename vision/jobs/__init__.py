"""Analysis jobs: uploads in, a queue (Huey: embedded SQLite or shared Redis), workers, heartbeats, retries.

The dashboard and the command line call these functions; :class:`vision.storage.Store` only
keeps the records. ``HINDSIGHT_QUEUE_URL`` chooses the queue (unset: embedded, no server);
the other settings are in :class:`JobSettings`.
"""

from vision.jobs.intake import Upload, store_upload
from vision.jobs.runner import STATUSES, RunOutcome, run_job
from vision.jobs.service import (
    JobStatus,
    QueueFullError,
    QueueUnavailableError,
    cancel_analysis,
    check_queue_room,
    enqueue_analysis,
    job_status,
    requeue_stale,
    run_now,
)
from vision.jobs.settings import JobSettings
from vision.jobs.submit import Submission, submit_upload

__all__ = [
    "STATUSES",
    "JobSettings",
    "JobStatus",
    "QueueFullError",
    "QueueUnavailableError",
    "RunOutcome",
    "Submission",
    "Upload",
    "cancel_analysis",
    "check_queue_room",
    "enqueue_analysis",
    "job_status",
    "requeue_stale",
    "run_job",
    "run_now",
    "store_upload",
    "submit_upload",
]
