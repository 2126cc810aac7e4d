"""Bunny hopping: coupling of the two hind legs (hind-limb phase).

phi = ((t_strike,RH - t_strike,LH) / T_stride,LH) mod 1 per left-hind stride;
0.5 is strict alternation, 0 or 1 both hind legs together (Bellardita & Kiehn
2015; Maes et al. 2008). Only walk and trot strides are judged: dogs bound and
gallop legitimately at speed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from vision.gait.coupling import once_per_stride_share
from vision.gait.events import GaitEvents, classify_gait, phase_within
from vision.gait.stats import circular_ci95, circular_mean_phase, empty, estimate

IN_PHASE_TOLERANCE = 0.15
FLAG_SHARE = 0.5
#: Below this share of its motion at the stride frequency, the pelvis dips twice per stride.
ALTERNATING_PELVIS_SHARE = 0.5
#: Walk/trot strides needed to call bunny hopping: a pattern, not a few strides that a far leg
#: tracked on the near one can imitate (the filming advice asks for 6 or more).
FLAG_MIN_STRIDES = 6
#: Why the coupling is not judged when the hind-paw labels do not follow the legs.
LABELS_NOTE = (
    "The two hind legs could not be told apart in this clip (the tracker named the hind paws by place, front and "
    "back, not by leg), so whether they move together is not judged."
)


def phase_distance_from_alternation(phase: np.ndarray) -> np.ndarray:
    """Circular distance of phases from 0.5, in cycles: 0 alternating, 0.5 together."""
    p = np.asarray(phase, dtype=np.float64) % 1.0
    return np.abs(p - 0.5)


def bunny_hop_metrics(
    events: GaitEvents, tracks: xr.Dataset | None = None, labels_follow_legs: bool | None = None
) -> dict[str, Any]:
    """Hind phase, its concentration, the share of in-phase strides and the flag.

    Returns ``hind_phase`` (circular mean over all strides, cycles), ``hind_phase_ci95``,
    ``phase_concentration`` (mean resultant length R, 0..1), ``in_phase_share``
    (walk/trot strides with phase within 0.15 of 0 or 1), ``gait_type``,
    ``pelvis_once_per_stride`` (:func:`~vision.gait.coupling.once_per_stride_share`, when
    ``tracks`` are given), ``legs_told_apart`` and ``flag``. The flag is None (and ``note`` says
    why) with fewer than :data:`FLAG_MIN_STRIDES` walk/trot strides, or when the paws read
    "together" while the pelvis dips twice per stride: then the far hind leg was most likely not
    told apart from the near one.

    ``labels_follow_legs`` is the verdict of :func:`~vision.gait.identity.check_hind_labels`. When it
    is False the phase compares the front paw with the back one, not one leg with the other: the
    phase, its interval, the in-phase share and the flag are None, ``legs_told_apart`` is False and
    ``note`` says why. The gait types are still classified with that phase, which errs towards
    calling a gallop, and a gallop is refused rather than scored: a galloping dog's hind paws also
    seldom change order (the leading leg stays ahead), so the label check cannot tell it apart.
    """
    block = _with_phase(events, tracks)
    if labels_follow_legs is False:
        block.update(
            hind_phase=None,
            hind_phase_ci95=None,
            phase_concentration=None,
            in_phase_share=None,
            n_judged_strides=0,
            phase_deviation=empty("cycles").to_dict(),
            legs_told_apart=False,
            note=LABELS_NOTE,
            flag=None,
        )
        for key in ("per_stride_phase", "pelvis_once_per_stride"):
            block.pop(key, None)
    return block


def _with_phase(events: GaitEvents, tracks: xr.Dataset | None) -> dict[str, Any]:
    """The block from the labelled hind strikes as they are (see :func:`bunny_hop_metrics`)."""
    lh = events.strikes.get("left_hind", np.array([]))
    rh = events.strikes.get("right_hind", np.array([]))
    phases = phase_within(lh, rh) if lh.size > 1 and rh.size else np.array([])
    front = (
        phase_within(events.strikes["left_front"], events.strikes["right_front"])
        if events.strikes.get("left_front", np.array([])).size > 1
        and events.strikes.get("right_front", np.array([])).size
        else None
    )
    duty = {s.strike: s.duty_factor for s in events.strides.get("left_hind", [])}
    gaits: list[str] = []
    judged: list[float] = []
    for k in range(len(phases)):
        d = duty.get(float(lh[k]))
        if d is None or not np.isfinite(phases[k]):
            gaits.append("unknown")
            continue
        fp = _front_phase_at(events, float(lh[k]), front)
        g = classify_gait(d, float(phases[k]), fp)
        gaits.append(g)
        if g in ("walk", "trot"):
            judged.append(float(phases[k]))
    judged_arr = np.asarray(judged)
    all_phases = phases[np.isfinite(phases)] if len(phases) else np.array([])
    mean, r = circular_mean_phase(all_phases)
    known = [g for g in gaits if g != "unknown"]
    gait_type = most_common_gait(known)
    if judged_arr.size < 3 or mean is None:
        return {
            "hind_phase": None if mean is None else round(mean, 4),
            "hind_phase_ci95": None,
            "phase_concentration": round(r, 4),
            "in_phase_share": None,
            "n_judged_strides": int(judged_arr.size),
            "gait_type": gait_type,
            "gait_per_stride": gaits,
            "phase_deviation": empty("cycles").to_dict(),
            "flag": None,
        }
    in_phase = np.minimum(judged_arr % 1.0, 1 - judged_arr % 1.0) < IN_PHASE_TOLERANCE
    share = float(in_phase.mean())
    ci = circular_ci95(all_phases)
    pelvis = once_per_stride_share(tracks, events) if tracks is not None else None
    apart = not (share >= FLAG_SHARE and pelvis is not None and pelvis < ALTERNATING_PELVIS_SHARE)
    note = None
    enough = judged_arr.size >= FLAG_MIN_STRIDES
    if not enough:
        note = (
            f"Only {judged_arr.size} walking strides could be judged; bunny hopping is judged on "
            f"{FLAG_MIN_STRIDES} or more."
        )
    elif not apart:
        note = (
            "The hind paws read as moving together, but the pelvis dips twice per stride as in an "
            "alternating gait: the far hind leg was most likely hidden behind the near one. Bunny "
            "hopping is not judged in this clip; a clip filmed from behind shows it best."
        )
    return {
        "hind_phase": round(mean, 4),
        "hind_phase_ci95": [round(ci[0], 4), round(ci[1], 4)] if ci else None,
        "phase_concentration": round(r, 4),
        "in_phase_share": round(share, 4),
        "n_judged_strides": int(judged_arr.size),
        "gait_type": gait_type,
        "gait_per_stride": gaits,
        "per_stride_phase": [round(float(p), 4) for p in all_phases],
        "phase_deviation": estimate(phase_distance_from_alternation(judged_arr), "cycles").to_dict(),
        "pelvis_once_per_stride": None if pelvis is None else round(pelvis, 3),
        "legs_told_apart": apart,
        "note": note,
        "flag": bool(share >= FLAG_SHARE) if apart and enough else None,
    }


#: Order in which tied gait types are preferred: the one that refuses a clip first.
GAIT_TIE_ORDER = ("gallop", "trot", "walk")


def most_common_gait(gaits: list[str]) -> str | None:
    """The most frequent gait type; a tie goes to the earlier one in :data:`GAIT_TIE_ORDER` (None when empty)."""
    if not gaits:
        return None
    rank = {g: i for i, g in enumerate(GAIT_TIE_ORDER)}
    return max(sorted(set(gaits)), key=lambda g: (gaits.count(g), -rank.get(g, len(rank))))


def _front_phase_at(events: GaitEvents, t: float, front: np.ndarray | None) -> float | None:
    if front is None or front.size == 0:
        return None
    lf = events.strikes["left_front"]
    k = int(np.searchsorted(lf, t)) - 1
    k = min(max(k, 0), front.size - 1)
    v = front[k]
    return float(v) if np.isfinite(v) else None
