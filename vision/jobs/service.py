"""What the dashboard and the command line call: queue, status, take-over of dead workers, cancel."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select, update

from vision.errors import HindsightInputError
from vision.jobs.queue import JobQueue
from vision.jobs.runner import RunOutcome, db_now, run_job
from vision.jobs.settings import JobSettings
from vision.storage.db import Store
from vision.storage.models import Clip, Dog, User

#: Clips done most recently whose run times give the estimate of :attr:`JobStatus.eta_s`.
ETA_SAMPLE = 20
#: Statuses from which a clip may be queued (again).
QUEUEABLE = ("uploaded", "failed", "interrupted")


class QueueFullError(HindsightInputError):
    """An owner already has as many analyses waiting or running as allowed."""


class QueueUnavailableError(HindsightInputError):
    """The queue server (Redis) could not be reached; nothing was queued."""


@dataclass(frozen=True)
class JobStatus:
    """Where a clip's analysis stands.

    Attributes
    ----------
    clip_id
        The clip.
    status
        ``uploaded`` (never queued), ``queued``, ``running``, ``done``, ``failed`` or
        ``interrupted`` (its worker stopped heartbeating; it is queued again by the next
        :func:`requeue_stale`, or by a retry).
    progress
        Fraction done, 0..1.
    message
        What the run is doing, or why it waits, in one line.
    attempts
        Runs started (a run whose worker was stopped with SIGTERM is not counted).
    max_attempts
        Runs allowed before the clip ends ``failed``.
    error
        The last run's error ("" when none).
    queue_position
        1 for the next clip to start, 2 for the one after, ...; None unless ``queued``.
    eta_s
        Seconds until it is done, estimated from recent run times and the running workers;
        None when not queued or running, or when no clip has been analysed yet.
    """

    clip_id: int
    status: str
    progress: float
    message: str
    attempts: int
    max_attempts: int
    error: str
    queue_position: int | None
    eta_s: float | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the attributes."""
        return asdict(self)


def _settings(settings: JobSettings | None) -> JobSettings:
    return settings or JobSettings.from_env()


#: One queue per (store, settings) in this process, so that a page calling every few seconds reuses its connections.
_QUEUES: dict[tuple[int, JobSettings], JobQueue] = {}


def _queue(store: Store, queue: JobQueue | None, settings: JobSettings) -> JobQueue:
    if queue is not None:
        return queue
    key = (id(store), settings)
    cached = _QUEUES.get(key)
    if cached is None or cached.store is not store:
        cached = _QUEUES[key] = JobQueue(store, settings)
    return cached


def job_status(
    store: Store, clip_id: int, user: User | None = None, *, settings: JobSettings | None = None
) -> JobStatus:
    """The status of a clip's analysis.

    Parameters
    ----------
    user
        When given, the user must be allowed to see the clip (PermissionError otherwise);
        None for the operator's command line.

    Raises
    ------
    HindsightInputError
        No such clip (operator call).
    """
    settings = _settings(settings)
    if user is not None:
        store.get_clip(user, clip_id)
    with store.session() as s:
        clip = s.get(Clip, clip_id)
        if clip is None:
            raise HindsightInputError(f"no clip {clip_id}")
        now = db_now(s)
        status = clip.status
        if status == "running" and (
            clip.heartbeat_at is None or clip.heartbeat_at < now - dt.timedelta(seconds=settings.stale_after_s)
        ):
            status = "interrupted"
        position = None
        if status == "queued":
            when = clip.queued_at or clip.uploaded_at
            ahead = s.scalar(
                select(func.count())
                .select_from(Clip)
                .where(
                    Clip.status == "queued",
                    (func.coalesce(Clip.queued_at, Clip.uploaded_at) < when)
                    | ((func.coalesce(Clip.queued_at, Clip.uploaded_at) == when) & (Clip.id < clip.id)),
                )
            )
            position = int(ahead or 0) + 1
        eta = _eta_s(s, status, position, clip.progress, now, settings)
        return JobStatus(
            clip_id=clip.id,
            status=status,
            progress=round(float(clip.progress), 4),
            message=clip.message,
            attempts=int(clip.attempts or 0),
            max_attempts=settings.max_attempts,
            error=clip.error,
            queue_position=position,
            eta_s=eta,
        )


def _eta_s(
    s: Any, status: str, position: int | None, progress: float, now: dt.datetime, settings: JobSettings
) -> float | None:
    if status not in ("queued", "running"):
        return None
    recent = s.execute(
        select(Clip.started_at, Clip.finished_at)
        .where(Clip.status == "done", Clip.started_at.is_not(None), Clip.finished_at.is_not(None))
        .order_by(Clip.finished_at.desc())
        .limit(ETA_SAMPLE)
    ).all()
    durations = [(f - b).total_seconds() for b, f in recent if f >= b]
    if not durations:
        return None
    mean = sum(durations) / len(durations)
    if status == "running":
        return round(max(0.0, 1.0 - progress) * mean, 1)
    fresh = now - dt.timedelta(seconds=settings.stale_after_s)
    workers = s.scalar(
        select(func.count()).select_from(Clip).where(Clip.status == "running", Clip.heartbeat_at >= fresh)
    )
    ahead = (position or 1) - 1
    return round(mean * (ahead / max(1, int(workers or 0)) + 1.0), 1)


def check_queue_room(store: Store, owner_id: int, settings: JobSettings | None = None) -> None:
    """Raise :class:`QueueFullError` when the owner has ``max_queued_per_owner`` clips queued or running."""
    settings = _settings(settings)
    with store.session() as s:
        busy = s.scalar(
            select(func.count())
            .select_from(Clip)
            .join(Dog, Dog.id == Clip.dog_id)
            .where(Dog.owner_id == owner_id, Clip.status.in_(("queued", "running")))
        )
    if int(busy or 0) >= settings.max_queued_per_owner:
        raise QueueFullError(
            f"{busy} of your uploads are already waiting or being analysed (at most "
            f"{settings.max_queued_per_owner}); add more when one has finished"
        )


def enqueue_analysis(
    store: Store,
    user: User,
    clip_id: int,
    *,
    settings: JobSettings | None = None,
    queue: JobQueue | None = None,
    again: bool = False,
) -> JobStatus:
    """Queue a clip's analysis (also the manual retry of a failed or interrupted one).

    A clip already queued, running or done is left as it is (no second job); its status is returned.
    With ``again`` a done clip is queued too (a re-analysis, for its owner only): its stored report,
    overlay and tracks stay until the new run records its own.

    Raises
    ------
    PermissionError
        The user may not see the clip, or asks for a re-analysis of a clip of a dog not theirs.
    QueueFullError
        The clip's owner has too many analyses waiting (nothing changes).
    QueueUnavailableError
        The queue server is down (the clip keeps its former status).
    """
    settings = _settings(settings)
    clip = store.get_clip(user, clip_id)
    queueable = (*QUEUEABLE, "done") if again else QUEUEABLE
    status = job_status(store, clip_id, settings=settings)
    if status.status not in queueable:
        return status
    with store.session() as s:
        dog = s.get(Dog, clip.dog_id)
        assert dog is not None
        owner_id = dog.owner_id
    if again and owner_id != user.id:
        raise PermissionError("only the dog's owner re-analyses its clips")
    check_queue_room(store, owner_id, settings)
    with store.session() as s:
        before = s.get(Clip, clip_id)
        assert before is not None
        previous = (before.status, before.message)
        now = db_now(s)
        dead = (Clip.status == "running") & (
            (Clip.heartbeat_at < now - dt.timedelta(seconds=settings.stale_after_s)) | Clip.heartbeat_at.is_(None)
        )
        queued = s.execute(
            update(Clip)
            .where(Clip.id == clip_id, Clip.status.in_(queueable) | dead)
            .values(
                status="queued",
                attempts=0,
                error="",
                progress=0.0,
                worker_id=None,
                queued_at=now,
                message="waiting for a worker",
            )
            .execution_options(synchronize_session=False)
        )
        changed = queued.rowcount == 1  # type: ignore[attr-defined]
    if changed:
        try:
            _queue(store, queue, settings).submit(clip_id)
        except Exception as exc:  # redis.ConnectionError and kin: put the clip back as it was
            with store.session() as s:
                s.execute(
                    update(Clip)
                    .where(Clip.id == clip_id, Clip.status == "queued")
                    .values(status=previous[0], message=previous[1])
                    .execution_options(synchronize_session=False)
                )
            raise QueueUnavailableError("the analysis queue cannot be reached; try again in a minute") from exc
    return job_status(store, clip_id, settings=settings)


def requeue_stale(store: Store, *, settings: JobSettings | None = None, queue: JobQueue | None = None) -> int:
    """Take over jobs whose worker died; return how many clips were queued again or failed.

    A ``running`` clip whose heartbeat is older than ``settings.stale_after_s`` (by the database's
    clock, so hosts need not agree on the time, and whatever its worker's PID) is queued again,
    or ends ``failed`` once it has used ``settings.max_attempts`` runs. A ``queued`` clip that has
    waited that long with no message on the queue (one lost with a Redis restart) gets a new
    message. Safe to call from every worker and web process at once: each take-over is a
    conditional update that only one caller wins.
    """
    settings = _settings(settings)
    jobs = _queue(store, queue, settings)
    taken = 0
    with store.session() as s:
        now = db_now(s)
        cutoff = now - dt.timedelta(seconds=settings.stale_after_s)
        stale = s.execute(
            select(Clip.id, Clip.worker_id, Clip.attempts).where(
                Clip.status == "running", (Clip.heartbeat_at < cutoff) | Clip.heartbeat_at.is_(None)
            )
        ).all()
        waiting = s.scalars(
            select(Clip.id).where(Clip.status == "queued", func.coalesce(Clip.queued_at, Clip.uploaded_at) < cutoff)
        ).all()
    for clip_id, worker_id, attempts in stale:
        final = int(attempts or 0) >= settings.max_attempts
        with store.session() as s:
            values: dict[str, Any] = (
                {
                    "status": "failed",
                    "finished_at": db_now(s),
                    "message": "analysis failed",
                    "error": f"the analysis stopped {attempts} times before it finished (its worker was killed or "
                    "lost, perhaps out of memory)",
                }
                if final
                else {
                    "status": "queued",
                    "queued_at": db_now(s),
                    "progress": 0.0,
                    "message": "its worker stopped; queued again",
                }
            )
            won = s.execute(
                update(Clip)
                .where(Clip.id == clip_id, Clip.status == "running", _same_worker(worker_id))
                .where((Clip.heartbeat_at < cutoff) | Clip.heartbeat_at.is_(None))
                .values(worker_id=None, **values)
                .execution_options(synchronize_session=False)
            )
            won_it = won.rowcount == 1  # type: ignore[attr-defined]
        if won_it:
            taken += 1
            if not final:
                jobs.submit(clip_id)
    if waiting:
        on_queue = jobs.waiting_clip_ids()
        for clip_id in waiting:
            if clip_id not in on_queue:
                jobs.submit(clip_id)
                taken += 1
    return taken


def _same_worker(worker_id: str | None) -> Any:
    return Clip.worker_id.is_(None) if worker_id is None else Clip.worker_id == worker_id


def cancel_analysis(store: Store, user: User, clip_id: int) -> JobStatus:
    """Stop a clip's analysis (the owner only).

    A queued clip goes back to ``uploaded``; a running one ends ``failed`` with the error
    "cancelled", and its run stops at its next progress step, writing nothing.
    """
    clip = store.get_clip(user, clip_id)
    with store.session() as s:
        dog = s.get(Dog, clip.dog_id)
        if dog is None or dog.owner_id != user.id:
            raise PermissionError("only the owner can cancel an analysis")
        s.execute(
            update(Clip)
            .where(Clip.id == clip_id, Clip.status == "queued")
            .values(status="uploaded", message="cancelled", progress=0.0)
            .execution_options(synchronize_session=False)
        )
        s.execute(
            update(Clip)
            .where(Clip.id == clip_id, Clip.status == "running")
            .values(status="failed", error="cancelled", message="cancelled", worker_id=None)
            .execution_options(synchronize_session=False)
        )
    return job_status(store, clip_id)


def run_now(
    store: Store, clip_id: int, *, settings: JobSettings | None = None, backend: Any | None = None
) -> RunOutcome:
    """Queue a clip and run its analysis here and now, without a queue or a worker (the demo data, tests).

    The run is recorded like a worker's (status, attempts, results); a clip already queued elsewhere
    is taken from the queue's worker only if this call claims it first.
    """
    with store.session() as s:
        s.execute(
            update(Clip)
            .where(Clip.id == clip_id, Clip.status.in_(QUEUEABLE))
            .values(status="queued", attempts=0, error="", queued_at=db_now(s), message="waiting to start")
            .execution_options(synchronize_session=False)
        )
    return run_job(store, clip_id, _settings(settings), backend=backend)
