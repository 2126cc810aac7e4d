"""PCK and box-matching maths (pure numpy)."""

from __future__ import annotations

import numpy as np

from vision.anatomy import CANONICAL_KEYPOINTS, HIND_LIMB_KEYPOINTS, mirror_name
from vision.model.geometry import box_iou

HIND_LIMB_INDEX: tuple[int, ...] = tuple(CANONICAL_KEYPOINTS.index(n) for n in HIND_LIMB_KEYPOINTS)


def pck_hits(pred: np.ndarray, gt: np.ndarray, bbox: np.ndarray, alpha: float) -> np.ndarray:
    """Per-keypoint correctness of one animal.

    Parameters
    ----------
    pred : np.ndarray
        (K, >=2) predicted x, y.
    gt : np.ndarray
        (K, 3) ground-truth x, y, v.
    bbox : np.ndarray
        (4,) ground-truth box; threshold = alpha x its longer side.
    alpha : float
        PCK fraction (0.05, 0.1).

    Returns
    -------
    np.ndarray
        (K,) float64: 1 correct, 0 wrong, NaN where the keypoint is not labelled.
    """
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    thr = alpha * max(bbox[2] - bbox[0], bbox[3] - bbox[1])
    dist = np.hypot(pred[:, 0] - gt[:, 0], pred[:, 1] - gt[:, 1])
    return np.where(gt[:, 2] > 0, (dist <= thr).astype(np.float64), np.nan)


def summarise_pck(hits: np.ndarray) -> dict[str, object]:
    """Aggregate stacked per-animal hits (N, K) (NaN = unlabelled) into PCK figures.

    Returns
    -------
    dict
        ``per_keypoint`` {name: PCK or None}, ``hind_limb`` and ``all`` (pooled over labelled
        keypoints), ``n_instances``.
    """
    hits = np.asarray(hits, np.float64).reshape(-1, len(CANONICAL_KEYPOINTS))

    def pooled(cols: np.ndarray) -> float | None:
        lab = ~np.isnan(cols)
        return float(cols[lab].mean()) if lab.any() else None

    return {
        "per_keypoint": {n: pooled(hits[:, k]) for k, n in enumerate(CANONICAL_KEYPOINTS)},
        "hind_limb": pooled(hits[:, list(HIND_LIMB_INDEX)]),
        "all": pooled(hits),
        "n_instances": int(hits.shape[0]),
    }


#: Confidence bins of :func:`confidence_reliability` (the last edge is above 1 so that 1.0 falls in a bin).
CONFIDENCE_EDGES: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 1.0 + 1e-9)


def confidence_reliability(
    confidence: np.ndarray, hits: np.ndarray, threshold: float, edges: tuple[float, ...] = CONFIDENCE_EDGES
) -> dict[str, object]:
    """How often a keypoint is right at each confidence, and for the points kept at ``threshold``.

    Parameters
    ----------
    confidence : np.ndarray
        (N, K) predicted keypoint confidences (the heatmap peak, 0..1).
    hits : np.ndarray
        (N, K) PCK hits of those points: 1 right, 0 wrong, NaN unlabelled (not counted).
    threshold : float
        The confidence below which a point is dropped (``vision.analysis.CONFIDENCE_THRESHOLD``).
    edges : tuple of float
        Bin edges, increasing; a bin holds ``lo <= confidence < hi``.

    Returns
    -------
    dict
        ``bins``: a list of ``{"low", "high", "points", "rate"}`` (rate None for an empty bin);
        ``threshold``; ``kept_share`` (share of labelled points at or above it), ``kept_rate`` and
        ``dropped_rate`` (share right among kept and dropped points; None when there are none).
    """
    conf = np.asarray(confidence, np.float64).ravel()
    h = np.asarray(hits, np.float64).ravel()
    if conf.shape != h.shape:
        raise ValueError(f"confidences {np.shape(confidence)} and hits {np.shape(hits)} differ in shape")
    labelled = ~np.isnan(h) & np.isfinite(conf)
    conf, h = conf[labelled], h[labelled]

    def rate(chosen: np.ndarray) -> float | None:
        return float(h[chosen].mean()) if chosen.any() else None

    bins = [
        {"low": lo, "high": min(hi, 1.0), "points": int(m.sum()), "rate": rate(m)}
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
        for m in [(conf >= lo) & (conf < hi)]
    ]
    kept = conf >= threshold
    return {
        "bins": bins,
        "threshold": float(threshold),
        "kept_share": float(kept.mean()) if len(conf) else None,
        "kept_rate": rate(kept),
        "dropped_rate": rate(~kept),
    }


#: A dog "standing side-on" (:func:`standing_side_on`), the view Hindsight's filming guidance asks for: its back
#: (withers to tail base) tilted at most this many degrees from the horizontal, ...
SIDE_ON_MAX_TILT_DEG = 30.0
#: ... at least this share of the labelled box's longer side (not foreshortened towards the camera), ...
SIDE_ON_MIN_BACK_SHARE = 0.3
#: ... and every labelled paw (at least three) below the back by at least this many back lengths.
SIDE_ON_MIN_PAW_DROP = 0.3
_PAWS = tuple(CANONICAL_KEYPOINTS.index(f"{side}_{end}_paw") for end in ("front", "hind") for side in ("left", "right"))


def standing_side_on(keypoints: np.ndarray, bbox: np.ndarray) -> bool:
    """Whether a labelled dog stands (or walks) seen from the side, as Hindsight's clips film it.

    Judged from the labels alone (see the ``SIDE_ON_*`` constants): withers and tail base labelled,
    the back near horizontal and long in the box, at least three paws labelled, all well below it.
    Lying, sitting, jumping, rearing and dogs facing the camera fail.

    Parameters
    ----------
    keypoints : np.ndarray
        (K, 3) x, y, v in ``CANONICAL_KEYPOINTS`` order (v > 0: labelled).
    bbox : np.ndarray
        (4,) xyxy labelled box.
    """
    kp = np.asarray(keypoints, np.float64)
    withers, tail = kp[CANONICAL_KEYPOINTS.index("withers")], kp[CANONICAL_KEYPOINTS.index("tail_base")]
    paws = kp[[i for i in _PAWS if kp[i, 2] > 0]]
    if withers[2] <= 0 or tail[2] <= 0 or len(paws) < 3:
        return False
    dx, dy = tail[:2] - withers[:2]
    back = float(np.hypot(dx, dy))
    longer = max(float(bbox[2] - bbox[0]), float(bbox[3] - bbox[1]))
    if back < SIDE_ON_MIN_BACK_SHARE * longer or np.degrees(np.arctan2(abs(dy), abs(dx))) > SIDE_ON_MAX_TILT_DEG:
        return False
    return bool(np.all(paws[:, 1] >= max(withers[1], tail[1]) + SIDE_ON_MIN_PAW_DROP * back))


def _resampled_rows(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) row indices drawn with replacement: the animals of each bootstrap resample."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap values."""
    tail = 50.0 * (1.0 - level)
    return float(np.percentile(values, tail)), float(np.percentile(values, 100.0 - tail))


def pooled_rate(hits: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> dict[str, float | int]:
    """Pooled hit rate of (N, K) hits (NaN = not labelled), with a bootstrap interval over the animals.

    Returns
    -------
    dict
        ``rate``, ``low``, ``high`` (percentile interval) and ``n_instances``.

    Raises
    ------
    ValueError
        When nothing is labelled.
    """
    h = np.asarray(hits, np.float64)
    h = h.reshape(len(h), -1)
    labelled = (~np.isnan(h)).sum(axis=1).astype(np.float64)
    if labelled.sum() == 0:
        raise ValueError("no labelled keypoint to pool")
    sums = np.nansum(h, axis=1)
    rows = _resampled_rows(len(h), n_boot, seed)
    rates = sums[rows].sum(axis=1) / np.maximum(labelled[rows].sum(axis=1), 1.0)
    low, high = _percentile_interval(rates, level)
    return {"rate": float(sums.sum() / labelled.sum()), "low": low, "high": high, "n_instances": int(len(h))}


def paired_difference(
    hits_a: np.ndarray, hits_b: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> dict[str, float | int]:
    """Pooled hit rate of B minus A on the same animals, with a paired bootstrap interval.

    The animals (rows) are resampled with replacement, the same rows for both, and the pooled rate
    (hits over labelled entries) is recomputed: the interval is how far the difference moves with
    the choice of animals, so a difference inside it is not evidence that B is better.

    Parameters
    ----------
    hits_a, hits_b : np.ndarray
        (N, K) float: 1 hit, 0 miss, NaN not labelled; the same animals and keypoints in the same
        order, so the NaNs must coincide.
    n_boot : int
        Bootstrap resamples.
    level : float
        Coverage of the interval.
    seed : int
        Seed of the resampling.

    Returns
    -------
    dict
        ``a``, ``b``, ``difference`` (b - a), ``low``, ``high`` (percentile interval of the
        difference) and ``n_instances``.

    Raises
    ------
    ValueError
        When the shapes or the unlabelled entries differ, or nothing is labelled.
    """
    a = np.asarray(hits_a, np.float64)
    b = np.asarray(hits_b, np.float64)
    a, b = (x.reshape(-1, 1) if x.ndim == 1 else x.reshape(len(x), -1) for x in (a, b))
    if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
        raise ValueError("paired hits must cover the same animals and labelled keypoints")
    labelled = (~np.isnan(a)).sum(axis=1).astype(np.float64)
    if labelled.sum() == 0:
        raise ValueError("no labelled keypoint to compare")
    sum_a, sum_b = np.nansum(a, axis=1), np.nansum(b, axis=1)
    rows = _resampled_rows(len(a), n_boot, seed)
    count = np.maximum(labelled[rows].sum(axis=1), 1.0)
    diffs = (sum_b[rows].sum(axis=1) - sum_a[rows].sum(axis=1)) / count
    low, high = _percentile_interval(diffs, level)
    rate_a, rate_b = float(sum_a.sum() / labelled.sum()), float(sum_b.sum() / labelled.sum())
    return {"a": rate_a, "b": rate_b, "difference": rate_b - rate_a, "low": low, "high": high, "n_instances": len(a)}


def match_by_iou(pred_boxes: np.ndarray, gt_boxes: np.ndarray) -> np.ndarray:
    """Greedy one-to-one matching of predictions (best first) to GT boxes by IoU.

    Returns
    -------
    np.ndarray
        (M,) int64: index of the prediction matched to each GT box, -1 if none overlaps.
    """
    iou = box_iou(pred_boxes, gt_boxes)
    match = np.full(iou.shape[1], -1, dtype=np.int64)
    used: set[int] = set()
    for g in np.argsort(-iou.max(axis=0) if iou.size else np.zeros(iou.shape[1])):
        if iou.shape[0] == 0:
            break
        order = np.argsort(-iou[:, g])
        for p in order:
            if p not in used and iou[p, g] > 0:
                match[g] = p
                used.add(int(p))
                break
    return match


def reference_agreement(
    pred: np.ndarray,
    ref: np.ndarray,
    ref_conf: np.ndarray,
    names: tuple[str, ...],
    tolerance: float = 0.1,
    min_ref_confidence: float = 0.5,
    scale_pair: tuple[str, str] = ("nose", "tail_base"),
) -> dict[str, dict[str, float | int | None]]:
    """Per-keypoint share of video frames where a prediction lies near a reference track.

    A frame counts for a keypoint when the reference point has confidence >= ``min_ref_confidence``
    and the reference body length (distance between ``scale_pair``, both confident; nose to tail
    base, close to the longer box side that PCK uses for a dog seen from the side) is known; it
    agrees when the predicted point is within ``tolerance`` x that length (a missing prediction
    disagrees). ``swap_allowed`` also accepts the point's left/right partner (a far-leg swap).

    Parameters
    ----------
    pred, ref : np.ndarray
        (T, K, 2) positions, pixels, NaN where absent; keypoints in ``names`` order.
    ref_conf : np.ndarray
        (T, K) reference confidences.
    names : tuple of str
        K canonical keypoint names.

    Returns
    -------
    dict
        name -> ``{"frames": n, "share": s, "swap_allowed": s2}``, plus ``HIND_LIMB`` pooled over the
        hind-limb keypoints; shares are None when no frame counts.
    """
    pred = np.asarray(pred, np.float64)
    ref = np.asarray(ref, np.float64)
    conf = np.nan_to_num(np.asarray(ref_conf, np.float64), nan=0.0)
    if pred.shape != ref.shape or conf.shape != ref.shape[:2]:
        raise ValueError(f"shapes differ: prediction {pred.shape}, reference {ref.shape}, confidence {conf.shape}")
    index = {n: i for i, n in enumerate(names)}
    a, b = (index[n] for n in scale_pair)
    length = np.linalg.norm(ref[:, a] - ref[:, b], axis=1)
    length = np.where((conf[:, a] >= min_ref_confidence) & (conf[:, b] >= min_ref_confidence), length, np.nan)

    def near(p: np.ndarray, r: np.ndarray) -> np.ndarray:
        d = np.linalg.norm(p - r, axis=1)
        return np.where(np.isfinite(d), d <= tolerance * length, False)

    out: dict[str, dict[str, float | int | None]] = {}
    pooled: list[np.ndarray] = []
    pooled_swap: list[np.ndarray] = []
    for name, k in index.items():
        counts = (conf[:, k] >= min_ref_confidence) & np.isfinite(length) & np.isfinite(ref[:, k]).all(axis=1)
        hit = near(pred[:, k], ref[:, k])[counts]
        partner = index.get(mirror_name(name))
        hit_swap = hit | near(pred[:, partner], ref[:, k])[counts] if partner is not None else hit
        n = int(counts.sum())
        out[name] = {
            "frames": n,
            "share": float(hit.mean()) if n else None,
            "swap_allowed": float(hit_swap.mean()) if n else None,
        }
        if name in HIND_LIMB_KEYPOINTS:
            pooled.append(hit)
            pooled_swap.append(hit_swap)
    hind, hind_swap = np.concatenate(pooled or [np.zeros(0)]), np.concatenate(pooled_swap or [np.zeros(0)])
    out["HIND_LIMB"] = {
        "frames": int(hind.size),
        "share": float(hind.mean()) if hind.size else None,
        "swap_allowed": float(hind_swap.mean()) if hind.size else None,
    }
    return out
