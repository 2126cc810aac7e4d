from __future__ import annotations

import dataclasses
import time

import pytest

from vision.errors import HindsightInputError
from vision.jobs import (
    JobSettings,
    QueueFullError,
    cancel_analysis,
    enqueue_analysis,
    job_status,
    requeue_stale,
    run_now,
    submit_upload,
)
from vision.jobs.queue import JobQueue
from vision.jobs.runner import claim, touch
from vision.storage.models import Clip


@pytest.fixture
def queue(store, deployment):
    q = JobQueue(store, deployment.settings())
    q.flush()
    return q


def test_queueing_twice_makes_one_job(store, deployment, people, walk_video, rendered_clip, queue):
    owner, _, dog = people
    clip_id = rendered_clip(owner, dog.id, walk_video)
    first = enqueue_analysis(store, owner, clip_id, settings=deployment.settings(), queue=queue)
    again = enqueue_analysis(store, owner, clip_id, settings=deployment.settings(), queue=queue)
    assert first.status == again.status == "queued"
    assert first.queue_position == 1 and first.attempts == 0
    assert queue.waiting_clip_ids() == {clip_id} and queue.waiting_count() == 1


def test_queue_positions_follow_the_order_of_queueing(store, deployment, people, walk_video, rendered_clip, queue):
    owner, _, dog = people
    settings = deployment.settings()
    a = rendered_clip(owner, dog.id, walk_video)
    with walk_video[0].open("rb") as fh:  # a second clip of other bytes: append one byte
        data = fh.read() + b"\0"
    import io

    b = submit_upload(store, owner, dog.id, io.BytesIO(data), "b.mp4", settings=settings, queue=queue).clip_id
    enqueue_analysis(store, owner, a, settings=settings, queue=queue)
    assert job_status(store, b, settings=settings).queue_position == 1
    assert job_status(store, a, settings=settings).queue_position == 2
    assert queue.waiting_clip_ids() == {a, b}


def test_the_same_upload_twice_queues_nothing_new(store, deployment, people, walk_video, queue):
    owner, _, dog = people
    settings = deployment.settings()
    with walk_video[0].open("rb") as fh:
        first = submit_upload(store, owner, dog.id, fh, "walk.mp4", settings=settings, queue=queue)
    with walk_video[0].open("rb") as fh:
        again = submit_upload(store, owner, dog.id, fh, "walk again.mp4", settings=settings, queue=queue)
    assert not first.already_there and first.job.status == "queued"
    assert again.already_there and again.clip_id == first.clip_id
    assert queue.waiting_count() == 1 and len(store.clips_for_dog(owner, dog.id)) == 1


def test_an_owner_has_a_limit_on_waiting_uploads(store, deployment, people, walk_video, queue):
    owner, other, dog = people
    settings = deployment.settings(max_queued_per_owner=2)
    raw = walk_video[0].read_bytes()
    import io

    for i in range(2):
        submit_upload(store, owner, dog.id, io.BytesIO(raw + bytes(i + 1)), f"{i}.mp4", settings=settings, queue=queue)
    with pytest.raises(QueueFullError, match="at most 2"):
        submit_upload(store, owner, dog.id, io.BytesIO(raw + b"\7" * 9), "3.mp4", settings=settings, queue=queue)
    assert len(store.clips_for_dog(owner, dog.id)) == 2  # refused before anything was stored
    assert queue.waiting_count() == 2
    theirs = store.create_dog(other, "Fido")  # another owner is not held up
    sub = submit_upload(store, other, theirs.id, io.BytesIO(raw), "mine.mp4", settings=settings, queue=queue)
    assert sub.job.status == "queued"


def test_only_those_who_see_the_dog_queue_or_read_its_jobs(store, deployment, people, walk_video, rendered_clip, queue):
    owner, other, dog = people
    clip_id = rendered_clip(owner, dog.id, walk_video)
    with pytest.raises(PermissionError):
        enqueue_analysis(store, other, clip_id, settings=deployment.settings(), queue=queue)
    with pytest.raises(PermissionError):
        job_status(store, clip_id, other)
    with pytest.raises(HindsightInputError, match="no clip"):
        job_status(store, 10_000)


def test_a_demo_clip_runs_to_done_and_a_second_message_is_skipped(store, deployment, people, walk_video, rendered_clip):
    owner, _, dog = people
    clip_id = rendered_clip(owner, dog.id, walk_video)
    assert run_now(store, clip_id, settings=deployment.settings()).outcome == "done"
    done = store.get_clip(owner, clip_id)
    assert done.status == "done" and done.attempts == 1 and done.report_sha256 and done.overlay_sha256
    assert store.report(done)["quality"]["usable"]
    from vision.jobs import run_job

    assert run_job(store, clip_id, deployment.settings()).outcome == "skipped"  # a duplicate message
    assert store.get_clip(owner, clip_id).report_sha256 == done.report_sha256
    status = job_status(store, clip_id, settings=deployment.settings())
    assert (status.status, status.progress, status.attempts, status.error) == ("done", 1.0, 1, "")


def test_failing_runs_are_retried_then_fail_with_the_error_and_the_upload_kept(
    store, deployment, people, walk_video, monkeypatch
):
    owner, _, dog = people
    monkeypatch.setenv("HINDSIGHT_MODEL", str(store.data_dir / "missing.json"))  # the model cannot load
    with walk_video[0].open("rb") as fh:
        from vision.jobs import store_upload

        clip_id = store_upload(store, owner, dog.id, fh, "walk.mp4").clip.id
    settings = deployment.settings(max_attempts=2)
    first = run_now(store, clip_id, settings=settings)
    from vision.jobs import run_job

    if first.outcome == "retry":  # an internal error: tried again
        assert job_status(store, clip_id, settings=settings).status == "queued"
        assert run_job(store, clip_id, settings).outcome == "failed"
        assert store.get_clip(owner, clip_id).attempts == 2
    else:  # bad input: no retry
        assert first.outcome == "failed"
    c = store.get_clip(owner, clip_id)
    assert c.status == "failed" and "model" in c.error and c.report_sha256 is None
    assert store.blobs.is_intact(c.video_sha256)


def test_a_job_whose_heartbeat_stopped_is_taken_over_once(store, deployment, people, walk_video, rendered_clip, queue):
    owner, _, dog = people
    settings = deployment.settings(stale_after_s=0.6, heartbeat_s=0.2)
    clip_id = rendered_clip(owner, dog.id, walk_video)
    enqueue_analysis(store, owner, clip_id, settings=settings, queue=queue)
    queue.flush()
    assert claim(store, clip_id, "host-a:1:dead")  # a worker takes it, then dies (no more heartbeats)
    assert not claim(store, clip_id, "host-b:2:live")  # nobody else can take a running job
    assert requeue_stale(store, settings=settings, queue=queue) == 0  # heartbeat still fresh
    time.sleep(0.8)
    assert job_status(store, clip_id, settings=settings).status == "interrupted"
    assert requeue_stale(store, settings=settings, queue=queue) == 1
    assert requeue_stale(store, settings=settings, queue=queue) == 0  # taken over once
    assert queue.waiting_clip_ids() == {clip_id}
    assert not touch(store, clip_id, "host-a:1:dead")  # the old run has lost its lease
    status = job_status(store, clip_id, settings=settings)
    assert status.status == "queued" and status.attempts == 1
    assert run_now(store, clip_id, settings=settings).outcome == "done"
    c = store.get_clip(owner, clip_id)
    assert c.status == "done" and c.attempts == 2


def test_a_job_that_keeps_killing_its_worker_ends_failed(store, deployment, people, walk_video, rendered_clip, queue):
    owner, _, dog = people
    settings = deployment.settings(stale_after_s=0.3, heartbeat_s=0.1, max_attempts=2)
    clip_id = rendered_clip(owner, dog.id, walk_video)
    enqueue_analysis(store, owner, clip_id, settings=settings, queue=queue)
    for n in range(2):
        assert claim(store, clip_id, f"host:{n}:dead")
        time.sleep(0.4)
        assert requeue_stale(store, settings=settings, queue=queue) == 1
    c = store.get_clip(owner, clip_id)
    assert c.status == "failed" and "stopped 2 times" in c.error and store.blobs.is_intact(c.video_sha256)
    assert enqueue_analysis(store, owner, clip_id, settings=settings, queue=queue).status == "queued"  # manual retry
    assert store.get_clip(owner, clip_id).attempts == 0


def test_cancel(store, deployment, people, walk_video, rendered_clip, queue):
    owner, _, dog = people
    clip_id = rendered_clip(owner, dog.id, walk_video)
    enqueue_analysis(store, owner, clip_id, settings=deployment.settings(), queue=queue)
    assert cancel_analysis(store, owner, clip_id).status == "uploaded"
    from vision.jobs import run_job

    assert run_job(store, clip_id, deployment.settings()).outcome == "skipped"  # its message finds nothing to do
    assert claim(store, clip_id, "h:1:x") is False


def test_status_is_a_small_typed_record(store, deployment, people, walk_video, rendered_clip):
    owner, _, dog = people
    clip_id = rendered_clip(owner, dog.id, walk_video)
    status = job_status(store, clip_id, owner, settings=deployment.settings())
    assert dataclasses.is_dataclass(status)
    assert status.to_dict() == {
        "clip_id": clip_id,
        "status": "uploaded",
        "progress": 0.0,
        "message": "uploaded",
        "attempts": 0,
        "max_attempts": 3,
        "error": "",
        "queue_position": None,
        "eta_s": None,
    }


def test_settings_refuse_malformed_values(monkeypatch):
    monkeypatch.setenv("HINDSIGHT_QUEUE_URL", "amqp://elsewhere")
    with pytest.raises(HindsightInputError, match="HINDSIGHT_QUEUE_URL"):
        JobSettings.from_env()
    monkeypatch.delenv("HINDSIGHT_QUEUE_URL")
    monkeypatch.setenv("HINDSIGHT_JOB_STALE_S", "soon")
    with pytest.raises(HindsightInputError, match="HINDSIGHT_JOB_STALE_S"):
        JobSettings.from_env()
    monkeypatch.setenv("HINDSIGHT_JOB_STALE_S", "1")
    with pytest.raises(HindsightInputError, match="twice"):
        JobSettings.from_env()
    monkeypatch.delenv("HINDSIGHT_JOB_STALE_S")
    assert JobSettings.from_env().embedded and JobSettings.from_env().autostart_worker
    monkeypatch.setenv("HINDSIGHT_QUEUE_URL", "redis://127.0.0.1:6379/0")
    assert not JobSettings.from_env().autostart_worker


def test_eta_from_recent_runs(store, deployment, people, walk_video, rendered_clip, queue):
    owner, _, dog = people
    settings = deployment.settings()
    done_id = rendered_clip(owner, dog.id, walk_video)
    run_now(store, done_id, settings=settings)
    import io

    raw = walk_video[0].read_bytes()
    sub = submit_upload(store, owner, dog.id, io.BytesIO(raw + b"\1"), "b.mp4", settings=settings, queue=queue)
    with store.session() as s:
        c = s.get(Clip, done_id)
        run_s = (c.finished_at - c.started_at).total_seconds()
    status = job_status(store, sub.clip_id, settings=settings)
    assert status.queue_position == 1 and status.eta_s == pytest.approx(run_s, abs=0.2)


def test_an_unreachable_queue_server_queues_nothing_and_says_so(store, deployment, people, walk_video, rendered_clip):
    from vision.jobs import QueueUnavailableError

    owner, _, dog = people
    clip_id = rendered_clip(owner, dog.id, walk_video)
    settings = deployment.settings(queue_url="redis://127.0.0.1:1/0")  # nothing listens on port 1
    with pytest.raises(QueueUnavailableError, match="cannot be reached"):
        enqueue_analysis(store, owner, clip_id, settings=settings)
    assert store.get_clip(owner, clip_id).status == "uploaded"


def test_recorded_results_are_cleaned_like_orm_writes(store, people, walk_video):
    from sqlalchemy import update

    from vision.jobs import runner, store_upload
    from vision.storage.models import Clip

    owner, _, dog = people
    with walk_video[0].open("rb") as fh:
        clip_id = store_upload(store, owner, dog.id, fh, "walk.mp4").clip.id
    with store.session() as s:
        s.execute(update(Clip).where(Clip.id == clip_id).values(status="running", worker_id="w1"))
    report = {
        "quality": {"usable": True},
        "metrics": {
            "symmetry": {"hind_asymmetry_pct": 3.0, "weaker_side": "le\x00ft"},
            "bunny_hop": {"flag": False},
            "wobble": {"flag": False},
        },
    }
    results = runner._Results(report, "a" * 64, "b" * 64, "c" * 64)
    assert runner._record(store, clip_id, "w1", results, keep_tracks=False)
    with store.session() as s:
        row = s.get(Clip, clip_id)
        assert (row.weaker_side, row.status) == ("left", "done")
