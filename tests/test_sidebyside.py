import numpy as np

from vision.analysis import analyze_tracks
from vision.sidebyside import LABEL_BAR_PX, phase_aligned_times, render_side_by_side
from vision.synthetic import generate, render_video
from vision.video import iter_frames, probe


def test_phase_alignment_maps_strides_onto_strides():
    a = np.array([0.0, 1.0, 2.0, 3.0])
    b = np.array([5.0, 5.5, 6.0, 6.5])  # faster cadence, later start
    t = np.array([0.0, 0.5, 1.25, 2.9, 3.5])
    out = phase_aligned_times(a, b, t)
    np.testing.assert_allclose(out[:4], [5.0, 5.25, 5.625, 6.45])
    assert np.isnan(out[4])


def test_side_by_side_video(tmp_path):
    clips = [
        generate(duration_s=4, frame_size=(320, 180), body_length_px=96, seed=s, stride_hz=hz)
        for s, hz in ((1, 1.0), (2, 1.4))
    ]
    paths, strikes = [], []
    for i, c in enumerate(clips):
        p = tmp_path / f"{i}.mp4"
        render_video(c, str(p))
        paths.append(p)
        strikes.append(analyze_tracks(c.tracks).events.strikes["left_hind"])
    out = render_side_by_side(paths[0], strikes[0], paths[1], strikes[1], tmp_path / "sbs.mp4", height=180)
    info = probe(out)
    panel = round(320 * (180 - LABEL_BAR_PX) / 180)
    panel += panel % 2
    assert info.codec == "h264" and info.height == 180 and info.width == 2 * panel + 6


def test_clips_of_different_sizes_get_panels_of_one_size_under_their_labels(tmp_path):
    sizes = ((320, 180), (180, 320))  # a landscape and a portrait phone clip
    paths, strikes = [], []
    for i, size in enumerate(sizes):
        c = generate(duration_s=4, frame_size=size, body_length_px=90, seed=i + 1)
        p = tmp_path / f"{i}.mp4"
        render_video(c, str(p))
        paths.append(p)
        strikes.append(list(analyze_tracks(c.tracks).events.strikes["left_hind"]))
    out = render_side_by_side(paths[0], strikes[0], paths[1], strikes[1], tmp_path / "sbs.mp4", height=180)
    frame = next(iter_frames(out)).image
    panel = (frame.shape[1] - 6) // 2
    assert frame.shape[0] == 180 and panel == 264  # the wider clip sets both panels' width
    left_bar, right_bar = frame[:LABEL_BAR_PX, :panel], frame[:LABEL_BAR_PX, panel + 6 :]
    for bar in (left_bar, right_bar):  # a plain grey bar with white text, above the picture
        grey = np.abs(bar.astype(int) - 40).max(axis=2) < 12
        assert 0.7 < grey.mean() < 1.0


def test_the_report_carries_the_strike_times_the_side_by_side_aligns_on():
    result = analyze_tracks(generate(duration_s=8, seed=3).tracks)
    stored = result.report["metrics"]["gait"]["events"]
    for limb in ("left_hind", "right_hind"):
        np.testing.assert_allclose(stored[limb]["strikes_s"], result.events.strikes[limb], atol=1e-4)
        np.testing.assert_allclose(stored[limb]["lift_offs_s"], result.events.lift_offs[limb], atol=1e-4)
    assert len(stored["left_hind"]["strikes_s"]) >= 4
