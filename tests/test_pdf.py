import copy
import datetime as dt

from vision.analysis import analyze_tracks
from vision.compare import compare_reports
from vision.pdf import vet_report_pdf
from vision.synthetic import generate


def _pdf(a: dict, b: dict, comparison: dict | None = None, **given) -> bytes:
    """The vet PDF of two reports a week apart (``comparison``: of a and b unless given)."""
    week = (dt.date(2026, 1, 1), dt.date(2026, 1, 8))
    args = {"dog": {"name": "B"}, "vet_name": "V", "notes": "n", "status": "pending", **given}
    return vet_report_pdf(
        before={"date": week[0], "report": a},
        after={"date": week[1], "report": b},
        comparison=comparison if comparison is not None else compare_reports(a, b),
        history=[(week[0], a), (week[1], b)],
        **args,
    )


def test_vet_pdf_contains_the_essentials():
    a = analyze_tracks(generate(seed=1, limp_side="left", limp_severity=0.1).tracks).report
    b = analyze_tracks(generate(seed=2, limp_side="left", limp_severity=0.5).tracks).report
    pdf = _pdf(
        a,
        b,
        dog={"name": "Bella", "breed": "Labrador", "birth_date": dt.date(2015, 4, 2), "weight_kg": 31},
        vet_name="Dr Vet – ü",
        notes="Recheck stifle.",
        status="needs_visit",
    )
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000


def test_vet_pdf_with_unscored_clip_reasons_and_muscle_line():
    a = analyze_tracks(generate(seed=1).tracks).report
    b = analyze_tracks(generate(seed=2, duration_s=2).tracks).report  # too short: reasons are listed
    assert b["quality"]["reasons"]
    b["metrics"]["muscle"] = {
        "available": True,
        "view": "lateral",
        "thigh_width_index": {"value": 0.08},
        "thigh_asymmetry_pct": None,
        "weaker_side": None,
        "repeatability": {"thigh_cv_pct": 5.0},
    }
    assert _pdf(a, b).startswith(b"%PDF")


def test_the_comparisons_notes_are_printed_under_its_table(monkeypatch):
    from fpdf import FPDF

    import vision.pdf

    def uncompressed(**kwargs):
        pdf = FPDF(**kwargs)
        pdf.set_compression(False)
        return pdf

    monkeypatch.setattr(vision.pdf, "FPDF", uncompressed)
    a = analyze_tracks(generate(seed=1).tracks).report
    comparison = compare_reports(a, a)
    comparison["notes"] = ["The clips were tracked by different versions of the keypoint model (0.7.0, then 0.7.1)."]
    pdf = _pdf(a, a, comparison)
    assert b"Note: The clips were tracked by different versions" in pdf
    assert b", keypoint model " not in pdf  # these reports name no model (pose files)
    comparison["notes"] = []
    assert b"Note: " not in _pdf(a, a, comparison)
    # each clip's line names the model that tracked it
    b = copy.deepcopy(a)
    a["source"]["model_version"], b["source"]["model_version"] = "0.7.0", "0.7.1"
    pdf = _pdf(a, b)
    assert b", keypoint model 0.7.0" in pdf and b", keypoint model 0.7.1" in pdf


def _uncompressed(monkeypatch):
    from fpdf import FPDF

    import vision.pdf

    def build(**kwargs):
        pdf = FPDF(**kwargs)
        pdf.set_compression(False)
        return pdf

    monkeypatch.setattr(vision.pdf, "FPDF", build)


def test_an_unscored_clip_is_named_and_no_change_is_claimed(monkeypatch):
    _uncompressed(monkeypatch)
    a = analyze_tracks(generate(seed=1).tracks).report
    b = analyze_tracks(generate(seed=2, duration_s=2).tracks).report
    pdf = _pdf(a, b)
    assert b"08 Jan 2026 could not be scored: No complete hind stride" in pdf
    assert b"No worsening" not in pdf and b"no change beyond noise" not in pdf
    assert b"not compared" in pdf


def test_the_pdf_has_no_developer_text_even_with_values_missing(monkeypatch):
    _uncompressed(monkeypatch)
    a = analyze_tracks(generate(seed=1).tracks).report
    b = copy.deepcopy(a)
    b["metrics"]["symmetry"].update(hind_asymmetry_pct=None, within_noise=False, weakness_pct={})
    b["metrics"]["bunny_hop"]["hind_phase"] = float("nan")
    del b["metrics"]["wobble"]
    pdf = _pdf(a, b, status="needs_visit")
    for code in (b"usable=", b"None", b"nan", b"needs_visit", b"lateral", b"right_to_left"):
        assert code not in pdf, code
    assert b"hind-leg asymmetry not measured" in pdf and b"hind phase not measured" in pdf
    assert b"hind phase 0.5 = the hind legs alternate normally" in pdf
