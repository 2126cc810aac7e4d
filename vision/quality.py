"""Capture quality gate: can this clip be scored, and if not, what should the owner change.

The gate never lets a bad clip produce a confident score: when ``usable`` is
false the report's summary scores are withheld and ``reasons`` and ``advice``
say why in plain language.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from vision.anatomy import HIND_LIMB_KEYPOINTS
from vision.gait.events import GaitEvents, body_axis
from vision.tracks import keypoint_xy, usable_fraction

MIN_HIND_STRIDES = 3
GOOD_HIND_STRIDES = 6
MIN_FPS = 15.0
ORTHOSTATIC_MIN_FPS = 59.0  # orthostatic tremor (> 12 Hz, often 13-16 Hz) needs about 60 fps
MIN_DOG_WIDTH_SHARE = 0.08
MIN_DOG_FRAMES_SHARE = 0.3

ADVICE_FILMING = (
    "Film side-on at the dog's height, 3–5 m away, in landscape, with the dog at least a quarter of the "
    "frame wide, and record at least 6 strides each way, walking past in both directions on flat ground."
)
ADVICE_CLOSER = "Film closer (3–5 m away) so that the dog is at least a quarter of the frame wide."
ADVICE_STEADY = "Hold the phone still (or rest it on something) and let the dog walk past; don't follow it by hand."
ADVICE_WALK = "Walk the dog on a loose lead in a straight line past the camera, away from smells and toys."
ADVICE_LEGS = "Film on short grass or a path, with nothing in front of the hind legs (lead, people, furniture)."
ADVICE_PICTURE = "Keep the lens uncovered and film in good light for the whole clip."
ADVICE_TREMOR = "For tremor, also film the dog standing still at 60 fps or in slow motion (120/240 fps)."


@dataclass
class QualityReport:
    """Verdict of the capture quality gate."""

    usable: bool
    reasons: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)
    view: str = "unknown"
    direction: str = "unknown"
    hind_strides: int = 0
    fps: float = 0.0
    dog_frames_share: float = 0.0
    dog_size_share: float | None = None
    camera_motion: str = "unknown"
    picture_share: float = 1.0
    usable_fraction: dict[str, float] = field(default_factory=dict)
    swaps_repaired: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = asdict(self)
        d["usable_fraction"] = {k: round(v, 3) for k, v in self.usable_fraction.items()}
        d["fps"] = round(self.fps, 3)
        d["dog_frames_share"] = round(self.dog_frames_share, 3)
        d["dog_size_share"] = None if self.dog_size_share is None else round(self.dog_size_share, 3)
        return d


def classify_view(ds: xr.Dataset, individual: int = 0) -> tuple[str, str]:
    """Camera view (``lateral``, ``oblique``, ``rear``, ``front``, ``unknown``) and walking direction.

    Side-on, the withers-to-tail-base axis is long and horizontal compared with the
    hind-leg height; from behind or in front it shrinks to nearly nothing. Front and
    rear are told apart by whether the face is visible.
    """
    v, length = body_axis(ds, individual)
    tail = keypoint_xy(ds, "tail_base", individual)
    both = np.stack([keypoint_xy(ds, "left_hind_paw", individual), keypoint_xy(ds, "right_hind_paw", individual)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # frames with neither paw stay NaN
        paws = np.nanmean(both, axis=0)
    leg = np.abs(paws[:, 1] - tail[:, 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.abs(v[:, 0]) / leg
    ratio = ratio[np.isfinite(ratio)]
    if ratio.size < 5:
        return "unknown", "unknown"
    r = float(np.median(ratio))
    fraction = usable_fraction(ds, individual)
    face = np.mean([fraction.get(k, 0.0) for k in ("nose", "left_eye", "right_eye")])
    if r >= 0.9:
        dx = v[:, 0][np.isfinite(v[:, 0])]
        right = float(np.mean(dx > 0)) if dx.size else 0.5
        direction = "left_to_right" if right > 0.8 else "right_to_left" if right < 0.2 else "both"
        return "lateral", direction
    if r >= 0.4:
        return "oblique", "unknown"
    if face > 0.6:
        return "front", "toward"
    return "rear", "away"


def assess(
    ds: xr.Dataset,
    events: GaitEvents | None,
    *,
    fps: float,
    frame_width: int | None = None,
    camera_motion: str = "unknown",
    swaps_repaired: int = 0,
    individual: int = 0,
    blank: np.ndarray | None = None,
) -> QualityReport:
    """Judge whether a clip can be scored.

    Parameters
    ----------
    ds
        Tracks after confidence masking (NaN where the model was unsure).
    events
        Gait events (None if they could not be computed).
    fps
        Real frame rate from the timestamps.
    frame_width
        Width of the video frame in pixels (for the dog's size in frame).
    blank
        Shape ``(time,)`` bool on the tracks' grid: frames with no picture (black, a covered
        lens). They are left out of every share; None when unknown (pose files).

    Notes
    -----
    Each reason names a cause an owner can fix and comes with its advice: no picture, no dog,
    the dog too small, filmed from the front or rear, the legs hidden, the dog not walking,
    too few strides, and the camera moving when that is why the strides could not be measured.
    """
    fraction = usable_fraction(ds, individual)
    pos = ds["position"].isel(individual=individual).values
    seen = np.isfinite(pos).all(axis=1)  # (time, keypoint)
    picture = ~blank if blank is not None and blank.shape == (seen.shape[0],) else np.ones(seen.shape[0], bool)
    picture_share = float(picture.mean()) if picture.size else 0.0
    dog_seen = seen.any(axis=1)
    dog_frames = float(dog_seen[picture].mean()) if picture.any() else 0.0
    names = [str(k) for k in ds["keypoint"].values]
    hind_idx = [names.index(k) for k in HIND_LIMB_KEYPOINTS if k in names]
    hind_seen = float(seen[dog_seen][:, hind_idx].mean()) if dog_seen.any() and hind_idx else 0.0
    view, direction = classify_view(ds, individual)
    strides = events.n_hind_strides() if events is not None else 0
    L = events.body_length_px if events is not None else None
    size = float(L / frame_width) if (L and frame_width) else None
    q = QualityReport(
        usable=True,
        view=view,
        direction=direction,
        hind_strides=strides,
        fps=fps,
        dog_frames_share=dog_frames,
        dog_size_share=size,
        camera_motion=camera_motion,
        picture_share=picture_share,
        usable_fraction=fraction,
        swaps_repaired=swaps_repaired,
    )
    if picture_share < MIN_DOG_FRAMES_SHARE:
        q.reasons.append(f"The video has a picture in only {100 * picture_share:.0f}% of the clip (the rest is black).")
        q.advice.append(ADVICE_PICTURE)
    elif dog_frames < MIN_DOG_FRAMES_SHARE:
        q.reasons.append("No dog was found in most of the clip." if dog_frames > 0 else "No dog was found in the clip.")
        q.advice.append("Keep the whole dog in frame and in good light for the entire clip.")
    if fps < MIN_FPS:
        q.reasons.append(f"The frame rate ({fps:.0f} fps) is too low to time paw strikes.")
        q.advice.append("Record at 30 fps or more (60 fps is better).")
    found = dog_frames >= MIN_DOG_FRAMES_SHARE and picture_share >= MIN_DOG_FRAMES_SHARE
    if size is not None and size < MIN_DOG_WIDTH_SHARE:
        q.reasons.append(f"The dog is small in the frame (about {100 * size:.0f}% of its width).")
        q.advice.append(ADVICE_CLOSER)
    if view in ("rear", "front"):
        q.reasons.append(f"The clip is filmed from the {view}; stride timing and symmetry need a side-on view.")
        q.advice.append(ADVICE_FILMING)
    elif view == "unknown" and found:
        q.reasons.append("The dog's body and hind legs were not seen clearly enough to tell the camera view.")
        q.advice.append(ADVICE_FILMING)
    legs_hidden = found and hind_seen < 0.5
    if legs_hidden:
        q.reasons.append(
            f"The hind legs were hidden or unclear in {100 * (1 - hind_seen):.0f}% of the frames with the dog "
            "(long grass, fur, the lead or people in front of them)."
        )
        q.advice.append(ADVICE_LEGS)
    if strides < MIN_HIND_STRIDES:
        counted = (
            "No complete hind stride"
            if strides == 0
            else f"Only {strides} complete hind stride{'s' if strides != 1 else ''}"
        ) + f" could be measured (at least {MIN_HIND_STRIDES} are needed, {GOOD_HIND_STRIDES} or more recommended)"
        if found and not legs_hidden and size is not None and size >= MIN_DOG_WIDTH_SHARE:
            q.reasons.append(
                counted + ": the dog was not walking steadily past the camera (sniffing, playing, standing or "
                "turning), or its legs could not be followed."
            )
            q.advice.append(ADVICE_WALK)
        else:
            q.reasons.append(counted + ".")
        if camera_motion == "shaky" and found:
            q.reasons.append("The camera moved a lot, which hides the leg movements.")
            q.advice.append(ADVICE_STEADY)
        q.advice.append(ADVICE_FILMING)
    elif strides < GOOD_HIND_STRIDES:
        q.notes.append(f"{strides} hind strides measured; {GOOD_HIND_STRIDES} or more give tighter intervals.")
    if direction in ("left_to_right", "right_to_left"):
        q.notes.append(
            "The dog walked one way only: the far hind leg is seen less well, so a weaker side is named only "
            "when the difference is clear. Film it walking both ways."
        )
    if camera_motion == "shaky":
        q.notes.append("The camera shakes: tremor results are unreliable. Rest the phone on something steady.")
    if view == "oblique":
        q.notes.append("The camera was at an angle to the dog; side-on views measure symmetry best.")
    if fps < ORTHOSTATIC_MIN_FPS:
        q.notes.append(ADVICE_TREMOR)
    q.usable = not q.reasons
    q.advice = list(dict.fromkeys(q.advice))
    return q
