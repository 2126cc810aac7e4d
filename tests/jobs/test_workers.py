"""Real worker processes (`hindsight worker`), killed for real."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from vision.jobs import enqueue_analysis, job_status
from vision.storage.models import Clip, Review

pytestmark = pytest.mark.slow

FAST_TAKEOVER = {"HINDSIGHT_JOB_STALE_S": "4", "HINDSIGHT_JOB_HEARTBEAT_S": "0.5", "HINDSIGHT_JOB_RETRY_DELAY_S": "0"}


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] == "Z"
    except FileNotFoundError:
        return True


def _group_members(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid`` (a worker started in its own session has pgid = its pid)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def _log(tmp_path) -> str:
    p = tmp_path / "worker.log"
    return p.read_text(errors="replace")[-3000:] if p.exists() else ""


def _leftovers(store) -> list[str]:
    """Partial uploads, scratch folders and blobs no row names: what a crash leaves."""
    from vision.storage.cleanup import referenced_digests

    referenced = referenced_digests(store.engine)
    out = [p.name for p in store.blobs.root.iterdir() if p.name.startswith(".")]
    return sorted(out + [sha for sha in store.blobs.digests() if sha not in referenced])


def test_a_job_whose_worker_is_killed_is_completed_by_another_once(
    store, deployment, people, long_walk_video, rendered_clip, workers, wait, tmp_path, blob_writer
):
    owner, _, dog = people
    settings = deployment.settings(stale_after_s=4, heartbeat_s=0.5, retry_delay_s=0)
    clip_id = rendered_clip(owner, dog.id, long_walk_video)
    enqueue_analysis(store, owner, clip_id, settings=settings)
    first = workers(**FAST_TAKEOVER)

    def running_midway():
        c = store.get_clip(owner, clip_id)
        return c if c.status == "running" and c.progress >= 0.05 else None

    try:
        midway = wait(running_midway, 300, "the first worker to be midway")
    except AssertionError:
        raise AssertionError(_log(tmp_path)) from None
    run_pid = midway.worker_pid
    assert run_pid and run_pid != first.pid  # the analysis runs in a worker process of the consumer
    os.kill(first.pid, signal.SIGKILL)  # the consumer, as a lost machine: its worker process must not live on
    first.wait(timeout=30)
    wait(lambda: _gone(run_pid), 30, "the killed consumer's analysis process to die with it")
    wait(lambda: not _group_members(first.pid), 30, "every process of the killed consumer to die with it")
    assert store.get_clip(owner, clip_id).status == "running"  # nobody has noticed yet
    upload, _ = blob_writer(store.blobs.root)  # an upload killed midway too, as the server goes down
    os.kill(upload.pid, signal.SIGKILL)
    upload.wait()
    killed_at = time.time()
    junk = _leftovers(store)
    assert any(j.startswith(".scratch-") for j in junk) and any(j.startswith(".incoming-") for j in junk), junk
    time.sleep(max(0.0, killed_at + 1.5 - time.time()))  # the leftovers are older than the grace period below
    workers(**FAST_TAKEOVER, HINDSIGHT_CLEANUP_GRACE_S="1")
    try:
        done = wait(lambda: (c := store.get_clip(owner, clip_id)).status in ("done", "failed") and c, 600, "done")
    except AssertionError:
        raise AssertionError(_log(tmp_path)) from None
    assert done.status == "done", done.error
    assert done.attempts == 2 and done.worker_pid != run_pid
    assert store.report(done)["quality"]["usable"]
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Clip)) == 1
        assert s.scalar(select(func.count()).select_from(Review)) == 0
    status = job_status(store, clip_id, settings=settings)
    assert (status.status, status.progress, status.error) == ("done", 1.0, "")
    assert _leftovers(store) == []  # the next start collected what the crash left
    assert "cleanup: removed" in _log(tmp_path)


def test_sigterm_lets_the_running_job_finish(
    store, deployment, people, long_walk_video, rendered_clip, workers, wait, tmp_path
):
    if deployment.name != "embedded":
        pytest.skip("the same consumer code on both deployments; run once")
    owner, _, dog = people
    clip_id = rendered_clip(owner, dog.id, long_walk_video)
    enqueue_analysis(store, owner, clip_id, settings=deployment.settings())
    worker = workers()
    wait(lambda: store.get_clip(owner, clip_id).progress >= 0.05, 300, "the job to be midway")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=600) == 0, _log(tmp_path)
    done = store.get_clip(owner, clip_id)
    assert done.status == "done" and done.attempts == 1, _log(tmp_path)


def test_the_embedded_queue_starts_its_own_worker_which_stops_when_idle(
    store, deployment, people, walk_video, rendered_clip, wait, monkeypatch, tmp_path
):
    from vision.jobs.queue import local_worker_running

    if deployment.name != "embedded":
        pytest.skip("a worker is started on demand only with the embedded queue")
    for name, value in FAST_TAKEOVER.items():
        monkeypatch.setenv(name, value)
    owner, _, dog = people
    clip_id = rendered_clip(owner, dog.id, walk_video)
    assert not local_worker_running(store)
    settings = deployment.settings(autostart_worker=True, autostart_idle_exit_s=1)
    enqueue_analysis(store, owner, clip_id, settings=settings)
    wait(lambda: local_worker_running(store), 60, "a worker to start")
    done = wait(lambda: (c := store.get_clip(owner, clip_id)).status in ("done", "failed") and c, 300, "done")
    assert done.status == "done", (store.data_dir / "worker.log").read_text()[-2000:]
    wait(lambda: not local_worker_running(store), 120, "the idle worker to stop")
