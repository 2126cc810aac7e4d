import datetime as dt

from vision.analysis import analyze_tracks
from vision.compare import compare_reports
from vision.pdf import vet_report_pdf
from vision.synthetic import generate


def test_vet_pdf_contains_the_essentials():
    a = analyze_tracks(generate(seed=1, limp_side="left", limp_severity=0.1).tracks).report
    b = analyze_tracks(generate(seed=2, limp_side="left", limp_severity=0.5).tracks).report
    pdf = vet_report_pdf(
        dog={"name": "Bella", "breed": "Labrador", "birth_date": dt.date(2015, 4, 2), "weight_kg": 31},
        before={"date": dt.date(2026, 11, 15), "report": a},
        after={"date": dt.date(2026, 11, 22), "report": b},
        comparison=compare_reports(a, b),
        history=[(dt.date(2026, 11, 15), a), (dt.date(2026, 11, 22), b)],
        vet_name="Dr Vet – ü",
        notes="Recheck stifle.",
        status="needs_visit",
    )
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
