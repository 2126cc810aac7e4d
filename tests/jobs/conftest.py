"""Job tests run on two deployments: the embedded default (SQLite + SQLite queue, no server) and
PostgreSQL + Redis, real servers named by HINDSIGHT_TEST_PG_URL and HINDSIGHT_TEST_REDIS_URL
(`.ci/run` starts them); the second skips, saying why, when they are absent."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from vision.io import save_poses
from vision.jobs import JobSettings, store_upload
from vision.storage import Store
from vision.storage.models import Clip
from vision.synthetic import generate, render_video

ROOT = Path(__file__).resolve().parents[2]


def private_schema_url(base: str):
    """A URL of ``base`` whose tables live in a new schema of their own, and a function that drops it."""
    import uuid

    from sqlalchemy import create_engine, make_url, text

    schema = f"hs_jobs_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    return url, drop


def reset_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def _reachable_postgres(url: str) -> str | None:
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as c:
            c.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001
        return f"PostgreSQL at HINDSIGHT_TEST_PG_URL is not reachable ({type(exc).__name__})"
    return None


def _reachable_redis(url: str) -> str | None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001
        return f"Redis at HINDSIGHT_TEST_REDIS_URL is not reachable ({type(exc).__name__})"
    return None


@dataclass(frozen=True)
class Deployment:
    """Where a test's store and queue live, and the environment a worker process needs for them."""

    name: str
    data_dir: Path
    db_url: str | None
    queue_url: str

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HINDSIGHT_")}
        env.update(
            HINDSIGHT_DATA_DIR=str(self.data_dir),
            HINDSIGHT_AUTOSTART_WORKER="0",
            PYTHONPATH=str(ROOT),
            **extra,
        )
        if self.db_url:
            env["HINDSIGHT_DB_URL"] = self.db_url
        if self.queue_url:
            env["HINDSIGHT_QUEUE_URL"] = self.queue_url
        return env

    def settings(self, **changes: object) -> JobSettings:
        return replace(JobSettings(queue_url=self.queue_url, autostart_worker=False), **changes)  # type: ignore[arg-type]

    def store(self) -> Store:
        return Store(self.data_dir, db_url=self.db_url)


@pytest.fixture(params=["embedded", "postgres+redis"])
def deployment(request, tmp_path, monkeypatch) -> Deployment:
    pg, rd = os.environ.get("HINDSIGHT_TEST_PG_URL"), os.environ.get("HINDSIGHT_TEST_REDIS_URL")
    for k in [k for k in os.environ if k.startswith("HINDSIGHT_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("HINDSIGHT_AUTOSTART_WORKER", "0")
    if request.param == "embedded":
        return Deployment("embedded", tmp_path / "data", None, "")
    if not pg or not rd:
        pytest.skip("HINDSIGHT_TEST_PG_URL and HINDSIGHT_TEST_REDIS_URL are not set (.ci/run starts both servers)")
    reason = _reachable_postgres(pg) or _reachable_redis(rd)
    if reason:
        pytest.skip(reason)
    url, drop = private_schema_url(pg)
    request.addfinalizer(drop)
    reset_redis(rd)
    monkeypatch.setenv("HINDSIGHT_DB_URL", url)
    monkeypatch.setenv("HINDSIGHT_QUEUE_URL", rd)
    return Deployment("postgres+redis", tmp_path / "data", url, rd)


@pytest.fixture
def store(deployment) -> Store:
    s = deployment.store()
    yield s
    s.engine.dispose()


@pytest.fixture
def people(store):
    owner = store.create_user("owner@example.org", "Olga", "owner", "correct horse")
    other = store.create_user("other@example.org", "Otto", "owner", "battery staple")
    dog = store.create_dog(owner, "Rex", "Collie")
    return owner, other, dog


@pytest.fixture(scope="session")
def walk_video(tmp_path_factory):
    """A 6 s synthetic walk (320x180) and the keypoints it was drawn from."""
    clip = generate(duration_s=6, frame_size=(320, 180), body_length_px=96, seed=3)
    d = tmp_path_factory.mktemp("walk")
    render_video(clip, str(d / "walk.mp4"))
    return d / "walk.mp4", save_poses(clip.tracks, d / "walk.nc")


@pytest.fixture(scope="session")
def long_walk_video(tmp_path_factory):
    """A 40 s synthetic walk: an analysis long enough to be killed midway."""
    clip = generate(duration_s=40, frame_size=(320, 180), body_length_px=96, seed=5)
    d = tmp_path_factory.mktemp("long_walk")
    render_video(clip, str(d / "walk.mp4"))
    return d / "walk.mp4", save_poses(clip.tracks, d / "walk.nc")


def add_rendered_clip(store: Store, owner, dog_id: int, video: Path, tracks: Path) -> int:
    """A clip analysed from the keypoints it was drawn from (no keypoint model needed), as the demo's are."""
    with video.open("rb") as fh:
        clip = store_upload(store, owner, dog_id, fh, video.name, pose_source="rendered").clip
    sha = store.blobs.put_file(tracks)
    with store.session() as s:
        row = s.get(Clip, clip.id)
        row.tracks_sha256 = sha
    return clip.id


def start_worker(deployment: Deployment, log: Path, **env: str) -> subprocess.Popen:
    """`hindsight worker` in its own process group (so a test can SIGKILL all of it)."""
    out = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "vision", "worker", "--concurrency", "1"],
        env=deployment.env(**env),
        stdout=out,
        stderr=out,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        cwd=ROOT,
    )


def wait_for(predicate, timeout_s: float, what: str, poll_s: float = 0.2):
    """Poll until ``predicate()`` is truthy (a deadline against hangs, not a speed check)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError(f"gave up waiting for {what} after {timeout_s:.0f} s")


@pytest.fixture
def rendered_clip(store):
    """``rendered_clip(owner, dog_id, (video, tracks))`` stores a clip and returns its id."""

    def make(owner, dog_id: int, files) -> int:
        return add_rendered_clip(store, owner, dog_id, *files)

    return make


@pytest.fixture
def workers(deployment, tmp_path):
    """``workers(**env)`` starts a worker process; every one still running is SIGKILLed at the end."""
    import signal

    started: list[subprocess.Popen] = []

    def start(**env: str) -> subprocess.Popen:
        proc = start_worker(deployment, tmp_path / "worker.log", **env)
        started.append(proc)
        return proc

    yield start
    for proc in started:  # the whole process group, even when its leader has died
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.fixture
def wait():
    """``wait(predicate, timeout_s, what)``: see :func:`wait_for`."""
    return wait_for
