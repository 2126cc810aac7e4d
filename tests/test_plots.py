import matplotlib.pyplot as plt

from vision.analysis import analyze_tracks
from vision.plots import FIGURES
from vision.synthetic import generate


def test_figures_render_for_good_and_empty_reports(tmp_path):
    good = analyze_tracks(generate(seed=1, limp_side="left", limp_severity=0.4).tracks).report
    empty = analyze_tracks(generate(seed=1, duration_s=1.5).tracks).report
    for report in (good, empty):
        for name, build in FIGURES.items():
            fig = build(report)
            out = tmp_path / f"{name}.png"
            fig.savefig(out)
            assert out.stat().st_size > 1000
            plt.close(fig)
    bars = FIGURES["asymmetry"](good).axes[0].containers[0]
    assert len(bars) == len(good["metrics"]["symmetry"]["weakness_pct"]["per_stride"])
