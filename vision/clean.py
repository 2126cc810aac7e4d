"""Cleaning of pose tracks: confidence masking, gap filling, smoothing and swap repair.

Every function takes a tracks dataset (see :mod:`vision.tracks`) and returns a
new one with a provenance entry; none modifies its input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy.signal import butter, sosfiltfilt

from vision.anatomy import mirror_name
from vision.tracks import log_step

#: Cost of one frame with exchanged labels in :func:`detect_swaps` (squared 0.1-body-length accelerations).
SWAPPED_FRAME_COST = 0.2

#: Keypoint groups that swap together when a model confuses the two legs.
SWAP_GROUPS: tuple[tuple[str, ...], ...] = (
    ("stifle", "hock", "hind_paw"),
    ("elbow", "carpus", "front_paw"),
    ("eye", "ear"),
)


def drop_low_confidence(ds: xr.Dataset, threshold: float = 0.3) -> xr.Dataset:
    """Set positions (and confidences) below ``threshold`` to NaN, never to zero."""
    low = ~(ds["confidence"] >= threshold)
    out = ds.copy()
    out["position"] = ds["position"].where(~low)
    out["confidence"] = ds["confidence"].where(~low)
    return log_step(out, "drop_low_confidence", threshold=threshold)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Start/stop (exclusive) indices of runs of True in a 1-D boolean array."""
    padded = np.concatenate([[False], mask, [False]])
    change = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(change[::2].tolist(), change[1::2].tolist(), strict=True))


def interpolate_gaps(ds: xr.Dataset, max_gap_s: float = 0.2) -> xr.Dataset:
    """Fill NaN gaps no longer than ``max_gap_s`` by linear interpolation in real time.

    Longer gaps, and gaps at the start or end of the clip, stay NaN.
    """
    t = ds["time"].values
    pos = ds["position"].values.copy()  # (time, space, keypoint, individual)
    filled = 0
    for k in range(pos.shape[2]):
        for i in range(pos.shape[3]):
            missing = ~np.isfinite(pos[:, :, k, i]).all(axis=1)
            if not missing.any() or missing.all():
                continue
            for a, b in _runs(missing):
                if a == 0 or b == len(t):
                    continue
                if t[b] - t[a - 1] > max_gap_s + 1e-9:
                    continue
                w = (t[a:b] - t[a - 1]) / (t[b] - t[a - 1])
                pos[a:b, :, k, i] = pos[a - 1, :, k, i] + w[:, None] * (pos[b, :, k, i] - pos[a - 1, :, k, i])
                filled += b - a
    out = ds.copy()
    out["position"] = (ds["position"].dims, pos)
    return log_step(out, "interpolate_gaps", max_gap_s=max_gap_s, frames_filled=filled)


def lowpass(values: np.ndarray, fps: float, cutoff_hz: float, order: int = 2) -> np.ndarray:
    """Zero-phase Butterworth low-pass along axis 0, applied to each finite run separately."""
    out = np.array(values, dtype=np.float64, copy=True)
    if cutoff_hz >= 0.5 * fps:
        return out
    sos = butter(order, cutoff_hz, btype="low", fs=fps, output="sos")
    flat = out.reshape(out.shape[0], -1)
    for c in range(flat.shape[1]):
        for a, b in _runs(np.isfinite(flat[:, c])):
            if b - a > 3 * (2 * order + 1):
                flat[a:b, c] = sosfiltfilt(sos, flat[a:b, c])
    return flat.reshape(out.shape)


def smooth(ds: xr.Dataset, cutoff_hz: float = 6.0) -> xr.Dataset:
    """Zero-phase low-pass filter of positions (Butterworth, order 2, forward-backward).

    Applied per finite run, so NaN gaps never smear into data. Timestamps are
    assumed close to uniform (call :func:`resample_uniform` first for VFR clips).
    """
    fps = float(ds.attrs.get("fps", 30.0))
    pos = ds["position"].values
    sm = lowpass(pos, fps, cutoff_hz)
    out = ds.copy()
    out["position"] = (ds["position"].dims, sm.astype(np.float32))
    return log_step(out, "smooth", cutoff_hz=cutoff_hz, filter="butterworth2-filtfilt")


def resample_uniform(ds: xr.Dataset, fps: float | None = None) -> xr.Dataset:
    """Resample tracks onto a uniform time grid (for variable-frame-rate clips).

    Values are linearly interpolated between real timestamps; a grid point falls in
    a gap (NaN) when either neighbouring sample is NaN.
    """
    t = ds["time"].values
    if t.size < 2:
        return ds
    if fps is None:
        fps = float(1.0 / np.median(np.diff(t)))
    grid = t[0] + np.arange(int(np.floor((t[-1] - t[0]) * fps)) + 1) / fps
    if grid.size == t.size and np.allclose(grid, t, atol=1e-3 / fps):
        return ds
    out = ds.interp(time=grid, method="linear")
    out.attrs = dict(ds.attrs)
    out.attrs["fps"] = float(fps)
    return log_step(out, "resample_uniform", fps=float(fps))


@dataclass(frozen=True)
class SwapReport:
    """Frames whose left/right labels were exchanged, per keypoint group."""

    frames_swapped: dict[str, int]

    @property
    def total(self) -> int:
        """Total number of frame-group repairs."""
        return int(sum(self.frames_swapped.values()))


def _fill_for_costs(xy: np.ndarray) -> np.ndarray:
    """Linearly fill NaNs along time (edges held) so that costs can be computed everywhere."""
    out = xy.copy()
    t = np.arange(out.shape[0])
    flat = out.reshape(out.shape[0], -1)
    for c in range(flat.shape[1]):
        ok = np.isfinite(flat[:, c])
        if ok.sum() >= 2:
            flat[:, c] = np.interp(t, t[ok], flat[ok, c])
        else:
            flat[:, c] = 0.0
    return flat.reshape(out.shape)


def _acceleration_costs(left: np.ndarray, right: np.ndarray, scale: float) -> np.ndarray:
    """Squared accelerations of every labelling triple (s0, s1, s2) at every frame: shape ``(time, 2, 2, 2)``.

    State 0 keeps the labels of a frame as given, state 1 exchanges them. Units: ``0.1 * scale``
    per frame squared; a point counts only where it was observed in all three frames.
    """
    n = left.shape[0]
    a = _fill_for_costs(left) / (0.1 * scale)
    b = _fill_for_costs(right) / (0.1 * scale)
    seen_l, seen_r = np.isfinite(left).all(axis=2), np.isfinite(right).all(axis=2)
    weight = np.stack([np.concatenate([seen_l, seen_r], axis=1), np.concatenate([seen_r, seen_l], axis=1)]).astype(
        float
    )  # (state, time, 2p): slot j holds a different point in each labelling
    xs = np.stack([np.concatenate([a, b], axis=1), np.concatenate([b, a], axis=1)])  # (2, time, 2p, 2)
    acc_cost = np.zeros((n, 2, 2, 2))
    for s0 in (0, 1):
        for s1 in (0, 1):
            for s2 in (0, 1):
                acc = xs[s2, 2:] - 2 * xs[s1, 1:-1] + xs[s0, :-2]
                w = weight[s2, 2:] * weight[s1, 1:-1] * weight[s0, :-2]
                acc_cost[2:, s0, s1, s2] = np.sum(w * np.sum(acc * acc, axis=2), axis=1)
    return acc_cost


def _noise_unit(acc_cost: np.ndarray) -> float:
    """Median acceleration cost of the labels as given (most frames are right), at least 1."""
    given = acc_cost[2:, 0, 0, 0]
    return max(1.0, float(np.median(given))) if len(given) else 1.0


def swap_noise_unit(left: np.ndarray, right: np.ndarray, scale: float) -> float:
    """The track's own noise, in which :func:`detect_swaps` measures its switch cost.

    The median squared acceleration (units of ``0.1 * scale`` per frame) of a keypoint group's
    points under the labels as given, or 1 when that is below 1 (clean tracks). A small or far dog,
    a shaky or low-resolution clip gives more; a swap must then stand out of it to be repaired.
    ``left``, ``right``: shape ``(time, points, 2)``.
    """
    return _noise_unit(_acceleration_costs(left, right, scale))


def detect_swaps(
    left: np.ndarray,
    right: np.ndarray,
    scale: float,
    switch_cost: float = 2.0,
    swapped_frame_cost: float = SWAPPED_FRAME_COST,
    adapt_to_noise: bool = True,
) -> np.ndarray:
    """Find frames where left and right labels are exchanged (second-order Viterbi).

    Parameters
    ----------
    left, right
        Shape ``(time, points, 2)``: the left and right members of a keypoint group.
    scale
        A length (pixels) to normalise motion by, e.g. the dog's body length.
    switch_cost
        Cost of changing the labelling state, in units of squared
        ``0.1 * scale`` accelerations; larger values repair fewer swaps.
    swapped_frame_cost
        Cost of each frame whose labels are exchanged (same units): the labels as given are
        evidence, so a stretch is exchanged only when its ends show a swap clearly.
    adapt_to_noise
        Measure ``switch_cost`` in units of the track's median acceleration cost when that is
        above one (noisy tracks), so that noise alone does not exchange stretches.

    Returns
    -------
    numpy.ndarray
        Boolean, shape ``(time,)``: True where the labels should be exchanged.

    Notes
    -----
    The state is the labelling of the current and the previous frame; the cost of a
    path is the squared acceleration of every point under that labelling. A real
    swap shows as a jump in position, or at a crossing of the legs as a sudden
    exchange of velocity, both of which make the unswapped path expensive.

    Inside a stretch both labellings have the same cost; only its two ends differ. Without
    ``swapped_frame_cost``, noise at two crossings of the legs (frequent when the hind legs move
    together, as in a gallop) could exchange every frame between them.

    On the real gallop clip of ``../shared`` (a dog about 47 px long), the median acceleration
    cost was 29 units. Without ``adapt_to_noise`` the repair exchanged 83 frames there, 63 of
    them against the reference pose. With it, it exchanged none.
    """
    return _swap_states(left, right, scale, switch_cost, swapped_frame_cost, adapt_to_noise)[0]


def _swap_states(
    left: np.ndarray,
    right: np.ndarray,
    scale: float,
    switch_cost: float,
    swapped_frame_cost: float,
    adapt_to_noise: bool,
) -> tuple[np.ndarray, float]:
    """:func:`detect_swaps`, and the noise unit it measured the switch cost in (1 without ``adapt_to_noise``)."""
    n = left.shape[0]
    if n < 3:
        return np.zeros(n, dtype=bool), 1.0
    acc_cost = _acceleration_costs(left, right, scale)
    # The track's own noise (see :func:`swap_noise_unit`): where it exceeds one unit, the switch cost
    # scales with it, so a swap must show beyond the noise; on clean tracks nothing changes. (Scaling
    # the per-frame cost too would keep long real swaps whose one end falls where the legs cross.)
    unit = _noise_unit(acc_cost) if adapt_to_noise else 1.0
    switch = np.array([[0.0, switch_cost], [switch_cost, 0.0]]) * unit
    unary = np.array([0.0, swapped_frame_cost])
    cost = switch + unary[:, None] + unary[None, :]  # cost[s1, s2] for the pair of frames (0, 1)
    back = np.zeros((n, 2, 2), dtype=np.int8)
    for t in range(2, n):
        # total[s0, s1, s2] = cost[s0, s1] + acc + switch[s1, s2]
        total = cost[:, :, None] + acc_cost[t] + switch[None, :, :] + unary[None, None, :]
        back[t] = np.argmin(total, axis=0)
        cost = np.min(total, axis=0)
    s1, s2 = (int(v) for v in np.unravel_index(int(np.argmin(cost)), cost.shape))
    states = np.zeros(n, dtype=bool)
    states[n - 1], states[n - 2] = bool(s2), bool(s1)
    for t in range(n - 1, 1, -1):
        s0 = int(back[t, s1, s2])
        states[t - 2] = bool(s0)
        s1, s2 = s0, s1
    # The labelling as a whole is only defined up to a global exchange: keep the majority as given.
    if states.mean() > 0.5:
        states = ~states
    return states, unit


def repair_swaps(
    ds: xr.Dataset,
    scale: float | None = None,
    switch_cost: float = 2.0,
    individual: int = 0,
    swapped_frame_cost: float = SWAPPED_FRAME_COST,
) -> tuple[xr.Dataset, SwapReport]:
    """Detect and undo left/right label swaps, leg by leg, before any scoring.

    Parameters
    ----------
    scale
        Body length in pixels; estimated from withers and tail base when None.
    """
    names = [str(k) for k in ds["keypoint"].values]
    pos = ds["position"].values.copy()
    conf = ds["confidence"].values.copy()
    if scale is None:
        scale = body_length_px(ds, individual) or 100.0
    report: dict[str, int] = {}
    noise: dict[str, float] = {}
    for group in SWAP_GROUPS:
        lefts = [names.index(f"left_{g}") for g in group if f"left_{g}" in names and f"right_{g}" in names]
        rights = [names.index(mirror_name(names[i])) for i in lefts]
        if not lefts:
            continue
        left = pos[:, :, lefts, individual].transpose(0, 2, 1)
        right = pos[:, :, rights, individual].transpose(0, 2, 1)
        swap, unit = _swap_states(left, right, scale, switch_cost, swapped_frame_cost, adapt_to_noise=True)
        report["_".join(group)] = int(swap.sum())
        noise["_".join(group)] = round(unit, 2)
        if swap.any():
            for li, ri in zip(lefts, rights, strict=True):
                lp, rp = pos[swap, :, li, individual].copy(), pos[swap, :, ri, individual].copy()
                pos[swap, :, li, individual], pos[swap, :, ri, individual] = rp, lp
                lc, rc = conf[swap, li, individual].copy(), conf[swap, ri, individual].copy()
                conf[swap, li, individual], conf[swap, ri, individual] = rc, lc
    out = ds.copy()
    out["position"] = (ds["position"].dims, pos)
    out["confidence"] = (ds["confidence"].dims, conf)
    rep = SwapReport(report)
    return (
        log_step(
            out,
            "repair_swaps",
            switch_cost=switch_cost,
            swapped_frame_cost=swapped_frame_cost,
            frames_swapped=report,
            noise_units=noise,
        ),
        rep,
    )


def body_length_px(ds: xr.Dataset, individual: int = 0) -> float | None:
    """Median withers-to-tail-base distance in pixels (throat if no withers), or None if never seen."""
    from vision.gait.events import body_axis

    _, d = body_axis(ds, individual)
    d = d[np.isfinite(d)]
    return float(np.median(d)) if d.size else None
