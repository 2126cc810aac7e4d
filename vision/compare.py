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

Two clips are ``comparable`` only when both were scored and filmed from the same
view; otherwise no metric is marked ``worse``, ``better`` or ``unchanged`` and the
result carries the ``reason``. Asymmetry metrics of two clips filmed one way only,
from opposite sides, are not matched (the far leg is seen less well, so its bias
flips sign between them). :func:`verdict_lines` words the result for people.
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
        "Hind-leg timing: distance from normal alternation (phase 0.5)",
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
    node: Any = _node(report, "metrics")
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            return np.array([])
    vals = node.get("per_stride") if isinstance(node, dict) else None
    numbers = [v for v in vals if isinstance(v, int | float)] if isinstance(vals, list) else []
    arr = np.asarray(numbers, dtype=np.float64)
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


def _node(report: Any, *path: str) -> dict[str, Any]:
    """The block at ``path`` of a report, or an empty dict when any part is missing or not a block."""
    node = report
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def _finite_or_none(value: Any) -> Any:
    return value if isinstance(value, int | float) and np.isfinite(value) else None


def _tremor_change(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    fb = _node(before, "metrics", "wobble", "tremor").get("flag")
    fa = _node(after, "metrics", "wobble", "tremor").get("flag")
    hb = _finite_or_none(_node(before, "metrics", "wobble").get("tremor_hz"))
    ha = _finite_or_none(_node(after, "metrics", "wobble").get("tremor_hz"))
    if not isinstance(fb, bool) or not isinstance(fa, bool):
        status = "uncertain"
    elif fa and not fb:
        status = "worse"
    elif fb and not fa:
        status = "better"
    else:
        status = "unchanged"
    return {"label": TREMOR_LABEL, "before": hb, "after": ha, "change": None, "ci95": None, "status": status}


TREMOR_LABEL = "Hind-limb tremor (Hz)"
#: Metrics whose value depends on which hind leg is the near one (the far leg is seen less well).
SIDE_DEPENDENT = frozenset({"hind_asymmetry_pct", "stance_time_si", "pelvis_min_diff_pct_bl"})
#: Metrics that pair one hind leg with the other: not compared when either clip's hind-paw labels did not
#: follow the legs (``metrics.hind_labels``, :mod:`vision.gait.identity`).
LEG_PAIRED = SIDE_DEPENDENT | {"hind_phase_deviation"}
VIEW_WORDS = {
    "lateral": "from the side",
    "oblique": "at an angle",
    "rear": "from behind",
    "front": "from the front",
    "unknown": "from an unknown angle",
}


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
    block = _node(report, "metrics", "muscle")
    return bool(block.get("available")) and not _node(block, "repeatability").get("too_noisy", True)


def clip_facts(report: dict[str, Any]) -> dict[str, Any]:
    """Whether a report was scored, why not, its camera view and the side of the dog it showed.

    Returns
    -------
    dict
        ``scored`` (bool), ``reason`` (str or None: the quality gate's first reason when not
        scored), ``view`` (``lateral``, ``rear``, ...), ``near_side`` (``left`` or ``right`` when
        the dog walked one way only, else None).
    """
    quality = _node(report, "quality")
    scored = quality.get("usable") is True
    listed = quality.get("reasons")
    reasons = [r for r in listed if isinstance(r, str) and r] if isinstance(listed, list) else []
    reason = None if scored else (str(reasons[0]).rstrip(".") if reasons else "the quality check did not pass")
    passes = _node(report, "metrics", "symmetry", "near_far").get("passes")
    near_side = passes.split("_")[0] if passes in ("left_near", "right_near") else None
    view = quality.get("view") if isinstance(quality.get("view"), str) and quality.get("view") else "unknown"
    return {"scored": scored, "reason": reason, "view": view, "near_side": near_side}


def _why_not_comparable(facts_b: dict[str, Any], facts_a: dict[str, Any]) -> str | None:
    """The reason two clips' gait cannot be compared, or None when it can."""
    unscored = [f"the {which} clip could not be scored" for which, f in (("first", facts_b), ("second", facts_a))]
    if not facts_b["scored"] and not facts_a["scored"]:
        return "neither clip could be scored"
    if not facts_b["scored"]:
        return unscored[0]
    if not facts_a["scored"]:
        return unscored[1]
    if facts_b["view"] != facts_a["view"]:
        words = (VIEW_WORDS.get(facts_b["view"], facts_b["view"]), VIEW_WORDS.get(facts_a["view"], facts_a["view"]))
        return f"the clips were filmed from different views ({words[0]}, then {words[1]})"
    return None


def compare_reports(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Compare two reports of the same dog.

    Returns
    -------
    dict
        ``metrics``: per metric ``label``, ``before``, ``after``, ``change``, ``ci95`` and
        ``status`` (``worse``, ``better``, ``unchanged``, ``changed`` or ``uncertain``, the last
        with a ``reason`` when the metric could not be compared at all); ``comparable`` (bool)
        and ``reason`` (None when comparable): when either clip was not scored or the views
        differ, no gait metric is marked ``worse``, ``better`` or ``unchanged`` (thigh muscle
        indices keep their own gate and may still be compared); ``clips``: each clip's
        :func:`clip_facts`; ``not_matched``: metric name -> reason for metrics left out because
        the clips showed opposite sides; ``flag`` and ``worse``; ``weaker_side``,
        ``model_version`` and ``notes``.
    """
    facts_b, facts_a = clip_facts(before), clip_facts(after)
    reason = _why_not_comparable(facts_b, facts_a)
    comparable = reason is None
    opposite_sides = (
        comparable
        and facts_b["near_side"] is not None
        and facts_a["near_side"] is not None
        and facts_b["near_side"] != facts_a["near_side"]
    )
    side_reason = (
        f"the dog was filmed one way only, showing its {facts_b['near_side']} side, then its {facts_a['near_side']} "
        "side: the far leg is seen less well, so the asymmetry of the two clips cannot be matched"
    )
    apart = [
        which
        for which, report in (("first", before), ("second", after))
        if _node(report, "metrics", "hind_labels").get("follow_legs") is False
    ]
    labels_reason = (
        f"the two hind legs were not told apart in the {' and the '.join(apart)} clip"
        + ("s" if len(apart) == 2 else "")
        if apart
        else None
    )
    metrics: dict[str, Any] = {}
    not_matched: dict[str, str] = {}
    view_b = _node(before, "metrics", "muscle").get("view")
    view_a = _node(after, "metrics", "muscle").get("view")
    for spec in METRICS:
        if spec.path[0] == "muscle":
            if view_b != view_a:
                metrics[spec.name] = _uncertain(spec.label, "the clips were filmed from different views")
            elif _muscle_usable(before) and _muscle_usable(after):
                metrics[spec.name] = compare_metric(_values(before, spec.path), _values(after, spec.path), spec)
            else:
                metrics[spec.name] = _uncertain(spec.label, "the thigh muscle was not measured well in both clips")
            continue
        if not comparable:
            metrics[spec.name] = _uncertain(spec.label, str(reason))
            continue
        if labels_reason and spec.name in LEG_PAIRED:
            metrics[spec.name] = _uncertain(spec.label, labels_reason)
            continue
        if opposite_sides and spec.name in SIDE_DEPENDENT:
            metrics[spec.name] = _uncertain(spec.label, side_reason)
            not_matched[spec.name] = side_reason
            continue
        metrics[spec.name] = compare_metric(_values(before, spec.path), _values(after, spec.path), spec)
    metrics["tremor"] = _tremor_change(before, after) if comparable else _uncertain(TREMOR_LABEL, str(reason))
    side_b = _node(before, "metrics", "symmetry").get("weaker_side")
    side_a = _node(after, "metrics", "symmetry").get("weaker_side")
    worse = [k for k, v in metrics.items() if v["status"] == "worse"]
    speed = metrics.get("speed_bl_per_s", {})
    notes = []
    if speed.get("status") == "changed":
        notes.append("Walking speed differs between the clips; speed changes gait measures, so compare with care.")
    if side_b and side_a and side_b != side_a and not opposite_sides:
        notes.append(f"The weaker side changed from {side_b} to {side_a}.")
    model_b, model_a = (_node(r, "source").get("model_version") for r in (before, after))
    if model_b and model_a and model_b != model_a:
        notes.append(
            f"The clips were tracked by different versions of the keypoint model ({model_b}, then {model_a}): "
            "part of any change may come from the model."
        )
    return {
        "comparable": comparable,
        "reason": reason,
        "clips": {"before": facts_b, "after": facts_a},
        "not_matched": not_matched,
        "flag": bool(worse),
        "worse": worse,
        "weaker_side": {"before": side_b, "after": side_a},
        "model_version": {"before": model_b, "after": model_a},
        "metrics": metrics,
        "notes": notes,
        "before_usable": facts_b["scored"],
        "after_usable": facts_a["scored"],
    }


#: Plain words for each status, as people read them.
STATUS_WORDS = {
    "worse": "worse",
    "better": "better",
    "unchanged": "no change beyond noise",
    "changed": "changed",
    "uncertain": "can't tell",
}


def verdict_lines(comparison: dict[str, Any], before_name: str, after_name: str) -> list[str]:
    """The comparison's verdict in sentences, for the command line, the dashboard and the PDF.

    Parameters
    ----------
    comparison
        A :func:`compare_reports` result (older stored results without ``comparable`` are read
        from ``before_usable``/``after_usable``).
    before_name, after_name
        How each clip is named to the reader: a date, a date and time, or a file name.

    Returns
    -------
    list of str
        When the clips are not comparable, one line per unscored clip, ``"<name> could not be
        scored: <reason>"`` (or the reason the views differ), and never a claim of no change.
        Otherwise the worse metrics, or that nothing got worse beyond noise (only when some metric
        could be told apart from noise), then one line per metric that could not be matched.
    """
    metrics = comparison.get("metrics") or {}
    clips = comparison.get("clips") or {}
    lines: list[str] = []
    comparable = comparison.get("comparable")
    if comparable is None:
        comparable = bool(comparison.get("before_usable")) and bool(comparison.get("after_usable"))
    if not comparable:
        for key, name in (("before", before_name), ("after", after_name)):
            facts = clips.get(key) or {"scored": comparison.get(f"{key}_usable"), "reason": None}
            if not facts.get("scored"):
                lines.append(f"{name} could not be scored: {facts.get('reason') or 'the quality check did not pass'}.")
        if not lines:
            lines.append(f"{before_name} and {after_name} cannot be compared: {comparison.get('reason')}.")
        muscle = [m["label"] for m in metrics.values() if m.get("status") in ("worse", "better", "unchanged")]
        if muscle:
            lines.append("Compared on their own: " + ", ".join(muscle) + ".")
        if comparison.get("flag"):
            worse = [metrics[k]["label"] for k in comparison.get("worse", []) if k in metrics]
            lines.append("Worse beyond the clips' own stride-to-stride noise: " + ", ".join(worse) + ".")
        return lines
    if comparison.get("flag"):
        worse = [metrics[k]["label"] for k in comparison.get("worse", []) if k in metrics]
        lines.append("Worse beyond the clips' own stride-to-stride noise: " + ", ".join(worse) + ".")
    elif any(m.get("status") in ("better", "unchanged") for m in metrics.values()):
        lines.append("No worsening beyond the clips' own stride-to-stride noise.")
    else:
        lines.append(
            "No measure could be told apart from the clips' own stride-to-stride noise "
            "(too few strides, or too much variation): this is not a sign of no change."
        )
    for name, why in (comparison.get("not_matched") or {}).items():
        label = metrics.get(name, {}).get("label", name)
        lines.append(f"{label} could not be matched: {why}.")
    return lines
