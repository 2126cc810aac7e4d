"""Cleaning of pose tracks: confidence masking, gap filling, smoothing and swap repair.

Every function takes a tracks dataset (see :mod:`vision.tracks`) and returns a
new one with a provenance entry; none modifies its input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr
from scipy.signal import butter, sosfiltfilt

from vision.anatomy import mirror_name
from vision.tracks import log_step

#: Prior probability in :func:`detect_swaps` that a frame's leg labels become exchanged (rare: a swap
#: must be shown by the track; larger values repair more).
SWAP_START_PROBABILITY = 1e-4

#: Prior probability that exchanged labels are right again at the next frame: the model's swaps are
#: short (a mean of about 3 frames), so long exchanged stretches need strong evidence at both ends.
SWAP_END_PROBABILITY = 0.3

#: Degrees of freedom of the Student-t that scores accelerations in :func:`detect_swaps`.
ACCELERATION_TAIL = 2.0

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
    #: Group name -> (time,) bool, True where that group's labels were exchanged.
    swapped: dict[str, np.ndarray] = field(default_factory=dict)

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


def _labellings(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both labellings of a group, gaps filled: positions ``(2, time, 2p, 2)``, seen flags ``(2, time, 2p)``.

    Labelling 0 keeps the labels as given, labelling 1 exchanges them; slot j holds a different
    point in each.
    """
    a, b = _fill_for_costs(left), _fill_for_costs(right)
    seen_l, seen_r = np.isfinite(left).all(axis=2), np.isfinite(right).all(axis=2)
    xs = np.stack([np.concatenate([a, b], axis=1), np.concatenate([b, a], axis=1)])
    seen = np.stack([np.concatenate([seen_l, seen_r], axis=1), np.concatenate([seen_r, seen_l], axis=1)])
    return xs, seen.astype(float)


def swap_noise_px(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The track's own frame-to-frame noise, which a swap must stand out of to be repaired.

    For each left/right pair of a keypoint group, the robust scale (pixels) of its points'
    second differences under the labels as given: the median acceleration magnitude over both
    points and all frames where they were seen, divided by 1.1774 (the median of a unit 2-D
    Gaussian's magnitude), at least 0.1 px. A small or far dog, a shaky clip or a low-resolution
    video gives a larger scale. ``left``, ``right``: shape ``(time, points, 2)``; returns ``(points,)``.
    """
    return _noise_scale(*_labellings(left, right))


def _noise_scale(xs: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """:func:`swap_noise_px` from a group's labellings (:func:`_labellings`)."""
    points = xs.shape[2] // 2
    acc = np.linalg.norm(xs[0, 2:] - 2 * xs[0, 1:-1] + xs[0, :-2], axis=2)
    ok = (seen[0, 2:] * seen[0, 1:-1] * seen[0, :-2]) > 0
    out = np.full(points, 1.0)
    for j in range(points):
        both = np.concatenate([acc[:, j][ok[:, j]], acc[:, j + points][ok[:, j + points]]])
        if both.size:
            out[j] = float(np.median(both)) / 1.1774
    return np.maximum(out, 0.1)


def _labelling_costs(xs: np.ndarray, seen: np.ndarray, noise: np.ndarray, tail: float) -> np.ndarray:
    """Negative log-likelihood (nats) of every labelling triple (s0, s1, s2) at every frame: ``(time, 2, 2, 2)``.

    Each point's acceleration (second difference) under a labelling (:func:`_labellings`) is scored
    by a 2-D Student-t with ``tail`` degrees of freedom and the pair's ``noise`` scale (pixels,
    :func:`swap_noise_px`). A point counts only where it was seen in all three frames.
    """
    n = xs.shape[1]
    scale2 = np.tile(noise, 2) ** 2
    costs = np.zeros((n, 2, 2, 2))
    for s0 in (0, 1):
        for s1 in (0, 1):
            for s2 in (0, 1):
                acc = xs[s2, 2:] - 2 * xs[s1, 1:-1] + xs[s0, :-2]
                w = seen[s2, 2:] * seen[s1, 1:-1] * seen[s0, :-2]
                r2 = np.sum(acc * acc, axis=2) / scale2
                costs[2:, s0, s1, s2] = np.sum(w * 0.5 * (tail + 2.0) * np.log1p(r2 / tail), axis=1)
    return costs


def detect_swaps(
    left: np.ndarray,
    right: np.ndarray,
    swap_start_probability: float = SWAP_START_PROBABILITY,
    swap_end_probability: float = SWAP_END_PROBABILITY,
    tail: float = ACCELERATION_TAIL,
) -> np.ndarray:
    """Find frames where left and right labels are exchanged (two-state hidden Markov model, Viterbi).

    Parameters
    ----------
    left, right
        Shape ``(time, points, 2)``, pixels, NaN where unseen: the left and right members of a
        keypoint group.
    swap_start_probability
        Prior probability that the labels become exchanged at a frame where they are right.
        Smaller values need more evidence to repair.
    swap_end_probability
        Prior probability that exchanged labels are right again at the next frame (a mean swap
        lasts ``1 / swap_end_probability`` frames).
    tail
        Degrees of freedom of the Student-t that scores accelerations: small values make single
        jumps of one point (jitter, a detection change) cheap, so a swap must show in several
        points and frames.

    Returns
    -------
    numpy.ndarray
        Boolean, shape ``(time,)``: True where the labels should be exchanged.

    Notes
    -----
    The hidden state is whether a frame's labels are exchanged. A labelling's likelihood comes
    from the accelerations it implies, each measured against the pair's own noise
    (:func:`swap_noise_px`), so the same rule holds for a large, sharp dog and for a small dog in
    a shaky, low-resolution clip. A real swap shows as a jump of every point of the leg, or at a
    crossing of the legs as a sudden exchange of velocity; inside a swapped stretch both
    labellings cost the same, so only its ends and the prior decide.

    On the real gallop clip of ``../shared`` (a dog about 47 px long) the analysis's repair,
    which then scaled a squared-acceleration cost by the track's median, exchanged 78 hind-leg
    frames of the shipped model's track against the reference; this one exchanges none.
    """
    return _swap_states(left, right, swap_start_probability, swap_end_probability, tail)[0]


def _swap_states(
    left: np.ndarray, right: np.ndarray, swap_start_probability: float, swap_end_probability: float, tail: float
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`detect_swaps`, and the noise (pixels, :func:`swap_noise_px`) it measured the evidence against."""
    n = left.shape[0]
    xs, seen = _labellings(left, right)
    noise = _noise_scale(xs, seen)
    if n < 3:
        return np.zeros(n, dtype=bool), noise
    costs = _labelling_costs(xs, seen, noise, tail)
    stay, leave = 1.0 - swap_start_probability, swap_end_probability
    transition = -np.log(np.array([[stay, swap_start_probability], [leave, 1.0 - leave]]))
    start = -np.log(np.array([leave, swap_start_probability]) / (leave + swap_start_probability))  # stationary
    cost = start[:, None] + transition  # cost[s0, s1] of the first two frames
    back = np.zeros((n, 2, 2), dtype=np.int8)
    for t in range(2, n):
        total = cost[:, :, None] + costs[t] + transition[None, :, :]  # total[s0, s1, s2]
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
    return states, noise


def _group_pairs(names: list[str], group: tuple[str, ...]) -> tuple[list[int], list[int]]:
    """Indices of a keypoint group's left points and of their right partners, for parts that have both."""
    lefts = [names.index(f"left_{g}") for g in group if f"left_{g}" in names and f"right_{g}" in names]
    return lefts, [names.index(mirror_name(names[i])) for i in lefts]


def exchange_labels(ds: xr.Dataset, swapped: dict[str, np.ndarray], individual: int = 0) -> xr.Dataset:
    """A copy of ``ds`` with the left/right labels of each keypoint group exchanged where ``swapped`` says.

    ``swapped``: group name (as in :class:`SwapReport`, e.g. ``"stifle_hock_hind_paw"``) -> (time,)
    bool, e.g. the frames :func:`repair_swaps` found in another version of the same track.
    Positions and confidences move together.
    """
    counts = {name: int(np.sum(mask)) for name, mask in swapped.items()}
    return log_step(_exchanged(ds, swapped, individual), "exchange_labels", frames_exchanged=counts)


def _exchanged(ds: xr.Dataset, swapped: dict[str, np.ndarray], individual: int) -> xr.Dataset:
    """:func:`exchange_labels` without its provenance entry."""
    names = [str(k) for k in ds["keypoint"].values]
    pos = ds["position"].values.copy()
    conf = ds["confidence"].values.copy()
    for group in SWAP_GROUPS:
        swap = swapped.get("_".join(group))
        if swap is None or not swap.any():
            continue
        for li, ri in zip(*_group_pairs(names, group), strict=True):
            pos[swap, :, li, individual], pos[swap, :, ri, individual] = (
                pos[swap, :, ri, individual].copy(),
                pos[swap, :, li, individual].copy(),
            )
            conf[swap, li, individual], conf[swap, ri, individual] = (
                conf[swap, ri, individual].copy(),
                conf[swap, li, individual].copy(),
            )
    out = ds.copy()
    out["position"] = (ds["position"].dims, pos)
    out["confidence"] = (ds["confidence"].dims, conf)
    return out


def repair_swaps(
    ds: xr.Dataset,
    individual: int = 0,
    swap_start_probability: float = SWAP_START_PROBABILITY,
    swap_end_probability: float = SWAP_END_PROBABILITY,
) -> tuple[xr.Dataset, SwapReport]:
    """Detect and undo left/right label swaps, leg by leg, before any scoring (see :func:`detect_swaps`).

    The provenance entry logs the frames exchanged and the noise (pixels) each group's swaps had
    to stand out of.
    """
    names = [str(k) for k in ds["keypoint"].values]
    pos = ds["position"].values
    swapped: dict[str, np.ndarray] = {}
    noise: dict[str, list[float]] = {}
    for group in SWAP_GROUPS:
        lefts, rights = _group_pairs(names, group)
        if not lefts:
            continue
        left = pos[:, :, lefts, individual].transpose(0, 2, 1)
        right = pos[:, :, rights, individual].transpose(0, 2, 1)
        name = "_".join(group)
        swapped[name], scale = _swap_states(
            left, right, swap_start_probability, swap_end_probability, ACCELERATION_TAIL
        )
        noise[name] = [round(float(v), 2) for v in scale]
    report = {name: int(mask.sum()) for name, mask in swapped.items()}
    out = _exchanged(ds, swapped, individual)
    return (
        log_step(
            out,
            "repair_swaps",
            swap_start_probability=swap_start_probability,
            swap_end_probability=swap_end_probability,
            frames_swapped=report,
            noise_px=noise,
        ),
        SwapReport(report, swapped),
    )
