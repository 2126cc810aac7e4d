"""Frames per second of the dog pose model on 720p frames vs PyAV H.264 decoding.

Usage: python benchmarks/bench_model.py [--frames 60] [--threads 2] [--model MANIFEST] [--flip-test]

Frames: Animal-Pose dog images from ../shared resized to 1280x720 (synthetic noise if absent); the
video-tracker row follows the dog through the real clip in ../shared/data/videos scaled to 720p
(keypoints in the box carried over from the last frame; every 10th frame the detector checks the
followed dog, and the whole frame is searched when it does not confirm it, as ``analyze`` does).
A 720p H.264 clip of those frames is encoded with PyAV into a temp dir and decoded to measure
the decoder's speed on the same machine. No assertions; prints a table.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from vision.model.detector import DogPoseModel

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "animalpose" / "images"
CLIP = REPO.parent / "shared" / "data" / "videos" / "forever_dog" / "dog.mp4"


def frames_720p(n: int) -> list[np.ndarray]:
    files = sorted(DATA.glob("*.jpg"))[:n] if DATA.is_dir() else []
    if files:
        out = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]
        return [cv2.resize(f, (1280, 720), interpolation=cv2.INTER_LINEAR) for f in out]
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8) for _ in range(n)]


def clip_frames_720p(n: int) -> list[np.ndarray] | None:
    """The first n frames of the real dog clip in ../shared, scaled to 1280x720 (None if absent)."""
    if not CLIP.is_file():
        return None
    import av

    out = []
    with av.open(str(CLIP)) as inp:
        for fr in inp.decode(video=0):
            out.append(cv2.resize(fr.to_ndarray(format="rgb24"), (1280, 720), interpolation=cv2.INTER_LINEAR))
            if len(out) == n:
                break
    return out


def decode_fps(frames: list[np.ndarray]) -> float:
    import av

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        with av.open(str(path), "w") as out:
            stream = out.add_stream("h264", rate=30)
            stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
            for f in frames:
                for pkt in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                    out.mux(pkt)
            for pkt in stream.encode():
                out.mux(pkt)
        t = time.perf_counter()
        n = 0
        with av.open(str(path)) as inp:
            for fr in inp.decode(video=0):
                fr.to_ndarray(format="rgb24")
                n += 1
        return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", type=Path, default=None, help="model manifest (default models/dog_pose.json)")
    ap.add_argument("--flip-test", action="store_true", help="average each crop with its mirror image")
    args = ap.parse_args()
    frames = frames_720p(args.frames)
    model = DogPoseModel.load(args.model, threads=args.threads)
    model.flip_test = args.flip_test
    model.detect(frames[0])
    t = time.perf_counter()
    n_dogs = 0
    for f in frames:
        n_dogs += len(model.detect(f, max_dogs=5))
    det_fps = len(frames) / (time.perf_counter() - t)
    box = np.array([320, 180, 960, 620], np.float32)
    t = time.perf_counter()
    for f in frames:
        model.keypoints_in_box(f, box)
    kp_fps = len(frames) / (time.perf_counter() - t)
    t = time.perf_counter()
    for f in frames:
        dets = model.detect(f, max_dogs=1)
        if not dets:
            model.keypoints_in_box(f, box)
    one_dog_fps = len(frames) / (time.perf_counter() - t)
    fallback = model.whole_frame_fallback
    model.whole_frame_fallback = False  # as in video (vision.pose.backend.default_backend)
    t = time.perf_counter()
    for f in frames:
        if not model.detect(f, max_dogs=1):
            model.keypoints_in_box(f, box)
    video_fps = len(frames) / (time.perf_counter() - t)
    t = time.perf_counter()
    for f in frames:
        if not model.detect(f, max_dogs=1, refine=False):
            model.keypoints_in_box(f, box)
    coarse_fps = len(frames) / (time.perf_counter() - t)
    from vision.pose.backend import ModelTracker

    clip = clip_frames_720p(max(args.frames, 120)) or frames
    tracker = ModelTracker(model, min_score=model.score_threshold)
    t = time.perf_counter()
    for f in clip:
        tracker.get_pose(f)
    tracker_fps = len(clip) / (time.perf_counter() - t)
    dec = decode_fps(frames)
    title = f"720p, onnxruntime threads={args.threads}" + (", flip test" if args.flip_test else "")
    print(f"{title:<64}{'fps':>8}{'x decode':>10}")
    print("-" * 82)
    rows = [
        (f"detect + keypoints (all dogs found: {n_dogs / len(frames):.2f}/frame)", det_fps),
        ("detect + keypoints, exactly one dog/frame" + (" (as images)" if fallback else ""), one_dog_fps),
        ("  same, no whole-frame fallback (as in video)", video_fps),
        ("  same, detector box (no keypoint refinement)", coarse_fps),
        ("keypoints_in_box only (tracking)", kp_fps),
        (f"video tracker, real clip (checked every {tracker.redetect_every}th)", tracker_fps),
        ("PyAV H.264 decode to RGB", dec),
    ]
    for name, fps in rows:
        print(f"{name:<64}{fps:8.1f}{fps / dec:10.2f}")


if __name__ == "__main__":
    main()
