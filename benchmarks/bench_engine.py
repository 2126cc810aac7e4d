"""Benchmark: analysis time per second of video, against decoding alone.

Renders a 10 s, 30 fps, 1280x720 H.264 clip of the synthetic walking dog, then
times (1) decoding it alone, (2) the whole `analyze_path` run with the keypoint
model (or, with --oracle or when the model is missing, with the known keypoints),
and splits the total into decode, model and engine (everything else).

    python benchmarks/bench_engine.py [--oracle] [--seconds 10]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from vision.analysis import analyze_path
from vision.anatomy import CANONICAL_KEYPOINTS
from vision.pose import FramePose
from vision.synthetic import generate, render_video
from vision.video import iter_frames


class Timed:
    """Wrap a backend and add up the time spent inside it."""

    def __init__(self, inner):
        self.inner = inner
        self.name = getattr(inner, "name", "backend")
        self.keypoint_names = inner.keypoint_names
        self.seconds = 0.0

    def reset(self):
        self.inner.reset()

    def get_pose(self, image):
        t0 = time.perf_counter()
        out = self.inner.get_pose(image)
        self.seconds += time.perf_counter() - t0
        return out


class Oracle:
    name = "oracle"
    keypoint_names = CANONICAL_KEYPOINTS

    def __init__(self, clip):
        self.clip, self.i = clip, 0

    def reset(self):
        self.i = 0

    def get_pose(self, image):
        xy = self.clip.clean_position[min(self.i, self.clip.clean_position.shape[0] - 1)]
        self.i += 1
        kp = np.concatenate([xy, np.full((xy.shape[0], 1), 0.9)], axis=1).astype(np.float32)
        return FramePose(kp, None, 0.9)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--oracle", action="store_true", help="use the known keypoints instead of the model")
    args = ap.parse_args()
    clip = generate(
        duration_s=args.seconds,
        fps=30,
        frame_size=(1280, 720),
        body_length_px=300,
        seed=1,
        limp_side="left",
        limp_severity=0.4,
    )
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.mp4"
        render_video(clip, str(path))
        t0 = time.perf_counter()
        n = sum(1 for _ in iter_frames(path))
        decode = time.perf_counter() - t0
        backend = None
        if not args.oracle:
            try:
                from vision.pose import default_backend

                backend = default_backend()
            except FileNotFoundError:
                print("model not found: using the oracle backend")
        backend = Timed(backend or Oracle(clip))
        t0 = time.perf_counter()
        result = analyze_path(path, backend=backend)
        total = time.perf_counter() - t0
    engine = total - decode - backend.seconds
    print(f"clip: {args.seconds:.0f} s, {n} frames 1280x720 H.264; backend: {backend.name}")
    print(f"{'stage':<22}{'seconds':>10}{'per video s':>14}{'share':>9}")
    for name, s in (
        ("decode alone", decode),
        ("model (backend)", backend.seconds),
        ("engine (the rest)", engine),
        ("total analysis", total),
    ):
        print(f"{name:<22}{s:>10.2f}{s / args.seconds:>14.3f}{s / total:>9.1%}")
    print(f"analysis / decode ratio: {total / decode:.2f}; real-time factor: {total / args.seconds:.2f}")
    r = result.report
    print(f"usable: {r['quality']['usable']}, weaker side: {r['metrics']['symmetry']['weaker_side']}")


if __name__ == "__main__":
    main()
