"""Wobble: ataxic variability of the hind strides and hind-limb tremor.

Ataxia shows as higher stride-to-stride variability rather than asymmetry
(Front Vet Sci 2023, 10.3389/fvets.2023.1183755); normal dogs already vary by a
coefficient of variation of 20–28 % on a pressure walkway (Fahie et al. 2018), so
a single clip is only flagged above that range, and change is judged against the
dog's own baseline.

Tremor is measured on unsmoothed hind-limb keypoints relative to the pelvis.
The gait's own periodic motion is removed by subtracting the phase-averaged
stride waveform; the residual's spectrum (Welch) is searched from 3 Hz up to the
Nyquist frequency for a narrow peak. Video can only see tremor below fps / 2.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from scipy.signal import welch

from vision.clean import _runs
from vision.gait.events import GaitEvents
from vision.gait.stats import MIN_STRIDES, Estimate
from vision.tracks import keypoint_xy

TREMOR_MIN_HZ = 3.0
ORTHOSTATIC_TREMOR_HZ = 12.0
ORTHOSTATIC_MIN_FPS = 59.0  # > 12 Hz (often 13-16 Hz) needs about 60 fps to be seen clearly
TREMOR_PEAK_RATIO = 4.0
TREMOR_LOCAL_RATIO = 3.5
ATAXIA_CV_PCT = 30.0
_TREMOR_POINTS = ("stifle", "hock", "hind_paw")


def cv_estimate(values: np.ndarray, unit: str = "%") -> Estimate:
    """Coefficient of variation (percent) of per-stride values.

    The per-stride entries are the raw values (so that a comparison can resample
    them); the value is the CV with a bootstrap 95 % interval and ``sd`` its
    bootstrap standard error.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < MIN_STRIDES or v.mean() <= 0:
        return Estimate(None, None, None, int(v.size), "insufficient", unit, ())
    cv = 100 * v.std(ddof=1) / v.mean()
    rng = np.random.default_rng(0)
    boot = v[rng.integers(0, v.size, (2000, v.size))]
    cvs = 100 * boot.std(axis=1, ddof=1) / boot.mean(axis=1)
    lo, hi = np.percentile(cvs, [2.5, 97.5])
    return Estimate(float(cv), (float(lo), float(hi)), float(np.std(cvs)), int(v.size), "n/a", unit, tuple(v.tolist()))


def _per_leg_normalised(values: dict[str, list[float]]) -> np.ndarray:
    """Each leg's per-stride values divided by that leg's own mean, pooled.

    The near and far leg are seen differently side-on (the far leg's excursion reads smaller),
    so pooling raw values would count that difference as stride-to-stride variability.
    """
    out: list[float] = []
    for v in values.values():
        a = np.asarray(v, dtype=np.float64)
        a = a[np.isfinite(a)]
        if a.size and a.mean() > 0:
            out += (a / a.mean()).tolist()
    return np.asarray(out)


def ataxia_metrics(events: GaitEvents) -> dict[str, Any]:
    """Stride-to-stride variability of hind stride time and stride length (excursion).

    Only the strides that :func:`~vision.gait.events.detect_events` kept are used (plausible
    duration and duty factor); each leg is normalised by its own mean before pooling. The flag
    is raised only when the lower end of a CV's 95 % interval is above :data:`ATAXIA_CV_PCT`,
    so that measurement noise alone never reads as wobble; it is None with fewer than
    ``2 * MIN_STRIDES`` strides.
    """
    times = {limb: [s.duration for s in events.strides.get(limb, [])] for limb in ("left_hind", "right_hind")}
    lengths = {limb: [s.excursion_bl for s in events.strides.get(limb, [])] for limb in ("left_hind", "right_hind")}
    t_cv = cv_estimate(_per_leg_normalised(times))
    l_cv = cv_estimate(_per_leg_normalised(lengths))
    flag: bool | None = None
    if t_cv.ci95 is not None and l_cv.ci95 is not None and t_cv.n >= 2 * MIN_STRIDES:
        flag = bool(max(t_cv.ci95[0], l_cv.ci95[0]) > ATAXIA_CV_PCT)
    kept = sum(len(v) for v in times.values())
    rejected = sum(events.rejected.get(limb, 0) for limb in ("left_hind", "right_hind"))
    return {
        "stride_time_cv_pct": t_cv.to_dict(),
        "stride_length_cv_pct": l_cv.to_dict(),
        "ataxia_flag": flag,
        "strides_kept": kept,
        "strides_rejected": rejected,
    }


def _stride_template_residual(
    signal: np.ndarray, t: np.ndarray, strides: list[tuple[float, float]], bins: int = 50
) -> np.ndarray:
    """Signal minus its phase-averaged stride waveform (NaN outside validated strides).

    With no strides (a dog standing still) the signal minus its mean is returned.
    """
    out = np.full(signal.shape, np.nan)
    if len(strides) < 2:
        return signal - np.nanmean(signal) if np.isfinite(signal).any() else out
    phase = np.full(t.shape, np.nan)
    for s0, s1 in strides:
        sel = (t >= s0) & (t < s1)
        phase[sel] = (t[sel] - s0) / (s1 - s0)
    ok = np.isfinite(phase) & np.isfinite(signal)
    if ok.sum() < bins:
        return out
    idx = np.minimum((phase[ok] * bins).astype(int), bins - 1)
    sums = np.bincount(idx, weights=signal[ok], minlength=bins)
    counts = np.bincount(idx, minlength=bins)
    template = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    centres = (np.arange(bins) + 0.5) / bins
    good = np.isfinite(template)
    wrapped_x = np.concatenate([centres[good] - 1, centres[good], centres[good] + 1])
    wrapped_y = np.tile(template[good], 3)
    out[ok] = signal[ok] - np.interp(phase[ok], wrapped_x, wrapped_y)
    return out


def _psd(residual: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Welch spectrum averaged over finite runs of at least 1.5 s; frequency grid 0.05 Hz."""
    nper = int(round(1.5 * fps))
    nfft = int(2 ** np.ceil(np.log2(fps / 0.05)))
    total, count = None, 0
    freqs = None
    for a, b in _runs(np.isfinite(residual)):
        seg = residual[a:b]
        if seg.size < nper:
            continue
        f, p = welch(seg, fs=fps, nperseg=min(seg.size, 2 * nper), nfft=max(nfft, seg.size), detrend="linear")
        if freqs is None:
            freqs = np.arange(0, fps / 2 + 1e-9, fps / max(nfft, 1))
        pi = np.interp(freqs, f, p)
        total = pi * seg.size if total is None else total + pi * seg.size
        count += seg.size
    if total is None or freqs is None:
        return None
    return freqs, total / count, count


def tremor_metrics(raw: xr.Dataset, events: GaitEvents, individual: int = 0) -> dict[str, Any]:
    """Dominant hind-limb oscillation frequency from 3 Hz up to the Nyquist limit.

    ``raw`` are tracks cleaned but not smoothed (smoothing would remove tremor),
    on a uniform time grid. Returns ``tremor_hz`` (None when no clear peak),
    ``peak_ratio`` (peak power over the band's median), ``band_power_pct_bl2``,
    ``nyquist_hz``, ``can_resolve_orthostatic`` and ``flag``.
    """
    fps = float(raw.attrs.get("fps", 30.0))
    t = raw["time"].values.astype(np.float64)
    nyquist = fps / 2
    L = events.body_length_px
    note = None
    if fps < ORTHOSTATIC_MIN_FPS:
        note = (
            f"At {fps:.0f} fps video can only see tremor below {nyquist:.0f} Hz; orthostatic tremor "
            f"(> {ORTHOSTATIC_TREMOR_HZ:.0f} Hz) needs at least 60 fps — slow motion (120/240 fps) is better."
        )
    base = {
        "nyquist_hz": round(nyquist, 2),
        "can_resolve_orthostatic": bool(fps >= ORTHOSTATIC_MIN_FPS),
        "note": note,
    }
    if not L or nyquist <= TREMOR_MIN_HZ + 0.5:
        return {**base, "tremor_hz": None, "peak_ratio": None, "band_power_pct_bl2": None, "flag": None}
    tail = keypoint_xy(raw, "tail_base", individual)
    spectra = []
    freqs = None
    for side in ("left", "right"):
        strides = [(s.strike, s.next_strike) for s in events.strides.get(f"{side}_hind", [])]
        for point in _TREMOR_POINTS:
            xy = (keypoint_xy(raw, f"{side}_{point}", individual) - tail) / L * 100  # percent body length
            for axis in (0, 1):
                res = _stride_template_residual(xy[:, axis], t, strides)
                spec = _psd(res, fps)
                if spec is None:
                    continue
                freqs, p, _ = spec
                spectra.append(p)
    if not spectra or freqs is None:
        return {**base, "tremor_hz": None, "peak_ratio": None, "band_power_pct_bl2": None, "flag": None}
    psd = np.mean(spectra, axis=0)
    band = (freqs >= TREMOR_MIN_HZ) & (freqs <= nyquist - 0.25)
    fb, pb = freqs[band], psd[band]
    i = int(np.argmax(pb))
    floor = float(np.median(pb))
    ratio = float(pb[i] / floor) if floor > 0 else float("inf")
    peak_hz = float(fb[i])
    if 0 < i < len(pb) - 1:
        den = np.log(pb[i - 1]) - 2 * np.log(pb[i]) + np.log(pb[i + 1])
        if den != 0:
            peak_hz += float(0.5 * (np.log(pb[i - 1]) - np.log(pb[i + 1])) / den) * (fb[1] - fb[0])
    distance = np.abs(fb - fb[i])
    near = distance <= 0.3
    # Background: a power law fitted to the band outside the peak (gait leakage falls steeply with f).
    outside = distance > 0.5
    if outside.sum() >= 4:
        coef = np.polyfit(np.log(fb[outside]), np.log(pb[outside]), 1)
        local = float(pb[i] / np.exp(np.polyval(coef, np.log(fb[i]))))
    else:
        local = ratio
    concentration = float(pb[near].sum() / pb[distance <= 1.5].sum())
    df = fb[1] - fb[0]
    band_power = float(np.sum(pb[distance <= 0.75]) * df)
    # A tremor is a sustained oscillation: a narrow peak standing above the whole band and
    # above its own neighbourhood (leakage from irregular strides is broad and low).
    found = ratio >= TREMOR_PEAK_RATIO and local >= TREMOR_LOCAL_RATIO and concentration >= 0.4
    return {
        **base,
        "tremor_hz": round(peak_hz, 3) if found else None,
        "peak_hz": round(peak_hz, 3),
        "peak_ratio": round(ratio, 2),
        "local_ratio": round(local, 2),
        "band_power_pct_bl2": round(band_power, 5),
        "flag": bool(found),
    }


def wobble_metrics(raw: xr.Dataset, events: GaitEvents, individual: int = 0) -> dict[str, Any]:
    """Wobble block: ataxia variability, tremor, and the combined ``flag``."""
    ataxia = ataxia_metrics(events)
    tremor = tremor_metrics(raw, events, individual)
    flags = [f for f in (ataxia["ataxia_flag"], tremor["flag"]) if f is not None]
    return {
        "tremor_hz": tremor["tremor_hz"],
        "flag": (any(flags) if flags else None),
        "ataxia": ataxia,
        "tremor": tremor,
    }
