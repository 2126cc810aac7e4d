"""Real-clip table: every clip of a folder analysed as an owner's upload, held against its labels.

    python benchmarks/real_clips.py [DIR] [--cache DIR] [--json]

DIR defaults to ../shared/data/videos/owner_clips. See :mod:`vision.clip_eval`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from vision.clip_eval import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        args = [str(Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos" / "owner_clips"), *args]
    raise SystemExit(main(args))
