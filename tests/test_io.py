from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from vision.errors import HindsightInputError
from vision.io import load_poses, save_poses, to_dlc_frame
from vision.synthetic import generate


@pytest.fixture(scope="module")
def clip():
    return generate(duration_s=3, seed=3)


def test_dlc_csv_roundtrip(tmp_path, clip):
    p = save_poses(clip.tracks, tmp_path / "dog.csv")
    header = p.read_text().splitlines()[:3]
    assert header[0].startswith("scorer") and header[1].startswith("bodyparts") and header[2].startswith("coords")
    back = load_poses(p, fps=30)
    assert list(back["keypoint"].values) == list(clip.tracks["keypoint"].values)
    np.testing.assert_allclose(back["position"].values, clip.tracks["position"].values, rtol=1e-5)


def test_dlc_multi_animal_csv(tmp_path, clip):
    two = clip.tracks.copy()
    import xarray as xr

    both = xr.concat([clip.tracks, two.assign_coords(individual=["dog_1"])], dim="individual")
    both.attrs = dict(clip.tracks.attrs)
    df = to_dlc_frame(both)
    assert df.columns.nlevels == 4
    p = tmp_path / "ma.csv"
    df.to_csv(p)
    back = load_poses(p, fps=30)
    assert back.sizes["individual"] == 2


def test_dlc_h5_with_animalpose_names(tmp_path, clip):
    df = to_dlc_frame(clip.tracks)
    rename = {"left_stifle": "left_back_elbow", "left_hock": "left_back_knee", "tail_base": "tailbase"}
    df.columns = pd.MultiIndex.from_tuples([(s, rename.get(b, b), c) for s, b, c in df.columns], names=df.columns.names)
    p = tmp_path / "dog.h5"
    df.to_hdf(p, key="df_with_missing")
    back = load_poses(p, fps=25)
    assert "left_stifle" in back["keypoint"].values and "tail_base" in back["keypoint"].values
    assert back.attrs["fps"] == 25


def test_netcdf_roundtrip_keeps_log_and_time(tmp_path, clip):
    p = save_poses(clip.tracks, tmp_path / "dog.nc")
    back = load_poses(p)
    np.testing.assert_allclose(back["time"].values, clip.tracks["time"].values)
    assert back.attrs["fps"] == 30
    assert any(e["operation"] == "load_poses" for e in json.loads(back.attrs["log"]))


def test_json_keypoints_ap10k(tmp_path):
    names = ["left_hip", "left_knee", "left_back_paw", "right_hip", "right_knee", "right_back_paw", "tail_root"]
    frames = [[[i, 2 * i, 0.9] for i in range(len(names))] for _ in range(5)]
    p = tmp_path / "k.json"
    p.write_text(json.dumps({"keypoint_names": names, "frames": frames}))
    ds = load_poses(p, fps=30)
    assert list(ds["keypoint"].values)[:3] == ["left_stifle", "left_hock", "left_hind_paw"]


def test_unknown_columns_error(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("scorer,a,a,a\nbodyparts,banana,banana,banana\ncoords,x,y,likelihood\n0,1,2,0.5\n")
    with pytest.raises(HindsightInputError, match="unknown pose columns"):
        load_poses(p, fps=30)


def test_csv_that_is_not_dlc(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(HindsightInputError, match="unknown pose columns"):
        load_poses(p, fps=30)


def test_dlc_needs_fps(tmp_path, clip):
    p = save_poses(clip.tracks, tmp_path / "dog.csv")
    with pytest.raises(HindsightInputError, match="--fps"):
        load_poses(p)


def test_empty_and_wrong_extension(tmp_path):
    e = tmp_path / "e.csv"
    e.write_text("")
    with pytest.raises(HindsightInputError, match="empty"):
        load_poses(e)
    t = tmp_path / "t.txt"
    t.write_text("x")
    with pytest.raises(HindsightInputError, match="unsupported"):
        load_poses(t)


# --- bad pose files: one plain line, never a C back-trace; non-finite values masked and counted -----------


_AP10K = ["left_hip", "left_knee", "left_back_paw", "right_hip", "right_knee", "right_back_paw", "tail_root"]


def _frames(n=40):
    return [[[10.0 * k + i, 2.0 * k + i, 0.9] for k in range(len(_AP10K))] for i in range(n)]


def _bad_pose_files(d, clip):
    """Every bad pose file of issue 34, item 5, written into ``d``: name -> path."""
    import os

    files = {}
    files["random.h5"] = d / "random.h5"
    files["random.h5"].write_bytes(os.urandom(4096))
    good = d / "good.h5"
    to_dlc_frame(clip.tracks).to_hdf(good, key="df")
    data = good.read_bytes()
    files["truncated.h5"] = d / "truncated.h5"
    files["truncated.h5"].write_bytes(data[: len(data) // 2])
    files["deep.json"] = d / "deep.json"
    files["deep.json"].write_text("[" * 100_000 + "]" * 100_000)
    for name, body in {
        "frames_dict.json": {"keypoint_names": _AP10K, "frames": {"0": [[1, 2, 1]]}},
        "names_5.json": {"keypoint_names": 5, "frames": _frames()},
        "names_null.json": {"keypoint_names": None, "frames": _frames()},
        "fps_list.json": {"keypoint_names": _AP10K, "frames": _frames(), "fps": [30]},
        "ragged.json": {"keypoint_names": _AP10K, "frames": [_frames()[0], _frames()[0][:3]], "fps": 30},
        "strings.json": {"keypoint_names": _AP10K, "frames": [[["1", "2", "1"]] * len(_AP10K)], "fps": 30},
    }.items():
        files[name] = d / name
        files[name].write_text(json.dumps(body))
    return files


def test_bad_pose_files_raise_one_plain_input_error(tmp_path, clip):
    for name, path in _bad_pose_files(tmp_path, clip).items():
        with pytest.raises(HindsightInputError) as err:
            load_poses(path)
        msg = str(err.value)
        assert "\n" not in msg and "H5F.c" not in msg and "back trace" not in msg, name
        assert path.name in msg, name


def test_bad_pose_files_exit_2_with_one_error_line(tmp_path, clip):
    """Through the command line as a user runs it (a process per file)."""
    import subprocess
    import sys

    for name, path in _bad_pose_files(tmp_path, clip).items():
        run = subprocess.run(
            [sys.executable, "-m", "vision", "analyze", str(path), "--quiet"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 2, (name, run.stderr)
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "internal error" not in lines[0], (name, lines)


@pytest.mark.parametrize("token", ["1e308", "Infinity", "-Infinity"])
def test_non_finite_json_values_are_masked_quietly_and_counted(tmp_path, token):
    frames = _frames(60)
    for i in range(0, 60, 4):
        frames[i][2][0] = 12345.678  # a marker replaced by the bad token in the text
    p = tmp_path / "k.json"
    p.write_text(json.dumps({"keypoint_names": _AP10K, "frames": frames, "fps": 30}).replace("12345.678", token))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any numpy warning fails the test
        ds = load_poses(p)
    pos = ds["position"].values
    assert np.isfinite(pos).sum() == pos.size - 2 * 15  # each bad x masks its point (x and y)
    k = list(ds["keypoint"].values).index("left_hind_paw")
    assert np.isnan(ds["confidence"].values[::4, k, 0]).all()
    entry = [e for e in json.loads(ds.attrs["log"]) if e["operation"] == "load_poses"][-1]
    assert entry["parameters"]["masked_nonfinite"] == 15


def test_non_finite_csv_values_are_masked_and_the_report_counts_them(tmp_path, clip):
    import subprocess
    import sys

    df = to_dlc_frame(clip.tracks)
    df.iloc[::3, 0] = 1e308
    df.iloc[::5, 1] = float("inf")
    p = tmp_path / "big.csv"
    df.to_csv(p)
    run = subprocess.run(
        [sys.executable, "-m", "vision", "analyze", str(p), "--fps", "30", "--quiet", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0 and run.stderr == "", run.stderr  # no numpy warnings printed
    report = json.loads(run.stdout)
    loaded = [e for e in report["provenance"] if e["operation"] == "load_poses"][-1]
    n = len(df)
    assert loaded["parameters"]["masked_nonfinite"] == len(range(0, n, 3)) + len(range(0, n, 5))


def test_json_with_null_points_and_two_values(tmp_path):
    frames = [[[1.0 + i, 2.0] for _ in _AP10K] for i in range(5)]
    frames[2][0] = [None, None]
    p = tmp_path / "k.json"
    p.write_text(json.dumps({"keypoint_names": _AP10K, "frames": frames, "fps": 25}))
    ds = load_poses(p)
    assert ds.attrs["fps"] == 25 and np.isnan(ds["position"].values[2, :, 0, 0]).all()
