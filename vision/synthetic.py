"""Synthetic walking-dog tracks with known truth, and a renderer that draws them.

The generator is the project's ground truth for the gait engine: a lateral-view
dog whose hind paws follow a stance/swing cycle (stance: the paw stays on the
ground while the body passes over it; swing: it returns ahead of the pelvis),
with a chosen limp side and severity, hind-limb phase, tremor, stride-to-stride
variability, measurement jitter, dropouts and swapped left/right labels.

Conventions: image coordinates in pixels (y down); body length ``L`` is the
withers-to-tail-base distance; a limp on one hind leg shortens its stance and
excursion and lessens the pelvic drop while it bears weight (Rhodin et al. 2017).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np
import xarray as xr

from vision.anatomy import CANONICAL_KEYPOINTS, mirror_name
from vision.tracks import from_arrays

LIMBS = ("left_hind", "right_hind", "left_front", "right_front")
#: Lateral-sequence walk: LH, LF, RH, RF strike at these fractions of the stride.
_LATERAL_SEQUENCE = {"left_hind": 0.0, "left_front": 0.25, "right_hind": 0.5, "right_front": 0.75}


@dataclass(frozen=True)
class GaitSpec:
    """Parameters of a synthetic clip (lengths in body lengths ``L`` unless stated)."""

    duration_s: float = 12.0
    fps: float = 30.0
    body_length_px: float = 220.0
    frame_size: tuple[int, int] = (1280, 720)
    stride_hz: float = 1.1
    speed_bl_s: float = 1.0
    duty_factor: float = 0.62
    hind_phase: float = 0.5
    front_phase: float = 0.5
    limp_side: str | None = None
    limp_severity: float = 0.0
    tremor_hz: float | None = None
    tremor_amp_bl: float = 0.012
    stride_cv: float = 0.03
    jitter_px: float = 0.8
    dropout_rate: float = 0.0
    swap_segments: tuple[tuple[float, float], ...] = ()
    direction: int = 1
    pan: bool = True
    time_offset_s: float = 0.0
    vfr_jitter: float = 0.0
    seed: int = 0

    def with_(self, **changes: Any) -> GaitSpec:
        """Return a copy with some fields changed."""
        return replace(self, **changes)


@dataclass
class SyntheticClip:
    """Generated tracks and the truth they were built from."""

    tracks: xr.Dataset
    spec: GaitSpec
    strikes: dict[str, np.ndarray] = field(default_factory=dict)
    lift_offs: dict[str, np.ndarray] = field(default_factory=dict)
    clean_position: np.ndarray | None = None  # (time, keypoint, 2) before noise, dropouts and swaps

    @property
    def truth(self) -> dict[str, Any]:
        """Truth for tests: limp side, phase, tremor, stride times."""
        s = self.spec
        return {
            "weaker_side": s.limp_side if s.limp_severity > 0 else None,
            "hind_phase": s.hind_phase % 1.0,
            "tremor_hz": s.tremor_hz,
            "stride_s": 1.0 / s.stride_hz,
            "spec": asdict(s),
        }


def _strike_times(spec: GaitSpec, rng: np.random.Generator, t_end: float) -> np.ndarray:
    """Left-hind strike times with stride-to-stride variability, covering [-2 T, t_end + 2 T]."""
    period = 1.0 / spec.stride_hz
    n = int(np.ceil((t_end + 4 * period) / period)) + 4
    periods = period * (1.0 + spec.stride_cv * rng.standard_normal(n))
    periods = np.clip(periods, 0.4 * period, 2.0 * period)
    return -2 * period + rng.uniform(0, period) + np.concatenate([[0.0], np.cumsum(periods[:-1])])


def _limb_cycle(
    t: np.ndarray, strikes: np.ndarray, duty: np.ndarray, speed: float, lift: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paw position relative to the limb's hip, in body lengths, for every time.

    Returns ``(rel_forward, height, in_stance)``: forward distance of the paw ahead
    of the hip, paw height above the ground, and a stance mask.
    """
    rel = np.full(t.shape, np.nan)
    height = np.zeros(t.shape)
    stance = np.zeros(t.shape, dtype=bool)
    for k in range(len(strikes) - 1):
        t0, t1 = strikes[k], strikes[k + 1]
        period = t1 - t0
        d = duty[k] * period
        sel = (t >= t0) & (t < t1)
        if not sel.any():
            continue
        u = t[sel] - t0
        exc = speed * d  # the body passes over the planted paw at walking speed
        front, back = 0.5 * exc, -0.5 * exc
        in_st = u < d
        st = np.where(in_st, front - (front - back) * (u / d), 0.0)
        w = np.clip((u - d) / (period - d), 0.0, 1.0)
        sw = back + (front - back) * 0.5 * (1.0 - np.cos(np.pi * w))
        rel[sel] = np.where(in_st, st, sw)
        height[sel] = np.where(in_st, 0.0, lift * np.sin(np.pi * w) ** 2)
        stance[sel] = in_st
    return rel, height, stance


def generate(spec: GaitSpec | None = None, **changes: Any) -> SyntheticClip:
    """Generate a lateral-view walking dog with known gait truth.

    Parameters
    ----------
    spec
        Clip parameters; keyword arguments override fields of ``spec``.

    Returns
    -------
    SyntheticClip
        Tracks (canonical keypoints, pixels) plus the true strike and lift-off times.
    """
    spec = (spec or GaitSpec()).with_(**changes) if changes else (spec or GaitSpec())
    rng = np.random.default_rng(spec.seed)
    n = int(round(spec.duration_s * spec.fps))
    t = np.arange(n) / spec.fps
    if spec.vfr_jitter > 0:
        t = t + rng.uniform(-spec.vfr_jitter, spec.vfr_jitter, n) / spec.fps
        t = np.sort(t)
        t[1:] = np.maximum(t[1:], t[:-1] + 0.2 / spec.fps)
    t = t + spec.time_offset_s
    tl = t - spec.time_offset_s  # gait time, independent of the clock's origin
    L = spec.body_length_px
    d = float(np.sign(spec.direction) or 1)
    sev = float(np.clip(spec.limp_severity, 0.0, 1.0))

    lh = _strike_times(spec, rng, spec.duration_s)
    periods = np.diff(lh)
    strikes: dict[str, np.ndarray] = {}
    cycles: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    lift_offs: dict[str, np.ndarray] = {}
    for limb in LIMBS:
        if limb == "right_hind":
            offset = spec.hind_phase
        elif limb == "right_front":
            offset = (_LATERAL_SEQUENCE["left_front"] + spec.front_phase) % 1.0
        else:
            offset = _LATERAL_SEQUENCE[limb]
        s = lh[:-1] + offset * periods
        lame = sev > 0 and spec.limp_side is not None and limb == f"{spec.limp_side}_hind"
        duty = np.full(len(s), spec.duty_factor) * (1.0 - 0.3 * sev if lame else 1.0)
        lift = (0.10 if "hind" in limb else 0.12) * (1.0 - 0.4 * sev if lame else 1.0)
        strikes[limb] = s
        cycles[limb] = _limb_cycle(tl, s, duty, spec.speed_bl_s, lift)
        lift_offs[limb] = s[:-1] + duty[:-1] * np.diff(s)

    # Trunk: tail base moves forward at constant speed; the pelvis dips in each hind stance.
    x_tail = d * spec.speed_bl_s * L * tl
    dip = np.zeros(n)
    for limb in ("left_hind", "right_hind"):
        lame = sev > 0 and spec.limp_side is not None and limb == f"{spec.limp_side}_hind"
        depth = 0.03 * (1.0 - 0.6 * sev if lame else 1.0)
        s = strikes[limb]
        lo = lift_offs[limb]
        for k in range(len(lo)):
            sel = (tl >= s[k]) & (tl < lo[k])
            dip[sel] += depth * np.sin(np.pi * (tl[sel] - s[k]) / (lo[k] - s[k])) ** 2
    ground = 0.45 * spec.frame_size[1] + 0.85 * L
    y_tail = ground - 0.85 * L + dip * L
    y_withers = ground - 0.92 * L + 0.01 * L * np.sin(2 * np.pi * 2 * spec.stride_hz * tl)

    pos = np.full((n, len(CANONICAL_KEYPOINTS), 2), np.nan)
    idx = {k: i for i, k in enumerate(CANONICAL_KEYPOINTS)}

    def put(name: str, x: np.ndarray, y: np.ndarray) -> None:
        pos[:, idx[name], 0] = x
        pos[:, idx[name], 1] = y

    x_withers = x_tail + d * L
    put("tail_base", x_tail, y_tail)
    put("withers", x_withers, y_withers)
    put("throat", x_withers + d * 0.28 * L, y_withers + 0.05 * L)
    put("nose", x_withers + d * 0.55 * L, y_withers - 0.02 * L)
    for side, sgn in (("left", 1.0), ("right", -1.0)):
        put(f"{side}_eye", x_withers + d * 0.42 * L, y_withers - 0.12 * L + sgn * 0.01 * L)
        put(f"{side}_ear", x_withers + d * 0.33 * L, y_withers - 0.2 * L + sgn * 0.01 * L)

    for limb in LIMBS:
        side, end = limb.split("_")
        rel, height, _ = cycles[limb]
        if end == "hind":
            hip_x, hip_y = x_tail + d * 0.12 * L, y_tail + 0.12 * L
        else:
            hip_x, hip_y = x_withers - d * 0.05 * L, y_withers + 0.25 * L
        paw_x = hip_x + d * rel * L
        paw_y = ground - height * L
        if end == "hind":
            # Hock sits behind and above the paw; it folds up in swing. Stifle lies forward of the hip-hock line.
            hock_x = paw_x - d * (0.10 + 0.35 * height) * L
            hock_y = paw_y - (0.28 - 0.6 * height) * L
            stifle_x = hip_x + 0.5 * (hock_x - hip_x) + d * 0.12 * L
            stifle_y = hip_y + 0.5 * (hock_y - hip_y)
            put(f"{side}_hind_paw", paw_x, paw_y)
            put(f"{side}_hock", hock_x, hock_y)
            put(f"{side}_stifle", stifle_x, stifle_y)
        else:
            carpus_x = paw_x + d * 0.25 * height * L
            carpus_y = paw_y - (0.22 - 0.3 * height) * L
            put(f"{side}_front_paw", paw_x, paw_y)
            put(f"{side}_carpus", carpus_x, carpus_y)
            put(f"{side}_elbow", hip_x + 0.4 * (carpus_x - hip_x), hip_y + 0.5 * (carpus_y - hip_y))

    if spec.tremor_hz:
        for side in ("left", "right"):
            phase = rng.uniform(0, 2 * np.pi)
            for j, name in enumerate((f"{side}_stifle", f"{side}_hock", f"{side}_hind_paw")):
                amp = spec.tremor_amp_bl * L * (0.6 + 0.2 * j)
                wave = amp * np.sin(2 * np.pi * spec.tremor_hz * tl + phase)
                pos[:, idx[name], 1] += wave
                pos[:, idx[name], 0] += 0.4 * wave

    if spec.pan:
        cam = x_tail + d * 0.5 * L - 0.5 * spec.frame_size[0]
        pos[..., 0] -= cam[:, None]
    else:
        pos[..., 0] += 0.5 * spec.frame_size[0] - d * 0.5 * L

    clean = pos.copy()
    noisy = pos + rng.normal(0.0, spec.jitter_px, pos.shape)
    near = "right" if d > 0 else "left"  # walking to the right, the dog shows the camera its right side
    conf = np.where(np.array([k.startswith(mirror_name(near + "_")) for k in CANONICAL_KEYPOINTS]), 0.75, 0.92)
    confidence = np.clip(conf[None, :] + rng.normal(0, 0.04, (n, len(CANONICAL_KEYPOINTS))), 0.35, 1.0)
    if spec.dropout_rate > 0:
        drop = rng.random((n, len(CANONICAL_KEYPOINTS))) < spec.dropout_rate
        noisy[drop] = rng.uniform(0, spec.frame_size[0], (int(drop.sum()), 2))
        confidence[drop] = rng.uniform(0.01, 0.15, int(drop.sum()))
    for start, stop in spec.swap_segments:
        sel = (tl >= start) & (tl < stop)
        for name in ("stifle", "hock", "hind_paw"):
            a, b = idx[f"left_{name}"], idx[f"right_{name}"]
            noisy[sel, a], noisy[sel, b] = noisy[sel, b].copy(), noisy[sel, a].copy()
            confidence[sel, a], confidence[sel, b] = confidence[sel, b].copy(), confidence[sel, a].copy()

    ds = from_arrays(
        noisy,
        confidence,
        t,
        fps=spec.fps,
        source_software="hindsight.synthetic",
        source_file=f"synthetic(seed={spec.seed})",
        frame_size=spec.frame_size,
    )
    return SyntheticClip(
        tracks=ds,
        spec=spec,
        strikes={k: v + spec.time_offset_s for k, v in strikes.items()},
        lift_offs={k: v + spec.time_offset_s for k, v in lift_offs.items()},
        clean_position=clean,
    )


def mirror_labels(ds: xr.Dataset) -> xr.Dataset:
    """Swap every left/right keypoint label (the dog's left becomes its right)."""
    names = [str(k) for k in ds["keypoint"].values]
    out = ds.assign_coords(keypoint=[mirror_name(k) for k in names]).sel(keypoint=names)
    out.attrs = dict(ds.attrs)
    return out


_COAT = (139, 90, 43)
_COAT_FAR = (96, 60, 28)


@lru_cache(maxsize=4)
def _background(size: tuple[int, int]) -> np.ndarray:
    """Sky, grass and a fixed grass texture (drawn once per frame size)."""
    import cv2

    w, h = size
    img = np.zeros((h, w, 3), dtype=np.uint8)
    horizon = int(0.45 * h)
    img[:horizon] = (170, 205, 235)
    img[horizon:] = (95, 140, 70)
    rng = np.random.default_rng(1)
    ys = rng.integers(horizon, h, 300)
    xs = rng.integers(0, w, 300)
    for x, y in zip(xs, ys, strict=True):
        cv2.line(img, (int(x), int(y)), (int(x) + 3, int(y) - 6), (70, 115, 50), 1)
    img.setflags(write=False)
    return img


def render_frame(
    points: dict[str, tuple[float, float]],
    size: tuple[int, int],
    body_length_px: float,
    *,
    thigh_width_bl: tuple[float, float] | None = None,
    fore_width_bl: float | None = None,
    body_depth_bl: float = 0.2,
) -> np.ndarray:
    """Draw a simple dog-like figure (far legs darker) on a grass-and-sky background.

    Parameters
    ----------
    points
        Canonical keypoint name -> (x, y) pixel position for this frame.
    size
        ``(width, height)`` of the frame.
    thigh_width_bl
        If given, the near thigh is drawn as a band of this width (left, right; in body
        lengths) from the tail base to the stifle: the truth for the muscle indices.
    fore_width_bl
        Width of the near forearm band (elbow to carpus), body lengths.
    body_depth_bl
        Half-height of the trunk ellipse, body lengths.
    """
    import cv2

    img = _background(tuple(size)).copy()
    L = body_length_px
    limb_w = max(2, int(0.07 * L))

    def p(name: str) -> tuple[int, int] | None:
        v = points.get(name)
        if v is None or not np.all(np.isfinite(v)):
            return None
        return int(round(v[0])), int(round(v[1]))

    def leg(side: str, colour: tuple[int, int, int], names: tuple[str, ...], root: str) -> None:
        chain = [p(root)] + [p(f"{side}_{n}") for n in names]
        for a, b in zip(chain[:-1], chain[1:], strict=True):
            if a and b:
                cv2.line(img, a, b, colour, limb_w, cv2.LINE_AA)
        if chain[-1]:
            cv2.circle(img, chain[-1], int(limb_w * 0.8), colour, -1, cv2.LINE_AA)

    wi, tb = p("withers"), p("tail_base")
    far = "left" if wi and tb and wi[0] > tb[0] else "right"  # facing right, the right side is nearer
    near = "left" if far == "right" else "right"
    leg(far, _COAT_FAR, ("stifle", "hock", "hind_paw"), "tail_base")
    leg(far, _COAT_FAR, ("elbow", "carpus", "front_paw"), "withers")
    if wi and tb:
        centre = ((wi[0] + tb[0]) // 2, (wi[1] + tb[1]) // 2 + int(0.08 * L))
        angle = float(np.degrees(np.arctan2(wi[1] - tb[1], wi[0] - tb[0])))
        cv2.ellipse(img, centre, (int(0.55 * L), int(body_depth_bl * L)), angle, 0, 360, _COAT, -1, cv2.LINE_AA)
        d = 1 if wi[0] > tb[0] else -1
        tail_tip = (tb[0] - d * int(0.35 * L), tb[1] - int(0.15 * L))
        cv2.line(img, tb, tail_tip, _COAT, max(2, int(0.05 * L)), cv2.LINE_AA)
    th, no = p("throat"), p("nose")
    if wi and th:
        cv2.line(img, wi, th, _COAT, int(0.16 * L), cv2.LINE_AA)
    if th and no:
        cv2.line(img, th, no, _COAT, int(0.12 * L), cv2.LINE_AA)
        cv2.circle(img, no, max(2, int(0.03 * L)), (20, 20, 20), -1, cv2.LINE_AA)
    ear = p(f"{near}_ear")
    if ear:
        cv2.circle(img, ear, max(2, int(0.06 * L)), _COAT_FAR, -1, cv2.LINE_AA)
    eye = p(f"{near}_eye")
    if eye:
        cv2.circle(img, eye, max(1, int(0.02 * L)), (15, 15, 15), -1, cv2.LINE_AA)
    leg(near, _COAT, ("stifle", "hock", "hind_paw"), "tail_base")
    leg(near, _COAT, ("elbow", "carpus", "front_paw"), "withers")
    st_near = p(f"{near}_stifle")
    if thigh_width_bl is not None and tb and st_near:
        width = thigh_width_bl[0 if near == "left" else 1] * L
        cv2.line(img, tb, st_near, _COAT, max(2, int(round(width))), cv2.LINE_8)
    el_near, ca_near = p(f"{near}_elbow"), p(f"{near}_carpus")
    if fore_width_bl is not None and el_near and ca_near:
        cv2.line(img, el_near, ca_near, _COAT, max(2, int(round(fore_width_bl * L))), cv2.LINE_8)
    return img


def render_video(clip: SyntheticClip, path: str, *, codec: str = "libx264", rotation: int = 0, **draw: Any) -> str:
    """Render a synthetic clip's clean keypoints as a video with its real timestamps.

    Extra keyword arguments go to :func:`render_frame` (thigh widths, trunk depth).
    """
    from vision.video import write_video

    assert clip.clean_position is not None
    names = list(CANONICAL_KEYPOINTS)
    size = clip.spec.frame_size

    def frames():
        for i in range(clip.clean_position.shape[0]):
            pts = {
                n: (float(clip.clean_position[i, k, 0]), float(clip.clean_position[i, k, 1]))
                for k, n in enumerate(names)
            }
            img = render_frame(pts, size, clip.spec.body_length_px, **draw)
            if rotation:
                img = np.ascontiguousarray(np.rot90(img, k=rotation // 90))
            yield img

    times = clip.tracks["time"].values
    write_video(path, frames(), clip.spec.fps, codec=codec, rotation=rotation, times=times)
    return path


def generate_rear(
    *,
    thigh_width_bl: tuple[float, float] = (0.22, 0.22),
    duration_s: float = 6.0,
    fps: float = 30.0,
    frame_size: tuple[int, int] = (640, 360),
    hip_width_px: float = 120.0,
    seed: int = 0,
) -> tuple[xr.Dataset, list[np.ndarray]]:
    """A dog seen from behind, walking away on the spot, with known left/right thigh widths.

    Thigh widths are in units of the leg length (tail base to hind paws). Returns the
    keypoint tracks and the rendered RGB frames.
    """
    import cv2

    rng = np.random.default_rng(seed)
    n = int(round(duration_s * fps))
    t = np.arange(n) / fps
    w, h = frame_size
    idx = {k: i for i, k in enumerate(CANONICAL_KEYPOINTS)}
    pos = np.full((n, len(CANONICAL_KEYPOINTS), 2), np.nan)
    frames = []
    leg = 1.3 * hip_width_px
    for i, ti in enumerate(t):
        cx = 0.5 * w + 0.02 * w * np.sin(2 * np.pi * 1.0 * ti)  # sway
        top = 0.3 * h
        sway = 0.03 * hip_width_px * np.sin(2 * np.pi * 1.0 * ti)
        pts = {
            "tail_base": (cx, top),
            "withers": (cx + 0.2 * sway, top - 0.15 * leg),
            "left_stifle": (cx - 0.3 * hip_width_px, top + 0.45 * leg),
            "right_stifle": (cx + 0.3 * hip_width_px, top + 0.45 * leg),
            "left_hock": (cx - 0.25 * hip_width_px, top + 0.75 * leg),
            "right_hock": (cx + 0.25 * hip_width_px, top + 0.75 * leg),
            "left_hind_paw": (cx - 0.25 * hip_width_px, top + leg),
            "right_hind_paw": (cx + 0.25 * hip_width_px, top + leg),
        }
        img = _background((w, h)).copy()
        y_mid = top + THIGH_MID * 0.45 * leg
        for side, sgn, wbl in (("left", -1, thigh_width_bl[0]), ("right", 1, thigh_width_bl[1])):
            tw = wbl * leg
            centre = (int(round(cx + sgn * tw / 2)), int(round(y_mid)))
            cv2.ellipse(img, centre, (max(1, int(round(tw / 2))), int(0.4 * leg)), 0, 0, 360, _COAT, -1, cv2.LINE_8)
            for a, b in ((f"{side}_stifle", f"{side}_hock"), (f"{side}_hock", f"{side}_hind_paw")):
                pa, pb = pts[a], pts[b]
                cv2.line(img, (int(pa[0]), int(pa[1])), (int(pb[0]), int(pb[1])), _COAT, max(2, int(0.08 * leg)))
        cv2.ellipse(
            img,
            (int(cx), int(top - 0.05 * leg)),
            (int(0.45 * hip_width_px), int(0.12 * leg)),
            0,
            0,
            360,
            _COAT,
            -1,
            cv2.LINE_8,
        )
        cv2.line(img, (int(cx), int(top)), (int(cx), int(top + 0.3 * leg)), _COAT_FAR, max(2, int(0.04 * leg)))
        frames.append(img)
        for name, (x, y) in pts.items():
            pos[i, idx[name]] = (x, y)
    pos_noisy = pos + rng.normal(0, 0.5, pos.shape)
    ds = from_arrays(pos_noisy, None, t, fps=fps, source_software="hindsight.synthetic-rear", frame_size=frame_size)
    return ds, frames


#: Mid-thigh height as a fraction of the tail-base-to-stifle drop (matches vision.muscle.indices).
THIGH_MID = 0.6
