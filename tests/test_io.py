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
