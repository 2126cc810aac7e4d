"""One-click vet PDF: dog, clips, metrics with intervals, trend plots and the vet's notes (fpdf2 + matplotlib)."""

from __future__ import annotations

import datetime as dt
import io
import math
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from fpdf import FPDF  # noqa: E402

from vision.compare import STATUS_WORDS, verdict_lines  # noqa: E402
from vision.plots import per_stride_figure  # noqa: E402

NOT_MEASURED = "not measured"
VIEW_WORDS = {"lateral": "from the side", "oblique": "at an angle", "rear": "from behind", "front": "from the front"}
PHASE_SCALE = "hind phase 0.5 = the hind legs alternate normally, near 0 = they move together (bunny hopping)"


def _number(value: Any, digits: int = 1, unit: str = "") -> str:
    """``value`` to ``digits`` decimals with its unit, or "not measured" (None, NaN, not a number)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value or abs(value) == float("inf"):
        return NOT_MEASURED
    return f"{value:.{digits}f}{unit}"


def _measure(value: Any, *, signed: bool = False) -> str:
    """A measure to sensible precision (1 decimal from 10, 2 from 1, else 2 significant figures), or "-"."""
    if _number(value) == NOT_MEASURED:
        return "-"
    size = abs(float(value))
    digits = 1 if size >= 10 else 2 if size >= 1 or size == 0 else min(3, max(2, 1 - math.floor(math.log10(size))))
    shown = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return shown if float(shown) != 0 else f"{0:.{digits}f}"


def _interval(ci: Any) -> str:
    """A 95 % interval low to high, or "-"."""
    if not _is_pair(ci):
        return "-"
    lo, hi = sorted(float(v) for v in ci)
    return f"{_measure(lo, signed=True)} to {_measure(hi, signed=True)}"


def _is_pair(ci: Any) -> bool:
    """True for a list or tuple of two finite numbers."""
    return isinstance(ci, list | tuple) and len(ci) == 2 and all(_number(c) != NOT_MEASURED for c in ci)


def _block(report: Any, *path: str) -> dict[str, Any]:
    node = report
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


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
    else:
        ax.text(0.5, 0.5, "no scored clips yet", ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_title(title, fontsize=10)
    locator = mdates.AutoDateLocator(minticks=2, maxticks=6)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b %Y"))
    ax.tick_params(axis="x", labelsize=8, labelrotation=30)
    fig.tight_layout()
    return fig


def _png(fig) -> io.BytesIO:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    buf.seek(0)
    return buf


def _clip_lines(label: str, clip: dict[str, Any]) -> tuple[str, list[str]]:
    """A clip's heading and its lines in words (no codes, "not measured" for missing values)."""
    report = clip.get("report") or {}
    q = _block(report, "quality")
    sym = _block(report, "metrics", "symmetry")
    bunny = _block(report, "metrics", "bunny_hop")
    wobble = _block(report, "metrics", "wobble")
    version = _block(report, "source").get("model_version")
    strides = q.get("hind_strides")
    heading = (
        f"{label} ({_date(clip.get('date'))}): "
        + ("scored" if q.get("usable") else "could not be scored")
        + f", filmed {VIEW_WORDS.get(str(q.get('view')), 'from an unknown angle')}, "
        + f"{strides if isinstance(strides, int) else 'no'} hind strides"
        + (f", keypoint model {version}" if version else "")
    )
    lines: list[str] = []
    if q.get("usable"):
        if sym.get("within_noise") is True:
            asym = "hind-leg asymmetry within measurement noise (no side clearly weaker)"
        elif sym.get("legs_told_apart") is False:
            asym = "hind-leg asymmetry not measured (the two hind legs were not told apart)"
        else:
            side = sym.get("weaker_side")
            asym = f"hind-leg asymmetry {_number(sym.get('hind_asymmetry_pct'), 1, ' %')}" + (
                f" ({side} hind weaker)" if side in ("left", "right") else " (no side clearly weaker)"
            )
        phase = bunny.get("hind_phase")
        tremor = wobble.get("tremor_hz")
        lines.append(
            f"{asym}; hind phase {_number(phase, 2)}; "
            + (f"tremor {tremor:.1f} Hz" if _number(tremor) != NOT_MEASURED else "no tremor seen")
        )
    mus = _block(report, "metrics", "muscle")
    if mus.get("available"):
        side = mus.get("weaker_side")
        lines.append(
            f"Thigh muscle ({VIEW_WORDS.get(str(mus.get('view')), 'unknown view')}): index "
            f"{_number(_block(mus, 'thigh_width_index').get('value'), 3)}, asymmetry "
            f"{_number(mus.get('thigh_asymmetry_pct'), 1, ' %')}"
            + (f" ({side} thinner)" if side in ("left", "right") else " (no side thinner beyond noise)")
            + f", stride-to-stride variation {_number(_block(mus, 'repeatability').get('thigh_cv_pct'), 1, ' %')}"
        )
    lines += [f"  - {reason}" for reason in q.get("reasons") or []]
    return heading, lines


def _date(value: Any) -> str:
    return f"{value:%d %b %Y}" if isinstance(value, dt.date) else str(value or "date not known")


def _change_table(pdf: FPDF, comparison: dict[str, Any]) -> None:
    """The per-measure table: wrapped labels, two decimals, intervals low to high, status in words."""
    comparable = comparison.get("comparable", True)
    pdf.set_font("Helvetica", "", 8)
    with pdf.table(col_widths=(62, 20, 20, 20, 36, 32), text_align="LEFT", line_height=4.5) as table:
        table.row(["Measure", "Before", "After", "Change", "95% interval", "Result"])
        for m in (comparison.get("metrics") or {}).values():
            status = str(m.get("status"))
            word = STATUS_WORDS.get(status, "can't tell")
            if status == "uncertain" and (not comparable or m.get("reason")):
                word = "not compared"
            table.row(
                [
                    _latin1(str(m.get("label", ""))),
                    _measure(m.get("before")),
                    _measure(m.get("after")),
                    _measure(m.get("change"), signed=True),
                    _interval(m.get("ci95")),
                    _latin1(word),
                ]
            )


def _stills(pdf: FPDF, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Both clips' mid-stance frames side by side (``"still"``: PNG bytes and caption), when given."""
    shown = [(label, clip["still"]) for label, clip in (("Before", before), ("After", after)) if clip.get("still")]
    if not shown:
        return
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(0, 7, "Mid-stance frames with the tracked skeleton", new_x="LMARGIN", new_y="NEXT")
    width = (pdf.epw - 5) / 2
    top, heights = pdf.get_y(), []
    if top + 75 > pdf.page_break_trigger:
        pdf.add_page()
        top = pdf.get_y()
    for i, (label, (png, caption)) in enumerate(shown):
        x = pdf.l_margin + i * (width + 5)
        info = pdf.image(io.BytesIO(png), x=x, y=top, w=width)
        pdf.set_xy(x, top + info.rendered_height + 1)
        pdf.set_font("Helvetica", "", 8)
        pdf.multi_cell(width, 4, text=_latin1(f"{label}: {caption}"))
        heights.append(pdf.get_y())
    pdf.set_xy(pdf.l_margin, max(heights) + 2)


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

    ``before`` and ``after`` are dicts with ``date`` and ``report``, and optionally ``still``: a
    mid-stance frame of the annotated video as (PNG bytes, caption), see :mod:`vision.stills`; ``history`` the
    dog's (date, report) pairs for the trend plots; ``status`` the review status in words.
    When either clip was not scored the verdict says so ("<date> could not be scored: <reason>")
    and no change is claimed. Missing values print as "not measured".
    """
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _latin1(f"Hindsight gait report: {dog.get('name') or 'dog'}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    weight = dog.get("weight_kg")
    pdf.multi_cell(
        0,
        5,
        new_x="LMARGIN",
        new_y="NEXT",
        text=_latin1(
            f"Breed: {dog.get('breed') or 'not given'}   Born: "
            f"{_date(dog.get('birth_date')) if dog.get('birth_date') else 'not given'}   "
            f"Weight: {_number(weight, 1, ' kg') if weight else 'not given'}\n"
            f"Compared: {_date(before.get('date'))} (before) with {_date(after.get('date'))} (after)\n"
            f"Reviewed by {vet_name}; status: {status.replace('_', ' ')}; generated {_date(dt.date.today())}"
        ),
    )
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, "Changes beyond the clips' own stride-to-stride noise", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 10)
    for line in verdict_lines(comparison, _date(before.get("date")), _date(after.get("date"))):
        pdf.multi_cell(0, 5, new_x="LMARGIN", new_y="NEXT", text=_latin1(line))
        pdf.set_font("Helvetica", "", 9)
    pdf.ln(1)
    _change_table(pdf, comparison)
    pdf.ln(2)
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(0, 5, new_x="LMARGIN", new_y="NEXT", text=_latin1(f"Scale: {PHASE_SCALE}."))
    for note in comparison.get("notes", []):
        pdf.multi_cell(0, 5, new_x="LMARGIN", new_y="NEXT", text=_latin1(f"Note: {note}"))
    for label, clip in (("Before", before), ("After", after)):
        heading, lines = _clip_lines(label, clip)
        pdf.set_font("Helvetica", "B", 10)
        pdf.multi_cell(0, 6, new_x="LMARGIN", new_y="NEXT", text=_latin1(heading))
        pdf.set_font("Helvetica", "", 9)
        for line in lines:
            pdf.multi_cell(0, 5, new_x="LMARGIN", new_y="NEXT", text=_latin1(line))
    _stills(pdf, before, after)
    points = []
    for date, rep in history:
        w = _block(rep, "metrics", "symmetry", "weakness_pct") if _block(rep, "quality").get("usable") else {}
        v: Any = w.get("value")
        ci: Any = w.get("ci95")
        size = abs(float(v)) if _number(v) != NOT_MEASURED else None
        band = None
        if _is_pair(ci):
            lo, hi = sorted((abs(float(ci[0])), abs(float(ci[1]))))
            band = (lo if ci[0] * ci[1] > 0 else 0.0, hi)
        points.append((date, size, band))
    pdf.image(_png(trend_figure(points, "Hind-leg asymmetry (%) by week, with 95% intervals")), w=170)
    if _block(after.get("report"), "quality").get("usable"):
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
