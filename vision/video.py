"""Video ingest with PyAV: probing, decoding with rotation applied and real timestamps.

Phone clips are H.264 or HEVC in MP4/MOV containers, often portrait (a display
rotation stored as metadata) and often variable frame rate. Frames are yielded
upright, as RGB ``uint8`` arrays of shape ``(height, width, 3)``, each with its
presentation time in seconds from the first frame.
"""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vision.errors import HindsightInputError

VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".webm", ".avi", ".mkv")
#: Shortest clip analysed, and the figure the filming advice gives: about 6 hind strides at a walk
#: (the quality gate needs 3, recommends 6; a walking stride takes 0.6-0.9 s).
MIN_DURATION_S = 5.0
MAX_DURATION_S = 600.0
#: A clip is refused as ending early when it decodes short of its declared length by more than
#: this many seconds and this share of the declared length (both). Whole phone files differ by a
#: frame or two (an audio track can outlast the video by ~0.1 s).
TRUNCATION_TOLERANCE_S = 0.5
TRUNCATION_TOLERANCE_SHARE = 0.03
#: Demuxers and codecs of single still images: such a file renamed .mp4 is "not a video".
STILL_IMAGE_FORMATS = frozenset(
    {"image2", "jpeg_pipe", "png_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe", "gif", "svg_pipe", "heif"}
)
STILL_IMAGE_CODECS = frozenset({"mjpeg", "png", "webp", "bmp", "tiff", "gif", "jpeg2000", "jpegls", "svg"})


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` reports about a clip.

    Attributes
    ----------
    width, height
        Displayed size in pixels, after rotation.
    rotation
        Clockwise display rotation in degrees applied to decoded frames (0, 90, 180, 270).
    fps
        Median frame rate from the timestamps (frames per second).
    vfr
        True when frame intervals vary by more than 10 % (variable frame rate).
    duration_s, n_frames
        What the file really holds: from the timestamps of the packets present.
    declared_duration_s, declared_frames
        What the container's header claims (None when it does not say). A file cut short in
        transfer keeps its header, so ``duration_s`` falls short of ``declared_duration_s``;
        see :func:`check_complete`.
    """

    path: str
    codec: str
    container: str
    width: int
    height: int
    rotation: int
    fps: float
    duration_s: float
    n_frames: int
    vfr: bool
    declared_duration_s: float | None = None
    declared_frames: int | None = None

    def to_dict(self) -> dict[str, object]:
        """Return the fields as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Frame:
    """One decoded, upright frame.

    Attributes
    ----------
    index
        Position in decoding order, from 0.
    time_s
        Presentation time in seconds from the first frame.
    image
        RGB image, ``uint8``, shape ``(height, width, 3)``.
    """

    index: int
    time_s: float
    image: np.ndarray


def _check_file(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.exists():
        raise HindsightInputError(f"file not found: {p.name}")
    if not p.is_file():
        raise HindsightInputError(f"not a file: {p.name}")
    if p.stat().st_size == 0:
        raise HindsightInputError(f"empty file: {p.name}")
    return p


def _open(p: Path):
    import av

    try:
        container = av.open(str(p), mode="r")
    except (av.error.InvalidDataError, av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise HindsightInputError(f"not a readable video: {p.name}") from exc
    if not container.streams.video:
        container.close()
        raise HindsightInputError(f"no video stream in {p.name}")
    return container


def _rotation_of(stream, first_frame) -> int:
    """Clockwise rotation (0/90/180/270) needed to show the frame upright."""
    rotation = 0.0
    if first_frame is not None:
        rotation = float(getattr(first_frame, "rotation", 0) or 0)
    if rotation == 0:
        tag = stream.metadata.get("rotate")
        if tag:
            try:
                rotation = -float(tag)
            except ValueError:
                rotation = 0.0
    # PyAV reports the display-matrix angle counter-clockwise; convert to clockwise.
    clockwise = int(round(-rotation / 90.0)) * 90 % 360
    return clockwise


def rotate_upright(image: np.ndarray, clockwise_deg: int) -> np.ndarray:
    """Rotate an image clockwise by a multiple of 90 degrees.

    ``clockwise_deg`` is 0, 90, 180 or 270; the result is a new contiguous ``uint8`` array
    (OpenCV's rotation, several times faster than a contiguous numpy ``rot90`` on phone frames).
    """
    import cv2

    codes = {1: cv2.ROTATE_90_CLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_COUNTERCLOCKWISE}
    k = (clockwise_deg // 90) % 4
    if k == 0:
        return image
    turned = cv2.rotate(image, codes[k])
    return turned.reshape(turned.shape[:2] + image.shape[2:])  # OpenCV drops a single channel axis


def _decode(container, p: Path) -> Iterator:
    import av

    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    try:
        yield from container.decode(stream)
    except av.error.FFmpegError as exc:
        raise HindsightInputError(f"corrupt or unsupported video data in {p.name}") from exc


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Describe a clip: codec, displayed size, rotation, frame rate, duration, VFR.

    Timestamps are read from every packet, so the frame rate and VFR reflect the
    real capture, not the container's nominal rate.

    Raises
    ------
    HindsightInputError
        Empty, missing, corrupt or non-video files, and codecs FFmpeg cannot decode.
    """
    import av

    p = _check_file(path)
    container = _open(p)
    try:
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        if container.format.name in STILL_IMAGE_FORMATS or (codec in STILL_IMAGE_CODECS and not stream.frames):
            raise HindsightInputError(f"not a video: {p.name} is a still image ({codec})")
        declared_s, declared_frames = _declared(container, stream)
        first = None
        for frame in _decode(container, p):
            first = frame
            break
        if first is None:
            raise HindsightInputError(f"no decodable frames in {p.name} (codec {codec})")
        # Timestamps from the packets: no need to decode every frame.
        container.seek(0)
        times: list[float] = []
        try:
            for packet in container.demux(stream):
                if packet.pts is not None and packet.size:
                    times.append(float(packet.pts * packet.time_base))
                if len(times) > 20 * 60 * 240:  # hard stop for absurd inputs
                    break
        except av.error.FFmpegError as exc:
            raise HindsightInputError(f"corrupt video data in {p.name}") from exc
        rotation = _rotation_of(stream, first)
        w, h = first.width, first.height
        if rotation in (90, 270):
            w, h = h, w
        fps, vfr, duration = _timing(np.asarray(sorted(times)), stream)
        return VideoInfo(
            path=str(p),
            codec=codec,
            container=container.format.name,
            width=int(w),
            height=int(h),
            rotation=rotation,
            fps=fps,
            duration_s=duration,
            n_frames=len(times) if times else 1,
            vfr=vfr,
            declared_duration_s=declared_s,
            declared_frames=declared_frames,
        )
    finally:
        container.close()


def _declared(container, stream) -> tuple[float | None, int | None]:
    """The video stream's declared duration (s) and frame count, from the container header."""
    seconds: float | None = None
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration:
        seconds = float(container.duration) / 1e6  # AV_TIME_BASE
    frames = int(stream.frames) if stream.frames else None
    if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
        seconds = None
    return (round(seconds, 3) if seconds is not None else None), frames


def _timing(times: np.ndarray, stream) -> tuple[float, bool, float]:
    if times.size >= 2:
        dt = np.diff(times)
        dt = dt[dt > 0]
        if dt.size:
            med = float(np.median(dt))
            fps = 1.0 / med
            vfr = bool(np.mean(np.abs(dt - med) > 0.1 * med) > 0.05)
            duration = float(times[-1] - times[0] + med)
            return round(fps, 3), vfr, round(duration, 3)
    rate = float(stream.average_rate or stream.guessed_rate or 30)
    return rate, False, round(times.size / rate, 3) if times.size else 0.0


def iter_frames(path: str | os.PathLike[str], *, max_side: int | None = None, every: int = 1) -> Iterator[Frame]:
    """Yield upright RGB frames with timestamps in seconds from the first frame.

    Parameters
    ----------
    path
        Video file.
    max_side
        If given, frames are downscaled so that their longer side is at most this.
    every
        Yield one frame in ``every`` (decimation for previews).
    """
    import cv2

    p = _check_file(path)
    container = _open(p)
    try:
        stream = container.streams.video[0]
        rotation: int | None = None
        t0: float | None = None
        for index, frame in enumerate(_decode(container, p)):
            if rotation is None:
                rotation = _rotation_of(stream, frame)
            t = float(frame.time) if frame.time is not None else index / float(stream.average_rate or 30)
            if t0 is None:
                t0 = t
            if index % every:
                continue
            image = rotate_upright(frame.to_ndarray(format="rgb24"), rotation)
            if max_side is not None and max(image.shape[:2]) > max_side:
                scale = max_side / max(image.shape[:2])
                size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            yield Frame(index=index, time_s=t - t0, image=image)
    finally:
        container.close()


def recorded_date(path: str | os.PathLike[str]) -> datetime.date | None:
    """Recording date from the container's ``creation_time`` tag (phones set it), or None."""
    try:
        container = _open(Path(path))
    except HindsightInputError:
        return None
    try:
        tags = dict(container.metadata)
        for stream in container.streams:
            tags.update({k: v for k, v in stream.metadata.items() if k not in tags})
    finally:
        container.close()
    raw = tags.get("creation_time") or tags.get("com.apple.quicktime.creationdate")
    if not raw:
        return None
    try:
        when = datetime.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.date() if when.year > 1971 else None


def check_complete(info: VideoInfo) -> None:
    """Refuse a clip that ends before its container says it should (a cut-short upload).

    The decoded length is compared with the header's: short by more than
    :data:`TRUNCATION_TOLERANCE_S` *and* :data:`TRUNCATION_TOLERANCE_SHARE` of the declared
    duration (or, when only a frame count is declared, that share of the frames) means the file
    is incomplete. Such a clip is refused rather than scored: what is missing is unknown, a partial
    phone upload is cheap to send again, and a score from part of a walk would be stored as if whole.

    Raises
    ------
    HindsightInputError
        ``the file ends early (5.0 of 10.0 s): upload it again``.
    """
    declared = info.declared_duration_s
    if declared is None and info.declared_frames and info.fps > 0:
        declared = info.declared_frames / info.fps
    if declared is None:
        return
    short_s = declared - info.duration_s
    frames_short = (
        info.declared_frames is not None
        and info.declared_frames - info.n_frames > max(1, TRUNCATION_TOLERANCE_SHARE * info.declared_frames)
        and short_s > TRUNCATION_TOLERANCE_S / 2
    )
    if (short_s > TRUNCATION_TOLERANCE_S and short_s > TRUNCATION_TOLERANCE_SHARE * declared) or frames_short:
        raise HindsightInputError(f"the file ends early ({info.duration_s:.1f} of {declared:.1f} s): upload it again")


def check_duration(info: VideoInfo, *, min_s: float = MIN_DURATION_S, max_s: float = MAX_DURATION_S) -> None:
    """Raise a one-line error for incomplete clips, clips too short for strides or too long to analyse.

    The incompleteness check (:func:`check_complete`) comes first: a cut-short upload is told
    to be sent again, not that it is too short.
    """
    check_complete(info)
    if info.duration_s < min_s:
        raise HindsightInputError(f"clip too short ({info.duration_s:.1f} s): film at least {min_s:.0f} s of walking")
    if info.duration_s > max_s:
        raise HindsightInputError(
            f"clip too long ({info.duration_s / 60:.0f} min): trim it to the walking part (at most "
            f"{max_s / 60:.0f} min)"
        )
    if not math.isfinite(info.fps) or info.fps <= 0:
        raise HindsightInputError("clip has no usable timestamps")


def write_video(
    path: str | os.PathLike[str],
    frames: Iterator[np.ndarray] | list[np.ndarray],
    fps: float,
    *,
    codec: str = "libx264",
    rotation: int = 0,
    crf: int = 23,
    times: np.ndarray | None = None,
) -> Path:
    """Encode RGB frames into a browser-playable MP4 (H.264, yuv420p, faststart).

    Parameters
    ----------
    frames
        RGB ``uint8`` images of one size, shape ``(height, width, 3)``; odd sizes are padded.
    rotation
        Display rotation (clockwise degrees) to store as metadata, as phones do.
    times
        Optional presentation time of each frame in seconds (variable frame rate).
    """
    from fractions import Fraction

    import av

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    rate = Fraction(fps).limit_denominator(1001)
    fmt = "mp4" if out.suffix.lower() in (".mp4", ".m4v", ".mov") else None
    container = av.open(str(tmp), mode="w", format=fmt, options={"movflags": "+faststart"})
    try:
        stream: Any = container.add_stream(codec, rate=rate)
        if times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
            stream.time_base = Fraction(1, 1000)
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"} if codec in ("libx264", "libx265") else {}
        if codec == "libx265":
            stream.codec_context.codec_tag = "hvc1"
            stream.options = {"crf": str(crf), "preset": "veryfast", "x265-params": "log-level=error"}
        started = False
        last_pts = -1
        for index, image in enumerate(frames):
            h, w = image.shape[:2]
            if not started:
                stream.width, stream.height = w + (w % 2), h + (h % 2)
                if rotation:
                    stream.set_display_rotation(-rotation)
                started = True
            if (h % 2) or (w % 2):
                image = np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            if times is not None:
                pts = max(last_pts + 1, int(round(1000 * (float(times[index]) - float(times[0])))))
                frame.pts, frame.time_base, last_pts = pts, Fraction(1, 1000), pts
            for packet in stream.encode(frame):
                container.mux(packet)
        if not started:
            raise ValueError("no frames to write")
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    os.replace(tmp, out)
    return out
