"""Mid-stance stills: the time from the report's paw events, the frame from the video, the PDF's pictures."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from vision.analysis import analyze_tracks
from vision.pdf import vet_report_pdf
from vision.stills import frame_at, mid_stance_png, mid_stance_time
from vision.synthetic import generate, render_video


def _events(left: tuple[list, list], right: tuple[list, list]) -> dict:
    def limb(times: tuple[list, list]) -> dict:
        return {"strikes_s": times[0], "lift_offs_s": times[1]}

    return {"metrics": {"gait": {"events": {"left_hind": limb(left), "right_hind": limb(right)}}}}


def test_the_middle_stance_of_the_better_recorded_limb_is_chosen():
    report = _events(([0.0, 1.0, 2.0, 3.0], [0.6, 1.6, 2.6]), ([0.5], [1.1]))
    time_s, limb = mid_stance_time(report)
    assert limb == "left_hind" and time_s == pytest.approx((1.0 + 1.6) / 2)  # 3 stances; the middle one


@pytest.mark.parametrize(
    "report",
    [None, {}, {"metrics": {}}, _events(([], []), ([], [])), _events(([1.0], [0.5]), ([None, float("nan")], [2.0]))],
)
def test_no_stance_gives_no_time(report):
    assert mid_stance_time(report) is None


def test_the_still_lies_inside_a_true_stance_and_comes_from_the_video(tmp_path):
    clip = generate(seed=4, duration_s=6, frame_size=(320, 180), body_length_px=96)
    report = analyze_tracks(clip.tracks).report
    time_s, limb = mid_stance_time(report)
    strikes, lifts = clip.strikes[limb], clip.lift_offs[limb]
    inside = [s - 0.1 <= time_s <= min(lifts[lifts > s], default=np.inf) + 0.1 for s in strikes]
    assert any(inside), (time_s, strikes, lifts)
    video = render_video(clip, str(tmp_path / "walk.mp4"))
    image = frame_at(video, time_s, max_side=160)
    assert image.dtype == np.uint8 and max(image.shape[:2]) == 160 and image.any()
    assert frame_at(video, 60.0) is None  # past the end
    png, caption = mid_stance_png(video, report)
    assert png.startswith(b"\x89PNG") and "mid-stance" in caption and limb.split("_")[0] in caption


def test_the_pdf_shows_both_stills_with_their_captions(tmp_path):
    clip = generate(seed=4, duration_s=6, frame_size=(320, 180), body_length_px=96)
    report = analyze_tracks(clip.tracks).report
    still = mid_stance_png(render_video(clip, str(tmp_path / "walk.mp4")), report)
    args = {"dog": {"name": "B"}, "vet_name": "V", "notes": "", "status": "pending", "comparison": {}, "history": []}
    week = (dt.date(2026, 1, 1), dt.date(2026, 1, 8))
    plain = vet_report_pdf(
        before={"date": week[0], "report": report}, after={"date": week[1], "report": report}, **args
    )
    with_stills = vet_report_pdf(
        before={"date": week[0], "report": report, "still": still},
        after={"date": week[1], "report": report, "still": still},
        **args,
    )
    assert with_stills.count(b"/Subtype /Image") == plain.count(b"/Subtype /Image") + 1  # one image, drawn twice
    assert len(with_stills) > len(plain) + 1000
