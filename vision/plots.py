"""Matplotlib figures of a report, for the PDF and for saving as images.

Each builder is a pure function of the report dict and returns a Figure.
"""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def _estimate(report: dict[str, Any], *path: str) -> dict[str, Any]:
    node: Any = report.get("metrics", {})
    for key in path:
        node = node.get(key, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def per_stride_figure(report: dict[str, Any]) -> Figure:
    """Per-stride hind-leg weakness (positive = right weaker) with the mean and its 95 % interval."""
    est = _estimate(report, "symmetry", "weakness_pct")
    vals = np.asarray(est.get("per_stride", []), dtype=float)
    fig, ax = plt.subplots(figsize=(6, 3), dpi=100)
    if vals.size:
        ax.bar(np.arange(1, vals.size + 1), vals, color=np.where(vals > 0, "#1f9bd1", "#f08c00"))
        if est.get("value") is not None and est.get("ci95"):
            lo, hi = est["ci95"]
            ax.axhspan(lo, hi, color="grey", alpha=0.25, label="95% interval of the mean")
            ax.axhline(est["value"], color="black", lw=1, label="mean")
            ax.legend(loc="upper right", fontsize=7)
    else:
        ax.text(0.5, 0.5, "no strides measured", ha="center", va="center", transform=ax.transAxes)
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xlabel("stride")
    ax.set_ylabel("weakness (%)\n+ right / − left")
    ax.set_title("Hind-leg asymmetry per stride")
    fig.tight_layout()
    return fig


def phase_figure(report: dict[str, Any]) -> Figure:
    """Hind-limb phase per stride on a circle (0.5 = alternating, 0/1 = together)."""
    bh = _estimate(report, "bunny_hop")
    phases = np.asarray(bh.get("per_stride_phase", []), dtype=float)
    fig = plt.figure(figsize=(3.2, 3.2), dpi=100)
    ax = fig.add_subplot(projection="polar")
    if phases.size:
        ax.scatter(2 * np.pi * phases, np.ones_like(phases), color="#1f9bd1", alpha=0.7)
        if bh.get("hind_phase") is not None:
            r = bh.get("phase_concentration", 0)
            ax.annotate("", xy=(2 * np.pi * bh["hind_phase"], r), xytext=(0, 0), arrowprops={"arrowstyle": "->"})
    ax.set_yticks([])
    ax.set_xticks(2 * np.pi * np.array([0, 0.25, 0.5, 0.75]))
    ax.set_xticklabels(["0 together", "0.25", "0.5 alternate", "0.75"], fontsize=7)
    ax.set_title("Hind-limb phase", fontsize=9)
    fig.tight_layout()
    return fig


def stride_time_figure(report: dict[str, Any]) -> Figure:
    """Hind stride times in order, to show stride-to-stride variability."""
    est = _estimate(report, "wobble", "ataxia", "stride_time_cv_pct")
    vals = np.asarray(est.get("per_stride", []), dtype=float)
    fig, ax = plt.subplots(figsize=(6, 2.6), dpi=100)
    if vals.size:
        ax.plot(np.arange(1, vals.size + 1), vals, "o-", color="#444")
        ax.set_title(f"Stride times (CV {est.get('value', 0) or 0:.1f}%)")
    else:
        ax.text(0.5, 0.5, "no strides measured", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("stride")
    ax.set_ylabel("s")
    fig.tight_layout()
    return fig


FIGURES = {"asymmetry": per_stride_figure, "phase": phase_figure, "stride_times": stride_time_figure}
