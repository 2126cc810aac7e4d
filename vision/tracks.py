"""Pose tracks: a movement-compatible ``xarray.Dataset`` and its provenance log.

Layout (as in the ``movement`` toolbox)::

    position    float32 (time, space, keypoint, individual)  pixels, NaN where unknown
    confidence  float32 (time, keypoint, individual)         0..1, NaN where unknown

Coordinates: ``time`` in seconds from the clip's real timestamps, ``space`` =
``["x", "y"]`` (image axes, y down), ``keypoint`` = canonical names,
``individual`` = ``["dog_0", ...]``. Attributes: ``fps``, ``time_unit``,
``source_software``, ``source_file``, ``ds_type`` ("poses"), ``frame_width``,
``frame_height`` and ``log``, a JSON list with one entry per processing step.

Functions here never modify their input; they return a new dataset with one
more entry in the log.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from vision.anatomy import CANONICAL_KEYPOINTS


def from_arrays(
    position: np.ndarray,
    confidence: np.ndarray | None,
    time_s: np.ndarray,
    keypoint_names: Sequence[str] = CANONICAL_KEYPOINTS,
    *,
    individual_names: Sequence[str] | None = None,
    fps: float | None = None,
    source_software: str = "hindsight",
    source_file: str | None = None,
    frame_size: tuple[int, int] | None = None,
) -> xr.Dataset:
    """Build a tracks dataset from plain arrays.

    Parameters
    ----------
    position
        Shape ``(time, keypoint, 2)`` for one dog or ``(time, keypoint, 2, individual)``; pixels.
    confidence
        Shape ``(time, keypoint)`` or ``(time, keypoint, individual)``; None means all 1 where finite.
    time_s
        Shape ``(time,)``; seconds, strictly increasing.
    fps
        Nominal frame rate; estimated from ``time_s`` when None.
    frame_size
        ``(width, height)`` of the video in pixels, when known.
    """
    pos = np.asarray(position, dtype=np.float32)
    if pos.ndim == 3:
        pos = pos[..., np.newaxis]
    if pos.ndim != 4 or pos.shape[2] != 2:
        raise ValueError(f"position must be (time, keypoint, 2[, individual]), got {pos.shape}")
    n_time, n_kp, _, n_ind = pos.shape
    if confidence is None:
        conf = np.where(np.isfinite(pos).all(axis=2), 1.0, np.nan).astype(np.float32)
    else:
        conf = np.asarray(confidence, dtype=np.float32)
        if conf.ndim == 2:
            conf = conf[..., np.newaxis]
    if conf.shape != (n_time, n_kp, n_ind):
        raise ValueError(f"confidence shape {conf.shape} does not match position {pos.shape}")
    t = np.asarray(time_s, dtype=np.float64)
    if t.shape != (n_time,):
        raise ValueError("time_s must have one entry per frame")
    if n_time > 1 and not np.all(np.diff(t) > 0):
        raise ValueError("timestamps must be strictly increasing")
    if len(keypoint_names) != n_kp:
        raise ValueError("one keypoint name per keypoint is needed")
    if fps is None:
        fps = float(1.0 / np.median(np.diff(t))) if n_time > 1 else 30.0
    names = list(individual_names) if individual_names else [f"dog_{i}" for i in range(n_ind)]
    ds = xr.Dataset(
        data_vars={
            "position": (("time", "space", "keypoint", "individual"), pos.transpose(0, 2, 1, 3)),
            "confidence": (("time", "keypoint", "individual"), conf),
        },
        coords={
            "time": t,
            "space": ["x", "y"],
            "keypoint": list(keypoint_names),
            "individual": names,
        },
        attrs={
            "fps": float(fps),
            "time_unit": "seconds",
            "source_software": source_software,
            "source_file": source_file or "",
            "ds_type": "poses",
            "frame_width": int(frame_size[0]) if frame_size else 0,
            "frame_height": int(frame_size[1]) if frame_size else 0,
            "log": "[]",
        },
    )
    return log_step(ds, "from_arrays", source_software=source_software)


def log_step(ds: xr.Dataset, operation: str, **parameters: Any) -> xr.Dataset:
    """Return ``ds`` with one entry appended to its provenance log (``attrs["log"]``)."""
    out = ds.copy()
    out.attrs = dict(ds.attrs)
    entries = read_log(ds)
    entries.append(
        {
            "operation": operation,
            "parameters": {k: _jsonable(v) for k, v in parameters.items()},
            "at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }
    )
    out.attrs["log"] = json.dumps(entries)
    return out


def read_log(ds: xr.Dataset) -> list[dict[str, Any]]:
    """The provenance log as a list of dicts (empty if absent or unreadable)."""
    raw = ds.attrs.get("log", "[]")
    try:
        entries = json.loads(raw) if isinstance(raw, str) else list(raw)
    except json.JSONDecodeError:
        return []
    return entries if isinstance(entries, list) else []


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def validate(ds: xr.Dataset) -> None:
    """Check that ``ds`` is a tracks dataset; raise ValueError naming the problem."""
    for var, dims in (
        ("position", ("time", "space", "keypoint", "individual")),
        ("confidence", ("time", "keypoint", "individual")),
    ):
        if var not in ds:
            raise ValueError(f"tracks need a '{var}' variable")
        if tuple(ds[var].dims) != dims:
            raise ValueError(f"'{var}' must have dims {dims}, got {tuple(ds[var].dims)}")
    if list(ds["space"].values) != ["x", "y"]:
        raise ValueError("space must be ['x', 'y']")
    t = ds["time"].values
    if t.size > 1 and not np.all(np.diff(t) > 0):
        raise ValueError("time must be strictly increasing")


def keypoint_xy(ds: xr.Dataset, name: str, individual: int = 0) -> np.ndarray:
    """Positions of one keypoint, shape ``(time, 2)``, float64; NaN rows where absent."""
    if name not in ds["keypoint"].values:
        return np.full((ds.sizes["time"], 2), np.nan)
    return ds["position"].sel(keypoint=name).isel(individual=individual).values.astype(np.float64)


def select_individual(ds: xr.Dataset, individual: int = 0) -> xr.Dataset:
    """Keep one individual (returns a dataset with a single-entry ``individual`` dim)."""
    out = ds.isel(individual=[individual])
    return log_step(out, "select_individual", individual=individual)


def usable_fraction(ds: xr.Dataset, individual: int = 0) -> dict[str, float]:
    """Share of frames with a finite position, per keypoint."""
    pos = ds["position"].isel(individual=individual).values  # (time, space, keypoint)
    ok = np.isfinite(pos).all(axis=1)
    return {str(k): float(ok[:, i].mean()) if ok.shape[0] else 0.0 for i, k in enumerate(ds["keypoint"].values)}
