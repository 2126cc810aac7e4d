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
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from vision.anatomy import CANONICAL_KEYPOINTS, canonical_names
from vision.errors import HindsightInputError
from vision.tracks import from_arrays, log_step, validate

POSE_EXTENSIONS = (".csv", ".h5", ".hdf5", ".nc", ".slp", ".json")
_REQUIRED_ANY = ("left_hind_paw", "right_hind_paw", "left_hock", "right_hock")


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
    try:
        if ext == ".csv":
            return _load_dlc_frame(_read_dlc_csv(p), p, fps)
        if ext in (".h5", ".hdf5"):
            return _load_dlc_frame(_read_dlc_h5(p), p, fps)
        if ext == ".nc":
            return _load_netcdf(p)
        if ext == ".slp":
            return _load_slp(p, fps)
        if ext == ".json":
            return _load_json(p, fps)
    except HindsightInputError:
        raise
    except (ValueError, KeyError, IndexError, OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HindsightInputError(f"cannot read pose file {p.name}: {type(exc).__name__}") from exc
    raise HindsightInputError(f"unsupported pose file type '{ext}' ({', '.join(POSE_EXTENSIONS)})")


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
    df = pd.read_hdf(p)
    if not isinstance(df, pd.DataFrame):
        raise HindsightInputError(f"unknown pose data in {p.name}")
    return df


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
    pos = np.full((n, len(keypoints), 2, len(individuals)), np.nan, dtype=np.float32)
    conf = np.full((n, len(keypoints), len(individuals)), np.nan, dtype=np.float32)
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
    return log_step(ds, "load_poses", format="deeplabcut", mapped={str(k): v for k, v in mapped.items()})


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
    if "fps" not in ds.attrs or not ds.attrs["fps"]:
        t = ds["time"].values
        ds.attrs["fps"] = float(1 / np.median(np.diff(t))) if t.size > 1 else 30.0
    ds.attrs.setdefault("log", "[]")
    return log_step(ds, "load_poses", format="netcdf", file=p.name)


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
    pos = np.transpose(arr[:, :, keep, :], (0, 2, 3, 1))
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
    return log_step(ds, "load_poses", format="sleap")


def _load_json(p: Path, fps: float | None) -> xr.Dataset:
    data = json.loads(p.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "keypoint_names" not in data or "frames" not in data:
        raise HindsightInputError(f"unknown pose JSON in {p.name}: needs 'keypoint_names' and 'frames'")
    names = canonical_names([str(n) for n in data["keypoint_names"]])
    keep = [i for i, c in enumerate(names) if c is not None]
    if not any(names[i] in _REQUIRED_ANY for i in keep):
        raise HindsightInputError(f"unknown pose columns in {p.name}: no hind-limb keypoints")
    frames = np.asarray(data["frames"], dtype=np.float64)  # (time, keypoint, 3)
    if frames.ndim != 3 or frames.shape[2] < 2:
        raise HindsightInputError(f"unexpected frame layout in {p.name}")
    rate = fps or data.get("fps")
    rate = _need_fps(float(rate) if rate else None, p)
    pos = frames[:, keep, :2]
    conf = np.clip(frames[:, keep, 2], 0, 1) if frames.shape[2] > 2 else None
    ds = from_arrays(
        pos,
        conf,
        np.arange(frames.shape[0]) / rate,
        [str(names[i]) for i in keep],
        fps=rate,
        source_software=str(data.get("source", "json")),
        source_file=p.name,
    )
    return log_step(ds, "load_poses", format="json")


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
