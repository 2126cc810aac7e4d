"""Collect crash leftovers: partial uploads, stale scratch folders and blobs that no row refers to.

Call :func:`collect_leftovers` at start-up (the app, the jobs worker) and every so often
(:func:`start_background_cleanup`). It is safe while workers and uploads run: files being
written and scratch folders in use are locked by their process, anything younger than the
grace period is kept, and every blob that a database row names is kept (see
:meth:`vision.storage.blobs.BlobStore.collect`).
"""

from __future__ import annotations

import logging
import math
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.engine import Engine

from vision.storage.blobs import BlobStore
from vision.storage.models import Base

if TYPE_CHECKING:
    from vision.storage.db import Store

log = logging.getLogger(__name__)

#: Minimum age of anything removed. It must exceed the time between storing a blob and
#: committing the row that names it (seconds: a probe, one transaction, SQLite's 30 s busy wait).
DEFAULT_GRACE_S = 15 * 60.0
#: How often :func:`start_background_cleanup` runs.
DEFAULT_INTERVAL_S = 60 * 60.0
#: Environment variables that override the two defaults for :func:`start_background_cleanup` (seconds).
GRACE_ENV, INTERVAL_ENV = "HINDSIGHT_CLEANUP_GRACE_S", "HINDSIGHT_CLEANUP_INTERVAL_S"
#: Columns that hold a blob's digest: every column whose name ends so, in every table.
DIGEST_SUFFIX = "_sha256"


@dataclass(frozen=True)
class CleanupResult:
    """What one :func:`collect_leftovers` pass removed.

    Attributes
    ----------
    incoming
        Partial uploads (``.incoming-*`` files of writers that died).
    scratch
        Stale scratch folders of analyses that died.
    orphans
        Blobs that no row refers to.
    trash
        Files left by a cleanup pass that itself died.
    bytes_freed
        Their total size.
    kept_live
        Leftover-looking files and folders kept because a running process holds them.
    orphans_skipped
        True when orphan removal was withheld because the database names none of the stored
        blobs (an empty or different database beside this store): nothing is deleted then.
    """

    incoming: int
    scratch: int
    orphans: int
    trash: int
    bytes_freed: int
    kept_live: int
    orphans_skipped: bool

    @property
    def removed(self) -> int:
        """Files and folders removed in all."""
        return self.incoming + self.scratch + self.orphans + self.trash


def digest_columns() -> list[tuple[str, str]]:
    """``(table, column)`` of every column that names a blob (``*_sha256``), from the ORM metadata."""
    return [
        (table.name, col.name)
        for table in Base.metadata.sorted_tables
        for col in table.columns
        if col.name.endswith(DIGEST_SUFFIX)
    ]


def referenced_digests(engine: Engine) -> set[str]:
    """Every blob digest that some row of the database refers to (one read-only query per column)."""
    found: set[str] = set()
    with engine.connect() as conn:
        for table_name, col_name in digest_columns():
            col = Base.metadata.tables[table_name].c[col_name]
            found.update(v for v in conn.scalars(select(col).where(col.is_not(None)).distinct()) if v)
    return found


def collect_blob_leftovers(
    engine: Engine, blobs: BlobStore, *, grace_s: float = DEFAULT_GRACE_S, now: float | None = None
) -> CleanupResult:
    """:func:`collect_leftovers` for an engine and a blob store given separately."""
    referenced = referenced_digests(engine)  # read before listing the files (see BlobStore.collect)
    on_disk = set(blobs.digests())
    unreferenced = on_disk - referenced
    skip = bool(unreferenced) and not (on_disk & referenced)
    if skip:
        log.warning(
            "cleanup: the database names none of the %d stored files; orphans are kept (wrong database?)",
            len(on_disk),
        )
    done = blobs.collect(referenced, grace_s=grace_s, now=now, remove_orphans=not skip)
    result = CleanupResult(
        incoming=done["incoming"],
        scratch=done["scratch"],
        orphans=done["orphans"],
        trash=done["trash"],
        bytes_freed=done["bytes"],
        kept_live=done["kept_live"],
        orphans_skipped=skip,
    )
    if result.removed:
        log.info("cleanup: removed %s", result)
    return result


def collect_leftovers(store: Store, *, grace_s: float = DEFAULT_GRACE_S, now: float | None = None) -> CleanupResult:
    """Remove a store's crash leftovers and orphan blobs older than ``grace_s`` seconds.

    Parameters
    ----------
    store
        The installation (its ``engine`` is only read, its ``blobs`` cleaned).
    grace_s
        Minimum age of anything removed (seconds since its last modification).
    now
        The current time (``time.time()`` when None).

    Returns
    -------
    CleanupResult
        What was removed.

    Raises
    ------
    sqlalchemy.exc.SQLAlchemyError
        The database could not be read; then nothing at all is removed.
    """
    return collect_blob_leftovers(store.engine, store.blobs, grace_s=grace_s, now=now)


def seconds_from_env(name: str, default: float) -> float:
    """A non-negative number of seconds from the environment variable ``name``; ``default`` when unset or malformed."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        log.warning("%s=%r is not a number of seconds; using %.0f", name, raw, default)
        return default
    return value


def start_background_cleanup(
    store: Store, *, interval_s: float | None = None, grace_s: float | None = None
) -> threading.Event:
    """Run :func:`collect_leftovers` now and then every ``interval_s`` seconds in a daemon thread.

    A failing pass is logged and retried at the next interval; it never stops the caller.

    Parameters
    ----------
    store
        The installation to clean.
    interval_s
        Seconds between passes (default ``HINDSIGHT_CLEANUP_INTERVAL_S``, else :data:`DEFAULT_INTERVAL_S`;
        at least 1 s).
    grace_s
        Minimum age of anything removed (default ``HINDSIGHT_CLEANUP_GRACE_S``, else :data:`DEFAULT_GRACE_S`).

    Returns
    -------
    threading.Event
        Set it to stop the thread.
    """
    interval = max(1.0, interval_s if interval_s is not None else seconds_from_env(INTERVAL_ENV, DEFAULT_INTERVAL_S))
    grace = grace_s if grace_s is not None else seconds_from_env(GRACE_ENV, DEFAULT_GRACE_S)
    stop = threading.Event()

    def loop() -> None:
        while True:
            try:
                collect_leftovers(store, grace_s=grace)
            except Exception:  # noqa: BLE001 - housekeeping must never take the app down
                log.exception("cleanup pass failed; retrying in %.0f s", interval)
            if stop.wait(interval):
                return

    threading.Thread(target=loop, name="hindsight-cleanup", daemon=True).start()
    return stop
