"""Plotly figures for the dashboard: pure functions of reports and comparisons."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

LEFT, RIGHT, GREY = "#f08c00", "#1f9bd1", "#888888"


#: A horizontal legend above the plot, right-aligned: below it, it covered the date axis's year labels.
LEGEND_ABOVE = {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1.0}


def weakness_points(history: Sequence[tuple[dt.date, dict[str, Any] | None]]) -> list[dict[str, Any]]:
    """Per clip: date, absolute hind asymmetry and its 95 % interval (None when not scored)."""
    out = []
    for date, report in history:
        if not report or not report["quality"]["usable"]:
            out.append({"date": date, "value": None, "low": None, "high": None})
            continue
        w = report["metrics"]["symmetry"].get("weakness_pct", {})
        v, ci = w.get("value"), w.get("ci95")
        if v is None or not ci:
            out.append({"date": date, "value": None, "low": None, "high": None})
            continue
        lo, hi = sorted((abs(ci[0]), abs(ci[1])))
        if ci[0] < 0 < ci[1]:
            lo = 0.0
        out.append({"date": date, "value": abs(v), "low": lo, "high": hi})
    return out


def baseline_band(points: list[dict[str, Any]], n_baseline: int = 3) -> tuple[float, float] | None:
    """The dog's own baseline: mean ± 2 SD of its first scored clips (needs 2 or more)."""
    vals = [p["value"] for p in points if p["value"] is not None][:n_baseline]
    if len(vals) < 2:
        return None
    m, sd = float(np.mean(vals)), float(np.std(vals, ddof=1))
    return m - 2 * sd, m + 2 * sd


def _band_and_series(fig: go.Figure, pts: list[dict[str, Any]], name: str, colour: str) -> list[dict[str, Any]]:
    """Add the dog's own baseline band and a series with 95 % error bars; return the scored points."""
    band = baseline_band(pts)
    if band and pts:
        x0, x1 = pts[0]["date"], pts[-1]["date"]
        fig.add_trace(
            go.Scatter(
                x=[x0, x1, x1, x0],
                y=[band[0], band[0], band[1], band[1]],
                fill="toself",
                fillcolor="rgba(120,120,120,0.15)",
                line={"width": 0},
                name="own baseline",
                hoverinfo="skip",
            )
        )
    scored = [p for p in pts if p["value"] is not None]
    fig.add_trace(
        go.Scatter(
            x=[p["date"] for p in scored],
            y=[p["value"] for p in scored],
            mode="lines+markers",
            name=name,
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [p["high"] - p["value"] for p in scored],
                "arrayminus": [p["value"] - p["low"] for p in scored],
            },
            line={"color": colour},
        )
    )
    return scored


def trend_chart(
    history: Sequence[tuple[dt.date, dict[str, Any] | None]], flagged_dates: Sequence[dt.date] = ()
) -> go.Figure:
    """Hind-leg asymmetry by week with intervals, the baseline band and flagged clips."""
    pts = weakness_points(history)
    fig = go.Figure()
    scored = _band_and_series(fig, pts, "asymmetry", RIGHT)
    flagged = [p for p in scored if p["date"] in set(flagged_dates)]
    if flagged:
        fig.add_trace(
            go.Scatter(
                x=[p["date"] for p in flagged],
                y=[p["value"] for p in flagged],
                mode="markers",
                marker={"symbol": "x", "size": 14, "color": "red"},
                name="flagged for vet",
            )
        )
    fig.update_layout(
        title="Hind-leg asymmetry by week (%, 95% interval)",
        height=320,
        margin={"t": 40, "b": 30},
        yaxis_title="%",
        legend=LEGEND_ABOVE,
    )
    return fig


def per_stride_chart(report: dict[str, Any]) -> go.Figure:
    """Signed weakness per stride: bars right-weaker up, left-weaker down, with the mean's interval."""
    w = report["metrics"]["symmetry"].get("weakness_pct", {})
    vals = list(w.get("per_stride", []))
    fig = go.Figure(
        go.Bar(
            x=list(range(1, len(vals) + 1)),
            y=vals,
            marker_color=[RIGHT if v > 0 else LEFT for v in vals],
            name="stride",
        )
    )
    if w.get("ci95") and w.get("value") is not None:
        fig.add_hrect(y0=w["ci95"][0], y1=w["ci95"][1], fillcolor="grey", opacity=0.2, line_width=0)
        fig.add_hline(y=w["value"], line_color="black")
    fig.update_layout(
        title="Per stride: + right hind weaker, − left hind weaker",
        height=300,
        xaxis_title="stride",
        yaxis_title="%",
        margin={"t": 40, "b": 30},
    )
    return fig


def phase_chart(report: dict[str, Any]) -> go.Figure:
    """Hind-limb phase per stride on a circle (0.5 alternating, 0/1 together)."""
    phases = report["metrics"]["bunny_hop"].get("per_stride_phase", [])
    fig = go.Figure(
        go.Scatterpolar(
            theta=[360 * p for p in phases], r=[1] * len(phases), mode="markers", marker={"color": RIGHT, "size": 9}
        )
    )
    fig.update_layout(
        title="Hind-limb phase (180° = alternating, 0° = together)",
        height=300,
        showlegend=False,
        polar={"radialaxis": {"visible": False}},
        margin={"t": 50, "b": 20},
    )
    return fig


def comparison_chart(comparison: dict[str, Any]) -> go.Figure:
    """Each metric's change with its 95 % interval, coloured by status."""
    colours = {"worse": "red", "better": "green", "unchanged": GREY, "uncertain": "#bbbbbb", "changed": "#7b61ff"}
    rows = [(k, m) for k, m in comparison["metrics"].items() if m.get("change") is not None]
    fig = go.Figure()
    for name, m in rows:
        ci = m.get("ci95") or [m["change"], m["change"]]
        fig.add_trace(
            go.Scatter(
                x=[m["change"]],
                y=[m.get("label", name)],
                mode="markers",
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": [ci[1] - m["change"]],
                    "arrayminus": [m["change"] - ci[0]],
                },
                marker={"color": colours.get(m["status"], GREY), "size": 11},
                name=m["status"],
                showlegend=False,
            )
        )
    fig.add_vline(x=0, line_color="black", line_width=1)
    fig.update_layout(
        title="Change (after − before) with 95% interval",
        height=60 + 45 * max(1, len(rows)),
        margin={"t": 40, "b": 30, "l": 10},
    )
    return fig


def thigh_index_chart(history: Sequence[tuple[dt.date, dict[str, Any] | None]]) -> go.Figure:
    """Thigh muscle index by week with 95 % intervals and the dog's own baseline band."""
    pts = []
    for date, report in history:
        block = (report or {}).get("metrics", {}).get("muscle", {})
        est = block.get("thigh_width_index") or {}
        ci = est.get("ci95")
        if block.get("available") and est.get("value") is not None and ci:
            pts.append({"date": date, "value": est["value"], "low": ci[0], "high": ci[1]})
    fig = go.Figure()
    _band_and_series(fig, pts, "thigh index", LEFT)
    fig.update_layout(
        title="Thigh muscle index by week (lower = thinner)",
        height=300,
        margin={"t": 40, "b": 30},
        legend=LEGEND_ABOVE,
    )
    return fig
