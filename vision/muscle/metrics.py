"""Clip-level muscle block: phase-matched thigh indices, asymmetry, posture signs and repeatability."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import xarray as xr

from vision.anatomy import CANONICAL_KEYPOINTS
from vision.gait.events import GaitEvents, near_side
from vision.gait.stats import estimate
from vision.muscle.indices import lateral_widths, rear_widths
from vision.muscle.silhouette import segment_dog
from vision.tracks import keypoint_xy

MAX_FRAMES = 48
_TAIL = CANONICAL_KEYPOINTS.index("tail_base")
_LS = CANONICAL_KEYPOINTS.index("left_stifle")
_RS = CANONICAL_KEYPOINTS.index("right_stifle")
NOISY_CV_PCT = 15.0


def _keypoints_at(tracks: xr.Dataset, i: int) -> np.ndarray:
    pos = tracks["position"].isel(individual=0).values[i]  # (space, keypoint)
    conf = tracks["confidence"].isel(individual=0).values[i]
    return np.concatenate([pos.T, np.nan_to_num(conf, nan=0.0)[:, None]], axis=1)


def lateral_targets(tracks: xr.Dataset, events: GaitEvents) -> list[tuple[float, str]]:
    """(time, near side) at mid-stance of each stride of the hind leg nearer the camera."""
    out = []
    for limb in ("left_hind", "right_hind"):
        side = limb.split("_")[0]
        for s in events.strides.get(limb, []):
            t = 0.5 * (s.strike + s.lift_off)
            i = int(np.clip(np.searchsorted(events.time, t), 0, len(events.time) - 1))
            near = near_side(events.direction[i])
            if near == side:
                out.append((t, side))
    return sorted(out)[:MAX_FRAMES]


def rear_targets(tracks: xr.Dataset, step_s: float = 0.2) -> list[tuple[float, str]]:
    """Evenly spaced times where the tail base and both stifles are tracked."""
    t = tracks["time"].values
    ok = np.ones(t.size, bool)
    for name in ("tail_base", "left_stifle", "right_stifle"):
        ok &= np.isfinite(keypoint_xy(tracks, name)).all(axis=1)
    out, last = [], -np.inf
    for ti, good in zip(t, ok, strict=True):
        if good and ti - last >= step_s:
            out.append((float(ti), "both"))
            last = ti
    return out[:MAX_FRAMES]


def _frames_at(frames: Iterable[tuple[float, np.ndarray]], times: list[float]) -> dict[float, np.ndarray]:
    """Pick the decoded frame nearest to each wanted time (one pass, stops after the last)."""
    wanted = sorted(times)
    out: dict[float, np.ndarray] = {}
    prev: tuple[float, np.ndarray] | None = None
    k = 0
    for t, img in frames:
        while k < len(wanted) and t >= wanted[k]:
            if prev is not None and abs(prev[0] - wanted[k]) < abs(t - wanted[k]):
                out[wanted[k]] = prev[1]
            else:
                out[wanted[k]] = img
            k += 1
        if k >= len(wanted):
            break
        prev = (t, img)
    return out


def _signed_weakness(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """+ = right thinner (weaker), per pair: -SI of right vs left."""
    mean = 0.5 * (left + right)
    return -100.0 * (right - left) / mean


def muscle_from_frames(
    tracks: xr.Dataset,
    events: GaitEvents | None,
    view: str,
    frames: Iterable[tuple[float, np.ndarray]],
) -> dict[str, Any]:
    """Measure the muscle indices on the frames of a clip.

    Parameters
    ----------
    tracks
        Cleaned tracks on the clip's time axis (pixels of the frames given).
    frames
        ``(time_s, rgb_image)`` pairs in time order (e.g. from :func:`vision.video.iter_frames`).
    """
    if view == "lateral" and events is not None:
        targets = lateral_targets(tracks, events)
    elif view == "rear":
        targets = rear_targets(tracks)
    else:
        return {"available": False, "view": view, "reason": "needs a side-on or rear view"}
    if not targets:
        return {"available": False, "view": view, "reason": "no frames at matching stride phases"}
    t_axis = tracks["time"].values
    picked = _frames_at(frames, [t for t, _ in targets])
    thigh = {"left": [], "right": []}  # type: dict[str, list[float]]
    ratio: list[float] = []
    segments: list[dict[str, Any]] = []
    pairs_l: list[float] = []
    pairs_r: list[float] = []
    used = dropped = 0
    for t, side in targets:
        img = picked.get(t)
        if img is None:
            dropped += 1
            continue
        i = int(np.argmin(np.abs(t_axis - t)))
        kp = _keypoints_at(tracks, i)
        sil = segment_dog(img, kp)
        if sil is None or not sil.ok:
            dropped += 1
            continue
        if view == "lateral":
            w = lateral_widths(sil, kp, side)
            if w is None:
                dropped += 1
                continue
            thigh[side].append(w.thigh_index)
            if w.thigh_segment is not None:
                segments.append({"time": round(float(t), 4), "side": side, "segment": w.thigh_segment})
            if w.hind_fore is not None:
                ratio.append(w.hind_fore)
        else:
            rw = rear_widths(sil, kp)
            if rw is None:
                dropped += 1
                continue
            pairs_l.append(rw[0] / rw[2])
            pairs_r.append(rw[1] / rw[2])
            tb = kp[_TAIL, :2]
            y = float(tb[1] + 0.6 * (0.5 * (kp[_LS, 1] + kp[_RS, 1]) - tb[1]))
            for side_name, sign, width in (("left", -1.0, rw[0]), ("right", 1.0, rw[1])):
                seg = ((float(tb[0]), y), (float(tb[0] + sign * width), y))
                segments.append({"time": round(float(t), 4), "side": side_name, "segment": seg})
        used += 1
    if view == "lateral":
        n = min(len(thigh["left"]), len(thigh["right"]))
        weakness = _signed_weakness(np.asarray(thigh["left"][:n]), np.asarray(thigh["right"][:n]))
        pooled = np.asarray(thigh["left"] + thigh["right"])
    else:
        weakness = _signed_weakness(np.asarray(pairs_l), np.asarray(pairs_r))
        pooled = np.asarray(pairs_l + pairs_r)
        thigh = {"left": pairs_l, "right": pairs_r}
    index = estimate(pooled, "thigh depth / body length" if view == "lateral" else "thigh width / leg length")
    w_est = estimate(weakness, "%")
    side_out = None
    if w_est.ci95 is not None:
        side_out = "right" if w_est.ci95[0] > 0 else "left" if w_est.ci95[1] < 0 else None
    cv = float(100 * pooled.std(ddof=1) / pooled.mean()) if pooled.size >= 3 and pooled.mean() > 0 else None
    return {
        "available": index.value is not None,
        "view": view,
        "frames_used": used,
        "frames_dropped": dropped,
        "thigh_width_index": index.to_dict(),
        "thigh_width_index_by_side": {s: estimate(v).to_dict() for s, v in thigh.items()},
        "thigh_weakness_pct": w_est.to_dict(),
        "thigh_asymmetry_pct": None if w_est.value is None else round(abs(w_est.value), 3),
        "weaker_side": side_out,
        "hind_fore_ratio": estimate(ratio, "").to_dict(),
        "measurements": segments,
        "repeatability": {
            "thigh_cv_pct": None if cv is None else round(cv, 2),
            "smallest_real_change_pct": None if cv is None else round(2.77 * cv / np.sqrt(max(pooled.size, 1)), 2),
            "too_noisy": None if cv is None else bool(cv > NOISY_CV_PCT),
        },
        "note": None
        if view == "rear" or (thigh["left"] and thigh["right"])
        else "Left/right thigh asymmetry side-on needs the dog filmed walking both ways.",
    }


def posture_signs(tracks: xr.Dataset, events: GaitEvents | None) -> dict[str, Any]:
    """Posture signs of hind-end weakness from keypoints (side-on).

    ``hind_paw_placement_bl``: hind paw ahead of the tail base at mid-stance (body
    lengths; larger = paws further under the body); ``stifle_extension_deg`` and
    ``hock_extension_deg``: largest joint angle per stride; ``fore_hind_stance_ratio``:
    front over hind duty factor (above 1 = weight shifted forward).
    """
    if events is None or not events.body_length_px:
        return {}
    from vision.gait.events import _angle_deg

    L = events.body_length_px
    tail = keypoint_xy(tracks, "tail_base")
    placement: list[float] = []
    stifle_ext: list[float] = []
    hock_ext: list[float] = []
    t = events.time
    for limb in ("left_hind", "right_hind"):
        side = limb.split("_")[0]
        paw = keypoint_xy(tracks, f"{side}_hind_paw")
        st, hk = keypoint_xy(tracks, f"{side}_stifle"), keypoint_xy(tracks, f"{side}_hock")
        stifle_angle = _angle_deg(tail, st, hk)
        hock_angle = _angle_deg(st, hk, paw)
        for s in events.strides.get(limb, []):
            i = int(np.clip(np.searchsorted(t, 0.5 * (s.strike + s.lift_off)), 0, t.size - 1))
            placement.append(float(events.direction[i] * (paw[i, 0] - tail[i, 0]) / L))
            sel = (t >= s.strike) & (t <= s.next_strike)
            if np.isfinite(stifle_angle[sel]).any():
                stifle_ext.append(float(np.nanmax(stifle_angle[sel])))
            if np.isfinite(hock_angle[sel]).any():
                hock_ext.append(float(np.nanmax(hock_angle[sel])))
    hind = [s.duty_factor for limb in ("left_hind", "right_hind") for s in events.strides.get(limb, [])]
    fore = [s.duty_factor for limb in ("left_front", "right_front") for s in events.strides.get(limb, [])]
    ratio = float(np.mean(fore) / np.mean(hind)) if hind and fore else None
    return {
        "hind_paw_placement_bl": estimate(placement, "body lengths").to_dict(),
        "stifle_extension_deg": estimate(stifle_ext, "deg").to_dict(),
        "hock_extension_deg": estimate(hock_ext, "deg").to_dict(),
        "fore_hind_stance_ratio": None if ratio is None else round(ratio, 3),
    }


def muscle_metrics(
    video_path: str | os.PathLike[str] | None, tracks: xr.Dataset, events: GaitEvents | None, view: str
) -> dict[str, Any]:
    """The report's ``metrics.muscle`` block (silhouette indices need the video)."""
    if video_path is None:
        block: dict[str, Any] = {"available": False, "view": view, "reason": "the silhouette needs the video"}
    else:
        from vision.video import iter_frames

        block = muscle_from_frames(tracks, events, view, ((f.time_s, f.image) for f in iter_frames(video_path)))
    block["posture"] = posture_signs(tracks, events) if view == "lateral" else {}
    return block
