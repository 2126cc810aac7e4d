"""Load and fault benchmark of the analysis queue on PostgreSQL + Redis (issue 32, item 7).

24 uploads from 6 owners are queued at once; two ``hindsight worker`` processes analyse them;
the first worker is killed with SIGKILL while it is midway through a clip and a new one is
started; the dashboard (``streamlit run app.py``) is polled at ``/_stcore/health`` throughout.

Reports: every clip finished, none lost or duplicated, wall time, per-job latency (queued ->
done, p50/p95), peak resident memory per worker (its whole process tree) and the dashboard's
health latency. The clips are synthetic walks analysed from the keypoints they were drawn from
(as the demo's are), so no keypoint model time is included: decoding, the gait pipeline,
the muscle block and the overlay are.

    HINDSIGHT_TEST_PG_URL=postgresql+psycopg://... HINDSIGHT_TEST_REDIS_URL=redis://... \\
        python benchmarks/queue_load.py [--uploads 24] [--owners 6] [--seconds 8] [--json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, make_url, select, text  # noqa: E402

from vision.io import save_poses  # noqa: E402
from vision.jobs import JobSettings, enqueue_analysis, store_upload  # noqa: E402
from vision.storage import Store  # noqa: E402
from vision.storage.models import Clip, Review  # noqa: E402
from vision.synthetic import generate, render_video  # noqa: E402


def _tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants (from /proc)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--uploads", type=int, default=24)
    ap.add_argument("--owners", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=8.0, help="length of each synthetic clip")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    pg, rd = os.environ.get("HINDSIGHT_TEST_PG_URL"), os.environ.get("HINDSIGHT_TEST_REDIS_URL")
    if not pg or not rd:
        print("error: set HINDSIGHT_TEST_PG_URL and HINDSIGHT_TEST_REDIS_URL (.ci/run shows how)", file=sys.stderr)
        return 2

    schema = f"hs_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    db_url = make_url(pg).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    import redis

    redis.Redis.from_url(rd).flushdb()
    tmp = Path(tempfile.mkdtemp(prefix="hindsight-queue-bench-"))
    data = tmp / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HINDSIGHT_")}
    env.update(
        HINDSIGHT_DATA_DIR=str(data),
        HINDSIGHT_DB_URL=db_url,
        HINDSIGHT_QUEUE_URL=rd,
        HINDSIGHT_JOB_STALE_S="10",
        HINDSIGHT_JOB_HEARTBEAT_S="1",
        HINDSIGHT_JOB_RETRY_DELAY_S="1",
        PYTHONPATH=str(ROOT),
    )
    settings = JobSettings(queue_url=rd, stale_after_s=10, heartbeat_s=1, autostart_worker=False)
    store = Store(data, db_url=db_url)
    procs: list[subprocess.Popen] = []
    try:
        print(f"rendering {args.uploads} synthetic clips of {args.seconds:g} s ...", file=sys.stderr)
        owners = [
            store.create_user(f"owner{i}@bench.example", f"Owner {i}", "owner", "bench-password")
            for i in range(args.owners)
        ]
        dogs = [store.create_dog(o, f"Dog {i}") for i, o in enumerate(owners)]
        clip_ids: list[int] = []
        for n in range(args.uploads):
            walk = generate(duration_s=args.seconds, frame_size=(320, 180), body_length_px=96, seed=1000 + n)
            video = tmp / f"walk{n}.mp4"
            render_video(walk, str(video))
            owner, dog = owners[n % args.owners], dogs[n % args.owners]
            up = store_upload(store, owner, dog.id, io.BytesIO(video.read_bytes()), video.name, pose_source="rendered")
            tracks = store.blobs.put_file(save_poses(walk.tracks, tmp / f"walk{n}.nc"))
            with store.session() as s:
                row = s.get(Clip, up.clip.id)
                assert row is not None
                row.tracks_sha256 = tracks
            clip_ids.append(up.clip.id)

        log = (tmp / "workers.log").open("ab")

        def worker() -> subprocess.Popen:
            p = subprocess.Popen(
                [sys.executable, "-m", "vision", "worker", "--concurrency", "1"],
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,
                cwd=ROOT,
            )
            procs.append(p)
            return p

        port = _free_port()
        web = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port)]
            + ["--server.headless", "true", "--server.address", "127.0.0.1"],
            env={**env, "HINDSIGHT_AUTOSTART_WORKER": "0"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            cwd=ROOT,
        )
        procs.append(web)
        health_url = f"http://127.0.0.1:{port}/_stcore/health"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(health_url, timeout=2).read()
                break
            except OSError:
                time.sleep(0.5)
        health_ms: list[float] = []
        health_errors = [0]
        stop = threading.Event()

        def poll_health() -> None:
            while not stop.wait(0.5):
                t = time.perf_counter()
                try:
                    urllib.request.urlopen(health_url, timeout=10).read()
                    health_ms.append(1000 * (time.perf_counter() - t))
                except OSError:
                    health_errors[0] += 1

        workers = [worker(), worker()]
        peak: dict[int, int] = {}

        def sample_memory() -> None:
            while not stop.wait(0.5):
                for w in list(workers):
                    peak[w.pid] = max(peak.get(w.pid, 0), _tree_rss_bytes(w.pid))

        threading.Thread(target=poll_health, daemon=True).start()
        threading.Thread(target=sample_memory, daemon=True).start()
        started = time.monotonic()
        for cid, owner in zip(clip_ids, [owners[n % args.owners] for n in range(args.uploads)], strict=True):
            enqueue_analysis(store, owner, cid, settings=settings)
        print("queued; waiting for the first worker to be midway through a clip ...", file=sys.stderr)
        victim, killed_clip = workers[0], None
        while killed_clip is None and time.monotonic() - started < 900:
            with store.session() as s:
                for c in s.scalars(select(Clip).where(Clip.status == "running", Clip.progress >= 0.3)):
                    if c.worker_pid and _is_descendant(c.worker_pid, victim.pid):
                        killed_clip = c.id
            time.sleep(0.2)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        killed_at = time.monotonic() - started
        print(
            f"killed worker 1 (SIGKILL) on clip {killed_clip} at {killed_at:.1f} s; starting worker 3", file=sys.stderr
        )
        workers.append(worker())
        while time.monotonic() - started < 1800:
            with store.session() as s:
                left = s.scalar(select(func.count()).select_from(Clip).where(Clip.status.not_in(("done", "failed"))))
            if not left:
                break
            time.sleep(0.5)
        wall = time.monotonic() - started
        stop.set()
        with store.session() as s:
            rows = list(s.scalars(select(Clip).order_by(Clip.id)))
            reviews = s.scalar(select(func.count()).select_from(Review))
        latencies = [(c.finished_at - c.queued_at).total_seconds() for c in rows if c.finished_at and c.queued_at]
        runs = [(c.finished_at - c.started_at).total_seconds() for c in rows if c.finished_at and c.started_at]
        killed_row = next(c for c in rows if c.id == killed_clip)
        result = {
            "uploads": args.uploads,
            "owners": args.owners,
            "clip_seconds": args.seconds,
            "workers": "2 x --concurrency 1, worker 1 SIGKILLed midway, worker 3 started",
            "cpus": os.cpu_count(),
            "done": sum(c.status == "done" for c in rows),
            "failed": sum(c.status == "failed" for c in rows),
            "lost": args.uploads - len([c for c in rows if c.status in ("done", "failed")]),
            "clip_rows": len(rows),
            "attempts_total": sum(c.attempts for c in rows),
            "killed_clip_attempts": killed_row.attempts,
            "reviews": reviews,
            "wall_s": round(wall, 1),
            "killed_at_s": round(killed_at, 1),
            "latency_p50_s": round(statistics.median(latencies), 1),
            "latency_p95_s": round(_pct(latencies, 95), 1),
            "run_mean_s": round(statistics.mean(runs), 2),
            "peak_rss_mb_per_worker": [round(v / 2**20) for v in peak.values()],
            "health_ms_p50": round(statistics.median(health_ms), 1) if health_ms else None,
            "health_ms_p95": round(_pct(health_ms, 95), 1) if health_ms else None,
            "health_ms_max": round(max(health_ms), 1) if health_ms else None,
            "health_failures": health_errors[0],
            "health_samples": len(health_ms),
        }
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            for k, v in result.items():
                print(f"{k:26s} {v}")
        return 0 if result["done"] == args.uploads and result["clip_rows"] == args.uploads else 1
    finally:
        for p in procs:  # each started in a session of its own: its process group is exactly it
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        store.engine.dispose()
        with admin.begin() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _is_descendant(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, IndexError, ValueError):
            return False
    return False


if __name__ == "__main__":
    sys.exit(main())
