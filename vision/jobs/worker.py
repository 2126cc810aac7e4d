"""The analysis worker: ``hindsight worker [--concurrency N]`` (or ``python -m vision.jobs.worker``).

A Huey consumer with ``N`` worker processes. SIGTERM stops it gracefully: running analyses
finish, nothing new starts; a second SIGTERM or SIGINT stops at once, handing the running
clips back to the queue. A thread of the main process takes over jobs whose worker died
(:func:`vision.jobs.requeue_stale`), on this machine or any other sharing the queue.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import logging
import os
import signal
import sys
import threading
import time

from sqlalchemy import func, select

from vision.jobs.queue import JobQueue, hold_worker_lock
from vision.jobs.service import requeue_stale
from vision.jobs.settings import JobSettings
from vision.storage.cleanup import start_background_cleanup
from vision.storage.db import Store
from vision.storage.models import Clip

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def default_concurrency() -> int:
    """One analysis per two cores (an analysis uses about 0.7 GB and keeps two cores busy), at least one."""
    return max(1, (os.cpu_count() or 2) // 2)


def _die_with_parent() -> None:
    """Linux: this process gets SIGKILL when its parent dies, so a killed consumer leaves no orphan run."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _busy(store: Store) -> bool:
    with store.session() as s:
        n = s.scalar(select(func.count()).select_from(Clip).where(Clip.status.in_(("queued", "running"))))
    return bool(n)


def _housekeeping(
    store: Store,
    queue: JobQueue,
    settings: JobSettings,
    stop: threading.Event,
    idle_exit_s: float | None,
) -> None:
    """Take over dead workers' jobs every third of the stale timeout; ask the consumer to stop when idle."""
    interval = max(0.5, min(settings.stale_after_s / 3, 15.0))
    idle_since = time.monotonic()
    while not stop.wait(interval):
        try:
            taken = requeue_stale(store, settings=settings, queue=queue)
            if taken:
                log.info("took over %s job(s) whose worker stopped", taken)
            if idle_exit_s is not None:
                if _busy(store):
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > idle_exit_s:
                    log.info("nothing to do for %.0f s: stopping", idle_exit_s)
                    os.kill(os.getpid(), signal.SIGTERM)
                    return
        except Exception:  # noqa: BLE001 - a database or queue hiccup: try again next round
            log.exception("housekeeping pass failed")


def run_worker(
    store: Store | None = None,
    *,
    concurrency: int | None = None,
    idle_exit_s: float | None = None,
    settings: JobSettings | None = None,
) -> int:
    """Run analysis jobs until stopped; return the exit status.

    Parameters
    ----------
    store
        The store (default: from ``HINDSIGHT_DATA_DIR`` / ``HINDSIGHT_DB_URL``).
    concurrency
        Analyses at once, each in its own process (default :func:`default_concurrency`).
    idle_exit_s
        Stop after this many seconds with no clip queued or running anywhere (None: never).
    settings
        Queue and retry settings (default: from the environment).
    """
    store = store or Store()
    settings = settings or JobSettings.from_env()
    concurrency = concurrency or default_concurrency()
    lock_fd = hold_worker_lock(store)
    queue = JobQueue(store, settings)

    consumer = queue.huey.create_consumer(
        workers=concurrency,
        worker_type="process",
        graceful_signal="TERM",
        periodic=False,
        check_worker_health=True,
        health_check_interval=5,
        max_delay=2.0,
    )
    init_child = consumer.environment.init_child

    def child_started(process: object) -> None:  # in every forked process (workers and scheduler) as it starts
        _die_with_parent()
        store.engine.dispose(close=False)  # the parent's pooled connections are not this process's
        init_child(process)

    consumer.environment.init_child = child_started
    log.info(
        "worker on %s, %s queue, concurrency %s",
        store.data_dir,
        "embedded" if settings.embedded else "redis",
        concurrency,
    )
    requeue_stale(store, settings=settings, queue=queue)
    stop = threading.Event()
    house = threading.Thread(
        target=_housekeeping, args=(store, queue, settings, stop, idle_exit_s), name="housekeeping", daemon=True
    )
    cleanup: threading.Event | None = None
    try:
        consumer.start()  # forks the workers before any thread of ours runs
        house.start()
        cleanup = start_background_cleanup(store)  # crash leftovers now, then hourly
        _consume(consumer)
    finally:
        stop.set()
        if cleanup is not None:
            cleanup.set()
        os.close(lock_fd)
    return 0


def _consume(consumer: object) -> None:
    """Huey's ``Consumer.run`` minus its ``start`` (already called)."""
    from huey.consumer import ConsumerStopped

    health_check_ts = time.monotonic()
    while True:
        try:
            health_check_ts = consumer.loop(health_check_ts)  # type: ignore[attr-defined]
        except ConsumerStopped:
            break
    consumer.huey.notify_interrupted_tasks()  # type: ignore[attr-defined]


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The worker's options (shared with ``hindsight worker``)."""
    parser = parser or argparse.ArgumentParser(prog="python -m vision.jobs.worker", description=__doc__)
    parser.add_argument("--concurrency", type=int, default=None, help="analyses at once (default: one per two cores)")
    parser.add_argument("--idle-exit", type=float, default=None, metavar="S", help="stop after S seconds idle")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m vision.jobs.worker``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s: %(message)s")
    if args.concurrency is not None and args.concurrency < 1:
        print("error: --concurrency must be at least 1", file=sys.stderr)
        return 2
    return run_worker(concurrency=args.concurrency, idle_exit_s=args.idle_exit)


if __name__ == "__main__":
    sys.exit(main())
