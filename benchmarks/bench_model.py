"""Frames per second of the dog pose model on 720p frames vs PyAV H.264 decoding.

Usage: python benchmarks/bench_model.py [--frames 60] [--threads 2] [--rounds 3] [--model MANIFEST] [--flip-test]

Frames: Animal-Pose dog images from ../shared resized to 1280x720 (synthetic noise if absent); the
video-tracker row follows the dog through the real clip in ../shared/data/videos scaled to 720p
(:class:`vision.pose.ModelTracker`, as ``analyze`` runs it: keypoints in the box carried over from the
last frame, the detector's check every 10th frame, a lost dog searched for every 3rd frame).
A 720p H.264 clip of those frames is encoded with PyAV into a temp dir and decoded to measure
the decoder's speed on the same machine. The rows take turns for ``--rounds`` rounds and each
reports its median and range: on a shared 2-core machine one pass of a row varies by a fifth or
more. No assertions; prints a table.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
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


def timed_rows(
    model: DogPoseModel, frames: list[np.ndarray], clip: list[np.ndarray]
) -> tuple[dict[str, Callable[[], float]], list[int]]:
    """Each benchmark row as a function that runs it once and returns frames per second.

    Also returns the list that the all-dogs row fills with the number of dogs found per frame.
    """
    from vision.pose.backend import ModelTracker

    box = np.array([320, 180, 960, 620], np.float32)
    fallback = model.whole_frame_fallback
    counted: list[int] = []

    def fps(run: Callable[[np.ndarray], object], images: list[np.ndarray], whole_frame: bool = fallback) -> float:
        model.whole_frame_fallback = whole_frame
        t = time.perf_counter()
        for f in images:
            run(f)
        return len(images) / (time.perf_counter() - t)

    def all_dogs(f: np.ndarray) -> None:
        counted.append(len(model.detect(f, max_dogs=5)))

    def one_dog(f: np.ndarray, refine: bool | None = None) -> None:
        if not model.detect(f, max_dogs=1, refine=refine):
            model.keypoints_in_box(f, box)

    def tracker() -> float:
        follow = ModelTracker(model, min_score=model.score_threshold)
        return fps(follow.get_pose, clip, whole_frame=False)

    as_images = " (as images)" if fallback else ""
    rows = {
        "detect + keypoints (all dogs)": lambda: fps(all_dogs, frames),
        f"detect + keypoints, exactly one dog/frame{as_images}": lambda: fps(one_dog, frames),
        "  same, no whole-frame fallback (as in video)": lambda: fps(one_dog, frames, whole_frame=False),
        "  same, detector box (no keypoint refinement)": lambda: fps(
            lambda f: one_dog(f, refine=False), frames, whole_frame=False
        ),
        "keypoints_in_box only (tracking)": lambda: fps(lambda f: model.keypoints_in_box(f, box), frames),
        f"video tracker, real clip (checked every {ModelTracker(model).redetect_every}th)": tracker,
        "PyAV H.264 decode to RGB": lambda: decode_fps(frames),
    }
    return rows, counted


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="times each row is run (interleaved); median and range")
    ap.add_argument("--model", type=Path, default=None, help="model manifest (default models/dog_pose.json)")
    ap.add_argument("--flip-test", action="store_true", help="average each crop with its mirror image")
    args = ap.parse_args()
    frames = frames_720p(args.frames)
    model = DogPoseModel.load(args.model, threads=args.threads)
    model.reader.flip_test = args.flip_test
    model.detect(frames[0])
    clip = clip_frames_720p(max(args.frames, 120)) or frames
    rows, dogs_per_frame = timed_rows(model, frames, clip)
    # Rows take turns, round after round: a slow spell of a shared machine falls on all of them.
    results: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(max(1, args.rounds)):
        for name, run in rows.items():
            results[name].append(run())
    dec = float(np.median(results["PyAV H.264 decode to RGB"]))
    title = f"720p, onnxruntime threads={args.threads}" + (", flip test" if args.flip_test else "")
    print(f"{title:<56}{'fps (median)':>14}{'min-max':>14}{'x decode':>10}")
    print("-" * 94)
    for name, values in results.items():
        median = float(np.median(values))
        spread = f"{min(values):.1f}-{max(values):.1f}"
        print(f"{name:<56}{median:14.1f}{spread:>14}{median / dec:10.2f}")
    found = sum(dogs_per_frame) / max(len(dogs_per_frame), 1)
    print(f"{args.rounds} rounds of {len(frames)} frames, tracker {len(clip)} clip frames; {found:.2f} dogs/frame")


if __name__ == "__main__":
    main()
