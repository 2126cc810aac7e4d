from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vision import video
from vision.errors import HindsightInputError


def _frames(n=30, w=160, h=120):
    out = []
    for i in range(n):
        f = np.full((h, w, 3), 90, np.uint8)
        f[10:30, 10 + i : 50 + i] = (255, 0, 0)
        out.append(f)
    return out


@pytest.mark.parametrize("codec,name", [("libx264", "h264"), ("libx265", "hevc")])
def test_probe_reports_codec_size_fps(tmp_path, codec, name):
    p = video.write_video(tmp_path / "c.mp4", _frames(45), 30, codec=codec)
    info = video.probe(p)
    assert info.codec == name
    assert (info.width, info.height) == (160, 120)
    assert info.fps == pytest.approx(30, rel=0.01)
    assert info.duration_s == pytest.approx(1.5, abs=0.05)
    assert not info.vfr


def test_rotation_metadata_is_applied_clockwise(tmp_path):
    p = video.write_video(tmp_path / "portrait.mov", _frames(10), 30, rotation=90)
    info = video.probe(p)
    assert info.rotation == 90 and (info.width, info.height) == (120, 160)
    img = next(video.iter_frames(p)).image
    assert img.shape == (160, 120, 3)
    ys, xs = np.where(img[..., 0] > 200)
    # the red box at the top-left of the stored frame is at the top-right once shown upright
    assert xs.min() > 60 and ys.max() < 60


def test_variable_frame_rate_timestamps_are_real(tmp_path):
    rng = np.random.default_rng(0)
    times = np.cumsum(rng.uniform(0.02, 0.05, 40))
    p = video.write_video(tmp_path / "vfr.mp4", _frames(40), 30, times=times)
    info = video.probe(p)
    assert info.vfr
    got = np.array([f.time_s for f in video.iter_frames(p)])
    assert np.allclose(got, times - times[0], atol=0.002)


def test_max_side_downscales(tmp_path):
    p = video.write_video(tmp_path / "c.mp4", _frames(5, 320, 240), 30)
    img = next(video.iter_frames(p, max_side=100)).image
    assert max(img.shape[:2]) == 100


@pytest.mark.parametrize(
    "content,expected",
    [
        (b"", "empty file"),
        (b"hello, I am text", "not a readable video"),
        (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64, ""),
    ],
)
def test_bad_files_raise_one_line_errors(tmp_path, content, expected):
    p = tmp_path / "bad.mp4"
    p.write_bytes(content)
    with pytest.raises(HindsightInputError) as err:
        video.probe(p)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_truncated_video_is_reported(tmp_path):
    p = video.write_video(tmp_path / "c.mp4", _frames(60), 30)
    data = p.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(HindsightInputError):
        info = video.probe(cut)
        video.check_duration(info, min_s=1.0)


@pytest.mark.parametrize("share", [0.5, 0.95])
def test_a_clip_cut_short_is_refused_with_its_lengths(tmp_path, share):
    """A faststart phone file cut in transfer keeps its header (10 s) but holds less."""
    p = video.write_video(tmp_path / "c.mp4", _frames(300, 96, 64), 30)
    data = p.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * share)])
    info = video.probe(cut)
    assert info.declared_duration_s == pytest.approx(10.0, abs=0.05) and info.duration_s < 9.6
    with pytest.raises(HindsightInputError, match=r"^the file ends early \(\d+\.\d of 10\.0 s\): upload it again$"):
        video.check_duration(info)
    whole = video.probe(p)
    assert whole.duration_s == pytest.approx(whole.declared_duration_s, abs=0.05)
    video.check_duration(whole)


def _info(duration_s, declared_s, n_frames=None, declared_frames=None):
    n = n_frames if n_frames is not None else round(30 * duration_s)
    return video.VideoInfo("x", "h264", "mp4", 10, 10, 0, 30.0, duration_s, n, False, declared_s, declared_frames)


def test_a_whole_clip_whose_header_differs_slightly_is_not_refused():
    video.check_duration(_info(10.0, 10.2))  # an audio track or an edit list outlasting the video
    video.check_duration(_info(10.0, 10.4, 300, 301))
    video.check_duration(_info(30.0, 30.8))  # within 3 % of a long clip
    video.check_duration(_info(9.267, None))  # no declared length: nothing to compare
    with pytest.raises(HindsightInputError, match="ends early"):
        video.check_duration(_info(9.0, 10.0))
    with pytest.raises(HindsightInputError, match=r"ends early \(8\.0 of 10\.0 s\)"):
        video.check_duration(_info(8.0, None, 240, 300))  # only a frame count declared


def test_real_owner_clips_are_whole(forever_dog):
    """Every real phone clip in ../shared passes the truncation and length checks."""
    clips = sorted((forever_dog.parent / "owner_clips").glob("*.mp4")) + [forever_dog / "dog.mp4"]
    assert len(clips) == 21
    for path in clips:
        info = video.probe(path)
        assert info.declared_duration_s is not None
        video.check_duration(info)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_still_image_renamed_mp4_is_not_a_video(tmp_path, fmt):
    from PIL import Image

    p = tmp_path / "photo.mp4"
    Image.fromarray(np.full((120, 160, 3), 128, np.uint8)).save(p, format=fmt)
    with pytest.raises(HindsightInputError, match="^not a video: photo.mp4 is a still image"):
        video.probe(p)


def test_duration_limits():
    info = video.VideoInfo("x", "h264", "mp4", 10, 10, 0, 30.0, 0.4, 12, False)
    with pytest.raises(HindsightInputError, match="too short"):
        video.check_duration(info)
    with pytest.raises(HindsightInputError, match=f"film at least {video.MIN_DURATION_S:.0f} s"):
        video.check_duration(_info(video.MIN_DURATION_S - 0.1, None))
    video.check_duration(_info(video.MIN_DURATION_S, None))
    long = video.VideoInfo("x", "h264", "mp4", 10, 10, 0, 30.0, 4000.0, 120000, False)
    with pytest.raises(HindsightInputError, match="too long"):
        video.check_duration(long)


def test_missing_file():
    with pytest.raises(HindsightInputError, match="not found"):
        video.probe("/nonexistent/clip.mp4")


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=1, max_value=40),
    st.sampled_from([1, 3]),
    st.sampled_from([-270, -180, -90, 0, 90, 180, 270, 360, 450]),
)
def test_rotate_upright_turns_clockwise_by_quarter_turns(h, w, channels, degrees):
    image = np.random.default_rng(h * 41 + w).integers(0, 256, (h, w, channels), dtype=np.uint8)
    turned = video.rotate_upright(image, degrees)
    np.testing.assert_array_equal(turned, np.rot90(image, k=-(degrees // 90)))
    assert turned.flags["C_CONTIGUOUS"]
    quarter = image
    for _ in range(4):  # four quarter turns are no turn
        quarter = video.rotate_upright(quarter, 90)
    np.testing.assert_array_equal(quarter, image)
