"""Real-clip evaluation: run the whole analysis on a folder of videos and hold it against labels.

For each clip the table gives what an owner would get (scored or not, the reasons) and the figures
behind it: the share of frames with the dog in view, the share of those with usable hind points,
hind strides, gait type, hind asymmetry with its 95 % interval, the weaker side, hind phase, how
often the hind-paw labels changed order per stride (about 2 when they follow the legs, see
:mod:`vision.gait.identity`), the wobble and tremor flags, a held-up leg, and the time taken. The
summary holds the verdicts against a ``labels.json`` of the form::

    {"clips": {"clip01.mp4": {"scoreable": true | null | false, "side": "left" | "right" | null,
                              "gait": "walk", "finding": "...", ...}}}

``scoreable`` null is borderline: either verdict is accepted. Tracks may be cached (``--cache``) so
that a change to the gait science can be re-measured without re-running the keypoint model.

Usage::

    python -m vision.clip_eval DIR [--labels DIR/labels.json] [--json] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vision.errors import HindsightInputError

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".webm", ".avi")
HIND_POINTS = ("tail_base", "left_hind_paw", "right_hind_paw")


@dataclass
class ClipRow:
    """One clip's outcome, as the table prints it."""

    clip: str
    scored: bool
    reasons: list[str] = field(default_factory=list)
    dog_in_view: float | None = None
    hind_usable_in_view: float | None = None
    strides: int = 0
    strides_kept: int | None = None
    gait_type: str | None = None
    view: str | None = None
    direction: str | None = None
    asymmetry_pct: float | None = None
    asymmetry_ci95: list[float] | None = None
    weaker_side: str | None = None
    hind_phase: float | None = None
    wobble_flag: bool | None = None
    tremor_flag: bool | None = None
    held_up_side: str | None = None
    label_changes_per_stride: float | None = None
    seconds: float = 0.0
    error: str | None = None


def hind_coverage(tracks: Any, blank: np.ndarray | None = None, threshold: float = 0.3) -> tuple[float, float]:
    """Share of frames with the dog in view, and of those, the share with usable hind points.

    Parameters
    ----------
    tracks
        Raw tracks (:mod:`vision.tracks` layout, one individual), confidence not yet masked.
    blank
        Shape ``(time,)`` bool: frames with no picture, left out of both shares (None: none).
    threshold
        Confidence below which a point is not usable (the analysis' own threshold).

    Returns
    -------
    (in_view, hind_usable)
        Both in 0..1. ``in_view`` is the share of frames with a picture in which the tracker
        followed a dog; its hind points are usable when the tail base and both hind paws reach
        ``threshold``.
    """
    names = [str(k) for k in tracks["keypoint"].values]
    conf = np.nan_to_num(tracks["confidence"].values[:, :, 0], nan=0.0)
    pos = tracks["position"].values[:, :, :, 0]
    seen = np.isfinite(pos).all(axis=1).any(axis=1)
    picture = ~blank if blank is not None and blank.shape == seen.shape else np.ones(seen.shape, bool)
    if not picture.any():
        return 0.0, 0.0
    idx = [names.index(k) for k in HIND_POINTS if k in names]
    good = (conf[:, idx] >= threshold).all(axis=1) & seen
    n_seen = int((seen & picture).sum())
    return float(n_seen / picture.sum()), float((good & picture).sum() / n_seen) if n_seen else 0.0


def blank_frames(path: Path, times: np.ndarray) -> np.ndarray:
    """Which of a clip's frames at ``times`` (s) have no picture, decoding it once."""
    from vision.analysis import on_grid
    from vision.pose.video_tracking import grey_thumbnail, is_blank
    from vision.video import iter_frames

    t, flags = [], []
    for frame in iter_frames(path):
        t.append(frame.time_s)
        flags.append(is_blank(grey_thumbnail(frame.image)))
    mask = on_grid(np.asarray(flags, bool), np.asarray(t), np.asarray(times))
    return mask if mask is not None else np.zeros(len(times), bool)


def row_from_report(
    name: str, report: dict[str, Any], raw_tracks: Any, seconds: float, blank: np.ndarray | None = None
) -> ClipRow:
    """Collect the table's columns from an analysis report and the tracks it was made from."""
    q = report["quality"]
    m = report["metrics"]
    sym, bunny, wob = m["symmetry"], m["bunny_hop"], m["wobble"]
    in_view, hind = hind_coverage(raw_tracks, blank)
    w = sym.get("weakness_pct") or {}
    held = (m.get("held_up_leg") or {}).get("side")
    return ClipRow(
        clip=name,
        scored=bool(q["usable"]),
        reasons=list(q.get("reasons", [])),
        dog_in_view=round(in_view, 3),
        hind_usable_in_view=round(hind, 3),
        strides=int(q.get("hind_strides", 0)),
        strides_kept=(wob.get("ataxia") or {}).get("strides_kept"),
        gait_type=bunny.get("gait_type"),
        view=q.get("view"),
        direction=q.get("direction"),
        asymmetry_pct=None if w.get("value") is None else round(abs(float(w["value"])), 1),
        asymmetry_ci95=None if not w.get("ci95") else [round(float(v), 1) for v in w["ci95"]],
        weaker_side=sym.get("weaker_side") if q["usable"] else None,
        hind_phase=bunny.get("hind_phase"),
        wobble_flag=wob.get("flag"),
        tremor_flag=(wob.get("tremor") or {}).get("flag"),
        held_up_side=held,
        label_changes_per_stride=(m.get("hind_labels") or {}).get("changes_per_stride"),
        seconds=round(seconds, 2),
    )


def evaluate_clip(path: Path, backend: Any, cache: Path | None = None) -> ClipRow:
    """Analyse one clip (or its cached tracks) and return its row; bad input becomes an error row."""
    from vision.analysis import analyze_path, analyze_tracks
    from vision.video import probe

    started = time.perf_counter()
    cached = cache / f"{path.stem}.nc" if cache is not None else None
    try:
        if cached is not None and cached.is_file():
            import xarray as xr

            from vision.io import load_poses

            ds = load_poses(cached)
            with xr.open_dataset(cached) as raw:
                motion = str(raw.attrs.get("camera_motion", "unknown"))
            result = analyze_tracks(
                ds,
                source={"file": path.name, "kind": "video"},
                video_info=probe(path),
                camera_motion=motion,
                blank=blank_frames(path, ds["time"].values),
            )
        else:
            result = analyze_path(path, backend=backend)
            if cached is not None:
                from vision.io import save_poses

                cached.parent.mkdir(parents=True, exist_ok=True)
                save_poses(
                    result.raw_tracks.assign_attrs(camera_motion=result.report["quality"]["camera_motion"]), cached
                )
    except HindsightInputError as exc:
        return ClipRow(
            clip=path.name,
            scored=False,
            reasons=[str(exc)],
            error=str(exc),
            seconds=round(time.perf_counter() - started, 2),
        )
    return row_from_report(path.name, result.report, result.raw_tracks, time.perf_counter() - started, result.blank)


def judge(row: ClipRow, label: dict[str, Any] | None) -> dict[str, Any]:
    """Hold one row against its label: is the verdict right, and is the side right.

    Returns
    -------
    dict
        ``verdict_ok`` (None when the label is borderline or missing), ``side_ok`` (None when the
        label names no side, the clip was not scored or the report names no side), ``side_unnamed``
        (a scored clip whose label names a side that the report does not name), and
        ``sound_flagged`` (a clip whose label names no finding in the hind legs but whose report flags one).
    """
    if label is None:
        return {"verdict_ok": None, "side_ok": None, "side_unnamed": None, "sound_flagged": None}
    want = label.get("scoreable")
    verdict_ok = None if want is None else bool(row.scored) == bool(want)
    side = label.get("side")
    side_ok = side_unnamed = None
    if side and row.scored:
        named = row.held_up_side or row.weaker_side
        side_unnamed = named is None
        side_ok = None if named is None else named == side
    finding = str(label.get("finding", "")).lower()
    sound = (
        "no gait finding" in finding
        or "not a hind-limb case" in finding
        or "typical of the breed" in finding
        or "hind limbs should not be called weak" in finding
    )
    flagged = bool(row.weaker_side or row.wobble_flag or row.held_up_side) if row.scored else False
    return {
        "verdict_ok": verdict_ok,
        "side_ok": side_ok,
        "side_unnamed": side_unnamed,
        "sound_flagged": flagged if sound else None,
    }


def summarise(rows: list[ClipRow], labels: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Counts against the labels: scoreable clips scored, unscoreable refused, sides, sound dogs flagged."""
    judged = {r.clip: judge(r, labels.get(r.clip)) for r in rows}

    def count(key: str, value: Any) -> int:
        return sum(1 for j in judged.values() if j[key] is value)

    want = {r.clip: (labels.get(r.clip) or {}).get("scoreable", "?") for r in rows}
    return {
        "clips": len(rows),
        "scored": sum(r.scored for r in rows),
        "scoreable_scored": sum(1 for r in rows if want[r.clip] is True and r.scored),
        "scoreable": sum(1 for v in want.values() if v is True),
        "unscoreable_refused": sum(1 for r in rows if want[r.clip] is False and not r.scored),
        "unscoreable": sum(1 for v in want.values() if v is False),
        "borderline_scored": sum(1 for r in rows if want[r.clip] is None and r.scored),
        "borderline": sum(1 for v in want.values() if v is None),
        "verdicts_right": count("verdict_ok", True),
        "verdicts_wrong": count("verdict_ok", False),
        "sides_right": count("side_ok", True),
        "sides_wrong": count("side_ok", False),
        "sides_unnamed": count("side_unnamed", True),
        "sound_flagged": count("sound_flagged", True),
        "sound_clean": count("sound_flagged", False),
        "median_seconds": round(float(np.median([r.seconds for r in rows])), 2) if rows else None,
        "per_clip": judged,
    }


def _fmt(v: Any, spec: str = "") -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return format(v, spec) if spec else str(v)


def format_table(rows: list[ClipRow], labels: dict[str, dict[str, Any]]) -> str:
    """Markdown table, one row per clip, then the summary and the refusals' reasons."""
    head = (
        "| clip | label | scored | in view | hind ok | strides | gait | view/dir | asym % [95 % CI] "
        "| weaker | held up | phase | labels | wobble | tremor | s |"
    )
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lab = labels.get(r.clip) or {}
        want = {True: "yes", None: "borderline", False: "no"}.get(lab.get("scoreable"), "?")
        if lab.get("side"):
            want += f" ({lab['side']})"
        ci = f" [{r.asymmetry_ci95[0]:.0f}, {r.asymmetry_ci95[1]:.0f}]" if r.asymmetry_ci95 else ""
        asym = f"{r.asymmetry_pct:.1f}{ci}" if r.asymmetry_pct is not None else "–"
        out.append(
            f"| {r.clip} | {want} | {_fmt(r.scored)} | {_fmt(r.dog_in_view, '.0%')} | "
            f"{_fmt(r.hind_usable_in_view, '.0%')} | {r.strides}"
            f"{'' if r.strides_kept is None else f' ({r.strides_kept} kept)'} | {_fmt(r.gait_type)} | "
            f"{_fmt(r.view)}/{_fmt(r.direction)} | {asym} | {_fmt(r.weaker_side)} | {_fmt(r.held_up_side)} | "
            f"{_fmt(r.hind_phase, '.2f')} | {_fmt(r.label_changes_per_stride, '.1f')} | {_fmt(r.wobble_flag)} | "
            f"{_fmt(r.tremor_flag)} | {r.seconds:.1f} |"
        )
    s = summarise(rows, labels)
    out.append("")
    out.append(
        f"Scored {s['scored']} of {s['clips']}: scoreable scored {s['scoreable_scored']}/{s['scoreable']}, "
        f"unscoreable refused {s['unscoreable_refused']}/{s['unscoreable']}, borderline scored "
        f"{s['borderline_scored']}/{s['borderline']}; sides right {s['sides_right']}, wrong {s['sides_wrong']}, "
        f"not named {s['sides_unnamed']}; "
        f"sound dogs flagged {s['sound_flagged']}, clean {s['sound_clean']}; median {s['median_seconds']} s a clip."
    )
    out.append("")
    for r in rows:
        if not r.scored:
            out.append(f"- {r.clip}: " + " ".join(r.reasons))
    return "\n".join(out)


def find_clips(folder: Path) -> list[Path]:
    """Videos in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())


def main(argv: list[str] | None = None) -> int:
    """Command line: evaluate every clip in a folder and print the table (or JSON)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path, help="folder of videos")
    ap.add_argument("--labels", type=Path, default=None, help="labels.json (default: FOLDER/labels.json if present)")
    ap.add_argument("--cache", type=Path, default=None, help="folder for cached tracks (re-used when present)")
    ap.add_argument("--only", nargs="*", default=None, help="clip file names to evaluate")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args(argv)
    if not args.folder.is_dir():
        print(f"error: not a folder: {args.folder}", file=sys.stderr)
        return 2
    label_path = args.labels or (args.folder / "labels.json")
    labels = json.loads(label_path.read_text(encoding="utf-8")).get("clips", {}) if label_path.is_file() else {}
    clips = [p for p in find_clips(args.folder) if not args.only or p.name in args.only]
    from vision.pose import default_backend

    backend = default_backend()
    rows = []
    for p in clips:
        rows.append(evaluate_clip(p, backend, args.cache))
        print(f"{p.name}: {'scored' if rows[-1].scored else 'refused'} ({rows[-1].seconds:.1f} s)", file=sys.stderr)
    if args.json:
        print(json.dumps({"rows": [asdict(r) for r in rows], "summary": summarise(rows, labels)}, indent=2))
    else:
        print(format_table(rows, labels))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
