"""Hind-paw strike and lift-off, strides and gait type from cleaned lateral-view tracks.

Events use the coordinate method of Zeni et al. (2008), adapted to dogs: the
paw's forward position relative to the pelvis (tail base), in the walking
direction and in body lengths, peaks at paw strike and bottoms out at lift-off.
Being relative to the body, it is unaffected by a camera that pans to follow
the dog. Times are refined below the frame interval by a parabola through the
peak sample and its neighbours.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import xarray as xr
from scipy.ndimage import median_filter
from scipy.signal import find_peaks

from vision.clean import _runs, lowpass
from vision.tracks import keypoint_xy

HIND_LIMBS = ("left_hind", "right_hind")
FRONT_LIMBS = ("left_front", "right_front")
_PAW = {
    "left_hind": "left_hind_paw",
    "right_hind": "right_hind_paw",
    "left_front": "left_front_paw",
    "right_front": "right_front_paw",
}
_HOCK = {"left_hind": ("left_stifle", "left_hock"), "right_hind": ("right_stifle", "right_hock")}
#: Strikes of one paw closer than this share of the stride period are one strike (noise peaks).
MIN_PEAK_SPACING = 0.5
#: A stride is kept when its duration lies within these shares of the clip's stride period.
MIN_STRIDE_OF_PERIOD = 0.5
MAX_STRIDE_OF_PERIOD = 2.0
#: Plausible stance share of a stride at a walk or trot (a gallop goes down to about 0.2).
MIN_DUTY = 0.15
MAX_DUTY = 0.9
#: A stride with both hind legs together is a gallop or bound only with a stance this short or shorter
#: (as measured: paw-position extremes read a true gallop duty of 0.25 as about 0.4).
GALLOP_MAX_DUTY = 0.45
#: Event timing keeps the stride's frequencies up to this harmonic (see :func:`stride_band`).
EVENT_HARMONICS = 3.0


@dataclass(frozen=True)
class Stride:
    """One stride of one limb, strike to next strike (times in seconds)."""

    limb: str
    strike: float
    next_strike: float
    lift_off: float
    excursion_bl: float
    paw_lift_bl: float
    hock_rom_deg: float

    @property
    def duration(self) -> float:
        """Stride time."""
        return self.next_strike - self.strike

    @property
    def stance(self) -> float:
        """Stance time, strike to lift-off."""
        return self.lift_off - self.strike

    @property
    def duty_factor(self) -> float:
        """Stance time over stride time."""
        return self.stance / self.duration


@dataclass
class GaitEvents:
    """Events and strides of one clip.

    Attributes
    ----------
    time
        Frame times (s), shape ``(time,)``.
    direction
        Per-frame walking direction in the image: +1 to the right, -1 to the left, 0 unknown.
    lateral
        Per-frame mask of side-on frames (body axis mostly horizontal).
    body_length_px
        Median withers-to-tail-base length over lateral frames.
    relative
        Per limb, the paw's forward position relative to the tail base (body lengths).
    rejected
        Per limb, the strike-to-strike intervals not kept as strides: a duration outside
        ``MIN_STRIDE_OF_PERIOD``..``MAX_STRIDE_OF_PERIOD`` of the clip's stride period, not exactly
        one lift-off inside, a gap in the track, or a duty factor outside ``MIN_DUTY``..``MAX_DUTY``.
    """

    time: np.ndarray
    direction: np.ndarray
    lateral: np.ndarray
    body_length_px: float
    stride_period_s: float | None
    strikes: dict[str, np.ndarray] = field(default_factory=dict)
    lift_offs: dict[str, np.ndarray] = field(default_factory=dict)
    strides: dict[str, list[Stride]] = field(default_factory=dict)
    relative: dict[str, np.ndarray] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)

    def n_hind_strides(self) -> int:
        """Complete hind strides counted on the side with fewer."""
        return min(len(self.strides.get(limb, [])) for limb in HIND_LIMBS)


def near_side(direction: float) -> str | None:
    """The dog's side nearer the camera for a walking direction in the image.

    A dog walking to the right of the image (``direction > 0``) shows the camera its right
    side; walking to the left, its left side. ``None`` when the direction is unknown.
    """
    if direction > 0:
        return "right"
    if direction < 0:
        return "left"
    return None


def trunk_front(ds: xr.Dataset, individual: int = 0) -> np.ndarray:
    """Front trunk point, ``(time, 2)``: the withers, or the throat, or the elbows' midpoint.

    Some conventions (AP-10K) have no withers; the throat ("neck") stands in for it.
    """
    for name in ("withers", "throat"):
        xy = keypoint_xy(ds, name, individual)
        if np.isfinite(xy).all(axis=1).mean() >= 0.5:
            return xy
    elbows = np.stack([keypoint_xy(ds, "left_elbow", individual), keypoint_xy(ds, "right_elbow", individual)])
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(elbows, axis=0)


def body_axis(ds: xr.Dataset, individual: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame body vector front trunk - tail base (pixels, ``(time, 2)``) and its length."""
    v = trunk_front(ds, individual) - keypoint_xy(ds, "tail_base", individual)
    return v, np.hypot(v[:, 0], v[:, 1])


def walking_direction(ds: xr.Dataset, individual: int = 0, window_s: float = 0.5) -> np.ndarray:
    """Per-frame direction the dog faces in the image (+1 right, -1 left, 0 unknown)."""
    v, _ = body_axis(ds, individual)
    head = keypoint_xy(ds, "nose", individual)[:, 0] - keypoint_xy(ds, "tail_base", individual)[:, 0]
    dx = np.where(np.isfinite(v[:, 0]), v[:, 0], head)
    sign = np.sign(np.nan_to_num(dx, nan=0.0))
    fps = float(ds.attrs.get("fps", 30.0))
    size = max(1, int(round(window_s * fps)) | 1)
    return median_filter(sign, size=size, mode="nearest").astype(int)


def lateral_mask(ds: xr.Dataset, individual: int = 0, min_ratio: float = 0.6) -> np.ndarray:
    """Frames whose body axis is mostly horizontal (|dx| / length above ``min_ratio``)."""
    v, length = body_axis(ds, individual)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.abs(v[:, 0]) / length
    return np.nan_to_num(ratio, nan=0.0) >= min_ratio


def stride_period(left: np.ndarray, right: np.ndarray, fps: float) -> float | None:
    """Stride period (s) of the hind legs from both paws' relative positions together.

    The power spectra of the left paw, the right paw and their difference are summed over
    their finite runs, so a period seen in both legs outweighs noise in one. The difference
    carries the stride's fundamental twice as strongly at a walk or trot (the legs alternate),
    while a far leg that is only partly told apart from the near one adds power at half the
    period to each single track; a peak at half the period is kept only when it clearly
    outweighs the peak at the full period.

    Parameters
    ----------
    left, right
        Shape ``(time,)``: each hind paw's forward position relative to the pelvis, body lengths,
        NaN where unknown, on a uniform grid at ``fps``.
    """
    found = (_band_spectrum(_detrended(sig, fps), fps) for sig in (left, right, left - right))
    spectra = [sp for sp in found if sp is not None]
    if not spectra:
        return None
    f = spectra[0][0]
    power = np.sum([np.interp(f, fi, pi) for fi, pi in spectra], axis=0)
    band = (f >= 0.5) & (f <= 4.0)
    if not band.any() or not np.any(power[band] > 0):
        return None
    i = int(np.argmax(np.where(band, power, 0)))
    best = f[i]
    half = best / 2
    if half >= 0.5:
        j = int(np.argmin(np.abs(f - half)))
        lo, hi = max(0, j - 2), min(len(f), j + 3)
        if power[lo:hi].max() >= 0.5 * power[i]:
            best = f[lo + int(np.argmax(power[lo:hi]))]
    return float(1.0 / best)


def stride_band(signal: np.ndarray, fps: float, period_s: float) -> np.ndarray:
    """A paw's relative position kept to the stride's own frequencies, for event timing.

    Low-passed at ``EVENT_HARMONICS`` times the stride frequency (never above 6 Hz), which keeps
    the stance/swing shape (duty factor) but drops the frame-to-frame jitter that makes extra
    peaks, and with its slow drift over ``2 * period_s`` removed (camera tilt, a dog turning).
    Both paws are filtered alike, so timing differences between them are not biased.

    Parameters
    ----------
    signal
        Shape ``(time,)``, body lengths, NaN where unknown; uniform grid at ``fps``.
    period_s
        The clip's stride period (:func:`stride_period`).
    """
    cutoff = min(6.0, EVENT_HARMONICS / period_s)
    return _detrended(lowpass(signal, fps, cutoff), fps, 2 * period_s)


def _detrended(signal: np.ndarray, fps: float, window_s: float = 2.0) -> np.ndarray:
    """``signal`` minus its moving mean over ``window_s``, per finite run (a shorter run: minus its mean); NaN kept."""
    out = np.array(signal, dtype=np.float64, copy=True)
    w = max(3, int(round(window_s * fps)) | 1)
    for a, b in _runs(np.isfinite(out)):
        seg = out[a:b]
        if seg.size >= w:
            pad = np.pad(seg, (w // 2, w // 2), mode="reflect")
            out[a:b] = seg - np.convolve(pad, np.ones(w) / w, mode="valid")
        else:
            out[a:b] = seg - seg.mean()
    return out


def _band_spectrum(signal: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Power spectrum (frequency grid 0.02 Hz) summed over finite runs of at least 1 s."""
    n = int(2 ** np.ceil(np.log2(fps / 0.02)))
    f = np.fft.rfftfreq(n, 1 / fps)
    total = np.zeros(f.size)
    used = False
    for a, b in _runs(np.isfinite(signal)):
        seg = signal[a:b]
        if seg.size < max(8, int(fps)):
            continue
        seg = seg - seg.mean()
        total += np.abs(np.fft.rfft(seg * np.hanning(seg.size), n)) ** 2
        used = True
    return (f, total) if used else None


def _refine(y: np.ndarray, i: int) -> float:
    """Sub-sample position of an extremum at index ``i`` by a parabola through 3 samples."""
    if i <= 0 or i >= len(y) - 1 or not np.all(np.isfinite(y[i - 1 : i + 2])):
        return float(i)
    den = y[i - 1] - 2 * y[i] + y[i + 1]
    if den == 0:
        return float(i)
    return float(i + np.clip(0.5 * (y[i - 1] - y[i + 1]) / den, -0.5, 0.5))


def _extrema(rel: np.ndarray, t: np.ndarray, period_frames: float, sign: int) -> np.ndarray:
    """Times of maxima (sign=+1) or minima (sign=-1) of ``rel``, per finite run."""
    out: list[float] = []
    idx = np.arange(len(t))
    for a, b in _runs(np.isfinite(rel)):
        seg = sign * rel[a:b]
        if seg.size < 5:
            continue
        spread = np.percentile(seg, 95) - np.percentile(seg, 5)
        peaks, _ = find_peaks(seg, distance=max(2, int(MIN_PEAK_SPACING * period_frames)), prominence=0.3 * spread)
        for p in peaks:
            pos = a + _refine(seg, int(p))
            out.append(float(np.interp(pos, idx, t)))
    return np.asarray(out)


def _angle_deg(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Angle at ``b`` between segments b->a and b->c, degrees, shape ``(time,)``."""
    u, v = a - b, c - b
    cos = np.sum(u * v, axis=1) / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1))
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def detect_events(ds: xr.Dataset, individual: int = 0) -> GaitEvents:
    """Find paw strikes, lift-offs and strides of all four limbs in a lateral-view clip.

    ``ds`` should be cleaned (low confidence masked, swaps repaired, smoothed).
    """
    t = ds["time"].values.astype(np.float64)
    fps = float(ds.attrs.get("fps", 30.0))
    direction = walking_direction(ds, individual)
    lateral = lateral_mask(ds, individual) & (direction != 0)
    _, length = body_axis(ds, individual)
    lat_len = length[lateral & np.isfinite(length)]
    L = float(np.median(lat_len)) if lat_len.size else float(np.nanmedian(length) if np.isfinite(length).any() else 0)
    events = GaitEvents(time=t, direction=direction, lateral=lateral, body_length_px=L, stride_period_s=None)
    if not np.isfinite(L) or L <= 0:
        return events
    tail = keypoint_xy(ds, "tail_base", individual)
    withers = trunk_front(ds, individual)
    for limb, paw_name in _PAW.items():
        paw = keypoint_xy(ds, paw_name, individual)
        ref = tail if "hind" in limb else withers
        rel = direction * (paw[:, 0] - ref[:, 0]) / L
        rel = np.where(lateral, rel, np.nan)
        events.relative[limb] = rel
    period = stride_period(events.relative["left_hind"], events.relative["right_hind"], fps)
    events.stride_period_s = period
    if period is None:
        return events
    pf = period * fps
    for limb, paw_name in _PAW.items():
        rel = stride_band(events.relative[limb], fps, period)
        events.relative[limb] = rel
        strikes = _extrema(rel, t, pf, +1)
        lifts = _extrema(rel, t, pf, -1)
        events.strikes[limb] = strikes
        events.lift_offs[limb] = lifts
        paw = keypoint_xy(ds, paw_name, individual)
        angle = None
        if limb in _HOCK:
            stifle = keypoint_xy(ds, _HOCK[limb][0], individual)
            hock = keypoint_xy(ds, _HOCK[limb][1], individual)
            angle = _angle_deg(stifle, hock, paw)
        strides: list[Stride] = []
        for s0, s1 in zip(strikes[:-1], strikes[1:], strict=True):
            dur = s1 - s0
            if not (MIN_STRIDE_OF_PERIOD * period <= dur <= MAX_STRIDE_OF_PERIOD * period):
                events.rejected[limb] = events.rejected.get(limb, 0) + 1
                continue
            inside = lifts[(lifts > s0) & (lifts < s1)]
            sel = (t >= s0) & (t <= s1)
            if inside.size != 1 or not np.all(np.isfinite(rel[sel])) or sel.sum() < 4:
                events.rejected[limb] = events.rejected.get(limb, 0) + 1
                continue
            lo = float(inside[0])
            if not (MIN_DUTY <= (lo - s0) / dur <= MAX_DUTY):
                events.rejected[limb] = events.rejected.get(limb, 0) + 1
                continue
            excursion = float(np.interp(s0, t, rel) - np.interp(lo, t, rel))
            py = paw[sel, 1]
            lift_bl = float((np.nanpercentile(py, 95) - np.nanmin(py)) / L)
            rom = float(np.nanmax(angle[sel]) - np.nanmin(angle[sel])) if angle is not None else float("nan")
            strides.append(Stride(limb, float(s0), float(s1), lo, excursion, lift_bl, rom))
        events.strides[limb] = strides
    return events


def phase_within(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Phase (cycles, 0..1) of each ``other`` strike within the ``reference`` limb's strides.

    For stride k of the reference limb, the first strike of the other limb at or
    after its start is used: ``((t_other - t_k) / T_k) mod 1``. Returns one value per
    reference stride (NaN where the other limb has no strike in that stride).
    """
    out = np.full(max(len(reference) - 1, 0), np.nan)
    for k in range(len(reference) - 1):
        s0, s1 = reference[k], reference[k + 1]
        period = s1 - s0
        cand = other[(other >= s0 - 0.1 * period) & (other < s1 + 0.1 * period)]
        if cand.size:
            inside = cand[(cand >= s0) & (cand < s1)]
            pick = inside[0] if inside.size else cand[np.argmin(np.minimum(abs(cand - s0), abs(cand - s1)))]
            out[k] = ((pick - s0) / period) % 1.0
    return out


def classify_gait(duty: float, hind_phase: float | None, front_phase: float | None) -> str:
    """Gait of a stride from hind duty factor and hind coupling.

    A gallop or bound has both hind legs moving together *and* a short stance (duty factor at
    most :data:`GALLOP_MAX_DUTY`); hind legs together at a walking duty factor is the bunny-hop
    pattern (or a far leg not told apart from the near one), which is judged as a walk or trot.
    The front legs' phase is not used: side-on, the model often places both front paws on the
    near one, which reads as "together" at any gait.
    """
    del front_phase  # kept in the signature for callers; see the docstring

    together = hind_phase is not None and np.isfinite(hind_phase) and min(hind_phase % 1.0, 1 - hind_phase % 1.0) < 0.2
    if together and duty <= GALLOP_MAX_DUTY:
        return "gallop"
    return "walk" if duty > 0.5 else "trot"
