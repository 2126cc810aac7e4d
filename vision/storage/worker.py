"""Background analysis worker: ``python -m vision.storage.worker CLIP_ID``."""

from __future__ import annotations

import sys

from vision.storage.db import Store


def main(argv: list[str] | None = None) -> int:
    """Analyse one stored clip; the store comes from the environment."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m vision.storage.worker CLIP_ID", file=sys.stderr)
        return 2
    clip = Store().run_analysis(int(args[0]))
    return 0 if clip.status == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
