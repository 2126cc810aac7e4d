"""The operator's scenario of issue 32 with the real keypoint model, through the command line only.

On PostgreSQL + Redis: ``hindsight users add``, ``dogs add``, six ``hindsight upload``s (and one
repeated, which must say it is already there), two ``hindsight worker``s, the first SIGKILLed
while it analyses a clip and a third started; every clip must end ``done`` in ``hindsight status``.

    HINDSIGHT_TEST_PG_URL=postgresql+psycopg://... HINDSIGHT_TEST_REDIS_URL=redis://... \\
        python benchmarks/queue_scenario.py VIDEO [VIDEO ...]   # six different walking-dog clips
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("videos", nargs="+", type=Path)
    ap.add_argument("--stale-s", type=float, default=15.0, help="HINDSIGHT_JOB_STALE_S for the workers")
    args = ap.parse_args()
    pg, rd = os.environ.get("HINDSIGHT_TEST_PG_URL"), os.environ.get("HINDSIGHT_TEST_REDIS_URL")
    if not pg or not rd:
        print("error: set HINDSIGHT_TEST_PG_URL and HINDSIGHT_TEST_REDIS_URL", file=sys.stderr)
        return 2
    schema = f"hs_scenario_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    import redis

    redis.Redis.from_url(rd).flushdb()
    data = Path(tempfile.mkdtemp(prefix="hindsight-scenario-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HINDSIGHT_")}
    env.update(
        HINDSIGHT_DATA_DIR=str(data),
        HINDSIGHT_DB_URL=make_url(pg).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False),
        HINDSIGHT_QUEUE_URL=rd,
        HINDSIGHT_JOB_STALE_S=str(args.stale_s),
        HINDSIGHT_JOB_HEARTBEAT_S="2",
    )

    def hs(*argv: str, stdin: str = "") -> str:
        run = subprocess.run(
            [sys.executable, "-m", "vision", *argv], env=env, input=stdin, capture_output=True, text=True, cwd=ROOT
        )
        if run.returncode:
            raise SystemExit(f"hindsight {' '.join(argv)} failed: {run.stderr.strip()}")
        if run.stderr.strip():
            print(f"  {run.stderr.strip()}", file=sys.stderr)
        return run.stdout.strip()

    def status(clip: str) -> dict:
        return json.loads(hs("status", clip, "--json"))

    workers: list[subprocess.Popen] = []

    def worker(n: int) -> subprocess.Popen:
        log = (data / f"worker{n}.log").open("ab")
        p = subprocess.Popen(
            [sys.executable, "-m", "vision", "worker"],
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
            cwd=ROOT,
        )
        workers.append(p)
        return p

    try:
        started = time.monotonic()
        hs("users", "add", "owner@clinic.example", "--role", "owner", "--name", "Clinic owner", stdin="clinic-secret\n")
        dog = hs("dogs", "add", "--owner", "owner@clinic.example", "Rex")
        clips = [hs("upload", str(v), "--owner", "owner@clinic.example", "--dog", dog) for v in args.videos]
        again = hs("upload", str(args.videos[0]), "--owner", "owner@clinic.example", "--dog", dog)
        assert again == clips[0], "the same file twice must be the same clip"
        first = worker(1)
        worker(2)
        while time.monotonic() - started < 1800:
            if any(status(c)["status"] == "running" and status(c)["progress"] > 0.05 for c in clips):
                break
            time.sleep(1)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        print(f"worker 1 SIGKILLed at {time.monotonic() - started:.0f} s; worker 3 starts", file=sys.stderr)
        worker(3)
        while time.monotonic() - started < 3600:
            states = [status(c) for c in clips]
            if all(s["status"] in ("done", "failed") for s in states):
                break
            time.sleep(3)
        for s in states:
            print(f"clip {s['clip_id']}: {s['status']}, {s['attempts']} attempt(s) {s['error'][:80]}")
        print(f"all finished in {time.monotonic() - started:.0f} s")
        return 0 if all(s["status"] == "done" for s in states) else 1
    finally:
        for p in workers:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait()
        with admin.begin() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
