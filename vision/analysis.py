"""The analysis pipeline: tracks (from a video or a pose file) -> cleaned tracks -> report.

Order matters and is fixed: mask low confidence, repair left/right swaps, fill
short gaps, then smooth for event timing; tremor is measured on the unsmoothed
(gap-filled) tracks. The quality gate decides whether summary scores are shown.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from vision import __version__
from vision.clean import (
    drop_low_confidence,
    interpolate_gaps,
    repair_swaps,
    resample_uniform,
    smooth,
)
from vision.errors import HindsightInputError
from vision.gait.bunny import bunny_hop_metrics
from vision.gait.events import GaitEvents, detect_events
from vision.gait.identity import check_hind_labels
from vision.gait.stats import estimate
from vision.gait.symmetry import symmetry_metrics, without_sides
from vision.gait.weight_bearing import held_up_leg
from vision.gait.wobble import wobble_metrics
from vision.io import ensure_canonical, is_pose_file, load_poses
from vision.muscle.metrics import muscle_metrics
from vision.quality import assess
from vision.report import SCHEMA_VERSION, Report
from vision.tracks import read_log, validate
from vision.video import VideoInfo, check_duration, probe

CONFIDENCE_THRESHOLD = 0.3
MAX_GAP_S = 0.2
SMOOTH_CUTOFF_HZ = 6.0
MIN_TRACK_DURATION_S = 1.0

Progress = Callable[[float, str], None]
#: Summary line and filming advice when the hind-paw labels do not follow the legs (vision.gait.identity).
LABELS_NOTE = (
    "The two hind legs could not be told apart (the tracker named the hind paws by place, front and back, not by "
    "leg): no weaker side is named and whether they move together is not judged."
)
LABELS_ADVICE = (
    "A clip of the dog walking straight away from the camera, at its height, lets Hindsight compare the two "
    "thighs' muscle."
)


@dataclass
class AnalysisResult:
    """Everything one analysis produced."""

    report: dict[str, Any]
    tracks: xr.Dataset  # cleaned, smoothed: what events and symmetry used
    raw_tracks: xr.Dataset  # as read or predicted, canonical names
    events: GaitEvents | None
    blank: np.ndarray | None = None  # (time,) of raw_tracks: frames with no picture, None when unknown


def pick_individual(ds: xr.Dataset) -> int:
    """Index of the individual with the most tracked hind-limb data."""
    if ds.sizes["individual"] == 1:
        return 0
    pos = ds["position"].values
    counts = np.isfinite(pos).all(axis=1).sum(axis=(0, 1))
    return int(np.argmax(counts))


def analyze_tracks(
    ds: xr.Dataset,
    *,
    source: dict[str, Any] | None = None,
    video_info: VideoInfo | None = None,
    camera_motion: str = "unknown",
    blank: np.ndarray | None = None,
    video: str | os.PathLike[str] | None = None,
) -> AnalysisResult:
    """Clean tracks, gate quality and compute every metric; return the report.

    Parameters
    ----------
    ds
        Tracks dataset (see :mod:`vision.tracks`); several individuals allowed,
        the best-tracked dog is analysed.
    blank
        Shape ``(time,)`` bool, one per frame of ``ds``: frames with no picture
        (:func:`vision.pose.video_tracking.is_blank`); None when unknown.
    video
        The clip the tracks were read from: the muscle indices are measured on its frames
        (decoded up to the last frame they need) when the clip can be scored, or is filmed from
        behind; None -> no silhouette indices.
    """
    check_tracks(ds)
    t = ds["time"].values
    ind = pick_individual(ds)
    one = ensure_canonical(ds.isel(individual=[ind]))
    fps_real = float(1.0 / np.median(np.diff(t)))
    uniform = resample_uniform(one)
    masked = drop_low_confidence(uniform, CONFIDENCE_THRESHOLD)
    repaired, swaps = repair_swaps(masked)
    filled = interpolate_gaps(repaired, MAX_GAP_S)
    smoothed = smooth(filled, SMOOTH_CUTOFF_HZ)
    events = detect_events(smoothed)
    width = int(ds.attrs.get("frame_width") or (video_info.width if video_info else 0)) or None
    quality = assess(
        masked,
        events,
        fps=fps_real,
        frame_width=width,
        camera_motion=camera_motion,
        swaps_repaired=swaps.total,
        blank=on_grid(blank, t, uniform["time"].values),
    )
    labels = check_hind_labels(smoothed, events)
    symmetry = symmetry_metrics(smoothed, events)
    bunny = bunny_hop_metrics(events, smoothed, labels_follow_legs=labels.follow_legs)
    held = held_up_leg(smoothed, events)
    if labels.follow_legs is False:
        symmetry = without_sides(symmetry)
        if held.get("flag"):
            held["side"] = None
            held["reason"] = (
                "One hind paw seldom came down to the ground: a hind leg is held up or barely bears weight. "
                "Which one could not be told, because the hind paws were not told apart."
            )
        quality.advice.append(LABELS_ADVICE)
    if held["flag"]:
        # Hopping on three legs is neither a gallop nor bunny hopping: the held-up leg is the finding.
        bunny["gait_type"] = "three-legged"
        bunny["flag"] = None
        bunny["note"] = "A hind leg is held up, so the hind legs' coupling is not judged."
    if bunny.get("gait_type") == "gallop":
        quality.reasons.append(
            "The dog was galloping or bounding; symmetry and bunny hopping are judged at a walk or trot."
        )
        quality.advice.append("Walk or trot the dog on a loose lead past the camera.")
        quality.usable = False
    wobble = wobble_metrics(filled, events)
    if camera_motion == "shaky" and wobble["tremor"]["flag"]:
        wobble["tremor"]["note"] = "Camera shake can look like tremor: this tremor result is unreliable."
    gait = gait_summary(events)
    muscle = _muscle(video, smoothed, events, quality.usable, quality.view)
    metrics = {
        "gait": gait,
        "symmetry": symmetry,
        "bunny_hop": bunny,
        "wobble": wobble,
        "held_up_leg": held,
        "hind_labels": labels.to_dict(),
        "muscle": muscle,
    }
    if not quality.usable:
        withhold(metrics)
    report = {
        "schema_version": SCHEMA_VERSION,
        "hindsight_version": __version__,
        "analysed_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "source": {
            **(source or {}),
            "video": video_info.to_dict() if video_info else None,
            "individual": str(one["individual"].values[0]),
        },
        "quality": quality.to_dict(),
        "metrics": metrics,
        "summary": plain_summary(quality.usable, metrics),
        "provenance": read_log(smoothed),
    }
    decoded = report["source"]["video"]  # type: ignore[index]
    if decoded:
        decoded["path"] = Path(decoded["path"]).name
    Report.from_dict(report)  # the analysis keeps the report's contract (vision.report)
    return AnalysisResult(report=report, tracks=smoothed, raw_tracks=one, events=events, blank=blank)


def _muscle(
    video: str | os.PathLike[str] | None, tracks: xr.Dataset, events: GaitEvents, usable: bool, view: str
) -> dict[str, Any]:
    """The muscle block, measured once: on the video's frames when the clip allows it."""
    if video is None:
        return muscle_metrics(None, tracks, events, view)
    if not usable and view != "rear":
        block = muscle_metrics(None, tracks, events, view)
        block["reason"] = "measured only on clips that can be scored, side-on or from behind"
        return block
    block = muscle_metrics(video, tracks, events, view)
    if not usable:  # a rear view is fit for muscle, not gait: no side is named
        block["thigh_asymmetry_pct"] = block["weaker_side"] = None
    return block


def on_grid(mask: np.ndarray | None, times: np.ndarray, grid: np.ndarray) -> np.ndarray | None:
    """A per-frame bool mask moved onto another time grid (nearest frame); None stays None."""
    if mask is None or mask.shape != times.shape or times.size == 0:
        return None
    idx = np.clip(np.searchsorted(times, grid), 0, times.size - 1)
    prev = np.clip(idx - 1, 0, times.size - 1)
    nearer = np.where(np.abs(times[prev] - grid) < np.abs(times[idx] - grid), prev, idx)
    return np.asarray(mask, bool)[nearer]


def check_tracks(ds: xr.Dataset) -> None:
    """Raise a one-line :class:`HindsightInputError` for tracks that cannot be analysed at all."""
    try:
        validate(ds)
    except ValueError as exc:
        raise HindsightInputError(f"not pose tracks: {exc}") from exc
    t = ds["time"].values
    if t.size < 2 or (t[-1] - t[0]) < MIN_TRACK_DURATION_S:
        span = float(t[-1] - t[0]) if t.size else 0.0
        raise HindsightInputError(f"too short: {max(0.0, span):.1f} s of tracks; film at least 10 s")


def gait_summary(events: GaitEvents) -> dict[str, Any]:
    """Stride time, duty factor and walking speed of the hind limbs, and their paw events.

    ``events`` holds, per hind limb, the paw strike and lift-off times in seconds on the
    clip's clock (what the side-by-side view aligns on, so that it never re-detects them).
    """
    strides = events.strides.get("left_hind", []) + events.strides.get("right_hind", [])
    speed = [s.excursion_bl / s.stance for s in strides if s.stance > 0]
    return {
        "stride_time_s": estimate([s.duration for s in strides], "s").to_dict(),
        "duty_factor": estimate([s.duty_factor for s in strides], "").to_dict(),
        "speed_bl_per_s": estimate(speed, "body lengths/s").to_dict(),
        "body_length_px": round(events.body_length_px, 2) if events.body_length_px else None,
        "events": {
            limb: {
                "strikes_s": [round(float(x), 4) for x in events.strikes.get(limb, [])],
                "lift_offs_s": [round(float(x), 4) for x in events.lift_offs.get(limb, [])],
            }
            for limb in ("left_hind", "right_hind")
        },
    }


def withhold(metrics: dict[str, Any]) -> None:
    """Blank the summary scores of an unusable clip (details stay, marked unreliable)."""
    metrics["symmetry"]["hind_asymmetry_pct"] = None
    metrics["symmetry"]["weaker_side"] = None
    metrics["bunny_hop"]["flag"] = None
    metrics["wobble"]["flag"] = None
    metrics["wobble"]["tremor_hz"] = None
    if "held_up_leg" in metrics:
        metrics["held_up_leg"]["flag"] = metrics["held_up_leg"]["side"] = None
    muscle = metrics.get("muscle", {})
    for key in ("thigh_asymmetry_pct", "weaker_side"):
        if key in muscle:
            muscle[key] = None
    metrics["withheld"] = True


def plain_summary(usable: bool, metrics: dict[str, Any]) -> list[str]:
    """Short plain-language lines for owners; the numbers stay in ``metrics``."""
    if not usable:
        return ["This clip could not be scored reliably; see the quality reasons and advice."]
    lines = []
    held = metrics.get("held_up_leg") or {}
    if held.get("flag"):
        leg = f"The {held['side']} hind leg" if held.get("side") in ("left", "right") else "A hind leg"
        lines.append(f"{leg} is held up or barely bears weight.")
    sym = metrics["symmetry"]
    w = sym.get("weakness_pct", {})
    if sym.get("weaker_side"):
        lo, hi = sorted(abs(v) for v in w["ci95"])
        lines.append(
            f"The {sym['weaker_side']} hind leg looks weaker: {sym['hind_asymmetry_pct']:.0f}% asymmetry "
            f"(95% interval {lo:.0f} to {hi:.0f}%, {w.get('evidence', '?')} evidence)."
        )
    elif sym.get("legs_told_apart") is False:
        lines.append(LABELS_NOTE)
    elif w.get("value") is not None:
        lines.append("Hind-leg symmetry: within measurement noise (no side is clearly weaker in this clip).")
    bh = metrics["bunny_hop"]
    labels_apart = (metrics.get("hind_labels") or {}).get("follow_legs") is not False
    if bh.get("note") and bh.get("flag") is None and labels_apart:  # else the symmetry line said why
        lines.append(bh["note"])
    if bh.get("flag"):
        lines.append(
            f"Both hind legs often move together (bunny hopping) in {100 * bh['in_phase_share']:.0f}% of strides."
        )
    elif bh.get("flag") is False:
        lines.append("The hind legs alternate normally.")
    wb = metrics["wobble"]
    if wb["tremor"].get("flag"):
        lines.append(f"A hind-limb tremor of about {wb['tremor_hz']:.1f} Hz was seen.")
    if wb["ataxia"].get("ataxia_flag"):
        lines.append("Stride timing or length varies more than usual (possible wobble/ataxia).")
    if wb["tremor"].get("note"):
        lines.append(wb["tremor"]["note"])
    lines.append("Hindsight supports your vet; it does not diagnose.")
    return lines


def analyze_path(
    path: str | os.PathLike[str],
    *,
    fps: float | None = None,
    backend: Any | None = None,
    progress: Progress | None = None,
) -> AnalysisResult:
    """Analyse a video (with the keypoint model) or a pose file.

    Raises
    ------
    HindsightInputError
        For every kind of bad input, with a one-line message.
    """
    p = Path(path)
    if not p.exists():
        raise HindsightInputError(f"file not found: {p.name}")
    if is_pose_file(p):
        ds = load_poses(p, fps=fps)
        check_tracks(ds)  # bad input fails before any progress is shown
        if progress:
            progress(0.3, "analysing gait")
        result = analyze_tracks(ds, source={"file": p.name, "kind": "poses"})
        if progress:
            progress(1.0, "done")
        return result
    info = probe(p)
    check_duration(info)
    if backend is None:
        from vision.pose import default_backend

        try:
            backend = default_backend()
        except FileNotFoundError as exc:
            raise HindsightInputError(f"keypoint model not found: {exc}") from exc
    from vision.pose import track_video

    def tracking_progress(fraction: float, message: str) -> None:
        if progress:
            progress(0.85 * fraction, message)

    tracked = track_video(p, backend, info=info, progress=tracking_progress)
    if progress:
        progress(0.85, "analysing gait")
    result = analyze_tracks(
        tracked.tracks,
        source={
            "file": p.name,
            "kind": "video",
            "backend": getattr(backend, "name", "?"),
            "model_version": getattr(backend, "model_version", None),
        },
        video_info=info,
        camera_motion=tracked.camera_motion,
        blank=tracked.blank,
        video=p,
    )
    if progress:
        progress(1.0, "done")
    return result
