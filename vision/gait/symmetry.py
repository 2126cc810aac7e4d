"""Hind-limb symmetry: per-stride symmetry indices and pelvic MinDiff/MaxDiff.

Sign convention throughout: a positive *weakness* value means the right hind is
the weaker (it bears weight for less time, travels less, or the pelvis drops less
while it is loaded); negative means the left hind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from scipy.stats import t as _t

from vision.gait.events import GaitEvents, Stride, near_side
from vision.gait.stats import MIN_STRIDES, Estimate, empty, estimate, evidence_strength, symmetry_index
from vision.tracks import keypoint_xy

#: Viewing bias of the far hind leg per track source (``source_software`` of the tracks):
#: ``(bias, sd)`` in points of signed weakness. With Hindsight's own model on dogs with no one-sided
#: hind finding filmed side-on, the far leg's weakness (mean of the stance-time and excursion
#: symmetry indices) read 8 points weaker than the near leg's (median per clip over 5 owner clips,
#: SD 12 between dogs), mostly from a smaller excursion (docs/trials.md, "near/far bias"). Tracks
#: from other sources are not corrected.
NEAR_FAR_BIAS: dict[str, tuple[float, float]] = {"hindsight-onnx": (8.0, 12.0)}
#: Stride pairs whose weakness lies further than this many robust SDs from the median are dropped.
OUTLIER_MAD = 3.5
#: ... and further than this many points (a stride pair off by less is noise, not an outlier).
OUTLIER_FLOOR_PCT = 15.0
#: Stride pairs needed from each side before the two passes are combined.
MIN_PASS_PAIRS = 2


@dataclass(frozen=True)
class StridePair:
    """A left-hind stride and the right-hind stride that starts within it."""

    left: Stride
    right: Stride


def pair_strides(events: GaitEvents) -> list[StridePair]:
    """Pair each left-hind stride with the right-hind stride whose strike falls inside it."""
    pairs: list[StridePair] = []
    rights = events.strides.get("right_hind", [])
    for ls in events.strides.get("left_hind", []):
        inside = [r for r in rights if ls.strike <= r.strike < ls.next_strike]
        if inside:
            pairs.append(StridePair(ls, inside[0]))
    return pairs


def pelvis_height(y: np.ndarray, t: np.ndarray, period_s: float, L: float) -> np.ndarray:
    """Pelvis height (up positive, body lengths) minus its one-stride moving mean.

    A moving mean over exactly one stride is flat for a periodic signal, so this
    removes camera tilt and slopes without favouring either hind stance.
    """
    h = -np.asarray(y, dtype=np.float64) / L
    ok = np.isfinite(h)
    if ok.sum() < 3 or period_s <= 0:
        return np.full(h.shape, np.nan)
    filled = np.interp(t, t[ok], h[ok])
    dt = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    w = max(1, int(round(period_s / dt)))
    kernel = np.ones(w) / w
    trend = np.convolve(np.pad(filled, (w // 2, w - 1 - w // 2), mode="edge"), kernel, mode="valid")
    return np.where(ok, h - trend, np.nan)


def pelvic_differences(
    ds: xr.Dataset, events: GaitEvents, pairs: list[StridePair], individual: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-stride pelvic MinDiff and MaxDiff (percent of body length, tail base as pelvis).

    MinDiff = min height in right-hind stance - min height in left-hind stance;
    MaxDiff = max height after left-hind mid-stance - max after right-hind mid-stance
    (Rhodin et al. 2017). Positive values point to the right hind.
    """
    t = events.time
    y = keypoint_xy(ds, "tail_base", individual)[:, 1]
    L = events.body_length_px
    mins, maxs = [], []
    period = events.stride_period_s or float(np.median([p.left.duration for p in pairs]))
    height = pelvis_height(y, t, period, L)

    def window(a: float, b: float) -> np.ndarray:
        w = height[(t >= a) & (t <= b)]
        return w[np.isfinite(w)]

    for p in pairs:
        lmin = window(p.left.strike, p.left.lift_off)
        rmin = window(p.right.strike, p.right.lift_off)
        mid_l = 0.5 * (p.left.strike + p.left.lift_off)
        mid_r = 0.5 * (p.right.strike + p.right.lift_off)
        after_l = window(mid_l, mid_r)
        after_r = window(mid_r, mid_l + p.left.duration)
        mins.append(100 * (rmin.min() - lmin.min()) if lmin.size and rmin.size else np.nan)
        maxs.append(100 * (after_l.max() - after_r.max()) if after_l.size and after_r.size else np.nan)
    return np.asarray(mins), np.asarray(maxs)


def pair_near_sides(events: GaitEvents, pairs: list[StridePair]) -> list[str | None]:
    """The side nearer the camera during each stride pair (see :func:`~vision.gait.events.near_side`)."""
    out: list[str | None] = []
    for p in pairs:
        sel = (events.time >= p.left.strike) & (events.time <= p.left.next_strike)
        d = events.direction[sel]
        out.append(near_side(float(np.sign(np.sum(d)))) if d.size else None)
    return out


def inlier_mask(values: np.ndarray, k: float = OUTLIER_MAD, floor: float = OUTLIER_FLOOR_PCT) -> np.ndarray:
    """Finite values within ``k`` robust standard deviations (1.4826 MAD) of the median.

    A value is dropped only when it is also more than ``floor`` (same unit) from the median, so
    that a very regular clip does not lose strides over small differences. With fewer than
    :data:`~vision.gait.stats.MIN_STRIDES` finite values every finite value is kept.
    """
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    if ok.sum() < MIN_STRIDES:
        return ok
    med = float(np.median(v[ok]))
    mad = 1.4826 * float(np.median(np.abs(v[ok] - med)))
    return ok & (np.abs(v - med) <= max(k * mad, floor))


def corrected_weakness(weakness: np.ndarray, near: list[str | None], bias: float) -> np.ndarray:
    """Per-pair signed weakness with the far leg's viewing bias removed.

    Seen side-on, the far hind leg is tracked less well, and its stance and excursion come out
    smaller: on sound dogs its figures read ``bias`` points weaker than the near leg's. With the
    dog's left nearer (walking to the left of the image) the far leg is the right, so ``bias`` is
    subtracted from the signed weakness (+ = right weaker); with the right nearer it is added.
    Pairs of unknown direction are left as they are.
    """
    sign = np.array([1.0 if n == "left" else -1.0 if n == "right" else 0.0 for n in near])
    return np.asarray(weakness, dtype=np.float64) - bias * sign


def combine_passes(weakness: np.ndarray, near: list[str | None], bias_sd: float = 0.0) -> tuple[Estimate, str]:
    """The signed weakness of the clip and which passes it rests on.

    With strides seen from both sides (at least :data:`MIN_PASS_PAIRS` pairs each), the
    estimate is the mean of the two passes' means, so any viewing bias left after correction
    cancels; its interval combines both passes' standard errors. With one side only, the
    interval is widened by ``bias_sd``, the spread of the near/far bias between dogs
    (:data:`NEAR_FAR_BIAS`), since that bias cannot be told apart from a real difference.

    Returns
    -------
    (estimate, passes)
        ``passes`` is ``"both"``, ``"left_near"``, ``"right_near"`` or ``"unknown"``.
    """
    w = np.asarray(weakness, dtype=np.float64)
    by_side = {side: w[[n == side for n in near]] for side in ("left", "right")}
    by_side = {k: v[np.isfinite(v)] for k, v in by_side.items()}
    base = estimate(w, "%")
    if base.value is None:
        return base, "unknown"
    if all(v.size >= MIN_PASS_PAIRS for v in by_side.values()):
        means = [float(v.mean()) for v in by_side.values()]
        se2 = sum(float(v.var(ddof=1)) / v.size for v in by_side.values())
        value = 0.5 * (means[0] + means[1])
        half = float(_t.ppf(0.975, max(base.n - 2, 1))) * 0.5 * np.sqrt(se2)
        return (
            Estimate(
                value,
                (value - half, value + half),
                base.sd,
                base.n,
                evidence_strength(value, base.sd or 0.0, base.n),
                "%",
                base.per_stride,
            ),
            "both",
        )
    seen = [k for k, v in by_side.items() if v.size]
    passes = f"{seen[0]}_near" if len(seen) == 1 else "unknown"
    assert base.ci95 is not None
    half = 0.5 * (base.ci95[1] - base.ci95[0])
    half = float(np.hypot(half, 1.96 * bias_sd))
    v = float(base.value)
    return Estimate(v, (v - half, v + half), base.sd, base.n, base.evidence, "%", base.per_stride), passes


def symmetry_metrics(
    ds: xr.Dataset, events: GaitEvents, individual: int = 0, near_far_bias: tuple[float, float] | None = None
) -> dict[str, Any]:
    """Symmetry block of the report.

    Returns a dict with per-variable SI estimates (``stance_time_si``,
    ``excursion_si``, ``paw_lift_si``, ``hock_rom_si``; SI > 0 means the right value
    is larger), pelvic ``min_diff_pct_bl`` / ``max_diff_pct_bl``, the combined
    signed ``weakness_pct`` (positive = right weaker; corrected for the far leg's viewing
    bias and combined over both walking directions, see :func:`combine_passes`), the
    summary ``hind_asymmetry_pct`` (>= 0, None when its interval includes zero: within
    measurement noise) and ``weaker_side``, and ``near_far`` (which passes were seen, the
    correction applied, the stride pairs kept, and a plain note).

    ``near_far_bias`` is ``(bias, sd)`` of the track source (:data:`NEAR_FAR_BIAS`); None looks it
    up from ``ds.attrs["source_software"]`` (no correction for unknown sources).
    """
    if near_far_bias is None:
        near_far_bias = NEAR_FAR_BIAS.get(str(ds.attrs.get("source_software", "")), (0.0, 0.0))
    bias, bias_sd = near_far_bias
    pairs = pair_strides(events)
    if not pairs:
        return {
            "hind_asymmetry_pct": None,
            "weaker_side": None,
            "n_stride_pairs": 0,
            "weakness_pct": empty("%").to_dict(),
            "near_far": {"passes": "unknown", "note": "No pair of left and right hind strides was measured."},
        }
    left = {
        "stance": np.array([p.left.stance for p in pairs]),
        "excursion": np.array([p.left.excursion_bl for p in pairs]),
        "lift": np.array([p.left.paw_lift_bl for p in pairs]),
        "rom": np.array([p.left.hock_rom_deg for p in pairs]),
    }
    right = {
        "stance": np.array([p.right.stance for p in pairs]),
        "excursion": np.array([p.right.excursion_bl for p in pairs]),
        "lift": np.array([p.right.paw_lift_bl for p in pairs]),
        "rom": np.array([p.right.hock_rom_deg for p in pairs]),
    }
    si = {k: symmetry_index(right[k], left[k]) for k in left}
    near = pair_near_sides(events, pairs)
    raw = -0.5 * (si["stance"] + si["excursion"])
    corrected = corrected_weakness(raw, near, bias)
    keep = inlier_mask(corrected)
    kept_near = [n for n, k in zip(near, keep, strict=True) if k]
    w, passes = combine_passes(corrected[keep], kept_near, bias_sd)
    min_diff, max_diff = pelvic_differences(ds, events, pairs, individual)
    side = weaker_side(w)
    within_noise = w.ci95 is not None and w.ci95[0] <= 0 <= w.ci95[1]
    return {
        "hind_asymmetry_pct": None if w.value is None or within_noise else round(abs(w.value), 3),
        "within_noise": bool(within_noise) if w.value is not None else None,
        "weaker_side": side,
        "weakness_pct": w.to_dict(),
        "stance_time_si": estimate(si["stance"][keep], "%").to_dict(),
        "excursion_si": estimate(si["excursion"][keep], "%").to_dict(),
        "paw_lift_si": estimate(si["lift"][keep], "%").to_dict(),
        "hock_rom_si": estimate(si["rom"][keep], "%").to_dict(),
        "pelvis_min_diff_pct_bl": estimate(min_diff, "% body length").to_dict(),
        "pelvis_max_diff_pct_bl": estimate(max_diff, "% body length").to_dict(),
        "n_stride_pairs": len(pairs),
        "n_stride_pairs_kept": int(keep.sum()),
        "near_far": near_far_summary(passes, near, keep, bias, bias_sd),
        "stride_times": {
            "left": [round(p.left.strike, 4) for p in pairs],
            "right": [round(p.right.strike, 4) for p in pairs],
        },
    }


def near_far_summary(
    passes: str, near: list[str | None], keep: np.ndarray, bias: float, bias_sd: float
) -> dict[str, Any]:
    """What the clip showed of each side, the correction applied, and what it means for naming a side."""
    kept = [n for n, k in zip(near, keep, strict=True) if k]
    counts = {side: kept.count(side) for side in ("left", "right")}
    if passes == "both":
        note = "Both sides were seen (the dog walked both ways), so each hind leg was once the near one."
    elif passes in ("left_near", "right_near"):
        shown = passes.split("_")[0]
        note = (
            f"The dog was filmed walking one way only, showing its {shown} side. The far hind leg is seen less "
            "well than the near one; Hindsight corrects for the usual difference, but names a weaker side only "
            "when the difference is larger than that correction's uncertainty. Film the dog walking both ways."
        )
    else:
        note = "The walking direction could not be told, so the near/far correction was not applied."
    return {
        "passes": passes,
        "pairs_by_near_side": counts,
        "bias_correction_pct": bias,
        "bias_sd_pct": bias_sd,
        "note": note,
    }


#: Why no side is named when the hind-paw labels do not follow the legs.
LABELS_REASON = (
    "The two hind legs could not be told apart in this clip (the tracker named the hind paws by place, front and "
    "back, not by leg), so Hindsight cannot say whether one of them is weaker."
)


#: The symmetry block's estimates that compare one labelled hind leg with the other.
PAIRED_ESTIMATES = (
    "weakness_pct",
    "stance_time_si",
    "excursion_si",
    "paw_lift_si",
    "hock_rom_si",
    "pelvis_min_diff_pct_bl",
    "pelvis_max_diff_pct_bl",
)


def without_sides(block: dict[str, Any], reason: str = LABELS_REASON) -> dict[str, Any]:
    """A copy of a symmetry block with every figure that needs the legs told apart taken out.

    For tracks whose hind-paw labels do not follow the legs
    (:func:`~vision.gait.identity.check_hind_labels`): the headline asymmetry, its ``within_noise``
    verdict and the weaker side become None, each of :data:`PAIRED_ESTIMATES` an empty estimate (it
    compared the front paw with the back one), the per-label strike times go, ``legs_told_apart`` is
    False and ``reason`` says why. Every reader then shows "not measured" without a check of its own.
    """
    out = {key: value for key, value in block.items() if key != "stride_times"}
    for key in PAIRED_ESTIMATES:
        if key in out:
            out[key] = empty(str((out[key] or {}).get("unit", ""))).to_dict()
    out.update(hind_asymmetry_pct=None, within_noise=None, weaker_side=None, legs_told_apart=False, reason=reason)
    return out


def weaker_side(weakness: Estimate) -> str | None:
    """``left`` or ``right`` when the 95 % interval of the signed weakness excludes zero, else None."""
    if weakness.ci95 is None:
        return None
    lo, hi = weakness.ci95
    if lo > 0:
        return "right"
    if hi < 0:
        return "left"
    return None
