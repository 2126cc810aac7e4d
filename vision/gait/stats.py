"""Per-stride estimates with 95 % intervals and an evidence strength.

Evidence follows the convention of IMU lameness systems (Equinosis): the
stride-to-stride standard deviation relative to the size of the mean effect;
below 50 % is strong, 50–120 % moderate, above 120 % weak.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats as _stats

MIN_STRIDES = 3


@dataclass(frozen=True)
class Estimate:
    """A metric's per-stride values and their summary.

    Attributes
    ----------
    value
        Mean over strides (None when there are fewer than :data:`MIN_STRIDES`).
    ci95
        Student-t 95 % interval of the mean, ``(low, high)``.
    sd
        Stride-to-stride standard deviation.
    evidence
        ``strong``, ``moderate``, ``weak`` or ``insufficient``.
    per_stride
        The finite per-stride values, in time order.
    """

    value: float | None
    ci95: tuple[float, float] | None
    sd: float | None
    n: int
    evidence: str
    unit: str = ""
    per_stride: tuple[float, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (rounded)."""
        return {
            "value": _r(self.value),
            "ci95": [_r(self.ci95[0]), _r(self.ci95[1])] if self.ci95 else None,
            "sd": _r(self.sd),
            "n": self.n,
            "evidence": self.evidence,
            "unit": self.unit,
            "per_stride": [_r(v) for v in self.per_stride],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Estimate:
        """Inverse of :meth:`to_dict`; an absent metric becomes an empty estimate."""
        if not d:
            return empty()
        ci = d.get("ci95")
        return cls(
            value=d.get("value"),
            ci95=(float(ci[0]), float(ci[1])) if ci else None,
            sd=d.get("sd"),
            n=int(d.get("n", 0)),
            evidence=str(d.get("evidence", "insufficient")),
            unit=str(d.get("unit", "")),
            per_stride=tuple(float(v) for v in d.get("per_stride", []) if v is not None),
        )


def _r(v: float | None, nd: int = 4) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), nd)


def empty(unit: str = "") -> Estimate:
    """An estimate with no data."""
    return Estimate(None, None, None, 0, "insufficient", unit, ())


def evidence_strength(mean: float, sd: float, n: int) -> str:
    """Equinosis-style strength of the evidence for a mean effect."""
    if n < MIN_STRIDES or not np.isfinite(mean) or not np.isfinite(sd):
        return "insufficient"
    if abs(mean) < 1e-12:
        return "weak"
    ratio = sd / abs(mean)
    if ratio < 0.5:
        return "strong"
    if ratio <= 1.2:
        return "moderate"
    return "weak"


def estimate(values: np.ndarray | list[float], unit: str = "") -> Estimate:
    """Summarise per-stride values: mean, t-interval, SD and evidence strength."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    n = int(v.size)
    if n < MIN_STRIDES:
        return Estimate(None, None, None, n, "insufficient", unit, tuple(v.tolist()))
    mean = float(v.mean())
    sd = float(v.std(ddof=1))
    half = float(_stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n))
    return Estimate(mean, (mean - half, mean + half), sd, n, evidence_strength(mean, sd, n), unit, tuple(v.tolist()))


def symmetry_index(right: np.ndarray, left: np.ndarray) -> np.ndarray:
    """SI = 100 (R - L) / (0.5 (R + L)) elementwise; NaN where the mean is not positive."""
    r = np.asarray(right, dtype=np.float64)
    l_ = np.asarray(left, dtype=np.float64)
    mean = 0.5 * (r + l_)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mean > 0, 100.0 * (r - l_) / mean, np.nan)


def circular_mean_phase(phases: np.ndarray) -> tuple[float | None, float]:
    """Circular mean (in cycles, 0..1) and mean resultant length R of phases in cycles."""
    p = np.asarray(phases, dtype=np.float64)
    p = p[np.isfinite(p)]
    if p.size == 0:
        return None, 0.0
    z = np.exp(2j * np.pi * p).mean()
    return float((np.angle(z) / (2 * np.pi)) % 1.0), float(np.abs(z))


def circular_ci95(phases: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float] | None:
    """Bootstrap 95 % interval of the circular mean phase, unwrapped around the mean (cycles)."""
    p = np.asarray(phases, dtype=np.float64)
    p = p[np.isfinite(p)]
    if p.size < MIN_STRIDES:
        return None
    mean, _ = circular_mean_phase(p)
    assert mean is not None
    rng = np.random.default_rng(seed)
    samples = p[rng.integers(0, p.size, (n_boot, p.size))]
    z = np.exp(2j * np.pi * samples).mean(axis=1)
    boot = np.angle(z) / (2 * np.pi)
    delta = (boot - mean + 0.5) % 1.0 - 0.5
    lo, hi = np.percentile(delta, [2.5, 97.5])
    return float(mean + lo), float(mean + hi)
