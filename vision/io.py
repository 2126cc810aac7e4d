"""Pose-file I/O facade: the format is chosen by the file extension.

Readers return a tracks dataset (see :mod:`vision.tracks`) with canonical
keypoint names; writers take one. Supported:

=========  =====================================  ======  ======
extension  format                                 read    write
=========  =====================================  ======  ======
``.csv``   DeepLabCut CSV (single and multi-animal) yes   yes
``.h5``    DeepLabCut HDF5 (pandas, PyTables)     yes     no
``.nc``    NetCDF of a movement-style dataset     yes     yes
``.slp``   SLEAP labels (``sleap-io``, optional)  yes     no
``.json``  keypoint JSON (``keypoint_names`` + ``frames`` of ``[x, y, c]``)  yes  no
=========  =====================================  ======  ======

Keypoint names from Animal-Pose, AP-10K, StanfordExtra and SuperAnimal-Quadruped
are mapped to canonical names with the file's own convention
(:func:`vision.anatomy.canonical_names`).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from vision.anatomy import CANONICAL_KEYPOINTS, canonical_names
from vision.errors import HindsightInputError
from vision.tracks import from_arrays, log_step, validate

POSE_EXTENSIONS = (".csv", ".h5", ".hdf5", ".nc", ".slp", ".json")
_REQUIRED_ANY = ("left_hind_paw", "right_hind_paw", "left_hock", "right_hock")
#: Coordinates beyond this many pixels (or non-finite ones) are masked as unknown: no camera has such frames.
MAX_ABS_COORD_PX = 1e6
#: Caps on the keypoint JSON's shape, against hostile files.
MAX_JSON_KEYPOINTS = 1000
MAX_JSON_NAME_CHARS = 200


def is_pose_file(path: str | os.PathLike[str]) -> bool:
    """True when the extension names a pose format this module reads."""
    return Path(path).suffix.lower() in POSE_EXTENSIONS


def load_poses(path: str | os.PathLike[str], fps: float | None = None) -> xr.Dataset:
    """Read a pose file into a tracks dataset with canonical names.

    Parameters
    ----------
    fps
        Frame rate for formats without timestamps (DeepLabCut, JSON); required there
        unless the file states it.

    Raises
    ------
    HindsightInputError
        Missing/empty/unreadable file, unknown extension, or no recognisable hind-limb keypoints.
    """
    p = Path(path)
    if not p.is_file():
        raise HindsightInputError(f"file not found: {p.name}")
    if p.stat().st_size == 0:
        raise HindsightInputError(f"empty file: {p.name}")
    ext = p.suffix.lower()
    if ext not in POSE_EXTENSIONS:
        raise HindsightInputError(f"unsupported pose file type '{ext}' ({', '.join(POSE_EXTENSIONS)})")
    # Huge or infinite values are masked (and counted) below; numpy's cast warnings are not the user's concern.
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            if ext == ".csv":
                return _load_dlc_frame(_read_dlc_csv(p), p, fps)
            if ext in (".h5", ".hdf5"):
                return _load_dlc_frame(_read_dlc_h5(p), p, fps)
            if ext == ".nc":
                return _load_netcdf(p)
            if ext == ".slp":
                return _load_slp(p, fps)
            return _load_json(p, fps)
        except HindsightInputError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, OSError, UnicodeDecodeError, RecursionError) as exc:
            # json.JSONDecodeError is a ValueError; the message names the type only (never a C back-trace)
            raise HindsightInputError(f"cannot read pose file {p.name}: {type(exc).__name__}") from exc


def save_poses(ds: xr.Dataset, path: str | os.PathLike[str]) -> Path:
    """Write tracks as DeepLabCut CSV (``.csv``) or movement-readable NetCDF (``.nc``)."""
    p = Path(path)
    ext = p.suffix.lower()
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".part")
    if ext == ".csv":
        to_dlc_frame(ds).to_csv(tmp)
    elif ext == ".nc":
        ds.to_netcdf(tmp, format="NETCDF4", engine="netcdf4")
    else:
        raise HindsightInputError(f"cannot write pose files of type '{ext}' (use .csv or .nc)")
    os.replace(tmp, p)
    return p


# --- DeepLabCut -----------------------------------------------------------------------------------


def _read_dlc_csv(p: Path) -> pd.DataFrame:
    with p.open("r", encoding="utf-8", errors="strict") as fh:
        head = [fh.readline() for _ in range(4)]
    first = [c.strip().lower() for c in head[0].split(",")]
    if not first or first[0] != "scorer":
        raise HindsightInputError(
            f"unknown pose columns in {p.name}: expected a DeepLabCut CSV (scorer/bodyparts/coords header)"
        )
    levels = 4 if head[1].split(",")[0].strip().lower() == "individuals" else 3
    return pd.read_csv(p, header=list(range(levels)), index_col=0)


def _read_dlc_h5(p: Path) -> pd.DataFrame:
    """A DeepLabCut HDF5 table; damaged, truncated or foreign HDF5 gives one plain line.

    PyTables raises ``HDF5ExtError`` with HDF5's C back-trace in its message: it is caught
    here and only its meaning is kept.
    """
    with p.open("rb") as fh:
        magic = fh.read(8)
    if magic != b"\x89HDF\r\n\x1a\n":
        raise HindsightInputError(f"not an HDF5 file: {p.name}")
    try:
        import tables

        hdf_errors: tuple[type[BaseException], ...] = (tables.exceptions.HDF5ExtError, tables.exceptions.NodeError)
    except ImportError:  # pragma: no cover - pandas needs PyTables for read_hdf
        hdf_errors = ()
    try:
        df = pd.read_hdf(p)
    except hdf_errors as exc:
        raise HindsightInputError(f"cannot read HDF5 file {p.name}: damaged or truncated") from exc
    except (ValueError, TypeError, KeyError, AttributeError, OSError) as exc:
        raise HindsightInputError(f"not a DeepLabCut HDF5 table: {p.name}") from exc
    if not isinstance(df, pd.DataFrame) or not isinstance(df.columns, pd.MultiIndex):
        raise HindsightInputError(f"unknown pose data in {p.name}")
    return df


def mask_nonfinite(
    position: np.ndarray, confidence: np.ndarray | None, space_axis: int
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Mask coordinates that are infinite or beyond :data:`MAX_ABS_COORD_PX`, quietly.

    Parameters
    ----------
    position
        Coordinates; read as float64 before any float32 cast, so that ``1e308`` is seen as a
        value, not an overflow warning.
    confidence
        Optional scores of the same points; an infinite score is masked (NaN) too.
    space_axis
        The axis of ``position`` holding ``x, y``: a point with one bad coordinate loses both.

    Returns
    -------
    position, confidence, n_masked
        Float64 copies with the bad values set to NaN, and how many values were bad
        (NaN inputs, points already unknown, are not counted).
    """
    with np.errstate(all="ignore"):
        pos = np.array(position, dtype=np.float64)
        bad = np.isinf(pos) | (np.abs(pos) > MAX_ABS_COORD_PX)
        conf = None if confidence is None else np.array(confidence, dtype=np.float64)
        n = int(bad.sum())
        pos[np.broadcast_to(bad.any(axis=space_axis, keepdims=True), pos.shape)] = np.nan
        if conf is not None:
            cbad = np.isinf(conf)
            n += int(cbad.sum())
            conf[cbad] = np.nan
    return pos, conf, n


def _load_dlc_frame(df: pd.DataFrame, p: Path, fps: float | None) -> xr.Dataset:
    cols = df.columns
    names = [str(n).lower() for n in (cols.names or [])]
    if cols.nlevels == 3:
        df = pd.concat({"dog_0": df.droplevel(0, axis=1)}, axis=1)
    elif cols.nlevels == 4:
        df = df.droplevel(0, axis=1)
    else:
        raise HindsightInputError(f"unknown pose columns in {p.name}: expected scorer/bodyparts/coords")
    if names and names[-1] not in ("coords", ""):
        raise HindsightInputError(f"unknown pose columns in {p.name}: last header row must be 'coords'")
    individuals = list(dict.fromkeys(df.columns.get_level_values(0)))
    bodyparts = list(dict.fromkeys(df.columns.get_level_values(1)))
    mapping = dict(zip(bodyparts, canonical_names([str(bp) for bp in bodyparts]), strict=True))
    mapped = {bp: c for bp, c in mapping.items() if c is not None}
    if not any(c in _REQUIRED_ANY for c in mapped.values()):
        raise HindsightInputError(
            f"unknown pose columns in {p.name}: no hind-limb keypoints among {', '.join(map(str, bodyparts[:8]))}"
        )
    n = len(df)
    keypoints = list(dict.fromkeys(mapped.values()))
    pos = np.full((n, len(keypoints), 2, len(individuals)), np.nan, dtype=np.float64)
    conf = np.full((n, len(keypoints), len(individuals)), np.nan, dtype=np.float64)
    for i, ind in enumerate(individuals):
        for bp, canon in mapped.items():
            k = keypoints.index(canon)
            try:
                sub = df[ind][bp]
            except KeyError:
                continue
            pos[:, k, 0, i] = pd.to_numeric(sub["x"], errors="coerce").to_numpy()
            pos[:, k, 1, i] = pd.to_numeric(sub["y"], errors="coerce").to_numpy()
            if "likelihood" in sub:
                conf[:, k, i] = pd.to_numeric(sub["likelihood"], errors="coerce").to_numpy()
            else:
                conf[:, k, i] = np.where(np.isfinite(pos[:, k, :, i]).all(axis=1), 1.0, np.nan)
    rate = _need_fps(fps, p)
    pos, conf_m, n_bad = mask_nonfinite(pos, conf, space_axis=2)
    assert conf_m is not None
    conf = np.where(np.isfinite(pos).all(axis=2), conf_m, np.nan)
    ds = from_arrays(
        pos,
        conf,
        np.arange(n) / rate,
        keypoints,
        individual_names=[str(x) for x in individuals],
        fps=rate,
        source_software="DeepLabCut",
        source_file=p.name,
    )
    return log_step(
        ds,
        "load_poses",
        format="deeplabcut",
        mapped={str(k): v for k, v in mapped.items()},
        masked_nonfinite=n_bad,
    )


def to_dlc_frame(ds: xr.Dataset, scorer: str = "hindsight") -> pd.DataFrame:
    """Tracks as a DeepLabCut DataFrame (single-animal layout for one dog, multi-animal otherwise)."""
    validate(ds)
    inds = [str(i) for i in ds["individual"].values]
    kps = [str(k) for k in ds["keypoint"].values]
    data, columns = [], []
    for i, ind in enumerate(inds):
        for k, kp in enumerate(kps):
            for coord in ("x", "y", "likelihood"):
                if coord == "likelihood":
                    data.append(ds["confidence"].values[:, k, i])
                else:
                    data.append(ds["position"].values[:, 0 if coord == "x" else 1, k, i])
                columns.append((scorer, ind, kp, coord) if len(inds) > 1 else (scorer, kp, coord))
    names = ["scorer", "individuals", "bodyparts", "coords"] if len(inds) > 1 else ["scorer", "bodyparts", "coords"]
    return pd.DataFrame(np.stack(data, axis=1), columns=pd.MultiIndex.from_tuples(columns, names=names))


# --- NetCDF, SLEAP, JSON -------------------------------------------------------------------------


def _load_netcdf(p: Path) -> xr.Dataset:
    try:
        ds = xr.load_dataset(p)
    except Exception as exc:  # netCDF4 raises its own types  # noqa: BLE001
        raise HindsightInputError(f"cannot read NetCDF file {p.name}") from exc
    ds = ds.rename({k: v for k, v in {"keypoints": "keypoint", "individuals": "individual"}.items() if k in ds.dims})
    try:
        validate(ds)
    except ValueError as exc:
        raise HindsightInputError(f"{p.name} is not a pose-track dataset: {exc}") from exc
    raw = [str(k) for k in ds["keypoint"].values]
    names = canonical_names(raw)
    keep = [i for i, c in enumerate(names) if c is not None]
    ds = ds.isel(keypoint=keep).assign_coords(keypoint=[names[i] for i in keep])
    pos, conf, n_bad = mask_nonfinite(ds["position"].values, ds["confidence"].values, space_axis=1)
    if n_bad:
        ds["position"] = ds["position"].copy(data=pos.astype(np.float32))
        ds["confidence"] = ds["confidence"].copy(data=np.asarray(conf, dtype=np.float32))
    if "fps" not in ds.attrs or not ds.attrs["fps"]:
        t = ds["time"].values
        ds.attrs["fps"] = float(1 / np.median(np.diff(t))) if t.size > 1 else 30.0
    ds.attrs.setdefault("log", "[]")
    return log_step(ds, "load_poses", format="netcdf", file=p.name, masked_nonfinite=n_bad)


def _load_slp(p: Path, fps: float | None) -> xr.Dataset:
    try:
        import sleap_io
    except ImportError as exc:
        raise HindsightInputError("reading .slp needs the optional extra: pip install 'hindsight[sleap]'") from exc
    labels = sleap_io.load_slp(str(p))
    arr = labels.numpy()  # (frames, tracks, nodes, 2)
    nodes = [n.name for n in labels.skeletons[0].nodes]
    canon = canonical_names(nodes)
    keep = [i for i, c in enumerate(canon) if c is not None]
    if not any(canon[i] in _REQUIRED_ANY for i in keep):
        raise HindsightInputError(f"unknown pose columns in {p.name}: no hind-limb keypoints")
    pos, _, n_bad = mask_nonfinite(np.transpose(arr[:, :, keep, :], (0, 2, 3, 1)), None, space_axis=2)
    rate = _need_fps(fps, p)
    ds = from_arrays(
        pos,
        None,
        np.arange(arr.shape[0]) / rate,
        [str(canon[i]) for i in keep],
        fps=rate,
        source_software="SLEAP",
        source_file=p.name,
    )
    return log_step(ds, "load_poses", format="sleap", masked_nonfinite=n_bad)


def _load_json(p: Path, fps: float | None) -> xr.Dataset:
    """Keypoint JSON, its shape checked before any number is read.

    Expected: ``{"keypoint_names": [str, ...], "frames": [[[x, y(, c)], ...per keypoint], ...per frame],
    "fps": number (optional), "source": str (optional)}``. Anything else is a
    :class:`HindsightInputError` naming the field; nesting too deep for the parser is one too.
    """
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except RecursionError as exc:
        raise HindsightInputError(f"unknown pose JSON in {p.name}: nested too deeply") from exc
    except json.JSONDecodeError as exc:
        raise HindsightInputError(f"not valid JSON: {p.name} (line {exc.lineno})") from exc
    if not isinstance(data, dict) or "keypoint_names" not in data or "frames" not in data:
        raise HindsightInputError(f"unknown pose JSON in {p.name}: needs 'keypoint_names' and 'frames'")
    raw_names = data["keypoint_names"]
    if (
        not isinstance(raw_names, list)
        or not 0 < len(raw_names) <= MAX_JSON_KEYPOINTS
        or not all(isinstance(n, str) and len(n) <= MAX_JSON_NAME_CHARS for n in raw_names)
    ):
        raise HindsightInputError(f"unknown pose JSON in {p.name}: 'keypoint_names' must be a list of names")
    frames_raw = data["frames"]
    n_kp = len(raw_names)
    if not isinstance(frames_raw, list) or not frames_raw:
        raise HindsightInputError(f"unknown pose JSON in {p.name}: 'frames' must be a non-empty list of frames")
    width = _json_point_width(frames_raw[0], n_kp)
    if width is None or not all(_json_point_width(f, n_kp) == width for f in frames_raw):
        raise HindsightInputError(
            f"unexpected frame layout in {p.name}: each frame must list {n_kp} points of [x, y] or [x, y, c] numbers"
        )
    rate_raw = data.get("fps")
    if rate_raw is not None and (isinstance(rate_raw, bool) or not isinstance(rate_raw, int | float)):
        raise HindsightInputError(f"unknown pose JSON in {p.name}: 'fps' must be a number")
    source = data.get("source", "json")
    names = canonical_names(raw_names)
    keep = [i for i, c in enumerate(names) if c is not None]
    if not any(names[i] in _REQUIRED_ANY for i in keep):
        raise HindsightInputError(f"unknown pose columns in {p.name}: no hind-limb keypoints")
    frames = np.asarray(frames_raw, dtype=np.float64)  # (time, keypoint, 2 or 3), shape checked above
    rate = _need_fps(fps or (float(rate_raw) if rate_raw else None), p)
    pos, conf, n_bad = mask_nonfinite(frames[:, keep, :2], frames[:, keep, 2] if width > 2 else None, space_axis=2)
    if conf is not None:
        conf = np.where(np.isfinite(pos).all(axis=2), np.clip(conf, 0, 1), np.nan)
    ds = from_arrays(
        pos,
        conf,
        np.arange(frames.shape[0]) / rate,
        [str(names[i]) for i in keep],
        fps=rate,
        source_software=source[:MAX_JSON_NAME_CHARS] if isinstance(source, str) else "json",
        source_file=p.name,
    )
    return log_step(ds, "load_poses", format="json", masked_nonfinite=n_bad)


def _json_point_width(frame: Any, n_kp: int) -> int | None:
    """2 or 3 when ``frame`` is ``n_kp`` points of that many plain numbers (or nulls), else None."""
    if not isinstance(frame, list) or len(frame) != n_kp:
        return None
    width: int | None = None
    for point in frame:
        if not isinstance(point, list) or len(point) not in (2, 3) or (width is not None and len(point) != width):
            return None
        if not all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in point):
            return None
        width = len(point)
    return width


def _need_fps(fps: float | None, p: Path) -> float:
    if fps is None or not np.isfinite(fps) or fps <= 0:
        raise HindsightInputError(f"{p.name} has no timestamps: give the frame rate with --fps")
    return float(fps)


def ensure_canonical(ds: xr.Dataset) -> xr.Dataset:
    """Reorder/extend keypoints to the canonical list (missing ones all-NaN)."""
    have = [str(k) for k in ds["keypoint"].values]
    if have == list(CANONICAL_KEYPOINTS):
        return ds
    out = ds.reindex(keypoint=list(CANONICAL_KEYPOINTS))
    out.attrs = dict(ds.attrs)
    return out
