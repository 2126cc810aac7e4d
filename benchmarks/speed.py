"""Benchmark: a whole `hindsight analyze` run per clip, process start included, against the clip's duration.

For each clip this times (1) decoding it alone, in this process, and (2) ``python -m vision analyze
CLIP --json`` in a new process (imports, model load, decoding, tracking, analysis, muscle; no
overlay), wall clock. It prints both, the analysis time as a share of the clip's duration (the
target is at most 0.5) and as a multiple of decoding alone.

    python benchmarks/speed.py [CLIP_OR_DIR ...] [--limit N]

With no argument the owner clips in ../shared/data/videos/owner_clips are used when present, else a
10 s, 30 fps synthetic clip is rendered (the keypoint model finds no real dog in it, so that figure
is a lower bound). Run it on an otherwise idle machine: the figures are wall-clock times.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vision.video import iter_frames, probe

OWNER_CLIPS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos" / "owner_clips"


def decode_seconds(path: Path) -> float:
    """Wall-clock seconds to decode every frame of a clip to RGB."""
    t0 = time.perf_counter()
    for _ in iter_frames(path):
        pass
    return time.perf_counter() - t0


def analyze_seconds(path: Path) -> tuple[float, int]:
    """Wall-clock seconds of ``python -m vision analyze PATH --json`` in a new process, and its exit code."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "vision", "analyze", str(path), "--json"], capture_output=True, check=False
    )
    return time.perf_counter() - t0, done.returncode


def _clips(args: argparse.Namespace, tmp: Path) -> list[Path]:
    paths: list[Path] = []
    for a in args.clips or ([OWNER_CLIPS] if OWNER_CLIPS.is_dir() else []):
        p = Path(a)
        paths += sorted(p.glob("*.mp4")) if p.is_dir() else [p]
    if not paths:
        from vision.synthetic import generate, render_video

        out = tmp / "synthetic_10s.mp4"
        render_video(generate(duration_s=10.0, fps=30.0, frame_size=(1280, 720)), str(out))
        paths = [out]
    return paths[: args.limit] if args.limit else paths


def main(argv: list[str] | None = None) -> int:
    """Print one row per clip and the median share of real time."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clips", nargs="*", help="clips or folders of .mp4 clips")
    parser.add_argument("--limit", type=int, default=0, help="at most this many clips")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        clips = _clips(args, Path(tmp))
        print(f"{'clip':<22} {'length s':>8} {'decode s':>8} {'analyze s':>9} {'x real time':>11} {'x decode':>8} exit")
        shares = []
        for clip in clips:
            length = probe(clip).duration_s
            dec = decode_seconds(clip)
            total, code = analyze_seconds(clip)
            shares.append(total / length)
            ratios = f"{total / length:11.2f} {total / dec:8.1f}"
            print(f"{clip.name:<22} {length:8.1f} {dec:8.2f} {total:9.2f} {ratios} {code}")
        print(f"median share of real time: {statistics.median(shares):.2f} (target <= 0.50)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
