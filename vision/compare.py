"""Compare two analyses of the same dog: what changed beyond stride-to-stride noise.

Each metric's change is resampled from the two clips' own per-stride values with
a moving-block bootstrap (neighbouring strides share events and a stretch of
ground, so they are resampled in runs of about n^(1/3) strides); its interval
reflects how much that dog's strides vary within each clip. A change is called
``worse`` or ``better`` only when its 99 % interval excludes zero (99 %, not
95 %, because several metrics are compared at once) and it exceeds a noise floor:
half the pooled stride-to-stride SD, and never less than the metric's smallest
change that matters (``min_change``: 3 SI points, 0.08 of a cycle of hind phase,
10 CV points, since normal dogs already vary by 20-28 % CV). ``unchanged`` when
the 95 % interval lies inside the floor; ``uncertain`` otherwise or when a clip
could not be scored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

N_BOOT = 4000
MIN_STRIDES = 3


@dataclass(frozen=True)
class MetricSpec:
    """How to compare one metric: where its per-stride values are and which way is worse."""

    name: str
    path: tuple[str, ...]
    statistic: str  # "mean", "abs_mean" or "cv"
    worse_when: str  # "higher" or "lower" or "none"
    label: str
    min_change: float  # smallest change that matters, in the metric's unit (measurement resolution)
    relative: bool = False  # min_change is a fraction of the before value


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("hind_asymmetry_pct", ("symmetry", "weakness_pct"), "abs_mean", "higher", "Hind-leg asymmetry (%)", 3.0),
    MetricSpec(
        "stance_time_si", ("symmetry", "stance_time_si"), "abs_mean", "higher", "Stance-time asymmetry (%)", 3.0
    ),
    MetricSpec(
        "pelvis_min_diff_pct_bl",
        ("symmetry", "pelvis_min_diff_pct_bl"),
        "abs_mean",
        "higher",
        "Pelvic drop difference (% body length)",
        0.3,
    ),
    MetricSpec(
        "hind_phase_deviation",
        ("bunny_hop", "phase_deviation"),
        "mean",
        "higher",
        "Hind legs moving together (0 alternate, 0.5 together)",
        0.08,
    ),
    MetricSpec(
        "stride_time_cv_pct",
        ("wobble", "ataxia", "stride_time_cv_pct"),
        "cv",
        "higher",
        "Stride-time variability (CV %)",
        10.0,
    ),
    MetricSpec(
        "stride_length_cv_pct",
        ("wobble", "ataxia", "stride_length_cv_pct"),
        "cv",
        "higher",
        "Stride-length variability (CV %)",
        10.0,
    ),
    MetricSpec("speed_bl_per_s", ("gait", "speed_bl_per_s"), "mean", "none", "Walking speed (body lengths/s)", 0.1),
    MetricSpec(
        "thigh_asymmetry_pct", ("muscle", "thigh_weakness_pct"), "abs_mean", "higher", "Thigh asymmetry (%)", 3.0
    ),
    MetricSpec("thigh_width_index", ("muscle", "thigh_width_index"), "mean", "lower", "Thigh muscle index", 0.07, True),
    MetricSpec("hind_fore_ratio", ("muscle", "hind_fore_ratio"), "mean", "lower", "Hind/fore limb ratio", 0.15, True),
)


def _stat(kind: str) -> Callable[[np.ndarray], np.ndarray]:
    if kind == "mean":
        return lambda a: a.mean(axis=-1)
    if kind == "abs_mean":
        return lambda a: np.abs(a.mean(axis=-1))
    if kind == "cv":
        return lambda a: 100 * a.std(axis=-1, ddof=1) / a.mean(axis=-1)
    raise ValueError(kind)


def _values(report: dict[str, Any], path: tuple[str, ...]) -> np.ndarray:
    node: Any = report.get("metrics", {})
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            return np.array([])
    vals = node.get("per_stride", []) if isinstance(node, dict) else []
    arr = np.asarray([v for v in vals if v is not None], dtype=np.float64)
    return arr[np.isfinite(arr)]


def block_resample(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Moving-block bootstrap samples of a per-stride series.

    Parameters
    ----------
    values : ndarray, shape (n,)
        Per-stride values in recording order.
    n_boot : int
        Number of resamples.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, shape (n_boot, n)
        Each row is made of runs of ``ceil(n ** (1/3))`` consecutive strides with random
        starts, so that the run-to-run correlation of neighbouring strides is kept.
    """
    n = values.size
    block = max(1, int(np.ceil(n ** (1 / 3))))
    n_blocks = int(np.ceil(n / block))
    starts = rng.integers(0, n - block + 1, (n_boot, n_blocks))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(n_boot, -1)[:, :n]
    return values[idx]


def compare_metric(before: np.ndarray, after: np.ndarray, spec: MetricSpec, seed: int = 0) -> dict[str, Any]:
    """Change of one metric with its bootstrap interval and status."""
    out: dict[str, Any] = {"label": spec.label, "before": None, "after": None, "change": None, "ci95": None}
    if before.size < MIN_STRIDES or after.size < MIN_STRIDES:
        return {**out, "status": "uncertain", "reason": "too few strides in one of the clips"}
    stat = _stat(spec.statistic)
    b, a = float(stat(before)), float(stat(after))
    rng = np.random.default_rng(seed)
    bb = stat(block_resample(before, N_BOOT, rng))
    ab = stat(block_resample(after, N_BOOT, rng))
    diff = ab - bb
    lo95, hi95 = np.percentile(diff, [2.5, 97.5])
    lo99, hi99 = np.percentile(diff, [0.5, 99.5])
    change = a - b
    if spec.statistic == "cv":
        noise = float(np.sqrt(0.5 * (np.var(bb) + np.var(ab))))  # bootstrap SE of one clip's CV
    else:
        noise = 0.5 * float(np.sqrt(0.5 * (before.var(ddof=1) + after.var(ddof=1))))
    floor = max(noise, spec.min_change * (abs(b) if spec.relative else 1.0))
    if (lo99 > 0 or hi99 < 0) and abs(change) >= floor:
        if spec.worse_when == "none":
            status = "changed"
        else:
            up = change > 0
            status = "worse" if up == (spec.worse_when == "higher") else "better"
    elif -floor <= lo95 and hi95 <= floor:
        status = "unchanged"
    else:
        status = "uncertain"
    return {
        **out,
        "before": round(b, 4),
        "after": round(a, 4),
        "change": round(change, 4),
        "ci95": [round(float(lo95), 4), round(float(hi95), 4)],
        "noise_floor": round(floor, 4),
        "status": status,
    }


def _tremor_change(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    fb = before.get("metrics", {}).get("wobble", {}).get("tremor", {}).get("flag")
    fa = after.get("metrics", {}).get("wobble", {}).get("tremor", {}).get("flag")
    hb = before.get("metrics", {}).get("wobble", {}).get("tremor_hz")
    ha = after.get("metrics", {}).get("wobble", {}).get("tremor_hz")
    if fb is None or fa is None:
        status = "uncertain"
    elif fa and not fb:
        status = "worse"
    elif fb and not fa:
        status = "better"
    else:
        status = "unchanged"
    return {"label": "Hind-limb tremor (Hz)", "before": hb, "after": ha, "change": None, "ci95": None, "status": status}


def _uncertain(label: str, reason: str) -> dict[str, Any]:
    """A metric that cannot be compared, and why."""
    return {
        "label": label,
        "before": None,
        "after": None,
        "change": None,
        "ci95": None,
        "status": "uncertain",
        "reason": reason,
    }


def _muscle_usable(report: dict[str, Any]) -> bool:
    """Muscle indices have their own gate: a rear view cannot be scored for gait but can for muscle."""
    block = report.get("metrics", {}).get("muscle", {})
    return bool(block.get("available")) and not block.get("repeatability", {}).get("too_noisy", True)


def compare_reports(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Per-metric ``before``, ``after``, ``change``, ``ci95`` and ``status``; ``flag`` if any is worse."""
    usable_b = bool(before.get("quality", {}).get("usable"))
    usable_a = bool(after.get("quality", {}).get("usable"))
    metrics: dict[str, Any] = {}
    view_b = before.get("metrics", {}).get("muscle", {}).get("view")
    view_a = after.get("metrics", {}).get("muscle", {}).get("view")
    for spec in METRICS:
        if spec.path[0] == "muscle" and view_b != view_a:
            metrics[spec.name] = _uncertain(spec.label, "the clips were filmed from different views")
            continue
        muscle_ok = spec.path[0] == "muscle" and _muscle_usable(before) and _muscle_usable(after)
        if not (usable_b and usable_a) and not muscle_ok:
            metrics[spec.name] = _uncertain(spec.label, "one of the clips could not be scored")
            continue
        metrics[spec.name] = compare_metric(_values(before, spec.path), _values(after, spec.path), spec)
    metrics["tremor"] = (
        _tremor_change(before, after)
        if usable_a and usable_b
        else {
            "label": "Hind-limb tremor (Hz)",
            "before": None,
            "after": None,
            "change": None,
            "ci95": None,
            "status": "uncertain",
        }
    )
    side_b = before.get("metrics", {}).get("symmetry", {}).get("weaker_side")
    side_a = after.get("metrics", {}).get("symmetry", {}).get("weaker_side")
    worse = [k for k, v in metrics.items() if v["status"] == "worse"]
    speed = metrics.get("speed_bl_per_s", {})
    notes = []
    if speed.get("status") == "changed":
        notes.append("Walking speed differs between the clips; speed changes gait measures, so compare with care.")
    if side_b and side_a and side_b != side_a:
        notes.append(f"The weaker side changed from {side_b} to {side_a}.")
    model_b, model_a = ((r.get("source") or {}).get("model_version") for r in (before, after))
    if model_b and model_a and model_b != model_a:
        notes.append(
            f"The clips were tracked by different versions of the keypoint model ({model_b}, then {model_a}): "
            "part of any change may come from the model."
        )
    return {
        "flag": bool(worse),
        "worse": worse,
        "weaker_side": {"before": side_b, "after": side_a},
        "model_version": {"before": model_b, "after": model_a},
        "metrics": metrics,
        "notes": notes,
        "before_usable": usable_b,
        "after_usable": usable_a,
    }
