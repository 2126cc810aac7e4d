"""One-click vet PDF: dog, clips, metrics with intervals, trend plots and the vet's notes (fpdf2 + matplotlib)."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from fpdf import FPDF  # noqa: E402

from vision.plots import per_stride_figure  # noqa: E402


def _latin1(text: str) -> str:
    """Fpdf's core fonts are Latin-1: replace what they cannot show."""
    table = {"–": "-", "—": "-", "−": "-", "’": "'", "“": '"', "”": '"', "±": "+/-", "…": "..."}
    for a, b in table.items():
        text = text.replace(a, b)
    return text.encode("latin-1", "replace").decode("latin-1")


def trend_figure(points: Sequence[tuple[dt.date, float | None, tuple[float, float] | None]], title: str):
    """Metric over weeks with 95 % intervals."""
    fig, ax = plt.subplots(figsize=(6.5, 2.6), dpi=110)
    xs = [p[0] for p in points if p[1] is not None]
    ys = [p[1] for p in points if p[1] is not None]
    if xs:
        lo = [p[1] - p[2][0] if p[2] else 0 for p in points if p[1] is not None]
        hi = [p[2][1] - p[1] if p[2] else 0 for p in points if p[1] is not None]
        ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o-", color="#1f77b4", capsize=3)  # type: ignore[arg-type]
        base = ys[0]
        ax.axhline(base, color="grey", ls="--", lw=1, label="first clip")
        ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def _png(fig) -> io.BytesIO:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    buf.seek(0)
    return buf


def vet_report_pdf(
    *,
    dog: dict[str, Any],
    before: dict[str, Any],
    after: dict[str, Any],
    comparison: dict[str, Any],
    history: Sequence[tuple[dt.date, dict[str, Any] | None]],
    vet_name: str,
    notes: str,
    status: str,
) -> bytes:
    """Build the PDF and return its bytes.

    ``before`` and ``after`` are dicts with ``date`` and ``report``; ``history`` the
    dog's (date, report) pairs for the trend plots.
    """
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _latin1(f"Hindsight gait report: {dog['name']}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.multi_cell(
        0,
        5,
        new_x="LMARGIN",
        new_y="NEXT",
        text=_latin1(
            f"Breed: {dog.get('breed') or '-'}   Born: {dog.get('birth_date') or '-'}   "
            f"Weight: {dog.get('weight_kg') or '-'} kg\n"
            f"Compared: {before['date']} (before) with {after['date']} (after)\n"
            f"Reviewed by {vet_name}; status: {status.replace('_', ' ')}; generated {dt.date.today()}"
        ),
    )
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, "Changes beyond the clips' own stride-to-stride noise", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 9)
    widths = (70, 24, 24, 24, 30, 18)
    for w, h in zip(widths, ("metric", "before", "after", "change", "95% interval", "status"), strict=True):
        pdf.cell(w, 6, h, border=1)
    pdf.ln()
    pdf.set_font("Helvetica", "", 9)
    for m in comparison["metrics"].values():
        ci = m.get("ci95")
        row = (
            m.get("label", ""),
            "-" if m.get("before") is None else f"{m['before']:.3g}",
            "-" if m.get("after") is None else f"{m['after']:.3g}",
            "-" if m.get("change") is None else f"{m['change']:+.3g}",
            "-" if not ci else f"{ci[0]:+.3g} .. {ci[1]:+.3g}",
            m.get("status", ""),
        )
        for w, text in zip(widths, row, strict=True):
            pdf.cell(w, 6, _latin1(str(text))[:48], border=1)
        pdf.ln()
    pdf.ln(2)
    for note in comparison.get("notes", []):
        pdf.multi_cell(0, 5, new_x="LMARGIN", new_y="NEXT", text=_latin1(f"Note: {note}"))
    for label, clip in (("Before", before), ("After", after)):
        r = clip["report"]
        q = r["quality"]
        sym = r["metrics"]["symmetry"]
        version = (r.get("source") or {}).get("model_version")
        tracked = f", keypoint model {version}" if version else ""
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(
            0,
            6,
            _latin1(
                f"{label} ({clip['date']}): usable={q['usable']}, view={q['view']}, hind strides={q['hind_strides']}"
                + tracked
            ),
            new_x="LMARGIN",
            new_y="NEXT",
        )
        pdf.set_font("Helvetica", "", 9)
        pdf.multi_cell(
            0,
            5,
            new_x="LMARGIN",
            new_y="NEXT",
            text=_latin1(
                f"Hind asymmetry {sym.get('hind_asymmetry_pct')}% "
                f"(weaker side: {sym.get('weaker_side') or 'none beyond noise'}); "
                f"hind phase {r['metrics']['bunny_hop'].get('hind_phase')}; "
                f"tremor {r['metrics']['wobble'].get('tremor_hz') or 'none'}"
            ),
        )
        mus = r["metrics"].get("muscle", {})
        if mus.get("available"):
            pdf.multi_cell(
                0,
                5,
                new_x="LMARGIN",
                new_y="NEXT",
                text=_latin1(
                    f"Muscle ({mus['view']}): thigh index {mus['thigh_width_index']['value']}, "
                    f"asymmetry {mus.get('thigh_asymmetry_pct')}% "
                    f"(thinner: {mus.get('weaker_side') or 'none beyond noise'}), "
                    f"stride CV {mus.get('repeatability', {}).get('thigh_cv_pct')}%"
                ),
            )
        for line in q.get("reasons", []):
            pdf.multi_cell(0, 5, new_x="LMARGIN", new_y="NEXT", text=_latin1(f"  - {line}"))
    points = []
    for date, rep in history:
        w = rep["metrics"]["symmetry"].get("weakness_pct", {}) if rep and rep["quality"]["usable"] else {}
        v = w.get("value")
        ci = w.get("ci95")
        points.append(
            (
                date,
                abs(v) if v is not None else None,
                (min(abs(ci[0]), abs(ci[1])) if ci[0] * ci[1] > 0 else 0.0, max(abs(ci[0]), abs(ci[1])))
                if ci
                else None,
            )
        )
    pdf.image(_png(trend_figure(points, "Hind-leg asymmetry (%) by week")), w=170)
    pdf.image(_png(per_stride_figure(after["report"])), w=150)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 8, "Vet notes", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.multi_cell(0, 5, new_x="LMARGIN", new_y="NEXT", text=_latin1(notes or "(none)"))
    pdf.ln(3)
    pdf.set_font("Helvetica", "I", 8)
    pdf.multi_cell(
        0,
        4,
        new_x="LMARGIN",
        new_y="NEXT",
        text=_latin1(
            "Hindsight measures gait from phone video to support a veterinary assessment; it does not diagnose. "
            "Changes are flagged only when larger than the stride-to-stride noise of both clips."
        ),
    )
    return bytes(pdf.output())
